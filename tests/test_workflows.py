"""Chains and swarms on the local backend and a real Redis."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from pydantic import BaseModel
from roundtrips import RoundTrips

import mageflow
from mageflow import HatchetMageflow, SignatureStatus, TaskError
from mageflow.dispatch.local import LocalDispatcher
from mageflow.engine.kinds import KINDS


class Step(BaseModel):
    result: Any = None
    x: int = 0


class Collected(BaseModel):
    result: Any = None


def backend(client: HatchetMageflow) -> LocalDispatcher:
    assert isinstance(client.dispatch_backend, LocalDispatcher)
    return client.dispatch_backend


class Probe:
    """Counts calls and the peak number of concurrent executions."""

    def __init__(self) -> None:
        self.calls: Counter[int] = Counter()
        self.running = 0
        self.peak = 0
        self.collected: list[Any] = []
        self.errors: list[Any] = []


@pytest.fixture
def probe(local: HatchetMageflow) -> Probe:
    probe = Probe()

    @local.task(name="inc")
    async def inc(msg: Step) -> dict[str, int]:
        value = msg.result["v"] if isinstance(msg.result, dict) else msg.x
        probe.calls[value] += 1
        probe.running += 1
        probe.peak = max(probe.peak, probe.running)
        try:
            await asyncio.sleep(0)  # ok: yield, so runs overlap
        finally:
            probe.running -= 1
        return {"v": value + 1}

    @local.task(name="boom")
    async def boom(msg: Step) -> None:
        raise RuntimeError(f"boom {msg.x}")

    @local.task(name="collect")
    async def collect(msg: Collected) -> None:
        probe.collected.append(msg.result)

    @local.task(name="on-error")
    async def on_error(msg: Collected) -> None:
        probe.errors.append(msg.result)

    return probe


async def status(client: HatchetMageflow, signature_id: str) -> SignatureStatus:
    signature = await client.load_signature(signature_id)
    assert signature is not None
    return signature.status


# --- chains --------------------------------------------------------------------


async def test_chain_passes_each_result_on_and_ends_done(
    local: HatchetMageflow, probe: Probe
) -> None:
    chain = await mageflow.chain(["inc", "inc", "inc"], success="collect")
    await chain.aio_run_no_wait({"x": 1})
    await backend(local).drain()
    assert probe.collected == [{"v": 4}]
    assert probe.calls == Counter({1: 1, 2: 1, 3: 1})
    assert await status(local, chain.id) is SignatureStatus.DONE


async def test_chain_needs_two_steps(local: HatchetMageflow, probe: Probe) -> None:
    with pytest.raises(ValueError, match="at least two steps"):
        await local.chain(["inc"])


async def test_failing_step_stops_the_chain_and_fires_errors(
    local: HatchetMageflow, probe: Probe
) -> None:
    step_error = await local.sign("on-error")
    failing = await local.sign("boom", error=step_error)
    chain = await local.chain(
        ["inc", failing, "inc"], success="collect", error="on-error"
    )
    await chain.aio_run_no_wait({"x": 1})
    await backend(local).drain()
    assert probe.calls == Counter({1: 1})  # the third step never ran
    assert probe.collected == []
    assert len(probe.errors) == 2  # the step's own, and the chain's
    for payload in probe.errors:
        error = TaskError.model_validate(payload)
        assert error.signature_id == failing.id
        assert error.error_type == "RuntimeError"
    assert await status(local, chain.id) is SignatureStatus.FAILED
    # the step after the failure never runs, and ends instead of waiting
    assert await status(local, chain.steps[2]) is SignatureStatus.INTERRUPTED


async def test_paused_chain_resumes_where_it_stopped(
    local: HatchetMageflow, probe: Probe
) -> None:
    chain = await local.chain(["inc", "inc", "inc"], success="collect")
    await mageflow.pause(chain.id)
    first, second, _ = chain.steps
    await mageflow.resume(chain.id)
    await mageflow.pause(second)  # the next step waits
    await chain.aio_run_no_wait({"x": 1})
    await backend(local).drain()
    assert probe.calls == Counter({1: 1})
    assert await status(local, first) is SignatureStatus.DONE
    await mageflow.resume(second)
    await backend(local).drain()
    assert probe.calls == Counter({1: 1, 2: 1, 3: 1})
    assert probe.collected == [{"v": 4}]


async def test_stopped_chain_runs_nothing(local: HatchetMageflow, probe: Probe) -> None:
    chain = await local.chain(["inc", "inc"])
    await mageflow.stop(chain.id)
    await chain.aio_run_no_wait({"x": 1})
    await backend(local).drain()
    assert probe.calls == Counter()
    for step in chain.steps:
        assert await status(local, step) is SignatureStatus.CANCELED


# --- swarms --------------------------------------------------------------------


async def test_thousand_items_cap_fifty_exactly_once_in_order(
    local: HatchetMageflow, probe: Probe
) -> None:
    items = [await local.sign("inc", x=i) for i in range(1000)]
    swarm = await mageflow.swarm(items, max_concurrency=50, success="collect")
    await swarm.aio_run_no_wait({})
    await swarm.close()
    await backend(local).drain(timeout=120)
    assert 1 < probe.peak <= 50  # measured, not assumed
    assert probe.calls == Counter({i: 1 for i in range(1000)})
    assert len(probe.collected) == 1  # the callback fired once
    assert probe.collected[0] == [{"v": i + 1} for i in range(1000)]
    assert await status(local, swarm.id) is SignatureStatus.DONE


async def test_swarm_grows_while_running_and_refuses_after_close(
    local: HatchetMageflow, probe: Probe
) -> None:
    swarm = await local.swarm(max_concurrency=2, success="collect")
    await swarm.aio_run_no_wait({})
    await swarm.add([await local.sign("inc", x=i) for i in range(3)])
    await swarm.add(await local.sign("inc", x=3))
    await swarm.close()
    with pytest.raises(mageflow.InvalidTransitionError, match="closed"):
        await swarm.add("inc")
    await backend(local).drain()
    assert probe.collected == [[{"v": 1}, {"v": 2}, {"v": 3}, {"v": 4}]]


async def test_max_tasks_closes_the_swarm(local: HatchetMageflow, probe: Probe) -> None:
    swarm = await local.swarm(max_tasks=2, success="collect")
    await swarm.add([await local.sign("inc", x=i) for i in range(2)])
    with pytest.raises(mageflow.InvalidTransitionError):
        await swarm.add("inc")
    await swarm.aio_run_no_wait({})
    await backend(local).drain()
    assert probe.collected == [[{"v": 1}, {"v": 2}]]


async def test_failures_reach_the_threshold_once(
    local: HatchetMageflow, probe: Probe
) -> None:
    items = [await local.sign("boom", x=i) for i in range(5)]
    swarm = await local.swarm(
        items, max_concurrency=1, stop_after_n_failures=2, error="on-error"
    )
    await swarm.close()
    await swarm.aio_run_no_wait({})
    await backend(local).drain()
    assert len(probe.errors) == 1
    assert probe.errors[0]["error_type"] == "SwarmFailed"
    assert await status(local, swarm.id) is SignatureStatus.FAILED
    ran = [r for r in backend(local).runs if r.task_name == "boom"]
    assert len(ran) == 2  # no item started after the threshold


async def test_a_failing_swarm_interrupts_its_chains_all_the_way_down(
    local: HatchetMageflow, probe: Probe
) -> None:
    """A swarm of chains reaching ``stop_after_n_failures`` stops each chain
    with everything in it: no later step of any chain runs, and every step
    ends in a final status."""
    release = asyncio.Event()
    failed = asyncio.Event()
    after: list[Any] = []
    swarm_errors: list[Any] = []

    @local.task(name="gate")
    async def gate(msg: Step) -> dict[str, int]:
        await release.wait()
        return {"v": msg.x}

    @local.task(name="after")
    async def after_step(msg: Step) -> None:
        after.append(msg.result)

    @local.task(name="swarm-failed")
    async def swarm_failed(msg: Collected) -> None:
        swarm_errors.append(msg.result)
        failed.set()

    failing = await local.chain(["boom", "after"])
    held = [
        await local.chain([await local.sign("gate", x=i), "after"]) for i in range(2)
    ]
    queued = await local.chain(["gate", "after"])  # no slot left for it
    swarm = await local.swarm(
        [*held, failing, queued],
        max_concurrency=3,
        stop_after_n_failures=1,
        error="swarm-failed",
    )
    await swarm.close()
    await swarm.aio_run_no_wait({})
    await asyncio.wait_for(failed.wait(), timeout=10)
    release.set()  # the gates that were running finish now, too late
    await backend(local).drain()

    assert after == []  # no chain reached its second step
    assert len(swarm_errors) == 1
    assert swarm_errors[0]["error_type"] == "SwarmFailed"
    assert await status(local, failing.id) is SignatureStatus.FAILED
    assert not [r for r in backend(local).runs if r.task_name == "after"]
    assert len([r for r in backend(local).runs if r.task_name == "gate"]) == 2
    for chain in [*held, queued]:
        assert await status(local, chain.id) is SignatureStatus.INTERRUPTED
        for step in chain.steps:
            assert await status(local, step) is SignatureStatus.INTERRUPTED
    first, second = failing.steps
    assert await status(local, first) is SignatureStatus.FAILED
    assert await status(local, second) is SignatureStatus.INTERRUPTED


async def test_failed_items_hold_typed_entries_in_their_slots(
    local: HatchetMageflow, probe: Probe
) -> None:
    items = [
        await local.sign("inc", x=0),
        await local.sign("boom", x=1),
        await local.sign("inc", x=2),
    ]
    swarm = await local.swarm(items, success="collect")
    await swarm.close()
    await swarm.aio_run_no_wait({})
    await backend(local).drain()
    (results,) = probe.collected
    assert results[0] == {"v": 1}
    assert TaskError.model_validate(results[1]).message == "boom 1"
    assert results[2] == {"v": 3}


async def test_swarm_as_a_chain_step_passes_its_ordered_list(
    local: HatchetMageflow, probe: Probe
) -> None:
    swarm = await local.swarm([await local.sign("inc", x=i) for i in range(3)])
    await swarm.close()
    chain = await local.chain(["inc", swarm, "collect"])
    await chain.aio_run_no_wait({"x": 10})
    await backend(local).drain()
    # every item got step one's result (11) and the list reached the last step
    assert probe.collected == [[{"v": 12}, {"v": 12}, {"v": 12}]]
    assert await status(local, chain.id) is SignatureStatus.DONE


async def test_replayed_item_finish_starts_nothing_twice(
    local: HatchetMageflow, probe: Probe
) -> None:
    """Duplicate delivery of every item run: nothing runs twice."""
    items = [await local.sign("inc", x=i) for i in range(20)]
    swarm = await local.swarm(items, max_concurrency=3, success="collect")
    await swarm.close()
    await swarm.aio_run_no_wait({})
    await backend(local).drain()
    from mageflow.dispatch import RunRequest

    for run in list(backend(local).runs):
        await local.dispatch_backend.trigger(
            RunRequest(run.task_name, run.input, run.metadata)
        )
    await backend(local).drain()
    assert probe.calls == Counter({i: 1 for i in range(20)})
    assert len(probe.collected) == 1


# --- crashes, lifecycle, cost ----------------------------------------------------


_REAL_TRIGGER = LocalDispatcher.trigger


def _die_on(monkeypatch: pytest.MonkeyPatch, calls: set[int]) -> list[int]:
    """Fault injection: the dispatch numbered in ``calls`` dies before sending."""
    real = _REAL_TRIGGER
    count = [0]

    async def trigger(self: LocalDispatcher, request: Any) -> str:
        count[0] += 1
        if count[0] in calls:
            raise ConnectionError(f"worker died before dispatch #{count[0]}")
        return await real(self, request)

    monkeypatch.setattr(LocalDispatcher, "trigger", trigger)
    return count


async def _redeliver_failures(client: HatchetMageflow) -> int:
    """Hatchet's side: re-deliver every run whose worker died, until none."""
    from mageflow.dispatch import RunRequest
    from mageflow.dispatch.local import RunState

    redelivered: set[str] = set()
    total = 0
    while True:
        await backend(client).drain(timeout=60)
        dead = [
            r
            for r in backend(client).runs
            if r.state is RunState.FAILED
            and isinstance(r.error, ConnectionError)
            and r.run_id not in redelivered
        ]
        if not dead:
            return total
        for run in dead:
            redelivered.add(run.run_id)
            total += 1
            # The engine re-delivers; that is not a worker dispatch.
            await _REAL_TRIGGER(
                backend(client), RunRequest(run.task_name, run.input, run.metadata)
            )


