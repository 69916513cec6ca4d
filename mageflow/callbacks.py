"""How an outcome reaches a callback: ``ReturnValue[T]`` and ``TaskError``.

A callback is a signature like any other; it just runs with its trigger's
outcome as part of its input. *Which* input field receives the outcome is
declared by type: the field annotated ``ReturnValue[T]``. A callback without
such a field receives it in :data:`DEFAULT_RESULT_FIELD`. The field is found
once, when the callback is signed, and stored as a plain field name.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Annotated, Any, Generic, Literal, TypeAlias, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class _ReturnValueMarker:
    """The ``Annotated`` metadata that marks the field receiving a result."""

    def __repr__(self) -> str:
        return "RETURN_VALUE"


RETURN_VALUE = _ReturnValueMarker()

ReturnValue: TypeAlias = Annotated[T, RETURN_VALUE]
"""``field: ReturnValue[T]`` receives the result of the task that triggered
this one (a success callback, or the next step of a chain), or the
:class:`TaskError` of an error callback."""

DEFAULT_RESULT_FIELD = "result"
"""Where the outcome goes when the callback's input has no ``ReturnValue``."""


ErrorKind = Literal[
    "exception",
    "timeout",
    "cancelled",
    "validation",
    "unknown_task",
    "lost",
    "corrupt",
    "continuation",
]
"""Why a signature failed:

``exception``
    its function raised (on its last attempt);
``timeout``
    it ran past its ``execution_timeout`` (on its last attempt);
``cancelled``
    its run was cancelled on the engine, by someone other than mageflow;
``validation``
    its input did not validate against the task's input model;
``unknown_task``
    no worker knows its task, so it could not start;
``lost``
    its worker went away and no attempt was left, or the engine lost its run;
``corrupt``
    a record it needed was damaged;
``continuation``
    it returned ``mageflow.Continue`` and could not continue (see
    :class:`mageflow.ContinuationError`).
"""


class TaskError(BaseModel):
    """What an error callback receives about the failure that triggered it.

    Plain data, never the exception object: it crosses processes as JSON.
    """

    error_type: str
    """The exception's class name, e.g. ``"ValueError"``."""
    message: str
    """``str(exception)``."""
    signature_id: str
    """The signature that failed (a task, or a chain or swarm)."""
    task_name: str
    """The task that failed."""
    original_message: dict[str, Any]
    """The input the failing run was given."""
    kind: ErrorKind = "exception"
    """Why it failed (see :data:`ErrorKind`)."""
    errors: list[dict[str, Any]] = Field(default_factory=list)
    """For ``validation``: one entry per invalid field, with its ``loc``
    (the field's path), ``msg`` and ``type``, as pydantic reports them."""
    traceback: str | None = None
    """The exception's traceback, when there was one (cut to a few KB)."""


class RootResult(BaseModel, Generic[T]):
    """What a root task's success callbacks receive: the body's result and
    every child's outcome, in the order the children were started.

    Annotate a callback's field ``ReturnValue[RootResult[Out]]`` to have it
    validated. A child that failed appears as its
    :class:`TaskError` payload (a ``dict``), as in a swarm's results.
    """

    result: T
    """What the root task's body returned."""
    children: list[Any] = Field(default_factory=list)
    """Each child's outcome (its result, or its error's payload), in start
    order."""


def return_field_of(input_model: object) -> str | None:
    """The name of the ``ReturnValue`` field of an input model, if it has one.

    Works for pydantic models and dataclasses; anything else has none.
    """
    if isinstance(input_model, type) and issubclass(input_model, BaseModel):
        for name, info in input_model.model_fields.items():
            if any(meta is RETURN_VALUE for meta in info.metadata):
                return name
        return None
    if isinstance(input_model, type) and dataclasses.is_dataclass(input_model):
        try:
            hints = typing.get_type_hints(input_model, include_extras=True)
        except Exception:
            return None
        for name, hint in hints.items():
            if typing.get_origin(hint) is Annotated and any(
                meta is RETURN_VALUE for meta in hint.__metadata__
            ):
                return name
    return None
