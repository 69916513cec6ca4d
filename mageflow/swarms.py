"""Swarms: many signatures in parallel, under a concurrency cap kept in Redis.

The cap holds across every worker because the decision to start an item is
made inside one Lua script, next to the counter it checks. Per item the cost
is constant: an item that finishes records its outcome at its position,
frees its slot and takes the next queued item in one script; nothing walks
the swarm. Only completion reads all results once, to hand the success
callbacks the list **in the order the items were added**.

The scripts are in :mod:`mageflow.store.scripts` (``SWARM_*``) and the keys
in :mod:`mageflow.store.keys`: the swarm's hash, plus ``items`` (ids in
order), ``queue`` (waiting for a slot), ``running`` (a set), ``results``
(position -> outcome) and ``next`` (position -> the item that position's
finish started, so a replayed finish starts that same item again, never a
second one).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mageflow.callbacks import TaskError
from mageflow.containers import CONTAINER_LEASE
from mageflow.errors import InvalidTransitionError, SignatureNotFoundError
from mageflow.launch import jsonable
from mageflow.launch import start as start_targets
from mageflow.signature import SignatureStatus, SwarmSignature, TaskSignature
from mageflow.store.signatures import SwarmStep, dumps, encode

if TYPE_CHECKING:
    from mageflow.client import CallbackSpec, HatchetMageflow, TaskRef

logger = logging.getLogger("mageflow")


async def create(
    client: HatchetMageflow,
    tasks: Sequence[TaskSignature[Any] | TaskRef] | None,
    *,
    task_name: str | None,
    max_concurrency: int,
    stop_after_n_failures: int | None,
    max_tasks: int | None,
    success: CallbackSpec | None,
    error: CallbackSpec | None,
    kwargs: Mapping[str, Any],
) -> SwarmSignature[Any]:
    """Store a swarm (see :meth:`HatchetMageflow.swarm`) and add ``tasks``."""
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}.")
    for name, limit in (
        ("stop_after_n_failures", stop_after_n_failures),
        ("max_tasks", max_tasks),
    ):
        if limit is not None and limit < 1:
            raise ValueError(f"{name} must be at least 1 (or None), got {limit}.")
    swarm: SwarmSignature[Any] = SwarmSignature(
        task_name=task_name or "swarm",
        kwargs=jsonable(dict(kwargs)),
        max_concurrency=max_concurrency,
        stop_after_n_failures=stop_after_n_failures,
        max_tasks=max_tasks,
    )
    if task_name is not None:
        swarm.return_field = client._resolve_task(task_name)[1]
    records: list[tuple[str, Mapping[str, str]]] = []
    swarm.success_callbacks = client._callback_ids(success, records)
    swarm.error_callbacks = client._callback_ids(error, records)
    records.append((swarm.id, encode(swarm)))
    await client.store.create(records)
    swarm._client = client
    if tasks:
        await add(client, swarm, tasks)
    return swarm


async def add(
    client: HatchetMageflow,
    swarm: SwarmSignature[Any],
    tasks: TaskSignature[Any] | TaskRef | Sequence[TaskSignature[Any] | TaskRef],
) -> list[str]:
    """Add items in order; start those that fit under the cap if it runs.

    Two round trips whatever the batch size: store the items, then one
    script appends them and starts what fits.
    """
    given = (
        list(tasks)
        if isinstance(tasks, Sequence) and not isinstance(tasks, str)
        else [tasks]
    )
    if not given:
        return []
    items: list[TaskSignature[Any]] = []
    records: list[tuple[str, Mapping[str, str]]] = []
    for task in given:
        if isinstance(task, TaskSignature):
            task.container_id, task.container_role = swarm.id, "item"
            records.append((task.id, {"container": swarm.id, "crole": "item"}))
        else:
            task = client._new_signature(task, dict(swarm.kwargs), None)
            task.container_id, task.container_role = swarm.id, "item"
            records.append((task.id, encode(task)))
        items.append(task)
    await client.store.create(records)
    step = await client.store.swarm_add(swarm.id, [item.id for item in items])
    if step.verdict == "closed":
        raise InvalidTransitionError(
            f"cannot add to swarm {swarm.id}: it is closed (close() was called "
            "or max_tasks was reached). Create another swarm for more work."
        )
    if step.verdict == "full":
        raise InvalidTransitionError(
            f"cannot add {len(items)} item(s) to swarm {swarm.id}: it takes at "
            f"most max_tasks={step.input} items."
        )
    await _start(client, step)
    return [item.id for item in items]


async def _start(client: HatchetMageflow, step: SwarmStep) -> None:
    if step.started:
        await start_targets(client, [(t, step.input) for t in step.started])


async def start(
    client: HatchetMageflow, swarm_id: str, message: Mapping[str, Any]
) -> None:
    """Start the swarm with ``message``: fill the free slots from the queue."""
    step = await client.store.swarm_start(
        swarm_id, dumps(dict(message)), CONTAINER_LEASE
    )
    await _start(client, step)
    if step.verdict == "complete":
        await _complete(client, swarm_id)


async def refill(client: HatchetMageflow, swarm_id: str) -> None:
    """After a resume: start what the free slots allow."""
    await start(client, swarm_id, {})


async def close(client: HatchetMageflow, swarm_id: str) -> None:
    """No more items; complete now if every item already finished."""
    step = await client.store.swarm_close(swarm_id)
    if step.verdict == "complete":
        await _complete(client, swarm_id)


async def item_finished(
    client: HatchetMageflow,
    swarm_id: str,
    item: TaskSignature[Any],
    status: SignatureStatus,
    value: Any,
) -> None:
    """Record the item's outcome, free its slot, start the next; maybe settle."""
    step = await client.store.swarm_item_done(swarm_id, item.id, status, dumps(value))
    if step.verdict == "fail":
        await _fail(client, swarm_id, step.ids, value)
        return
    await _start(client, step)
    if step.verdict == "complete":
        await _complete(client, swarm_id)


async def _complete(client: HatchetMageflow, swarm_id: str) -> None:
    from mageflow.signed_run import settle

    swarm = await client.store.load(swarm_id)
    if not isinstance(swarm, SwarmSignature):
        return
    results = await client.store.swarm_results(swarm_id, swarm.size)
    await settle(client, swarm, CONTAINER_LEASE, SignatureStatus.DONE, results)


async def _fail(
    client: HatchetMageflow, swarm_id: str, running: Sequence[str], value: Any
) -> None:
    from mageflow.signed_run import settle

    for item_id in running:
        try:
            await client.store.stop(item_id, SignatureStatus.INTERRUPTED)
        except (InvalidTransitionError, SignatureNotFoundError):
            continue
    swarm = await client.store.load(swarm_id)
    if not isinstance(swarm, SwarmSignature):
        return
    last = value if isinstance(value, dict) else {}
    error = TaskError(
        error_type="SwarmFailed",
        message=(
            f"{swarm.failed} item(s) failed, reaching stop_after_n_failures="
            f"{swarm.stop_after_n_failures}; the last: "
            f"{last.get('error_type')}: {last.get('message')}"
        ),
        signature_id=swarm.id,
        task_name=swarm.task_name,
        original_message={},
    )
    await settle(client, swarm, CONTAINER_LEASE, SignatureStatus.FAILED, error)
