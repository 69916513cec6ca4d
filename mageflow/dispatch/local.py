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
* exceptions are captured on the run record instead of escaping.

Every run is recorded (:class:`LocalRun`), and :meth:`LocalDispatcher.drain`
waits until no run is in flight, including runs started by other runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import enum
import json
import time
import uuid
from collections.abc import Coroutine, Sequence
from datetime import timedelta
from typing import Any

from hatchet_sdk.exceptions import NonRetryableException
from hatchet_sdk.runnables.types import EmptyModel
from hatchet_sdk.runnables.workflow import Standalone

from mageflow._hatchet import (
    enter_run,
    serialize_output,
    set_retry_count,
    step_output_validator,
    task_execution_timeout,
    task_retries,
)
from mageflow.dispatch import SIGNATURE_ID, RunRequest
from mageflow.errors import UnknownTaskError
from mageflow.registry import TaskRegistry
from mageflow.stagger import timeout_extender


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

    @property
    def signature_id(self) -> str | None:
        """The signature this run executes, if it was started from one."""
        return self.metadata.get(SIGNATURE_ID)


def _seconds(value: timedelta | str | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    units = {"s": 1, "m": 60, "h": 3600}
    return float(value[:-1]) * units[value[-1]] if value[-1] in units else None


class LocalDispatcher:
    """Runs the tasks of one registry in-process (see the module docstring)."""

    def __init__(self, registry: TaskRegistry) -> None:
        self._registry = registry
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
        """Wait until no run is in flight, including runs started meanwhile.

        :raises TimeoutError: runs are still going after ``timeout`` seconds;
            the message names them.
        """

        async def until_idle() -> None:
            while self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)

        try:
            await asyncio.wait_for(until_idle(), timeout)
        except asyncio.TimeoutError:
            still = [r for r in self.runs if r.state is RunState.RUNNING]
            names = ", ".join(f"{r.task_name} ({r.run_id})" for r in still)
            raise TimeoutError(
                f"{len(still)} local run(s) still in flight after {timeout}s: "
                f"{names or 'none recorded'}"
            ) from None

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
        timeout = _seconds(task_execution_timeout(standalone))
        validator = step_output_validator(standalone)
        # As a worker does before it calls the task: runs this one triggers
        # see its metadata.
        enter_run(run.metadata, 0)
        for attempt in range(attempts):
            run.attempts = attempt + 1
            set_retry_count(attempt)
            try:
                output = await _within_timeout(
                    standalone.aio_mock_run(
                        input=EmptyModel(**run.input),
                        additional_metadata=run.metadata,
                        retry_count=attempt,
                    ),
                    timeout,
                )
                # A worker reports a bad output as a failed attempt, which the
                # engine retries like any other failure.
                serialized = serialize_output(validator, output)
            except asyncio.TimeoutError:
                run.error = TimeoutError(
                    f"task {run.task_name!r} exceeded its execution_timeout "
                    f"of {timeout}s (attempt {attempt + 1} of {attempts})"
                )
                continue
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


async def _within_timeout(
    attempt: Coroutine[Any, Any, Any], timeout: float | None
) -> Any:
    """Await one attempt under ``execution_timeout``, which it may extend.

    On a worker the engine keeps the deadline and ``ctx.refresh_timeout``
    moves it; here this function keeps it, and ``stagger_execution`` moves it
    through :data:`timeout_extender`.
    """
    if timeout is None:
        return await attempt
    loop = asyncio.get_running_loop()
    deadline = [loop.time() + timeout]

    def extend(by: timedelta) -> None:
        deadline[0] += by.total_seconds()

    token = timeout_extender.set(extend)
    try:
        running = asyncio.ensure_future(attempt)  # copies the context, extender too
    finally:
        timeout_extender.reset(token)
    while True:
        done, _ = await asyncio.wait({running}, timeout=deadline[0] - loop.time())
        if done:
            return running.result()
        if loop.time() >= deadline[0]:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            raise asyncio.TimeoutError
