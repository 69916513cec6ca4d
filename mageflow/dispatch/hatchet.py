"""The production backend: runs are started on the Hatchet engine.

Runs are triggered by task name through Hatchet's admin client, so a callback
or a chain step can be a task that only another worker declares. They are
started *detached*: mageflow clears Hatchet's "current run" context while it
triggers, so a callback is not a child of the run that fired it (its life is
the workflow's, not the parent run's, and chains of any length stay flat).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import grpc  # type: ignore[import-untyped]
from hatchet_sdk import Hatchet
from hatchet_sdk.clients.rest.models.v1_task_status import V1TaskStatus
from hatchet_sdk.features.runs import BulkCancelReplayOpts, RunFilter
from hatchet_sdk.types.trigger import TriggerWorkflowOptions, WorkflowRunTriggerConfig

from mageflow._hatchet import admin_client, detached
from mageflow.dispatch import SIGNATURE_ID, Probe, ProbeState, RunHandle, RunRequest
from mageflow.errors import UnknownTaskError


def _options(request: RunRequest) -> TriggerWorkflowOptions:
    return TriggerWorkflowOptions(additional_metadata=dict(request.metadata))


def _unknown(task_names: Sequence[str], exc: grpc.RpcError) -> UnknownTaskError:
    names = ", ".join(sorted(set(task_names)))
    return UnknownTaskError(
        f"the Hatchet engine rejected a run of {names} "
        f"({exc.details() if hasattr(exc, 'details') else exc}). Check the task "
        "name, and that a worker registered it.",
        task_name=names,
    )


_STATES = {
    V1TaskStatus.QUEUED: ProbeState.ALIVE,
    V1TaskStatus.RUNNING: ProbeState.ALIVE,
    V1TaskStatus.COMPLETED: ProbeState.DONE,
    V1TaskStatus.CANCELLED: ProbeState.CANCELLED,
    V1TaskStatus.FAILED: ProbeState.FAILED,
}


class HatchetDispatcher:
    """Starts runs on a real Hatchet engine through the given client."""

    def __init__(self, hatchet: Hatchet) -> None:
        self._hatchet = hatchet

    async def trigger(self, request: RunRequest) -> str:
        admin = admin_client(self._hatchet)
        try:
            with detached():
                ref = await admin.aio_run_workflow(
                    request.task_name, json.dumps(request.input), _options(request)
                )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise _unknown([request.task_name], exc) from exc
            raise
        return ref.workflow_run_id

    async def trigger_many(self, requests: Sequence[RunRequest]) -> list[str]:
        if not requests:
            return []
        admin = admin_client(self._hatchet)
        configs = [
            WorkflowRunTriggerConfig(
                workflow_name=r.task_name,
                input=json.dumps(r.input),
                options=_options(r),
            )
            for r in requests
        ]
        try:
            with detached():
                refs = await admin.aio_run_workflows(configs)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise _unknown([r.task_name for r in requests], exc) from exc
            raise
        return [ref.workflow_run_id for ref in refs]

    async def run(self, request: RunRequest) -> Any:
        admin = admin_client(self._hatchet)
        with detached():
            ref = await admin.aio_run_workflow(
                request.task_name, json.dumps(request.input), _options(request)
            )
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
