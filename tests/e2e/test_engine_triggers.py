"""How mageflow's Hatchet dispatcher sends starts, on a real engine.

Starts requested together go out in shared bulk calls, each caller getting
its own run id; a batch with a task no worker knows still starts the others,
and only that task's caller gets ``UnknownTaskError``. The calls are counted
by a wrapper on the dispatcher's ``send`` (the one place a trigger reaches
the engine); the engine and the worker are real, and every run must
complete. Nothing waits on a fixed sleep.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import ModuleType
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
from e2e_helpers import counts, eventually, key, within
from redis.asyncio import Redis

from mageflow.dispatch import DISPATCH_ID, SIGNATURE_ID, RunRequest
from mageflow.dispatch.hatchet import HatchetDispatcher
from mageflow.errors import UnknownTaskError

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

BATCH_KEY = "e2e_batch"
"""A metadata key of this test's own: the runs of one test carry its key."""


@pytest.fixture(autouse=True)
def _worker_alive(worker: subprocess.Popen[bytes]) -> None:
    assert worker.poll() is None, "the e2e worker has exited"


@dataclass
class Call:
    size: int
    error: grpc.StatusCode | None = None


@dataclass
class Calls:
    """Every call the dispatcher made to the engine while the test ran."""

    made: list[Call] = field(default_factory=list)

    @property
    def sizes(self) -> list[int]:
        return [c.size for c in self.made]


@pytest.fixture
def dispatcher(tasks: ModuleType) -> HatchetDispatcher:
    backend = tasks.mf.dispatch_backend
    assert isinstance(backend, HatchetDispatcher)
    return backend


Send = Callable[[Sequence[Any]], Awaitable[list[str]]]


def counting(seen: Calls, send: Send) -> Send:
    async def counted_send(messages: Sequence[Any]) -> list[str]:
        call = Call(len(messages))
        seen.made.append(call)
        try:
            return await send(messages)
        except grpc.RpcError as exc:
            call.error = exc.code()
            raise

    return counted_send


@pytest.fixture
def calls(dispatcher: HatchetDispatcher) -> Iterator[Calls]:
    """Count the dispatcher's calls to the engine: a wrapper on this instance's
    ``send``, removed after the test (the calls themselves are real)."""
    seen = Calls()
    dispatcher.send = counting(seen, dispatcher.send)  # type: ignore[method-assign,assignment]
    try:
        yield seen
    finally:
        del dispatcher.send  # the class's method again


def counted(k: str, i: int) -> RunRequest:
    return RunRequest(
        task_name="e2e-counted", input={"key": k, "i": i}, metadata={BATCH_KEY: k}
    )


async def completed(tasks: ModuleType, run_ids: Sequence[str]) -> list[Any]:
    """Each run's output, once it completed (the SDK's result listener)."""
    refs = [tasks.hatchet.runs.get_run_ref(run_id) for run_id in run_ids]
    return await within(asyncio.gather(*(ref.aio_result() for ref in refs)))


async def test_starts_requested_together_share_bulk_calls(
    tasks: ModuleType, redis: Redis, dispatcher: HatchetDispatcher, calls: Calls
) -> None:
    k, n = key(), 50
    run_ids = await within(
        asyncio.gather(*(dispatcher.trigger(counted(k, i)) for i in range(n)))
    )
    # fewer calls than starts, and at least one of them a bulk call
    assert len(calls.made) < n, calls.sizes
    assert max(calls.sizes) > 1, calls.sizes
    assert sum(calls.sizes) == n
    assert all(c.error is None for c in calls.made)
    # every caller got a distinct real run id: the one its run ran as
    assert len(set(run_ids)) == n
    outputs = await completed(tasks, run_ids)
    assert [o["e2e-counted"] for o in outputs] == [{"i": i} for i in range(n)]
    ran_as = await redis.hgetall(f"e2e:counted-run:{k}")
    assert [ran_as[str(i)] for i in range(n)] == run_ids
    assert await counts(redis, f"e2e:counted:{k}") == dict.fromkeys(range(n), 1)
    # detached, with the request's metadata
    details = await tasks.hatchet.runs.aio_get(run_ids[0])
    assert (details.run.additional_metadata or {}).get(BATCH_KEY) == k
    assert details.run.parent_task_external_id is None


