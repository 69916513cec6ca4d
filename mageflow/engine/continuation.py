"""Continuations: a task whose outcome is the outcome of other work.

When a task returns :class:`mageflow.Continue`, its run hands the task over
(:meth:`~mageflow.store.SignatureStore.handover`, one step): the task stays
active, held by the container holder, and the work becomes its only child,
with role ``cont``. So the task is a container of one, and this is its kind:
when the work ends, the task settles with the work's status and outcome,
through the same settle as any container, which fires the task's callbacks
and tells the task's own container (a chain's next step waits for it).
"""

from __future__ import annotations

from typing import Any

from mageflow.engine.kind import (
    CONTAINER_HOLDER,
    NOTHING,
    Effects,
    Settle,
    TaskAsContainer,
)
from mageflow.signature import SignatureStatus, TaskSignature
from mageflow.store import SignatureStore
from mageflow.store.codec import decode

CONT = "cont"
"""The role of the work a task continued with."""


class ContinuationKind(TaskAsContainer):
    """A task that continued, as the container of its continuation."""

    name = "continuation"
    roles = frozenset({CONT})

    async def child_finished(
        self,
        store: SignatureStore,
        container_id: str,
        child: TaskSignature,
        status: SignatureStatus,
        outcome: Any,
    ) -> Effects:
        """The continuation ended: the task ends with its status and outcome."""
        record = await store.load_record(container_id)
        if record is None or record.get("holder") != CONTAINER_HOLDER:
            return NOTHING  # gone, or not handed over (then it never started)
        return Effects(settle=Settle(decode(container_id, record), status, outcome))

    async def children(
        self, store: SignatureStore, container: TaskSignature
    ) -> list[tuple[str, str]]:
        if container.continuation_id is None:
            return []
        return [("continued by", container.continuation_id)]


CONTINUATION = ContinuationKind()
