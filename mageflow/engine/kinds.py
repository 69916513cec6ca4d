"""The table of container kinds: the one place the engine learns of chains,
swarms, root tasks and continuations. A new kind is one module implementing
:class:`~mageflow.engine.kind.ContainerKind` and one entry here (plus its
record format in :data:`mageflow.store.codec.FORMATS`)."""

from __future__ import annotations

from collections.abc import Mapping

from mageflow.engine.chain import CHAIN
from mageflow.engine.continuation import CONTINUATION
from mageflow.engine.kind import ContainerKind
from mageflow.engine.root import ROOT_KIND
from mageflow.engine.swarm import SWARM

KINDS: Mapping[str, ContainerKind] = {kind.name: kind for kind in (CHAIN, SWARM)}
"""Container kinds by the ``kind`` their records carry. A kind not listed
(``task``) is not a container."""

TASK_KINDS: tuple[ContainerKind, ...] = (ROOT_KIND, CONTINUATION)
"""Kinds whose container is a task record: a root task's children, a task's
continuation. Found by their children's roles only (the task's record says
``task``), and a task's children are what these list."""

_BY_ROLE: Mapping[str, ContainerKind] = {
    role: kind for kind in (*KINDS.values(), *TASK_KINDS) for role in kind.roles
}


def container_of_role(role: str | None) -> ContainerKind | None:
    """The kind of container whose children carry ``role``."""
    return None if role is None else _BY_ROLE.get(role)
