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

from collections.abc import Mapping, Sequence
from typing import Any

from mageflow.callbacks import TaskError
from mageflow.engine.inputs import jsonable
from mageflow.engine.kind import NOTHING, Effects, Settle
from mageflow.engine.signing import Records, Signer, as_list, new_id
from mageflow.errors import InvalidTransitionError, SignatureNotFoundError
from mageflow.signature import (
    CallbackSpec,
    SignatureOrRef,
    SignatureStatus,
    SwarmSignature,
    TaskSignature,
)
from mageflow.store import SignatureStore, SwarmStep, SwarmVerdict
from mageflow.store.codec import Write, dumps, encode

ITEM = "item"
"""A swarm's item: its outcome goes to the swarm's results."""
ITEM_OK = "iok"
ITEM_ERR = "ierr"
"""The roles per-item callbacks' ids derive from (an item's own copies)."""


class SwarmKind:
    """The swarm container kind (see the module docstring)."""

    name = SwarmSignature.kind
    roles = frozenset({ITEM})

    async def start(
        self, store: SignatureStore, container_id: str, message: Mapping[str, Any]
    ) -> Effects:
        """Start the swarm with ``message``: fill the free slots from the queue."""
        step = await store.swarm_start(container_id, dumps(dict(message)))
        return await _after(store, container_id, step)

    async def child_finished(
        self,
        store: SignatureStore,
        container_id: str,
        child: TaskSignature,
        status: SignatureStatus,
        outcome: Any,
    ) -> Effects:
        """Record the item's outcome, free its slot, start the next; maybe end."""
        step = await store.swarm_item_done(
            container_id, child.id, status, dumps(outcome)
        )
        return await self.after_finish(store, container_id, step, outcome)

    told_with_finish = True
    """An item's finish takes the swarm's step too (``FINISH_ITEM``)."""

    def needs_word(self, child: TaskSignature, status: SignatureStatus) -> bool:
        return True  # every outcome is counted at its position

    async def after_finish(
        self, store: SignatureStore, container_id: str, step: SwarmStep, outcome: Any
    ) -> Effects:
        """Start what the step started; on ``FAIL`` interrupt what runs and
        fail the swarm; on ``COMPLETE`` settle it with the ordered results."""
        if step.verdict is SwarmVerdict.FAIL:
            return await _failure(store, container_id, step.ids, outcome)
        return await _after(store, container_id, step)

    async def resumed(self, store: SignatureStore, container_id: str) -> Effects:
        """Start what the free slots allow (the first input is kept)."""
        return await self.start(store, container_id, {})

    async def children(
        self, store: SignatureStore, container: TaskSignature
    ) -> list[tuple[str, str]]:
        items = await store.swarm_items(container.id)
        return [(f"item {n}", item) for n, item in enumerate(items, 1)]


SWARM = SwarmKind()


def new(
    signer: Signer,
    *,
    task_name: str | None,
    max_concurrency: int,
    stop_after_n_failures: int | None,
    max_tasks: int | None,
    success: CallbackSpec | None,
    error: CallbackSpec | None,
    kwargs: Mapping[str, Any],
    records: Records,
    closed: bool = False,
    item_success: CallbackSpec | None = None,
    item_error: CallbackSpec | None = None,
    near: str | None = None,
) -> SwarmSignature[Any]:
    """A new, empty swarm (``closed``: taking no items at all); its records
    go to ``records``. ``near``: a stored signature it will hold, whose
    shard it goes in."""
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}.")
    for name, limit in (
        ("stop_after_n_failures", stop_after_n_failures),
        ("max_tasks", max_tasks),
    ):
        if limit is not None and limit < 1:
            raise ValueError(f"{name} must be at least 1 (or None), got {limit}.")
    label = task_name or "swarm"
    bound = jsonable(dict(kwargs))
    swarm: SwarmSignature[Any] = SwarmSignature(
        id=new_id(
            label,
            [bound, max_concurrency, stop_after_n_failures, max_tasks],
            near,
            signer.anchor,
        ),
        task_name=label,
        kwargs=bound,
        max_concurrency=max_concurrency,
        stop_after_n_failures=stop_after_n_failures,
        max_tasks=max_tasks,
        closed=closed,
        item_success=signer.templates("item_success callbacks", item_success),
        item_error=signer.templates("item_error callbacks", item_error),
    )
    if task_name is not None:
        swarm.return_field = signer.resolve(task_name)[1]
    swarm.success_callbacks = signer.callbacks(swarm.id, "ok", success, records)
    swarm.error_callbacks = signer.callbacks(swarm.id, "err", error, records)
    records.append(Write(swarm.id, encode(swarm)))
    return swarm


