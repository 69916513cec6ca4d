"""Run time: assemble a call's arguments from an :class:`InjectionPlan`.

Nothing here inspects a function; all of that happened when the task was
decorated. A task without dependencies is assembled by :func:`assemble`, a few
tuple walks. Dependencies are awaited by :func:`assemble_with_dependencies`,
which keeps Hatchet's semantics:

* a dependency is ``fn(input, ctx, **its_own_dependencies)``;
* an ``async def`` is awaited, a plain ``def`` runs in a worker thread;
* a returned (async) context manager is entered, and exited after the task,
  in reverse order, by the caller's :class:`Exits`.

Those two are the general path, for any run. The common run (no signature,
no values given by name, no test overrides) takes a shorter one:
:func:`unsigned_call` turns a plan, once, when the task is decorated, into a
function of ``(input, ctx)`` specialised for the plan's shape, which passes
the arguments straight to the task function, with no list, dict or loop per
run (for a task ``fn(input, ctx)`` it is ``fn`` itself). It gives the same
arguments as the general path; ``tests/test_injection_fastpath.py`` checks
that, shape by shape.

Tests can replace dependencies and injectables: each client holds an
:data:`OverrideTable` (``client.dependency_overrides``, set by the pytest
plugin's ``mageflow_runner.override``). The run path looks at it only when it
is not empty, so overrides cost nothing when unused; when it is not, the run
takes the general path, which is given the table explicitly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Mapping
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    AsyncExitStack,
)
from types import MappingProxyType, TracebackType
from typing import Any

from hatchet_sdk import Context

from mageflow.injection.plan import DependencyPlan, InjectionPlan, ParamPlan, Source
from mageflow.signature import TaskSignature

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


@dataclasses.dataclass(frozen=True, slots=True)
class Override:
    """What a test put in place of a ``Depends`` function or an injectable.

    ``factory`` (if set) is called like a dependency, with ``(input, ctx)``
    or with nothing when ``takes_args`` is false; it may be async, and a
    context manager it returns is entered like a dependency's. Otherwise
    ``value`` is injected as it is.
    """

    value: Any = None
    factory: Callable[..., Any] | None = None
    takes_args: bool = True


OverrideTable = Mapping[object, Override]
"""Keys: a ``Depends`` function, or a ``Context`` / ``TaskSignature`` type
(every parameter that receives the context, or the signature)."""


async def assemble_with_dependencies(
    plan: InjectionPlan,
    message: object,
    ctx: object,
    signature: object,
    exits: Exits,
    provided: Mapping[str, Any],
    overrides: OverrideTable | None = None,
) -> tuple[list[Any], dict[str, Any]]:
    """Arguments for any plan; dependencies are resolved in parameter order.

    ``provided`` holds values given by name (Hatchet's
    ``aio_mock_run(dependencies=...)``); a provided name is not resolved.
    Names the plan does not know are passed through, as Hatchet does.
    ``overrides`` (tests only) replace dependencies and injectables.
    """
    if overrides:
        ctx, signature = await _override_injectables(
            overrides, message, ctx, signature, exits
        )
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
            if overrides or dep.params or not dep.is_async:
                value = await _resolve(dep, message, ctx, exits, overrides)
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
    dep: DependencyPlan,
    message: object,
    ctx: object,
    exits: Exits,
    overrides: OverrideTable | None = None,
) -> Any:
    if overrides and (override := overrides.get(dep.fn)) is not None:
        return await _produce(override, message, ctx, exits)
    if dep.params:
        kwargs = {
            param.name: await _resolve(param.dependency, message, ctx, exits, overrides)
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


async def call_with_dependencies(
    plan: InjectionPlan,
    message: object,
    ctx: object,
    signature: object,
    provided: Mapping[str, Any],
    overrides: OverrideTable | None = None,
) -> Any:
    """The general run: :func:`assemble_with_dependencies`, the call, then the
    exits of the context managers the dependencies returned, newest first.

    Returns ``None`` when one of those context managers suppressed the task's
    exception, as Hatchet does.
    """
    exits = Exits()
    try:
        args, kwargs = await assemble_with_dependencies(
            plan, message, ctx, signature, exits, provided, overrides
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


def _threaded_exit(cm: AbstractContextManager[Any]) -> Any:
    async def exit_in_thread(
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return bool(await asyncio.to_thread(cm.__exit__, exc_type, exc, tb))

    return exit_in_thread


# --- test overrides (only reached while a test overrides something) -----------


async def _produce(
    override: Override, message: object, ctx: object, exits: Exits
) -> Any:
    if override.factory is None:
        return override.value
    value = (
        override.factory(message, ctx) if override.takes_args else override.factory()
    )
    if inspect.isawaitable(value):
        value = await value
    kind = _kind_of(type(value))
    return value if kind == _PLAIN else await exits.enter(value, kind)


def _for_type(overrides: OverrideTable, base: type) -> Override | None:
    for key, override in overrides.items():
        if isinstance(key, type) and issubclass(key, base):
            return override
    return None


async def _override_injectables(
    overrides: OverrideTable,
    message: object,
    ctx: object,
    signature: object,
    exits: Exits,
) -> tuple[object, object]:
    """The context and the signature, replaced where a test overrides them."""
    if (context_override := _for_type(overrides, Context)) is not None:
        ctx = await _produce(context_override, message, ctx, exits)
    if (signature_override := _for_type(overrides, TaskSignature)) is not None:
        signature = await _produce(signature_override, message, ctx, exits)
    return ctx, signature


# --- the unsigned run's shorter path (built at decoration) ---------------------

TaskCall = Callable[[Any, Any], Awaitable[Any]]
"""``call(input, ctx)``: one run of a task, awaited for the task's result."""

