"""The production backend: runs are started on the Hatchet engine.

Runs are triggered by task name through Hatchet's admin client, so a callback
or a chain step can be a task that only another worker declares. They are
started *detached*: mageflow clears Hatchet's "current run" context while it
triggers, so a callback is not a child of the run that fired it (its life is
the workflow's, not the parent run's, and chains of any length stay flat).

How a start reaches the engine
------------------------------
The SDK's ``AdminClient.aio_run_workflow(s)`` is a *sync* gRPC call wrapped
in ``asyncio.to_thread``: each trigger holds a thread of the loop's default
executor, ``min(32, cores + 4)`` threads (6 on a 2-core machine), shared with
every other ``to_thread`` of the worker (sync tasks, dependencies). When many
swarm items finish together, each one's "start the next item" queued there,
one gRPC round trip per thread at a time. So :meth:`HatchetDispatcher.trigger`
does two things instead:

* It **coalesces**. The request is built at once, in the caller's context
  (detached, with the metadata the caller's run passes on), and queued. At
  the end of the event loop's current tick (``call_soon``) the queue goes out
  as ONE ``BulkTriggerWorkflow`` call (a lone request as ``TriggerWorkflow``);
  while ``max_in_flight`` calls are under way, new requests wait for one to
  return, then go out together. No timer: an idle dispatcher sends at once,
  a busy one sends bigger batches. Each caller's future gets its own run id;
  a failed call raises the same error to every caller of it.
* It **uses no thread pool**: the calls go on a ``grpc.aio`` channel, one per
  event loop (the SDK's own ``new_conn(config, aio=True)``, its generated
  stub, auth header and retries: :func:`mageflow._hatchet.aio_trigger`). The
  SDK has no async trigger client (its admin client holds a sync channel
  only); a dedicated executor would still cost a thread hop per call, and
  sizing it to the slots would only move the queue.

Unknown tasks. The engine (v0.105) does not answer a trigger of a task it
does not hold with ``NOT_FOUND``: when it schedules the runs at once it
returns a run id and drops the run, and when it queues them instead it
refuses the whole call (``INVALID_ARGUMENT``, "workflow names not found:
..."). So before a task name's first trigger the dispatcher asks the engine
(one REST call per name and process; a name found is not asked again) and
raises :class:`~mageflow.errors.UnknownTaskError` to that caller alone. A
call the engine refuses for an unknown task (``NOT_FOUND``, or that
``INVALID_ARGUMENT``) started none of its runs: the known ones are sent again
(together when the engine named the unknown ones, else one per call), and
only the unknown task's callers get ``UnknownTaskError``.

Measured with ``bench/e2e.py`` (2-core AMD EPYC, hatchet-lite, 100 worker
slots, 200 no-op items; the machine shared with other test runs): a swarm
capped at 30 took 4.50 s with one ``to_thread`` trigger per start, 1.55x
plain Hatchet with ``max_runs=30`` (2.90 s); now 2.26-2.47 s, 0.75-0.85x.
Its 170 starts after the first 30 went out in 18 calls (median 93 ms each on
this engine). ``max_in_flight`` 1, 2, 4 and 8 measured alike (0.57-0.78x,
under load); without that limit (only a tick's starts coalesced) 0.92x.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import dataclasses
import functools
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import grpc  # type: ignore[import-untyped]
from hatchet_sdk import Hatchet
from hatchet_sdk.clients.rest.models.v1_task_status import V1TaskStatus
from hatchet_sdk.features.runs import BulkCancelReplayOpts, RunFilter
from hatchet_sdk.types.trigger import TriggerWorkflowOptions

from mageflow._hatchet import (
    AioTrigger,
    TriggerMessage,
    admin_client,
    aio_trigger,
    detached,
    trigger_message,
)
from mageflow.dispatch import SIGNATURE_ID, Probe, ProbeState, RunHandle, RunRequest
from mageflow.errors import UnknownTaskError


def _options(request: RunRequest) -> TriggerWorkflowOptions:
    return TriggerWorkflowOptions(additional_metadata=dict(request.metadata))


def _unknown(
    task_names: Sequence[str], exc: grpc.RpcError | None = None
) -> UnknownTaskError:
    """The error for a run of a task the engine does not hold: ``exc`` is
    the engine's refusal, ``None`` when its list of tasks showed it."""
    names = ", ".join(sorted(set(task_names)))
    if exc is None:
        why = "no task of that name is registered in this namespace"
    else:
        why = f"{exc.details() if hasattr(exc, 'details') else exc}"
    error = UnknownTaskError(
        f"the Hatchet engine rejected a run of {names} ({why}). Check the task "
        "name, and that a worker registered it.",
        task_name=names,
    )
    error.__cause__ = exc
    return error


