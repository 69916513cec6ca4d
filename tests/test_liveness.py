"""Every workflow reaches an end: the fifteen ways it used to hang, one each.

Each test below is one case that left a signature, chain or swarm ``active``
or ``pending`` forever (nothing raised, ``drain()`` returned, the worker was
idle). They run on the local backend over a real Redis; a few inject real
faults (a Redis that goes away, a dispatch that dies, a fresh process that
recovers).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from faults import RedisProxy
from pydantic import BaseModel

import mageflow
from mageflow import HatchetMageflow, ReturnValue, SignatureStatus, TaskError
from mageflow.dispatch import DISPATCH_ID, SIGNATURE_ID, RunRequest
from mageflow.dispatch.local import LocalDispatcher, RunState
from mageflow.store import keys


class Step(BaseModel):
    result: Any = None
    x: int = 0


class Collected(BaseModel):
    result: Any = None


class Priced(BaseModel):
    total: float


class Totals(BaseModel):
    prices: ReturnValue[list[Priced]]


def backend(client: HatchetMageflow) -> LocalDispatcher:
    assert isinstance(client.dispatch_backend, LocalDispatcher)
    return client.dispatch_backend


async def status(client: HatchetMageflow, signature_id: str) -> SignatureStatus:
    signature = await client.load_signature(signature_id)
    assert signature is not None, signature_id
    return signature.status


class Seen:
    """What the tasks of :func:`declare` saw."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.results: list[Any] = []
        self.errors: list[TaskError] = []
        self.gate = asyncio.Event()
        self.started = asyncio.Event()


def declare(client: HatchetMageflow, seen: Seen) -> None:
    """The same task definitions, for any client (a "fresh process" too)."""

    @client.task(name="inc")
    async def inc(msg: Step) -> dict[str, int]:
        seen.calls["inc"] += 1
        value = msg.result["v"] if isinstance(msg.result, dict) else msg.x
        return {"v": value + 1}

    @client.task(name="boom")
    async def boom(msg: Step) -> None:
        seen.calls["boom"] += 1
        raise RuntimeError(f"boom {msg.x}")

    @client.task(name="wait", execution_timeout=timedelta(milliseconds=300))
    async def wait(msg: Step) -> dict[str, int]:
        seen.calls["wait"] += 1
        seen.started.set()
        await seen.gate.wait()
        return {"v": msg.x}

    @client.task(name="collect")
    async def collect(msg: Collected) -> None:
        seen.calls["collect"] += 1
        seen.results.append(msg.result)

    @client.task(name="on-error")
    async def on_error(msg: Collected) -> None:
        seen.calls["on-error"] += 1
        seen.errors.append(TaskError.model_validate(msg.result))

    @client.task(name="price")
    async def price(msg: Step) -> dict[str, float]:
        seen.calls["price"] += 1
        return {"total": msg.x * 1.5}

    @client.task(name="total")
    async def total(msg: Totals) -> dict[str, float]:
        seen.calls["total"] += 1
        return {"total": sum(p.total for p in msg.prices)}


@pytest.fixture
def seen(local: HatchetMageflow) -> Seen:
    seen = Seen()
    declare(local, seen)
    return seen


# --- 1. a timeout ----------------------------------------------------------------


async def test_01_a_timeout_fails_the_signature_and_its_workflow_ends(
    local: HatchetMageflow, seen: Seen
) -> None:
    stuck = await local.sign("wait", error="on-error")
    chain = await local.chain([await local.sign("wait"), "inc"], error="on-error")
    swarm = await local.swarm(
        [await local.sign("wait"), await local.sign("inc", x=1)],
        max_concurrency=1,
        success="collect",
    )
    await swarm.close()
    await stuck.aio_run_no_wait({})
    await chain.aio_run_no_wait({})
    await swarm.aio_run_no_wait({})
    await backend(local).drain()

    assert await status(local, stuck.id) is SignatureStatus.FAILED
    assert await status(local, chain.id) is SignatureStatus.FAILED
    assert await status(local, swarm.id) is SignatureStatus.DONE  # the slot came back
    kinds = Counter(error.kind for error in seen.errors)
    assert kinds == Counter({"timeout": 2})  # the task's and the chain's, once each
    (results,) = seen.results
    assert TaskError.model_validate(results[0]).kind == "timeout"
    assert results[1] == {"v": 2}


