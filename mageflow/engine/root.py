"""Root tasks: a task whose run's starts become its children.

``@client.root_task(...)`` marks a task. Each run of it owns a swarm (open,
active from the start, role ``root`` in the task): while the body runs,
every signature, chain or swarm it starts through mageflow joins that swarm
instead of starting on its own, so the children run under the root's cap
and their outcomes are kept in start order. The root settles when both its
body has returned and every child has finished:

1. the body returns: one step hands the task to the container holder, keeps
   the body's result, and closes the swarm
   (:meth:`~mageflow.store.SignatureStore.root_done`);
2. the swarm completes (its last child's finish, or at once in step 1) and
   settles like any swarm; the task is its container, so it hears of it
   here, and settles with :class:`~mageflow.RootResult` (the body's result
   and the children's outcomes);
3. a swarm that ended first (``stop_after_n_failures`` reached, or stopped)
   is owed to the task again in step 1, so the task settles with its
   failure.

A body that fails interrupts the swarm (no queued child starts, the running
ones are cancelled) before the task records its failure.

Which run a start belongs to is a context variable, set for the body only;
:func:`without_root` opts a block out, and every run resets it, so a child
the local backend runs in-process never inherits its parent's root.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from mageflow.engine.kind import (
    CONTAINER_HOLDER,
    NOTHING,
    Effects,
    Settle,
    TaskAsContainer,
)
from mageflow.engine.signing import child_id
from mageflow.markers import RootOptions
from mageflow.signature import SignatureStatus, SwarmSignature, TaskSignature
from mageflow.store import SignatureStore, keys
from mageflow.store.codec import decode, encode, loads_outcome

ROOT = "root"
"""The role of a root task's swarm of children, in the task."""


@dataclasses.dataclass(frozen=True)
class RootScope:
    """The root run a block belongs to: the task, and its swarm."""

    task_id: str
    swarm: SwarmSignature[Any]
    """The run's swarm of children, built once when the run opens it (each
    child's join names it)."""

    @property
    def swarm_id(self) -> str:
        return self.swarm.id


_current: ContextVar[RootScope | None] = ContextVar("mageflow_root", default=None)


def current_root() -> RootScope | None:
    """The root run whose body is running here, if any."""
    return _current.get()


@contextmanager
def rooted(scope: RootScope | None) -> Iterator[None]:
    """Run a block as part of ``scope`` (``None``: of no root)."""
    token = _current.set(scope)
    try:
        yield
    finally:
        _current.reset(token)


@contextmanager
def without_root() -> Iterator[None]:
    """Start signatures in this block on their own, not as children of the
    root task whose body runs it: they are not waited for, nor counted."""
    with rooted(None):
        yield


def forget_root() -> None:
    """Leave the root a run inherited (a run started from inside a root's
    body, in the same process, by the local backend)."""
    if _current.get() is not None:
        _current.set(None)


def swarm_of(task: TaskSignature, options: RootOptions) -> SwarmSignature[Any]:
    """The swarm of one run of root task ``task`` (derived from the task's
    id and retry count, so every attempt of a run finds the same one)."""
    base = f"{task.id}:{task.generation}" if task.generation else task.id
    return SwarmSignature(
        id=child_id(base, ROOT, 0),
        task_name=f"{task.task_name} children",
        max_concurrency=options.max_concurrency,
        stop_after_n_failures=options.stop_after_n_failures,
        container_id=task.id,
        container_role=ROOT,
    )


def swarm_record(swarm: SwarmSignature[Any]) -> dict[str, str]:
    """A root's swarm record: active from the start (its children start as
    they join), open until the body returns."""
    return {
        **encode(swarm),
        "status": SignatureStatus.ACTIVE.value,
        "holder": CONTAINER_HOLDER,
        "input": "{}",
        "tries": "1",
    }


def root_result(body: Any, children: Any) -> dict[str, Any]:
    """What a root task's success callbacks receive (:class:`~mageflow.RootResult`)."""
    return {"result": body, "children": children}


def body_result(outcome: Any) -> Any:
    """A root task's own result (what waiting for it returns, typed as its
    task's): the body's, out of its :func:`root_result`."""
    if isinstance(outcome, dict) and "result" in outcome:
        return outcome["result"]
    return outcome


class RootKind(TaskAsContainer):
    """A root task, as the container of its swarm of children."""

    name = "root"
    roles = frozenset({ROOT})

    async def child_finished(
        self,
        store: SignatureStore,
        container_id: str,
        child: TaskSignature,
        status: SignatureStatus,
        outcome: Any,
    ) -> Effects:
        """The children's swarm ended: settle the task, once its body has
        returned (until then the body's end owes this word again)."""
        record = await store.load_record(container_id)
        if (
            record is None
            or record.get("holder") != CONTAINER_HOLDER
            or "body" not in record
        ):
            return NOTHING
        task = decode(container_id, record)
        if status is SignatureStatus.DONE:
            body = loads_outcome(keys.signature(container_id), record["body"])
            outcome = root_result(body, outcome)
        return Effects(settle=Settle(task, status, outcome))

    async def children(
        self, store: SignatureStore, container: TaskSignature
    ) -> list[tuple[str, str]]:
        if container.root_swarm_id is None:
            return []
        return [("children", container.root_swarm_id)]


ROOT_KIND = RootKind()