_NAMES_NOT_FOUND = "workflow names not found: "
"""How the engine (v0.105) words the refusal of a call naming unknown tasks."""


def _refused_names(exc: grpc.RpcError) -> set[str] | None:
    """The task names the engine refused a call for as unknown, or ``None``
    when it refused the call for another reason. Empty: it did not say which
    (``NOT_FOUND``); else the namespaced names of its ``INVALID_ARGUMENT``."""
    code = exc.code()
    if code == grpc.StatusCode.NOT_FOUND:
        return set()
    details = str(exc.details() or "")
    if code == grpc.StatusCode.INVALID_ARGUMENT and _NAMES_NOT_FOUND in details:
        listed = details.split(_NAMES_NOT_FOUND, 1)[1]
        return {name.strip() for name in listed.split(",") if name.strip()}
    return None


_STATES = {
    V1TaskStatus.QUEUED: ProbeState.ALIVE,
    V1TaskStatus.RUNNING: ProbeState.ALIVE,
    V1TaskStatus.COMPLETED: ProbeState.DONE,
    V1TaskStatus.CANCELLED: ProbeState.CANCELLED,
    V1TaskStatus.FAILED: ProbeState.FAILED,
}


MAX_BATCH = 1000
"""At most this many requests in one bulk call (the SDK's own chunk size)."""

LOOKUP_LIMIT = 500
"""How many workflows one name lookup lists (the engine searches by substring)."""

logger = logging.getLogger("mageflow")


@dataclasses.dataclass(slots=True)
class _Queued:
    message: TriggerMessage
    task_name: str
    future: asyncio.Future[str]


