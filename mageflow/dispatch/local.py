"""The local backend: runs tasks in this process, on asyncio. Not an engine.

For development and tests only; production runs on Hatchet. Each run goes
through hatchet-sdk's own ``aio_mock_run``, so the task gets a real
``Context``, and the input is validated by the task's ``input_validator``
exactly as on a worker. Around it this backend does what a worker would:

* ``retries=N`` means N+1 attempts (``ctx.retry_count`` counts them), and a
  ``NonRetryableException`` ends the run at once;
* ``execution_timeout`` is enforced;
* the output is serialized and validated like a worker's
  (:func:`mageflow._hatchet.serialize_output`): it must be a dict, a pydantic model, a
  dataclass or falsy, and is dumped with the task's output validator; a bad
  output fails the attempt with ``IllegalTaskOutputError``, as on a worker;
* ``additional_metadata`` reaches ``ctx.additional_metadata`` and, as a worker
  sets them, the ``ctx_additional_metadata`` / ``ctx_task_retry_count``
  context variables;
* exceptions are captured on the run record instead of escaping;
* a timeout, or :meth:`LocalDispatcher.cancel`, first flags the run's
  context (``ctx.is_cancelled``) and then cancels the attempt, as a worker
  does when the engine cancels a run.

Every run is recorded (:class:`LocalRun`), and :meth:`LocalDispatcher.drain`
waits until no run is in flight, including runs started by other runs; with
an ``on_idle`` hook (the client passes its recovery pass) it also waits
until nothing is owed.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import enum
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any

from hatchet_sdk.exceptions import NonRetryableException
from hatchet_sdk.runnables.types import EmptyModel
from hatchet_sdk.runnables.workflow import Standalone

from mageflow._hatchet import (
    enter_run,
    execution_timeout_seconds,
    mark_cancelled,
    serialize_output,
    set_retry_count,
    step_output_validator,
    task_retries,
)
from mageflow.attempt import AttemptControl, CancelReason, current_attempt
from mageflow.dispatch import (
    SIGNATURE_ID,
    Probe,
    ProbeState,
    RunHandle,
    RunRequest,
)
from mageflow.errors import UnknownTaskError
from mageflow.registry import TaskRegistry


class RunState(str, enum.Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclasses.dataclass
class LocalRun:
    """One run the local backend started, for assertions and inspection."""

    run_id: str
    task_name: str
    input: dict[str, Any]
    metadata: dict[str, str]
    state: RunState = RunState.RUNNING
    attempts: int = 0
    output: Any = None
    """The output as JSON data, as a worker would have sent it (or ``None``)."""
    error: BaseException | None = None
    """The last attempt's exception, if the run failed."""
    started: float = dataclasses.field(default_factory=time.monotonic)
    finished: float | None = None
    """``time.monotonic()`` when the run ended, for durations."""
    control: AttemptControl | None = dataclasses.field(default=None, repr=False)
    """The attempt in flight, while one is."""
    attempt_task: asyncio.Future[Any] | None = dataclasses.field(
        default=None, repr=False
    )
    cancelled: bool = False
    """Cancelled through :meth:`LocalDispatcher.cancel`: no attempt follows."""

    @property
    def signature_id(self) -> str | None:
        """The signature this run executes, if it was started from one."""
        return self.metadata.get(SIGNATURE_ID)


