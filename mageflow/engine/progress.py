"""How a workflow moves: start signatures, settle them, follow containers.

This is the one module where a workflow recurses. Starting a container asks
its kind what to start, which may be another container; settling a child
fires its callbacks (more starts) and tells its container, whose answer may
settle the container, which tells *its* container, and so on. Kinds only
answer with :class:`~mageflow.engine.kind.Effects`; :meth:`Progress.apply`
carries them out, here.

Settling costs one Redis round trip, whatever the callbacks, in the common
case:

1. ``finish``: one script records the outcome, returns the callbacks to
   fire and records, as debts, each callback's start. When no container
   needs to hear of it (none, or a chain's middle step that succeeded), the
   completion is done there. A swarm item's script takes the swarm's step
   too (``FINISH_ITEM``), so an item is done there unless it ends the swarm.

Otherwise the signature's completion is recorded as a debt as well, and
two more follow:

2. the container's script;
3. ``mark_sent``: once the container was told, which clears the debt.

``finish`` is the commit point. What follows it may fail (a worker dies, the
engine refuses a trigger, Redis goes away): the debts recorded with the
outcome remember what is owed, and :mod:`mageflow.engine.recovery` sends it
again. So nothing after the commit is allowed to turn a recorded outcome
into an exception: it is logged, and left to recovery.
"""

from __future__ import annotations

import logging
import traceback as tb
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from mageflow.callbacks import ErrorKind, TaskError
from mageflow.dispatch import Dispatcher, RunHandle, RunRequest
from mageflow.engine.cascade import SKIPPED, Stopped, stop_tree
from mageflow.engine.inputs import (
    describe_problems,
    input_problems,
    jsonable,
    outcome_message,
    request_for,
)
from mageflow.engine.kind import CONTAINER_HOLDER, Effects
from mageflow.engine.kinds import KINDS, container_of_role
from mageflow.engine.leases import new_token
from mageflow.errors import InputConflictError, InputValidationError, UnknownTaskError
from mageflow.registry import TaskRegistry
from mageflow.signature import SignatureStatus, TaskSignature
from mageflow.store import (
    ActivationVerdict,
    BadTarget,
    CallbackTarget,
    Finish,
    FinishVerdict,
    SignatureStore,
    keys,
)
from mageflow.store.codec import decode, dumps, loads_outcome

logger = logging.getLogger("mageflow")

Start = tuple[CallbackTarget, Mapping[str, Any]]
"""A signature to start, and the message to start it with."""

TRACEBACK_LIMIT = 8_000
"""How much of a traceback a :class:`TaskError` keeps (characters)."""


def callbacks_for(signature: TaskSignature, status: SignatureStatus) -> list[str]:
    """The callbacks an outcome of ``status`` fires: success callbacks for
    ``done``, error callbacks for ``failed``, none for a stopped one."""
    if status is SignatureStatus.DONE:
        return signature.success_callbacks
    if status is SignatureStatus.FAILED:
        return signature.error_callbacks
    return []


