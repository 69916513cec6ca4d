"""What the dashboard reads from Redis: the list of workflows, and one.

Only reads. A workflow here is a *root*: a signature started from outside
any workflow, which the store lists in ``mageflow:idx:roots`` as part of the
script that marks its start (see :data:`mageflow.store.keys.ROOTS`). Every
record is decoded and validated before it is shown; one that is not a
mageflow record is shown as corrupt, never skipped silently or trusted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone

from mageflow.errors import CorruptSignatureError
from mageflow.signature import ChainSignature, SwarmSignature, TaskSignature
from mageflow.store import SignatureStore
from mageflow.store.codec import decode
from mageflow.tree import FINAL, TreeNode

SCAN_CHUNK = 200
"""How many index entries one read of the list takes, while filtering."""


@dataclasses.dataclass(frozen=True)
class Row:
    """One workflow in the list."""

    id: str
    started: datetime | None
    """When it was started (``None`` if the index holds no real time)."""
    kind: str = "?"
    task_name: str = "?"
    status: str = "corrupt"
    finished: int = 0
    """Finished steps or items (a task: 1 once it ended)."""
    total: int = 1
    """Its steps or items (a task: 1)."""
    problem: str | None = None
    """Why its record could not be read, if it could not."""

    @property
    def percent(self) -> int:
        return 100 if self.total == 0 else round(100 * self.finished / self.total)


@dataclasses.dataclass(frozen=True)
class Filters:
    """What the list is narrowed to; empty strings match everything."""

    status: str = ""
    task: str = ""

    def keep(self, row: Row) -> bool:
        return (not self.status or row.status == self.status) and (
            not self.task or self.task.lower() in row.task_name.lower()
        )


@dataclasses.dataclass(frozen=True)
class Page:
    rows: list[Row]
    more: bool
    """Whether older workflows match beyond this page."""


async def list_workflows(
    store: SignatureStore, filters: Filters, *, offset: int = 0, count: int = 50
) -> Page:
    """The ``count`` newest workflows that pass ``filters``, after skipping
    ``offset`` of them; expired entries are left out.

    Reads the index in chunks until the page is full, so a filter that
    matches rarely costs more round trips, never more memory.
    """
    rows: list[Row] = []
    skipped = 0
    at = 0
    while True:
        entries = await store.roots(at, SCAN_CHUNK)
        at += len(entries)
        for row in await _rows(store, entries):
            if not filters.keep(row):
                continue
            if skipped < offset:
                skipped += 1
                continue
            if len(rows) == count:
                return Page(rows, more=True)
            rows.append(row)
        if len(entries) < SCAN_CHUNK:
            return Page(rows, more=False)


async def _rows(store: SignatureStore, entries: list[tuple[str, float]]) -> list[Row]:
    """Rows for index entries: one round trip for the records, one for the
    steps of the chains among them."""
    ids = [signature_id for signature_id, _ in entries]
    decoded: dict[str, TaskSignature | CorruptSignatureError] = {}
    for signature_id, record in zip(ids, await store.load_records(ids), strict=True):
        if record is None:
            continue  # expired or removed since it was listed
        try:
            decoded[signature_id] = decode(signature_id, record)
        except CorruptSignatureError as exc:
            decoded[signature_id] = exc
    steps = [
        step
        for signature in decoded.values()
        if isinstance(signature, ChainSignature)
        for step in signature.steps
    ]
    step_status = {
        step: record.get("status", "")
        for step, record in zip(steps, await store.load_records(steps), strict=True)
        if record
    }
    rows = []
    for signature_id, at in entries:
        started = _moment(at)
        signature = decoded.get(signature_id)
        if signature is None:
            continue
        if isinstance(signature, CorruptSignatureError):
            rows.append(Row(signature_id, started, problem=str(signature)))
            continue
        finished, total = _progress(signature, step_status)
        rows.append(
            Row(
                signature_id,
                started,
                kind=signature.kind,
                task_name=signature.task_name,
                status=signature.status.value,
                finished=finished,
                total=total,
            )
        )
    return rows


def _moment(seconds: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(seconds, timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


def _progress(
    signature: TaskSignature, step_status: Mapping[str, str]
) -> tuple[int, int]:
    if isinstance(signature, SwarmSignature):
        return signature.finished, signature.size
    if isinstance(signature, ChainSignature):
        ended = sum(1 for step in signature.steps if step_status.get(step) in FINAL)
        return ended, len(signature.steps)
    return (1 if signature.status.value in FINAL else 0), 1


def nodes(tree: TreeNode) -> Iterator[TreeNode]:
    """Every node of a tree, depth first."""
    yield tree
    for child in tree.children:
        yield from nodes(child)


async def watched_ids(store: SignatureStore, tree: TreeNode) -> set[str]:
    """Every id whose end changes what a workflow page shows: its nodes, and
    every item of its swarms, also those a collapsed swarm does not list."""
    ids = {node.id for node in nodes(tree)}
    for node in nodes(tree):
        if node.kind == "swarm" and node.shown is not None:
            ids.update(await store.swarm_items(node.id))
    return ids