async def test_trigger_many_is_one_bulk_call(
    tasks: ModuleType, redis: Redis, dispatcher: HatchetDispatcher, calls: Calls
) -> None:
    k, n = key(), 20
    run_ids = await within(dispatcher.trigger_many([counted(k, i) for i in range(n)]))
    assert calls.sizes == [n]
    assert len(set(run_ids)) == n
    await completed(tasks, run_ids)
    ran_as = await redis.hgetall(f"e2e:counted-run:{k}")
    assert [ran_as[str(i)] for i in range(n)] == run_ids


UNKNOWN = "e2e-no-such-task"


def with_one_unknown(k: str, n: int) -> list[RunRequest]:
    """``n`` known starts with one start of a task no worker declares in the
    middle (at index ``n // 2``)."""
    unknown = RunRequest(task_name=UNKNOWN, input={"key": k}, metadata={BATCH_KEY: k})
    requests = [counted(k, i) for i in range(n)]
    requests.insert(n // 2, unknown)
    return requests


async def started_once(
    tasks: ModuleType, redis: Redis, k: str, run_ids: list[str], since: datetime
) -> None:
    """Each run completed, ran once, as the run its caller was given; and the
    engine holds no other run of ``k``."""
    n = len(run_ids)
    assert len(set(run_ids)) == n
    await completed(tasks, run_ids)
    ran_as = await redis.hgetall(f"e2e:counted-run:{k}")
    assert [ran_as[str(i)] for i in range(n)] == run_ids
    assert await counts(redis, f"e2e:counted:{k}") == dict.fromkeys(range(n), 1)

    async def listed() -> list[str]:
        found = await tasks.hatchet.runs.aio_list(
            since=since, only_tasks=True, additional_metadata={BATCH_KEY: k}
        )
        ids = [r.workflow_run_external_id for r in found.rows]
        # the engine lists a run a moment after it ran
        return ids if len(ids) >= n else []

    assert sorted(await eventually(listed, f"the runs of {k} listed")) == sorted(
        run_ids
    )


def split(results: list[Any], n: int) -> tuple[BaseException, list[str]]:
    error = results.pop(n // 2)
    assert isinstance(error, UnknownTaskError), error
    assert error.task_name == UNKNOWN
    assert all(isinstance(r, str) for r in results), results
    return error, results


async def test_an_unknown_task_in_a_batch_fails_only_its_own_caller(
    tasks: ModuleType, redis: Redis, dispatcher: HatchetDispatcher, calls: Calls
) -> None:
    k, n = key(), 10
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    results = await within(
        asyncio.gather(
            *(dispatcher.trigger(r) for r in with_one_unknown(k, n)),
            return_exceptions=True,
        )
    )
    _, run_ids = split(results, n)
    # The engine (v0.105) would take the unknown one and drop it; the
    # dispatcher asked the engine which tasks it holds, and sent the known
    # starts together.
    assert calls.sizes == [n]
    await started_once(tasks, redis, k, run_ids, since)


@pytest.mark.parametrize(
    ("code", "names_given"),
    [
        pytest.param(grpc.StatusCode.NOT_FOUND, False, id="not-found"),
        pytest.param(grpc.StatusCode.INVALID_ARGUMENT, True, id="names-not-found"),
    ],
)
async def test_a_batch_the_engine_refuses_for_an_unknown_task_starts_the_others(
    tasks: ModuleType,
    redis: Redis,
    dispatcher: HatchetDispatcher,
    calls: Calls,
    code: grpc.StatusCode,
    names_given: bool,
) -> None:
    """The engine refuses a whole call naming a task it does not hold: an
    engine that answers NOT_FOUND, or v0.105 when it queues the runs instead
    of scheduling them at once (INVALID_ARGUMENT, "workflow names not
    found: ..."). This engine cannot be made to take that path on demand, so
    the wrapper plays the refusal for the calls that carry the unknown task
    (as if a lookup had found it: a task deleted since); every other call is
    real."""
    k, n = key(), 10
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    unknown_name = dispatcher._message(with_one_unknown(k, n)[n // 2]).name
    # A known task is looked up on its first trigger only: make sure this
    # one's was, so that all the test's starts are sent together.
    await completed(tasks, [await dispatcher.trigger(counted(key(), 0))])
    calls.made.clear()

    async def refusing(messages: Sequence[Any]) -> list[str]:
        if any(m.name == unknown_name for m in messages):
            details = "Invalid request"
            if names_given:
                details = f"workflow names not found: {unknown_name}"
            raise grpc.aio.AioRpcError(
                code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details
            )
        return await HatchetDispatcher.send(dispatcher, messages)

    dispatcher.send = counting(calls, refusing)  # type: ignore[method-assign,assignment]
    dispatcher._known.add(unknown_name)  # as if a lookup had found it
    results = await within(
        asyncio.gather(
            *(dispatcher.trigger(r) for r in with_one_unknown(k, n)),
            return_exceptions=True,
        )
    )
    assert unknown_name not in dispatcher._known  # refused: looked up next time
    error, run_ids = split(results, n)
    assert isinstance(error.__cause__, grpc.RpcError)
    assert error.__cause__.code() is code
    # all together first, then (not knowing which task) each alone, or (told)
    # the known ones together again
    assert calls.sizes[0] == n + 1
    if names_given:
        assert calls.sizes[1:] == [n]
    else:
        assert sorted(calls.sizes[1:]) == [1] * (n + 1)
    await started_once(tasks, redis, k, run_ids, since)


async def test_an_unknown_task_alone_raises_unknown_task_error(
    dispatcher: HatchetDispatcher, calls: Calls
) -> None:
    with pytest.raises(UnknownTaskError) as raised:
        await within(
            dispatcher.trigger(RunRequest(task_name=UNKNOWN, input={}, metadata={}))
        )
    assert raised.value.task_name == UNKNOWN
    assert calls.sizes == []  # refused before anything was sent
    with pytest.raises(UnknownTaskError):
        await within(
            dispatcher.trigger_many(
                [counted(key(), 0), RunRequest(UNKNOWN, input={}, metadata={})]
            )
        )
    assert calls.sizes == []


async def test_starts_sent_from_inside_runs_are_detached_with_their_metadata(
    tasks: ModuleType, redis: Redis
) -> None:
    """A swarm's items after the first ``cap`` are started by the worker,
    inside the runs of the items that finished: in shared calls, yet each a
    top-level run carrying its own signature's metadata."""
    mf, k, n = tasks.mf, key(), 12
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    items = [await mf.sign(tasks.counted, key=k, i=i) for i in range(n)]
    swarm = await mf.swarm(items, max_concurrency=3)
    results = await within(swarm.aio_run())
    assert [r["i"] for r in results] == list(range(n))
    assert await counts(redis, f"e2e:counted:{k}") == dict.fromkeys(range(n), 1)
    ran_as = await redis.hgetall(f"e2e:counted-run:{k}")
    for i, item in enumerate(items):

        async def listed(item_id: str = item.id) -> list[Any]:
            found = await tasks.hatchet.runs.aio_list(
                since=since,
                only_tasks=True,
                additional_metadata={SIGNATURE_ID: item_id},
            )
            return list(found.rows)

        (run,) = await eventually(listed, f"the run of item {i}")
        assert run.workflow_run_external_id == ran_as[str(i)]
        assert run.parent_task_external_id is None  # not a child of its trigger
        metadata = run.additional_metadata or {}
        assert metadata[SIGNATURE_ID] == item.id
        assert metadata[DISPATCH_ID]
