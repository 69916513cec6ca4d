"""Pause, resume, stop and remove: steering a signature and what it contains.

Each acts on the signature with one script, then, for a container, on every
child that can still change, depth first (see :mod:`mageflow.engine.cascade`).
The transition table is in ``docs/lifecycle.md``.
"""

from __future__ import annotations

import dataclasses

from mageflow.engine.cascade import SKIPPED, children, stop_tree
from mageflow.engine.kinds import KINDS
from mageflow.engine.progress import Progress, task_error
from mageflow.signature import SignatureStatus, TaskSignature
from mageflow.store import ResumeVerdict, SignatureStore
from mageflow.store.codec import decode


class Lifecycle:
    """The lifecycle operations of one store."""

    def __init__(self, store: SignatureStore, progress: Progress) -> None:
        self._store = store
        self._progress = progress

    async def pause(self, signature_id: str) -> None:
        """Move to ``suspended``; a container's children follow.

        :raises InvalidTransitionError: it is done, failed, canceled or
            interrupted.
        """
        paused = await self._store.pause(signature_id)
        for child in await children(self._store, signature_id, paused.kind):
            try:
                await self.pause(child)
            except SKIPPED:
                continue

    async def resume(self, signature_id: str) -> None:
        """Leave ``suspended`` and send what the pause held back.

        Re-dispatches exactly the message recorded while it was paused, or
        fires the callbacks of a run that finished meanwhile; then resumes a
        container's children, and refills a running container.

        :raises InvalidTransitionError: it is not paused.
        """
        resumption = await self._store.resume(signature_id)
        if resumption.verdict is ResumeVerdict.REDISPATCH:
            (target,), _ = await self._store.targets([signature_id])
            # The recorded message is the input as it was delivered, bound
            # kwargs included: re-send it exactly, merging nothing again.
            exact = dataclasses.replace(target, kwargs={})
            await self._progress.start([(exact, {**resumption.message})])
        elif resumption.verdict is ResumeVerdict.FIRE:
            signature = decode(signature_id, resumption.record)
            await self._progress.replay(signature, resumption.record)
        for child in await children(self._store, signature_id, resumption.kind):
            try:
                await self.resume(child)
            except SKIPPED:
                continue
        container = KINDS.get(resumption.kind)
        if container is not None and resumption.verdict is ResumeVerdict.RUNNING:
            await self._progress.apply(
                await container.resumed(self._store, signature_id)
            )

    async def stop(self, signature_id: str) -> None:
        """Cancel the signature and everything in it that has not finished.

        The engine's runs of what was stopped are cancelled; an outcome that
        still arrives is discarded. The signature's own container hears of
        it, like of any child that ended: a swarm frees the item's slot, a
        chain ends.

        :raises InvalidTransitionError: it is already done or failed.
        """
        stopped = await stop_tree(self._store, signature_id, SignatureStatus.CANCELED)
        await self._progress.cancel_runs(stopped)
        root = stopped[0].transition
        if root.container_id is not None:
            child = TaskSignature(
                id=signature_id,
                task_name="",
                container_id=root.container_id,
                container_role=root.container_role,
            )
            outcome = task_error(
                signature_id,
                "",
                {},
                kind="cancelled",
                error_type="Canceled",
                text=f"signature {signature_id} was stopped",
            )
            await self._progress.tell_container(
                child, SignatureStatus.CANCELED, outcome.model_dump()
            )

    async def remove(self, signature_id: str) -> int:
        """Delete the signature with its callbacks and children; count the keys.

        A signature that is part of a running chain or swarm is stopped
        first, so its container does not wait for it.
        """
        signature = await self._store.load(signature_id)
        if (
            signature is not None
            and signature.container_id is not None
            and not signature.status.is_final
        ):
            await self.stop(signature_id)
        return await self._store.remove(signature_id)
