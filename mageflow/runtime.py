"""The function Hatchet actually calls for a mageflow task.

:func:`make_task_callable` closes over the task's :class:`InjectionPlan` and
returns one ``async def (input, ctx, **provided)``. Hatchet sees only that
signature, so it resolves nothing itself; mageflow assembles the user's
arguments from the plan. The wrapper deliberately has no ``__wrapped__``:
Hatchet would follow it, find the user's ``Depends`` parameters and resolve
them a second time.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from hatchet_sdk import Context

from mageflow.errors import MissingSignatureError
from mageflow.injection.plan import NO_RETURN_HINT, InjectionPlan, replan
from mageflow.injection.resolve import assemble, assemble_with_dependencies
from mageflow.signature import TaskSignature
from mageflow.stagger import stagger

TaskCallable = Callable[..., Awaitable[Any]]


class PlanCell:
    """Holds a task's plan; rebuilds it once if it was made with unresolved names.

    The rebuild is synchronous, so on one event loop no two runs can race it.
    """

    __slots__ = ("plan",)

    def __init__(self, plan: InjectionPlan) -> None:
        self.plan = plan

    def current(self) -> InjectionPlan:
        plan = self.plan
        if plan.unresolved:
            plan = self.plan = replan(plan)
        return plan


def make_task_callable(cell: PlanCell, rng: random.Random) -> TaskCallable:
    """The coroutine function handed to Hatchet in place of the user's function."""
    plan = cell.plan

    async def run_task(input: Any, ctx: Context, **provided: Any) -> Any:
        plan = cell.current()
        signature = _signature_for(plan, ctx)
        if plan.stagger is not None:
            await stagger(ctx, plan.task_name, plan.stagger, rng)
        if plan.has_dependencies or provided:
            async with AsyncExitStack() as stack:
                args, kwargs = await assemble_with_dependencies(
                    plan, input, ctx, signature, stack, provided
                )
                return await _call(plan, args, kwargs)
        args, kwargs = assemble(plan, input, ctx, signature)
        return await _call(plan, args, kwargs)

    fn = plan.fn
    run_task.__name__ = getattr(fn, "__name__", plan.task_name)
    run_task.__qualname__ = getattr(fn, "__qualname__", plan.task_name)
    run_task.__module__ = getattr(fn, "__module__", __name__)
    run_task.__doc__ = getattr(fn, "__doc__", None)
    # Hatchet builds the output validator from get_type_hints(run_task); give it
    # the user's resolved return type, so aio_run() returns the validated model.
    run_task.__annotations__ = (
        {} if plan.return_hint is NO_RETURN_HINT else {"return": plan.return_hint}
    )
    return run_task


def _signature_for(plan: InjectionPlan, ctx: Context) -> TaskSignature | None:
    """The run's signature. Runs are not started from stored signatures yet, so
    every run counts as having none."""
    if plan.requires_signature:
        raise MissingSignatureError(
            f"task {plan.task_name!r} requires a TaskSignature, but this run was "
            "not started from one (it was triggered through plain Hatchet). "
            "Start it through a mageflow signature, or annotate the parameter "
            "`TaskSignature | None` to accept runs without one."
        )
    return None


async def _call(plan: InjectionPlan, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if plan.is_async:
        return await plan.fn(*args, **kwargs)
    # asyncio.to_thread copies the context variables into the thread.
    return await asyncio.to_thread(plan.fn, *args, **kwargs)
