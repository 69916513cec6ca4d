"""Pause, resume, stop and remove: steering a signature and what it contains.

Each reads the signature's tree (a round trip per level) and moves the
signature and every child that can still change in one script (see
:mod:`mageflow.engine.cascade`): a constant number of round trips, whatever
the size of the chain or swarm.
The transition table is in ``docs/lifecycle.md``.
"""

from __future__ import annotations

import dataclasses

from mageflow.engine.cascade import stop_tree
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
        await self._store.pause(await self._store.subtree(signature_id))

    async def resume(self, signature_id: str) -> None:
        """Leave ``suspended`` and send what the pause held back.

        Re-dispatches exactly the message recorded while it was paused, or
        fires the callbacks of a run that finished meanwhile, for it and
        every child; then refills each running container, innermost first.

        :raises InvalidTransitionError: it is not paused.
        """
        ids = await self._store.subtree(signature_id)
        resumed = [
            (child, resumption)
            for child, resumption in zip(
                ids, await self._store.resume(ids), strict=False
            )
            if resumption is not None
        ]
        again = {
            child: resumption.message
            for child, resumption in resumed
            if resumption.verdict is ResumeVerdict.REDISPATCH
        }
        if again:
            targets, _ = await self._store.targets(list(again))
            # The recorded message is the input as it was delivered, bound
            # kwargs included: re-send it exactly, merging nothing again.
            await self._progress.start(
                [
                    (dataclasses.replace(target, kwargs={}), {**again[target.id]})
                    for target in targets
                ]
            )
        for child, resumption in resumed:
            if resumption.verdict is ResumeVerdict.FIRE:
                signature = decode(child, resumption.record)
                await self._progress.replay(signature, resumption.record)
        for child, resumption in reversed(resumed):
            container = KINDS.get(resumption.kind)
            if container is not None and resumption.verdict is ResumeVerdict.RUNNING:
                await self._progress.apply(await container.resumed(self._store, child))

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
