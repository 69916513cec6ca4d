"""Turning a function's annotations into real types, as forgivingly as is safe.

``typing.get_type_hints`` is all-or-nothing: one name it cannot find and it
raises for the whole function. Task modules often import ``Context`` or
``TaskSignature`` only under ``if TYPE_CHECKING:``, or write
``from __future__ import annotations`` so that every annotation is a string.
So resolution runs in three steps, each only when the one before failed:

1. ``get_type_hints`` on the whole function, against its own module.
2. Per annotation, against the module namespace *under* a seed of the types
   mageflow injects, so a name the module never imported at run time still
   resolves, while a module's own ``Context`` (if it has one) still wins.
3. Per annotation that is still a string, a look at its syntax: a dotted name
   ending in ``Context``, ``DurableContext`` or ``TaskSignature`` (such as
   ``hatchet_sdk.Context`` with the module imported only for type checking),
   possibly inside ``Optional[...]``, ``... | None`` or ``Annotated[...]``.

Steps 1 and 2 also see the names of the functions that enclose a nested
function (a task defined inside a factory function), as Python itself would
for an annotation that is not a string: see :func:`enclosing_names`.

What is still unknown after that comes back as :class:`Unresolved`. The caller
decides what that means; it is never dropped.
"""

from __future__ import annotations

import ast
import dataclasses
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Optional

from hatchet_sdk import Context, Depends, DurableContext

from mageflow.signature import TaskSignature

# The types a task may ask for, by the name a user would write. They seed the
# namespace of step 2 and are what step 3 matches final dotted names against.
INJECTABLE_TYPES: Mapping[str, type] = {
    "Context": Context,
    "DurableContext": DurableContext,
    "TaskSignature": TaskSignature,
}
_SEED: Mapping[str, object] = {
    **INJECTABLE_TYPES,
    "Depends": Depends,
    "Annotated": Annotated,
    "Optional": Optional,
}


@dataclasses.dataclass(frozen=True)
class FailedDepends:
    """A ``Depends(...)`` call, in a string annotation, that raised when run.

    Hatchet's ``Depends`` checks its argument in its constructor, so a wrong
    argument makes the whole annotation fail to resolve. This records what
    the call was given, for a message that says what is wrong with it.
    """

    text: str
    """The call as written, e.g. ``Depends(42)``."""
    args: tuple[object, ...]
    """Its positional arguments, as resolved."""
    keywords: tuple[str, ...]
    """The names of its keyword arguments, if any."""


@dataclasses.dataclass(frozen=True)
class Unresolved:
    """An annotation that names something unknown; ``text`` is its source."""

    text: str
    reason: str
    missing_name: bool
    """True when a name was not found: worth one more try at the first call,
    when the module has finished importing. Any other failure is final."""
    failed_depends: FailedDepends | None = None
    """Set when the failure was a ``Depends(...)`` call refusing its argument."""


class _Annotations:
    """A bare holder of annotations, so ``get_type_hints`` can do one at a time."""

    def __init__(self, annotations: dict[str, object]) -> None:
        self.__annotations__ = annotations


def resolve_annotations(
    fn: Callable[..., Any], scope: Mapping[str, object] | None = None
) -> dict[str, object]:
    """Map each annotated name of ``fn`` (``"return"`` too) to its type.

    A value is either the resolved type (``Annotated`` extras kept) or an
    :class:`Unresolved`. ``scope`` holds names from the functions enclosing
    ``fn``, captured when it was decorated (:func:`enclosing_names`); the
    names ``fn``'s own body uses from them are read from its closure, as they
    are now, so a name bound after the decorator ran is seen here later.
    """
    raw: dict[str, object] = dict(getattr(fn, "__annotations__", None) or {})
    if not raw:
        return {}
    # Inner names shadow outer ones, as in Python: the closure (current
    # values) over the captured scope, both over the module.
    local = {**(scope or {}), **_closure_values(fn)}
    localns = local or None
    try:
        return dict(typing.get_type_hints(fn, localns=localns, include_extras=True))
    except Exception:  # NameError, or a syntax/type error in one string
        pass

    module_ns = _module_namespace(fn)
    namespace = {**_SEED, **module_ns}
    resolved: dict[str, object] = {}
    for name, annotation in raw.items():
        try:
            hints = typing.get_type_hints(
                _Annotations({name: annotation}),
                globalns=namespace,
                localns=localns,
                include_extras=True,
            )
            resolved[name] = hints[name]
        except Exception as exc:
            text = annotation if isinstance(annotation, str) else repr(annotation)
            matched = _match_by_name(text) if isinstance(annotation, str) else None
            if matched is not None:
                resolved[name] = matched
                continue
            missing = isinstance(exc, NameError)
            failed = (
                None
                if missing or not isinstance(annotation, str)
                else _failed_depends(annotation, namespace, local)
            )
            resolved[name] = Unresolved(text, _describe(exc), missing, failed)
    return resolved


