"""A stored workflow as a readable tree: each signature, its status, its links.

Used by ``mageflow inspect`` and by the pytest plugin's
``mageflow_runner.tree(...)``. It only reads Redis, so it works for any
backend. A node's ``children`` are its callbacks ("on success" / "on error";
a swarm item's own copies of the swarm's per-item callbacks are "on item
success" / "on item error") and, for containers, what its kind lists
(:meth:`~mageflow.engine.kind.ContainerKind.children`): a chain's steps, a
swarm's items, a root task's "children" swarm, and what a task "continued
by"::

    price [done] 6f1c2e...  kwargs={"quantity": 4}  took 3ms
    ├── on success: notify [done] 0a9b71...
    └── on error: on-error [pending] 77de10...
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from mageflow.engine.chain import STEP
from mageflow.engine.kinds import KINDS, TASK_KINDS
from mageflow.engine.signing import child_id as derived_id
from mageflow.engine.swarm import ITEM, ITEM_ERR, ITEM_OK
from mageflow.errors import CorruptSignatureError, SignatureNotFoundError
from mageflow.signature import SignatureStatus, SwarmSignature, TaskSignature
from mageflow.store import SignatureStore
from mageflow.store.codec import decode

FINAL = frozenset(
    s.value
    for s in (
        SignatureStatus.DONE,
        SignatureStatus.FAILED,
        SignatureStatus.CANCELED,
        SignatureStatus.INTERRUPTED,
    )
)
"""The statuses a signature ends in."""

_STEP_LABEL = "step "


class HasStore(Protocol):
    """Anything that exposes its store, like a mageflow client."""

    @property
    def store(self) -> SignatureStore: ...


@dataclasses.dataclass
class TreeNode:
    """One signature in a tree, as stored, with what points from it."""

    id: str
    role: str
    """``root``, ``on success``, ``on error``, ``step 2``, ``item 3``..."""
    kind: str = "task"
    task_name: str = "?"
    status: str = "missing"
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    outcome: Any = None
    started: datetime | None = None
    finished: datetime | None = None
    problem: str | None = None
    """Why the node could not be read (missing or corrupt), if it could not."""
    children: list[TreeNode] = dataclasses.field(default_factory=list)
    total: int | None = None
    """For a chain or swarm: how many steps or items it has."""
    shown: tuple[int, int] | None = None
    """For a large swarm read with ``collapse_over``: the slice
    ``[start, end)`` of its items in ``children`` (``(0, 0)``:
    collapsed, none). ``None``: all of them are there."""
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    """For a chain or swarm: ``total``, ``finished``, ``failed`` and
    ``running`` children (a swarm's from its own counters, so they hold when
    its items were not read)."""

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, when both are recorded."""
        if self.started is None or self.finished is None:
            return None
        return (self.finished - self.started).total_seconds()

    def find(self, task_name: str) -> TreeNode | None:
        """The first node (depth first) running ``task_name``."""
        if self.task_name == task_name:
            return self
        for child in self.children:
            if (found := child.find(task_name)) is not None:
                return found
        return None

    def statuses(self) -> dict[str, str]:
        """``{task_name: status}`` of every node, for compact assertions."""
        result = {self.task_name: self.status}
        for child in self.children:
            result.update(child.statuses())
        return result

    def line(self, *, outcomes: bool = True) -> str:
        """This node alone, on one line."""
        head = "" if self.role == "root" else f"{self.role}: "
        kind = "" if self.kind == "task" else f"{self.kind} "
        text = f"{head}{kind}{self.task_name} [{self.status}] {self.id}"
        if self.problem is not None:
            return f"{head}{self.id} !! {self.problem}"
        if self.kwargs:
            text += f"  kwargs={_compact(self.kwargs)}"
        if (duration := self.duration) is not None:
            text += f"  took {_seconds(duration)}"
        if outcomes and self.outcome is not None:
            label = "error" if self.status == "failed" else "result"
            text += f"  {label}={_compact(self.outcome)}"
        return text

    def render(self, *, outcomes: bool = True) -> str:
        """The whole tree, one node a line, with box-drawing branches."""
        lines = [self.line(outcomes=outcomes)]
        self._render_children(lines, "", outcomes)
        return "\n".join(lines)

    def _render_children(self, lines: list[str], prefix: str, outcomes: bool) -> None:
        for n, child in enumerate(self.children):
            last = n == len(self.children) - 1
            lines.append(
                f"{prefix}{'└── ' if last else '├── '}{child.line(outcomes=outcomes)}"
            )
            child._render_children(
                lines, prefix + ("    " if last else "│   "), outcomes
            )

    def __str__(self) -> str:
        return self.render()


