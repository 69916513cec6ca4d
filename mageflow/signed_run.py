"""What a run started from a signature does around the user's function.

Three Redis round trips at most, whatever the callbacks:

1. ``activate``: one script checks the status and claims the signature for
   this dispatch, returning the record (so the signature can be injected);
2. ``finish``: one script records the outcome and returns the callbacks to
   fire (their task names and bound kwargs), atomically;
3. ``mark_sent``: once the callbacks were dispatched.

Hatchet delivers at least once and workers die, so every step is safe to
repeat. A delivery of a signature that is already finished never runs the
function again: it re-sends the callbacks if step 3 never happened (the
worker died between 2 and 3) and ends. A callback that is dispatched twice
that way still runs once, because its own activation admits one dispatch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hatchet_sdk import Context
from hatchet_sdk.exceptions import NonRetryableException
from hatchet_sdk.runnables.contextvars import ctx_additional_metadata

from mageflow.callbacks import TaskError
from mageflow.dispatch import DISPATCH_ID, MAGEFLOW_METADATA
from mageflow.injection.plan import InjectionPlan
from mageflow.invoke import call_user
from mageflow.launch import fire, jsonable, message_data
from mageflow.outputs import serialize_output
from mageflow.signature import SignatureStatus, TaskSignature
from mageflow.store import Activation, CallbackTarget, Verdict
from mageflow.store.signatures import decode, dumps

if TYPE_CHECKING:
    from mageflow.client import HatchetMageflow

logger = logging.getLogger("mageflow")


class SignatureFailedError(NonRetryableException):
    """A delivery of a signature that already failed: it is not run again."""


def _forget_signature_metadata(metadata: Mapping[str, Any]) -> None:
    """Keep runs this task triggers itself from inheriting its signature.

    Hatchet copies the current run's ``additional_metadata`` into every run
    triggered from inside it; a child run carrying our signature id would try
    to claim our signature.
    """
    inherited = ctx_additional_metadata.get()
    if inherited and any(key in inherited for key in MAGEFLOW_METADATA):
        ctx_additional_metadata.set(
            {k: v for k, v in inherited.items() if k not in MAGEFLOW_METADATA}
        )


def is_final_attempt(ctx: Context, exc: BaseException) -> bool:
    """Whether Hatchet will not retry after ``exc`` (``retries=N``: N+1 tries)."""
    return isinstance(exc, NonRetryableException) or (
        ctx.attempt_number >= ctx.max_attempts
    )


async def run_signed(
    plan: InjectionPlan,
    input: Any,
    ctx: Context,
    signature_id: str,
    metadata: Mapping[str, Any],
    provided: dict[str, Any],
    client: HatchetMageflow,
) -> Any:
    _forget_signature_metadata(metadata)
    lease = str(metadata.get(DISPATCH_ID) or ctx.workflow_run_id)
    raw_message = message_data(input, f"signature {signature_id}")
    store = client.store
    activation = await store.activate(signature_id, lease, dumps(raw_message))
    if activation.verdict is Verdict.FINISHED:
        return await _replay_finished(activation, client)
    if activation.verdict is not Verdict.RUN or activation.signature is None:
        logger.info(
            "mageflow: run of signature %s skipped, it is %s (%s)",
            signature_id,
            activation.status,
            activation.verdict.value,
        )
        return None
    signature = activation.signature
    signature._client = client
    try:
        result = await call_user(plan, input, ctx, signature, provided, client)
        # The worker refuses an output it cannot serialize, after we return;
        # find out first, so a refused result is never recorded or fired.
        _check_output(client, signature.task_name, result)
    except Exception as exc:
        if is_final_attempt(ctx, exc):
            error = TaskError(
                error_type=type(exc).__name__,
                message=str(exc),
                signature_id=signature.id,
                task_name=signature.task_name,
                original_message=raw_message,
            )
            await settle(client, signature, lease, SignatureStatus.FAILED, error)
        raise
    await settle(client, signature, lease, SignatureStatus.DONE, result)
    return result


async def settle(
    client: HatchetMageflow,
    signature: TaskSignature,
    lease: str,
    status: SignatureStatus,
    outcome: Any,
) -> None:
    """Record the outcome, fire its callbacks, tell the container, note it.

    Used for tasks and for chains and swarms alike. ``sent`` is written last,
    so a worker that dies anywhere before it leaves the signature to be
    replayed by the next delivery (:func:`send_recorded_callbacks`).
    """
    value = jsonable(outcome)
    callbacks = _callbacks_for(signature, status)
    finish = await client.store.finish(
        signature.id,
        lease,
        status,
        dumps(value),
        callbacks,
        in_container=signature.container_id is not None,
    )
    if finish.verdict == "finished":
        # An earlier delivery finished it; make sure it also completed.
        record = await client.store.load_record(signature.id)
        if record is not None:
            current = decode(signature.id, record)
            await send_recorded_callbacks(client, current, record)
        return
    if finish.verdict != "fire":
        logger.info(
            "mageflow: outcome of signature %s not fired (%s)",
            signature.id,
            finish.verdict,
        )
        return
    await _complete(client, signature, status, value, finish.targets)


def _callbacks_for(signature: TaskSignature, status: SignatureStatus) -> list[str]:
    if status is SignatureStatus.DONE:
        return signature.success_callbacks
    return signature.error_callbacks


async def _complete(
    client: HatchetMageflow,
    signature: TaskSignature,
    status: SignatureStatus,
    value: Any,
    targets: Sequence[CallbackTarget],
) -> None:
    if targets:
        await fire(client, targets, value)
    if signature.container_id is not None:
        from mageflow.containers import child_finished

        await child_finished(client, signature, status, value)
    if (
        targets
        or signature.container_id is not None
        or _callbacks_for(signature, status)
    ):
        await client.store.mark_sent(signature.id)


async def send_recorded_callbacks(
    client: HatchetMageflow, signature: TaskSignature, record: Mapping[str, str]
) -> Any:
    """Complete a finished signature whose completion may have been cut short.

    Fires its callbacks and notifies its container unless ``sent`` says that
    already happened. Returns the recorded outcome as JSON data.
    """
    outcome = json.loads(record.get("outcome") or "null")
    if record.get("sent") == "1":
        return outcome
    status = signature.status
    targets = await client.store.targets(_callbacks_for(signature, status))
    await _complete(client, signature, status, outcome, targets)
    return outcome


async def _replay_finished(activation: Activation, client: HatchetMageflow) -> Any:
    signature = activation.signature
    assert signature is not None
    outcome = await send_recorded_callbacks(client, signature, activation.record)
    if signature.status is SignatureStatus.FAILED:
        raise SignatureFailedError(
            f"signature {signature.id} ({signature.task_name}) already failed: "
            f"{outcome.get('error_type')}: {outcome.get('message')}"
        )
    registered = client.registered_task(signature.task_name)
    if registered is not None and registered.output is not None:
        # Hand the worker the task's own type, as the first delivery did.
        return registered.output.validate_python(outcome)
    return outcome


def _check_output(client: HatchetMageflow, task_name: str, result: Any) -> None:
    registered = client.registered_task(task_name)
    if registered is not None:
        serialize_output(registered.standalone._task._validators.step_output, result)
