"""mageflow's workflows on a real Hatchet engine: signatures with callbacks,
retries, pause and resume, a chain with a swarm step, a 200-item swarm under
its cap, and a worker killed with SIGKILL in the middle of a swarm.

Every run goes through the engine to a worker subprocess. The tasks write what
they did into Redis (``tests/e2e/e2e_tasks.py``); the tests wait for those
facts, or for a run's own end, with a timeout, never a fixed sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from types import ModuleType
from typing import Any

import pytest
from e2e_helpers import (
    KILL_WORKER,
    RUN_TIMEOUT,
    counts,
    events,
    events_named,
    eventually,
    key,
    status,
    statuses,
    within,
)
from redis.asyncio import Redis

from mageflow import SignatureStatus, TaskError
from mageflow.store import keys

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

# REDELIVERY. How Hatchet v0.105.0 re-delivers a dead worker's runs, and what
# decides how soon (read from the engine's source and seen on this engine):
#
# * The SDK (hatchet-sdk 1.43.1) sends a Heartbeat RPC every 4 s, hard-coded
#   (hatchet_sdk/clients/dispatcher/action_listener.py, heartbeat_delay = 4).
#   A SIGKILLed worker stops sending; its closed stream alone changes nothing.
# * The engine's task controller runs "reassign step runs" per tenant, every
#   1 s while tasks are active (backing off to at most 30 s when idle), and
#   takes the runs of workers whose lastHeartbeatAt is older than 30 s. That
#   30 s is a literal in its SQL (ListTasksToReassign in
#   pkg/repository/sqlcv1/tasks.sql): no engine or SDK setting changes it.
# * A reassignment is an *internal* retry: the same run, the same input and
#   additional_metadata (so the same mageflow dispatch id), and the next
#   attempt number. It does not use the task's `retries`; the engine allows
#   SERVER_MAX_INTERNAL_RETRY_COUNT (default 10) of them, then fails the run.
#   It is logged as a REASSIGNED event, "Worker did not send a heartbeat for
#   30 seconds".
#
# So a killed worker's runs move 26-31 s after the kill (28-31 s measured),
# with the defaults; the suite changes no setting. A shorter execution_timeout
# with retries would rerun sooner, but through a timeout, not a re-delivery.
REDELIVERY_TIMEOUT = float(os.environ.get("MAGEFLOW_E2E_REDELIVERY_TIMEOUT", "150"))


@pytest.fixture(autouse=True)
def _worker_alive(worker: subprocess.Popen[bytes]) -> None:
    assert worker.poll() is None, "the e2e worker has exited"


# --- a signed task with success and error callbacks --------------------------------


async def test_signed_task_fires_its_success_callback(
    tasks: ModuleType, redis: Redis
) -> None:
    mf, k = tasks.mf, key()
    on_ok = await mf.sign(tasks.on_receipt, key=k)
    on_err = await mf.sign(tasks.on_failure, key=k)
    signature = await mf.sign(tasks.price, success=on_ok, error=on_err, quantity=4)

    receipt = await within(signature.aio_run({"key": k}))
    assert isinstance(receipt, tasks.Receipt)
    assert receipt == tasks.Receipt(key=k, total=10.0)

    (called,) = await eventually(
        lambda: events_named(redis, k, "on-receipt"), "the success callback"
    )
    # the result reached the callback's ReturnValue[Receipt] field, as a Receipt
    assert called["type"] == "Receipt"
    assert called["receipt"] == {"key": k, "total": 10.0}
    assert await statuses(mf, [signature.id, on_ok.id, on_err.id]) == [
        SignatureStatus.DONE,
        SignatureStatus.DONE,
        SignatureStatus.PENDING,  # the error callback never ran
    ]
    assert [e["event"] for e in await events(redis, k)] == ["price", "on-receipt"]


async def test_failing_signed_task_fires_its_error_callback(
    tasks: ModuleType, redis: Redis
) -> None:
    mf, k = tasks.mf, key()
    on_ok = await mf.sign(tasks.on_receipt, key=k)
    on_err = await mf.sign(tasks.on_failure, key=k)
    signature = await mf.sign(tasks.price, success=on_ok, error=on_err, quantity=4)

    with pytest.raises(Exception, match=f"out of {k}"):
        await within(signature.aio_run({"key": k, "fail": True}))

    (called,) = await eventually(
        lambda: events_named(redis, k, "on-failure"), "the error callback"
    )
    assert called["type"] == "TaskError"
    failure = TaskError.model_validate(called["failure"])
    assert failure.model_dump(exclude={"traceback"}) == TaskError(
        error_type="ValueError",
        message=f"out of {k}",
        signature_id=signature.id,
        task_name=signature.task_name,
        original_message={"key": k, "quantity": 4, "fail": True, "fail_times": 0},
    ).model_dump(exclude={"traceback"})
    assert failure.traceback is not None
    assert "ValueError" in failure.traceback
    assert await statuses(mf, [signature.id, on_ok.id, on_err.id]) == [
        SignatureStatus.FAILED,
        SignatureStatus.PENDING,  # the success callback never ran
        SignatureStatus.DONE,
    ]
    assert [e["event"] for e in await events(redis, k)] == ["price", "on-failure"]


# --- retries -----------------------------------------------------------------------


async def test_retries_then_the_error_callback_once_after_the_last(
    tasks: ModuleType, redis: Redis
) -> None:
    mf, k = tasks.mf, key()
    on_ok = await mf.sign(tasks.on_receipt, key=k)
    on_err = await mf.sign(tasks.on_failure, key=k)
    signature = await mf.sign(tasks.signed_retries, success=on_ok, error=on_err)

    with pytest.raises(Exception, match="planned failure"):
        await within(signature.aio_run({"key": k, "fail_times": tasks.RETRIES + 5}))
    await eventually(lambda: events_named(redis, k, "on-failure"), "the error callback")
    # the callback is a signature: once done, no other delivery can run it again
    assert await status(mf, on_err.id) is SignatureStatus.DONE

    # retries=2: three attempts, and the error callback fired once, after the last
    attempts = [e["attempt"] for e in await events_named(redis, k, "attempt")]
    assert attempts == list(range(1, tasks.RETRIES + 2))
    assert [e["event"] for e in await events(redis, k)] == [
        *["attempt"] * (tasks.RETRIES + 1),
        "on-failure",
    ]
    (called,) = await events_named(redis, k, "on-failure")
    failure = TaskError.model_validate(called["failure"])
    assert failure.message == f"e2e: planned failure 3 of {tasks.RETRIES + 5}"
    assert await statuses(mf, [signature.id, on_ok.id]) == [
        SignatureStatus.FAILED,
        SignatureStatus.PENDING,
    ]


async def test_retries_that_end_in_success_fire_only_the_success_callback(
    tasks: ModuleType, redis: Redis
) -> None:
    mf, k = tasks.mf, key()
    on_ok = await mf.sign(tasks.on_receipt, key=k)
    on_err = await mf.sign(tasks.on_failure, key=k)
    signature = await mf.sign(tasks.signed_retries, success=on_ok, error=on_err)

    receipt = await within(signature.aio_run({"key": k, "fail_times": tasks.RETRIES}))
    assert receipt == tasks.Receipt(key=k, total=float(tasks.RETRIES + 1))
    await eventually(
        lambda: events_named(redis, k, "on-receipt"), "the success callback"
    )
    assert [e["event"] for e in await events(redis, k)] == [
        *["attempt"] * (tasks.RETRIES + 1),
        "on-receipt",
    ]
    assert await statuses(mf, [signature.id, on_ok.id, on_err.id]) == [
        SignatureStatus.DONE,
        SignatureStatus.DONE,
        SignatureStatus.PENDING,  # failed attempts before the last fire nothing
    ]


# --- pause and resume --------------------------------------------------------------


async def test_paused_delivery_is_recorded_and_resume_runs_exactly_it(
    tasks: ModuleType, redis: Redis
) -> None:
    mf, k = tasks.mf, key()
    on_ok = await mf.sign(tasks.on_receipt, key=k)
    signature = await mf.sign(tasks.price, success=on_ok, quantity=3)
    await mf.pause(signature.id)
    assert await status(mf, signature.id) is SignatureStatus.SUSPENDED

    run_id = await signature.aio_run_no_wait({"key": k})
    # the run goes through the engine and ends without running the function
    await within(tasks.hatchet.runs.get_run_ref(run_id).aio_result())
    recorded = await redis.hget(keys.signature(signature.id), "msg")
    assert recorded is not None, "the delivery was not recorded"
    assert json.loads(recorded) == {
        "key": k,
        "quantity": 3,
        "fail": False,
        "fail_times": 0,
    }
    assert await events(redis, k) == []  # the function did not run
    assert await status(mf, signature.id) is SignatureStatus.SUSPENDED

    await mf.resume(signature.id)
    await eventually(
        lambda: events_named(redis, k, "on-receipt"), "the resumed run's callback"
    )
    price_runs = await events_named(redis, k, "price")
    assert len(price_runs) == 1  # exactly once, with exactly the recorded message
    assert price_runs[0]["input"] == json.loads(recorded)
    assert (await events_named(redis, k, "on-receipt"))[0]["receipt"] == {
        "key": k,
        "total": 7.5,
    }
    assert await statuses(mf, [signature.id, on_ok.id]) == [
        SignatureStatus.DONE,
        SignatureStatus.DONE,
    ]


# --- a chain with a swarm step -----------------------------------------------------


async def test_chain_with_a_swarm_step_passes_the_ordered_list_on(
    tasks: ModuleType, redis: Redis
) -> None:
    mf, k = tasks.mf, key()
    # later items finish first, so the order of the list is not an accident
    items = [await mf.sign(tasks.add, plus=i, delay=0.1 * (4 - i)) for i in range(5)]
    swarm = await mf.swarm(items, max_concurrency=5)
    await swarm.close()
    chain = await mf.chain(
        [
            await mf.sign(tasks.add, plus=1),
            swarm,
            await mf.sign(tasks.collect, key=k),
        ]
    )
    await chain.aio_run_no_wait({"x": 10})

    (collected,) = await eventually(
        lambda: events_named(redis, k, "collected"), "the chain's last step"
    )
    # step one gave {"v": 11} to every item; item i added i
    assert collected["result"] == [{"v": 11 + i} for i in range(5)]
    assert await status(mf, chain.id) is SignatureStatus.DONE
    assert await statuses(mf, chain.steps) == [SignatureStatus.DONE] * 3
    assert await statuses(mf, [item.id for item in items]) == (
        [SignatureStatus.DONE] * 5
    )


# --- a swarm of 200 under max_concurrency=10 ---------------------------------------


async def test_swarm_of_200_holds_its_cap_on_the_real_engine(
    tasks: ModuleType, redis: Redis
) -> None:
    mf, k = tasks.mf, key()
    n, cap = 200, 10
    items = [await mf.sign(tasks.swarm_item, key=k, i=i) for i in range(n)]
    on_ok = await mf.sign(tasks.collect, key=k)
    swarm = await mf.swarm(items, max_concurrency=cap, success=on_ok)
    await swarm.close()
    started = time.monotonic()
    # each body holds its slot a little, so that items overlap
    await swarm.aio_run_no_wait({"hold": 0.05})

    await eventually(
        lambda: events_named(redis, k, "collected"),
        "the swarm's callback",
        timeout=RUN_TIMEOUT * 2,
    )
    elapsed = time.monotonic() - started
    peak = int(await redis.get(f"e2e:peak:{k}") or 0)
    print(f"swarm of {n}, cap {cap}: peak {peak} concurrent bodies, {elapsed:.1f}s")
    # the worker has 20 slots: the cap is mageflow's, and it held
    assert peak <= cap, f"{peak} bodies ran at once under max_concurrency={cap}"
    assert peak > 1, "items never overlapped: the measurement proves nothing"
    assert await counts(redis, f"e2e:runs:{k}") == {i: 1 for i in range(n)}
    (collected,) = await events_named(redis, k, "collected")  # fired once
    assert collected["result"] == [{"i": i} for i in range(n)]
    assert await statuses(mf, [swarm.id, on_ok.id]) == [
        SignatureStatus.DONE,
        SignatureStatus.DONE,
    ]
    assert int(await redis.get(f"e2e:running:{k}") or 0) == 0


# --- a worker killed with SIGKILL in the middle of a swarm -------------------------


async def test_sigkilled_worker_mid_swarm_holds_its_cap_and_repeats_nothing(
    tasks: ModuleType, redis: Redis, start_worker: Any
) -> None:
    """Kill the only worker that can run the swarm's items while five of them
    are in the middle of their bodies, and start a new one. The engine
    re-delivers the dead worker's runs once its heartbeat is stale (see
    REDELIVERY above: about 30 s after the kill, nothing to configure).

    Only the "kill" group's workers register ``e2e-kill-*``, so every item
    runs on a worker this test started (and killed). The items have
    ``retries=0`` and a 5-minute ``execution_timeout``, so neither a retry
    nor a timeout can be what runs them again: only a re-delivery can.
    """
    mf, k = tasks.mf, key()
    n, cap, gate_from = 30, 5, 10
    first = await start_worker(KILL_WORKER, "kill")

    items = [
        await mf.sign(tasks.kill_item, key=k, i=i, gate_from=gate_from)
        for i in range(n)
    ]
    on_ok = await mf.sign(tasks.kill_collect, key=k)
    swarm = await mf.swarm(items, max_concurrency=cap, success=on_ok)
    await swarm.close()
    await swarm.aio_run_no_wait({})

    # Items 0..9 finish; their finishes start 10..14, which wait at the gate.
    async def mid_swarm() -> bool:
        starts = await counts(redis, f"e2e:starts:{k}")
        done = await counts(redis, f"e2e:done:{k}")
        return len(starts) == gate_from + cap and len(done) == gate_from

    await eventually(mid_swarm, "five items in the middle of their bodies")
    # the worker and Hatchet's action-listener child: its whole process group
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait(timeout=10)
    killed_at = time.monotonic()
    await redis.set(f"e2e:gate:{k}", "1")
    second = await start_worker(KILL_WORKER, "kill")

    async def redelivered() -> bool:
        return len(await counts(redis, f"e2e:done:{k}")) > gate_from

    await eventually(
        redelivered, "the dead worker's runs to be re-delivered", REDELIVERY_TIMEOUT
    )
    redelivery = time.monotonic() - killed_at
    (collected,) = await eventually(
        lambda: events_named(redis, k, "collected"),
        "the swarm's callback",
        REDELIVERY_TIMEOUT,
    )
    print(f"SIGKILL: a killed item finished on the new worker {redelivery:.1f}s later")

    # nothing lost: every item finished its body exactly once
    assert await counts(redis, f"e2e:done:{k}") == {i: 1 for i in range(n)}
    # nothing run twice: only the five killed mid-body started again
    killed = set(range(gate_from, gate_from + cap))
    assert await counts(redis, f"e2e:starts:{k}") == {
        i: 2 if i in killed else 1 for i in range(n)
    }
    # ... and they were the engine's re-deliveries: the same runs, on the new
    # worker, as the next attempt (a reassignment counts as a retry there)
    for i in sorted(killed):
        where = [json.loads(w) for w in await redis.lrange(f"e2e:where:{k}:{i}", 0, -1)]
        assert where == [
            {"pid": first.process.pid, "attempt": 1},
            {"pid": second.process.pid, "attempt": 2},
        ], f"item {i}"
    assert collected["result"] == [{"i": i} for i in range(n)]
    assert len(await events_named(redis, k, "collected")) == 1
    # the cap held the whole time, re-delivery included: a killed item kept
    # its slot until its second run ended, so no sixth item started
    assert int(await redis.get(f"e2e:peak:{k}") or 0) == cap
    assert await statuses(mf, [swarm.id, on_ok.id]) == [
        SignatureStatus.DONE,
        SignatureStatus.DONE,
    ]
    assert await statuses(mf, [item.id for item in items]) == (
        [SignatureStatus.DONE] * n
    )
    assert second.process.poll() is None, f"the new worker died: {second.log_path}"
