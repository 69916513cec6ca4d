"""Liveness on a real Hatchet engine: timeouts, invalid inputs, a frozen
worker, and stop() cancelling the engine's runs.

Each test drives the engine to a fault it produces itself (its timeout, its
re-delivery of a silent worker's run, its cancel), and checks that the
workflow still ends, with one outcome and callbacks fired once.
"""

from __future__ import annotations

import asyncio
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
    events_named,
    eventually,
    key,
    status,
)
from redis.asyncio import Redis

import mageflow
from mageflow import SignatureStatus, TaskError

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

# The engine moves a silent worker's runs after 30 s without a heartbeat
# (see test_engine_workflows.py, REDELIVERY); a frozen worker is silent.
REDELIVERY_TIMEOUT = float(os.environ.get("MAGEFLOW_E2E_REDELIVERY_TIMEOUT", "150"))


@pytest.fixture(autouse=True)
def _worker_alive(worker: subprocess.Popen[bytes]) -> None:
    assert worker.poll() is None, "the e2e worker has exited"


async def test_a_timeout_fails_the_signature_and_fires_its_error_callback(
    tasks: ModuleType, redis: Redis
) -> None:
    mf, k = tasks.mf, key()
    on_error = await mf.sign(tasks.on_failure, key=k)
    signature = await mf.sign(tasks.hang, error=on_error)
    await signature.aio_run_no_wait({"key": k})

    (failed,) = await eventually(
        lambda: events_named(redis, k, "on-failure"), "the error callback"
    )
    error = TaskError.model_validate(failed["failure"])
    assert error.kind == "timeout"
    assert error.signature_id == signature.id
    # the engine cancelled the attempt: the worker flagged the context first
    (cancelled,) = await events_named(redis, k, "hang-cancelled")
    assert cancelled["flagged"] is True
    assert await status(mf, signature.id) is SignatureStatus.FAILED
    assert len(await events_named(redis, k, "on-failure")) == 1


async def test_an_invalid_input_fails_its_step_and_the_chain_ends(
    tasks: ModuleType, redis: Redis
) -> None:
    """A swarm with a failed item hands its next step a list whose failed
    slot is a TaskError, not a Receipt: the step's input does not validate."""
    mf, k = tasks.mf, key()
    swarm = await mf.swarm(
        [
            await mf.sign(tasks.price, key=k, quantity=2),
            await mf.sign(tasks.price, key=k, fail=True),
        ]
    )
    await swarm.close()
    on_error = await mf.sign(tasks.on_failure, key=k)
    chain = await mf.chain([swarm, await mf.sign(tasks.total, key=k)], error=on_error)
    await chain.aio_run_no_wait({})

    (failed,) = await eventually(
        lambda: events_named(redis, k, "on-failure"), "the chain's error callback"
    )
    error = TaskError.model_validate(failed["failure"])
    assert error.kind == "validation"
    assert error.task_name == tasks.total.name  # as the engine names it
    assert {tuple(e["loc"][:2]) for e in error.errors} == {("receipts", 1)}
    assert await events_named(redis, k, "total") == []  # its body never ran
    assert await status(mf, chain.id) is SignatureStatus.FAILED


async def test_an_input_only_the_worker_can_check_is_failed_by_recovery(
    tasks: ModuleType, redis: Redis
) -> None:
    """A client that does not declare the task cannot check the input, so
    the engine's worker refuses it before mageflow's wrapper runs; the
    workers' recovery reads that from the engine and fails the signature."""
    mf, k = tasks.mf, key()
    blind = mageflow.Mageflow(tasks.hatchet)  # declares nothing
    try:
        on_error = await mf.sign(tasks.on_failure, key=k)
        signature = await blind.sign("e2e-price", quantity="lots", error=on_error)
        await signature.aio_run_no_wait({"key": k})
        (failed,) = await eventually(
            lambda: events_named(redis, k, "on-failure"),
            "recovery to fail the signature",
            RUN_TIMEOUT,
        )
    finally:
        await blind.store.connection.aclose()
    error = TaskError.model_validate(failed["failure"])
    assert error.kind == "validation"
    assert "quantity" in error.message
    assert await events_named(redis, k, "price") == []
    assert await status(mf, signature.id) is SignatureStatus.FAILED


async def test_a_frozen_worker_is_taken_over_and_its_late_finish_refused(
    tasks: ModuleType, redis: Redis, start_worker: Any
) -> None:
    """Freeze the only worker running a signed task with SIGSTOP for 40 s.
    The engine moves the run to a second worker, which takes the signature
    over (the frozen holder's lease ran out) and finishes it. Then the first
    wakes up and finishes too, late: its outcome is refused, so there is one
    outcome, the second worker's, and the callback fired once."""
    mf, k = tasks.mf, key()
    first = await start_worker(KILL_WORKER, "kill")
    on_ok = await mf.sign(tasks.kill_collect, key=k)
    signature = await mf.sign(tasks.freeze, key=k, success=on_ok)
    await signature.aio_run_no_wait({})
    await eventually(
        lambda: events_named(redis, k, "freeze-start"), "the body on the first worker"
    )
    os.killpg(first.process.pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        second = await start_worker(KILL_WORKER, "kill")

        async def taken_over() -> bool:
            starts = await events_named(redis, k, "freeze-start")
            return any(s["pid"] == second.process.pid for s in starts)

        await eventually(taken_over, "the second worker to run it", REDELIVERY_TIMEOUT)
        await redis.set(f"e2e:gate:{k}", "1")  # the second worker finishes now
        (collected,) = await eventually(
            lambda: events_named(redis, k, "collected"), "the callback"
        )
        assert collected["result"] == {"pid": second.process.pid}
        # keep the first frozen for its 40 s, then let it finish, late
        left = 40 - (time.monotonic() - frozen_at)
        await asyncio.sleep(max(0.0, left))  # ok: the freeze lasts 40 s (the fault)
    finally:
        os.killpg(first.process.pid, signal.SIGCONT)

    async def late_finish() -> bool:
        ends = await events_named(redis, k, "freeze-end")
        return any(e["pid"] == first.process.pid for e in ends)

    await eventually(late_finish, "the first worker's late finish")
    record = await mf.store.load_record(signature.id)
    assert record is not None
    assert record["status"] == "done"
    assert record["outcome"] == f'{{"pid":{second.process.pid}}}'  # one outcome
    assert len(await events_named(redis, k, "collected")) == 1  # one callback
    assert first.process.poll() is None, "the first worker died instead"


async def test_stop_cancels_the_engine_run(tasks: ModuleType, redis: Redis) -> None:
    mf, k = tasks.mf, key()
    signature = await mf.sign(tasks.long)
    run_id = await signature.aio_run_no_wait({"key": k})
    await eventually(lambda: events_named(redis, k, "long-start"), "the body")
    await signature.stop()

    async def engine_cancelled() -> bool:
        state = await tasks.hatchet.runs.aio_get_status(run_id)
        return state.value == "CANCELLED"

    await eventually(engine_cancelled, "the engine to cancel the run")
    (cancelled,) = await eventually(
        lambda: events_named(redis, k, "long-cancelled"), "the body to be cancelled"
    )
    assert cancelled["flagged"] is True
    assert await status(mf, signature.id) is SignatureStatus.CANCELED
