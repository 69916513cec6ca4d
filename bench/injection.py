"""What injection costs per call: mageflow's plan vs a direct call vs Hatchet.

    python bench/injection.py

mageflow works out a task's parameters once, when the task is decorated
(:func:`mageflow.injection.plan.build_plan`); each run only walks the plan
(:func:`~mageflow.injection.resolve.assemble`, or
:func:`~mageflow.injection.resolve.assemble_with_dependencies` when there are
``Depends``). Hatchet resolves ``Depends`` by reflecting on the function on
every run (``inspect.signature`` and ``get_origin`` per parameter, per
dependency).

Table 1 times the injection layer alone, on an already-validated message:

* direct:   the user's function, called with hand-built arguments (for a
            dependency: the dependency awaited by hand first);
* mageflow: the wrapper mageflow hands to Hatchet
            (:func:`mageflow.run.entry.make_task_callable`), which assembles
            the arguments from the plan and calls the function;
* hatchet:  Hatchet's per-run path for the same function declared with plain
            ``Hatchet.task``: ``task._unpack_dependencies_with_cleanup(ctx)``,
            then the call. Its input parsing (``_get_workflow_input``) is
            replaced by the already-validated message, so the column holds
            only what injection costs, like the other two.

Table 2 splits mageflow's number into its parts. Table 3 is what a worker
really does per run, Hatchet's runner steps unchanged
(``_unpack_dependencies_with_cleanup`` then ``aio_call``, input validation
included), for the plain Hatchet task and for the mageflow task.

Every number is the best of several repeats of many calls in one event loop,
with the garbage collector off while timing. This module deliberately does not
use ``from __future__ import annotations``: Hatchet's path reads raw
annotations and would not resolve ``Depends`` written as strings.
"""

import asyncio
import gc
import math
import os
import platform
import random
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from hatchet_sdk import Context, Depends, Hatchet
from hatchet_sdk.runnables.task import Task
from pydantic import BaseModel

import mageflow
from mageflow import AcceptParams, HatchetMageflow, TaskSignature, scope
from mageflow.injection.plan import InjectionPlan, PlanCell, build_plan
from mageflow.injection.resolve import Exits, assemble, assemble_with_dependencies
from mageflow.markers import read_marks
from mageflow.run.entry import make_task_callable
from mageflow.run.runtime import TaskRuntime
from mageflow.testing import offline_hatchet

REPEATS = 7
TARGET_REPEAT_NS = 40_000_000  # each repeat runs about this long
OVERHEAD_TARGET_NS = 1_000
RATIO_TARGET = 5.0


class In(BaseModel):
    value: int


class Out(BaseModel):
    doubled: int


OUT = Out(doubled=2)  # returned by every task, so the body costs next to nothing


# --- the scenarios --------------------------------------------------------


async def only_ctx(msg: In, ctx: Context) -> Out:
    return OUT


async def ctx_signature_default(
    msg: In, ctx: Context, signature: TaskSignature | None = None, scale: int = 2
) -> Out:
    return OUT


async def the_answer(msg: In, ctx: Context) -> int:
    return 42


async def one_dependency(
    msg: In, ctx: Context, answer: Annotated[int, Depends(the_answer)]
) -> Out:
    return OUT


Loop = Callable[[int], Awaitable[None]]


def _direct_only_ctx(msg: In, ctx: Context) -> Loop:
    async def loop(n: int) -> None:
        for _ in range(n):
            await only_ctx(msg, ctx)

    return loop


def _direct_ctx_signature_default(msg: In, ctx: Context) -> Loop:
    async def loop(n: int) -> None:
        for _ in range(n):
            await ctx_signature_default(msg, ctx, None)

    return loop


def _direct_one_dependency(msg: In, ctx: Context) -> Loop:
    async def loop(n: int) -> None:
        for _ in range(n):
            await one_dependency(msg, ctx, await the_answer(msg, ctx))

    return loop


@dataclass
class Scenario:
    label: str
    fn: Callable[..., Coroutine[Any, Any, Out]]
    direct: Callable[[In, Context], Loop]
    """The direct call, written out by hand, in a loop."""


SCENARIOS = [
    Scenario("1. msg, ctx: Context", only_ctx, _direct_only_ctx),
    Scenario(
        "2. msg, ctx, sig | None, default",
        ctx_signature_default,
        _direct_ctx_signature_default,
    ),
    Scenario("3. msg, Depends(async fn)", one_dependency, _direct_one_dependency),
]


# --- timing ---------------------------------------------------------------


