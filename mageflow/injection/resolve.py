"""Run time: assemble a call's arguments from an :class:`InjectionPlan`.

Nothing here inspects a function; all of that happened when the task was
decorated. A task without dependencies is assembled by :func:`assemble`, a few
tuple walks. Dependencies are awaited by :func:`assemble_with_dependencies`,
which keeps Hatchet's semantics:

* a dependency is ``fn(input, ctx, **its_own_dependencies)``;
* an ``async def`` is awaited, a plain ``def`` runs in a worker thread;
* a returned (async) context manager is entered, and exited after the task,
  in reverse order, by the caller's ``AsyncExitStack``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    AsyncExitStack,
)
from typing import Any

from mageflow.injection.plan import DependencyPlan, InjectionPlan, ParamPlan, Source


def _static_value(param: ParamPlan, ctx: object, signature: object) -> object:
    if param.source is Source.CONTEXT:
        return ctx
    if param.source is Source.SIGNATURE:
        return signature
    return param.default


def assemble(
    plan: InjectionPlan, message: object, ctx: object, signature: object
) -> tuple[list[Any], dict[str, Any]]:
    """Arguments for a plan with no dependencies: ``fn(*args, **kwargs)``."""
    args: list[Any] = [message]
    for param in plan.positional:
        args.append(_static_value(param, ctx, signature))
    kwargs: dict[str, Any] = {}
    for param in plan.keyword:
        kwargs[param.name] = _static_value(param, ctx, signature)
    return args, kwargs


async def assemble_with_dependencies(
    plan: InjectionPlan,
    message: object,
    ctx: object,
    signature: object,
    stack: AsyncExitStack,
    provided: Mapping[str, Any],
) -> tuple[list[Any], dict[str, Any]]:
    """Arguments for any plan; dependencies are resolved in parameter order.

    ``provided`` holds values given by name (Hatchet's
    ``aio_mock_run(dependencies=...)``); a provided name is not resolved.
    Names the plan does not know are passed through, as Hatchet does.
    """
    args: list[Any] = [message]
    kwargs: dict[str, Any] = dict(provided)
    for param in plan.params:
        if param.name in provided:
            if param.positional:
                args.append(kwargs.pop(param.name))
            continue
        if param.dependency is not None:
            value = await _resolve(param.dependency, message, ctx, stack)
        else:
            value = _static_value(param, ctx, signature)
        if param.positional:
            args.append(value)
        else:
            kwargs[param.name] = value
    return args, kwargs


async def _resolve(
    dep: DependencyPlan, message: object, ctx: object, stack: AsyncExitStack
) -> Any:
    kwargs = {
        param.name: await _resolve(param.dependency, message, ctx, stack)
        for param in dep.params
        if param.dependency is not None
    }
    if dep.is_async:
        value = await dep.fn(message, ctx, **kwargs)
    else:
        value = await asyncio.to_thread(dep.fn, message, ctx, **kwargs)
    return await _enter_if_context_manager(value, stack)


async def _enter_if_context_manager(value: Any, stack: AsyncExitStack) -> Any:
    if isinstance(value, AbstractAsyncContextManager) or (
        hasattr(value, "__aenter__") and hasattr(value, "__aexit__")
    ):
        return await stack.enter_async_context(value)
    if isinstance(value, AbstractContextManager) or (
        hasattr(value, "__enter__") and hasattr(value, "__exit__")
    ):
        # Like Hatchet: a blocking __enter__/__exit__ must not stall the loop.
        entered = await asyncio.to_thread(value.__enter__)
        stack.push_async_exit(_threaded_exit(value))
        return entered
    return value


def _threaded_exit(cm: Any) -> Any:
    async def exit_in_thread(*exc_info: Any) -> bool:
        return bool(await asyncio.to_thread(cm.__exit__, *exc_info))

    return exit_in_thread