class LocalDispatcher:
    """Runs the tasks of one registry in-process (see the module docstring)."""

    def __init__(
        self,
        registry: TaskRegistry,
        on_idle: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._registry = registry
        self.on_idle = on_idle
        """Run by :meth:`drain` whenever no run is in flight; it returns
        whether it did anything (then drain waits again)."""
        self.runs: list[LocalRun] = []
        self._in_flight: set[asyncio.Task[Any]] = set()

    def _standalone(self, task_name: str) -> Standalone[Any, Any]:
        registered = self._registry.get(task_name)
        if registered is None:
            raise UnknownTaskError(
                f"no task named {task_name!r} is declared on this client, so the "
                "local backend cannot run it. Declare it with @client.task(...) "
                "in this process.",
                task_name=task_name,
            )
        return registered.standalone

    async def trigger(self, request: RunRequest) -> str:
        standalone = self._standalone(request.task_name)
        run = self._record(request)
        # A worker starts each run in a fresh context: the triggering run's
        # context variables (its client, its Hatchet metadata) must not leak.
        self._start(standalone, run, contextvars.Context())
        return run.run_id

    def _start(
        self,
        standalone: Standalone[Any, Any],
        run: LocalRun,
        context: contextvars.Context,
    ) -> asyncio.Task[None]:
        task = context.run(asyncio.create_task, self._execute(standalone, run))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return task

    async def trigger_many(self, requests: Sequence[RunRequest]) -> list[str]:
        for request in requests:
            self._standalone(request.task_name)  # refuse the batch before any run
        return [await self.trigger(request) for request in requests]

    async def run(self, request: RunRequest) -> Any:
        standalone = self._standalone(request.task_name)
        run = self._record(request)
        # The caller waits for this run, so it sees the caller's context
        # variables; what the run sets (its metadata) stays in a copy.
        await self._start(standalone, run, contextvars.copy_context())
        if run.error is not None:
            raise run.error
        return run.output

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until no run is in flight and nothing is owed.

        Runs started meanwhile are waited for too. When the dispatcher was
        given an ``on_idle`` hook (a client's recovery pass), it is run each
        time the runs are idle, until it finds nothing to do.

        :raises TimeoutError: runs are still going after ``timeout`` seconds;
            the message names them.
        """

        passes = 0

        async def until_idle() -> None:
            nonlocal passes
            while True:
                while self._in_flight:
                    await asyncio.gather(*self._in_flight, return_exceptions=True)
                idle_work = self.on_idle is not None and await self.on_idle()
                passes += 1
                if not idle_work and not self._in_flight:
                    return

        try:
            await asyncio.wait_for(until_idle(), timeout)
        except asyncio.TimeoutError:
            still = [r for r in self.runs if r.state is RunState.RUNNING]
            if still:
                names = ", ".join(f"{r.task_name} ({r.run_id})" for r in still)
                why = f"{len(still)} local run(s) still in flight: {names}"
            else:
                # No run is going: the idle hook (recovery) kept finding work,
                # e.g. a start re-sent again and again that never activates.
                why = (
                    f"no run is in flight, but the idle pass (recovery) found "
                    f"work each of {passes} time(s) it ran; see the warnings "
                    "logged by mageflow for what it re-sent"
                )
            raise TimeoutError(f"not drained after {timeout}s: {why}") from None

    def in_flight(self, signature_id: str) -> list[LocalRun]:
        """The runs of ``signature_id`` still going."""
        return [
            run
            for run in self.runs
            if run.state is RunState.RUNNING and run.signature_id == signature_id
        ]

    async def probe(
        self, signature_id: str, since: datetime, run_id: str | None = None
    ) -> Probe:
        if self.in_flight(signature_id):
            return Probe(ProbeState.ALIVE)
        ran = [run for run in self.runs if run.signature_id == signature_id]
        if run_id is not None:
            # About that run only, as the engine answers: a delivery that was
            # refused as a duplicate is another run, and says nothing of the
            # holder's (which may be another process's, unknown here).
            ran = [run for run in ran if run.run_id == run_id]
        if not ran:
            return Probe(ProbeState.NONE)
        last = ran[-1]
        if last.state is RunState.SUCCEEDED:
            return Probe(ProbeState.DONE, output=last.output)
        if last.cancelled:
            return Probe(ProbeState.CANCELLED, error=str(last.error))
        return Probe(
            ProbeState.FAILED, error=f"{type(last.error).__name__}: {last.error}"
        )

    async def cancel(self, runs: Sequence[RunHandle]) -> None:
        """Cancel the in-flight runs of these signatures, as the engine
        would: flag the run's context, then cancel its attempt."""
        for handle in runs:
            for run in self.in_flight(handle.signature_id):
                run.cancelled = True
                _cancel_attempt(run, "cancelled")

    async def close(self) -> None:
        """Cancel every run still in flight and wait until they have ended."""
        while self._in_flight:
            tasks = list(self._in_flight)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _record(self, request: RunRequest) -> LocalRun:
        run = LocalRun(
            run_id=uuid.uuid4().hex,
            task_name=request.task_name,
            input=dict(request.input),
            metadata=dict(request.metadata),
        )
        self.runs.append(run)
        return run

    async def _execute(self, standalone: Standalone[Any, Any], run: LocalRun) -> None:
        try:
            await self._attempts(standalone, run)
        finally:
            run.finished = time.monotonic()

    async def _attempts(self, standalone: Standalone[Any, Any], run: LocalRun) -> None:
        attempts = task_retries(standalone) + 1
        timeout = execution_timeout_seconds(standalone)
        validator = step_output_validator(standalone)
        # As a worker does before it calls the task: runs this one triggers
        # see its metadata.
        enter_run(run.metadata, 0, run.run_id)
        for attempt in range(attempts):
            if run.cancelled:
                break
            run.attempts = attempt + 1
            set_retry_count(attempt)
            try:
                output, cancelled = await _attempt(
                    run,
                    standalone.aio_mock_run(
                        input=EmptyModel(**run.input),
                        additional_metadata=run.metadata,
                        retry_count=attempt,
                    ),
                    timeout,
                )
                if cancelled == "cancelled":
                    run.error = asyncio.CancelledError("cancelled on the backend")
                    break
                if cancelled == "timeout":
                    run.error = TimeoutError(
                        f"task {run.task_name!r} exceeded its execution_timeout "
                        f"of {timeout}s (attempt {attempt + 1} of {attempts})"
                    )
                    continue
                # A worker reports a bad output as a failed attempt, which the
                # engine retries like any other failure.
                serialized = serialize_output(validator, output)
            except Exception as exc:
                run.error = exc
                if isinstance(exc, NonRetryableException):
                    break
                continue
            run.error = None
            run.output = None if serialized is None else json.loads(serialized)
            run.state = RunState.SUCCEEDED
            return
        run.state = RunState.FAILED


def _cancel_attempt(run: LocalRun, reason: CancelReason) -> None:
    control, task = run.control, run.attempt_task
    if control is None or task is None or task.done():
        return
    control.reason = reason
    if control.context is not None:
        mark_cancelled(control.context)
    task.cancel()


async def _attempt(
    run: LocalRun, attempt: Coroutine[Any, Any, Any], timeout: float | None
) -> tuple[Any, CancelReason | None]:
    """Await one attempt under ``execution_timeout``, which it may extend.

    On a worker the engine keeps the deadline and ``ctx.refresh_timeout``
    moves it; here this function keeps it, and ``stagger_execution`` moves it
    through :data:`~mageflow.attempt.current_attempt`. A timeout or a cancel
    flags the run's context first, then cancels the attempt. Returns the
    attempt's output, and why it was cancelled if it was.
    """
    loop = asyncio.get_running_loop()
    deadline = [loop.time() + timeout if timeout is not None else None]

    def extend(by: timedelta) -> None:
        if deadline[0] is not None:
            deadline[0] += by.total_seconds()

    control = AttemptControl(extend)
    token = current_attempt.set(control)
    try:
        running = asyncio.ensure_future(attempt)  # copies the context, control too
    finally:
        current_attempt.reset(token)
    run.control, run.attempt_task = control, running
    try:
        while True:
            wait = None if deadline[0] is None else deadline[0] - loop.time()
            done, _ = await asyncio.wait({running}, timeout=wait)
            if done:
                break
            if deadline[0] is not None and loop.time() >= deadline[0]:
                _cancel_attempt(run, "timeout")
                await asyncio.gather(running, return_exceptions=True)
                break
        if running.cancelled() or control.reason is not None:
            return None, control.reason or "cancelled"
        return running.result(), None
    except asyncio.CancelledError:
        # The backend itself is closing: the attempt goes with it, unflagged,
        # like a run on a worker that shuts down.
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        raise
    finally:
        run.control, run.attempt_task = None, None
