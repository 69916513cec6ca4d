"""Fault injection: break nine workflow shapes seven ways; each must still end.

The shapes (tests/fault_workflows.py): a task with success and error
callbacks, a chain of 3, a swarm of 20 at cap 3, a chain whose middle step is
a swarm, a swarm of chains, a root task fanning out 50 children at cap 5, a
task continued 20 times over, a swarm with per-item callbacks, and a chain,
a swarm and callbacks signed in seven shards, then linked. Each runs on one
Redis server and on a 3-master cluster (``redis_kind``). The faults:

* **kill**: a real process running the workflow is SIGKILLed at a random
  instant; a fresh process with the same task definitions recovers. Run
  for many seeds (``MAGEFLOW_FAULT_SEEDS`` per shape, 60 by default); a
  failure prints its seed, and ``MAGEFLOW_FAULT_SEED=<n>`` replays it;
* **kill after every step**: the process dies the instant its n-th script
  call returns, for every n the workflow makes: every boundary between two
  atomic steps, none left to chance;
* **outage**: Redis is unreachable for 2 s at a random instant;
* **timeout**: one step runs past its execution_timeout;
* **validation**: one step's input fails its model;
* **unregistered**: the success callback is a task no worker here runs;
* **duplicates**: every start is delivered 100 times at once.

After the fault and one recovery pass (``drain`` runs recovery until
nothing is owed), :func:`fault_workflows.check` asserts: every workflow is
final, every body ran once (twice only where a kill caught it mid-run), no
swarm ran more items than its cap, and the success callback got the
results in add order, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import fault_workflows as fw
import pytest
from faults import RedisProxy

import mageflow
from mageflow import HatchetMageflow, SignatureStatus, TaskError
from mageflow.dispatch import RunRequest
from mageflow.dispatch.local import LocalDispatcher
from mageflow.store import keys

HERE = Path(__file__).resolve().parent
SEEDS = int(os.environ.get("MAGEFLOW_FAULT_SEEDS", "60"))
ONLY_SEED = os.environ.get("MAGEFLOW_FAULT_SEED")


def backend(client: HatchetMageflow) -> LocalDispatcher:
    assert isinstance(client.dispatch_backend, LocalDispatcher)
    return client.dispatch_backend


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[HatchetMageflow]:
    client = mageflow.Mageflow(redis_client=redis_url, backend="local")
    await client.redis.flushdb()
    fw.declare(client)
    try:
        with client.use():
            yield client
    finally:
        await backend(client).close()
        await client.store.connection.aclose()


async def start(client: HatchetMageflow, built: fw.Built) -> None:
    root = await client.load_signature(built.root)
    assert root is not None
    await root.aio_run_no_wait({})


# --- kill at a random instant ----------------------------------------------------


class Zygote:
    """The forking child process of tests/fault_child.py, line by line.

    One daemon thread reads its output into a queue, so a wait that times
    out leaves no reader behind to swallow the next case's lines or to hold
    up the event loop's shutdown. A case that fails mid-way calls
    :meth:`abandon`, which kills its child and reads up to the zygote's
    ``REAPED``, so the next case starts from a clean stream.
    """

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "fault_child.py")],
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(HERE)},
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.child: int | None = None
        self.finished = 0  # FINISHED lines read: runs that ended unkilled
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for text in self.process.stdout:
            self.lines.put(text)
        self.lines.put(None)

    async def line(self, prefix: str, timeout: float = 60) -> str:
        """The rest of the next line that starts with ``prefix``. A child
        that is reaped first is an error at once, not a 60 s wait."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            try:
                text = await asyncio.to_thread(self.lines.get, True, max(left, 0))
            except queue.Empty:
                raise TimeoutError(f"no {prefix.strip()} line in {timeout} s") from None
            if text is None:
                raise RuntimeError("the fault child process exited")
            if text.startswith("PID "):
                self.child = int(text[4:])
            if text.startswith("FINISHED"):
                self.finished += 1
            if text.startswith("REAPED "):
                self.child = None
            if text.startswith(prefix):
                return text[len(prefix) :].strip()
            if text.startswith("REAPED "):
                raise RuntimeError(
                    f"the workflow process exited before its {prefix.strip()}"
                    " line (its stderr is in the captured output)"
                )

    def send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    async def abandon(self) -> None:
        """Kill the case's child, if it still runs, and wait for it."""
        if self.child is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.child, signal.SIGKILL)
        await self.line("REAPED ")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def zygote_process() -> Iterator[Zygote]:
    zygote = Zygote()
    try:
        yield zygote
    finally:
        zygote.close()


@pytest.fixture
async def zygote(zygote_process: Zygote) -> AsyncIterator[Zygote]:
    """The module's zygote, left with no child of this test behind it."""
    try:
        yield zygote_process
    finally:
        await zygote_process.abandon()


