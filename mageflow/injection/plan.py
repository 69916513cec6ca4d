"""Decoration time: read a task function once and decide what each parameter gets.

The result, an :class:`InjectionPlan`, is everything the run-time side needs,
so a run never calls ``inspect`` or ``get_type_hints``. Every mistake in a
task's parameters is found here and raised as :class:`InjectionError`.

The first parameter always receives the input message. Each other parameter
is matched by these rules, first match wins:

1. annotated ``Context`` (or a subclass), possibly as ``X | None``,
   ``Optional[X]`` or ``Annotated[X, ...]``: the run context;
2. annotated ``TaskSignature`` (or a subclass): the run's signature;
3. ``Annotated[T, Depends(fn)]``: Hatchet's dependency injection;
4. unannotated, and asked for by ``with_ctx`` / ``with_signature`` or the
   client's ``AcceptParams``: the context or the signature;
5. has a default: keeps it. Anything else is an error.

Also refused here, since each would fail every run: a first parameter
annotated with something Hatchet cannot validate an input into, a return
annotation Hatchet's worker cannot send, ``Depends`` as a default or twice in
one annotation, a dependency that cannot be called as ``fn(input, ctx)``, and
a required ``TaskSignature`` on a task that crons or events start.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import types
import typing
from collections import abc
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Annotated, Any

from hatchet_sdk import Context, Depends, DurableContext
from pydantic import BaseModel
from typing_extensions import Never, is_typeddict

from mageflow._hatchet import dependency_function
from mageflow.continuation import continues, result_hint
from mageflow.errors import InjectionError, UnresolvedAnnotationError
from mageflow.injection.hints import (
    FailedDepends,
    Unresolved,
    enclosing_names,
    is_nested,
    is_type_alias,
    resolve_annotations,
    strip_optional,
)
from mageflow.markers import TaskMarks
from mageflow.params import AcceptParams
from mageflow.signature import TaskSignature

_EMPTY = inspect.Parameter.empty
_POSITIONAL = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
)
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class Source(enum.Enum):
    """Where a parameter's value comes from at run time."""

    CONTEXT = "the run context"
    SIGNATURE = "the run's TaskSignature"
    DEPENDENCY = "a Depends() value"
    DEFAULT = "its default"


@dataclasses.dataclass(frozen=True, slots=True)
class DependencyPlan:
    """A ``Depends(fn)`` worked out in advance: ``fn(input, ctx, **params)``."""

    fn: Callable[..., Any]
    is_async: bool
    params: tuple[ParamPlan, ...]
    returned_kinds: dict[type, int] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )
    """Whether each type this dependency has returned is a context manager,
    learnt at run time: a dependency returns the same type run after run, and
    asking the ABCs every time would cost more than the rest of the call."""


@dataclasses.dataclass(frozen=True, slots=True)
class ParamPlan:
    """One parameter that receives a value, and why."""

    name: str
    source: Source
    positional: bool
    why: str
    optional: bool = False
    dependency: DependencyPlan | None = None
    default: Any = None