def _unwrapped(fn: Callable[..., Any]) -> Any:
    target: Any = fn
    while hasattr(target, "__wrapped__"):
        target = target.__wrapped__
    return target


def _module_namespace(fn: Callable[..., Any]) -> dict[str, Any]:
    return dict(getattr(_unwrapped(fn), "__globals__", {}))


def _closure_values(fn: Callable[..., Any]) -> dict[str, object]:
    """The enclosing-scope names ``fn``'s body uses, with their current values
    (a name not bound yet is left out)."""
    target = _unwrapped(fn)
    code = getattr(target, "__code__", None)
    cells = getattr(target, "__closure__", None)
    if not isinstance(code, types.CodeType) or not cells:
        return {}
    values: dict[str, object] = {}
    for name, cell in zip(code.co_freevars, cells, strict=True):
        try:
            values[name] = cell.cell_contents
        except ValueError:  # an empty cell: bound later, or never
            continue
    return values


def is_nested(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` was defined inside a function (its own code says so)."""
    return "<locals>" in getattr(_unwrapped(fn), "__qualname__", "")


def enclosing_names(fn: Callable[..., Any]) -> dict[str, object]:
    """Decoration time: the names ``fn``'s annotations use from the functions
    that enclose it, with their values now.

    With ``from __future__ import annotations`` an annotation is a string,
    resolved later against the module's globals only, so a model or a
    dependency defined in the same function as the task is out of its reach.
    Like pydantic, this reads them from the frame that is defining ``fn``,
    while it still runs, which it does while its decorator runs.

    Which frame: not a fixed depth up the stack (the decorator's own frames
    vary), nor the first frame outside mageflow (that may be a helper that
    decorates a function it was given, whose locals mean nothing to that
    function). The frame wanted is one running the code that *contains*
    ``fn``'s code object among its constants: its lexical parent, for sure.
    From there the walk goes on to that code's own parent, and so on, as
    Python's scoping does (pydantic stops at the parent). The function's
    closure is not enough on its own: it holds only names the *body* uses,
    never names used in annotations only; it is read too, at each resolution
    (:func:`resolve_annotations`), for names bound after the decorator ran.

    Only the names the annotations use are copied, never the frames, so no
    frame or unrelated local is kept alive. A module-level function gets
    ``{}`` without looking at any frame.
    """
    target = _unwrapped(fn)
    code = getattr(target, "__code__", None)
    if not isinstance(code, types.CodeType) or not is_nested(target):
        return {}
    annotations = getattr(target, "__annotations__", None) or {}
    wanted = set().union(*(_names_in(a) for a in annotations.values()))
    found: dict[str, object] = {}
    frame: types.FrameType | None = sys._getframe(1)
    try:
        while frame is not None and wanted - found.keys():
            parent = frame.f_code
            # A module's frame holds its globals, which are read live anyway.
            if parent.co_name != "<module>" and any(
                const is code for const in parent.co_consts
            ):
                f_locals = frame.f_locals
                for name in wanted - found.keys():
                    if name in f_locals:
                        found[name] = f_locals[name]
                code = parent  # next: the function that encloses this one
            frame = frame.f_back
    finally:
        del frame  # a frame in a local can form a reference cycle
    return found


def _names_in(annotation: object, depth: int = 0) -> set[str]:
    """The bare names a (possibly string, possibly nested) annotation uses."""
    if depth > 20:
        return set()
    if isinstance(annotation, str):
        try:
            node = ast.parse(annotation)
        except SyntaxError:
            return set()
        return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    if isinstance(annotation, typing.ForwardRef):
        return _names_in(annotation.__forward_arg__, depth + 1)
    names: set[str] = set()
    for arg in typing.get_args(annotation):
        names |= _names_in(arg, depth + 1)
    return names


class _DependsCall:
    """Stands in for ``Depends`` while a failed annotation is resolved again:
    it keeps what it was called with instead of checking it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.args = args
        self.keywords = tuple(kwargs)


def _failed_depends(
    text: str, globalns: dict[str, Any], localns: Mapping[str, object]
) -> FailedDepends | None:
    """The ``Depends(...)`` call in ``text`` whose arguments are what made it
    fail; ``None`` if there is no such call.

    The annotation is resolved once more by ``get_type_hints``, as before,
    with the name ``Depends`` bound to :class:`_DependsCall`, which records
    its arguments. Only a call written ``Depends(...)`` whose name means
    Hatchet's ``Depends`` here is looked at."""
    if {**globalns, **localns}.get("Depends") is not Depends:
        return None
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "Depends"
    ]
    if not calls:
        return None
    try:
        hint = typing.get_type_hints(
            _Annotations({"hint": text}),
            globalns=globalns,
            localns={**localns, "Depends": _DependsCall},
            include_extras=True,
        )["hint"]
    except Exception:
        return None  # it fails for another reason: not something this explains
    recorded = _depends_calls(hint)
    if not recorded:
        return None
    call = recorded[0]
    return FailedDepends(ast.unparse(calls[0]), call.args, call.keywords)


def _depends_calls(hint: object, depth: int = 0) -> list[_DependsCall]:
    """The recorded ``Depends`` calls in a resolved annotation, outermost first."""
    if isinstance(hint, _DependsCall):
        return [hint]
    if depth > 20:
        return []
    found: list[_DependsCall] = []
    for part in (*typing.get_args(hint), *getattr(hint, "__metadata__", ())):
        found += _depends_calls(part, depth + 1)
    return found


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _match_by_name(text: str) -> object | None:
    """Step 3: recognise an injectable type by the shape of the annotation text."""
    try:
        module = ast.parse(text)
    except SyntaxError:
        return None
    if len(module.body) != 1 or not isinstance(module.body[0], ast.Expr):
        return None
    return _match_node(module.body[0].value)


def _match_node(node: ast.expr) -> object | None:
    final = _final_name(node)
    if final is not None:
        return INJECTABLE_TYPES.get(final)
    # X | None  and  None | X
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = node.left, node.right
        if _is_none(right):
            inner = _match_node(left)
        elif _is_none(left):
            inner = _match_node(right)
        else:
            return None
        return Optional[inner] if inner is not None else None  # noqa: UP045
    if isinstance(node, ast.Subscript):
        wrapper = _final_name(node.value)
        inner_nodes = (
            list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        )
        if wrapper == "Optional" and len(inner_nodes) == 1:
            inner = _match_node(inner_nodes[0])
            return Optional[inner] if inner is not None else None  # noqa: UP045
        if wrapper == "Union":
            rest = [n for n in inner_nodes if not _is_none(n)]
            if len(rest) == 1 and len(inner_nodes) == 2:
                inner = _match_node(rest[0])
                return Optional[inner] if inner is not None else None  # noqa: UP045
            return None
        if wrapper == "Annotated" and inner_nodes:
            # Only the base type is matched. Metadata that calls something, such
            # as Depends(...), needs its names resolved for real, so it leaves the
            # annotation unresolved; plain metadata (strings, numbers) is inert.
            if any(
                isinstance(n, ast.Call) for m in inner_nodes[1:] for n in ast.walk(m)
            ):
                return None
            return _match_node(inner_nodes[0])
    return None


def _final_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def is_type_alias(hint: object) -> bool:
    """Whether ``hint`` is a PEP 695 ``type X = ...`` alias (3.12+ or backport)."""
    return type(hint).__name__ == "TypeAliasType" and hasattr(hint, "__value__")


def strip_optional(hint: object) -> tuple[object, bool]:
    """Split ``X | None`` / ``Optional[X]`` into ``(X, True)``.

    A union of several non-None members comes back whole, with ``False``.
    """
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        members = typing.get_args(hint)
        rest = [m for m in members if m is not type(None)]
        if len(rest) == 1 and len(rest) < len(members):
            return rest[0], True
    return hint, False