async def _killed_case(
    client: HatchetMageflow, zygote: Zygote, url: str, shape: str, seed: int
) -> None:
    rng = random.Random(seed)
    await client.redis.flushdb()
    zygote.send(f"{url} {shape}")
    pid = int(await zygote.line("PID "))
    built = fw.Built(**json.loads(await zygote.line("STARTED ")))
    # The workflows take 10-150 ms here: most kills land mid-flight, some
    # right away, a few after the end.
    await asyncio.sleep(rng.uniform(0, 0.15))  # ok: the random instant of the kill
    os.kill(pid, signal.SIGKILL)
    assert int(await zygote.line("REAPED ")) == pid
    # A body the kill caught before its outcome was recorded runs again
    # (bodies run at least once): those may show two runs, no others.
    killed_mid_run = await fw.unsettled(client)
    root = await client.load_signature(built.root)
    owed = await client.redis.zscore(
        keys.index_of(keys.Index.DUE, built.root), built.root
    )
    if root is not None and root.status is SignatureStatus.PENDING and owed is None:
        # Killed before its start was recorded: the start never returned, so
        # nothing was promised; its caller sends it again, as after any
        # unanswered call. (A recorded start is recovery's to send.)
        await start(client, built)
    await client.recover(grace=timedelta(0))  # a fresh process, same tasks
    await backend(client).drain(timeout=60)
    await fw.check(client, built, killed_mid_run=killed_mid_run)


@pytest.mark.parametrize("shape", fw.SHAPES)
async def test_kill_at_a_random_instant(
    client: HatchetMageflow, zygote: Zygote, redis_url: str, shape: str
) -> None:
    seeds = [int(ONLY_SEED)] if ONLY_SEED else range(SEEDS)
    for seed in seeds:
        try:
            await _killed_case(client, zygote, redis_url, shape, seed)
        except AssertionError as exc:
            raise AssertionError(
                f"shape {shape!r}, seed {seed} (replay: "
                f"MAGEFLOW_FAULT_SEED={seed} pytest {__file__} -k "
                f"'kill and {shape}'): {exc}"
            ) from exc


# --- kill at every step boundary ---------------------------------------------------


async def _calls_of(
    client: HatchetMageflow, zygote: Zygote, url: str, shape: str
) -> int:
    """How many script calls the workflow makes when nothing breaks."""
    await client.redis.flushdb()
    zygote.send(f"{url} {shape}")
    pid = int(await zygote.line("PID "))
    calls = int(await zygote.line("CALLS "))
    os.kill(pid, signal.SIGKILL)
    assert int(await zygote.line("REAPED ")) == pid
    return calls


@pytest.mark.parametrize("shape", fw.SHAPES)
async def test_kill_after_every_step(
    client: HatchetMageflow, zygote: Zygote, redis_url: str, shape: str
) -> None:
    """Each script call is one atomic step; the process dies right after
    the n-th, for every n: a fresh process recovers every one."""
    total = await _calls_of(client, zygote, redis_url, shape)
    assert total > 0
    ended_first = zygote.finished
    for n in range(1, total + 1):
        await client.redis.flushdb()
        zygote.send(f"{redis_url} {shape} {n}")
        pid = int(await zygote.line("PID "))
        built = fw.Built(**json.loads(await zygote.line("STARTED ")))
        assert int(await zygote.line("REAPED ")) == pid
        killed_mid_run = await fw.unsettled(client)
        await client.recover(grace=timedelta(0))
        await backend(client).drain(timeout=60)
        try:
            await fw.check(client, built, killed_mid_run=killed_mid_run)
        except AssertionError as exc:
            raise AssertionError(
                f"shape {shape!r}, killed after step {n} of {total}: {exc}"
            ) from exc
    # A run may make a call or so fewer than the first (items that finish
    # together share a fill), so its last boundaries may not exist; only
    # those runs may end unkilled.
    ended_first = zygote.finished - ended_first
    assert ended_first <= 3, f"{ended_first} of {total} runs were never killed"


# --- in-process faults -------------------------------------------------------------


@pytest.mark.single_node  # cut through a proxy: a cluster client finds every node
@pytest.mark.parametrize("shape", fw.SHAPES)
@pytest.mark.parametrize("seed", [1, 2])
async def test_redis_unreachable_for_two_seconds(
    redis_url: str, shape: str, seed: int
) -> None:
    proxy = RedisProxy(redis_url)
    url = await proxy.start()
    client = mageflow.Mageflow(redis_client=url, backend="local")
    await client.redis.flushdb()
    fw.declare(client)
    try:
        with client.use():
            built = await fw.build(client, shape)
            await start(client, built)
            await asyncio.sleep(
                random.Random(seed).uniform(0, 0.03)
            )  # ok: fault instant
            await proxy.outage(2.0)
            await backend(client).drain(timeout=60)
            await fw.check(client, built)
    finally:
        await backend(client).close()
        await client.store.connection.aclose()
        await proxy.close()