@dataclasses.dataclass(frozen=True, slots=True)
class InjectionPlan:
    """Everything a run needs to call the task function."""

    task_name: str
    fn: Callable[..., Any]
    is_async: bool
    durable: bool
    message_name: str
    input_model: object | None
    positional: tuple[ParamPlan, ...]
    keyword: tuple[ParamPlan, ...]
    defaults_kept: tuple[str, ...]
    wants_signature: bool
    requires_signature: bool
    has_dependencies: bool
    stagger: timedelta | None
    return_hint: object
    unresolved: tuple[tuple[str, Unresolved], ...]
    """Parameters whose annotation named something unknown at decoration time.
    The plan is rebuilt once at the first call; see :func:`replan`."""
    config: AcceptParams
    marks: TaskMarks
    triggered: bool = False
    """Runs may be started by crons or events (see :func:`build_plan`)."""
    scopes: Scopes = dataclasses.field(default_factory=dict, compare=False, repr=False)
    """The enclosing-function names each function's annotations use, as
    captured at decoration (:func:`~mageflow.injection.hints.enclosing_names`),
    for :func:`replan`, when those frames are gone."""
    params: tuple[ParamPlan, ...] = ()
    """``positional + keyword``, in the function's order, kept ready."""
    call_positional: tuple[ParamPlan, ...] = dataclasses.field(
        default=(), compare=False, repr=False
    )
    call_keyword: tuple[ParamPlan, ...] = dataclasses.field(
        default=(), compare=False, repr=False
    )
    """``positional`` and ``keyword`` again, for the shorter run path
    (:func:`~mageflow.injection.resolve.unsigned_call`): the keyword ones
    that the function's own code binds by position, right after the
    positional ones, move to ``call_positional``, in that order. The
    interpreter binds them to the same parameters either way, and a
    positional call needs no dict per run. See :func:`_by_position`."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", self.positional + self.keyword)
        call_positional, call_keyword = _by_position(
            self.fn, self.message_name, self.positional, self.keyword
        )
        object.__setattr__(self, "call_positional", call_positional)
        object.__setattr__(self, "call_keyword", call_keyword)


def _by_position(
    fn: Callable[..., Any],
    message_name: str,
    positional: tuple[ParamPlan, ...],
    keyword: tuple[ParamPlan, ...],
) -> tuple[tuple[ParamPlan, ...], tuple[ParamPlan, ...]]:
    """``positional`` and ``keyword``, with each keyword argument that ``fn``'s
    code takes as the next positional parameter moved into position.

    Only for a plain Python function, and read from its code object, not its
    signature: a ``functools.wraps`` wrapper's code is ``(*args, **kwargs)``,
    so nothing moves and a wrapper that reads its ``kwargs`` still sees them.
    The move stops at the first parameter nothing is injected into (it keeps
    its default, so what follows it must still go by name).
    """
    if not keyword or not isinstance(fn, types.FunctionType):
        return positional, keyword
    code = fn.__code__
    names = code.co_varnames[: code.co_argcount]
    taken = 1 + len(positional)  # the message, then the positional ones
    if names[:taken] != (message_name, *(p.name for p in positional)):
        return positional, keyword
    by_name = {p.name: p for p in keyword}
    moved: list[ParamPlan] = []
    for name in names[taken:]:
        param = by_name.get(name)
        if param is None:
            break
        moved.append(param)
    if not moved:
        return positional, keyword
    moved_names = {p.name for p in moved}
    still_keyword = tuple(p for p in keyword if p.name not in moved_names)
    return positional + tuple(moved), still_keyword


NO_RETURN_HINT = object()
"""``return_hint`` when the function has no return annotation."""

Scopes = Mapping[Callable[..., Any], Mapping[str, object]]
"""Per function (the task's and its dependencies'), the names captured from
the functions enclosing it."""


def build_plan(
    fn: Callable[..., Any],
    *,
    task_name: str,
    durable: bool,
    config: AcceptParams,
    marks: TaskMarks,
    final: bool = False,
    triggered: bool = False,
) -> InjectionPlan:
    """Analyse ``fn`` for the task ``task_name``; raise ``InjectionError`` if it
    cannot be called.

    Call it while the task is decorated: the names a nested function's
    annotations use from its enclosing functions are read from their frames,
    which are on the call stack only then.

    ``final`` is set for the retry at the first call: an annotation that is
    still unresolved then is an error instead of a deferral.

    ``triggered`` says that runs may be started by crons or events (the task
    is declared with ``on_crons=`` or ``on_events=``), which carry no
    signature: a required ``TaskSignature`` parameter is then an error.
    """
    return _build(
        fn,
        task_name=task_name,
        durable=durable,
        config=config,
        marks=marks,
        final=final,
        triggered=triggered,
        scopes=None,
    )


def _build(
    fn: Callable[..., Any],
    *,
    task_name: str,
    durable: bool,
    config: AcceptParams,
    marks: TaskMarks,
    final: bool,
    triggered: bool,
    scopes: Scopes | None,
) -> InjectionPlan:
    try:
        return _analyse(
            fn,
            task_name=task_name,
            durable=durable,
            config=config,
            marks=marks,
            final=final,
            triggered=triggered,
            resolver=_Resolver(scopes),
        )
    except InjectionError as exc:
        # Every rule names the task in its message; the error holds it too.
        if exc.task_name is None:
            exc.task_name = task_name
        raise


class _Resolver:
    """Resolves the annotations of the task and of its dependencies, each
    against the enclosing-function names captured for it: now, from the call
    stack, at decoration; from the first plan, at :func:`replan`."""

    def __init__(self, scopes: Scopes | None) -> None:
        self.capture = scopes is None
        self.scopes: dict[Callable[..., Any], Mapping[str, object]] = dict(scopes or {})

    def hints(self, fn: Callable[..., Any]) -> dict[str, object]:
        if not inspect.isfunction(fn):  # nothing to capture; maybe unhashable
            return resolve_annotations(fn)
        scope = self.scopes.get(fn)
        if scope is None:
            scope = enclosing_names(fn) if self.capture else {}
            if scope:
                self.scopes[fn] = scope
        return resolve_annotations(fn, scope)


def _analyse(
    fn: Callable[..., Any],
    *,
    task_name: str,
    durable: bool,
    config: AcceptParams,
    marks: TaskMarks,
    final: bool,
    triggered: bool,
    resolver: _Resolver,
) -> InjectionPlan:
    where = f"task {task_name!r}"
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError) as exc:
        raise InjectionError(
            f"{where}: cannot read the parameters of {fn!r} ({exc}). "
            "Decorate a plain `def` or `async def` function."
        ) from exc
    hints = resolver.hints(fn)

    if not parameters or parameters[0].kind not in (
        *_POSITIONAL,
        inspect.Parameter.VAR_POSITIONAL,
    ):
        raise InjectionError(
            f"{where}: the first parameter receives the task's input message, "
            f"but {_describe_fn(fn)} has none. Add one, e.g. "
            "`async def task(msg: MyInput, ...)`."
        )
    message = parameters[0]
    message_hint = hints.get(message.name, _EMPTY)

    unresolved: list[tuple[str, Unresolved]] = []
    for name, hint in hints.items():
        if not isinstance(hint, Unresolved):
            continue
        if name == "return" or name == message.name or final or not hint.missing_name:
            error = UnresolvedAnnotationError if final else InjectionError
            raise error(
                _unresolved_message(where, fn, name, hint),
                parameter=name,
            )
        unresolved.append((name, hint))

    input_model = _input_model(message_hint)
    if input_model is None:
        _reject_message_type(where, message, message_hint)
    return_hint = hints.get("return", NO_RETURN_HINT)
    _reject_return_type(where, fn, return_hint)
    others = parameters[1:]
    claims: dict[str, ParamPlan] = {}
    deferred = {name for name, _ in unresolved}

    # Rules 1-3: what the annotations ask for.
    for param in others:
        if param.name in deferred:
            continue
        hint = hints.get(param.name, _EMPTY)
        _reject_depends_default(where, param, hint)
        claim = _claim_by_annotation(where, param, hint, durable, resolver)
        if claim is not None:
            claims[param.name] = claim
    _reject_duplicates(where, claims)

    # Rule 4: what with_ctx / with_signature / AcceptParams add.
    ctx_mode_strict = marks.with_ctx
    ctx_mode = ctx_mode_strict or config in (AcceptParams.CTX_ONLY, AcceptParams.ALL)
    sig_mode_strict = marks.with_signature
    sig_mode = sig_mode_strict or config is AcceptParams.ALL
    has_source = {claim.source for claim in claims.values()}

    # A parameter named `signature` is kept for the signature when one is wanted.
    signature_slot = "signature" if sig_mode else None
    if ctx_mode and Source.CONTEXT not in has_source:
        target = others[0] if others else None
        if (
            target is not None
            and target.kind in _POSITIONAL
            and target.name != signature_slot
            and _can_take(target, hints, deferred, claims)
        ):
            why = "@with_ctx" if ctx_mode_strict else f"{config}"
            why += ": second parameter"
            claims[target.name] = ParamPlan(
                target.name, Source.CONTEXT, _passes_positionally(target), why
            )
        elif ctx_mode_strict and not unresolved:
            raise InjectionError(
                f"{where}: @with_ctx asks for the run context, but "
                f"{_describe_fn(fn)} has nowhere to put it"
                f"{_why_not(target, hints)}. Add a second parameter "
                "`ctx: Context`, or remove @with_ctx.",
                parameter=target.name if target is not None else None,
            )

    if sig_mode and Source.SIGNATURE not in has_source:
        target = next((p for p in others if p.name == "signature"), None)
        if target is not None and _can_take(target, hints, deferred, claims):
            why = "@with_signature" if sig_mode_strict else f"{config}"
            why += ": parameter named 'signature'"
            # Unannotated, it makes no claim that a signature must exist, so a
            # run without one passes None rather than failing.
            claims[target.name] = ParamPlan(
                target.name,
                Source.SIGNATURE,
                _passes_positionally(target),
                why,
                optional=True,
            )
        elif sig_mode_strict and not unresolved:
            raise InjectionError(
                f"{where}: @with_signature asks for the task's signature, but "
                f"{_describe_fn(fn)} has nowhere to put it"
                f"{_why_not(target, hints)}. Add a parameter "
                "`signature: TaskSignature`, or remove @with_signature.",
                parameter=target.name if target is not None else None,
            )

    # Rule 5: everything left keeps its default, or is an error.
    positional: list[ParamPlan] = []
    keyword: list[ParamPlan] = []
    defaults_kept: list[str] = []
    pending_defaults: list[ParamPlan] = []
    for param in others:
        claim = claims.get(param.name)
        if claim is None:
            if param.name in deferred or param.kind in _VARIADIC:
                continue
            if param.default is _EMPTY:
                raise InjectionError(
                    f"{where}: parameter {param.name!r} is required, but nothing "
                    "is injected into it. Annotate it with `Context`, "
                    "`TaskSignature` or `Annotated[T, Depends(fn)]`, give it a "
                    "default, or remove it. (Only the first parameter receives "
                    "the input message.)",
                    parameter=param.name,
                )
            defaults_kept.append(param.name)
            if param.kind is inspect.Parameter.POSITIONAL_ONLY:
                # A later positional-only parameter may be injected, and then
                # this one must be passed explicitly to keep its place.
                pending_defaults.append(
                    ParamPlan(
                        param.name,
                        Source.DEFAULT,
                        True,
                        "keeps its default",
                        default=param.default,
                    )
                )
            continue
        if claim.positional:
            positional.extend(pending_defaults)
            pending_defaults.clear()
            positional.append(claim)
        else:
            keyword.append(claim)

    signature_claims = [c for c in claims.values() if c.source is Source.SIGNATURE]
    required_signature = next((c for c in signature_claims if not c.optional), None)
    if triggered and required_signature is not None:
        raise InjectionError(
            f"{where}: parameter {required_signature.name!r} requires a "
            "TaskSignature, but the task is declared with on_crons= or "
            "on_events=, and runs started by crons or events carry no "
            "signature, so each of them would fail. Annotate it "
            "`TaskSignature | None` to receive None on those runs.",
            parameter=required_signature.name,
        )
    return InjectionPlan(
        task_name=task_name,
        fn=fn,
        is_async=is_async_callable(fn),
        durable=durable,
        message_name=message.name,
        input_model=input_model,
        positional=tuple(positional),
        keyword=tuple(keyword),
        defaults_kept=tuple(defaults_kept),
        wants_signature=bool(signature_claims),
        requires_signature=required_signature is not None,
        has_dependencies=any(c.source is Source.DEPENDENCY for c in claims.values()),
        stagger=marks.stagger,
        return_hint=return_hint,
        unresolved=tuple(unresolved),
        config=config,
        marks=marks,
        triggered=triggered,
        scopes=resolver.scopes,
    )


def replan(plan: InjectionPlan) -> InjectionPlan:
    """The retry at the first call for a plan built with unresolved names."""
    return _build(
        plan.fn,
        task_name=plan.task_name,
        durable=plan.durable,
        config=plan.config,
        marks=plan.marks,
        final=True,
        triggered=plan.triggered,
        scopes=plan.scopes,
    )


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


def is_async_callable(fn: Callable[..., Any]) -> bool:
    """Whether calling ``fn`` returns a coroutine, seeing through ``partial``
    and objects with an ``async def __call__``."""
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004
    return call is not None and inspect.iscoroutinefunction(call)


# --- rules 1-3 ------------------------------------------------------------


def _claim_by_annotation(
    where: str,
    param: inspect.Parameter,
    hint: object,
    durable: bool,
    resolver: _Resolver,
) -> ParamPlan | None:
    if hint is _EMPTY or hint is Any:
        return None
    base, optional, metadata = _unwrap(hint)
    source: Source | None = None
    depends: list[Depends[Any, Any]] = []
    if isinstance(base, type) and issubclass(base, Context):
        if issubclass(base, DurableContext) and not durable:
            raise InjectionError(
                f"{where}: parameter {param.name!r} asks for a DurableContext, "
                "which only durable tasks have. Declare the task with "
                "@client.durable_task(...), or annotate the parameter `Context`.",
                parameter=param.name,
            )
        source = Source.CONTEXT
    elif isinstance(base, type) and issubclass(base, TaskSignature):
        source = Source.SIGNATURE
    else:
        depends = _depends_in(f"{where}: parameter {param.name!r}", metadata, param)
        if depends:
            source = Source.DEPENDENCY
        else:
            _reject_ambiguous_union(where, param, base)
            return None

    if param.kind in _VARIADIC:
        star = "*" if param.kind is inspect.Parameter.VAR_POSITIONAL else "**"
        raise InjectionError(
            f"{where}: {star}{param.name} asks for {source.value}, but values "
            f"are injected by name and cannot go into {star}{param.name}. "
            f"Declare a normal parameter instead, e.g. `{param.name}: ...`.",
            parameter=param.name,
        )

    positional = _passes_positionally(param)
    what = _type_name(hint)
    if source is Source.DEPENDENCY:
        dependency = _plan_dependency(
            where, depends[0], param.name, stack=(), resolver=resolver
        )
        return ParamPlan(
            param.name,
            source,
            positional,
            f"annotated {what}",
            dependency=dependency,
        )
    return ParamPlan(
        param.name,
        source,
        positional,
        f"annotated {what}",
        optional=optional or param.default is None,
    )


def _depends_in(
    label: str, metadata: tuple[object, ...], param: inspect.Parameter
) -> list[Depends[Any, Any]]:
    """The ``Depends`` markers in an annotation's metadata: none or one."""
    depends = [item for item in metadata if isinstance(item, Depends)]
    if len(depends) > 1:
        listed = ", ".join(_metadata_name(item) for item in depends)
        raise InjectionError(
            f"{label} has {len(depends)} Depends in one annotation ({listed}), "
            "but a parameter receives one value, so all but one would be "
            "ignored. Keep one, and give each other dependency a parameter of "
            "its own.",
            parameter=param.name,
        )
    return depends