def task_error(
    signature_id: str,
    task_name: str,
    message: Mapping[str, Any],
    exc: BaseException | None = None,
    *,
    kind: ErrorKind = "exception",
    error_type: str | None = None,
    text: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> TaskError:
    """A :class:`TaskError` for ``signature_id``, from an exception or words."""
    trace = None
    if exc is not None and exc.__traceback__ is not None:
        trace = "".join(tb.format_exception(exc))[-TRACEBACK_LIMIT:]
    return TaskError(
        error_type=error_type or (type(exc).__name__ if exc else "Error"),
        message=text if text is not None else str(exc),
        signature_id=signature_id,
        task_name=task_name,
        original_message=dict(message),
        kind=kind,
        errors=errors or [],
        traceback=trace,
    )


class Progress:
    """Starts and settles the signatures of one store, on one dispatcher."""

    def __init__(
        self, store: SignatureStore, dispatcher: Dispatcher, registry: TaskRegistry
    ) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._registry = registry

    # --- starting -------------------------------------------------------------

    async def start(self, targets: Sequence[Start], *, strict: bool = False) -> None:
        """Start each (signature, message): tasks in one batch, containers by kind.

        A task whose input cannot be built (the message contradicts a bound
        kwarg) or does not validate against its task's model, or whose task
        no worker knows, fails with its error callbacks instead of starting,
        alone, so its siblings start and the workflow around it still ends.
        ``strict`` (a start the user asked for) raises instead; otherwise a
        trigger that fails is logged, and recovery sends it again (the start
        is owed until it activates).
        """
        requests: list[tuple[CallbackTarget, Mapping[str, Any], RunRequest]] = []
        for target, message in targets:
            kind = KINDS.get(target.kind)
            if kind is not None:
                await self.apply(await kind.start(self._store, target.id, message))
                continue
            try:
                request = request_for(
                    target.id, target.task_name, target.kwargs, message
                )
            except InputConflictError as exc:
                if strict:
                    raise
                await self.fail(
                    target,
                    message,
                    task_error(target.id, target.task_name, message, exc),
                )
                continue
            if (problems := input_problems(self._registry, request)) is not None:
                text = describe_problems(problems)
                if strict:
                    raise InputValidationError(
                        f"signature {target.id} ({target.task_name}): {text}.",
                        signature_id=target.id,
                        task_name=target.task_name,
                        errors=problems,
                    )
                error = task_error(
                    target.id,
                    target.task_name,
                    request.input,
                    kind="validation",
                    error_type="ValidationError",
                    text=text,
                    errors=problems,
                )
                await self.fail(target, request.input, error)
                continue
            requests.append((target, message, request))
        if not requests:
            return
        try:
            if len(requests) == 1:
                await self._dispatcher.trigger(requests[0][2])
            else:
                await self._dispatcher.trigger_many([r for _, _, r in requests])
        except UnknownTaskError:
            if strict and len(requests) == 1:
                raise
            await self._one_by_one(requests)
        except Exception:
            if strict:
                raise
            logger.warning(
                "mageflow: could not send %d start(s); recovery will send them",
                len(requests),
                exc_info=True,
            )

    async def _one_by_one(
        self, requests: Sequence[tuple[CallbackTarget, Mapping[str, Any], RunRequest]]
    ) -> None:
        """A batch was refused for an unknown task: send each alone, and
        fail the ones whose task no worker knows."""
        for target, message, request in requests:
            try:
                await self._dispatcher.trigger(request)
            except UnknownTaskError as exc:
                await self.fail(
                    target,
                    message,
                    task_error(
                        target.id, target.task_name, message, exc, kind="unknown_task"
                    ),
                )
            except Exception:
                logger.warning(
                    "mageflow: could not start %s; recovery will send it",
                    target.id,
                    exc_info=True,
                )

    async def fire(
        self,
        targets: Sequence[CallbackTarget],
        value: Any,
        bad: Sequence[BadTarget] = (),
    ) -> None:
        """Start every callback in ``targets`` with the outcome ``value``.

        A callback that is not a mageflow record (``bad``) cannot run and
        has nothing to record its failure on: it is reported, and skipped.
        """
        for target in bad:
            logger.error(
                "mageflow: callback %s is not a valid mageflow record (%s); it "
                "was not started. Its siblings were.",
                target.key,
                target.reason,
            )
        await self.start([(t, outcome_message(t.return_field, value)) for t in targets])

    async def fail(
        self, target: CallbackTarget, message: Mapping[str, Any], error: TaskError
    ) -> None:
        """Fail a signature that cannot start, as if its task had failed."""
        token = new_token()
        activation = await self._store.activate(
            target.id, token, dumps(dict(message)), task=target.task_name
        )
        if (
            activation.signature is None
            or activation.verdict is not ActivationVerdict.RUN
        ):
            return
        await self.settle(activation.signature, token, SignatureStatus.FAILED, error)

    # --- settling ---------------------------------------------------------------

    async def settle(
        self,
        signature: TaskSignature,
        token: str,
        status: SignatureStatus,
        outcome: Any,
    ) -> None:
        """Record the outcome, fire its callbacks, tell the container, note it.

        Used for tasks and for containers alike, by the holder ``token``.
        ``sent`` is written last, so a worker that dies anywhere before it
        leaves the completion owed, for the next delivery or recovery.
        """
        value = jsonable(outcome)
        container = (
            container_of_role(signature.container_role)
            if signature.container_id is not None
            else None
        )
        told_with_finish = container is not None and container.told_with_finish
        finish = await self._store.finish(
            signature.id,
            token,
            status,
            dumps(value),
            callbacks_for(signature, status),
            alone=container is None or not container.needs_word(signature, status),
            swarm_id=signature.container_id if told_with_finish else None,
        )
        if finish.verdict is FinishVerdict.FINISHED:
            # This holder finished it before (a repeat): complete it too.
            record = await self._store.load_record(signature.id)
            if record is not None:
                await self.replay(decode(signature.id, record), record)
            return
        if finish.verdict is not FinishVerdict.FIRE:
            logger.info(
                "mageflow: outcome of signature %s not recorded (%s)",
                signature.id,
                finish.verdict.value,
            )
            return
        await self._complete(
            signature, status, value, finish.targets, finish.bad, finish
        )

    async def replay(self, signature: TaskSignature, record: Mapping[str, str]) -> Any:
        """Complete a finished signature whose completion may have been cut short.

        Fires its callbacks and tells its container unless ``sent`` says that
        already happened. Returns the recorded outcome as JSON data.
        """
        outcome = loads_outcome(keys.signature(signature.id), record.get("outcome"))
        if record.get("sent") == "1":
            return outcome
        status = signature.status
        targets, bad = await self._store.targets(callbacks_for(signature, status))
        await self._complete(signature, status, outcome, targets, bad)
        return outcome

    async def _complete(
        self,
        signature: TaskSignature,
        status: SignatureStatus,
        value: Any,
        targets: Sequence[CallbackTarget],
        bad: Sequence[BadTarget],
        finish: Finish | None = None,
    ) -> None:
        """Fire the callbacks and tell the container, as far as ``finish``
        (the script that recorded the outcome) left that to do; a replay
        (no ``finish``) does it all."""
        try:
            if targets or bad:
                await self.fire(targets, value, bad)
            container = container_of_role(signature.container_role)
            step = finish.step if finish is not None else None
            if (
                step is not None
                and container is not None
                and signature.container_id is not None
            ):
                await self.apply(
                    await container.after_finish(
                        self._store, signature.container_id, step, value
                    )
                )
            elif finish is None or not finish.sent:
                await self.tell_container(signature, status, value)
            if finish is None or not finish.sent:
                await self._store.mark_sent(signature.id)
        except Exception:
            logger.warning(
                "mageflow: completion of signature %s was cut short; recovery "
                "will finish it",
                signature.id,
                exc_info=True,
            )

    async def tell_container(
        self, child: TaskSignature, status: SignatureStatus, value: Any
    ) -> None:
        """Tell ``child``'s container (if any) that it ended so."""
        container = container_of_role(child.container_role)
        if child.container_id is not None and container is not None:
            await self.apply(
                await container.child_finished(
                    self._store, child.container_id, child, status, value
                )
            )

    # --- what containers ask for ----------------------------------------------

    async def apply(self, effects: Effects) -> None:
        """Carry out a kind's answer: interrupt, then start, then settle."""
        stopped: list[Stopped] = []
        for child in effects.interrupt:
            try:
                stopped += await stop_tree(
                    self._store, child, SignatureStatus.INTERRUPTED
                )
            except SKIPPED:
                continue
        await self.cancel_runs(stopped)
        if effects.start:
            await self.start(effects.start)
        if (settle := effects.settle) is not None:
            await self.settle(
                settle.container, CONTAINER_HOLDER, settle.status, settle.outcome
            )

    async def cancel_runs(self, stopped: Sequence[Stopped]) -> None:
        """Cancel the engine's runs of signatures that were just stopped."""
        # No run of a signature is older than the signature's own lifetime.
        since = datetime.now(timezone.utc) - self._store.ttl.active
        handles = [
            RunHandle(item.signature_id, item.transition.run_id, since)
            for item in stopped
            if item.transition.kind not in KINDS
            and (item.transition.run_id is not None or item.transition.was_due)
        ]
        if not handles:
            return
        try:
            await self._dispatcher.cancel(handles)
        except Exception:
            logger.warning(
                "mageflow: could not cancel the runs of %d stopped signature(s); "
                "their outcomes are discarded when they end",
                len(handles),
                exc_info=True,
            )
