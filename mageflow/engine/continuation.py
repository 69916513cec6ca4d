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

from collections.abc import Mapping
from typing import Any

from mageflow.engine.kind import CONTAINER_HOLDER, NOTHING, Effects, Settle
from mageflow.signature import SignatureStatus, TaskSignature
from mageflow.store import SignatureStore, SwarmStep
from mageflow.store.codec import decode

CONT = "cont"
"""The role of the work a task continued with."""


class ContinuationKind:
    """A task that continued, as the container of its continuation."""

    name = "continuation"
    roles = frozenset({CONT})

    async def start(
        self, store: SignatureStore, container_id: str, message: Mapping[str, Any]
    ) -> Effects:
        return NOTHING  # never started as a container: the task's run did

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

    told_with_finish = False

    def needs_word(self, child: TaskSignature, status: SignatureStatus) -> bool:
        return True  # every outcome is the task's

    async def after_finish(
        self, store: SignatureStore, container_id: str, step: SwarmStep, outcome: Any
    ) -> Effects:
        return NOTHING  # never called: told by child_finished

    async def resumed(self, store: SignatureStore, container_id: str) -> Effects:
        return NOTHING  # the continuation carries what was paused

    async def children(
        self, store: SignatureStore, container: TaskSignature
    ) -> list[tuple[str, str]]:
        if container.continuation_id is None:
            return []
        return [("continued by", container.continuation_id)]


CONTINUATION = ContinuationKind()
