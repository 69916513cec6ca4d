"""Retry: run a failed workflow again, from where it failed.

A retry is planned here and applied by the store in one atomic step
(:data:`~mageflow.store.scripts.RETRY`), which first checks that every
record is still what the plan saw. The plan walks the failed signature:

* a task is reset to ``pending`` and owed a start with the message its
  failed attempt ran with;
* a chain *continues*: it is ``active`` again, its steps that succeeded keep
  their results, the step that failed is retried the same way (recursively,
  so a failed swarm step re-runs only its failed items), and the steps after
  it are reset to run when their turn comes;
* a swarm *continues*: its items that succeeded keep their results, every
  other item is reset and queued again in its place, and what fits under
  the cap starts.

A child that is run again *whole* (a swarm item, or a step after the failed
one) is reset with all of its own children. Every reset record keeps its
callbacks and bumps its ``gen``, so the new runs derive new ids for what
they sign. Error callbacks that already ran for the failure are not run
again: each callback runs once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from mageflow.callbacks import DEFAULT_RESULT_FIELD
from mageflow.engine.progress import Progress
from mageflow.errors import InvalidTransitionError, SignatureNotFoundError
from mageflow.signature import (
    ChainSignature,
    SignatureStatus,
    SwarmSignature,
    TaskSignature,
)
from mageflow.store import Requeue, Reset, SignatureStore, keys
from mageflow.store.codec import decode, dumps, loads_outcome

RETRYABLE = frozenset({SignatureStatus.FAILED, SignatureStatus.INTERRUPTED})
"""What a retry accepts: the statuses that mean "ended without a result,
not by the user's decision". A stopped (``canceled``) signature is not
retried: sign it again."""

PLAN_ATTEMPTS = 3
"""How often a retry is re-planned when a record moves under it."""

Plan = list[Reset | Requeue]


@dataclasses.dataclass
class _Planner:
    store: SignatureStore
    plan: Plan = dataclasses.field(default_factory=list)

    async def load(self, signature_id: str) -> tuple[TaskSignature, dict[str, str]]:
        record = await self.store.load_record(signature_id)
        if record is None:
            raise SignatureNotFoundError(
                f"cannot retry: signature {signature_id}, part of the workflow, "
                "is gone (removed or expired). Sign the workflow again.",
                signature_id=signature_id,
            )
        return decode(signature_id, record), record

    async def again(self, signature: TaskSignature, record: dict[str, str]) -> None:
        """Retry ``signature`` from where it failed (see the module docstring)."""
        if isinstance(signature, ChainSignature):
            await self._chain_again(signature, record)
        elif isinstance(signature, SwarmSignature):
            await self._swarm_again(signature)
        else:
            # The message its failed attempt ran with (bound kwargs included,
            # so merging them again agrees).
            message = record.get("input") or "{}"
            self.plan.append(
                Reset(signature.id, signature.status, SignatureStatus.PENDING, message)
            )

    async def _chain_again(
        self, chain: ChainSignature, chain_record: dict[str, str]
    ) -> None:
        self.plan.append(Reset(chain.id, chain.status, SignatureStatus.ACTIVE))
        previous: TaskSignature | None = None
        for index, step_id in enumerate(chain.steps):
            step, record = await self.load(step_id)
            if step.status is SignatureStatus.DONE:
                previous = step
                continue
            if "input" in record:
                await self.again(step, record)
            else:
                # It never started: it starts now, with what it would have got.
                message = (
                    (chain_record.get("input") or "{}")
                    if previous is None
                    else dumps(
                        {step.return_field or DEFAULT_RESULT_FIELD: previous.outcome}
                    )
                )
                await self.whole(step, message)
            for later in chain.steps[index + 1 :]:
                await self.whole((await self.load(later))[0])
            return

    async def _swarm_again(self, swarm: SwarmSignature[Any]) -> None:
        self.plan.append(Reset(swarm.id, swarm.status, SignatureStatus.ACTIVE))
        redo = await self._items_again(swarm, keep_done=True)
        self.plan.append(Requeue(swarm.id, tuple(redo), fill=True))

    async def _items_again(
        self, swarm: SwarmSignature[Any], *, keep_done: bool
    ) -> list[tuple[int, str]]:
        redo: list[tuple[int, str]] = []
        for position, item_id in enumerate(await self.store.swarm_items(swarm.id)):
            item, _ = await self.load(item_id)
            if keep_done and item.status is SignatureStatus.DONE:
                continue
            await self.whole(item)
            redo.append((position, item_id))
        return redo

    async def whole(self, signature: TaskSignature, message: str | None = None) -> None:
        """Reset ``signature`` and all its children to run from the start;
        with ``message``, it is owed its start now."""
        if signature.status in (SignatureStatus.ACTIVE, SignatureStatus.SUSPENDED):
            raise InvalidTransitionError(
                f"cannot retry: signature {signature.id} ({signature.task_name}), "
                f"part of the workflow, is still {signature.status.value}. Stop "
                "it or let it end, then retry.",
                signature_id=signature.id,
                task_name=signature.task_name,
                status=signature.status.value,
                action="retry",
            )
        self.plan.append(
            Reset(signature.id, signature.status, SignatureStatus.PENDING, message)
        )
        if isinstance(signature, ChainSignature):
            for step in signature.steps:
                await self.whole((await self.load(step))[0])
        elif isinstance(signature, SwarmSignature):
            redo = await self._items_again(signature, keep_done=False)
            self.plan.append(Requeue(signature.id, tuple(redo), fill=False))


class Retrier:
    """Plans and applies retries, then sends the starts they owe."""

    def __init__(self, store: SignatureStore, progress: Progress) -> None:
        self._store = store
        self._progress = progress

    async def retry(self, signature_id: str) -> None:
        """Run the failed ``signature_id`` again (see the module docstring).

        :raises InvalidTransitionError: it is not failed or interrupted, it
            belongs to a chain or swarm (retry that), or the workflow kept
            changing while the retry was planned.
        :raises SignatureNotFoundError: it, or part of it, is gone.
        """
        for attempt in range(PLAN_ATTEMPTS):
            plan = await self._plan(signature_id)
            try:
                owed = await self._store.retry(plan)
            except InvalidTransitionError:
                if attempt + 1 == PLAN_ATTEMPTS:
                    raise
                continue
            await self._start(owed)
            return

    async def _plan(self, signature_id: str) -> Plan:
        planner = _Planner(self._store)
        signature, record = await planner.load(signature_id)
        if signature.container_id:
            raise InvalidTransitionError(
                f"cannot retry signature {signature_id} on its own: it is part of "
                f"{signature.container_id}. Retry that workflow; it re-runs what "
                "failed in it.",
                signature_id=signature_id,
                task_name=signature.task_name,
                status=signature.status.value,
                action="retry",
            )
        if signature.status not in RETRYABLE:
            hint = (
                "It was stopped: sign the task again to run it anew."
                if signature.status is SignatureStatus.CANCELED
                else "Only a failed signature can be retried."
            )
            raise InvalidTransitionError(
                f"cannot retry signature {signature_id}: it is "
                f"{signature.status.value}. {hint}",
                signature_id=signature_id,
                task_name=signature.task_name,
                status=signature.status.value,
                action="retry",
            )
        await planner.again(signature, record)
        return planner.plan

    async def _start(self, owed: Sequence[tuple[str, str]]) -> None:
        """Send the starts the retry recorded as owed (recovery re-sends any
        that is lost)."""
        if not owed:
            return
        targets, _ = await self._store.targets(
            [signature_id for signature_id, _ in owed]
        )
        messages = {
            signature_id: loads_outcome(keys.signature(signature_id), message)
            for signature_id, message in owed
        }
        await self._progress.start(
            [
                (target, message if isinstance(message, dict) else {})
                for target in targets
                for message in [messages[target.id]]
            ]
        )