def _unwrap(hint: object) -> tuple[object, bool, tuple[object, ...]]:
    """Peel aliases, ``Annotated`` and ``Optional`` off ``hint``.

    Returns the bare type, whether ``None`` was allowed, and the ``Annotated``
    metadata met on the way.
    """
    optional = False
    metadata: tuple[object, ...] = ()
    while True:
        if is_type_alias(hint):
            hint = getattr(hint, "__value__")  # noqa: B009
            continue
        if typing.get_origin(hint) is Annotated:
            args = typing.get_args(hint)
            hint, metadata = args[0], metadata + tuple(args[1:])
            continue
        stripped, was_optional = strip_optional(hint)
        if was_optional:
            hint, optional = stripped, True
            continue
        return hint, optional, metadata


def _reject_ambiguous_union(where: str, param: inspect.Parameter, base: object) -> None:
    members = typing.get_args(base)
    injectable = [
        m
        for m in members
        if isinstance(m, type) and issubclass(m, (Context, TaskSignature))
    ]
    if injectable:
        raise InjectionError(
            f"{where}: parameter {param.name!r} is annotated {_type_name(base)}, "
            "a union that mixes injectable types with others, so it is unclear "
            "what it wants. Annotate it with exactly one of `Context` or "
            "`TaskSignature` (optionally `| None`).",
            parameter=param.name,
        )


