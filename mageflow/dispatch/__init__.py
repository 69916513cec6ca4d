"""The one seam every mageflow dispatch goes through.

Signatures, callbacks, chain steps and swarm items all start runs through a
:class:`Dispatcher`: trigger one, trigger many, or run one and wait. The
Hatchet backend (:mod:`mageflow.dispatch.hatchet`) is production; the local
backend (:mod:`mageflow.dispatch.local`) runs tasks in-process for development
and tests. Client code is the same on both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

SIGNATURE_ID = "mageflow_signature_id"
"""``additional_metadata`` key naming the signature a run belongs to."""

DISPATCH_ID = "mageflow_dispatch_id"
"""``additional_metadata`` key naming one dispatch of that signature: retries
of one dispatch share it, a duplicate dispatch does not."""

MAGEFLOW_METADATA = frozenset({SIGNATURE_ID, DISPATCH_ID})


@dataclasses.dataclass(frozen=True, slots=True)
class RunRequest:
    """One run to start: a task by name, its JSON input, its metadata."""

    task_name: str
    input: Mapping[str, Any]
    metadata: Mapping[str, str]


class Dispatcher(Protocol):
    """Starts task runs. Implemented by the Hatchet and the local backend."""

    async def trigger(self, request: RunRequest) -> str:
        """Start one run; return its run id."""
        ...

    async def trigger_many(self, requests: Sequence[RunRequest]) -> list[str]:
        """Start many runs in as few calls as the backend allows."""
        ...

    async def run(self, request: RunRequest) -> Any:
        """Start one run, wait for it, and return its output as JSON data."""
        ...
