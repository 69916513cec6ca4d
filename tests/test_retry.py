"""``retry``: run a failed signature again, from where it failed.

On the local backend and a real Redis. A task ``flaky`` fails on the calls
listed in ``Flaky.fail_on`` and succeeds otherwise, so a first run fails and
its retry succeeds; the calls are counted to prove what ran again.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from pydantic import BaseModel

import mageflow
from mageflow import HatchetMageflow, SignatureStatus
from mageflow.dispatch.local import LocalDispatcher


class Step(BaseModel):
    result: Any = None
    x: int = 0


class Collected(BaseModel):
    result: Any = None


class Flaky:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.fail_on: set[tuple[str, int]] = set()
        self.successes: list[Any] = []
        self.errors: list[Any] = []
        self.made: list[str] = []


def backend(client: HatchetMageflow) -> LocalDispatcher:
    assert isinstance(client.dispatch_backend, LocalDispatcher)
    return client.dispatch_backend


@pytest.fixture
def flaky(local: HatchetMageflow) -> Flaky:
    state = Flaky()

    @local.task(name="inc")
    async def inc(msg: Step) -> dict[str, int]:
        value = msg.result["v"] if isinstance(msg.result, dict) else msg.x
        state.calls[f"inc {value}"] += 1
        return {"v": value + 1}

    @local.task(name="flaky")
    async def flaky_task(msg: Step) -> dict[str, int]:
        value = msg.result["v"] if isinstance(msg.result, dict) else msg.x
        key = f"flaky {value}"
        state.calls[key] += 1
        if (key, state.calls[key]) in state.fail_on:
            raise RuntimeError(f"{key} failed on call {state.calls[key]}")
        return {"v": value * 10}

    @local.task(name="parent")
    async def parent(msg: Step) -> dict[str, int]:
        # Signs a child each run: a retried run must make a new one.
        child = await mageflow.sign("inc", x=msg.x)
        state.made.append(child.id)
        state.calls["parent"] += 1
        if state.calls["parent"] == 1:
            raise RuntimeError("parent failed once")
        return {"v": msg.x}

    @local.task(name="on-success")
    async def on_success(msg: Collected) -> None:
        state.successes.append(msg.result)

    @local.task(name="on-error")
    async def on_error(msg: Collected) -> None:
        state.errors.append(msg.result)

    return state


async def status(client: HatchetMageflow, signature_id: str) -> SignatureStatus:
    signature = await client.load_signature(signature_id)
    assert signature is not None
    return signature.status


async def test_a_retried_task_runs_again_and_keeps_its_callbacks(
    local: HatchetMageflow, flaky: Flaky
) -> None:
    flaky.fail_on = {("flaky 3", 1)}
    signature = await local.sign("flaky", x=3, success="on-success", error="on-error")
    with pytest.raises(mageflow.SignatureFailedError):
        await signature.aio_run()
    await backend(local).drain()
    assert len(flaky.errors) == 1

    await local.retry(signature.id)
    assert await signature.aio_result(timeout=10) == {"v": 30}
    await backend(local).drain()
    loaded = await local.load_signature(signature.id)
    assert loaded is not None
    # The old outcome is replaced; the success callback fired once, the
    # error callback is not fired again.
    assert (loaded.status, loaded.outcome, loaded.error) == (
        SignatureStatus.DONE,
        {"v": 30},
        None,
    )
    assert (flaky.successes, len(flaky.errors)) == ([{"v": 30}], 1)
    assert (loaded.generation, flaky.calls["flaky 3"]) == (1, 2)


async def test_mageflow_retry_uses_the_client_in_effect(
    local: HatchetMageflow, flaky: Flaky
) -> None:
    flaky.fail_on = {("flaky 1", 1)}
    signature = await local.sign("flaky", x=1)
    await signature.aio_run_no_wait()
    await backend(local).drain()
    await mageflow.retry(signature.id)
    assert await mageflow.wait(signature.id, timeout=10) == {"v": 10}


async def test_a_retried_chain_continues_from_its_failed_step(
    local: HatchetMageflow, flaky: Flaky
) -> None:
    flaky.fail_on = {("flaky 2", 1)}
    chain = await local.chain(["inc", "flaky", "inc"], success="on-success")
    with pytest.raises(mageflow.SignatureFailedError):
        await chain.aio_run({"x": 1})
    await backend(local).drain()
    assert [await status(local, step) for step in chain.steps] == [
        SignatureStatus.DONE,
        SignatureStatus.FAILED,
        SignatureStatus.INTERRUPTED,
    ]

    await local.retry(chain.id)
    assert await chain.aio_result(timeout=10) == {"v": 21}
    await backend(local).drain()
    # The first step ran once; the failed one twice; the last one once.
    assert flaky.calls == Counter({"inc 1": 1, "flaky 2": 2, "inc 20": 1})
    assert flaky.successes == [{"v": 21}]


async def test_a_retried_swarm_reruns_only_its_failed_items(
    local: HatchetMageflow, flaky: Flaky
) -> None:
    flaky.fail_on = {("flaky 2", 1), ("flaky 4", 1)}
    items = [await local.sign("flaky", x=x) for x in (1, 2, 3, 4, 5)]
    swarm = await local.swarm(items, max_concurrency=1, stop_after_n_failures=1)
    with pytest.raises(mageflow.SignatureFailedError):
        await swarm.aio_run()
    await backend(local).drain()
    # One at a time: 1 succeeded, 2 failed and ended the swarm, 3..5 never ran.
    assert flaky.calls == Counter({"flaky 1": 1, "flaky 2": 1})

    await local.retry(swarm.id)
    with pytest.raises(mageflow.SignatureFailedError):
        await swarm.aio_result(timeout=10)  # item 4 fails on its first call
    await backend(local).drain()
    await local.retry(swarm.id)
    result = await swarm.aio_result(timeout=10)
    assert result == [{"v": 10}, {"v": 20}, {"v": 30}, {"v": 40}, {"v": 50}]
    assert flaky.calls == Counter(
        {"flaky 1": 1, "flaky 2": 2, "flaky 3": 1, "flaky 4": 2, "flaky 5": 1}
    )


async def test_a_swarm_of_chains_reruns_the_failed_chain_whole(
    local: HatchetMageflow, flaky: Flaky
) -> None:
    flaky.fail_on = {("flaky 3", 1)}
    good = await local.chain(["inc", "flaky"], x=1)
    bad = await local.chain(["inc", "flaky"], x=2)
    # One at a time, so the good chain ends before the bad one fails the swarm.
    swarm = await local.swarm([good, bad], max_concurrency=1, stop_after_n_failures=1)
    with pytest.raises(mageflow.SignatureFailedError):
        await swarm.aio_run()
    await backend(local).drain()

    await local.retry(swarm.id)
    assert await swarm.aio_result(timeout=10) == [{"v": 20}, {"v": 30}]
    assert flaky.calls == Counter({"inc 1": 1, "flaky 2": 1, "inc 2": 2, "flaky 3": 2})


async def test_a_retried_run_signs_new_signatures(
    local: HatchetMageflow, flaky: Flaky
) -> None:
    signature = await local.sign("parent", x=5)
    with pytest.raises(mageflow.SignatureFailedError):
        await signature.aio_run()
    await local.retry(signature.id)
    assert await signature.aio_result(timeout=10) == {"v": 5}
    # The failed run's child and the retried run's child are two signatures.
    assert len(set(flaky.made)) == 2


@pytest.mark.parametrize("final", ["done", "pending", "canceled"])
async def test_retry_is_refused_for_what_did_not_fail(
    local: HatchetMageflow, flaky: Flaky, final: str
) -> None:
    signature = await local.sign("inc", x=1)
    if final == "done":
        await signature.aio_run()
    elif final == "canceled":
        await signature.stop()
    with pytest.raises(mageflow.InvalidTransitionError) as caught:
        await local.retry(signature.id)
    assert (caught.value.status, caught.value.action) == (final, "retry")
    assert await status(local, signature.id) is SignatureStatus(final)


async def test_retry_of_a_step_alone_is_refused_and_names_its_chain(
    local: HatchetMageflow, flaky: Flaky
) -> None:
    flaky.fail_on = {("flaky 2", 1)}
    chain = await local.chain(["inc", "flaky"])
    with pytest.raises(mageflow.SignatureFailedError):
        await chain.aio_run({"x": 1})
    with pytest.raises(mageflow.InvalidTransitionError) as caught:
        await local.retry(chain.steps[1])
    assert chain.id in str(caught.value)
    assert await status(local, chain.steps[1]) is SignatureStatus.FAILED


async def test_retry_of_an_unknown_id_says_so(local: HatchetMageflow) -> None:
    with pytest.raises(mageflow.SignatureNotFoundError):
        await local.retry("no-such-signature")


async def test_a_concurrent_second_retry_is_refused(
    local: HatchetMageflow, flaky: Flaky
) -> None:
    flaky.fail_on = {("flaky 6", 1)}
    signature = await local.sign("flaky", x=6)
    with pytest.raises(mageflow.SignatureFailedError):
        await signature.aio_run()
    outcomes = await asyncio.gather(
        local.retry(signature.id), local.retry(signature.id), return_exceptions=True
    )
    refused = [o for o in outcomes if isinstance(o, mageflow.InvalidTransitionError)]
    assert (len(refused), outcomes.count(None)) == (1, 1)
    assert await signature.aio_result(timeout=10) == {"v": 60}
    assert flaky.calls["flaky 6"] == 2
