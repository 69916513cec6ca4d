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
import json
import os
import time
from datetime import timedelta
from typing import Annotated, Any

from hatchet_sdk import Context, Depends, DurableContext, Hatchet
from pydantic import BaseModel

import mageflow
from mageflow import AcceptParams, ReturnValue, TaskError, TaskSignature, TTLConfig

hatchet = Hatchet()
# REDIS_URL from the environment. Recovery waits 5 s (not 30) before it acts
# on a start that has not begun, and workers run it every 2 s, so the tests
# that need it do not wait long; leases keep their default of 15 s, below
# the engine's 30 s heartbeat timeout.
mf = mageflow.Mageflow(hatchet, ttl=TTLConfig(grace=timedelta(seconds=5)))
mf.recovery_interval = timedelta(seconds=2)
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


# --- signatures and callbacks ----------------------------------------------------
#
# Every body below appends an event to ``e2e:events:<key>`` (a Redis list), so
# a test reads back what ran, in what order, with what input.


async def record_event(key: str, event: str, **data: Any) -> None:
    await mf.redis.rpush(f"e2e:events:{key}", json.dumps({"event": event, **data}))


class Order(BaseModel):
    key: str
    quantity: int = 1
    fail: bool = False
    fail_times: int = 0


class Receipt(BaseModel):
    key: str
    total: float


class OnReceipt(BaseModel):
    receipt: ReturnValue[Receipt]  # the result of the task it follows
    key: str  # bound when the callback is signed


class OnFailure(BaseModel):
    failure: ReturnValue[TaskError]  # the error payload
    key: str


@mf.task(name="e2e-price", retries=0)
async def price(msg: Order, ctx: Context) -> Receipt:
    await record_event(
        msg.key, "price", attempt=ctx.attempt_number, input=msg.model_dump()
    )
    if msg.fail:
        raise ValueError(f"out of {msg.key}")
    return Receipt(key=msg.key, total=2.5 * msg.quantity)


@mf.task(name="e2e-signed-retries", retries=RETRIES)
async def signed_retries(msg: Order, ctx: Context) -> Receipt:
    """Fails its first ``fail_times`` attempts, then succeeds."""
    count: int = await mf.redis.incr(f"e2e:count:{msg.key}")
    await record_event(msg.key, "attempt", attempt=ctx.attempt_number)
    if count <= msg.fail_times:
        raise RuntimeError(f"e2e: planned failure {count} of {msg.fail_times}")
    return Receipt(key=msg.key, total=float(count))


@mf.task(name="e2e-on-receipt")
async def on_receipt(msg: OnReceipt) -> None:
    await record_event(
        msg.key,
        "on-receipt",
        type=type(msg.receipt).__name__,
        receipt=msg.receipt.model_dump(),
    )


@mf.task(name="e2e-on-failure")
async def on_failure(msg: OnFailure) -> None:
    await record_event(
        msg.key,
        "on-failure",
        type=type(msg.failure).__name__,
        failure=msg.failure.model_dump(),
    )


# --- chains and swarms -------------------------------------------------------------


class Add(BaseModel):
    """``result`` (a previous step's ``{"v": n}``, if any) or ``x``, plus ``plus``."""

    result: Any = None
    x: int = 0
    plus: int = 0
    delay: float = 0.0


@mf.task(name="e2e-add")
async def add(msg: Add) -> dict[str, int]:
    base = msg.result["v"] if isinstance(msg.result, dict) else msg.x
    if msg.delay:
        await asyncio.sleep(msg.delay)  # ok: lets later items finish first
    return {"v": base + msg.plus}


class Collected(BaseModel):
    result: Any = None  # no ReturnValue field: the outcome comes here
    key: str


@mf.task(name="e2e-collect")
async def collect(msg: Collected) -> None:
    await record_event(msg.key, "collected", result=msg.result)


# The peak number of bodies running at once, measured in Redis, atomically.
ENTER = """
local now = redis.call('INCR', KEYS[1])
local peak = tonumber(redis.call('GET', KEYS[2]) or '0')
if now > peak then redis.call('SET', KEYS[2], now) end
return now
"""


class Item(BaseModel):
    key: str
    i: int
    hold: float = 0.0


@mf.task(name="e2e-swarm-item")
async def swarm_item(msg: Item) -> dict[str, int]:
    running, peak = f"e2e:running:{msg.key}", f"e2e:peak:{msg.key}"
    await mf.redis.eval(ENTER, 2, running, peak)
    try:
        await mf.redis.hincrby(f"e2e:runs:{msg.key}", str(msg.i), 1)
        if msg.hold:
            await asyncio.sleep(msg.hold)  # ok: hold the slot, so items overlap
    finally:
        await mf.redis.decr(running)
    return {"i": msg.i}


# --- liveness: timeouts, invalid inputs, stop ---------------------------------------


