"""Reaching down a workflow: stopping a signature and everything in it.

Lifecycle operations on a container act on the container and on every child
that can still change, in one step
(:meth:`~mageflow.store.SignatureStore.subtree` reads the tree a level per
round trip, then one script moves it all); a child that already finished
(or is gone) is skipped, not an error. :func:`stop_tree` is the one walk the
progress of a workflow needs itself (a failing swarm interrupts what it
runs); :mod:`mageflow.engine.lifecycle` does the same for pause and resume.
"""

from __future__ import annotations

import dataclasses

from mageflow.errors import InvalidTransitionError, SignatureNotFoundError
from mageflow.signature import SignatureStatus
from mageflow.store import SignatureStore, Transition

SKIPPED = (InvalidTransitionError, SignatureNotFoundError)
"""What a child may answer that only means "nothing to do here"."""


@dataclasses.dataclass(frozen=True)
class Stopped:
    """A signature a stop moved, and what it left."""

    signature_id: str
    transition: Transition


async def stop_tree(
    store: SignatureStore, signature_id: str, final: SignatureStatus
) -> list[Stopped]:
    """Move ``signature_id`` to ``final``, then every child that can still move.

    Returns what moved, the root first, so the caller can cancel their runs
    and tell the root's container. A constant number of round trips: one
    per level to read the tree, one to stop it all.

    :raises InvalidTransitionError: ``signature_id`` itself already finished.
    :raises SignatureNotFoundError: ``signature_id`` does not exist.
    """
    ids = await store.subtree(signature_id)
    moved = await store.stop(ids, final)
    return [
        Stopped(child, transition)
        for child, transition in zip(ids, moved, strict=False)
        if transition is not None
    ]
