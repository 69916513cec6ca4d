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
from typing import Annotated, Any, TypeAlias, TypeVar

from pydantic import BaseModel

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
