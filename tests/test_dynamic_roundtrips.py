"""What root tasks, continuations and per-item callbacks cost, in Redis round
trips counted on the wire (see tests/roundtrips.py), asserted exactly.

Each ``EVALSHA`` is counted under the name of the script it runs (the
``round_trips`` fixture here names them, by SHA1), so every assertion says
which step each round trip is. Everything runs on the local backend, whose
trigger sends nothing to Redis (on Hatchet it is the engine's call, not
counted here). Every measurement is taken once before it is counted, so the
server has every script loaded, and with the local backend's recovery pass
off, so that only the work is counted; each test then checks that nothing
was left owed.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pydantic import BaseModel
from roundtrips import RoundTrips, _Commands

import mageflow
from mageflow import HatchetMageflow
from mageflow.dispatch.local import LocalDispatcher, RunState
from mageflow.run import rooted
from mageflow.store import scripts
from mageflow.store.connection import is_cluster_url

SCRIPTS = {
    hashlib.sha1((scripts.SHEBANG + value).encode()).hexdigest(): name
    for name, value in vars(scripts).items()
    if name.isupper() and not name.startswith("_") and isinstance(value, str)
}
"""SHA1 -> name of every mageflow script, as redis-py sends it to EVALSHA."""


class _ByScript(_Commands):
    """Counts an ``EVALSHA`` under its script's name, the rest as usual."""

    def _count(self) -> None:
        if len(self._args) > 1 and self._args[0].upper() == "EVALSHA":
            sha = self._args[1]
            self._seen[SCRIPTS.get(sha, f"EVALSHA {sha[:8]}")] += 1
        else:
            super()._count()


class ByScript(RoundTrips):
    def _tap(self, _client: Any) -> Callable[[bytes], None]:
        return _ByScript(self.seen).feed


@pytest.fixture
def round_trips(redis_url: str) -> RoundTrips:
    """The suite's counter, with each script call named by its script (the
    ``local`` fixture connects through this one's proxy)."""
    if is_cluster_url(redis_url):
        pytest.skip("round trips are counted on one Redis server")
    return ByScript(redis_url)


class Num(BaseModel):
    x: int = 0
    children: int = 0


def backend(client: HatchetMageflow) -> LocalDispatcher:
    assert isinstance(client.dispatch_backend, LocalDispatcher)
    return client.dispatch_backend


@pytest.fixture
def recover(local: HatchetMageflow) -> Callable[[], Awaitable[bool]]:
    """The local backend's recovery pass, taken off ``drain`` (so a count
    is of the work alone); call it to check that nothing was left owed."""
    on_idle = backend(local).on_idle
    assert on_idle is not None
    backend(local).on_idle = None
    return on_idle


async def cost(
    round_trips: RoundTrips, local: HatchetMageflow, work: Awaitable[Any]
) -> Counter[str]:
    """The commands ``work`` and every run it leads to send, to the drain."""
    round_trips.reset()
    await work
    await backend(local).drain()
    return round_trips.commands


def tasks(local: HatchetMageflow) -> dict[str, Any]:
    """A trivial task, and the same body as a root task."""

    @local.task(name="leaf")
    async def leaf(msg: Num) -> dict[str, int]:
        return {"v": msg.x}

    @local.task(name="root")
    @local.root_task(max_concurrency=4)
    async def root(msg: Num) -> dict[str, int]:
        return {"v": msg.x}

    return {"leaf": leaf, "root": root}


# --- (a) a root task's own run --------------------------------------------------


async def test_a_root_run_costs_six_round_trips_more_than_a_plain_run(
    local: HatchetMageflow,
    round_trips: RoundTrips,
    recover: Callable[[], Awaitable[bool]],
) -> None:
    task = tasks(local)

    async def run(name: str) -> Counter[str]:
        signature = await local.sign(task[name])
        return await cost(round_trips, local, signature.aio_run_no_wait({"x": 1}))

    await run("leaf")  # every script is loaded from here on
    await run("root")
    plain, root = await run("leaf"), await run("root")
    assert plain == Counter(
        {
            "MARK_DUE": 1,  # the start is owed before it is sent
            "ACTIVATE": 1,  # the run claims the signature
            "FINISH": 1,  # the outcome, and the completion (no container)
        }
    )
    assert root == plain + Counter(
        {
            # Before the body: the run's swarm of children is made and named
            # on the task.
            "ROOT_OPEN": 1,
            # The body returned: the task is handed to its children, keeps
            # the body's result and closes the swarm, which had nothing to
            # run, so it completes at once ...
            "ROOT_DONE": 1,
            # ... and settles like any swarm: its record is read (it has no
            # items, so its results are not), its outcome recorded, which
            # owes its word to its container, the task.
            "HGETALL": 2,  # the swarm's record, then the task's (its body)
            "FINISH": 1,  # the swarm's; the task's FINISH is the plain one
            "MARK_SENT": 1,  # the swarm's word to the task was given
        }
    )
    # So a root costs open + done, and an empty swarm's settle (4) that
    # relays an empty list of results to the task: see the report.
    assert root.total() - plain.total() == 6
    assert not await recover()


