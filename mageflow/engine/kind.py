"""What a container kind is: the protocol chains and swarms implement.

A container is a signature whose children carry its id (``container_id``)
and a role (``container_role``). The engine knows nothing about any one kind:
it looks the kind up in :data:`mageflow.engine.kinds.KINDS` and asks it
questions. A kind never starts or settles anything itself; it answers with
:class:`Effects` (what to start, what to interrupt, whether the container is
now finished), and :mod:`mageflow.engine.progress` carries them out. So the
recursion of a workflow (a step settles, which starts the next, which may
be a swarm, which starts its items ...) lives in that one module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from mageflow.signature import SignatureStatus, TaskSignature
from mageflow.store import CallbackTarget, SignatureStore, SwarmStep, scripts

CONTAINER_HOLDER = scripts.CONTAINER_HOLDER
"""The holder a chain or swarm is activated and settled with: a container
has no run of its own, so every start of it is the same (idempotent) start."""


@dataclasses.dataclass(frozen=True)
class Settle:
    """The container is finished: record ``outcome`` and fire its callbacks."""

    container: TaskSignature
    status: SignatureStatus
    outcome: Any


@dataclasses.dataclass(frozen=True)
class Effects:
    """What a kind's answer asks the engine to do, in this order."""

    interrupt: Sequence[str] = ()
    """Children to stop as ``interrupted``, each with everything below it
    (the container answering is not told of them: it asked)."""
    start: Sequence[tuple[CallbackTarget, Mapping[str, Any]]] = ()
    """Signatures to start, each with its message."""
    settle: Settle | None = None
    """The container's own outcome, when it has one now."""


NOTHING = Effects()


class ContainerKind(Protocol):
    """A kind of container: how it starts, hears of children, and lists them."""

    @property
    def name(self) -> str:
        """The ``kind`` its records carry (its signature class's ``kind``)."""
        ...

    @property
    def roles(self) -> frozenset[str]:
        """The ``container_role`` values its children carry."""
        ...

    async def start(
        self, store: SignatureStore, container_id: str, message: Mapping[str, Any]
    ) -> Effects:
        """The container was started with ``message``."""
        ...

    async def child_finished(
        self,
        store: SignatureStore,
        container_id: str,
        child: TaskSignature,
        status: SignatureStatus,
        outcome: Any,
    ) -> Effects:
        """``child`` settled with ``status`` and ``outcome`` (JSON data)."""
        ...

    def needs_word(self, child: TaskSignature, status: SignatureStatus) -> bool:
        """Whether ``child`` ending with ``status`` is news to the container
        (:meth:`child_finished` has something to do). When it is not, the
        child's outcome is complete as soon as it is recorded: one round
        trip less."""
        ...

    @property
    def told_with_finish(self) -> bool:
        """Whether the store tells the container of a child's outcome in the
        child's own finish script, answered by :meth:`after_finish`."""
        ...

    async def after_finish(
        self,
        store: SignatureStore,
        container_id: str,
        step: SwarmStep,
        outcome: Any,
    ) -> Effects:
        """What to do after the store took the container's step with the
        child's finish (only when :attr:`told_with_finish`)."""
        ...

    async def resumed(self, store: SignatureStore, container_id: str) -> Effects:
        """The container was resumed while it was running."""
        ...

    async def children(
        self, store: SignatureStore, container: TaskSignature
    ) -> list[tuple[str, str]]:
        """``(label, child id)`` in order, e.g. ``("step 2", id)``: what
        lifecycle operations reach and what the tree shows."""
        ...


class TaskAsContainer:
    """What the kinds whose container is a *task* share (a root task's
    children, a task's continuation): the task's own run started the work,
    so the kind is never started, refilled or told with a finish; it only
    hears of its one child's end, every time."""

    told_with_finish = False

    async def start(
        self, store: SignatureStore, container_id: str, message: Mapping[str, Any]
    ) -> Effects:
        return NOTHING

    def needs_word(self, child: TaskSignature, status: SignatureStatus) -> bool:
        return True

    async def after_finish(
        self, store: SignatureStore, container_id: str, step: SwarmStep, outcome: Any
    ) -> Effects:
        return NOTHING

    async def resumed(self, store: SignatureStore, container_id: str) -> Effects:
        return NOTHING  # the child carries what was paused