# --- 2. an input that fails validation ------------------------------------------


async def test_02_an_invalid_input_fails_the_step_naming_the_field(
    local: HatchetMageflow, seen: Seen
) -> None:
    # A swarm with one failed item: its slot holds a TaskError, which is not
    # a Priced, so the next step's ReturnValue[list[Priced]] cannot validate.
    swarm = await local.swarm(
        [await local.sign("price", x=1), await local.sign("boom")]
    )
    await swarm.close()
    chain = await local.chain([swarm, "total"], error="on-error")
    await chain.aio_run_no_wait({})
    await backend(local).drain()

    assert await status(local, chain.id) is SignatureStatus.FAILED
    (error,) = seen.errors
    assert error.kind == "validation"
    assert error.task_name == "total"
    # The failed item's slot (position 1) is what does not validate.
    assert [e["loc"][:2] for e in error.errors] == [["prices", 1]]
    assert "prices.1.total" in error.message
    assert seen.calls["total"] == 0


# --- 3. Redis away for two seconds ------------------------------------------------


@pytest.fixture
async def proxied(redis_url: str) -> Any:
    proxy = RedisProxy(redis_url)
    url = await proxy.start()
    client = mageflow.Mageflow(redis_client=url, backend="local")
    await client.redis.flushdb()
    seen = Seen()
    declare(client, seen)
    try:
        with client.use():
            yield client, seen, proxy
    finally:
        await backend(client).close()
        await client.store.connection.aclose()
        await proxy.close()


async def test_03_a_redis_outage_mid_swarm_and_mid_chain_loses_nothing(
    proxied: Any,
) -> None:
    client, seen, proxy = proxied
    swarm = await client.swarm(
        [await client.sign("inc", x=i) for i in range(200)],
        max_concurrency=20,
        success="collect",
    )
    await swarm.close()
    chain = await client.chain(["inc"] * 5, success="collect")
    await swarm.aio_run_no_wait({})
    await chain.aio_run_no_wait({"x": 0})
    await proxy.outage(2.0)
    await backend(client).drain(timeout=60)

    assert proxy.refused > 0  # the outage was real
    assert await status(client, swarm.id) is SignatureStatus.DONE
    assert await status(client, chain.id) is SignatureStatus.DONE
    assert seen.calls["inc"] == 205  # every body once
    assert sorted(map(str, seen.results)) == sorted(
        map(str, [[{"v": i + 1} for i in range(200)], {"v": 5}])
    )


# --- 4. a crash between a swarm's start and its triggers -------------------------


