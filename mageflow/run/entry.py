"""The function Hatchet actually calls for a mageflow task.

:func:`make_task_callable` closes over the task's plan and the client's
:class:`~mageflow.run.runtime.TaskRuntime` and returns one
``async def (input, ctx, **provided)``. Hatchet sees only that signature, so
it resolves nothing itself; mageflow assembles the user's arguments from the
plan. The wrapper deliberately has no ``__wrapped__``: Hatchet would follow
it, find the user's ``Depends`` parameters and resolve them a second time.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from hatchet_sdk import Context

from mageflow.continuation import Continue, continues, result_hint
from mageflow.dispatch import SIGNATURE_ID
from mageflow.engine.root import forget_root
from mageflow.errors import ContinuationError, MissingSignatureError
from mageflow.injection.plan import NO_RETURN_HINT, InjectionPlan, PlanCell
from mageflow.injection.resolve import TaskCall, unsigned_call
from mageflow.run.call import call_user
from mageflow.run.runtime import TaskRuntime
from mageflow.run.signed import run_signed

TaskCallable = Callable[..., Awaitable[Any]]


def make_task_callable(cell: PlanCell, runtime: TaskRuntime) -> TaskCallable:
    """The coroutine function handed to Hatchet in place of the user's function."""
    scope, owner = runtime.scope, runtime.owner
    # The plan the shorter path was made for, and that path, made here, at
    # decoration; a plan with unresolved names gets its own at the first run,
    # once it is rebuilt.
    known: InjectionPlan | None = None if cell.plan.unresolved else cell.plan
    shorter = None if known is None else _shorter_path(known)

    async def run_task(input: Any, ctx: Context, **provided: Any) -> Any:
        nonlocal known, shorter
        plan = cell.plan
        if plan is not known:
            plan = cell.current()
            known, shorter = plan, _shorter_path(plan)
        metadata = ctx.additional_metadata
        if scope.get() is not owner:
            # Left set: a run's context ends with the run (each run is its own
            # asyncio task on a worker), and a reset would cost as much as the
            # rest of the wrapper.
            scope.set(owner)
        # A run the local backend started from inside a root task's body
        # is not part of that root.
        forget_root()
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
        if shorter is not None and not provided and not runtime.overrides:
            # The common case: arguments straight from the plan's shape.
            return await shorter(input, ctx)
        if plan.marks.root is not None:
            # A root needs a record for its children to report to: a run
            # triggered through plain Hatchet signs itself (its id derives
            # from the engine's run, so every attempt finds the same one).
            signature = await runtime.engine.sign(
                plan.task_name,
                success=None,
                error=None,
                task_identifiers=None,
                kwargs={},
            )
            return await run_signed(
                plan, input, ctx, signature.id, metadata, provided, runtime
            )
        if plan.requires_signature:
            raise _missing_signature(plan)
        result = await call_user(plan, input, ctx, None, provided, runtime)
        if isinstance(result, Continue):
            raise ContinuationError(
                f"task {plan.task_name!r} returned Continue(...) from a run "
                "with no signature (it was triggered through plain Hatchet), "
                "so there is no outcome to hand over. Start it through a "
                "mageflow signature (`await client.sign(task)` then "
                "`aio_run_no_wait(msg)`).",
                task_name=plan.task_name,
            )
        return result

    plan = cell.plan
    fn = plan.fn
    run_task.__name__ = getattr(fn, "__name__", plan.task_name)
    run_task.__qualname__ = getattr(fn, "__qualname__", plan.task_name)
    run_task.__module__ = getattr(fn, "__module__", __name__)
    run_task.__doc__ = getattr(fn, "__doc__", None)
    # Hatchet builds the output validator from get_type_hints(run_task); give it
    # the user's resolved return type, so aio_run() returns the validated model.
    # Without one Hatchet would pick EmptyModel: a dict output then warns
    # (PydanticSerializationUnexpectedValue) on every run, a model output is
    # sent as {} and aio_run() returns an EmptyModel. Any passes the output
    # through as JSON data, which is what a signed run returns for the task.
    # A Continue in it stands for the work's result: the engine's run of a
    # task that continues has no output.
    run_task.__annotations__ = {
        "return": Any
        if plan.return_hint is NO_RETURN_HINT
        else result_hint(plan.return_hint)
    }
    # Hatchet calls inspect.signature() on the task function on every run;
    # a precomputed one turns that into an attribute read.
    run_task.__signature__ = inspect.signature(run_task)  # type: ignore[attr-defined]
    return run_task


def _shorter_path(plan: InjectionPlan) -> TaskCall | None:
    """The run without a signature, values given by name or test overrides,
    made for ``plan``'s shape; ``None`` when the plan staggers its runs,
    requires a signature, is a root or may continue (the general path does
    all of those)."""
    if (
        plan.stagger is not None
        or plan.requires_signature
        or plan.marks.root is not None
        or continues(plan.return_hint)
    ):
        return None
    return unsigned_call(plan)


def _missing_signature(plan: InjectionPlan) -> MissingSignatureError:
    return MissingSignatureError(
        f"task {plan.task_name!r} requires a TaskSignature, but this run was "
        "not started from one (it was triggered through plain Hatchet). "
        "Start it through a mageflow signature (`await client.sign(task)` then "
        "`aio_run_no_wait(msg)`), or annotate the parameter "
        "`TaskSignature | None` to accept runs without one.",
        task_name=plan.task_name,
    )