def _settle(future: asyncio.Future[str], result: str | BaseException) -> None:
    """Give a caller its run id or its error, unless it stopped waiting."""
    if future.done():  # the caller was cancelled
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class _Batcher:
    """The starts queued on one event loop, and the calls carrying them."""

    def __init__(
        self,
        dispatcher: HatchetDispatcher,
        calls: AioTrigger,
        limit: int,
        max_bytes: int,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.calls = calls
        self.lookups: dict[str, asyncio.Task[bool]] = {}
        """Name lookups under way, shared by the triggers waiting on them."""
        self._dispatcher = dispatcher
        self._max_bytes = max_bytes
        self._limit = limit
        self._queue: collections.deque[_Queued] = collections.deque()
        self._in_flight = 0
        self._flush_due = False
        self._sending: set[asyncio.Task[None]] = set()

    def looked_up(self, name: str, _: asyncio.Task[bool]) -> None:
        self.lookups.pop(name, None)

    def submit(self, message: TriggerMessage, task_name: str) -> asyncio.Future[str]:
        future: asyncio.Future[str] = self.loop.create_future()
        self._queue.append(_Queued(message, task_name, future))
        self._schedule()
        return future

    def _schedule(self) -> None:
        if self._flush_due or not self._queue or self._in_flight >= self._limit:
            return
        self._flush_due = True
        # At the end of this tick, so the starts requested in it go together;
        # in an empty context, so no caller's context variables (its run's)
        # reach the calls.
        self.loop.call_soon(self._flush, context=contextvars.Context())

    def _flush(self) -> None:
        self._flush_due = False
        while self._in_flight < self._limit:
            batch = self._take()
            if not batch:
                return
            self._in_flight += 1
            task = self.loop.create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    def _take(self) -> list[_Queued]:
        """The next batch: up to MAX_BATCH requests within the message limit,
        skipping the callers that stopped waiting (they were never sent)."""
        batch: list[_Queued] = []
        size = 0
        while self._queue and len(batch) < MAX_BATCH:
            queued = self._queue[0]
            if queued.future.done():
                self._queue.popleft()
                continue
            size += queued.message.ByteSize()
            if batch and size > self._max_bytes:
                break
            batch.append(self._queue.popleft())
        return batch

    async def _send(self, batch: list[_Queued]) -> None:
        try:
            await self._carry(batch)
        except BaseException:  # the loop is going away: nobody waits
            for queued in batch:
                queued.future.cancel()
            raise
        finally:
            self._in_flight -= 1
            self._schedule()

    async def _carry(self, batch: list[_Queued]) -> None:
        """Send ``batch`` in one call and give each caller its answer."""
        try:
            ids = await self._dispatcher.send([q.message for q in batch])
        except grpc.RpcError as exc:
            refused = _refused_names(exc)
            if refused is None:  # the same error for everyone
                for queued in batch:
                    _settle(queued.future, exc)
                return
            # Refused for an unknown task: the engine started none of it.
            if len(batch) == 1:
                self._dispatcher.forget([batch[0].message.name])
                _settle(batch[0].future, _unknown([batch[0].task_name], exc))
                return
            self._dispatcher.forget(refused)
            rest = [q for q in batch if q.message.name not in refused]
            if len(rest) == len(batch):
                # Which task is unknown? Send each alone: the others start,
                # and only the unknown one's caller gets UnknownTaskError.
                await asyncio.gather(*(self._carry([q]) for q in batch))
                return
            for queued in batch:
                if queued.message.name in refused:
                    _settle(queued.future, _unknown([queued.task_name], exc))
            if rest:  # the engine named the unknown ones: the rest go together
                await self._carry(rest)
            return
        except Exception as exc:
            for queued in batch:
                _settle(queued.future, exc)
            return
        if len(ids) != len(batch):
            mismatch = RuntimeError(
                f"the Hatchet engine returned {len(ids)} run ids for "
                f"{len(batch)} triggers"
            )
            for queued in batch:
                _settle(queued.future, mismatch)
            return
        for queued, run_id in zip(batch, ids, strict=True):
            _settle(queued.future, run_id)


class HatchetDispatcher:
    """Starts runs on a real Hatchet engine through the given client.

    ``max_in_flight``: how many trigger calls may be under way at once on one
    event loop; the starts requested meanwhile wait and go out together.
    """

    def __init__(self, hatchet: Hatchet, max_in_flight: int = 2) -> None:
        self._hatchet = hatchet
        self.max_in_flight = max_in_flight
        self._batchers: dict[asyncio.AbstractEventLoop, _Batcher] = {}
        self._known: set[str] = set()
        """Namespaced task names the engine was seen to hold."""

    def _batcher(self) -> _Batcher:
        """This event loop's queue (a ``grpc.aio`` channel serves one loop)."""
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            for old in [old for old in self._batchers if old.is_closed()]:
                del self._batchers[old]
            admin = admin_client(self._hatchet)
            batcher = _Batcher(
                self,
                aio_trigger(admin),
                self.max_in_flight,
                admin.config.grpc_max_send_message_length,
            )
            self._batchers[loop] = batcher
        return batcher

    def _message(self, request: RunRequest) -> TriggerMessage:
        """The engine's request for ``request``, built in the caller's context
        (the metadata its run passes on), as a top-level run."""
        with detached():
            return trigger_message(
                admin_client(self._hatchet),
                request.task_name,
                json.dumps(request.input),
                _options(request),
            )

    # --- which tasks the engine holds ------------------------------------------

    async def knows(self, name: str) -> bool:
        """Whether the engine holds a task (workflow) of this namespaced name.

        One REST call. The engine itself does not refuse a trigger of an
        unknown name: it answers with a run id and drops the run (v0.105, when
        it schedules the run at once), or refuses the whole call as
        ``INVALID_ARGUMENT`` (when it queues it).
        """
        found = await self._hatchet.workflows.aio_list(
            workflow_name=name, limit=LOOKUP_LIMIT
        )
        return any(workflow.name == name for workflow in found.rows or [])

    def forget(self, names: Iterable[str]) -> None:
        """The engine refused these names: look them up again next time."""
        self._known.difference_update(names)

    async def _require_known(self, names: Mapping[str, str]) -> None:
        """Raise UnknownTaskError unless the engine holds every task named.

        ``names`` maps namespaced names to task names. A name the engine was
        seen to hold is not looked up again; one that is not found is looked
        up on its next trigger too (a worker may register it meanwhile).
        Triggers of one new name share one lookup. A lookup that fails (the
        REST API is down) lets the trigger through: the engine decides.
        """
        batcher = self._batcher()
        unknown: list[str] = []
        for name, task_name in names.items():
            if name in self._known:
                continue
            lookup = batcher.lookups.get(name)
            if lookup is None:
                lookup = batcher.loop.create_task(self._look_up(name))
                batcher.lookups[name] = lookup
                lookup.add_done_callback(functools.partial(batcher.looked_up, name))
            if not await asyncio.shield(lookup):
                unknown.append(task_name)
        if unknown:
            raise _unknown(unknown)

    async def _look_up(self, name: str) -> bool:
        try:
            known = await self.knows(name)
        except Exception:
            logger.debug("mageflow: could not look up task %s", name, exc_info=True)
            return True
        if known:
            self._known.add(name)
        return known

    # --- triggering -------------------------------------------------------------

    async def send(self, messages: Sequence[TriggerMessage]) -> list[str]:
        """One call to the engine: start all of ``messages`` (one or a bulk
        call), return their run ids in order. Every trigger goes through here.

        :raises grpc.RpcError: the engine refused the call (none started).
        """
        calls = self._batcher().calls
        if len(messages) == 1:
            return [await calls.one(messages[0])]
        return await calls.bulk(messages)

    async def trigger(self, request: RunRequest) -> str:
        """Start one run; starts requested together share one call.

        :raises UnknownTaskError: the engine holds no task of that name.
        """
        message = self._message(request)
        if message.name not in self._known:
            await self._require_known({message.name: request.task_name})
        return await self._batcher().submit(message, request.task_name)

    async def trigger_many(self, requests: Sequence[RunRequest]) -> list[str]:
        """Start all of ``requests`` in bulk calls of their own.

        :raises UnknownTaskError: the engine holds no task of one of the
            names; none of the runs started.
        """
        if not requests:
            return []
        admin = admin_client(self._hatchet)
        messages = [self._message(r) for r in requests]
        await self._require_known(
            {m.name: r.task_name for m, r in zip(messages, requests, strict=True)}
        )
        ids: list[str] = []
        try:
            for chunk in admin.chunk_workflow_runs(messages, MAX_BATCH):
                ids.extend(await self.send(chunk))
        except grpc.RpcError as exc:
            refused = _refused_names(exc)
            if refused is None:
                raise
            self.forget(refused or {m.name for m in messages})
            raise _unknown([r.task_name for r in requests], exc) from exc
        return ids

    async def run(self, request: RunRequest) -> Any:
        run_id = await self.trigger(request)
        ref = admin_client(self._hatchet).get_workflow_run(run_id)
        outputs = await ref.aio_result()
        # A standalone task's run has one output, keyed by the task's name.
        if len(outputs) == 1:
            return next(iter(outputs.values()))
        return outputs

    async def probe(
        self, signature_id: str, since: datetime, run_id: str | None = None
    ) -> Probe:
        """Ask the engine about the runs it holds for ``signature_id``.

        With ``run_id``, about that run only. Otherwise runs are found by the
        signature id mageflow puts in every run's ``additional_metadata``, so
        a trigger that was never recorded (or that the engine dropped) shows
        as ``NONE``.
        """
        if run_id is not None:
            status = await self._hatchet.runs.aio_get_status(run_id)
            return Probe(_STATES[status])
        found = await self._hatchet.runs.aio_list(
            since=since,
            only_tasks=True,
            additional_metadata={SIGNATURE_ID: signature_id},
            limit=50,
        )
        rows = list(found.rows or [])
        if not rows:
            return Probe(ProbeState.NONE)
        if any(r.status in (V1TaskStatus.QUEUED, V1TaskStatus.RUNNING) for r in rows):
            return Probe(ProbeState.ALIVE)
        last = max(rows, key=lambda r: r.created_at)
        if last.status is V1TaskStatus.COMPLETED:
            return Probe(ProbeState.DONE, output=last.output)
        if last.status is V1TaskStatus.CANCELLED:
            return Probe(ProbeState.CANCELLED, error=last.error_message)
        return Probe(ProbeState.FAILED, error=last.error_message)

    async def cancel(self, runs: Sequence[RunHandle]) -> None:
        """Cancel the engine's runs: by id when the run started, else by the
        signature id in the metadata of runs still queued."""
        runs_client = self._hatchet.runs
        ids = [handle.run_id for handle in runs if handle.run_id]
        if ids:
            await runs_client.aio_bulk_cancel(BulkCancelReplayOpts(ids=ids))
        for handle in runs:
            if handle.run_id:
                continue
            await runs_client.aio_bulk_cancel(
                BulkCancelReplayOpts(
                    filters=RunFilter(
                        since=handle.since,
                        additional_metadata={SIGNATURE_ID: handle.signature_id},
                    )
                )
            )