# --- (b) a root's children -----------------------------------------------------------


async def test_a_root_childs_start_costs_what_a_plain_start_costs(
    local: HatchetMageflow,
    round_trips: RoundTrips,
    recover: Callable[[], Awaitable[bool]],
) -> None:
    task = tasks(local)
    joins: list[Counter[str]] = []

    @local.task(name="parent")
    @local.root_task(max_concurrency=4)
    async def parent(msg: Num) -> dict[str, int]:
        child = await local.sign(task["leaf"])
        round_trips.reset()
        await child.aio_run_no_wait({"x": 1})
        # Counted before anything else runs: the child's run is a task the
        # local backend made, which starts when this body next waits.
        joins.append(round_trips.commands)
        return {}

    async def plain_start() -> Counter[str]:
        child = await local.sign(task["leaf"])
        round_trips.reset()
        await child.aio_run_no_wait({"x": 1})
        started = round_trips.commands
        await backend(local).drain()
        return started

    for _ in range(2):  # the first of each loads the scripts
        plain = await plain_start()
        await (await local.sign(parent)).aio_run_no_wait()
        await backend(local).drain()
    # Outside a root: the start is owed (it activates, or recovery sends it
    # again), then sent.
    assert plain == Counter({"MARK_DUE": 1})
    # Inside: the child joins the root's swarm, with its own message, in one
    # script that also owes its start, since it fits under the root's cap.
    assert joins[-1] == Counter({"SWARM_ADD": 1})
    assert not await recover()


@pytest.mark.parametrize("order", ["children outlive the body", "children end first"])
async def test_each_root_child_costs_what_a_plain_run_costs(
    local: HatchetMageflow,
    round_trips: RoundTrips,
    recover: Callable[[], Awaitable[bool]],
    monkeypatch: pytest.MonkeyPatch,
    order: str,
) -> None:
    task = tasks(local)
    gate = asyncio.Event()
    outlive = order == "children outlive the body"
    if outlive:
        # The children wait until the body's end has been recorded, so the
        # last child's finish is what completes the root's swarm.
        returned = rooted.body_returned

        async def then_open_the_gate(*args: Any) -> None:
            await returned(*args)
            gate.set()

        # The run calls it by the name it imported.
        monkeypatch.setattr("mageflow.run.signed.body_returned", then_open_the_gate)
    else:
        gate.set()

    @local.task(name="child")
    async def child(msg: Num) -> dict[str, int]:
        await gate.wait()
        return {"v": msg.x}

    def children_running() -> bool:
        runs = backend(local).runs
        return any(r.state is RunState.RUNNING for r in runs if r.task_name == "child")

    @local.task(name="fan-out")
    @local.root_task(max_concurrency=4)  # fewer than the children: some queue
    async def fan_out(msg: Num) -> dict[str, int]:
        for i in range(msg.children):
            await (await local.sign(child)).aio_run_no_wait({"x": i})
        # Children ending first: wait until every child's run, its settle
        # included, is over. A queued child's run is made by the finish that
        # frees its slot, before that run ends, so none is missed. Polled in
        # this process: no round trip.
        while not outlive and children_running():  # noqa: ASYNC110
            await asyncio.sleep(0)  # ok: yields the loop to the in-process runs
        return {"v": msg.children}

    async def root_of(children: int) -> Counter[str]:
        if outlive:
            gate.clear()
        signature = await local.sign(fan_out)
        return await cost(
            round_trips, local, signature.aio_run_no_wait({"children": children})
        )

    async def plain_runs(n: int) -> Counter[str]:
        async def runs() -> None:
            for i in range(n):
                await (await local.sign(task["leaf"])).aio_run_no_wait({"x": i})

        return await cost(round_trips, local, runs())

    await root_of(1)  # every script is loaded from here on
    await plain_runs(1)
    one, eleven = await root_of(1), await root_of(11)
    # Each child: signed (CREATE), joined (SWARM_ADD), run (ACTIVATE) and
    # finished with its swarm's step in one script (FINISH_ITEM), which also
    # starts the next queued child. Whether it started at once or queued.
    per_child = Counter({"CREATE": 1, "SWARM_ADD": 1, "ACTIVATE": 1, "FINISH_ITEM": 1})
    assert eleven - one == Counter({k: 10 * n for k, n in per_child.items()})
    # The same task run as many times outside a root: signed, its start owed
    # (MARK_DUE instead of SWARM_ADD), run, finished: as many round trips.
    plain = await plain_runs(10)
    assert plain == Counter(
        {"CREATE": 10, "MARK_DUE": 10, "ACTIVATE": 10, "FINISH": 10}
    )
    assert plain.total() == (eleven - one).total()

    # What having children costs the root beyond a plain run of its own
    # (MARK_DUE, ACTIVATE, FINISH): ROOT_OPEN and ROOT_DONE; then the swarm
    # settles: its record (HGETALL) and its results (HMGET) read, its outcome
    # recorded (FINISH), owed to the task, whose record is read (HGETALL),
    # before the task's FINISH; and its word to the task marked given
    # (MARK_SENT). When the last child's finish completes the swarm, that
    # child's completion waited for the swarm's settle: one MARK_SENT more.
    fixed = Counter(
        {
            "MARK_DUE": 1,
            "ACTIVATE": 1,
            "ROOT_OPEN": 1,
            "ROOT_DONE": 1,
            "HGETALL": 2,
            "HMGET": 1,
            "FINISH": 2,
            "MARK_SENT": 2 if outlive else 1,
        }
    )
    assert one == fixed + per_child
    assert fixed.total() - 3 == (8 if outlive else 7)
    assert not await recover()


