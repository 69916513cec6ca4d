"""Run time: assemble a call's arguments from an :class:`InjectionPlan`.

Nothing here inspects a function; all of that happened when the task was
decorated. A task without dependencies is assembled by :func:`assemble`, a few
tuple walks. Dependencies are awaited by :func:`assemble_with_dependencies`,
which keeps Hatchet's semantics:

* a dependency is ``fn(input, ctx, **its_own_dependencies)``;
* an ``async def`` is awaited, a plain ``def`` runs in a worker thread;
* a returned (async) context manager is entered, and exited after the task,
  in reverse order, by the caller's :class:`Exits`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    AsyncExitStack,
)
from types import TracebackType
from typing import Any

from mageflow.injection.plan import DependencyPlan, InjectionPlan, Source

_CONTEXT = Source.CONTEXT
_SIGNATURE = Source.SIGNATURE


def assemble(
    plan: InjectionPlan, message: object, ctx: object, signature: object
) -> tuple[list[Any], dict[str, Any]]:
    """Arguments for a plan with no dependencies: ``fn(*args, **kwargs)``."""
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


_PLAIN, _ASYNC_CM, _SYNC_CM = 0, 1, 2


def _kind_of(tp: type) -> int:
    if issubclass(tp, AbstractAsyncContextManager):
        return _ASYNC_CM
    if issubclass(tp, AbstractContextManager):
        return _SYNC_CM
    return _PLAIN


class Exits:
    """The context managers dependencies returned, to exit after the task.

    The ``AsyncExitStack`` is only created once a dependency actually returns
    a context manager: most return plain values, and building and unwinding a
    stack on every run would cost more than the rest of the run.
    """

    __slots__ = ("stack",)

    def __init__(self) -> None:
        self.stack: AsyncExitStack | None = None

    async def enter(self, value: Any, kind: int) -> Any:
        """Enter ``value`` as a context manager of ``kind``; return its value."""
        if self.stack is None:
            self.stack = AsyncExitStack()
        if kind == _ASYNC_CM:
            return await self.stack.enter_async_context(value)
        # Like Hatchet: a blocking __enter__/__exit__ must not stall the loop.
        entered = await asyncio.to_thread(value.__enter__)
        self.stack.push_async_exit(_threaded_exit(value))
        return entered

    async def close(self, exc: BaseException | None) -> bool:
        """Exit everything entered, newest first; True if ``exc`` was suppressed."""
        if self.stack is None:
            return False
        if exc is None:
            return bool(await self.stack.__aexit__(None, None, None))
        return bool(await self.stack.__aexit__(type(exc), exc, exc.__traceback__))


async def assemble_with_dependencies(
    plan: InjectionPlan,
    message: object,
    ctx: object,
    signature: object,
    exits: Exits,
    provided: Mapping[str, Any],
) -> tuple[list[Any], dict[str, Any]]:
    """Arguments for any plan; dependencies are resolved in parameter order.

    ``provided`` holds values given by name (Hatchet's
    ``aio_mock_run(dependencies=...)``); a provided name is not resolved.
    Names the plan does not know are passed through, as Hatchet does.
    """
    args: list[Any] = [message]
    kwargs: dict[str, Any] = dict(provided) if provided else {}
    for param in plan.params:
        if param.name in provided:
            if param.positional:
                args.append(kwargs.pop(param.name))
            continue
        source = param.source
        dep = param.dependency
        if dep is not None:
            if dep.params or not dep.is_async:
                value = await _resolve(dep, message, ctx, exits)
            else:
                # The common case inline: an async dependency of (input, ctx)
                # only. One coroutine less is a fifth of the per-run cost.
                value = await dep.fn(message, ctx)
                kind = dep.returned_kinds.get(type(value))
                if kind is None:
                    kind = dep.returned_kinds[type(value)] = _kind_of(type(value))
                if kind != _PLAIN:
                    value = await exits.enter(value, kind)
        elif source is _CONTEXT:
            value = ctx
        elif source is _SIGNATURE:
            value = signature
        else:
            value = param.default
        if param.positional:
            args.append(value)
        else:
            kwargs[param.name] = value
    return args, kwargs


async def _resolve(
    dep: DependencyPlan, message: object, ctx: object, exits: Exits
) -> Any:
    if dep.params:
        kwargs = {
            param.name: await _resolve(param.dependency, message, ctx, exits)
            for param in dep.params
            if param.dependency is not None
        }
        if dep.is_async:
            value = await dep.fn(message, ctx, **kwargs)
        else:
            value = await asyncio.to_thread(dep.fn, message, ctx, **kwargs)
    elif dep.is_async:
        value = await dep.fn(message, ctx)
    else:
        value = await asyncio.to_thread(dep.fn, message, ctx)
    kind = dep.returned_kinds.get(type(value))
    if kind is None:
        kind = dep.returned_kinds[type(value)] = _kind_of(type(value))
    if kind == _PLAIN:
        return value
    return await exits.enter(value, kind)


def _threaded_exit(cm: AbstractContextManager[Any]) -> Any:
    async def exit_in_thread(
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return bool(await asyncio.to_thread(cm.__exit__, exc_type, exc, tb))

    return exit_in_thread