async def test_04_a_crash_after_the_start_script_loses_no_item(
    local: HatchetMageflow, seen: Seen, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    swarm = await local.swarm(
        [await local.sign("inc", x=i) for i in range(10)],
        max_concurrency=4,
        success="collect",
    )
    await swarm.close()

    async def die(self: LocalDispatcher, requests: Any) -> list[str]:
        raise SystemExit("the worker died after SWARM_START")  # not an Exception

    monkeypatch.setattr(LocalDispatcher, "trigger_many", die)
    with pytest.raises(SystemExit):
        await swarm.aio_run_no_wait({})
    monkeypatch.undo()

    # A fresh process with the same task definitions recovers.
    fresh = mageflow.Mageflow(redis_client=redis_url, backend="local")
    again = Seen()
    declare(fresh, again)
    try:
        report = await fresh.recover(grace=timedelta(0))
        await backend(fresh).drain()
        assert len(report.resent) == 4  # the four items that had taken a slot
        assert await status(fresh, swarm.id) is SignatureStatus.DONE
        assert again.calls["inc"] == 10
        assert again.results == [[{"v": i + 1} for i in range(10)]]
    finally:
        await fresh.store.connection.aclose()


# --- 5. a callback dispatch that fails after the outcome is recorded -------------


async def test_05_callbacks_lost_after_finish_are_sent_by_recovery(
    local: HatchetMageflow, seen: Seen, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = LocalDispatcher.trigger
    failed: list[str] = []

    async def flaky(self: LocalDispatcher, request: RunRequest) -> str:
        if request.task_name == "collect" and not failed:
            failed.append(request.task_name)
            raise ConnectionError("the engine did not take the callback")
        return await real(self, request)

    monkeypatch.setattr(LocalDispatcher, "trigger", flaky)
    signature = await local.sign("inc", success="collect")
    run_id = await signature.aio_run_no_wait({"x": 1})
    await backend(local).drain()

    assert failed == ["collect"]  # the fault happened
    (run,) = [r for r in backend(local).runs if r.run_id == run_id]
    assert run.state is RunState.SUCCEEDED
    assert run.attempts == 1  # retries=0
    assert seen.results == [{"v": 2}]  # sent again, once
    assert await local.redis.hget(keys.signature(signature.id), "sent") == "1"


# --- 6. one bad callback among healthy ones ---------------------------------------


async def test_06_a_corrupt_or_unknown_callback_fails_alone(
    local: HatchetMageflow, seen: Seen, redis_url: str
) -> None:
    # A callback whose task only another process declares.
    other = mageflow.Mageflow(redis_client=redis_url, backend="local")

    @other.task(name="elsewhere")
    async def elsewhere(msg: Collected) -> None:
        return None

    @other.task(name="on-error")  # the same name as ours: ours will run it
    async def other_on_error(msg: Collected) -> None:
        return None

    try:
        unknown = await other.sign("elsewhere", error="on-error")
    finally:
        await other.store.connection.aclose()
    corrupt = await local.sign("collect")
    await local.redis.hset(keys.signature(corrupt.id), "v", "999")
    healthy = await local.sign("collect")
    signature = await local.sign("inc", success=[unknown, corrupt, healthy])
    await signature.aio_run_no_wait({"x": 1})
    await backend(local).drain()

    assert seen.results == [{"v": 2}]  # the healthy sibling ran
    assert await status(local, unknown.id) is SignatureStatus.FAILED
    (error,) = seen.errors  # the unknown one's own error callback
    assert error.kind == "unknown_task"
    assert error.task_name == "elsewhere"
    assert await local.redis.hget(keys.signature(signature.id), "sent") == "1"


# --- 7. swarm slots that never came back ------------------------------------------


async def test_07_every_item_gives_its_slot_back(
    local: HatchetMageflow, seen: Seen
) -> None:
    held = await local.sign("wait")
    swarm = await local.swarm(
        [held, await local.sign("inc", x=1)], max_concurrency=1, success="collect"
    )
    await swarm.close()
    await swarm.aio_run_no_wait({})
    await asyncio.wait_for(seen.started.wait(), 5)
    await held.stop()  # the item holding the only slot
    await backend(local).drain()
    assert await status(local, swarm.id) is SignatureStatus.DONE
    (results,) = seen.results
    assert TaskError.model_validate(results[0]).kind == "cancelled"
    assert results[1] == {"v": 2}

    # Items that could never report back are refused, and nothing is added.
    finished = await local.sign("inc")
    await finished.aio_run({"x": 0})
    gone = await local.sign("inc")
    await gone.remove()
    twice = await local.sign("inc")
    other = await local.swarm()
    for bad, why in [
        ([twice, twice], "twice"),
        ([finished], "not pending"),
        ([gone], "missing"),
    ]:
        with pytest.raises(mageflow.InvalidTransitionError, match=why):
            await other.add(bad)
    await other.add(twice)
    with pytest.raises(mageflow.InvalidTransitionError, match="added to a swarm"):
        await other.add(twice)
    assert await local.redis.llen(keys.swarm_items(other.id)) == 1


# --- 8. adding to a swarm that is not open ----------------------------------------


async def test_08_add_refuses_a_swarm_that_is_not_open(
    local: HatchetMageflow, seen: Seen
) -> None:
    stopped = await local.swarm()
    await stopped.stop()
    failed = await local.swarm(
        [await local.sign("boom")], stop_after_n_failures=1, error="on-error"
    )
    await failed.close()
    await failed.aio_run_no_wait({})
    await backend(local).drain()
    assert await status(local, failed.id) is SignatureStatus.FAILED
    removed = await local.swarm()
    await removed.remove()

    for swarm, why in [(stopped, "canceled"), (failed, "failed"), (removed, "exist")]:
        item = await local.sign("inc")
        with pytest.raises(mageflow.InvalidTransitionError, match=why):
            await swarm.add(item)
        assert await status(local, item.id) is SignatureStatus.PENDING  # untouched
    with pytest.raises(mageflow.InvalidTransitionError):
        await removed.add("inc")
    assert not await local.redis.keys(
        f"{keys.PREFIX}:swarm:{removed.id}*"
    )  # no orphans


# --- 9. concurrent duplicate deliveries -------------------------------------------


async def test_09_a_hundred_concurrent_deliveries_run_the_body_once(
    local: HatchetMageflow, seen: Seen
) -> None:
    @local.task(name="held")
    async def held(msg: Step) -> dict[str, int]:
        seen.calls["held"] += 1
        await seen.gate.wait()  # still running while the others arrive
        return {"v": msg.x}

    signature = await local.sign("held", success="collect")
    metadata = {SIGNATURE_ID: signature.id, DISPATCH_ID: "one-dispatch"}
    await asyncio.gather(
        *(
            local.dispatch_backend.trigger(RunRequest("held", {"x": 1}, metadata))
            for _ in range(100)
        )
    )

    async def all_but_one_ended() -> None:
        # The runs are not awaitable one by one: poll, under a timeout.
        while sum(r.state is not RunState.RUNNING for r in backend(local).runs) < 99:  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # ok: polling a condition, under a timeout

    await asyncio.wait_for(all_but_one_ended(), 10)
    seen.gate.set()
    await backend(local).drain()
    assert seen.calls["held"] == 1
    assert seen.results == [{"v": 1}]


# --- 10. a run of one task carrying another's signature ---------------------------


async def test_10_a_run_carrying_another_tasks_signature_is_refused(
    local: HatchetMageflow, seen: Seen
) -> None:
    theirs = await local.sign("collect")
    await local.dispatch_backend.trigger(
        RunRequest("inc", {"x": 1}, {SIGNATURE_ID: theirs.id, DISPATCH_ID: "d"})
    )
    await backend(local).drain()
    (run,) = backend(local).runs
    assert isinstance(run.error, mageflow.errors.SignatureMismatchError)
    assert seen.calls["inc"] == 0
    assert await status(local, theirs.id) is SignatureStatus.PENDING  # untouched


# --- 11. corrupt records ------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [{"v": "0"}, {"kind": "bogus"}, {"status": "bogus"}],
    ids=["schema", "kind", "status"],
)
async def test_11_every_transition_refuses_a_corrupt_record_and_changes_nothing(
    local: HatchetMageflow, seen: Seen, damage: dict[str, str]
) -> None:
    signature = await local.sign("inc")
    key = keys.signature(signature.id)
    await local.redis.hset(key, mapping=damage)
    before = await local.redis.hgetall(key)
    for action in (local.pause, local.resume, local.stop):
        with pytest.raises(mageflow.CorruptSignatureError) as caught:
            await action(signature.id)
        assert caught.value.key == key
    await local.dispatch_backend.trigger(
        RunRequest("inc", {"x": 1}, {SIGNATURE_ID: signature.id, DISPATCH_ID: "d"})
    )
    await backend(local).drain()
    (run,) = backend(local).runs
    assert isinstance(run.error, mageflow.CorruptSignatureError)  # not a success
    assert seen.calls["inc"] == 0
    assert await local.redis.hgetall(key) == before


async def test_11_a_damaged_outcome_and_damaged_counters_are_named(
    local: HatchetMageflow, seen: Seen
) -> None:
    done = await local.sign("inc")
    await done.aio_run({"x": 1})
    await local.redis.hset(
        keys.signature(done.id), mapping={"outcome": "{oops", "sent": "0"}
    )
    await local.dispatch_backend.trigger(
        RunRequest("inc", {"x": 1}, {SIGNATURE_ID: done.id, DISPATCH_ID: "again"})
    )
    await backend(local).drain()
    assert isinstance(backend(local).runs[-1].error, mageflow.CorruptSignatureError)

    swarm = await local.swarm([await local.sign("inc")])
    await local.redis.hset(keys.signature(swarm.id), "maxc", "lots")
    with pytest.raises(mageflow.CorruptSignatureError, match="maxc"):
        await swarm.aio_run_no_wait({})


# --- 12. keys that never expired ----------------------------------------------------


async def test_12_every_key_of_a_swarm_ends_with_its_record(
    local: HatchetMageflow, seen: Seen
) -> None:
    swarm = await local.swarm(
        [await local.sign("inc", x=i) for i in range(5)], max_concurrency=2
    )
    await swarm.close()
    await swarm.aio_run_no_wait({})
    await backend(local).drain()
    assert await status(local, swarm.id) is SignatureStatus.DONE
    record_ttl = await local.redis.pttl(keys.signature(swarm.id))
    assert 0 < record_ttl <= local.store.ttl.done_ms
    for key in keys.swarm_aux(swarm.id):
        if await local.redis.exists(key):
            assert 0 < await local.redis.pttl(key) <= record_ttl + 1_000, key


# --- 13. the failure path ran again for every later failure ----------------------


async def test_13_the_failure_threshold_fires_once(
    local: HatchetMageflow, seen: Seen
) -> None:
    swarm = await local.swarm(
        [await local.sign("boom", x=i) for i in range(6)],
        max_concurrency=6,
        stop_after_n_failures=2,
        error="on-error",
    )
    await swarm.close()
    await swarm.aio_run_no_wait({})
    await backend(local).drain()
    (error,) = seen.errors
    assert error.error_type == "SwarmFailed"
    assert error.message.startswith("2 item(s) failed")
    assert await status(local, swarm.id) is SignatureStatus.FAILED


# --- 14. stop() left the engine's runs running ---------------------------------------


async def test_14_stop_cancels_the_runs_it_stops(
    local: HatchetMageflow, seen: Seen
) -> None:
    @local.task(name="long")
    async def long(msg: Step) -> None:
        seen.started.set()
        await asyncio.Event().wait()  # never ends on its own

    signature = await local.sign("long")
    await signature.aio_run_no_wait({})
    await asyncio.wait_for(seen.started.wait(), 5)
    await signature.stop()
    await backend(local).drain(timeout=5)  # would time out if the run went on
    (run,) = backend(local).runs
    assert run.cancelled
    assert run.state is RunState.FAILED
    assert await status(local, signature.id) is SignatureStatus.CANCELED


# --- 15. a retried task signed its work again ------------------------------------


async def test_15_a_retried_task_gets_back_the_signatures_it_made(
    local: HatchetMageflow, seen: Seen
) -> None:
    made: list[list[str]] = []

    @local.task(name="fan-out", retries=1)
    async def fan_out(msg: Step) -> None:
        children = [await mageflow.sign("collect"), await mageflow.sign("inc", x=5)]
        made.append([child.id for child in children])
        for child in children:
            await child.aio_run_no_wait(
                {"result": "hi"} if child.task_name == "collect" else {}
            )
        if len(made) == 1:
            raise RuntimeError("the first attempt fails after starting its work")

    parent = await local.sign("fan-out")
    await parent.aio_run_no_wait({})
    await backend(local).drain()

    assert len(made) == 2
    assert made[0] == made[1]  # the retry signed the same two signatures
    assert seen.calls["collect"] == 1  # and their bodies ran once
    assert seen.calls["inc"] == 1
    assert await status(local, parent.id) is SignatureStatus.DONE
