"""Recovery: drive every workflow that is stuck to its end.

Every transition that owes downstream work records the debt with it (see
:mod:`mageflow.store.scripts`), in three indexes. One pass of recovery
works through what is overdue in each:

``owed``
    a signature finished, but its callbacks or its container were not all
    told: the completion is replayed (callbacks admit one start each, and a
    container's script repeats its first decision, so nothing happens twice);
``due``
    a start was decided (a callback, a chain step, a swarm item, a start you
    asked for) but the signature never activated: if the backend has no live
    run of it, the start is sent again; after :data:`MAX_RESENDS` it is
    failed, so its workflow ends;
``leases``
    an attempt holds a signature, but its lease ran out (its worker died or
    froze): if the backend has no live run of that attempt, the signature is
    taken over, and sent again if attempts remain, else failed as ``lost``.

Recovery is safe to run anywhere, any number of times, on many workers at
once: each overdue start or completion is claimed atomically (and pushed
back by the grace) before it is worked on, a take-over checks atomically
that the holder it found gone still holds the signature, and every step it
takes is a transition that checks state on the server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import datetime, timedelta
from typing import Any

from mageflow._hatchet import task_retries
from mageflow.callbacks import ErrorKind
from mageflow.dispatch import Dispatcher, ProbeState
from mageflow.engine import swarm as swarms
from mageflow.engine.leases import LeaseKeeper
from mageflow.engine.progress import Progress, task_error
from mageflow.errors import CorruptSignatureError
from mageflow.registry import TaskRegistry
from mageflow.signature import SignatureStatus, SwarmSignature, TaskSignature
from mageflow.store import CallbackTarget, SignatureStore, keys
from mageflow.store.codec import decode, loads_outcome
from mageflow.store.keys import Index
from mageflow.store.signatures import Entry, now_ms

logger = logging.getLogger("mageflow")

LOST_ATTEMPTS = 2
"""How many attempts beyond the task's own ``retries + 1`` recovery starts
for a signature whose worker died under it. A dead worker is not the task
failing (Hatchet re-delivers such runs too), but a body that kills its
worker every time must not be run for ever."""

MAX_RESENDS = 5
"""How many times recovery sends a start that never begins before it fails
the signature (a task no worker runs, a trigger the engine keeps dropping)."""

BATCH = 500
"""How many overdue entries of each index one pass works on at most."""


@dataclasses.dataclass
class RecoveryReport:
    """What one recovery pass did, by signature id."""

    completed: list[str] = dataclasses.field(default_factory=list)
    """Finished signatures whose callbacks / container were told now."""
    resent: list[str] = dataclasses.field(default_factory=list)
    """Starts that had not begun, sent again."""
    taken_over: list[str] = dataclasses.field(default_factory=list)
    """Signatures whose holder was gone, started again."""
    failed: list[str] = dataclasses.field(default_factory=list)
    """Signatures failed for good (no attempts left, never started)."""
    skipped: list[str] = dataclasses.field(default_factory=list)
    """Overdue, but the backend still has a live run: left to it."""
    dropped: int = 0
    """Stale index entries removed (their record is gone or moved on)."""

    @property
    def acted(self) -> bool:
        """Whether the pass changed anything."""
        return bool(self.completed or self.resent or self.taken_over or self.failed)

    def __str__(self) -> str:
        return (
            f"completed {len(self.completed)}, resent {len(self.resent)}, "
            f"taken over {len(self.taken_over)}, failed {len(self.failed)}, "
            f"left to a live run {len(self.skipped)}, stale entries {self.dropped}"
        )


class Recovery:
    """Recovery passes over one store (see the module docstring)."""

    def __init__(
        self,
        store: SignatureStore,
        progress: Progress,
        dispatcher: Dispatcher,
        registry: TaskRegistry,
        leases: LeaseKeeper,
    ) -> None:
        self._store = store
        self._progress = progress
        self._dispatcher = dispatcher
        self._registry = registry
        self._leases = leases

    async def run_once(self, grace: timedelta | None = None) -> RecoveryReport:
        """One pass over the three indexes; returns what it did.

        :param grace: how long past its due time an entry must be before it
            is acted on. ``None``: ``TTLConfig.grace`` for starts and
            completions, and lease expiry for holders. ``timedelta(0)``:
            everything owed now, and every hold not kept by this process.
        """
        report = RecoveryReport()
        ttl = self._store.ttl
        now = now_ms()

        def threshold(allowance_ms: int) -> int:
            # Entries are scored at their due time plus ``allowance_ms``.
            waited = allowance_ms if grace is None else _ms(grace)
            return now + allowance_ms - waited

        for entry in await self._store.claim_overdue(
            Index.OWED, threshold(ttl.grace_ms), BATCH
        ):
            await self._guarded(self._complete, entry, report)
        for entry in await self._store.claim_overdue(
            Index.DUE, threshold(ttl.grace_ms), BATCH
        ):
            await self._guarded(self._start, entry, report)
        # Leases are scored by when they run out: by default, act on expiry.
        leases_before = now if grace is None else now + ttl.lease_ms - _ms(grace)
        for entry in await self._store.expired_leases(leases_before, BATCH):
            await self._guarded(self._take_over, entry, report)
        if report.acted:
            logger.info("mageflow: recovery pass: %s", report)
        return report

    async def _guarded(self, step: Any, entry: Entry, report: RecoveryReport) -> None:
        signature_id = entry.signature_id
        try:
            await step(entry, report)
        except CorruptSignatureError:
            logger.error(
                "mageflow: recovery skipped %s: its record is damaged",
                signature_id,
                exc_info=True,
            )
            report.dropped += 1
        except Exception:
            # The entry was pushed back by the grace: the next pass retries.
            logger.warning(
                "mageflow: recovery of %s failed; the next pass retries it",
                signature_id,
                exc_info=True,
            )

    async def _load(
        self, index: Index, entry: Entry, report: RecoveryReport
    ) -> tuple[TaskSignature, dict[str, str]] | None:
        signature_id = entry.signature_id
        record = await self._store.load_record(signature_id)
        if record is None:
            await self._store.forget(index, entry)
            report.dropped += 1
            return None
        return decode(signature_id, record), record

    # --- owed completions -------------------------------------------------------

    async def _complete(self, entry: Entry, report: RecoveryReport) -> None:
        signature_id = entry.signature_id
        loaded = await self._load(Index.OWED, entry, report)
        if loaded is None:
            return
        signature, record = loaded
        if _settle_owed(signature, record):
            # A swarm closed with nothing left to run (a root task's, when
            # its body returned) whose settle was cut short.
            await self._progress.apply(
                await swarms.completed(self._store, signature_id)
            )
            report.completed.append(signature_id)
            return
        if record.get("sent") == "1" or not signature.status.is_final:
            await self._store.forget(Index.OWED, entry)
            report.dropped += 1
            return
        await self._progress.replay(signature, record)
        report.completed.append(signature_id)

    # --- owed starts --------------------------------------------------------------

    async def _start(self, entry: Entry, report: RecoveryReport) -> None:
        signature_id = entry.signature_id
        loaded = await self._load(Index.DUE, entry, report)
        if loaded is None:
            return
        signature, _ = loaded
        raw = await self._store.due_message(entry)
        if entry.relayed:
            # A start another shard owes (a callback or a step linked after
            # it was signed): moved to the signature's own shard, where its
            # activation meets it; a paused one keeps it for its resume.
            await self._store.mark_due(signature_id, raw or "{}", relayed=True)
            await self._store.forget(Index.DUE, entry)
        if signature.status is not SignatureStatus.PENDING:
            if not entry.relayed:
                await self._store.forget(Index.DUE, entry)
            report.dropped += 1
            return
        message = loads_outcome(keys.signature(signature_id), raw or "{}")
        if not isinstance(message, dict):
            message = {}
        target = _target(signature)
        if signature.kind == TaskSignature.kind:
            probe = await self._dispatcher.probe(signature_id, _since(signature))
            if probe.state is ProbeState.ALIVE:
                report.skipped.append(signature_id)
                return
            if probe.state in (ProbeState.FAILED, ProbeState.CANCELLED):
                # The engine ended a run that never activated the signature:
                # it failed before mageflow's wrapper ran (its input did not
                # validate on the worker), or it was cancelled while queued.
                await self._fail_unstarted(signature, message, probe.state, probe.error)
                report.failed.append(signature_id)
                return
            if await self._store.count_resend(signature_id) > MAX_RESENDS:
                await self._progress.fail(
                    target,
                    message,
                    task_error(
                        signature_id,
                        signature.task_name,
                        message,
                        kind="unknown_task",
                        error_type="NeverStarted",
                        text=(
                            f"task {signature.task_name!r} was sent "
                            f"{MAX_RESENDS + 1} times and never started: no "
                            "worker runs it, or the engine dropped it"
                        ),
                    ),
                )
                report.failed.append(signature_id)
                return
        await self._progress.start([(target, message)])
        report.resent.append(signature_id)

    async def _fail_unstarted(
        self,
        signature: TaskSignature,
        message: dict[str, Any],
        state: ProbeState,
        error: str | None,
    ) -> None:
        text = error or "the engine ended its run before it began"
        kind: ErrorKind = "lost"
        if state is ProbeState.CANCELLED:
            kind = "cancelled"
        elif "validation error" in text.lower():
            kind = "validation"
        await self._progress.fail(
            _target(signature),
            message,
            task_error(
                signature.id,
                signature.task_name,
                message,
                kind=kind,
                error_type="ValidationError" if kind == "validation" else "LostRun",
                text=text,
            ),
        )

    # --- lost holders ---------------------------------------------------------------

    async def _take_over(self, entry: Entry, report: RecoveryReport) -> None:
        signature_id = entry.signature_id
        if self._leases.holds(signature_id):
            report.skipped.append(signature_id)  # held here, and alive
            return
        loaded = await self._load(Index.LEASES, entry, report)
        if loaded is None:
            return
        signature, record = loaded
        if signature.status is not SignatureStatus.ACTIVE:
            await self._store.forget(Index.LEASES, entry)
            report.dropped += 1
            return
        probe = await self._dispatcher.probe(
            signature_id, _since(signature), run_id=record.get("run") or None
        )
        if probe.state is ProbeState.ALIVE:
            report.skipped.append(signature_id)
            return
        holder = record.get("holder") or ""
        tries = await self._store.take_over(signature_id, holder)
        if tries is None:
            return  # its holder came back, or someone else took it over
        message = loads_outcome(
            keys.signature(signature_id), record.get("input") or "{}"
        )
        if not isinstance(message, dict):
            message = {}
        # The engine ended the holder's run (its attempts are spent), or
        # knows of none: then this process's count of attempts decides.
        spent = probe.state is not ProbeState.NONE
        allowed = self._max_attempts(signature.task_name) + LOST_ATTEMPTS
        if not spent and tries < allowed:
            # The delivered input, bound kwargs included: sent as it is.
            exact = dataclasses.replace(_target(signature), kwargs={})
            await self._progress.start([(exact, message)])
            report.taken_over.append(signature_id)
            return
        lost = {
            ProbeState.DONE: "the engine finished it, but its outcome never "
            "reached mageflow",
            ProbeState.CANCELLED: "the engine cancelled it",
            ProbeState.FAILED: f"the engine failed it: {probe.error}",
        }.get(probe.state, "its worker went away")
        await self._progress.fail(
            _target(signature),
            message,
            task_error(
                signature_id,
                signature.task_name,
                message,
                kind="lost",
                error_type="LostRun",
                text=(
                    f"the run of task {signature.task_name!r} was lost after "
                    f"{tries} attempt(s) ({lost}); no attempt was left"
                ),
            ),
        )
        report.failed.append(signature_id)

    def _max_attempts(self, task_name: str) -> int:
        """The task's ``retries + 1``. A task this process does not declare
        is not limited here: the engine counts its attempts."""
        registered = self._registry.get(task_name)
        if registered is None:
            return 2**31
        return task_retries(registered.standalone) + 1


async def keep_recovering(recovery: Recovery, every: timedelta) -> None:
    """Run a recovery pass every ``every``, forever (a worker's background
    task, cancelled when the worker stops). A pass that fails is logged and
    the next one runs on time."""
    while True:
        await asyncio.sleep(every.total_seconds())
        try:
            await recovery.run_once()
        except Exception:
            logger.warning("mageflow: recovery pass failed", exc_info=True)


def _ms(value: timedelta) -> int:
    return int(value.total_seconds() * 1000)


def _since(signature: TaskSignature) -> datetime:
    """Where to look for a signature's runs on the engine. A retried one's
    earlier runs ended before the retry: from the retry on, so they are not
    mistaken for the new start (no margin there, so a clock skew can only
    make a start look lost, which re-sends it, never look failed)."""
    if signature.retried_at is not None:
        return signature.retried_at
    return signature.created_at - timedelta(minutes=1)


def _target(signature: TaskSignature) -> CallbackTarget:
    return CallbackTarget(
        signature.id,
        signature.kind,
        signature.task_name,
        signature.kwargs,
        signature.return_field,
        signature.status.value,
    )


def _settle_owed(signature: TaskSignature, record: dict[str, str]) -> bool:
    """Whether an owed entry is a swarm's settle rather than a completion:
    the swarm is still active, closed, and every item finished."""
    return (
        isinstance(signature, SwarmSignature)
        and signature.status is SignatureStatus.ACTIVE
        and signature.closed
        and signature.finished >= signature.size
        and record.get("stopping") != "1"
    )
