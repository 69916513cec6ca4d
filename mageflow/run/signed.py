"""A run that carries a signature: claim it, call the function, settle it.

Around the user's function, one round trip before and the settle after
(:meth:`~mageflow.engine.progress.Progress.settle`):

1. ``activate``: one script checks the status and claims the signature for
   this dispatch, returning the record (so the signature can be injected);
2. the call;
3. settle: record the outcome, fire the callbacks, tell the container.

A delivery of a signature that is already finished never runs the function
again: it completes whatever the first delivery may have left undone and
ends, returning the recorded result.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from hatchet_sdk import Context
from hatchet_sdk.exceptions import NonRetryableException

from mageflow._hatchet import (
    forget_inherited_metadata,
    serialize_output,
    step_output_validator,
)
from mageflow.callbacks import TaskError
from mageflow.dispatch import DISPATCH_ID, MAGEFLOW_METADATA
from mageflow.engine.inputs import message_data
from mageflow.errors import SignatureFailedError
from mageflow.injection.plan import InjectionPlan
from mageflow.run.call import call_user
from mageflow.run.runtime import TaskRuntime
from mageflow.signature import SignatureStatus
from mageflow.store import Activation, ActivationVerdict
from mageflow.store.codec import dumps

logger = logging.getLogger("mageflow")


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
    runtime: TaskRuntime,
) -> Any:
    # Runs this one triggers must not inherit its signature.
    forget_inherited_metadata(MAGEFLOW_METADATA)
    engine = runtime.engine
    lease = str(metadata.get(DISPATCH_ID) or ctx.workflow_run_id)
    raw_message = message_data(input, f"signature {signature_id}")
    activation = await engine.store.activate(signature_id, lease, dumps(raw_message))
    if activation.verdict is ActivationVerdict.FINISHED:
        return await _replay_finished(activation, runtime)
    if activation.verdict is not ActivationVerdict.RUN or activation.signature is None:
        logger.info(
            "mageflow: run of signature %s skipped, it is %s (%s)",
            signature_id,
            activation.status,
            activation.verdict.value,
        )
        return None
    signature = activation.signature.bind(engine)
    try:
        result = await call_user(plan, input, ctx, signature, provided, runtime)
        # The worker refuses an output it cannot serialize, after we return;
        # find out first, so a refused result is never recorded or fired.
        registered = engine.registry.get(signature.task_name)
        if registered is not None:
            serialize_output(step_output_validator(registered.standalone), result)
    except Exception as exc:
        if is_final_attempt(ctx, exc):
            error = TaskError(
                error_type=type(exc).__name__,
                message=str(exc),
                signature_id=signature.id,
                task_name=signature.task_name,
                original_message=raw_message,
            )
            await engine.progress.settle(
                signature, lease, SignatureStatus.FAILED, error
            )
        raise
    await engine.progress.settle(signature, lease, SignatureStatus.DONE, result)
    return result


async def _replay_finished(activation: Activation, runtime: TaskRuntime) -> Any:
    signature = activation.signature
    assert signature is not None
    engine = runtime.engine
    outcome = await engine.progress.replay(signature, activation.record)
    if signature.status is SignatureStatus.FAILED:
        raise SignatureFailedError(
            f"signature {signature.id} ({signature.task_name}) already failed: "
            f"{outcome.get('error_type')}: {outcome.get('message')}",
            signature_id=signature.id,
            task_name=signature.task_name,
            status=signature.status.value,
        )
    # Hand the worker the task's own type, as the first delivery did.
    return engine.validate_output(signature.task_name, outcome)
