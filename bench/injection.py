"""What injection costs per call: mageflow's run path vs a direct call vs Hatchet.

    python bench/injection.py

mageflow works out a task's parameters once, when the task is decorated
(:func:`mageflow.injection.plan.build_plan`), and makes, also once, the run
for that plan's shape (:func:`mageflow.injection.resolve.unsigned_call`):
for ``(msg, ctx)`` that is the task function itself. A run only checks that
it has no signature, no values given by name and no test overrides, then
calls it. Hatchet resolves ``Depends`` by reflecting on the function on every
run (``inspect.signature`` and ``get_origin`` per parameter, per dependency).

Every column is measured in this one run, in the same event loop, the
variants of a scenario taking turns repeat by repeat (so a noisy neighbour
slows them alike), with the garbage collector off while timing:

* direct:  the user's function, called with hand-built arguments (for a
           dependency: the dependency awaited by hand first);
* after:   the wrapper mageflow hands to Hatchet
           (:func:`mageflow.run.entry.make_task_callable`), as it is now;
* before:  the wrapper as it was before the shorter path (a copy, kept in
           this file only: :func:`before_task_callable`), on the same plan;
* hatchet: Hatchet's per-run path for the same function declared with plain
           ``Hatchet.task``: ``task._unpack_dependencies_with_cleanup(ctx)``,
           then the call. Its input parsing (``_get_workflow_input``) is
           replaced by the already-validated message, so the column holds
           only what injection costs, like the others.

Table 1 is the overhead over the direct call, against its target; table 2
the raw numbers; table 3 splits mageflow's number into its parts; table 4 is
what a worker really does per run, Hatchet's runner steps unchanged
(``_unpack_dependencies_with_cleanup`` then ``aio_call``, input validation
included), for the plain Hatchet task and for the mageflow task.

Each number is per call, from ``REPEATS`` repeats of about
``TARGET_REPEAT_NS`` each: the best (the least disturbed) and the median.
An overhead is ``after - direct`` of the bests, and of the medians. Ratios
compare numbers of this run only. This module deliberately does not use
``from __future__ import annotations``: Hatchet's path reads raw annotations
and would not resolve ``Depends`` written as strings.
"""

import asyncio
import gc
import math
import os
import platform
import random
import statistics
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
from mageflow import (
    AcceptParams,
    HatchetMageflow,
    MissingSignatureError,
    TaskSignature,
    scope,
)
from mageflow.dispatch import SIGNATURE_ID
from mageflow.injection.plan import InjectionPlan, PlanCell, Source, build_plan
from mageflow.injection.resolve import Exits, assemble_with_dependencies, unsigned_call
from mageflow.markers import read_marks
from mageflow.run.entry import make_task_callable
from mageflow.run.runtime import TaskRuntime
from mageflow.run.signed import run_signed
from mageflow.testing import offline_hatchet

REPEATS = 7
TARGET_REPEAT_NS = 40_000_000  # each repeat runs about this long
RATIO_TARGET = 5.0  # mageflow's path at least this many times faster than Hatchet's


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
    target_ns: int
    """The most mageflow may add to the direct call (the performance issue's
    targets: 1.0 us without ``Depends``, 1.5 us with one)."""


SCENARIOS = [
    Scenario("1. msg, ctx: Context", only_ctx, _direct_only_ctx, 1_000),
    Scenario(
        "2. msg, ctx, sig | None, default",
        ctx_signature_default,
        _direct_ctx_signature_default,
        1_000,
    ),
    Scenario(
        "3. msg, ctx, Depends(async fn)",
        one_dependency,
        _direct_one_dependency,
        1_500,
    ),
]


# --- the path before the shorter one, for comparison ------------------------
#
# A copy of mageflow.run.entry's wrapper, mageflow.run.call's call_user and
# mageflow.injection.resolve's assemble as they were before
# resolve.unsigned_call: every unsigned run walked the plan into a list and
# a dict, and a run with dependencies went through call_user. Kept here so
# that before and after are measured in one run; mageflow itself has only
# the new path.

