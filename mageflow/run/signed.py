"""A run that carries a signature: claim it, call the function, settle it.

Around the user's function, one round trip before and the settle after
(:meth:`~mageflow.engine.progress.Progress.settle`):

1. ``activate``: one script checks the status and claims the signature for
   this attempt under a fresh holder token with a lease, returning the
   record (so the signature can be injected);
2. the call, while the process's lease keeper renews the lease;
3. settle: record the outcome, fire the callbacks, tell the container.

**Every exit settles, exactly once**, except the one that must not:

=========================  ==================================================
the attempt ...            what is recorded
=========================  ==================================================
returns                    ``done`` with the result (a root task: handed to
                           its children, ``done`` when they all finished)
returns ``Continue(work)`` handed over to the work: its outcome, when it ends
raises, last attempt       ``failed``, a ``TaskError`` (kind ``exception``;
                           a root's children are interrupted first)
raises, attempts left      nothing: the hold is released for Hatchet's retry
times out, last attempt    ``failed``, kind ``timeout``
is cancelled on the engine ``failed``, kind ``cancelled`` (a stop by mageflow
                           already ended the signature: nothing changes)
carries another task's id  nothing: refused with ``SignatureMismatchError``
is cut by worker shutdown  nothing: the engine re-delivers it
=========================  ==================================================

An input that does not validate never reaches the function (Hatchet
validates it first): mageflow checks the input of every start it sends
against the task's model beforehand, and fails the signature then (kind
``validation``, naming each field); a start it could not check is failed by
recovery from the engine's record of the failed run.

A delivery of a signature that is already finished never runs the function
again: it completes whatever the first delivery may have left undone and
ends, returning the recorded result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from hatchet_sdk import Context
from hatchet_sdk.exceptions import NonRetryableException

from mageflow._hatchet import (
    execution_timeout_seconds,
    forget_inherited_metadata,
    serialize_output,
    step_output_validator,
)
from mageflow.attempt import CancelReason, current_attempt
from mageflow.continuation import Continue
from mageflow.dispatch import MAGEFLOW_METADATA
from mageflow.engine.inputs import message_data
from mageflow.engine.leases import new_token
from mageflow.engine.progress import task_error
from mageflow.engine.root import RootScope, body_result, rooted
from mageflow.engine.signing import signing_in
from mageflow.errors import (
    ContinuationError,
    SignatureFailedError,
    SignatureMismatchError,
)
from mageflow.injection.plan import InjectionPlan
from mageflow.run.call import call_user
from mageflow.run.continued import continue_with
from mageflow.run.rooted import body_returned, interrupt_children, open_root
from mageflow.run.runtime import TaskRuntime
from mageflow.signature import SignatureStatus, TaskSignature
from mageflow.store import Activation, ActivationVerdict, keys
from mageflow.store.codec import dumps, loads_outcome

logger = logging.getLogger("mageflow")

TIMEOUT_SLACK_SECONDS = 2.0
"""A cancel this close to the execution timeout is taken for the timeout:
the engine starts its clock a little before the worker starts the run."""


def is_final_attempt(ctx: Context, exc: BaseException | None = None) -> bool:
    """Whether Hatchet will not retry after this attempt (``retries=N``:
    N+1 tries)."""
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
    raw_message = message_data(input, f"signature {signature_id}")
    token = new_token()
    registry = engine.registry
    activation = await engine.store.activate(
        signature_id,
        token,
        dumps(raw_message),
        task=registry.canonical(plan.task_name),
        run_id=ctx.workflow_run_id or "",
        namespace=registry.namespace,
    )
    if activation.verdict is ActivationVerdict.MISMATCH:
        raise SignatureMismatchError(
            f"a run of task {plan.task_name!r} carries signature {signature_id}, "
            f"which is a {activation.status}: it was refused, and the signature "
            "is unchanged. Start a signature through its own task "
            "(`signature.aio_run_no_wait(...)`).",
            signature_id=signature_id,
            task_name=plan.task_name,
        )
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
    engine.leases.hold(signature.id, token)
    try:
        return await _attempt(
            plan, input, ctx, signature, token, raw_message, provided, runtime
        )
    finally:
        # Held until its outcome is settled (or given up): the keeper renews
        # the lease all that time.
        engine.leases.drop(signature.id, token)


async def _attempt(
    plan: InjectionPlan,
    input: Any,
    ctx: Context,
    signature: TaskSignature,
    token: str,
    raw_message: dict[str, Any],
    provided: dict[str, Any],
    runtime: TaskRuntime,
) -> Any:
    """One attempt of a held signature: the call, and how it settles."""
    engine = runtime.engine
    if (attempt := current_attempt.get()) is not None:
        attempt.context = ctx  # the local backend flags it when it cancels
    started = asyncio.get_running_loop().time()
    root: RootScope | None = None
    try:
        if plan.marks.root is not None:
            root = await open_root(runtime, signature, token, plan.marks.root)
            if root is None:
                return None  # another attempt holds it now
        # A retried signature's run makes new signatures, not its failed
        # run's again: the retry count is part of what ids derive from.
        base = signature.id
        if signature.generation:
            base = f"{signature.id}:{signature.generation}"
        with signing_in(base), rooted(root):
            result = await call_user(plan, input, ctx, signature, provided, runtime)
        if isinstance(result, Continue):
            if root is not None:
                raise ContinuationError(
                    f"root task {signature.task_name!r} returned Continue(...): "
                    "a root task's outcome is its body's result with its "
                    "children's, so it cannot hand it over. Start the work "
                    "as a child instead (it joins the root), or drop "
                    "@root_task.",
                    signature_id=signature.id,
                    task_name=signature.task_name,
                )
            await continue_with(runtime, signature, token, result)
            # The engine's run has no output of its own: the signature's
            # outcome is the continuation's.
            return None
        # The worker refuses an output it cannot serialize, after we return;
        # find out first, so a refused result is never recorded or fired.
        registered = engine.registry.get(signature.task_name)
        if registered is not None:
            serialize_output(step_output_validator(registered.standalone), result)
    except asyncio.CancelledError:
        if ctx.is_cancelled:
            reason = _cancel_reason(runtime, signature, started)
            if reason == "cancelled" or is_final_attempt(ctx):
                error = task_error(
                    signature.id,
                    signature.task_name,
                    raw_message,
                    kind=reason,
                    error_type="TimeoutError" if reason == "timeout" else "Cancelled",
                    text=_cancel_text(reason, signature),
                )
                await _settle_failed(runtime, signature, token, error, root)
            else:
                await _release(runtime, signature.id, token)
        # Otherwise the worker is shutting down: nothing is settled, the
        # lease runs out, and the engine re-delivers the run.
        raise
    except Exception as exc:
        if is_final_attempt(ctx, exc):
            error = task_error(
                signature.id,
                signature.task_name,
                raw_message,
                exc,
                kind="continuation"
                if isinstance(exc, ContinuationError)
                else "exception",
            )
            await _settle_failed(runtime, signature, token, error, root)
        else:
            await _release(runtime, signature.id, token)
        raise
    if root is not None:
        await body_returned(runtime, signature, token, root, result)
    else:
        await engine.progress.settle(signature, token, SignatureStatus.DONE, result)
    return result


def _cancel_reason(
    runtime: TaskRuntime, signature: TaskSignature, started: float
) -> CancelReason:
    """Why the engine cancelled this attempt: the local backend says; on a
    worker, a cancel at the execution timeout is the timeout."""
    if (attempt := current_attempt.get()) is not None and attempt.reason is not None:
        return attempt.reason
    registered = runtime.engine.registry.get(signature.task_name)
    if registered is not None:
        timeout = execution_timeout_seconds(registered.standalone)
        elapsed = asyncio.get_running_loop().time() - started
        if timeout is not None and elapsed >= timeout - TIMEOUT_SLACK_SECONDS:
            return "timeout"
    return "cancelled"


def _cancel_text(reason: CancelReason, signature: TaskSignature) -> str:
    if reason == "timeout":
        return (
            f"task {signature.task_name!r} ran past its execution_timeout and "
            "was cancelled, on its last attempt"
        )
    return f"the run of task {signature.task_name!r} was cancelled on the engine"


async def _settle_failed(
    runtime: TaskRuntime,
    signature: TaskSignature,
    token: str,
    error: Any,
    root: RootScope | None = None,
) -> None:
    if root is not None:
        # A root's children go first: none may start after its failure.
        await interrupt_children(runtime, root)
    await runtime.engine.progress.settle(
        signature, token, SignatureStatus.FAILED, error
    )


async def _release(runtime: TaskRuntime, signature_id: str, token: str) -> None:
    """Let Hatchet's retry take the signature at once; if this fails, the
    lease simply runs out first."""
    try:
        await runtime.engine.store.release(signature_id, token)
    except Exception:
        logger.warning(
            "mageflow: could not release signature %s for its retry",
            signature_id,
            exc_info=True,
        )


async def _replay_finished(activation: Activation, runtime: TaskRuntime) -> Any:
    signature = activation.signature
    assert signature is not None
    engine = runtime.engine
    if activation.completing:
        # Its holder is alive and sending the callbacks: leave them to it.
        outcome = loads_outcome(
            keys.signature(signature.id), activation.record.get("outcome")
        )
    else:
        outcome = await engine.progress.replay(signature, activation.record)
    if signature.status is SignatureStatus.FAILED:
        raise SignatureFailedError(
            f"signature {signature.id} ({signature.task_name}) already failed: "
            f"{outcome.get('error_type')}: {outcome.get('message')}",
            signature_id=signature.id,
            task_name=signature.task_name,
            status=signature.status.value,
        )
    if signature.root_swarm_id is not None:
        outcome = body_result(outcome)
    # Hand the worker the task's own type, as the first delivery did.
    return engine.validate_output(signature.task_name, outcome)
