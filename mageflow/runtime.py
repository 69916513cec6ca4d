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
import inspect
import random
from collections.abc import Awaitable, Callable
from typing import Any

from hatchet_sdk import Context

from mageflow.errors import MissingSignatureError
from mageflow.injection.plan import NO_RETURN_HINT, InjectionPlan, replan
from mageflow.injection.resolve import Exits, assemble, assemble_with_dependencies
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

    async def run_task(input: Any, ctx: Context, **provided: Any) -> Any:
        plan = cell.plan
        if plan.unresolved:
            plan = cell.current()
        signature: TaskSignature | None = None
        if plan.requires_signature:
            signature = _signature_for(plan, ctx)
        if plan.stagger is not None:
            await stagger(ctx, plan.task_name, plan.stagger, rng)
        if plan.has_dependencies or provided:
            exits = Exits()
            try:
                args, kwargs = await assemble_with_dependencies(
                    plan, input, ctx, signature, exits, provided
                )
                if plan.is_async:
                    result = await plan.fn(*args, **kwargs)
                else:
                    result = await asyncio.to_thread(plan.fn, *args, **kwargs)
            except BaseException as exc:
                if exits.stack is not None and await exits.close(exc):
                    return None  # a dependency's context manager suppressed it
                raise
            if exits.stack is not None:
                await exits.close(None)
            return result
        args, kwargs = assemble(plan, input, ctx, signature)
        if plan.is_async:
            return await plan.fn(*args, **kwargs)
        # asyncio.to_thread copies the context variables into the thread.
        return await asyncio.to_thread(plan.fn, *args, **kwargs)

    plan = cell.plan
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
    # Hatchet calls inspect.signature() on the task function on every run;
    # a precomputed one turns that into an attribute read.
    run_task.__signature__ = inspect.signature(run_task)  # type: ignore[attr-defined]
    return run_task


def _signature_for(plan: InjectionPlan, ctx: Context) -> TaskSignature:
    """The signature of a run that requires one.

    Runs are not started from stored signatures yet, so every run counts as
    having none, and a task that requires one cannot run.
    """
    raise MissingSignatureError(
        f"task {plan.task_name!r} requires a TaskSignature, but this run was "
        "not started from one (it was triggered through plain Hatchet). "
        "Start it through a mageflow signature, or annotate the parameter "
        "`TaskSignature | None` to accept runs without one."
    )