# --- (c) continuations -----------------------------------------------------------


async def test_a_continuation_costs_six_round_trips_more_than_returning(
    local: HatchetMageflow,
    round_trips: RoundTrips,
    recover: Callable[[], Awaitable[bool]],
) -> None:
    task = tasks(local)

    @local.task(name="maybe-continue")
    async def maybe_continue(msg: Num) -> Any:
        if msg.x:
            return mageflow.Continue(await local.sign(task["leaf"], x=msg.x))
        return {"v": msg.x}

    async def run(x: int) -> Counter[str]:
        signature = await local.sign(maybe_continue)
        return await cost(round_trips, local, signature.aio_run_no_wait({"x": x}))

    await run(1)  # every script is loaded from here on
    direct, continued = await run(0), await run(1)
    assert direct == Counter({"MARK_DUE": 1, "ACTIVATE": 1, "FINISH": 1})
    assert continued == Counter(
        {
            "MARK_DUE": 1,
            "ACTIVATE": 2,  # the task's run; then the work's
            "CREATE": 1,  # the body signs the work
            # The task is handed to the work, which becomes its child, and
            # the work's start is owed: one script (no MARK_DUE for it).
            "HANDOVER": 1,
            # The work's outcome, which owes its word to the task; then the
            # task's record is read and the task settles with that outcome.
            "FINISH": 2,
            "HGETALL": 1,
            "MARK_SENT": 1,  # the work's word to the task was given
        }
    )
    assert continued.total() - direct.total() == 6

    # Of those six, four are the work's own, as if the task had started it
    # and returned (signed, started, run, finished; HANDOVER owes the start
    # MARK_DUE would), and two are the relay of its outcome to the task: the
    # task's record read, the word marked given.
    async def sign_and_start() -> None:
        await (await local.sign(task["leaf"])).aio_run_no_wait({"x": 1})

    alone = await cost(round_trips, local, sign_and_start())
    assert alone == Counter({"CREATE": 1, "MARK_DUE": 1, "ACTIVATE": 1, "FINISH": 1})
    relay = Counter({"HGETALL": 1, "MARK_SENT": 1})
    assert (
        continued - direct
        == alone - Counter({"MARK_DUE": 1}) + Counter({"HANDOVER": 1}) + relay
    )
    assert not await recover()


async def test_each_round_of_a_continuation_loop_costs_six_round_trips(
    local: HatchetMageflow,
    round_trips: RoundTrips,
    recover: Callable[[], Awaitable[bool]],
) -> None:
    @local.task(name="count-down")
    async def count_down(msg: Num) -> Any:
        if msg.x == 0:
            return {"v": 0}
        return mageflow.Continue(await local.sign(count_down, x=msg.x - 1))

    async def rounds(n: int) -> Counter[str]:
        signature = await local.sign(count_down)
        return await cost(round_trips, local, signature.aio_run_no_wait({"x": n}))

    await rounds(1)  # every script is loaded from here on
    one, eleven = await rounds(1), await rounds(11)
    # Per round: the next round signed and handed over; its run; and, as the
    # last round's outcome comes back up, one relay per level: the level's
    # record read, its settle, its child's word marked given. No level reads
    # its ancestors for the depth: each continuation records its own.
    assert eleven - one == Counter(
        {
            "CREATE": 10,
            "HANDOVER": 10,
            "ACTIVATE": 10,
            "HGETALL": 10,
            "FINISH": 10,
            "MARK_SENT": 10,
        }
    )
    assert not await recover()


