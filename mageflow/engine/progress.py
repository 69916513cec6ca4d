"""How a workflow moves: start signatures, settle them, follow containers.

This is the one module where a workflow recurses. Starting a container asks
its kind what to start, which may be another container; settling a child
fires its callbacks (more starts) and tells its container, whose answer may
settle the container, which tells *its* container, and so on. Kinds only
answer with :class:`~mageflow.engine.kind.Effects`; :meth:`Progress.apply`
carries them out, here.

Settling costs three Redis round trips at most, whatever the callbacks:

1. ``finish``: one script records the outcome and returns the callbacks to
   fire (their task names and bound kwargs), atomically;
2. the container's script, when the signature has a container;
3. ``mark_sent``: once the callbacks were dispatched and the container told.

Hatchet delivers at least once and workers die, so every step is safe to
repeat: a finished signature whose ``sent`` flag is missing is completed
again by the next delivery (:meth:`Progress.replay`), and a callback that is
dispatched twice that way still runs once, because its own activation admits
one dispatch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from mageflow.callbacks import TaskError
from mageflow.dispatch import Dispatcher, RunRequest
from mageflow.engine.cascade import SKIPPED, stop_tree
from mageflow.engine.inputs import (
    jsonable,
    new_dispatch_id,
    outcome_message,
    request_for,
)
from mageflow.engine.kind import CONTAINER_LEASE, Effects
from mageflow.engine.kinds import KINDS, container_of_role
from mageflow.errors import InputConflictError
from mageflow.signature import SignatureStatus, TaskSignature
from mageflow.store import (
    ActivationVerdict,
    CallbackTarget,
    FinishVerdict,
    SignatureStore,
)
from mageflow.store.codec import decode, dumps

logger = logging.getLogger("mageflow")

Start = tuple[CallbackTarget, Mapping[str, Any]]
"""A signature to start, and the message to start it with."""


def callbacks_for(signature: TaskSignature, status: SignatureStatus) -> list[str]:
    """The callbacks an outcome of ``status`` fires."""
    if status is SignatureStatus.DONE:
        return signature.success_callbacks
    return signature.error_callbacks


class Progress:
    """Starts and settles the signatures of one store, on one dispatcher."""

    def __init__(self, store: SignatureStore, dispatcher: Dispatcher) -> None:
        self._store = store
        self._dispatcher = dispatcher

    # --- starting -------------------------------------------------------------

    async def start(self, targets: Sequence[Start]) -> None:
        """Start each (signature, message): tasks in one batch, containers by kind.

        A task whose input cannot be built (the message contradicts a bound
        kwarg) fails with its error callbacks instead of starting, so the
        workflow around it still ends.
        """
        requests: list[RunRequest] = []
        for target, message in targets:
            kind = KINDS.get(target.kind)
            if kind is not None:
                await self.apply(await kind.start(self._store, target.id, message))
                continue
            try:
                requests.append(
                    request_for(target.id, target.task_name, target.kwargs, message)
                )
            except InputConflictError as exc:
                await self._fail_unstartable(target, message, exc)
        if len(requests) == 1:
            await self._dispatcher.trigger(requests[0])
        elif requests:
            await self._dispatcher.trigger_many(requests)

    async def fire(self, targets: Sequence[CallbackTarget], value: Any) -> None:
        """Start every callback in ``targets`` with the outcome ``value``."""
        await self.start([(t, outcome_message(t.return_field, value)) for t in targets])

    async def _fail_unstartable(
        self, target: CallbackTarget, message: Mapping[str, Any], exc: Exception
    ) -> None:
        """Fail a signature that cannot start, as if its task had failed."""
        lease = new_dispatch_id()
        activation = await self._store.activate(target.id, lease, dumps(dict(message)))
        if (
            activation.signature is None
            or activation.verdict is not ActivationVerdict.RUN
        ):
            return
        error = TaskError(
            error_type=type(exc).__name__,
            message=str(exc),
            signature_id=target.id,
            task_name=target.task_name,
            original_message=dict(message),
        )
        await self.settle(activation.signature, lease, SignatureStatus.FAILED, error)

    # --- settling ---------------------------------------------------------------

    async def settle(
        self,
        signature: TaskSignature,
        lease: str,
        status: SignatureStatus,
        outcome: Any,
    ) -> None:
        """Record the outcome, fire its callbacks, tell the container, note it.

        Used for tasks and for containers alike. ``sent`` is written last, so
        a worker that dies anywhere before it leaves the signature to be
        completed by the next delivery (:meth:`replay`).
        """
        value = jsonable(outcome)
        finish = await self._store.finish(
            signature.id,
            lease,
            status,
            dumps(value),
            callbacks_for(signature, status),
            in_container=signature.container_id is not None,
        )
        if finish.verdict is FinishVerdict.FINISHED:
            # An earlier delivery finished it; make sure it also completed.
            record = await self._store.load_record(signature.id)
            if record is not None:
                await self.replay(decode(signature.id, record), record)
            return
        if finish.verdict is not FinishVerdict.FIRE:
            logger.info(
                "mageflow: outcome of signature %s not fired (%s)",
                signature.id,
                finish.verdict.value,
            )
            return
        await self._complete(signature, status, value, finish.targets)

    async def replay(self, signature: TaskSignature, record: Mapping[str, str]) -> Any:
        """Complete a finished signature whose completion may have been cut short.

        Fires its callbacks and tells its container unless ``sent`` says that
        already happened. Returns the recorded outcome as JSON data.
        """
        outcome = json.loads(record.get("outcome") or "null")
        if record.get("sent") == "1":
            return outcome
        status = signature.status
        targets = await self._store.targets(callbacks_for(signature, status))
        await self._complete(signature, status, outcome, targets)
        return outcome

    async def _complete(
        self,
        signature: TaskSignature,
        status: SignatureStatus,
        value: Any,
        targets: Sequence[CallbackTarget],
    ) -> None:
        if targets:
            await self.fire(targets, value)
        container = container_of_role(signature.container_role)
        if signature.container_id is not None and container is not None:
            await self.apply(
                await container.child_finished(
                    self._store, signature.container_id, signature, status, value
                )
            )
        if (
            targets
            or signature.container_id is not None
            or callbacks_for(signature, status)
        ):
            await self._store.mark_sent(signature.id)

    # --- what containers ask for ----------------------------------------------

    async def apply(self, effects: Effects) -> None:
        """Carry out a kind's answer: interrupt, then start, then settle."""
        for child in effects.interrupt:
            try:
                await stop_tree(self._store, child, SignatureStatus.INTERRUPTED)
            except SKIPPED:
                continue
        if effects.start:
            await self.start(effects.start)
        if (settle := effects.settle) is not None:
            await self.settle(
                settle.container, CONTAINER_LEASE, settle.status, settle.outcome
            )