def _chosen_slot_error(tree_expected: Any, got: Any, kind: str) -> None:
    """The swarm shapes: the chosen item's slot holds its TaskError, the
    others their results, in add order."""
    assert isinstance(got, list)
    assert len(got) == len(tree_expected)
    errors = [i for i, value in enumerate(got) if value != tree_expected[i]]
    assert len(errors) == 1, got
    assert TaskError.model_validate(got[errors[0]]).kind == kind


async def _broken_step(client: HatchetMageflow, shape: str, kind: str) -> None:
    built = (
        await fw.build(client, shape, step="slow")
        if kind == "timeout"
        else await fw.build(client, shape, bad=True)
    )
    if shape == "task" and kind == "validation":
        # A start you ask for yourself is refused at once, and nothing runs.
        with pytest.raises(mageflow.errors.InputValidationError, match="result:"):
            await start(client, built)
        root = await client.load_signature(built.root)
        assert root is not None
        assert root.status.value == "pending"
        assert not await client.redis.hgetall(f"{fw.PREFIX}:runs")
        return
    await start(client, built)
    await backend(client).drain(timeout=60)
    tree = await fw.check(client, built, allow_failure=True, compare=False)
    if shape in ("task", "chain", "continuation"):
        # A continuation's failure is the task's, round after round.
        assert tree.status == "failed"
        error = TaskError.model_validate(await fw.received(client, built.error))
        assert error.kind == kind
    elif shape == "root" and kind == "validation":
        # Starting a child is a start the body asked for: refused at once,
        # so the body fails, and the root with it.
        assert tree.status == "failed"
        error = TaskError.model_validate(await fw.received(client, built.error))
        assert error.error_type == "InputValidationError", error
    elif shape == "root":
        assert tree.status == "done"  # a failed child only fills its slot
        got = await fw.received(client, built.success)
        assert got["result"] == built.expected["result"]
        _chosen_slot_error(built.expected["children"], got["children"], kind)
    elif shape in ("chain-with-swarm", "cross-shard"):
        assert tree.status == "done"  # a failed item only fills its slot
        assert await fw.received(client, built.success) == built.expected
    else:
        assert tree.status == "done"
        _chosen_slot_error(
            built.expected, await fw.received(client, built.success), kind
        )


@pytest.mark.parametrize("shape", fw.SHAPES)
async def test_a_step_that_times_out(client: HatchetMageflow, shape: str) -> None:
    await _broken_step(client, shape, "timeout")


@pytest.mark.parametrize("shape", fw.SHAPES)
async def test_a_step_whose_input_fails_validation(
    client: HatchetMageflow, shape: str
) -> None:
    await _broken_step(client, shape, "validation")


@pytest.mark.parametrize("shape", fw.SHAPES)
async def test_an_unregistered_success_callback(
    client: HatchetMageflow, redis_url: str, shape: str
) -> None:
    other = mageflow.Mageflow(redis_client=redis_url, backend="local")

    @other.task(name="elsewhere")
    async def elsewhere(msg: fw.Callback) -> None:
        return None

    try:
        unknown = await other.sign("elsewhere")
    finally:
        await other.store.connection.aclose()
    built = await fw.build(client, shape, success=unknown)
    await start(client, built)
    await backend(client).drain(timeout=60)
    tree = await fw.check(client, built, compare=False)
    assert tree.status == "done"  # the workflow itself ended well
    callback = await client.load_signature(unknown.id)
    assert callback is not None
    assert callback.status.value == "failed"  # and its callback failed, alone
    record = await client.store.load_record(unknown.id)
    assert record is not None
    assert TaskError.model_validate_json(record["outcome"]).kind == "unknown_task"


@pytest.mark.parametrize("shape", fw.SHAPES)
async def test_every_start_delivered_a_hundred_times(
    client: HatchetMageflow, shape: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = LocalDispatcher.trigger
    deliveries = [0]

    async def hundredfold(self: LocalDispatcher, request: RunRequest) -> str:
        ids = await asyncio.gather(*(real(self, request) for _ in range(100)))
        deliveries[0] += 100
        return ids[0]

    async def many(self: LocalDispatcher, requests: Any) -> list[str]:
        return [await hundredfold(self, request) for request in requests]

    monkeypatch.setattr(LocalDispatcher, "trigger", hundredfold)
    monkeypatch.setattr(LocalDispatcher, "trigger_many", many)
    built = await fw.build(client, shape)
    await start(client, built)
    await backend(client).drain(timeout=120)
    assert deliveries[0] >= 200  # the root and its callback at least
    await fw.check(client, built)