_CONTEXT, _SIGNATURE = Source.CONTEXT, Source.SIGNATURE


def _before_assemble(
    plan: InjectionPlan, message: object, ctx: object, signature: object
) -> tuple[list[Any], dict[str, Any]]:
    args: list[Any] = [message]
    for param in plan.positional:
        source = param.source
        args.append(
            ctx
            if source is _CONTEXT
            else signature
            if source is _SIGNATURE
            else param.default
        )
    kwargs: dict[str, Any] = {}
    for param in plan.keyword:
        source = param.source
        kwargs[param.name] = (
            ctx
            if source is _CONTEXT
            else signature
            if source is _SIGNATURE
            else param.default
        )
    return args, kwargs


async def _before_call_user(
    plan: InjectionPlan,
    input: Any,
    ctx: Context,
    signature: TaskSignature | None,
    provided: dict[str, Any],
    runtime: TaskRuntime,
) -> Any:
    if plan.stagger is not None:
        raise NotImplementedError("no scenario here staggers")
    overrides = runtime.overrides
    if plan.has_dependencies or provided or overrides:
        exits = Exits()
        try:
            args, kwargs = await assemble_with_dependencies(
                plan, input, ctx, signature, exits, provided, overrides or None
            )
            if plan.is_async:
                result = await plan.fn(*args, **kwargs)
            else:
                result = await asyncio.to_thread(plan.fn, *args, **kwargs)
        except BaseException as exc:
            if exits.stack is not None and await exits.close(exc):
                return None
            raise
        if exits.stack is not None:
            await exits.close(None)
        return result
    args, kwargs = _before_assemble(plan, input, ctx, signature)
    if plan.is_async:
        return await plan.fn(*args, **kwargs)
    return await asyncio.to_thread(plan.fn, *args, **kwargs)


def before_task_callable(
    cell: PlanCell, runtime: TaskRuntime
) -> Callable[..., Awaitable[Any]]:
    """``make_task_callable``'s wrapper as it was before the shorter path."""
    scope, owner = runtime.scope, runtime.owner

    async def run_task(input: Any, ctx: Context, **provided: Any) -> Any:
        plan = cell.plan
        if plan.unresolved:
            plan = cell.current()
        metadata = ctx.additional_metadata
        if scope.get() is not owner:
            scope.set(owner)
        if metadata and SIGNATURE_ID in metadata:
            return await run_signed(
                plan,
                input,
                ctx,
                str(metadata[SIGNATURE_ID]),
                metadata,
                provided,
                runtime,
            )
        if plan.requires_signature:
            raise MissingSignatureError("requires a signature")
        plain = not plan.has_dependencies and plan.stagger is None
        if plain and not provided and not runtime.overrides:
            args, kwargs = _before_assemble(plan, input, ctx, None)
            if plan.is_async:
                return await plan.fn(*args, **kwargs)
            return await asyncio.to_thread(plan.fn, *args, **kwargs)
        return await _before_call_user(plan, input, ctx, None, provided, runtime)

    return run_task


# --- timing ---------------------------------------------------------------


@dataclass
class Samples:
    """Nanoseconds per call, one number per repeat."""

    values: list[float]

    @property
    def best(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)


async def calibrate(loop: Loop) -> int:
    """How many calls make a repeat of about ``TARGET_REPEAT_NS``."""
    await loop(200)  # warm-up
    n = 1_000
    while True:
        start = time.perf_counter_ns()
        await loop(n)
        elapsed = time.perf_counter_ns() - start
        if elapsed >= TARGET_REPEAT_NS // 10 or n >= 10_000_000:
            break
        n *= 4
    return max(1_000, math.ceil(n * TARGET_REPEAT_NS / max(elapsed, 1)))


