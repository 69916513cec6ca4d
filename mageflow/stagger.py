"""``stagger_execution``: a random pause before a task, paid for in timeout.

Tasks that contend for one exclusive resource tend to start together and then
wait on each other; spreading their starts over a window breaks that up. The
pause must not eat into the task's own ``execution_timeout``, so the timeout
is extended by the pause (rounded up to whole seconds, the engine's unit)
before the pause begins.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from contextvars import ContextVar
from datetime import timedelta

from hatchet_sdk import Context

timeout_extender: ContextVar[Callable[[timedelta], None] | None] = ContextVar(
    "mageflow_timeout_extender", default=None
)
"""Set by the local backend, which enforces ``execution_timeout`` itself:
there is no engine to ask, so the extension goes to the local deadline."""


async def stagger(
    ctx: Context, task_name: str, window: timedelta, rng: random.Random
) -> float:
    """Sleep for a delay drawn from ``[0, window]``; return the delay in seconds."""
    delay = rng.uniform(0.0, window.total_seconds())
    if extension := math.ceil(delay):
        if (extend := timeout_extender.get()) is not None:
            extend(timedelta(seconds=extension))
        else:
            await ctx.aio_refresh_timeout(timedelta(seconds=extension))
    ctx.log(f"mageflow: staggering {task_name!r} by {delay:.3f}s (window {window})")
    await asyncio.sleep(delay)
    return delay
