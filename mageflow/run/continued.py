"""A run that returned :class:`mageflow.Continue`: hand the task over.

The task does not settle now. One step
(:meth:`~mageflow.store.SignatureStore.handover`) hands it to the container
holder, makes the work its child and owes the work's start; then the start
is sent. From there the work is an ordinary signature, and when it ends its
outcome becomes the task's (:mod:`mageflow.engine.continuation`).

**The guard.** Each continuation is one deeper than the work it descends
from; a task may continue while that depth is below the client's
``max_continuations``. So a task that continues with itself, directly or
through chains, ends after that many rounds, failing with a
:class:`~mageflow.ContinuationError`, instead of running for ever.
"""

from __future__ import annotations

import logging

from mageflow.continuation import Continue
from mageflow.errors import ContinuationError
from mageflow.run.runtime import TaskRuntime
from mageflow.signature import TaskSignature
from mageflow.store import HandoverVerdict, SignatureStore

logger = logging.getLogger("mageflow")

ANCESTRY_LIMIT = 256
"""How many containers up :func:`depth_of` looks for a depth at most."""


async def depth_of(store: SignatureStore, signature: TaskSignature) -> int:
    """How many continuations ``signature`` descends from.

    A continuation records its depth; its children (a chain's steps, a
    swarm's items) do not, so the nearest container that has one answers:
    a read per container level without one, none for a top-level task.
    """
    if signature.continuation_depth:
        return signature.continuation_depth
    container_id = signature.container_id
    for _ in range(ANCESTRY_LIMIT):
        if container_id is None:
            return 0
        container = await store.load(container_id)
        if container is None:
            return 0
        if container.continuation_depth:
            return container.continuation_depth
        container_id = container.container_id
    return 0


async def continue_with(
    runtime: TaskRuntime, signature: TaskSignature, token: str, returned: Continue
) -> None:
    """Hand ``signature`` (held by ``token``) over to ``returned.work``.

    :raises ContinuationError: the work is not a stored, unstarted signature
        of no other workflow, or the continuations are too deep. Nothing
        changed; the task then fails with it.
    """
    engine = runtime.engine
    work = returned.work
    if not isinstance(work, TaskSignature):
        raise ContinuationError(
            f"task {signature.task_name!r} returned Continue({work!r}); "
            "Continue takes a signature (from sign(), chain() or swarm()).",
            signature_id=signature.id,
            task_name=signature.task_name,
        )
    depth = await depth_of(engine.store, signature) + 1
    if depth > engine.max_continuations:
        raise ContinuationError(
            f"task {signature.task_name!r} (signature {signature.id}) cannot "
            f"continue: this would be continuation number {depth}, over the "
            f"limit of {engine.max_continuations} (client.max_continuations). "
            "A task that continues with itself needs a condition that ends "
            "the loop; raise the limit if the depth is meant.",
            signature_id=signature.id,
            task_name=signature.task_name,
            continuation_id=work.id,
            depth=depth - 1,
        )
    handover = await engine.store.handover(signature.id, token, work.id, depth)
    if handover.verdict is HandoverVerdict.REFUSED:
        raise ContinuationError(
            f"task {signature.task_name!r} (signature {signature.id}) cannot "
            f"continue with signature {work.id}: {handover.reason}. Return "
            "Continue(...) with a signature signed in this run and not started.",
            signature_id=signature.id,
            task_name=signature.task_name,
            continuation_id=work.id,
            depth=depth - 1,
        )
    if handover.verdict is HandoverVerdict.LOST:
        logger.info(
            "mageflow: signature %s no longer held by this run; its "
            "continuation was not recorded",
            signature.id,
        )
        return
    if handover.target is not None:
        # Owed since the handover: a start lost here is sent by recovery.
        await engine.progress.start([(handover.target, {})])