def _reject_duplicates(where: str, claims: dict[str, ParamPlan]) -> None:
    for source in (Source.CONTEXT, Source.SIGNATURE):
        names = [name for name, claim in claims.items() if claim.source is source]
        if len(names) > 1:
            listed = " and ".join(repr(n) for n in names)
            raise InjectionError(
                f"{where}: parameters {listed} both ask for {source.value}. "
                "Keep one of them.",
                parameter=names[1],
            )


def _reject_depends_default(label: str, param: inspect.Parameter, hint: object) -> None:
    """``x: T = Depends(fn)``, FastAPI's way: Hatchet reads ``Depends`` only
    in the annotation, so the function would receive the marker itself."""
    if not isinstance(param.default, Depends):
        return
    if hint is _EMPTY:
        written = "T"
    elif any(isinstance(item, Depends) for item in _unwrap(hint)[2]):
        return  # the annotation already says it; the default is never used
    else:
        written = _type_name(hint)
    marker = _metadata_name(param.default)
    raise InjectionError(
        f"{label}: parameter {param.name!r} has `{marker}` as its default, "
        "but Depends is only read in the annotation: the function would "
        "receive the Depends object itself. Move it into the annotation: "
        f"write `{param.name}: Annotated[{written}, {marker}]`.",
        parameter=param.name,
    )


