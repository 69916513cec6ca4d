"""Reaching down a workflow: a container's children, and stopping a subtree.

Lifecycle operations on a container act on the container, then on every
child that can still change, depth first; a child that already finished (or
is gone) is skipped, not an error. :func:`stop_tree` is the one walk the
progress of a workflow needs itself (a failing swarm interrupts what it
runs); :mod:`mageflow.engine.lifecycle` walks the same way for pause and
resume.
"""

from __future__ import annotations

import dataclasses

from mageflow.engine.kinds import KINDS
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


async def children(store: SignatureStore, container_id: str, kind: str) -> list[str]:
    """The ids of the children of ``container_id``, a container of ``kind``;
    none when ``kind`` is not a container kind or the record is gone."""
    container_kind = KINDS.get(kind)
    if container_kind is None:
        return []
    container = await store.load(container_id)
    if container is None or container.kind != kind:
        return []
    return [child for _, child in await container_kind.children(store, container)]


async def stop_tree(
    store: SignatureStore, signature_id: str, final: SignatureStatus
) -> list[Stopped]:
    """Move ``signature_id`` to ``final``, then every child that can still move.

    Returns what moved, the root first, so the caller can cancel their runs
    and tell the root's container.

    :raises InvalidTransitionError: ``signature_id`` itself already finished.
    :raises SignatureNotFoundError: ``signature_id`` does not exist.
    """
    stopped = await store.stop(signature_id, final)
    moved = [Stopped(signature_id, stopped)]
    for child in await children(store, signature_id, stopped.kind):
        try:
            moved += await stop_tree(store, child, final)
        except SKIPPED:
            continue
    return moved
