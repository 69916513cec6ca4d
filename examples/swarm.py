"""A swarm: 20 items in parallel, at most 4 at a time, results in add order.

Each item sleeps a random time, so they finish out of order; the swarm's
success callback still gets the results in the order the items were added.
Two items are added while the swarm already runs, then the swarm is closed:
it completes once it is closed and every item has finished. The items count
how many of them run at once, to show the cap holds.

    python examples/swarm.py
"""

from __future__ import annotations

import asyncio
import random

from pydantic import BaseModel

import mageflow
from mageflow import ReturnValue
from mageflow.dispatch.local import LocalDispatcher
from mageflow.embedded import ensure_redis


class Square(BaseModel):
    n: int  # bound per item
    offset: int  # the swarm's message, merged into every item


class Squared(BaseModel):
    n: int
    value: int


class Collected(BaseModel):
    results: ReturnValue[list[Squared]]


async def main() -> None:
    rng = random.Random(3)
    running, peak, finish_order = 0, 0, list[int]()
    first_done = asyncio.Event()
    async with ensure_redis() as url:
        client = mageflow.Mageflow(redis_client=url, backend="local")
        runner = client.dispatch_backend
        assert isinstance(runner, LocalDispatcher)

        @client.task(name="square")
        async def square(msg: Square) -> Squared:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(rng.uniform(0.01, 0.08))  # simulated work
            running -= 1
            finish_order.append(msg.n)
            first_done.set()
            return Squared(n=msg.n, value=msg.n * msg.n + msg.offset)

        @client.task(name="collect")
        async def collect(msg: Collected) -> None:
            print(f"success callback got: {[r.value for r in msg.results]}")
            in_order = [r.n for r in msg.results] == list(range(20))
            print(f"results in add order: {in_order}")

        swarm = await client.swarm(
            [await client.sign(square, n=n) for n in range(18)],
            max_concurrency=4,
            success=collect,
            open=True,  # more items are added below, then close()
        )
        await swarm.aio_run_no_wait({"offset": 1000})
        await first_done.wait()  # the swarm is now running
        live = await client.load_signature(swarm.id)
        await swarm.add([await client.sign(square, n=n) for n in (18, 19)])
        print(f"added 2 items while the swarm was {live and live.status.value}")
        await swarm.close()
        await runner.drain()

        final = await client.load_signature(swarm.id)
        print(f"finished in this order: {finish_order}")
        print(f"peak concurrency: {peak} (cap 4)")
        print(f"swarm {final and final.status.value}")
        await client.redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
