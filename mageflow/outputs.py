"""A task's output, checked and serialized exactly as a Hatchet worker does.

Two places need the worker's rule before the worker applies it: the local
backend, which plays the worker, and a signed run, which must not record a
result (and fire callbacks with it) that the worker will then refuse.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from hatchet_sdk.exceptions import IllegalTaskOutputError
from hatchet_sdk.serde import HATCHET_PYDANTIC_SENTINEL
from pydantic import BaseModel, TypeAdapter

_NULL_CHARACTER = re.compile(r"(?<!\\)(\\\\)*\\u0000")


def serialize_output(validator: TypeAdapter[Any], output: Any) -> str | None:
    """What a Hatchet worker sends for a task's output; mirrors
    ``hatchet_sdk.worker.runner.runner.Runner.serialize_output`` (1.43.1).

    :raises IllegalTaskOutputError: not a dict, a model or a dataclass, not
        serializable by the task's output validator, or contains ``\\u0000``.
    """
    if not output:
        return None
    if not isinstance(output, dict | BaseModel) and not dataclasses.is_dataclass(
        output
    ):
        raise IllegalTaskOutputError(
            "Tasks must return either a dictionary, a Pydantic BaseModel, or a "
            "dataclass which can be serialized to a JSON object. Got object of "
            f"type {type(output)} instead."
        )
    try:
        serialized = validator.dump_json(
            output, context=HATCHET_PYDANTIC_SENTINEL
        ).decode("utf-8")
    except Exception as exc:
        raise IllegalTaskOutputError(f"Failed to serialize task output: {exc}") from exc
    if not serialized:
        return None
    if _NULL_CHARACTER.search(serialized):
        raise IllegalTaskOutputError(
            "Task outputs cannot contain the unicode null character \\u0000; "
            "sanitize it with hatchet_sdk.remove_null_unicode_character."
        )
    return serialized