def items(
    signer: Signer,
    swarm: SwarmSignature[Any],
    tasks: SignatureOrRef | Sequence[SignatureOrRef],
    callbacks: Records,
) -> list[Write]:
    """The records that add ``tasks`` to ``swarm``: new items made from refs
    (with the swarm's kwargs bound, and checked), claims of signatures.
    Each item's own copies of the swarm's per-item callbacks go to
    ``callbacks``, to be stored before the items are added. Nothing is
    stored here, so a refused item leaves nothing behind."""
    writes: list[Write] = []
    for task in as_list(tasks):
        if isinstance(task, TaskSignature):
            item: TaskSignature[Any] = task
        else:
            item = signer.new(task, dict(swarm.kwargs), near=swarm.id)
        ok = signer.from_templates(item.id, ITEM_OK, swarm.item_success, callbacks)
        err = signer.from_templates(item.id, ITEM_ERR, swarm.item_error, callbacks)
        item.success_callbacks = [*item.success_callbacks, *ok]
        item.error_callbacks = [*item.error_callbacks, *err]
        item.container_id, item.container_role = swarm.id, ITEM
        if item is task:
            changed = {}
            if ok:
                changed["ok"] = dumps(item.success_callbacks)
            if err:
                changed["err"] = dumps(item.error_callbacks)
            writes.append(Write(item.id, changed, claim=True))
        else:
            writes.append(Write(item.id, encode(item)))
    return writes


async def add(
    store: SignatureStore,
    swarm: SwarmSignature[Any],
    writes: Sequence[Write],
    *,
    close: bool = False,
    join: bool = False,
) -> tuple[list[str], Effects]:
    """Add items (from :func:`items`) in order; the effects start those that
    fit, if it runs.

    One round trip whatever the batch size: one script checks the swarm and
    every item, writes the new ones, appends them (and closes the swarm, with
    ``close``) and starts what fits. It refuses, writing nothing, a swarm
    that takes no more items (closed, ending or ended, or gone) and items
    that are not pending, already in a swarm or another container, or given
    twice. ``join`` (a root task's start) skips an item that is in this
    swarm already: a retried body starts the same signatures again.
    """
    if not writes:
        return [], NOTHING
    try:
        step = await store.swarm_add(swarm.id, writes, close=close, join=join)
    except SignatureNotFoundError as exc:
        raise InvalidTransitionError(
            f"cannot add to swarm {swarm.id}: it does not exist (removed or "
            "expired). Create another swarm for more work.",
            signature_id=swarm.id,
            task_name=swarm.task_name,
            action="add",
        ) from exc
    if step.verdict is SwarmVerdict.CLOSED:
        why = step.input
        state = (
            "closed (it was made with a list of tasks, close() was called, or "
            "max_tasks was reached; make it with open=True to add items later)"
        )
        if why != "closed":
            state = f"{why}, so it takes no more items"
        raise InvalidTransitionError(
            f"cannot add to swarm {swarm.id}: it is {state}. Create another "
            "swarm for more work.",
            signature_id=swarm.id,
            task_name=swarm.task_name,
            status=None if why == "closed" else why,
            action="add",
        )
    if step.verdict is SwarmVerdict.FULL:
        raise InvalidTransitionError(
            f"cannot add {len(writes)} item(s) to swarm {swarm.id}: it takes at "
            f"most max_tasks={step.input} items.",
            signature_id=swarm.id,
            task_name=swarm.task_name,
            action="add",
        )
    if step.verdict is SwarmVerdict.REFUSED:
        (item_id,) = step.ids
        raise InvalidTransitionError(
            f"cannot add signature {item_id} to swarm {swarm.id}: {step.input}. "
            "Nothing was added; sign the task again for a new item.",
            signature_id=item_id,
            action="add",
        )
    return [write.id for write in writes], _starts(step)


async def close(store: SignatureStore, swarm_id: str) -> Effects:
    """No more items; the effects complete the swarm if every item finished."""
    step = await store.swarm_close(swarm_id)
    return await _after(store, swarm_id, step)


async def completed(store: SignatureStore, swarm_id: str) -> Effects:
    """Settle a swarm that is closed and has nothing left to run (a root
    task's, once its body returned; recovery's, for one whose settle was
    owed)."""
    return await _after(store, swarm_id, SwarmStep(SwarmVerdict.COMPLETE))


def _starts(step: SwarmStep) -> Effects:
    # A root task's child starts with its own message, any other item with
    # the swarm's input.
    return Effects(
        start=[
            (target, step.input if target.message is None else target.message)
            for target in step.started
        ]
    )


async def _after(store: SignatureStore, swarm_id: str, step: SwarmStep) -> Effects:
    """Start what the script started; settle the swarm if it completed."""
    if step.verdict is not SwarmVerdict.COMPLETE:
        return _starts(step)
    swarm = await store.load(swarm_id)
    if not isinstance(swarm, SwarmSignature):
        return _starts(step)
    results = await store.swarm_results(swarm_id, swarm.size)
    return Effects(
        start=_starts(step).start,
        settle=Settle(swarm, SignatureStatus.DONE, results),
    )


async def _failure(
    store: SignatureStore, swarm_id: str, running: Sequence[str], outcome: Any
) -> Effects:
    """``stop_after_n_failures`` reached: interrupt what runs, then fail."""
    swarm = await store.load(swarm_id)
    if not isinstance(swarm, SwarmSignature):
        return Effects(interrupt=running)
    last = outcome if isinstance(outcome, dict) else {}
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
    return Effects(
        interrupt=running, settle=Settle(swarm, SignatureStatus.FAILED, error)
    )
