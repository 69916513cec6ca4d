"""The one seam every mageflow dispatch goes through.

Signatures, callbacks, chain steps and swarm items all start runs through a
:class:`Dispatcher`: trigger one, trigger many, or run one and wait. The
Hatchet backend (:mod:`mageflow.dispatch.hatchet`) is production; the local
backend (:mod:`mageflow.dispatch.local`) runs tasks in-process for development
and tests. Client code is the same on both.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

SIGNATURE_ID = "mageflow_signature_id"
"""``additional_metadata`` key naming the signature a run belongs to."""

DISPATCH_ID = "mageflow_dispatch_id"
"""``additional_metadata`` key naming one dispatch of that signature: retries
of one dispatch share it, a duplicate dispatch does not."""

RUN_KEY = "mageflow_run_key"
"""``additional_metadata`` key the local backend uses to name one run, the
same on every attempt (as Hatchet's task run id is on a worker)."""

MAGEFLOW_METADATA = frozenset({SIGNATURE_ID, DISPATCH_ID, RUN_KEY})


@dataclasses.dataclass(frozen=True, slots=True)
class RunRequest:
    """One run to start: a task by name, its JSON input, its metadata."""

    task_name: str
    input: Mapping[str, Any]
    metadata: Mapping[str, str]


class ProbeState(str, enum.Enum):
    """What a backend knows of the runs of one signature."""

    ALIVE = "alive"
    """A run is queued or running: it will report, or be re-delivered."""
    DONE = "done"
    """The last run succeeded (its output is known)."""
    FAILED = "failed"
    """The last run failed for good."""
    CANCELLED = "cancelled"
    """The last run was cancelled."""
    NONE = "none"
    """No run exists: it was never created, or its trigger was dropped."""


@dataclasses.dataclass(frozen=True)
class Probe:
    """The answer of :meth:`Dispatcher.probe`."""

    state: ProbeState
    output: Any = None
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class RunHandle:
    """A signature whose runs should be cancelled."""

    signature_id: str
    run_id: str | None
    """The Hatchet run of its last attempt, when it ever started."""
    since: datetime
    """When the signature was created: no run of it is older."""


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

    async def probe(
        self, signature_id: str, since: datetime, run_id: str | None = None
    ) -> Probe:
        """What the backend knows of the runs started for ``signature_id``
        (created no earlier than ``since``); of the run ``run_id`` only, when
        it is given (the attempt that holds the signature)."""
        ...

    async def cancel(self, runs: Sequence[RunHandle]) -> None:
        """Cancel whatever runs of these signatures are queued or running."""
        ...