def _plan_dependency(
    where: str,
    marker: Depends[Any, Any],
    parameter: str,
    stack: tuple[Callable[..., Any], ...],
    resolver: _Resolver,
) -> DependencyPlan:
    """Plan ``marker``'s function, for the task's ``parameter``."""
    fn = dependency_function(marker)
    name = getattr(fn, "__name__", fn)
    label = f"{where}: dependency {name!r} (for parameter {parameter!r})"
    if fn in stack:
        chain = " -> ".join(getattr(f, "__name__", repr(f)) for f in (*stack, fn))
        raise InjectionError(
            f"{label} depends on itself ({chain}). Break the cycle.",
            parameter=parameter,
        )
    problem = _dependency_problem(fn)
    if problem is not None:
        raise InjectionError(f"{label}: {problem}", parameter=parameter)
    parameters = list(inspect.signature(fn).parameters.values())
    hints = resolver.hints(fn)
    params: list[ParamPlan] = []
    for param in parameters[2:]:  # the first two are the input and the context
        hint = hints.get(param.name, _EMPTY)
        if isinstance(hint, Unresolved):
            fix = (
                _failed_depends_message(hint.failed_depends)
                if hint.failed_depends is not None
                else None
            )
            raise InjectionError(
                f"{label}: parameter {param.name!r} is annotated {hint.text!r}, "
                + (
                    fix
                    if fix is not None
                    else f"which cannot be resolved ({hint.reason}). Import that "
                    "name at module level."
                ),
                parameter=parameter,
            )
        try:
            _reject_depends_default(label, param, hint)
            _, _, metadata = _unwrap(hint) if hint is not _EMPTY else (None, False, ())
            nested = _depends_in(f"{label}: parameter {param.name!r}", metadata, param)
        except InjectionError as exc:
            exc.parameter = parameter  # the task's parameter, not the dependency's
            raise
        if nested and param.kind not in _VARIADIC:
            params.append(
                ParamPlan(
                    param.name,
                    Source.DEPENDENCY,
                    False,
                    f"annotated {_type_name(hint)}",
                    dependency=_plan_dependency(
                        where, nested[0], parameter, (*stack, fn), resolver
                    ),
                )
            )
        elif param.default is _EMPTY and param.kind not in _VARIADIC:
            raise InjectionError(
                f"{label}: parameter {param.name!r} is required, but a dependency "
                "function only receives `(input, ctx)` and other "
                "`Annotated[T, Depends(fn)]` parameters. Give it a default, or "
                "annotate it with Depends.",
                parameter=parameter,
            )
    return DependencyPlan(fn=fn, is_async=is_async_callable(fn), params=tuple(params))


