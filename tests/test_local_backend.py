"""The local backend does around each run what a Hatchet worker does.

Every run goes through hatchet-sdk's ``aio_mock_run`` (a real ``Context``) on
a real Redis; nothing here is mocked. What is checked is what
``aio_mock_run`` alone would not do: output serialization and validation as
``Runner.serialize_output`` does it, retries, timeouts, the metadata a
worker puts on the context, and Hatchet ``Depends`` through mageflow's
wrapper.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

import pytest
from hatchet_sdk import Context, Depends
from hatchet_sdk.exceptions import IllegalTaskOutputError, NonRetryableException
from hatchet_sdk.runnables.contextvars import (
    ctx_additional_metadata,
    ctx_task_retry_count,
)
from pydantic import BaseModel, Field

import mageflow
from mageflow import HatchetMageflow, SignatureStatus
from mageflow.dispatch import RunRequest
from mageflow.dispatch.local import LocalDispatcher, LocalRun, RunState


class In(BaseModel):
    n: int = 1


class Out(BaseModel):
    total: int
    secret: str = Field(default="hidden", exclude=True)


@dataclasses.dataclass
class Point:
    x: int
    y: int


def backend(client: HatchetMageflow) -> LocalDispatcher:
    assert isinstance(client.dispatch_backend, LocalDispatcher)
    return client.dispatch_backend


async def run_once(
    client: HatchetMageflow,
    task_name: str,
    input: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
) -> LocalRun:
    """Trigger one plain run, wait for everything, return its record."""
    local = backend(client)
    run_id = await local.trigger(RunRequest(task_name, input or {}, metadata or {}))
    await local.drain()
    (run,) = [r for r in local.runs if r.run_id == run_id]
    return run


# --- outputs -------------------------------------------------------------------


async def test_a_model_output_is_dumped_with_the_tasks_output_validator(
    local: HatchetMageflow,
) -> None:
    @local.task(name="model-out")
    async def model_out(msg: In) -> Out:
        return Out(total=msg.n * 2, secret="s3cret")

    run = await run_once(local, "model-out", {"n": 21})
    assert run.state is RunState.SUCCEEDED, run.error
    # Dumped as JSON by the validator: the excluded field is gone.
    assert run.output == {"total": 42}


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        ({"a": 1, "when": timedelta(seconds=90)}, {"a": 1, "when": "PT1M30S"}),
        (Point(1, 2), {"x": 1, "y": 2}),
        (None, None),
        ({}, None),
        (0, None),
        ("", None),
    ],
    ids=["dict", "dataclass", "none", "empty-dict", "zero", "empty-str"],
)
async def test_dicts_dataclasses_and_falsy_outputs_are_accepted(
    local: HatchetMageflow, returned: Any, expected: Any
) -> None:
    @local.task(name="any-out")
    async def any_out(msg: In) -> Any:
        return returned

    run = await run_once(local, "any-out")
    assert run.state is RunState.SUCCEEDED, run.error
    assert run.output == expected


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (5, "Tasks must return either a dictionary"),
        ([1, 2], "Tasks must return either a dictionary"),
        ("text", "Tasks must return either a dictionary"),
        ({"o": object()}, "Failed to serialize task output"),
        ({"text": "a\x00b"}, "unicode null character"),
    ],
    ids=["int", "list", "str", "unserializable", "null-character"],
)
async def test_an_illegal_output_fails_every_attempt_like_on_a_worker(
    local: HatchetMageflow, returned: Any, message: str
) -> None:
    calls: list[int] = []

    @local.task(name="bad-out", retries=1)
    async def bad_out(msg: In, ctx: Context) -> Any:
        calls.append(ctx.retry_count)
        return returned

    run = await run_once(local, "bad-out")
    assert run.state is RunState.FAILED
    assert isinstance(run.error, IllegalTaskOutputError)
    assert message in str(run.error)
    # A worker reports it as a failed attempt, and the engine retries it.
    assert calls == [0, 1]
    assert run.attempts == 2


async def test_run_returns_the_serialized_output_and_raises_the_failure(
    local: HatchetMageflow,
) -> None:
    @local.task(name="good")
    async def good(msg: In) -> Out:
        return Out(total=msg.n)

    @local.task(name="bad")
    async def bad(msg: In) -> Any:
        return 3

    assert await backend(local).run(RunRequest("good", {"n": 7}, {})) == {"total": 7}
    with pytest.raises(IllegalTaskOutputError):
        await backend(local).run(RunRequest("bad", {}, {}))


async def test_a_signature_with_an_illegal_output_fails_its_run(
    local: HatchetMageflow,
) -> None:
    @local.task(name="scalar")
    async def scalar(msg: In):  # unannotated: only the run can refuse an int
        return msg.n

    sig = await local.sign(scalar)
    with pytest.raises(mageflow.errors.SignatureFailedError) as caught:
        await sig.aio_run({"n": 3})
    assert caught.value.error.error_type == IllegalTaskOutputError.__name__


# --- retries, timeouts, exceptions --------------------------------------------


async def test_retries_mean_n_plus_one_attempts_and_errors_are_captured(
    local: HatchetMageflow,
) -> None:
    seen: list[tuple[int, int, int]] = []

    @local.task(name="flaky", retries=2)
    async def flaky(msg: In, ctx: Context) -> dict[str, int]:
        seen.append((ctx.retry_count, ctx.attempt_number, ctx.max_attempts))
        if ctx.retry_count < 2:
            raise RuntimeError("not yet")
        return {"attempt": ctx.attempt_number}

    @local.task(name="always", retries=2)
    async def always(msg: In) -> None:
        raise RuntimeError("never works")

    run = await run_once(local, "flaky")
    assert run.state is RunState.SUCCEEDED
    assert run.output == {"attempt": 3}
    assert seen == [(0, 1, 3), (1, 2, 3), (2, 3, 3)]

    failed = await run_once(local, "always")
    assert failed.state is RunState.FAILED
    assert failed.attempts == 3
    assert isinstance(failed.error, RuntimeError)
    assert str(failed.error) == "never works"


async def test_a_non_retryable_exception_ends_the_run_at_once(
    local: HatchetMageflow,
) -> None:
    @local.task(name="fatal", retries=5)
    async def fatal(msg: In) -> None:
        raise NonRetryableException("stop")

    run = await run_once(local, "fatal")
    assert run.state is RunState.FAILED
    assert run.attempts == 1


async def test_execution_timeout_is_enforced_on_every_attempt(
    local: HatchetMageflow,
) -> None:
    never = asyncio.Event()

    @local.task(name="stuck", retries=1, execution_timeout=timedelta(milliseconds=50))
    async def stuck(msg: In) -> None:
        await never.wait()

    run = await run_once(local, "stuck")
    assert run.state is RunState.FAILED
    assert run.attempts == 2
    assert isinstance(run.error, TimeoutError)
    assert "execution_timeout" in str(run.error)
    assert run.finished is not None


# --- metadata ------------------------------------------------------------------


async def test_additional_metadata_reaches_ctx_and_the_context_variables(
    local: HatchetMageflow,
) -> None:
    seen: dict[str, Any] = {}

    @local.task(name="meta", retries=1)
    async def meta(msg: In, ctx: Context) -> None:
        seen["ctx"] = dict(ctx.additional_metadata)
        seen["var"] = ctx_additional_metadata.get()
        seen["retry"] = ctx_task_retry_count.get()
        if ctx.retry_count == 0:
            raise RuntimeError("retry me")

    run = await run_once(local, "meta", metadata={"tenant": "acme", "trace": "t-1"})
    assert run.state is RunState.SUCCEEDED, run.error
    assert seen["ctx"] == {"tenant": "acme", "trace": "t-1"}
    assert seen["var"] == {"tenant": "acme", "trace": "t-1"}
    assert seen["retry"] == 1
    # Nothing leaks back into the caller.
    assert ctx_additional_metadata.get() is None

    await backend(local).run(RunRequest("meta", {}, {"tenant": "other"}))
    assert seen["ctx"] == {"tenant": "other"}
    assert ctx_additional_metadata.get() is None


async def test_a_signed_run_carries_its_signature_id_in_the_metadata(
    local: HatchetMageflow,
) -> None:
    seen: dict[str, Any] = {}

    @local.task(name="signed")
    async def signed(msg: In, ctx: Context) -> None:
        seen.update(ctx.additional_metadata)

    sig = await local.sign(signed)
    run_id = await sig.aio_run_no_wait()
    await backend(local).drain()
    (run,) = [r for r in backend(local).runs if r.run_id == run_id]
    assert run.signature_id == sig.id
    assert seen["mageflow_signature_id"] == sig.id
    loaded = await local.load_signature(sig.id)
    assert loaded is not None
    assert loaded.status is SignatureStatus.DONE


# --- Hatchet Depends ----------------------------------------------------------

# At module level: the task's annotations name them, and this module
# uses ``from __future__ import annotations``.
events: list[str] = []


async def tenant(msg: In, ctx: Context) -> str:
    return str(ctx.additional_metadata.get("tenant", "none"))


def factor(msg: In, ctx: Context) -> int:
    return msg.n * 10


async def label(msg: In, ctx: Context, who: Annotated[str, Depends(tenant)]) -> str:
    return f"{who}:{msg.n}"


@asynccontextmanager
async def session_cm() -> AsyncIterator[str]:
    events.append("open")
    try:
        yield "session"
    finally:
        events.append("close")


async def session(msg: In, ctx: Context) -> Any:
    return session_cm()


async def test_depends_is_resolved_on_the_local_backend(
    local: HatchetMageflow,
) -> None:
    events.clear()

    @local.task(name="deps")
    async def deps(
        msg: In,
        scale: Annotated[int, Depends(factor)],
        tag: Annotated[str, Depends(label)],
        db: Annotated[str, Depends(session)],
    ) -> dict[str, Any]:
        events.append("task")
        return {"scale": scale, "tag": tag, "db": db}

    run = await run_once(local, "deps", {"n": 4}, {"tenant": "acme"})
    assert run.state is RunState.SUCCEEDED, run.error
    assert run.output == {"scale": 40, "tag": "acme:4", "db": "session"}
    assert events == ["open", "task", "close"]

    # And through a signature, whose run goes through the signed path.
    events.clear()
    sig = await local.sign(deps, n=2)
    assert await sig.aio_run() == {"scale": 20, "tag": "none:2", "db": "session"}
    assert events == ["open", "task", "close"]


async def test_stagger_extends_the_local_execution_timeout(redis_url: str) -> None:
    """The local backend keeps the deadline, so stagger's refresh must move it."""

    class Fixed(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return 0.4  # longer than the timeout below; extended by 1 s

    client = mageflow.Mageflow(redis_client=redis_url, backend="local")
    client.rng = Fixed()

    @client.task(name="staggered", execution_timeout=timedelta(milliseconds=250))
    @client.stagger_execution(wait_delta=timedelta(seconds=1))
    async def staggered(msg: dict[str, int]) -> dict[str, str]:
        return {"ran": "yes"}

    sig = await client.sign(staggered)
    assert await sig.aio_run({}) == {"ran": "yes"}
    await client.redis.aclose()


async def test_drain_says_when_the_idle_pass_never_settles(
    local: HatchetMageflow,
) -> None:
    dispatcher = local.dispatch_backend
    assert isinstance(dispatcher, LocalDispatcher)

    async def always_busy() -> bool:
        await asyncio.sleep(0)  # ok: yield, as a pass that talks to Redis does
        return True

    dispatcher.on_idle = always_busy
    with pytest.raises(TimeoutError, match=r"no run is in flight, but the idle pass"):
        await dispatcher.drain(timeout=0.2)


async def test_drain_names_the_runs_still_going(local: HatchetMageflow) -> None:
    gate = asyncio.Event()

    @local.task(name="stuck")
    async def stuck(msg: dict[str, int]) -> None:
        await gate.wait()

    signature = await local.sign(stuck)
    await signature.aio_run_no_wait({})
    dispatcher = local.dispatch_backend
    assert isinstance(dispatcher, LocalDispatcher)
    with pytest.raises(TimeoutError, match=r"1 local run\(s\) still in flight: stuck"):
        await dispatcher.drain(timeout=0.2)
    gate.set()
    await dispatcher.drain()