async def best_ns_per_call(loop: Loop) -> float:
    """Best-of-``REPEATS`` nanoseconds per call; ``n`` is calibrated first."""
    await loop(200)  # warm-up
    n = 1_000
    while True:
        start = time.perf_counter_ns()
        await loop(n)
        elapsed = time.perf_counter_ns() - start
        if elapsed >= TARGET_REPEAT_NS // 10 or n >= 10_000_000:
            break
        n *= 4
    n = max(1_000, math.ceil(n * TARGET_REPEAT_NS / max(elapsed, 1)))
    best = math.inf
    for _ in range(REPEATS):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter_ns()
            await loop(n)
            elapsed = time.perf_counter_ns() - start
        finally:
            gc.enable()
        best = min(best, elapsed / n)
    return best


# --- the loops being timed ------------------------------------------------


def mageflow_loop(
    run_task: Callable[..., Awaitable[Any]], msg: In, ctx: Context
) -> Loop:
    async def loop(n: int) -> None:
        for _ in range(n):
            await run_task(msg, ctx)

    return loop


def assemble_only_loop(plan: InjectionPlan, msg: In, ctx: Context) -> Loop:
    """Only the argument assembly: no function call, no wrapper."""
    if plan.has_dependencies:

        async def with_dependencies(n: int) -> None:
            for _ in range(n):
                exits = Exits()
                await assemble_with_dependencies(plan, msg, ctx, None, exits, {})
                await exits.close(None)

        return with_dependencies

    async def static(n: int) -> None:
        for _ in range(n):
            assemble(plan, msg, ctx, None)

    return static


def assemble_and_call_loop(plan: InjectionPlan, msg: In, ctx: Context) -> Loop:
    """Assembly plus the call, without the wrapper's bookkeeping."""
    fn = plan.fn
    if plan.has_dependencies:

        async def with_dependencies(n: int) -> None:
            for _ in range(n):
                exits = Exits()
                args, kwargs = await assemble_with_dependencies(
                    plan, msg, ctx, None, exits, {}
                )
                await fn(*args, **kwargs)
                await exits.close(None)

        return with_dependencies

    async def static(n: int) -> None:
        for _ in range(n):
            args, kwargs = assemble(plan, msg, ctx, None)
            await fn(*args, **kwargs)

    return static


def hatchet_injection_loop(task: Task[Any, Any], msg: In, ctx: Context) -> Loop:
    fn: Callable[..., Awaitable[Any]] = task._fn  # type: ignore[assignment]

    async def loop(n: int) -> None:
        for _ in range(n):
            async with task._unpack_dependencies_with_cleanup(ctx) as deps:
                await fn(msg, ctx, **deps)

    return loop


def runner_loop(task: Task[Any, Any], ctx: Context) -> Loop:
    """What Hatchet's runner does per run of an async task (runner.py)."""

    async def loop(n: int) -> None:
        for _ in range(n):
            async with task._unpack_dependencies_with_cleanup(ctx) as deps:
                await task.aio_call(ctx, deps)

    return loop


@contextmanager
def validated_input(task: Task[Any, Any], msg: In) -> Iterator[None]:
    """Let Hatchet's path skip input parsing: hand it the validated message."""
    workflow: Any = task._workflow
    workflow._get_workflow_input = lambda _ctx: msg
    try:
        yield
    finally:
        del workflow._get_workflow_input


# --- report ---------------------------------------------------------------


