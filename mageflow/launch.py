"""Starting signatures: build each run's input and metadata, then dispatch.

Every run mageflow starts (a signature, a callback, later a chain step or a
swarm item) is built here, so the input rule is applied in one place:

    input = message merged with the bound kwargs; a field present in both
    with *different* values is an :class:`InputConflictError`.

Neither side silently wins: a bound kwarg is a promise about the call, and a
message that contradicts it is a bug to report, not to resolve by guessing.
Starting one signature yourself raises it at once; a signature that mageflow
starts (a callback, a chain step, a swarm item) fails with it instead, with
its error callbacks, so the workflow around it still ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from mageflow.callbacks import DEFAULT_RESULT_FIELD, TaskError
from mageflow.dispatch import DISPATCH_ID, SIGNATURE_ID, RunRequest
from mageflow.errors import InputConflictError
from mageflow.signature import SignatureStatus
from mageflow.store import CallbackTarget

if TYPE_CHECKING:
    from mageflow.client import HatchetMageflow


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
    bound: Mapping[str, Any], message: Mapping[str, Any], where: str
) -> dict[str, Any]:
    """The run's input: ``message`` and ``bound`` together (see module doc)."""
    merged = dict(message)
    for name, value in bound.items():
        if name in merged and merged[name] != value:
            raise InputConflictError(
                f"{where}: field {name!r} is bound to {value!r} but the message "
                f"gives {merged[name]!r}. Bind it or send it, not both."
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
        input=merge_input(bound, message, f"signature {signature_id} ({task_name})"),
        metadata={SIGNATURE_ID: signature_id, DISPATCH_ID: new_dispatch_id()},
    )


def outcome_message(return_field: str | None, value: Any) -> dict[str, Any]:
    """The message that hands ``value`` to a callback's ReturnValue field."""
    return {return_field or DEFAULT_RESULT_FIELD: value}


async def start(
    client: HatchetMageflow,
    targets: Sequence[tuple[CallbackTarget, Mapping[str, Any]]],
) -> None:
    """Start each (signature, message): tasks in one batch, containers each.

    A chain or a swarm is started by its own module; a task is one run.
    """
    from mageflow import chains, swarms

    requests: list[RunRequest] = []
    for target, message in targets:
        if target.kind == "chain":
            await chains.start(client, target.id, message)
        elif target.kind == "swarm":
            await swarms.start(client, target.id, message)
        else:
            try:
                request = request_for(
                    target.id, target.task_name, target.kwargs, message
                )
            except InputConflictError as exc:
                await _fail_unstartable(client, target, message, exc)
                continue
            requests.append(request)
    if len(requests) == 1:
        await client.dispatch_backend.trigger(requests[0])
    elif requests:
        await client.dispatch_backend.trigger_many(requests)


async def _fail_unstartable(
    client: HatchetMageflow,
    target: CallbackTarget,
    message: Mapping[str, Any],
    exc: InputConflictError,
) -> None:
    """A signature whose input cannot be built fails, instead of hanging.

    Its error callbacks fire and its container hears of it, exactly as if
    its task had failed, so a chain or swarm around it still finishes.
    """
    from mageflow.signed_run import settle
    from mageflow.store.signatures import dumps

    lease = new_dispatch_id()
    activation = await client.store.activate(target.id, lease, dumps(dict(message)))
    if activation.signature is None or activation.verdict.value != "run":
        return
    error = TaskError(
        error_type=type(exc).__name__,
        message=str(exc),
        signature_id=target.id,
        task_name=target.task_name,
        original_message=dict(message),
    )
    await settle(client, activation.signature, lease, SignatureStatus.FAILED, error)


async def fire(
    client: HatchetMageflow, targets: Sequence[CallbackTarget], value: Any
) -> None:
    """Start every callback in ``targets`` with the outcome ``value``."""
    await start(client, [(t, outcome_message(t.return_field, value)) for t in targets])
