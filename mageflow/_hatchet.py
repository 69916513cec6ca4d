"""Every place mageflow relies on hatchet-sdk internals, in one module.

mageflow uses Hatchet's public API everywhere else. What it needs beyond
that is here, one small function per need, each with a note saying what
breaks if Hatchet changes it. When you upgrade ``hatchet-sdk``, read this
file against the new release; the test suite exercises every function here.

Pinned against hatchet-sdk 1.43.1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from hatchet_sdk import Context, Depends, Hatchet
from hatchet_sdk.clients.admin import AdminClient
from hatchet_sdk.exceptions import IllegalTaskOutputError
from hatchet_sdk.runnables.contextvars import (
    ctx_action_key,
    ctx_additional_metadata,
    ctx_step_run_id,
    ctx_task_retry_count,
    ctx_workflow_run_id,
)
from hatchet_sdk.runnables.workflow import Standalone
from hatchet_sdk.serde import HATCHET_PYDANTIC_SENTINEL
from pydantic import BaseModel, TypeAdapter

# --- the client --------------------------------------------------------------


def share_client_state(target: Hatchet, source: Hatchet) -> None:
    """Make ``target`` use ``source``'s connection, config and sub-clients.

    ``HatchetMageflow`` is a ``Hatchet`` that must *be* the user's client,
    not a second one with its own connections. Hatchet keeps all of that in
    instance attributes (``_client``, ``_config`` ...), so copying the
    instance dictionary shares it. Breaks if Hatchet moves that state into
    ``__slots__`` or a class-level registry: ``target`` would then start
    without a connection and every trigger would fail.
    """
    target.__dict__.update(source.__dict__)


def admin_client(hatchet: Hatchet) -> AdminClient:
    """Hatchet's gRPC admin client, which triggers runs by workflow name.

    The public ``Standalone.aio_run`` needs the task object; callbacks and
    chain steps may be tasks that only another worker declares, so mageflow
    triggers by name. Breaks if ``Hatchet._client.admin`` is renamed.
    """
    admin: AdminClient = hatchet._client.admin
    return admin


# --- tasks ---------------------------------------------------------------------


def step_output_validator(standalone: Standalone[Any, Any]) -> TypeAdapter[Any]:
    """The adapter a worker dumps a task's output with.

    The worker uses ``task._validators.step_output`` (not the public
    ``Standalone.output_validator``, which may differ for batch tasks), so
    mageflow does the same to check an output before recording it. Breaks
    if either private name changes.
    """
    validator: TypeAdapter[Any] = standalone._task._validators.step_output
    return validator


def validate_input(standalone: Standalone[Any, Any], data: Mapping[str, Any]) -> None:
    """Validate ``data`` as the worker will before it calls the task.

    The same call as the private ``Workflow._get_workflow_input`` makes,
    with the public adapter; if the worker's rule changes, an input mageflow
    let through may fail there instead (recovery then fails the signature).

    :raises pydantic.ValidationError: the input does not validate.
    """
    standalone.input_validator.validate_python(data, context=HATCHET_PYDANTIC_SENTINEL)


def task_retries(standalone: Standalone[Any, Any]) -> int:
    """``retries=`` as declared: the local backend makes ``retries + 1``
    attempts. Breaks if the task object moves off ``Standalone._task``."""
    retries: int = standalone._task.retries
    return retries


def execution_timeout_seconds(standalone: Standalone[Any, Any]) -> float | None:
    """``execution_timeout=`` as declared, in seconds (``None``: none).

    The local backend enforces it, and a signed run tells a timeout from a
    cancel with it. Breaks if the task object moves off ``Standalone._task``.
    """
    timeout: timedelta | str | None = standalone._task.execution_timeout
    if timeout is None:
        return None
    if isinstance(timeout, timedelta):
        return timeout.total_seconds()
    total, number = 0.0, ""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    text = timeout.strip()
    index = 0
    while index < len(text):
        char = text[index]
        if char.isdigit() or char == ".":
            number += char
            index += 1
            continue
        unit = "ms" if text.startswith("ms", index) else char
        if unit not in units or not number:
            return None
        total += float(number) * units[unit]
        number, index = "", index + len(unit)
    return total + (float(number) if number else 0.0)


def dependency_function(marker: Depends[Any, Any]) -> Callable[..., Any]:
    """The function inside ``Depends(fn)``.

    The public ``Depends.fn`` warns (deprecated, "internal") on every read;
    the plan reads the private ``_fn`` once, at decoration time. Breaks if
    ``_fn`` is renamed: decoration would fail with an AttributeError.
    """
    fn: Callable[..., Any] = marker._fn
    return fn


_NULL_CHARACTER = re.compile(r"(?<!\\)(\\\\)*\\u0000")


def serialize_output(validator: TypeAdapter[Any], output: Any) -> str | None:
    """What a Hatchet worker sends for a task's output.

    A copy of ``Runner.serialize_output`` (a method of a private worker
    class), needed before the worker applies it: the local backend plays
    the worker, and a signed run must not record a result that the worker
    will then refuse. If Hatchet changes its rule, this copy drifts and a
    signed run may record an output the worker refuses (or the reverse).

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


# --- the run's context variables ---------------------------------------------
# A worker sets these (hatchet_sdk.runnables.contextvars) around each run, and
# Hatchet reads them when a run triggers another one. If the names change,
# the local backend stops looking like a worker, and triggers from inside a
# run may become children of that run or inherit its metadata.


@contextlib.contextmanager
def detached() -> Iterator[None]:
    """Trigger as a top-level run, even from inside a task.

    Hatchet makes a run triggered inside another a child of it when these
    variables are set; a callback's life is the workflow's, not its
    trigger's, so mageflow clears them while it triggers.
    """
    tokens = (
        ctx_workflow_run_id.set(None),
        ctx_step_run_id.set(None),
        ctx_action_key.set(None),
    )
    try:
        yield
    finally:
        ctx_action_key.reset(tokens[2])
        ctx_step_run_id.reset(tokens[1])
        ctx_workflow_run_id.reset(tokens[0])


def enter_run(metadata: Mapping[str, Any], retry_count: int, run_id: str) -> None:
    """Set what a worker sets before it calls a task (the local backend's
    stand-in for ``Runner.async_wrapped_action_func``): the run's metadata,
    its attempt, and its task run id, the same on every attempt."""
    ctx_additional_metadata.set(dict(metadata))
    ctx_task_retry_count.set(retry_count)
    ctx_step_run_id.set(run_id)


def current_task_run_id() -> str | None:
    """The id of the task run in progress here (the same on every attempt of
    it), or ``None`` outside a run. Signing inside a run derives its ids
    from it, so a retried run signs the same signatures again."""
    return ctx_step_run_id.get()


def mark_cancelled(ctx: Context) -> None:
    """Flag ``ctx`` as cancelled, as the worker does before it cancels a run
    the engine cancelled (``Runner.handle_cancel_action``). Breaks if
    ``Context._set_cancellation_flag`` is renamed."""
    ctx._set_cancellation_flag()


def set_retry_count(retry_count: int) -> None:
    """The attempt number a worker publishes for the current run."""
    ctx_task_retry_count.set(retry_count)


def forget_inherited_metadata(names: frozenset[str]) -> None:
    """Drop ``names`` from the metadata runs triggered from here inherit.

    Hatchet copies the current run's ``additional_metadata`` into every run
    triggered inside it; a child carrying our signature id would try to
    claim our signature.
    """
    inherited = ctx_additional_metadata.get()
    if inherited and any(key in inherited for key in names):
        ctx_additional_metadata.set(
            {k: v for k, v in inherited.items() if k not in names}
        )
