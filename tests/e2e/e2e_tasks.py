"""The tasks the end-to-end suite runs on a real Hatchet engine.

Imported twice: by ``worker.py`` (in the worker subprocess, which registers
and runs them) and by the tests (which trigger runs through the engine). Both
sides build their clients from the same environment: ``HATCHET_CLIENT_*``
(from ``scripts/hatchet-engine env``, plus a per-session namespace) and
``REDIS_URL`` (the suite's redis-server). Importing this module needs that
environment, so the tests import it from a fixture, never at collection.

Facts the tests check are written by the tasks into Redis (attempt numbers,
what a parameter received) or returned as the run's output.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Annotated, Any

from hatchet_sdk import Context, Depends, DurableContext, Hatchet
from pydantic import BaseModel

import mageflow
from mageflow import AcceptParams, TaskSignature

hatchet = Hatchet()
mf = mageflow.Mageflow(hatchet)  # REDIS_URL from the environment
mf_all = mageflow.Mageflow(hatchet, param_config=AcceptParams.ALL)

# stagger: a window much longer than the timeout, so most delays outlast it
STAGGER_WINDOW = timedelta(seconds=10)
STAGGER_TIMEOUT = timedelta(seconds=2)


class Probe(BaseModel):
    key: str
    fail_times: int = 0


class Seen(BaseModel):
    """What a task's parameters received, as plain facts."""

    ctx_type: str = ""
    run_id: str = ""
    attempt: int = 0
    dependency: str = ""
    signature_is_none: bool | None = None
    extra: dict[str, Any] = {}


async def record_attempt(key: str, ctx: Context) -> int:
    """Append this attempt's number to ``e2e:attempts:<key>``; return the count."""
    count: int = await mf.redis.rpush(f"e2e:attempts:{key}", ctx.attempt_number)
    return count


# --- readiness -----------------------------------------------------------------


@mf.task(name="e2e-ping")
async def ping(msg: Probe) -> Seen:
    return Seen(extra={"pong": msg.key})


# --- injection by annotation ------------------------------------------------------


async def dependency(msg: Probe, ctx: Context) -> str:
    # a dependency receives (input, ctx) like the task, on the real run
    return f"dep:{msg.key}:{ctx.workflow_run_id}"


@mf.task(name="e2e-annotated")
async def annotated(
    msg: Probe,
    ctx: Context,
    dep: Annotated[str, Depends(dependency)],
) -> Seen:
    return Seen(
        ctx_type=type(ctx).__name__,
        run_id=ctx.workflow_run_id,
        attempt=ctx.attempt_number,
        dependency=dep,
    )


# --- marks -------------------------------------------------------------------


@mf.task(name="e2e-with-ctx")
@mf.with_ctx
async def with_ctx_task(msg: Probe, ctx) -> Seen:
    return Seen(ctx_type=type(ctx).__name__, run_id=ctx.workflow_run_id)


@mf.task(name="e2e-with-signature")
@mf.with_signature
async def with_signature_task(msg: Probe, signature: TaskSignature | None) -> Seen:
    return Seen(signature_is_none=signature is None)


@mf_all.task(name="e2e-accept-all")
async def accept_all(msg: Probe, ctx, signature) -> Seen:
    return Seen(
        ctx_type=type(ctx).__name__,
        run_id=ctx.workflow_run_id,
        signature_is_none=signature is None,
    )


# --- stagger_execution with a real refresh_timeout ------------------------------


@mf.task(name="e2e-stagger", execution_timeout=STAGGER_TIMEOUT, retries=0)
@mf.stagger_execution(wait_delta=STAGGER_WINDOW)
async def stagger_task(msg: Probe, ctx: Context) -> Seen:
    """Its body starts after a random delay of up to STAGGER_WINDOW, which
    outlasts execution_timeout unless mageflow really refreshed it."""
    body_started = time.time()
    await record_attempt(msg.key, ctx)
    return Seen(run_id=ctx.workflow_run_id, extra={"body_started": body_started})


@mf.task(name="e2e-timeout-control", execution_timeout=STAGGER_TIMEOUT, retries=0)
async def timeout_control(msg: Probe, ctx: Context) -> Seen:
    """The same timeout, the same wait, no stagger: the engine must cancel it."""
    await record_attempt(msg.key, ctx)
    outlive = STAGGER_WINDOW.total_seconds() * 2
    await asyncio.sleep(outlive)  # ok: the engine must cancel this first
    return Seen(extra={"outlived_timeout": True})


# --- durable --------------------------------------------------------------------


@mf.durable_task(name="e2e-durable", execution_timeout=timedelta(seconds=60))
async def durable_task(msg: Probe, ctx: DurableContext) -> Seen:
    await record_attempt(msg.key, ctx)
    slept = await ctx.aio_sleep_for(
        timedelta(seconds=1)
    )  # a durable, engine-side sleep
    return Seen(
        ctx_type=type(ctx).__name__,
        run_id=ctx.workflow_run_id,
        extra={"slept": str(slept)},
    )


# --- retries --------------------------------------------------------------------

RETRIES = 2


@mf.task(name="e2e-retries", retries=RETRIES)
async def flaky(msg: Probe, ctx: Context) -> Seen:
    """Fails its first ``fail_times`` attempts, then succeeds."""
    count = await record_attempt(msg.key, ctx)
    if count <= msg.fail_times:
        raise RuntimeError(f"e2e: planned failure {count} of {msg.fail_times}")
    return Seen(attempt=ctx.attempt_number)


ALL_TASKS = [
    ping,
    annotated,
    with_ctx_task,
    with_signature_task,
    accept_all,
    stagger_task,
    timeout_control,
    durable_task,
    flaky,
]
