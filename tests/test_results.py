"""Results: await a workflow, read any outcome by id, swarms that finish.

On the local backend and a real Redis. Each test would fail on a library
where ``aio_run`` of a chain looks for a task named ``chain``, where
signatures carry no outcome, or where a swarm made from a list waits for
``close()``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel
from roundtrips import RoundTrips

import mageflow
from mageflow import HatchetMageflow, SignatureStatus
from mageflow.dispatch.local import LocalDispatcher


class Step(BaseModel):
    result: Any = None
    x: int = 0


def backend(client: HatchetMageflow) -> LocalDispatcher:
    assert isinstance(client.dispatch_backend, LocalDispatcher)
    return client.dispatch_backend


@pytest.fixture
def tasks(local: HatchetMageflow) -> dict[str, Any]:
    @local.task(name="inc")
    async def inc(msg: Step) -> dict[str, int]:
        value = msg.result["v"] if isinstance(msg.result, dict) else msg.x
        return {"v": value + 1}

    @local.task(name="boom")
    async def boom(msg: Step) -> None:
        raise RuntimeError(f"boom {msg.x}")

    gate = asyncio.Event()

    @local.task(name="held")
    async def held(msg: Step) -> dict[str, int]:
        await gate.wait()
        return {"v": msg.x}

    return {"inc": inc, "boom": boom, "held": held, "gate": gate}


# --- awaitable workflows ---------------------------------------------------------


async def test_a_chain_returns_its_last_steps_result(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    chain = await local.chain([tasks["inc"], tasks["inc"], tasks["inc"]])
    assert await asyncio.wait_for(chain.aio_run({"x": 1}), 10) == {"v": 4}


async def test_a_swarm_returns_its_outcomes_in_add_order(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    items = [await local.sign(tasks["inc"], x=x) for x in (5, 1, 3)]
    swarm = await local.swarm(items, max_concurrency=2)
    result = await asyncio.wait_for(swarm.aio_run(), 10)
    assert result == [{"v": 6}, {"v": 2}, {"v": 4}]


async def test_a_failed_chain_raises_with_the_steps_task_error(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    chain = await local.chain([tasks["inc"], tasks["boom"]])
    with pytest.raises(mageflow.SignatureFailedError) as caught:
        await asyncio.wait_for(chain.aio_run({"x": 1}), 10)
    error = caught.value.error
    assert error is not None
    assert (error.error_type, caught.value.signature_id) == ("RuntimeError", chain.id)
    assert "boom" in error.message


async def test_aio_run_no_wait_still_returns_at_once(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    signature = await local.sign(tasks["held"], x=7)
    chain = await local.chain([signature, tasks["inc"]])
    await chain.aio_run_no_wait()
    loaded = await local.load_signature(chain.id)
    assert loaded is not None
    assert loaded.status is SignatureStatus.ACTIVE
    tasks["gate"].set()
    assert await local.wait(chain.id, timeout=10) == {"v": 8}


# --- results by id ---------------------------------------------------------------


async def test_an_outcome_is_read_back_by_id(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    signature = await local.sign(tasks["inc"], x=2)
    await signature.aio_run_no_wait()
    await backend(local).drain()
    loaded = await mageflow.load_signature(signature.id)
    assert loaded is not None
    assert (loaded.status, loaded.outcome, loaded.error) == (
        SignatureStatus.DONE,
        {"v": 3},
        None,
    )


async def test_a_failure_is_read_back_as_a_task_error(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    signature = await local.sign(tasks["boom"], x=4)
    await signature.aio_run_no_wait()
    await backend(local).drain()
    loaded = await local.load_signature(signature.id)
    assert loaded is not None
    assert loaded.error is not None
    assert (loaded.status, loaded.error.error_type, loaded.error.message) == (
        SignatureStatus.FAILED,
        "RuntimeError",
        "boom 4",
    )


async def test_wait_returns_a_result_started_elsewhere(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    signature = await local.sign(tasks["held"], x=9)
    waiter = asyncio.create_task(mageflow.wait(signature.id, timeout=10))
    await signature.aio_run_no_wait()
    assert not waiter.done()
    tasks["gate"].set()
    assert await waiter == {"v": 9}
    # Waiting again for what already ended answers at once, the same.
    assert await signature.aio_result(timeout=1) == {"v": 9}


async def test_wait_times_out_and_the_signature_goes_on(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    signature = await local.sign(tasks["inc"], x=1)
    with pytest.raises(mageflow.WaitTimeoutError) as caught:
        await local.wait(signature.id, timeout=0.2)
    assert caught.value.signature_id == signature.id
    await signature.aio_run_no_wait()
    assert await signature.aio_result(timeout=10) == {"v": 2}


async def test_wait_for_a_stopped_signature_raises_canceled(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    signature = await local.sign(tasks["inc"], x=1)
    waiter = asyncio.create_task(local.wait(signature.id, timeout=10))
    await signature.stop()
    with pytest.raises(mageflow.SignatureCanceledError) as caught:
        await waiter
    assert caught.value.status == "canceled"


async def test_wait_for_an_unknown_id_says_so(local: HatchetMageflow) -> None:
    with pytest.raises(mageflow.SignatureNotFoundError) as caught:
        await local.wait("no-such-signature", timeout=1)
    assert caught.value.signature_id == "no-such-signature"


async def test_a_thousand_waiters_send_nothing_while_they_wait(
    local: HatchetMageflow, tasks: dict[str, Any], round_trips: RoundTrips
) -> None:
    signatures = [await local.sign(tasks["held"], x=n) for n in range(1000)]
    round_trips.reset()
    waiters = [
        asyncio.create_task(local.wait(signature.id, timeout=60))
        for signature in signatures
    ]

    # Each waiter subscribes and reads the status once; then nothing.
    async def settled() -> int:
        while True:
            count = round_trips.count
            await asyncio.sleep(0.05)  # ok: sampling the counter until it is still
            if round_trips.count == count and count >= 2000:
                return count

    idle_from = await asyncio.wait_for(settled(), 30)
    assert idle_from <= 2 * 1000 + 10
    # A window in which all thousand wait: not one command is sent.
    await asyncio.sleep(0.5)  # ok: the window the cost is measured over
    assert round_trips.count == idle_from
    assert not any(waiter.done() for waiter in waiters)
    for signature in signatures:
        await signature.aio_run_no_wait()
    tasks["gate"].set()
    results = await asyncio.wait_for(asyncio.gather(*waiters), 60)
    assert results == [{"v": n} for n in range(1000)]


# --- swarms that finish ------------------------------------------------------------


async def test_a_swarm_made_with_tasks_completes_without_close(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    swarm = await mageflow.swarm([tasks["inc"], tasks["inc"]], x=1)
    assert swarm.closed
    await swarm.aio_run_no_wait()
    assert await swarm.aio_result(timeout=10) == [{"v": 2}, {"v": 2}]


async def test_an_open_swarm_waits_for_close(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    swarm = await local.swarm([tasks["inc"]], open=True, x=1)
    assert not swarm.closed
    await swarm.aio_run_no_wait()
    await backend(local).drain()
    assert (await local.load_signature(swarm.id)).status is SignatureStatus.ACTIVE  # type: ignore[union-attr]
    await swarm.add([tasks["inc"]])
    await swarm.close()
    assert await swarm.aio_result(timeout=10) == [{"v": 2}, {"v": 2}]


async def test_a_swarm_made_without_tasks_is_open(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    swarm = await local.swarm(x=3)
    assert not swarm.closed
    await swarm.add([tasks["inc"]])
    await swarm.close()
    assert await swarm.aio_run() == [{"v": 4}]


async def test_a_swarm_made_from_an_empty_list_completes_empty(
    local: HatchetMageflow,
) -> None:
    swarm = await local.swarm([])
    assert swarm.closed
    assert await asyncio.wait_for(swarm.aio_run(), 10) == []


async def test_adding_to_a_closed_swarm_says_how_to_keep_one_open(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    swarm = await local.swarm([tasks["inc"]])
    with pytest.raises(mageflow.InvalidTransitionError, match="open=True"):
        await swarm.add([tasks["inc"]])
