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
from datetime import timedelta

from hatchet_sdk import Context

from mageflow.attempt import current_attempt


async def stagger(
    ctx: Context, task_name: str, window: timedelta, rng: random.Random
) -> float:
    """Sleep for a delay drawn from ``[0, window]``; return the delay in seconds."""
    delay = rng.uniform(0.0, window.total_seconds())
    if extension := math.ceil(delay):
        # The local backend keeps the deadline itself; a worker asks the engine.
        if (attempt := current_attempt.get()) is not None:
            attempt.extend(timedelta(seconds=extension))
        else:
            await ctx.aio_refresh_timeout(timedelta(seconds=extension))
    ctx.log(f"mageflow: staggering {task_name!r} by {delay:.3f}s (window {window})")
    await asyncio.sleep(delay)
    return delay