_DEPENDENCY_CALL = (
    "a dependency is called as fn(input, ctx), so it needs two positional parameters"
)


def _dependency_problem(fn: object) -> str | None:
    """What keeps ``fn`` from being called as ``fn(input, ctx)``, and the fix;
    ``None`` if nothing does."""
    if not callable(fn):
        return None  # said by the caller, which knows how it was written
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError) as exc:
        return (
            f"cannot read its parameters ({exc}). Depends takes a plain `def` "
            "or `async def` function of (input, ctx, ...)."
        )
    shown = f"{getattr(fn, '__name__', 'it')}({_params_text(parameters)})"
    taken = 0
    for param in parameters:
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            # *args can take ctx (or both), but Hatchet's Depends refuses a
            # function of fewer than two parameters, *args counting as one.
            if len(parameters) < 2:
                return (
                    f"{shown} takes *{param.name}, and {_DEPENDENCY_CALL} "
                    "declared by name (Hatchet's Depends counts them). Write "
                    "e.g. `lambda msg, ctx: ...` or `def dep(msg, ctx): ...`."
                )
            return None
        if param.kind not in _POSITIONAL:
            if taken < 2:
                what = (
                    f"takes **{param.name}"
                    if param.kind is inspect.Parameter.VAR_KEYWORD
                    else f"has the parameter {param.name!r} keyword-only"
                )
                return (
                    f"{shown} {what}, but {_DEPENDENCY_CALL}. Write e.g. "
                    "`def dep(msg, ctx): ...`."
                )
            return None
        taken += 1
        if taken == 2:
            return None
    return (
        f"{shown} takes {taken} parameter{'s' if taken != 1 else ''}, but "
        f"{_DEPENDENCY_CALL}. Write e.g. `def dep(msg, ctx): ...`."
    )


def _params_text(parameters: Sequence[inspect.Parameter]) -> str:
    """Parameters as they were written: ``msg, *, ctx``."""
    parts: list[str] = []
    starred = False
    for p in parameters:
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            parts.append(f"*{p.name}")
            starred = True
        elif p.kind is inspect.Parameter.VAR_KEYWORD:
            parts.append(f"**{p.name}")
        else:
            if p.kind is inspect.Parameter.KEYWORD_ONLY and not starred:
                parts.append("*")
                starred = True
            parts.append(p.name)
    return ", ".join(parts)


def _failed_depends_message(failed: FailedDepends) -> str | None:
    """Why a ``Depends(...)`` call in a string annotation refused its
    argument, and the fix; ``None`` when the call is not to blame."""
    if len(failed.args) != 1 or failed.keywords:
        return (
            f"but {failed.text} is not `Depends(fn)`: Depends takes one "
            "argument, the dependency function, called as fn(input, ctx, ...). "
            "Write `Depends(fn)`."
        )
    given = failed.args[0]
    if isinstance(given, str):
        fix = f"`Depends({given})`" if given.isidentifier() else "`Depends(fn)`"
        return (
            f"but {failed.text} is given the string {given!r}, not a function. "
            f"Pass the function itself: {fix}."
        )
    if not callable(given):
        return (
            f"but {failed.text} is given {given!r} ({_a(type(given).__name__)}), "
            "which is not a function. Depends takes the dependency function "
            "itself, called as fn(input, ctx, ...): e.g. `def load(msg, ctx): "
            "...` and `Depends(load)`."
        )
    problem = _dependency_problem(given)
    if problem is None:
        return None
    return f"but in {failed.text}, {problem}"


# --- rule 4 helpers --------------------------------------------------------


def _can_take(
    param: inspect.Parameter,
    hints: dict[str, object],
    deferred: set[str],
    claims: dict[str, ParamPlan],
) -> bool:
    """An override may only fill an unannotated, still-free, normal parameter."""
    if param.name in claims or param.name in deferred:
        return False
    if param.kind not in (*_POSITIONAL, inspect.Parameter.KEYWORD_ONLY):
        return False
    return hints.get(param.name, _EMPTY) in (_EMPTY, Any, object)


def _why_not(param: inspect.Parameter | None, hints: dict[str, object]) -> str:
    if param is None:
        return ""
    if param.kind in _VARIADIC:
        star = "*" if param.kind is inspect.Parameter.VAR_POSITIONAL else "**"
        return f" ({star}{param.name} cannot receive an injected value)"
    hint = hints.get(param.name, _EMPTY)
    if hint not in (_EMPTY, Any, object):
        return f" (parameter {param.name!r} is annotated {_type_name(hint)})"
    if param.kind is inspect.Parameter.KEYWORD_ONLY:
        return f" (parameter {param.name!r} is keyword-only, not positional)"
    return f" (parameter {param.name!r} already receives something else)"