def _compact(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"


def _time(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        try:
            return datetime.fromtimestamp(float(raw))
        except (ValueError, OverflowError, OSError):
            return None


async def build_tree(
    source: SignatureStore | HasStore,
    signature_id: str,
    *,
    collapse_over: int | None = None,
    pages: Mapping[str, int] | None = None,
    page_size: int = 50,
) -> TreeNode:
    """Read the signature ``signature_id`` and everything it links to.

    ``source`` is a :class:`~mageflow.store.SignatureStore`, or a client (any
    object with a ``store``). The root must exist and be a mageflow record:
    otherwise :class:`~mageflow.SignatureNotFoundError` or
    :class:`~mageflow.CorruptSignatureError`. Below the root a missing or
    corrupt node is shown with its problem instead of raising.

    By default the whole tree is read. For a large workflow (the dashboard)
    pass ``collapse_over``: a swarm with more items than that shows none of
    them, only its counts, unless ``pages`` names it; then it shows page
    ``pages[id]`` (from 0) of ``page_size`` items. Its callbacks are always
    shown. Each node's children are read in one round trip.
    """
    store = source if isinstance(source, SignatureStore) else source.store
    record = await store.load_record(signature_id)
    if record is None:
        raise SignatureNotFoundError(
            f"no signature {signature_id} in this Redis database (it never "
            "existed, was removed, or expired).",
            signature_id=signature_id,
        )
    root = TreeNode(id=signature_id, role="root")
    # Raises for a corrupt root; below it, problems are shown.
    signature = decode(signature_id, record)
    window = _Window(collapse_over, pages or {}, page_size)
    await _fill(store, root, signature, record, window, {signature_id})
    return root


@dataclasses.dataclass(frozen=True)
class _Window:
    collapse_over: int | None
    pages: Mapping[str, int]
    page_size: int

    def of(self, container_id: str, total: int) -> tuple[int, int] | None:
        """The slice of a container's children to show; ``None``: all."""
        if self.collapse_over is None or total <= self.collapse_over:
            return None
        page = self.pages.get(container_id)
        if page is None:
            return (0, 0)
        start = min(max(page, 0) * self.page_size, total)
        return (start, min(start + self.page_size, total))


async def _fill(
    store: SignatureStore,
    node: TreeNode,
    signature: TaskSignature,
    record: Mapping[str, str],
    window: _Window,
    seen: set[str],
) -> None:
    """Set ``node`` from its record, then read and add its children."""
    node.kind = signature.kind
    node.task_name = signature.task_name
    node.status = signature.status.value
    node.kwargs = signature.kwargs
    node.started = _time(record.get("started"))
    node.finished = _time(record.get("finished"))
    try:
        node.outcome = json.loads(record.get("outcome") or "null")
    except ValueError:
        node.outcome = record.get("outcome")
    links: list[tuple[str, str]] = []
    if isinstance(signature, SwarmSignature) and (
        shown := window.of(signature.id, signature.size)
    ):
        # A large swarm: read only the page shown (none when collapsed), not
        # all of its ids; its own counter says how many there are.
        node.total, node.shown = signature.size, shown
        start, stop = shown
        page = await store.swarm_items(signature.id, start, stop) if stop else []
        links.extend((f"item {n}", item) for n, item in enumerate(page, start + 1))
    elif (container := KINDS.get(signature.kind)) is not None:
        members = await container.children(store, signature)
        node.total = len(members)
        links.extend(members)
    else:
        for task_kind in TASK_KINDS:
            links.extend(await task_kind.children(store, signature))
    success = signature.success_callbacks
    if signature.container_role == STEP:
        # The last success callback of a middle step is the next step, which
        # its chain already lists.
        success = success[:-1]
    links.extend(_callback_links(signature, "success", ITEM_OK, success))
    links.extend(
        _callback_links(signature, "error", ITEM_ERR, signature.error_callbacks)
    )
    fresh = [child_id for _, child_id in links if child_id not in seen]
    seen.update(fresh)
    records = dict(zip(fresh, await store.load_records(fresh), strict=True))
    for child_role, child_id in links:
        child = TreeNode(id=child_id, role=child_role)
        node.children.append(child)
        if child_id not in records:
            child.problem = "already shown above"
            continue
        child_record = records.pop(child_id)
        try:
            if child_record is None:
                raise SignatureNotFoundError(
                    f"no signature {child_id} in this Redis database (it "
                    "never existed, was removed, or expired).",
                    signature_id=child_id,
                )
            child_signature = decode(child_id, child_record)
        except (SignatureNotFoundError, CorruptSignatureError) as exc:
            child.problem = str(exc)
            continue
        await _fill(store, child, child_signature, child_record, window, seen)
    node.counts = _counts(node, signature, record)


def _callback_links(
    signature: TaskSignature, outcome: str, item_role: str, callbacks: list[str]
) -> list[tuple[str, str]]:
    """``(label, id)`` of callbacks; a swarm item's copies of its swarm's
    per-item callbacks (ids derived from the item's) are labelled so."""
    own: set[str] = set()
    if signature.container_role == ITEM:
        own = {derived_id(signature.id, item_role, n) for n in range(len(callbacks))}
    return [
        (f"on item {outcome}" if cb in own else f"on {outcome}", cb) for cb in callbacks
    ]


def _counts(
    node: TreeNode, signature: TaskSignature, record: Mapping[str, str]
) -> dict[str, int]:
    """How many of a container's children are in which state."""
    if isinstance(signature, SwarmSignature):
        # The swarm's own counters: right even when its items are not read.
        return {
            "total": signature.size,
            "finished": signature.finished,
            "failed": signature.failed,
            "running": int(record.get("running") or 0),
        }
    if node.total is None:
        return {}
    members = [c for c in node.children if c.role.startswith(_STEP_LABEL)]
    return {
        "total": node.total,
        "finished": sum(1 for c in members if c.status in FINAL),
        "failed": sum(1 for c in members if c.status == "failed"),
        "running": sum(1 for c in members if c.status == "active"),
    }