class Receipts(BaseModel):
    receipts: ReturnValue[list[Receipt]]  # a failed item's slot is not a Receipt
    key: str


@mf.task(name="e2e-total")
async def total(msg: Receipts) -> Receipt:
    await record_event(msg.key, "total")
    return Receipt(key=msg.key, total=sum(r.total for r in msg.receipts))


@mf.task(name="e2e-hang", retries=0, execution_timeout=timedelta(seconds=3))
async def hang(msg: Order, ctx: Context) -> Receipt:
    """Never returns on its own: its timeout, or a stop, ends it."""
    await record_event(msg.key, "hang-start", attempt=ctx.attempt_number)
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        await record_event(msg.key, "hang-cancelled", flagged=ctx.is_cancelled)
        raise
    return Receipt(key=msg.key, total=0.0)


@mf.task(name="e2e-long", retries=0, execution_timeout=timedelta(minutes=5))
async def long(msg: Order, ctx: Context) -> Receipt:
    """Like e2e-hang, with a timeout too long to matter: only a stop ends it."""
    await record_event(msg.key, "long-start")
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        await record_event(msg.key, "long-cancelled", flagged=ctx.is_cancelled)
        raise
    return Receipt(key=msg.key, total=0.0)


# --- results: retry, and a task written as the seeds write them ---------------------


class Once(BaseModel):
    result: Any = None
    key: str


@mf.task(name="e2e-fails-once", retries=0)
async def fails_once(msg: Once) -> dict[str, Any]:
    """Fails on its first call for a key, succeeds after (a retry's)."""
    calls = await mf.redis.incr(f"e2e:once:{msg.key}")
    if calls == 1:
        raise RuntimeError("the first call fails")
    return {"calls": calls, "got": msg.result}


class SeedInput(BaseModel):
    data: str


class SeedOutput(BaseModel):
    processed: str


@mf.task(name="e2e-seed-style", input_validator=SeedInput)
async def seed_style(msg: SeedInput):  # no return annotation, on purpose
    """No return annotation, as in the seeds: what it returns arrives whole."""
    return SeedOutput(processed=msg.data.upper())


ALL_TASKS = [
    fails_once,
    seed_style,
    total,
    hang,
    long,
    ping,
    annotated,
    with_ctx_task,
    with_signature_task,
    accept_all,
    stagger_task,
    timeout_control,
    durable_task,
    flaky,
    price,
    signed_retries,
    on_receipt,
    on_failure,
    add,
    collect,
    swarm_item,
]

# --- a worker killed mid-swarm --------------------------------------------------------
#
# Only the workers the SIGKILL test starts register these (worker.py with
# MAGEFLOW_E2E_WORKER_GROUP=kill), so their runs can only go to a worker the
# test controls.


UNIT_ENTER = """
redis.call('SADD', KEYS[1], ARGV[1])
local now = redis.call('SCARD', KEYS[1])
local peak = tonumber(redis.call('GET', KEYS[2]) or '0')
if now > peak then redis.call('SET', KEYS[2], now) end
return now
"""


class GatedItem(BaseModel):
    key: str
    i: int
    gate_from: int  # items from this index on wait for the gate to open


GATE_POLL = 0.05
GATE_TIMEOUT = 240.0


@mf.task(
    name="e2e-kill-item",
    retries=0,
    # Long enough that only a re-delivery (not a timeout) can rerun an item.
    execution_timeout=timedelta(minutes=5),
)
async def kill_item(msg: GatedItem, ctx: Context) -> dict[str, int]:
    await mf.redis.hincrby(f"e2e:starts:{msg.key}", str(msg.i), 1)
    # The items running now, as a set: a killed item stays in it until its
    # re-delivery ends, so its slot counts while the engine moves it.
    await mf.redis.eval(
        UNIT_ENTER, 2, f"e2e:units:{msg.key}", f"e2e:peak:{msg.key}", str(msg.i)
    )
    # which worker process ran this start, and the engine's attempt number
    where = json.dumps({"pid": os.getpid(), "attempt": ctx.attempt_number})
    await mf.redis.rpush(f"e2e:where:{msg.key}:{msg.i}", where)
    deadline = time.monotonic() + GATE_TIMEOUT
    while msg.i >= msg.gate_from and not await mf.redis.exists(f"e2e:gate:{msg.key}"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"e2e: the gate of {msg.key} never opened")
        await asyncio.sleep(GATE_POLL)  # ok: polling the gate's key
    await mf.redis.hincrby(f"e2e:done:{msg.key}", str(msg.i), 1)
    await mf.redis.srem(f"e2e:units:{msg.key}", str(msg.i))
    return {"i": msg.i}


@mf.task(name="e2e-kill-collect")
async def kill_collect(msg: Collected) -> None:
    await record_event(msg.key, "collected", result=msg.result)


