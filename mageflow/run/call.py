"""Calling the user's task function: arguments from the plan, then the call.

Shared by plain runs and signed runs (:mod:`mageflow.run.signed`), so both
inject, stagger and resolve dependencies the same way. This is the general
path; :mod:`~mageflow.run.entry` takes a shorter one, made at decoration
(:func:`~mageflow.injection.resolve.unsigned_call`), for a run that has no
signature, no values given by name, no test overrides and no stagger.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hatchet_sdk import Context

from mageflow.injection.plan import InjectionPlan
from mageflow.injection.resolve import assemble, call_with_dependencies
from mageflow.run.runtime import TaskRuntime
from mageflow.signature import TaskSignature
from mageflow.stagger import stagger


async def call_user(
    plan: InjectionPlan,
    input: Any,
    ctx: Context,
    signature: TaskSignature | None,
    provided: dict[str, Any],
    runtime: TaskRuntime,
) -> Any:
    """Assemble the arguments from the plan and call the user's function."""
    if plan.stagger is not None:
        await stagger(ctx, plan.task_name, plan.stagger, runtime.rng)
    overrides = runtime.overrides
    if plan.has_dependencies or provided or overrides:
        return await call_with_dependencies(
            plan, input, ctx, signature, provided, overrides or None
        )
    args, kwargs = assemble(plan, input, ctx, signature)
    if plan.is_async:
        return await plan.fn(*args, **kwargs)
    # asyncio.to_thread copies the context variables into the thread.
    return await asyncio.to_thread(plan.fn, *args, **kwargs)