def _passes_positionally(param: inspect.Parameter) -> bool:
    return param.kind is inspect.Parameter.POSITIONAL_ONLY


# --- the input, the output, unresolved names ----------------------------------


def _input_model(hint: object) -> object | None:
    """The first parameter's annotation, when it can validate the input: a
    pydantic model, a dataclass, a ``dict`` or a ``TypedDict`` (what Hatchet
    accepts as an input validator)."""
    if hint is _EMPTY or isinstance(hint, Unresolved):
        return None
    base, _, _ = _unwrap(hint)
    if is_typeddict(base) or _is_model_class(base):
        return base
    if base is dict or typing.get_origin(base) is dict:
        return base
    return None


def _is_model_class(tp: object) -> bool:
    """A pydantic model or a dataclass, possibly parametrised (``Page[int]``)."""
    cls = tp if isinstance(tp, type) else typing.get_origin(tp)
    return isinstance(cls, type) and (
        issubclass(cls, BaseModel) or dataclasses.is_dataclass(cls)
    )


def _reject_message_type(where: str, message: inspect.Parameter, hint: object) -> None:
    """The first parameter says it wants something Hatchet never gives: the
    task would receive Hatchet's ``EmptyModel`` (or another validator's
    type) instead. Unannotated, ``Any``, ``object`` and type variables say
    nothing, and stay allowed."""
    if hint is _EMPTY:
        return
    base, _, _ = _unwrap(hint)
    if base is Any or base is object or isinstance(base, typing.TypeVar):
        return
    name, shown = message.name, _type_name(hint)
    start = f"{where}: parameter {name!r} receives the task's input, but it is "
    if isinstance(base, type) and issubclass(base, (Context, TaskSignature)):
        raise InjectionError(
            f"{where}: parameter {name!r} is annotated {shown}, but the first "
            "parameter always receives the task's input message. Add the "
            f"message parameter before it: `async def task(msg: MyInput, "
            f"{name}: {shown}, ...)`.",
            parameter=name,
        )
    if len([m for m in _union_members(base) if m is not type(None)]) > 1:
        raise InjectionError(
            f"{start}annotated {shown}, a union, and Hatchet validates a "
            "task's input with one type, so mageflow cannot take it as the "
            "input validator. Annotate it with one model (one with the fields "
            "of each, say).",
            parameter=name,
        )
    model = f"{_camel(name)}Input"
    raise InjectionError(
        f"{start}annotated {shown}, and Hatchet validates a task's input into "
        f"a pydantic model, a dataclass or a dict, never into {shown}. Wrap "
        f"it in a model, e.g. `class {model}(BaseModel): value: {shown}` and "
        f"`{name}: {model}`, or annotate it `dict[str, ...]`.",
        parameter=name,
    )


def _reject_return_type(where: str, fn: Callable[..., Any], hint: object) -> None:
    """A return annotation whose values Hatchet's worker refuses to send (see
    ``serialize_output`` in ``mageflow._hatchet``): every run would fail."""
    if hint is NO_RETURN_HINT or _sendable(hint):
        return
    shown = _type_name(hint)
    model = f"{_camel(getattr(fn, '__name__', 'task'))}Result"
    raise InjectionError(
        f"{where}: the return annotation is {shown}, but Hatchet's worker only "
        "sends a task's output if it is a dict, a pydantic model, a dataclass "
        f"or None, so its runs would fail. Return a model (e.g. `class "
        f"{model}(BaseModel): value: {shown}`) or a dict, and annotate the "
        "function with it.",
        parameter="return",
    )


def _sendable(hint: object, depth: int = 0) -> bool:
    """Whether every value of ``hint`` is an output Hatchet's worker sends: a
    ``dict`` (or any ``Mapping``, ``TypedDict`` included, as Hatchet's own
    return type allows), a pydantic model, a dataclass, or ``None``. ``Any``,
    ``object`` and an unbounded type variable cannot be judged, and pass."""
    if depth > 20:
        return True
    if hint is None or hint is type(None) or hint is Any or hint is object:
        return True
    if hint is typing.NoReturn or hint is Never:
        return True  # never returns at all
    if is_type_alias(hint):
        return _sendable(getattr(hint, "__value__"), depth + 1)  # noqa: B009
    if isinstance(hint, typing.TypeVar):
        if hint.__constraints__:
            return all(_sendable(c, depth + 1) for c in hint.__constraints__)
        return hint.__bound__ is None or _sendable(hint.__bound__, depth + 1)
    origin = typing.get_origin(hint)
    if origin is Annotated:
        return _sendable(typing.get_args(hint)[0], depth + 1)
    members = _union_members(hint)
    if len(members) > 1:
        return all(_sendable(m, depth + 1) for m in members)
    if is_typeddict(hint):
        return True
    cls = hint if isinstance(hint, type) else origin
    if not isinstance(cls, type):
        return False  # Literal[...] and other special forms
    try:
        return issubclass(cls, (BaseModel, abc.Mapping)) or dataclasses.is_dataclass(
            cls
        )
    except TypeError:  # a class that refuses subclass checks
        return False


