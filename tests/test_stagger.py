"""stagger_execution: a random delay, announced to the engine and the log first."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from hatchet_sdk import Context
from pydantic import BaseModel

from mageflow import HatchetMageflow


class In(BaseModel):
    value: int


class Out(BaseModel):
    value: int


@pytest.fixture
def context_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Record what the task asks of its real Context on the engine's behalf.

    There is no engine in unit tests, so the two calls that would reach it are
    recorded instead; the end-to-end suite makes them against a real engine.
    """
    calls: list[tuple[str, Any]] = []

    async def aio_refresh_timeout(self: Context, increment_by: timedelta) -> None:
        calls.append(("refresh_timeout", increment_by))

    def log(self: Context, line: str, raise_on_error: bool = False) -> None:
        calls.append(("log", line))

    monkeypatch.setattr(Context, "aio_refresh_timeout", aio_refresh_timeout)
    monkeypatch.setattr(Context, "log", log)
    return calls


async def test_stagger_refreshes_the_timeout_then_logs_then_runs(
    client: HatchetMageflow, context_calls: list[tuple[str, Any]]
) -> None:
    window = timedelta(milliseconds=300)

    @client.task(name="staggered")
    @client.stagger_execution(wait_delta=window)
    async def staggered(msg: In) -> Out:  # no ctx parameter needed
        context_calls.append(("ran", msg.value))
        return Out(value=msg.value)

    for attempt in range(5):
        context_calls.clear()
        assert await staggered.aio_mock_run(In(value=attempt)) == Out(value=attempt)

        kinds = [kind for kind, _ in context_calls]
        assert kinds[-1] == "ran"
        (logged,) = [line for kind, line in context_calls if kind == "log"]
        match = re.search(r"by (\d+\.\d+)s", logged)
        assert match, logged
        delay = float(match.group(1))
        assert 0.0 <= delay <= window.total_seconds()
        refreshes = [
            value for kind, value in context_calls if kind == "refresh_timeout"
        ]
        if delay > 0:
            # The engine counts whole seconds: the extension is rounded up.
            assert refreshes == [timedelta(seconds=1)]
            assert kinds.index("refresh_timeout") < kinds.index("log")


async def test_stagger_composes_with_injection_in_either_order(
    client: HatchetMageflow, context_calls: list[tuple[str, Any]]
) -> None:
    @client.task(name="both-orders-a")
    @client.with_ctx
    @client.stagger_execution(wait_delta=timedelta(milliseconds=10))
    async def a(msg: In, ctx: Context) -> Out:
        return Out(value=ctx.attempt_number)

    @client.task(name="both-orders-b")
    @client.stagger_execution(wait_delta=timedelta(milliseconds=10))
    @client.with_ctx
    async def b(msg: In, ctx: Context) -> Out:
        return Out(value=ctx.attempt_number)

    for task in (a, b):
        assert await task.aio_mock_run(In(value=0), retry_count=2) == Out(value=3)
        assert "stagger" in client.explain(task)
    assert sum(kind == "log" for kind, _ in context_calls) == 2


def test_stagger_rejects_a_negative_or_non_timedelta_window(
    client: HatchetMageflow,
) -> None:
    with pytest.raises(ValueError, match="non-negative timedelta"):
        client.stagger_execution(wait_delta=timedelta(seconds=-1))
    with pytest.raises(ValueError, match="timedelta"):
        client.stagger_execution(wait_delta=5)  # type: ignore[arg-type]