_NOTHING_PROVIDED: Mapping[str, Any] = MappingProxyType({})

# Where one argument of the task function comes from, in a run without a
# signature: the context, a value fixed when the plan is made (the signature
# parameters' None, a positional-only parameter's default), or the one
# dependency's value.
_FROM_CTX, _FIXED, _FROM_DEPENDENCY = "c", "k", "d"

_Slot = tuple[str, Any]


def unsigned_call(plan: InjectionPlan) -> TaskCall:
    """A run of ``plan``'s task as ``call(input, ctx)``, made once, at decoration.

    For runs without a signature (signature parameters receive ``None``, as
    the general path gives them), without values given by name and without
    test overrides, of a plan without a stagger: the caller checks those, and
    takes :func:`assemble` or :func:`call_with_dependencies` otherwise.

    The call is specialised for the plan's shape: without dependencies it
    passes the arguments straight to the task function (for ``(input, ctx)``
    it *is* the task function); with one ``async`` dependency of
    ``(input, ctx)`` alone, it awaits that and passes its value on, and
    creates the :class:`Exits` only if the value is a context manager.
    Anything else (nested, sync or several dependencies) goes through
    :func:`call_with_dependencies`. Each gives the arguments the general path
    gives.
    """
    if not plan.has_dependencies:
        return _caller(plan)
    dependencies = [p.dependency for p in plan.params if p.dependency is not None]
    if len(dependencies) == 1:
        (dependency,) = dependencies
        if dependency.is_async and not dependency.params:
            return _one_dependency(dependency, _caller(plan))

    def general(message: Any, ctx: Any) -> Awaitable[Any]:
        return call_with_dependencies(plan, message, ctx, None, _NOTHING_PROVIDED)

    return general


def _slot(param: ParamPlan) -> _Slot:
    if param.dependency is not None:
        return _FROM_DEPENDENCY, None
    if param.source is _CONTEXT:
        return _FROM_CTX, None
    if param.source is _SIGNATURE:
        return _FIXED, None  # a run without a signature
    return _FIXED, param.default


def _caller(plan: InjectionPlan) -> Callable[..., Any]:
    """``caller(input, ctx[, value])``: calls the task function, returns what
    awaiting gives its result. ``value`` is the dependency's, if it has one."""
    fn = plan.fn
    positional = tuple(_slot(p) for p in plan.call_positional)
    keyword = tuple((p.name, *_slot(p)) for p in plan.call_keyword)
    if plan.is_async and not keyword:
        shape = "".join(kind for kind, _ in positional)
        fixed = [value for kind, value in positional if kind == _FIXED]
        specialised = _specialised(fn, shape, fixed)
        if specialised is not None:
            return specialised
    is_async = plan.is_async

    def caller(message: Any, ctx: Any, value: Any = None) -> Any:
        args = [message]
        for kind, fixed_value in positional:
            args.append(
                ctx
                if kind == _FROM_CTX
                else value
                if kind == _FROM_DEPENDENCY
                else fixed_value
            )
        kwargs = {
            name: (
                ctx
                if kind == _FROM_CTX
                else value
                if kind == _FROM_DEPENDENCY
                else fixed_value
            )
            for name, kind, fixed_value in keyword
        }
        if is_async:
            return fn(*args, **kwargs)
        # asyncio.to_thread copies the context variables into the thread.
        return asyncio.to_thread(fn, *args, **kwargs)

    return caller


def _specialised(
    fn: Callable[..., Any], shape: str, fixed: list[Any]
) -> Callable[..., Any] | None:
    """The commonest positional shapes of an ``async`` task, written out."""
    if shape in ("c", "cd"):  # fn(input, ctx) / fn(input, ctx, value)
        return fn
    if shape == "":
        return lambda message, ctx: fn(message)
    if shape == "d":
        return lambda message, ctx, value: fn(message, value)
    if shape == "dc":
        return lambda message, ctx, value: fn(message, value, ctx)
    if not fixed:
        return None
    first = fixed[0]
    if shape == "k":
        return lambda message, ctx: fn(message, first)
    if shape == "ck":
        return lambda message, ctx: fn(message, ctx, first)
    if shape == "kc":
        return lambda message, ctx: fn(message, first, ctx)
    if shape == "ckd":
        return lambda message, ctx, value: fn(message, ctx, first, value)
    if shape == "cdk":
        return lambda message, ctx, value: fn(message, ctx, value, first)
    return None


def _one_dependency(dependency: DependencyPlan, caller: Callable[..., Any]) -> TaskCall:
    """The run of a task with one ``async`` dependency of ``(input, ctx)``."""
    dependency_fn = dependency.fn
    kinds = dependency.returned_kinds

    async def one_dependency(message: Any, ctx: Any) -> Any:
        value = await dependency_fn(message, ctx)
        tp = type(value)
        kind = kinds.get(tp)
        if kind is None:
            kind = kinds[tp] = _kind_of(tp)
        if kind == _PLAIN:
            return await caller(message, ctx, value)
        return await _call_entered(caller, message, ctx, value, kind)

    return one_dependency


async def _call_entered(
    caller: Callable[..., Any], message: Any, ctx: Any, value: Any, kind: int
) -> Any:
    """The dependency returned a context manager: enter it, call, exit it."""
    exits = Exits()
    try:
        entered = await exits.enter(value, kind)
        result = await caller(message, ctx, entered)
    except BaseException as exc:
        if exits.stack is not None and await exits.close(exc):
            return None  # the context manager suppressed it
        raise
    if exits.stack is not None:
        await exits.close(None)
    return result
