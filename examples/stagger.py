"""``stagger_execution``: spread the starts of tasks that contend for a resource.

Tasks that all grab one exclusive resource (a lock, a rate-limited API) tend
to start together and then wait on each other. ``stagger_execution`` delays
each run by a random time in ``[0, wait_delta]`` before the function starts,
and extends the run's timeout by that delay first. Eight runs start at once
here; each measures how long after its dispatch its body began. Every delay
falls inside the 300 ms window, and the starts are spread over it.

    python examples/stagger.py
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from pydantic import BaseModel

import mageflow
from mageflow.embedded import ensure_redis

WINDOW = timedelta(milliseconds=300)


class Grab(BaseModel):
    dispatched_at: float  # time.perf_counter() when the run was dispatched


async def main() -> None:
    async with ensure_redis() as url:
        client = mageflow.Mageflow(redis_client=url, backend="local")

        @client.task(name="grab-lock")
        @client.stagger_execution(wait_delta=WINDOW)
        async def grab_lock(msg: Grab) -> dict[str, float]:
            return {"delay": time.perf_counter() - msg.dispatched_at}

        # One run first, so connection set-up is not counted as staggering.
        await (await client.sign(grab_lock)).aio_run(Grab(dispatched_at=0))
        signatures = [await client.sign(grab_lock) for _ in range(8)]
        results = await asyncio.gather(
            *(
                sig.aio_run(Grab(dispatched_at=time.perf_counter()))
                for sig in signatures
            )
        )
        delays = sorted(r["delay"] for r in results)
        window = WINDOW.total_seconds()
        print("delays (ms):", " ".join(f"{d * 1000:.0f}" for d in delays))
        # Each measure includes the dispatch itself: allow it a little slack.
        inside = all(0 <= d <= window + 0.1 for d in delays)
        print(f"all delays within the {window * 1000:.0f} ms window: {inside}")
        print(f"spread of the starts: {(delays[-1] - delays[0]) * 1000:.0f} ms")
        await client.redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
