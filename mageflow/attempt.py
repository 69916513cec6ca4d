"""What plays the engine's part for one attempt when there is no engine.

On a Hatchet worker, the engine keeps each attempt's deadline (and
``ctx.refresh_timeout`` moves it), and when it cancels an attempt (a timeout,
or a cancel) the worker first flags the run's context, then cancels the
task. The local backend does the same in-process: for each attempt it sets
an :class:`AttemptControl` here, which the run path fills with its context,
so a local timeout looks to the run exactly like one on a worker.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextvars import ContextVar
from datetime import timedelta
from typing import Literal

from hatchet_sdk import Context

CancelReason = Literal["timeout", "cancelled"]


@dataclasses.dataclass
class AttemptControl:
    """One local attempt: its deadline, its context, why it was cancelled."""

    extend: Callable[[timedelta], None]
    """Moves the attempt's deadline (``stagger_execution`` pays its delay)."""
    context: Context | None = None
    """The run's context, registered by the run path when it starts."""
    reason: CancelReason | None = None
    """Why the attempt was cancelled, once it is."""


current_attempt: ContextVar[AttemptControl | None] = ContextVar(
    "mageflow_current_attempt", default=None
)
"""Set by the local backend around each attempt; ``None`` on a worker."""