async def test_a_continuation_in_a_chain_reads_the_chain_for_its_depth(
    local: HatchetMageflow,
    round_trips: RoundTrips,
    recover: Callable[[], Awaitable[bool]],
) -> None:
    task = tasks(local)

    @local.task(name="maybe-continue")
    async def maybe_continue(msg: Num) -> Any:
        if msg.x:
            return mageflow.Continue(await local.sign(task["leaf"], x=msg.x))
        return {"v": msg.x}

    async def chained(x: int) -> Counter[str]:
        first = await local.sign(maybe_continue, x=x)
        chain = await local.chain([first, "leaf"])
        return await cost(round_trips, local, chain.aio_run_no_wait())

    await chained(1)  # every script is loaded from here on
    direct, continued = await chained(0), await chained(1)
    # As at the top level (six), and one read more: a step of a chain has
    # no depth of its own, so the chain's record answers how deep it is.
    assert continued - direct == Counter(
        {
            "CREATE": 1,
            "HANDOVER": 1,
            "ACTIVATE": 1,
            "FINISH": 1,
            "HGETALL": 2,  # the chain (the depth), then the task (the relay)
            "MARK_SENT": 1,
        }
    )
    assert not await recover()


# --- (d) per-item swarm callbacks -------------------------------------------------

ITEM_CALLBACKS = {"item_success": "leaf", "item_error": ["leaf"]}


@pytest.mark.parametrize("size", [1, 100])
async def test_per_item_callbacks_add_no_round_trip_to_creating_a_swarm(
    local: HatchetMageflow,
    round_trips: RoundTrips,
    recover: Callable[[], Awaitable[bool]],
    size: int,
) -> None:
    task = tasks(local)

    async def created(**callbacks: Any) -> Counter[str]:
        items = [await local.sign(task["leaf"], x=i) for i in range(size)]
        round_trips.reset()
        await local.swarm(items, max_concurrency=3, **callbacks)
        return round_trips.commands

    await created(**ITEM_CALLBACKS)  # every script is loaded from here on
    without, with_callbacks = await created(), await created(**ITEM_CALLBACKS)
    # The swarm's record and, with callbacks, each item's own copies of
    # them, in one script; then the items join it and it closes, in one.
    assert without == with_callbacks == Counter({"CREATE": 1, "SWARM_ADD": 1})
    assert not await recover()


async def test_an_item_callback_costs_its_own_run_and_nothing_more(
    local: HatchetMageflow,
    round_trips: RoundTrips,
    recover: Callable[[], Awaitable[bool]],
) -> None:
    task = tasks(local)

    async def ran(**callbacks: Any) -> Counter[str]:
        items = [await local.sign(task["leaf"], x=i) for i in range(10)]
        swarm = await local.swarm(items, max_concurrency=3, **callbacks)
        return await cost(round_trips, local, swarm.aio_run_no_wait())

    await ran(**ITEM_CALLBACKS)  # every script is loaded from here on
    without, with_callbacks = await ran(), await ran(**ITEM_CALLBACKS)
    # Each item's FINISH_ITEM owes its callback's start with its outcome (no
    # MARK_DUE); the callback then runs as any task: ACTIVATE, FINISH.
    assert with_callbacks - without == Counter({"ACTIVATE": 10, "FINISH": 10})
    assert not await recover()


async def test_adding_items_with_callbacks_costs_one_round_trip_more(
    local: HatchetMageflow,
    round_trips: RoundTrips,
    recover: Callable[[], Awaitable[bool]],
) -> None:
    task = tasks(local)

    async def added(**callbacks: Any) -> Counter[str]:
        swarm = await local.swarm(max_concurrency=3, **callbacks)
        items = [await local.sign(task["leaf"], x=i) for i in range(5)]
        round_trips.reset()
        await swarm.add(items)
        counted = round_trips.commands
        await swarm.close()
        await swarm.aio_run_no_wait()
        await backend(local).drain()
        return counted

    await added(**ITEM_CALLBACKS)  # every script is loaded from here on
    without, with_callbacks = await added(), await added(**ITEM_CALLBACKS)
    assert without == Counter({"SWARM_ADD": 1})
    # Unlike at creation, the items' copies of the callbacks are stored in
    # a round trip of their own, before the items that fire them are added.
    assert with_callbacks == Counter({"CREATE": 1, "SWARM_ADD": 1})
    assert not await recover()