class Frozen(BaseModel):
    key: str


@mf.task(name="e2e-freeze", retries=0, execution_timeout=timedelta(minutes=5))
async def freeze(msg: Frozen, ctx: Context) -> dict[str, int]:
    """Records which worker runs it, then waits for the test's gate."""
    await record_event(
        msg.key, "freeze-start", pid=os.getpid(), attempt=ctx.attempt_number
    )
    deadline = time.monotonic() + GATE_TIMEOUT
    while not await mf.redis.exists(f"e2e:gate:{msg.key}"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"e2e: the gate of {msg.key} never opened")
        await asyncio.sleep(GATE_POLL)  # ok: polling the gate's key
    await record_event(msg.key, "freeze-end", pid=os.getpid())
    return {"pid": os.getpid()}


KILL_TASKS = [kill_item, kill_collect, freeze]


# --- starts coalesced into bulk calls (test_engine_triggers.py) ----------------------


class Counted(BaseModel):
    key: str
    i: int


@mf.task(name="e2e-counted", retries=0)
async def counted(msg: Counted, ctx: Context) -> dict[str, int]:
    """Counts its runs per index, and records the run id it ran as."""
    await mf.redis.hincrby(f"e2e:counted:{msg.key}", str(msg.i), 1)
    await mf.redis.hset(f"e2e:counted-run:{msg.key}", str(msg.i), ctx.workflow_run_id)
    return {"i": msg.i}


ALL_TASKS.append(counted)


# --- root tasks and continuations (test_engine_dynamic.py) ---------------------------

ROOT_CAP = 5


class Fan(BaseModel):
    key: str
    n: int


class FanSummary(BaseModel):
    key: str
    started: int


class RootChild(BaseModel):
    key: str
    i: int
    hold: float = 0.0


@mf.task(name="e2e-root-child", retries=0, execution_timeout=timedelta(minutes=5))
async def root_child(msg: RootChild) -> dict[str, int]:
    """Counts its runs per index, then waits for the test's gate (so the
    root's body returns while its children still run)."""
    running, peak = f"e2e:root-running:{msg.key}", f"e2e:root-peak:{msg.key}"
    await mf.redis.eval(ENTER, 2, running, peak)
    try:
        await mf.redis.hincrby(f"e2e:root-runs:{msg.key}", str(msg.i), 1)
        deadline = time.monotonic() + GATE_TIMEOUT
        while not await mf.redis.exists(f"e2e:gate:{msg.key}"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"e2e: the gate of {msg.key} never opened")
            await asyncio.sleep(GATE_POLL)  # ok: polling the gate's key
        if msg.hold:
            await asyncio.sleep(msg.hold)  # ok: later starts finish first
    finally:
        await mf.redis.decr(running)
    return {"i": msg.i, "square": msg.i * msg.i}


@mf.task(name="e2e-root", retries=0, execution_timeout=timedelta(minutes=5))
@mf.root_task(max_concurrency=ROOT_CAP)
async def fan_out(msg: Fan) -> FanSummary:
    """Starts ``n`` children (each joins this run's children), records their
    signature ids in start order, and returns before they finish."""
    await record_event(msg.key, "root-body")
    for i in range(msg.n):
        # later children hold less, so within a wave later ones end first
        child = await mf.sign(root_child, key=msg.key, i=i, hold=0.02 * (msg.n - i))
        await mf.redis.rpush(f"e2e:root-children:{msg.key}", child.id)
        await child.aio_run_no_wait()
    return FanSummary(key=msg.key, started=msg.n)


class Route(BaseModel):
    key: str
    x: int
    result: Any = None  # a chain's previous step's, unused


class Branch(BaseModel):
    key: str
    x: int


@mf.task(name="e2e-branch-even", retries=0)
async def branch_even(msg: Branch) -> dict[str, Any]:
    await record_event(msg.key, "even", x=msg.x)
    return {"branch": "even", "v": msg.x * 10}


@mf.task(name="e2e-branch-odd", retries=0)
async def branch_odd(msg: Branch) -> dict[str, Any]:
    await record_event(msg.key, "odd", x=msg.x)
    return {"branch": "odd", "v": msg.x * 10}


@mf.task(name="e2e-route", retries=0)
async def route(
    msg: Route,
) -> dict[str, Any] | mageflow.Continue[dict[str, Any]]:
    """A negative ``x`` is answered at once; otherwise the run continues with
    the branch its parity picks."""
    await record_event(msg.key, "route", x=msg.x)
    if msg.x < 0:
        return {"branch": "direct", "v": msg.x * 10}
    target = branch_even if msg.x % 2 == 0 else branch_odd
    return mageflow.Continue(await mf.sign(target, key=msg.key, x=msg.x))


ALL_TASKS.extend([root_child, fan_out, branch_even, branch_odd, route])
