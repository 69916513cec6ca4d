"""What chains and swarms share: being told a child finished, and lifecycle.

A container is a signature whose children carry its id (``container_id``).
When a child settles, :func:`child_finished` hands the outcome to the
container's own module. Pause, resume and stop on a container reach the
children that can still change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mageflow.errors import InvalidTransitionError, SignatureNotFoundError
from mageflow.signature import (
    ChainSignature,
    SignatureStatus,
    SwarmSignature,
    TaskSignature,
)
from mageflow.store.signatures import decode

if TYPE_CHECKING:
    from mageflow.client import HatchetMageflow

CONTAINER_LEASE = "container"
"""The lease a chain or swarm is activated with: a container has no run of
its own, so every start of it is the same (idempotent) start."""


async def load_container(
    client: HatchetMageflow, container_id: str
) -> TaskSignature | None:
    record = await client.store.load_record(container_id)
    return None if record is None else decode(container_id, record)


async def child_finished(
    client: HatchetMageflow,
    child: TaskSignature,
    status: SignatureStatus,
    value: Any,
) -> None:
    """Tell ``child``'s container that it settled with ``status``/``value``.

    A middle chain step that succeeded needs nothing: the next step was its
    success callback. A swarm item goes straight to the swarm's script. Only
    a chain's end (or failure) reads the chain.
    """
    from mageflow import chains, swarms

    container_id = child.container_id
    assert container_id is not None
    if child.container_role == "item":
        await swarms.item_finished(client, container_id, child, status, value)
        return
    if child.container_role == "step" and status is SignatureStatus.DONE:
        return
    container = await load_container(client, container_id)
    if isinstance(container, ChainSignature):
        await chains.step_finished(client, container, child, status, value)


async def children(client: HatchetMageflow, signature_id: str) -> list[str]:
    """The children of a container that lifecycle operations must reach."""
    container = await load_container(client, signature_id)
    if isinstance(container, ChainSignature):
        return container.steps
    if isinstance(container, SwarmSignature):
        return await client.store.swarm_items(signature_id)
    return []


async def cascade(client: HatchetMageflow, signature_id: str, action: str) -> None:
    """Apply ``pause``/``resume``/``stop`` to every child that allows it.

    Children that already finished (or were never paused) are skipped: a
    container's lifecycle acts on what is running and what is still to come.
    """
    for child_id in await children(client, signature_id):
        try:
            await getattr(client, action)(child_id)
        except (InvalidTransitionError, SignatureNotFoundError):
            continue
