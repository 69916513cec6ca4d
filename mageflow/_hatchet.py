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
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any, cast

from hatchet_sdk import Context, Depends, Hatchet
from hatchet_sdk.clients.admin import AdminClient
from hatchet_sdk.clients.rest.tenacity_utils import tenacity_retry
from hatchet_sdk.connection import new_conn
from hatchet_sdk.contracts import workflows_pb2
from hatchet_sdk.contracts.v1.shared.trigger_pb2 import TriggerWorkflowRequest
from hatchet_sdk.contracts.workflows_pb2_grpc import WorkflowServiceStub
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
from hatchet_sdk.types.trigger import TriggerWorkflowOptions
from hatchet_sdk.utils.api_auth import create_authorization_header
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


# --- triggering runs without the SDK's thread pool ------------------------------
# The admin client's ``aio_run_workflow(s)`` run a *sync* gRPC call in
# ``asyncio.to_thread``: every trigger takes a thread of the loop's default
# executor (``min(32, cores + 4)`` threads, shared with every other
# ``to_thread``). mageflow builds the same requests and sends them on a
# ``grpc.aio`` channel of its own instead.

TriggerMessage = TriggerWorkflowRequest
"""The engine's request to start one run (the SDK's protobuf message)."""


def trigger_message(
    admin: AdminClient,
    task_name: str,
    input_json: str,
    options: TriggerWorkflowOptions,
) -> TriggerMessage:
    """The request ``admin.aio_run_workflow`` would send for this run.

    The private ``AdminClient._create_workflow_run_request`` applies the
    namespace, merges the metadata the current run passes on, and reads the
    run's context variables (parent ids, spawn index), so it must be called
    in the caller's context, inside :func:`detached`. Breaks if that method
    is renamed or changes its arguments: every trigger then fails with an
    ``AttributeError`` or ``TypeError`` (the e2e suite's first run shows it).
    """
    message: TriggerMessage = admin._create_workflow_run_request(
        task_name, input_json, options
    )
    return message


@dataclasses.dataclass(frozen=True)
class AioTrigger:
    """The engine's two trigger calls on a ``grpc.aio`` channel.

    Each raises ``grpc.RpcError`` (``grpc.aio.AioRpcError``) as the SDK's own
    calls do, after the SDK's retries.
    """

    one: Callable[[TriggerMessage], Awaitable[str]]
    """``TriggerWorkflow``: start one run, return its id."""
    bulk: Callable[[Sequence[TriggerMessage]], Awaitable[list[str]]]
    """``BulkTriggerWorkflow``: start all of them, return their ids in
    order (a call the engine refuses started none of them)."""


def aio_trigger(admin: AdminClient) -> AioTrigger:
    """Trigger calls on a new ``grpc.aio`` channel, bound to the running loop.

    The channel is made by ``hatchet_sdk.connection.new_conn(config,
    aio=True)``, as the SDK makes its own listeners' (same address, TLS and
    channel options); the stub is the SDK's generated ``WorkflowServiceStub``
    (the v0 service its ``aio_run_workflow(s)`` call); the auth header and
    the retries (``HATCHET_CLIENT_TENACITY_*``) are the SDK's. Breaks if any
    of those modules moves (an ``ImportError`` when mageflow is imported) or
    if the SDK stops sending triggers to that service (the engine may then
    drop it: every trigger fails with ``UNIMPLEMENTED``).
    """
    channel = new_conn(admin.config, True)
    stub = WorkflowServiceStub(channel)
    auth = create_authorization_header(admin.token)
    retry = admin.config.tenacity

    async def one(message: TriggerMessage) -> str:
        response = cast(
            workflows_pb2.TriggerWorkflowResponse,
            await stub.TriggerWorkflow(message, metadata=auth),
        )
        return response.workflow_run_id

    async def bulk(messages: Sequence[TriggerMessage]) -> list[str]:
        request = workflows_pb2.BulkTriggerWorkflowRequest(workflows=messages)
        response = cast(
            workflows_pb2.BulkTriggerWorkflowResponse,
            await stub.BulkTriggerWorkflow(request, metadata=auth),
        )
        return list(response.workflow_run_ids)

    return AioTrigger(tenacity_retry(one, retry), tenacity_retry(bulk, retry))


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
