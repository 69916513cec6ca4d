"""The input rule: what a run of a signature is given.

Every run mageflow starts (a signature, a callback, a chain step, a swarm
item) gets its input here, so the rule is applied in one place:

    input = message merged with the bound kwargs; a field present in both
    with *different* values is an :class:`InputConflictError`.

Neither side silently wins: a bound kwarg is a promise about the call, and a
message that contradicts it is a bug to report, not to resolve by guessing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from mageflow._hatchet import validate_input
from mageflow.callbacks import DEFAULT_RESULT_FIELD
from mageflow.dispatch import DISPATCH_ID, SIGNATURE_ID, RunRequest
from mageflow.errors import InputConflictError
from mageflow.registry import TaskRegistry


def jsonable(value: Any) -> Any:
    """``value`` as JSON data (models, dataclasses, datetimes included)."""
    return to_jsonable_python(value)


def message_data(message: Any, where: str) -> dict[str, Any]:
    """A message (model, dataclass, mapping or None) as a JSON object."""
    if message is None:
        return {}
    data = jsonable(message)
    if not isinstance(data, dict):
        raise TypeError(
            f"{where}: a message must be a pydantic model, a dataclass or a "
            f"mapping, got {type(message).__name__}."
        )
    return data


def merge_input(
    bound: Mapping[str, Any],
    message: Mapping[str, Any],
    where: str,
    *,
    signature_id: str | None = None,
    task_name: str | None = None,
) -> dict[str, Any]:
    """The run's input: ``message`` and ``bound`` together (see module doc)."""
    merged = dict(message)
    for name, value in bound.items():
        if name in merged and merged[name] != value:
            raise InputConflictError(
                f"{where}: field {name!r} is bound to {value!r} but the message "
                f"gives {merged[name]!r}. Bind it or send it, not both.",
                signature_id=signature_id,
                task_name=task_name,
                field=name,
            )
        merged[name] = value
    return merged


def new_dispatch_id() -> str:
    return uuid.uuid4().hex


def request_for(
    signature_id: str,
    task_name: str,
    bound: Mapping[str, Any],
    message: Mapping[str, Any],
) -> RunRequest:
    """The run that starts ``signature_id`` with ``message``."""
    return RunRequest(
        task_name=task_name,
        input=merge_input(
            bound,
            message,
            f"signature {signature_id} ({task_name})",
            signature_id=signature_id,
            task_name=task_name,
        ),
        metadata={SIGNATURE_ID: signature_id, DISPATCH_ID: new_dispatch_id()},
    )


def outcome_message(return_field: str | None, value: Any) -> dict[str, Any]:
    """The message that hands ``value`` to a callback's ReturnValue field."""
    return {return_field or DEFAULT_RESULT_FIELD: value}


def input_problems(
    registry: TaskRegistry, request: RunRequest
) -> list[dict[str, Any]] | None:
    """Why ``request``'s input fails its task's input model (one entry per
    field: ``loc``, ``msg``, ``type``), or ``None`` when it validates or the
    task is not declared here (the worker checks it then)."""
    registered = registry.get(request.task_name)
    if registered is None:
        return None
    try:
        validate_input(registered.standalone, request.input)
    except ValidationError as exc:
        return [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False)
        ]
    return None


def describe_problems(problems: list[dict[str, Any]]) -> str:
    """Invalid fields in one line: ``quantity: Input should be ...; ...``."""
    return "the input does not validate: " + "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(input)'}: {e['msg']}"
        for e in problems
    )
