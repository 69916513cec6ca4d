"""Calling the user's task function: arguments from the plan, then the call.

Shared by plain runs and signed runs (:mod:`mageflow.run.signed`), so both
inject, stagger and resolve dependencies the same way.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hatchet_sdk import Context

from mageflow.injection.plan import InjectionPlan
from mageflow.injection.resolve import (
    Exits,
    assemble,
    assemble_with_dependencies,
)
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
        exits = Exits()
        try:
            args, kwargs = await assemble_with_dependencies(
                plan,
                input,
                ctx,
                signature,
                exits,
                provided,
                overrides or None,
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