def _union_members(hint: object) -> tuple[object, ...]:
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(hint)
    return (hint,)


def _a(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _camel(name: str) -> str:
    """``price_order`` -> ``PriceOrder``, for a model name in a suggestion."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_")) or "My"


def _unresolved_message(
    where: str, fn: Callable[..., Any], name: str, hint: Unresolved
) -> str:
    if hint.failed_depends is not None:
        fix = _failed_depends_message(hint.failed_depends)
        if fix is not None:
            subject = (
                f"the return annotation is {hint.text!r}"
                if name == "return"
                else f"parameter {name!r} is annotated {hint.text!r}"
            )
            return f"{where}: {subject}, {fix}"
    subject = (
        f"the return annotation {hint.text!r}"
        if name == "return"
        else f"the annotation {hint.text!r} of parameter {name!r}"
    )
    if hint.missing_name and is_nested(fn):
        qualname = getattr(fn, "__qualname__", "")
        enclosing = qualname.rsplit(".<locals>.", 1)[0].rsplit(".<locals>.", 1)[-1]
        fix = (
            "Import or define that name at module level, or in "
            f"{enclosing}() before the task is decorated (a name local to a "
            "function is read when the decorator runs, unless the task's own "
            "body uses it too)."
        )
    else:
        fix = (
            "Import that name at module level (not only under "
            "`if TYPE_CHECKING:`), or define it before the task is first run."
        )
    return f"{where}: cannot resolve {subject} ({hint.reason}). {fix}"


# --- descriptions ----------------------------------------------------------


def _type_name(hint: object) -> str:
    """``hint`` as a user would write it: no module paths, Depends by name."""
    if typing.get_origin(hint) is Annotated:
        base, *metadata = typing.get_args(hint)
        extras = ", ".join(_metadata_name(item) for item in metadata)
        return f"Annotated[{_type_name(base)}, {extras}]"
    if isinstance(hint, type):
        return hint.__name__
    return _MODULE_PATH.sub("", repr(hint))


_MODULE_PATH = re.compile(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])")


def _metadata_name(item: object) -> str:
    if isinstance(item, Depends):
        fn = dependency_function(item)
        return f"Depends({getattr(fn, '__name__', fn)})"
    return repr(item)


def _describe_fn(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__qualname__', repr(fn))}()"


def explain(plan: InjectionPlan) -> str:
    """A readable account of ``plan``, one line per parameter."""
    kind = "durable task" if plan.durable else "task"
    style = "async" if plan.is_async else "sync, runs in a worker thread"
    lines = [f"{kind} {plan.task_name!r} ({style}), param_config={plan.config.name}"]
    model = _type_name(plan.input_model) if plan.input_model else "the task's validator"
    rows: list[tuple[str, str]] = [(plan.message_name, f"input message ({model})")]
    for param in plan.params:
        rows.append((param.name, _describe_param(param)))
    rows.extend((name, "keeps its default") for name in plan.defaults_kept)
    rows.extend(
        (name, f"unresolved {hint.text!r}, retried at first call")
        for name, hint in plan.unresolved
    )
    width = max(len(name) for name, _ in rows)
    lines.extend(f"  {name.ljust(width)}  <- {text}" for name, text in rows)
    if plan.stagger is not None:
        window = plan.stagger.total_seconds()
        lines.append(f"  stagger: random delay of up to {window:g}s before each run")
    if continues(plan.return_hint):
        lines.append(
            f"  returns: {_type_name(result_hint(plan.return_hint))}, now or "
            "through the signature it continues with (mageflow.Continue)"
        )
    if (root := plan.marks.root) is not None:
        lines.append(
            "  root task: what its body starts joins its children, "
            f"max_concurrency={root.max_concurrency}, "
            f"stop_after_n_failures={root.stop_after_n_failures}; callbacks "
            "get RootResult(result=..., children=[...])"
        )
    return "\n".join(lines)


def _describe_param(param: ParamPlan) -> str:
    if param.source is Source.DEFAULT:
        return "keeps its default"
    text = param.source.value
    if param.source is Source.SIGNATURE:
        text += ", None when the run has none" if param.optional else ", required"
    if param.dependency is not None:
        text = f"Depends({_dependency_tree(param.dependency)})"
    return f"{text} [{param.why}]"


def _dependency_tree(dep: DependencyPlan) -> str:
    name = getattr(dep.fn, "__name__", repr(dep.fn))
    if not dep.params:
        return name
    inner: Sequence[str] = [
        f"{p.name}={_dependency_tree(p.dependency)}" for p in dep.params if p.dependency
    ]
    return f"{name}({', '.join(inner)})"
