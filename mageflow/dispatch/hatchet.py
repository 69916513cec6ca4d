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
from typing import Any

import grpc  # type: ignore[import-untyped]
from hatchet_sdk import Hatchet
from hatchet_sdk.types.trigger import TriggerWorkflowOptions, WorkflowRunTriggerConfig

from mageflow._hatchet import admin_client, detached
from mageflow.dispatch import RunRequest
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