async def measure_together(loops: dict[str, Loop]) -> dict[str, Samples]:
    """``REPEATS`` repeats of each loop, the loops taking turns in each repeat."""
    counts = {name: await calibrate(loop) for name, loop in loops.items()}
    samples: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(REPEATS):
        for name, loop in loops.items():
            n = counts[name]
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter_ns()
                await loop(n)
                elapsed = time.perf_counter_ns() - start
            finally:
                gc.enable()
            samples[name].append(elapsed / n)
    return {name: Samples(values) for name, values in samples.items()}


# --- the loops being timed ------------------------------------------------


def call_loop(run_task: Callable[..., Awaitable[Any]], msg: In, ctx: Context) -> Loop:
    async def loop(n: int) -> None:
        for _ in range(n):
            await run_task(msg, ctx)

    return loop


def before_assemble_only_loop(plan: InjectionPlan, msg: In, ctx: Context) -> Loop:
    """The old path's argument assembly alone: no function call, no wrapper."""
    if plan.has_dependencies:

        async def with_dependencies(n: int) -> None:
            for _ in range(n):
                exits = Exits()
                await assemble_with_dependencies(plan, msg, ctx, None, exits, {})
                await exits.close(None)

        return with_dependencies

    async def static(n: int) -> None:
        for _ in range(n):
            _before_assemble(plan, msg, ctx, None)

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