def machine() -> str:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return "\n".join(
        [
            f"platform: {platform.platform()}",
            f"python:   {sys.version.split()[0]} ({platform.python_implementation()})",
            f"cpu:      {cpu}",
            f"nproc:    {usable}",
        ]
    )


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    rule = "-+-".join("-" * w for w in widths)
    body = [
        " | ".join(
            (c.ljust(w) if i == 0 else c.rjust(w))
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    return "\n".join([line, rule, *body])


@dataclass
class Measured:
    scenario: Scenario
    direct: float
    mageflow: float
    hatchet: float
    assemble_only: float
    assemble_and_call: float
    runner_hatchet: float
    runner_mageflow: float

    @property
    def overhead(self) -> float:
        return self.mageflow - self.direct

    @property
    def ratio(self) -> float:
        return self.hatchet / self.mageflow


async def measure(
    number: int, scenario: Scenario, hatchet: Hatchet, client: HatchetMageflow
) -> Measured:
    msg = In(value=1)
    plain = hatchet.task(name=f"plain-{number}", input_validator=In)(scenario.fn)
    wrapped = client.task(name=f"mageflow-{number}")(scenario.fn)
    ctx = plain._task._create_mock_context(msg)
    plan = build_plan(
        scenario.fn,
        task_name=f"bench-{number}",
        durable=False,
        config=AcceptParams.NO_CTX,
        marks=read_marks(scenario.fn),
    )
    runtime = TaskRuntime(
        client.engine,
        client.dependency_overrides,
        random.Random(),
        scope.in_effect,
        client,
    )
    run_task = make_task_callable(PlanCell(plan), runtime)

    # The paths must all work before they are timed.
    await scenario.direct(msg, ctx)(1)
    assert await run_task(msg, ctx) is OUT
    for task in (plain._task, wrapped._task):
        async with task._unpack_dependencies_with_cleanup(ctx) as deps:
            assert await task.aio_call(ctx, deps) is OUT

    direct = await best_ns_per_call(scenario.direct(msg, ctx))
    ours = await best_ns_per_call(mageflow_loop(run_task, msg, ctx))
    with validated_input(plain._task, msg):
        theirs = await best_ns_per_call(hatchet_injection_loop(plain._task, msg, ctx))
    only = await best_ns_per_call(assemble_only_loop(plan, msg, ctx))
    with_call = await best_ns_per_call(assemble_and_call_loop(plan, msg, ctx))
    runner_hatchet = await best_ns_per_call(runner_loop(plain._task, ctx))
    runner_mageflow = await best_ns_per_call(runner_loop(wrapped._task, ctx))
    return Measured(
        scenario,
        direct,
        ours,
        theirs,
        only,
        with_call,
        runner_hatchet,
        runner_mageflow,
    )


def ns(value: float) -> str:
    return f"{value:,.0f}"


def report(results: list[Measured]) -> None:
    misses: list[str] = []
    for r in results:
        label = r.scenario.label
        if r.overhead >= OVERHEAD_TARGET_NS:
            misses.append(
                f"{label}: overhead {ns(r.overhead)} ns, "
                f"{ns(r.overhead - OVERHEAD_TARGET_NS)} ns over the target"
            )
        if r.ratio < RATIO_TARGET:
            misses.append(
                f"{label}: Hatchet/mageflow {r.ratio:.1f}x, "
                f"{RATIO_TARGET - r.ratio:.1f}x short of the target"
            )

    print("1. Injection alone (ns per call; input already validated)")
    headers = [
        "scenario",
        "direct ns/call",
        "mageflow ns/call",
        "overhead ns",
        "hatchet ns/call",
        "hatchet/mageflow",
    ]
    rows = [
        [
            r.scenario.label,
            ns(r.direct),
            ns(r.mageflow),
            ns(r.overhead),
            ns(r.hatchet),
            f"{r.ratio:.1f}x",
        ]
        for r in results
    ]
    print(table(headers, rows))
    print(
        f"targets: overhead < {OVERHEAD_TARGET_NS:,} ns per call; "
        f"mageflow >= {RATIO_TARGET:g}x faster than Hatchet's path"
    )
    print("result:  " + ("all targets met" if not misses else "MISSED"))
    for miss in misses:
        print(f"  - {miss}")

    print("\n2. Where mageflow's time goes (ns per call)")
    headers = [
        "scenario",
        "assemble only",
        "assemble + call",
        "full wrapper",
        "wrapper bookkeeping",
    ]
    rows = [
        [
            r.scenario.label,
            ns(r.assemble_only),
            ns(r.assemble_and_call),
            ns(r.mageflow),
            ns(r.mageflow - r.assemble_and_call),
        ]
        for r in results
    ]
    print(table(headers, rows))
    print(
        "\n3. Per run on a worker: Hatchet's runner steps "
        "(_unpack_dependencies_with_cleanup + aio_call), input validation included"
    )
    headers = [
        "scenario",
        "plain Hatchet task",
        "mageflow task",
        "hatchet/mageflow",
    ]
    rows = [
        [
            r.scenario.label,
            ns(r.runner_hatchet),
            ns(r.runner_mageflow),
            f"{r.runner_hatchet / r.runner_mageflow:.1f}x",
        ]
        for r in results
    ]
    print(table(headers, rows))


async def main() -> None:
    print(machine())
    print(f"best of {REPEATS} repeats of ~{TARGET_REPEAT_NS // 1_000_000} ms each\n")
    hatchet = offline_hatchet()
    client = mageflow.Mageflow(hatchet)
    results = [
        await measure(number, scenario, hatchet, client)
        for number, scenario in enumerate(SCENARIOS, start=1)
    ]
    report(results)


if __name__ == "__main__":
    asyncio.run(main())