async def test_swarm_survives_dying_workers_without_losing_or_repeating(
    local: HatchetMageflow, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [await local.sign("inc", x=i) for i in range(40)]
    swarm = await local.swarm(items, max_concurrency=4, success="collect")
    await swarm.close()
    sent = _die_on(monkeypatch, {5, 9, 10, 17, 30, 41})
    await swarm.aio_run_no_wait({})
    # The lost starts were recorded as owed: drain's recovery sends them.
    await _redeliver_failures(local)
    assert sent[0] > 41  # every fault was hit
    assert probe.calls == Counter({i: 1 for i in range(40)})
    assert probe.collected == [[{"v": i + 1} for i in range(40)]]
    assert probe.peak <= 4


async def test_chain_survives_dying_workers_without_losing_or_repeating(
    local: HatchetMageflow, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = await local.chain(["inc"] * 10, success="collect")
    sent = _die_on(monkeypatch, {2, 3, 6, 11})
    await chain.aio_run_no_wait({"x": 0})
    await _redeliver_failures(local)
    assert sent[0] > 11  # every fault was hit
    assert probe.calls == Counter({i: 1 for i in range(10)})
    assert probe.collected == [{"v": 10}]


async def test_paused_swarm_starts_nothing_until_resumed(
    local: HatchetMageflow, probe: Probe
) -> None:
    gate = asyncio.Event()
    two_started = asyncio.Event()
    started: list[int] = []

    @local.task(name="gated")
    async def gated(msg: Step) -> dict[str, int]:
        started.append(msg.x)
        if len(started) == 2:
            two_started.set()
        await gate.wait()
        return {"v": msg.x}

    items = [await local.sign("gated", x=i) for i in range(6)]
    swarm = await local.swarm(items, max_concurrency=2, success="collect")
    await swarm.close()
    await swarm.aio_run_no_wait({})

    await asyncio.wait_for(two_started.wait(), 5)
    await mageflow.pause(swarm.id)
    gate.set()
    await backend(local).drain()
    assert sorted(started) == [0, 1]  # nothing new started while paused
    assert probe.collected == []

    await mageflow.resume(swarm.id)
    await backend(local).drain()
    assert sorted(started) == list(range(6))
    assert probe.collected == [[{"v": i} for i in range(6)]]


async def test_round_trips_per_item_do_not_grow_with_the_swarm(
    local: HatchetMageflow, probe: Probe, round_trips: RoundTrips
) -> None:
    recover = backend(local).on_idle
    backend(local).on_idle = None  # count the workflow alone, not recovery

    async def total(size: int) -> int:
        swarm = await local.swarm([await local.sign("inc", x=i) for i in range(size)])
        await swarm.close()
        round_trips.reset()
        await swarm.aio_run_no_wait({})
        await backend(local).drain()
        return round_trips.count

    await total(10)  # the server has every script loaded from here on
    small, large = await total(10), await total(1000)
    # Each item beyond the first ten costs exactly ACTIVATE and FINISH_ITEM
    # (its outcome and its swarm's step in one script); the swarm's start
    # and completion are the same whatever the size.
    assert (large - small) / 990 == 2
    assert round_trips.commands == Counter(
        {"EVALSHA": large - 2, "HGETALL": 1, "HMGET": 1}
    )
    assert recover is not None
    assert not await recover()  # and nothing was left owed


@pytest.mark.parametrize(
    "how",
    [
        "chain of refs",
        "chain of signatures",
        "swarm of refs",
        "swarm of signatures",
        "add refs",
        "add signatures",
    ],
)
async def test_creating_work_costs_the_same_whatever_the_size(
    local: HatchetMageflow, probe: Probe, round_trips: RoundTrips, how: str
) -> None:
    async def cost(n: int) -> int:
        presigned = [await local.sign("inc", x=i) for i in range(n)]
        work: list[Any] = presigned if how.endswith("signatures") else ["inc"] * n
        opened = await local.swarm([], open=True) if how.startswith("add") else None
        round_trips.reset()
        if how.startswith("chain"):
            await local.chain(work)
        elif opened is None:
            await local.swarm(work, max_concurrency=5)
        else:
            await opened.add(work)
        return round_trips.count

    await cost(2)  # every script is loaded from here on
    assert await cost(10) == await cost(1000) <= 2


@pytest.mark.parametrize("kind", ["chain", "swarm", "swarm of chains"])
async def test_lifecycle_costs_the_same_whatever_the_size(
    local: HatchetMageflow, probe: Probe, round_trips: RoundTrips, kind: str
) -> None:
    async def build(n: int) -> mageflow.TaskSignature[Any]:
        if kind == "chain":
            return await local.chain(["inc"] * n)
        if kind == "swarm":
            return await local.swarm(["inc"] * n, max_concurrency=3)
        chains = [await local.chain(["inc", "inc"]) for _ in range(n)]
        return await local.swarm(chains, max_concurrency=3)

    async def costs(n: int) -> dict[str, int]:
        workflow = await build(n)
        paid = {}
        for name, action in (
            ("pause", local.pause),
            ("resume", local.resume),
            ("stop", local.stop),
            ("remove", local.remove),
        ):
            round_trips.reset()
            await action(workflow.id)
            paid[name] = round_trips.count
        assert await local.load_signature(workflow.id) is None
        return paid

    await costs(2)  # every script is loaded from here on
    small, large = (
        await costs(10),
        await costs(1000 if kind != "swarm of chains" else 300),
    )
    assert small == large
    # Reading the tree costs a round trip per level; then one script moves it.
    levels = 3 if kind == "swarm of chains" else 2
    assert large == {
        "pause": levels + 1,
        "resume": levels + 1,
        "stop": levels + 1,
        # It reads the record (a child is stopped first), then the tree with
        # its callbacks, a level per round trip, then it goes.
        "remove": levels + 2,
    }


async def test_the_tree_lifecycle_reaches_is_the_tree_the_kinds_list(
    local: HatchetMageflow, probe: Probe
) -> None:
    inner = await local.chain(["inc", "inc"])
    middle = await local.swarm(["inc", inner], max_concurrency=1)
    outer = await local.chain(["inc", middle, "inc"])
    expected: list[str] = []

    async def walk(signature_id: str) -> None:
        expected.append(signature_id)
        for child in await cascade_children(local, signature_id):
            await walk(child)

    await walk(outer.id)
    assert await local.store.subtree(outer.id) == expected
    assert len(expected) == 8


async def cascade_children(local: HatchetMageflow, signature_id: str) -> list[str]:
    signature = await local.load_signature(signature_id)
    assert signature is not None
    kind = KINDS.get(signature.kind)
    if kind is None:
        return []
    return [child for _, child in await kind.children(local.store, signature)]


async def test_chain_inside_a_swarm_counts_as_one_item(
    local: HatchetMageflow, probe: Probe
) -> None:
    inner = await local.chain(["inc", "inc"])
    swarm = await local.swarm(
        [await local.sign("inc", x=10), inner], max_concurrency=2, success="collect"
    )
    await swarm.close()
    await swarm.aio_run_no_wait({})
    await backend(local).drain()
    assert probe.collected == [[{"v": 11}, {"v": 2}]]
    assert await status(local, inner.id) is SignatureStatus.DONE


async def test_pausing_a_chain_mid_step_holds_the_rest_until_resume(
    local: HatchetMageflow, probe: Probe
) -> None:
    gate = asyncio.Event()
    entered = asyncio.Event()

    @local.task(name="slow-first")
    async def slow_first(msg: Step) -> dict[str, int]:
        entered.set()
        await gate.wait()
        return {"v": msg.x + 1}

    chain = await local.chain(["slow-first", "inc", "inc"], success="collect")
    await chain.aio_run_no_wait({"x": 1})
    await asyncio.wait_for(entered.wait(), 5)
    await mageflow.pause(chain.id)
    gate.set()
    await backend(local).drain()
    assert probe.calls == Counter()  # the running step finished, nothing after it
    assert await status(local, chain.id) is SignatureStatus.SUSPENDED

    await mageflow.resume(chain.id)
    await backend(local).drain()
    assert probe.calls == Counter({2: 1, 3: 1})  # continued, not restarted
    assert probe.collected == [{"v": 4}]
    assert await status(local, chain.id) is SignatureStatus.DONE


async def test_an_item_whose_input_conflicts_fails_and_the_swarm_still_ends(
    local: HatchetMageflow, probe: Probe
) -> None:
    swarm = await local.swarm(
        [await local.sign("inc", x=1), await local.sign("inc", x=2)],
        success="collect",
    )
    await swarm.close()
    await swarm.aio_run_no_wait({"x": 2})  # equal to item 2's x, not item 1's
    await backend(local).drain()
    (results,) = probe.collected
    assert TaskError.model_validate(results[0]).error_type == "InputConflictError"
    assert results[1] == {"v": 3}


async def test_chain_inside_a_chain_passes_results_through(
    local: HatchetMageflow, probe: Probe
) -> None:
    inner = await local.chain(["inc", "inc"])
    outer = await local.chain(["inc", inner, "inc"], success="collect")
    await outer.aio_run_no_wait({"x": 1})
    await backend(local).drain()
    assert probe.calls == Counter({1: 1, 2: 1, 3: 1, 4: 1})
    assert probe.collected == [{"v": 5}]
    for signature_id in (inner.id, outer.id):
        assert await status(local, signature_id) is SignatureStatus.DONE