def load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


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
    if cpu == "unknown":
        cpu = platform.processor() or platform.machine() or "unknown"
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return "\n".join(
        [
            f"platform: {platform.platform()}",
            f"python:   {sys.version.split()[0]} ({platform.python_implementation()})",
            f"cpu:      {cpu}",
            f"cores:    {usable} usable of {os.cpu_count()}",
            f"load:     {load()} (1, 5, 15 min) at the start",
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
    direct: Samples
    after: Samples
    before: Samples
    hatchet: Samples
    shorter_alone: Samples
    before_assemble_only: Samples
    runner_hatchet: Samples
    runner_mageflow: Samples

    def overhead(self, samples: Samples) -> tuple[float, float]:
        """Over the direct call: of the bests, of the medians."""
        return (
            samples.best - self.direct.best,
            samples.median - self.direct.median,
        )

    def verdict(self) -> str:
        best, median = self.overhead(self.after)
        target = self.scenario.target_ns
        if median <= target:
            return "met"
        if best <= target:
            return "met on best only"
        return "MISSED"


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
    after = make_task_callable(PlanCell(plan), runtime)
    before = before_task_callable(PlanCell(plan), runtime)
    shorter = unsigned_call(plan)

    # The paths must all work, and agree, before they are timed.
    await scenario.direct(msg, ctx)(1)
    assert await after(msg, ctx) is OUT
    assert await before(msg, ctx) is OUT
    assert await shorter(msg, ctx) is OUT
    for task in (plain._task, wrapped._task):
        async with task._unpack_dependencies_with_cleanup(ctx) as deps:
            assert await task.aio_call(ctx, deps) is OUT

    with validated_input(plain._task, msg):
        samples = await measure_together(
            {
                "direct": scenario.direct(msg, ctx),
                "after": call_loop(after, msg, ctx),
                "before": call_loop(before, msg, ctx),
                "hatchet": hatchet_injection_loop(plain._task, msg, ctx),
                "shorter alone": call_loop(shorter, msg, ctx),
                "before assemble only": before_assemble_only_loop(plan, msg, ctx),
            }
        )
    runners = await measure_together(
        {
            "hatchet": runner_loop(plain._task, ctx),
            "mageflow": runner_loop(wrapped._task, ctx),
        }
    )
    return Measured(
        scenario,
        direct=samples["direct"],
        after=samples["after"],
        before=samples["before"],
        hatchet=samples["hatchet"],
        shorter_alone=samples["shorter alone"],
        before_assemble_only=samples["before assemble only"],
        runner_hatchet=runners["hatchet"],
        runner_mageflow=runners["mageflow"],
    )


def ns(value: float) -> str:
    return f"{value:,.0f}"


def pair(best: float, median: float) -> str:
    """``best / median``, in ns."""
    return f"{ns(best)} / {ns(median)}"


def of(samples: Samples) -> str:
    return pair(samples.best, samples.median)


def report(results: list[Measured]) -> None:
    print(
        "1. Overhead over a direct call, ns per call (best / median of "
        f"{REPEATS}); verdict on the median, or on the best if only it meets"
    )
    headers = [
        "scenario",
        "before",
        "after",
        "target",
        "verdict",
        "before/after",
    ]
    rows = []
    for r in results:
        before = r.overhead(r.before)
        after = r.overhead(r.after)
        rows.append(
            [
                r.scenario.label,
                pair(*before),
                pair(*after),
                f"<= {ns(r.scenario.target_ns)}",
                r.verdict(),
                f"{before[0] / after[0]:.1f}x" if after[0] > 0 else "-",
            ]
        )
    print(table(headers, rows))
    verdicts = [r.verdict() for r in results]
    print(
        "result: "
        + (
            "all targets met"
            if all(v == "met" for v in verdicts)
            else "all targets met on the best"
            if "MISSED" not in verdicts
            else "MISSED"
        )
    )

    print(f"\n2. Per call, ns (best / median of {REPEATS}), input already validated")
    headers = [
        "scenario",
        "direct",
        "mageflow before",
        "mageflow after",
        "hatchet",
        f"hatchet/after (>= {RATIO_TARGET:g}x)",
    ]
    rows = []
    for r in results:
        ratio = r.hatchet.best / r.after.best
        rows.append(
            [
                r.scenario.label,
                of(r.direct),
                of(r.before),
                of(r.after),
                of(r.hatchet),
                f"{ratio:.1f}x {'met' if ratio >= RATIO_TARGET else 'MISSED'}",
            ]
        )
    print(table(headers, rows))

    print("\n3. Where mageflow's time goes, ns per call (best / median)")
    headers = [
        "scenario",
        "before: assemble only",
        "after: shorter path alone",
        "after: full wrapper",
        "after: wrapper bookkeeping",
    ]
    rows = [
        [
            r.scenario.label,
            of(r.before_assemble_only),
            of(r.shorter_alone),
            of(r.after),
            pair(
                r.after.best - r.shorter_alone.best,
                r.after.median - r.shorter_alone.median,
            ),
        ]
        for r in results
    ]
    print(table(headers, rows))
    print(
        "   shorter path alone: resolve.unsigned_call(plan) awaited. Without "
        "Depends it is the task\n"
        "   function itself (scenario 1) or one lambda (2); with one it is a "
        "coroutine that awaits the\n"
        "   dependency, then calls the task (3). The bookkeeping is the "
        "wrapper's own coroutine, reading\n"
        "   the run's metadata (is there a signature id?), marking the client "
        "in effect, and the checks\n"
        "   for values given by name and test overrides."
    )

    print(
        "\n4. Per run on a worker: Hatchet's runner steps "
        "(_unpack_dependencies_with_cleanup + aio_call),\n"
        "   input validation included, ns (best / median)"
    )
    headers = ["scenario", "plain Hatchet task", "mageflow task", "hatchet/mageflow"]
    rows = [
        [
            r.scenario.label,
            of(r.runner_hatchet),
            of(r.runner_mageflow),
            f"{r.runner_hatchet.best / r.runner_mageflow.best:.1f}x",
        ]
        for r in results
    ]
    print(table(headers, rows))


async def main() -> None:
    print(machine())
    print(
        f"{REPEATS} repeats of ~{TARGET_REPEAT_NS // 1_000_000} ms per variant, "
        "the variants of a scenario in turns\n"
    )
    hatchet = offline_hatchet()
    client = mageflow.Mageflow(hatchet)
    results = [
        await measure(number, scenario, hatchet, client)
        for number, scenario in enumerate(SCENARIOS, start=1)
    ]
    report(results)
    print(f"\nload: {load()} (1, 5, 15 min) at the end")


if __name__ == "__main__":
    asyncio.run(main())
