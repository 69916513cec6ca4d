"""Per-item swarm callbacks: react to each item as it ends.

``item_success`` fires once per item that succeeds, with that item's own
result; ``item_error`` once per item that fails, with its ``TaskError``.
They come on top of the swarm's own callbacks, which get every outcome in
add order and do not wait for them. Each item gets its own copy of each
callback (a signature runs once), so the signature given here is a
template: it is never run itself. Items added later get them too. A chain
as a per-item callback is refused.

    python examples/item_callbacks.py
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

import mageflow
from mageflow import ReturnValue, TaskError
from mageflow.dispatch.local import LocalDispatcher
from mageflow.embedded import ensure_redis


class Row(BaseModel):
    n: int


class Parsed(BaseModel):
    n: int
    value: int


class Store(BaseModel):
    parsed: ReturnValue[Parsed]  # this item's result
    table: str  # bound on the template, copied to every item's callback


class Quarantine(BaseModel):
    failure: ReturnValue[TaskError]  # this item's error


class Collected(BaseModel):
    results: ReturnValue[list[Parsed | TaskError]]


async def main() -> None:
    stored: list[str] = []
    quarantined: list[str] = []
    async with ensure_redis() as url:
        client = mageflow.Mageflow(redis_client=url, backend="local")
        runner = client.dispatch_backend
        assert isinstance(runner, LocalDispatcher)

        @client.task(name="parse-row")
        async def parse_row(msg: Row) -> Parsed:
            if msg.n % 3 == 0:
                raise ValueError(f"bad row {msg.n}")
            return Parsed(n=msg.n, value=msg.n * 10)

        @client.task(name="store-row")
        async def store_row(msg: Store) -> None:
            stored.append(f"{msg.table}:{msg.parsed.n}")

        @client.task(name="quarantine")
        async def quarantine(msg: Quarantine) -> None:
            quarantined.append(msg.failure.message)

        @client.task(name="collect")
        async def collect(msg: Collected) -> None:
            kinds = [type(r).__name__ for r in msg.results]
            print(f"swarm success callback got {len(kinds)} outcomes: {kinds}")

        template = await client.sign(store_row, table="rows")
        swarm = await client.swarm(
            [await client.sign(parse_row, n=n) for n in range(1, 6)],
            max_concurrency=3,
            success=collect,
            item_success=template,  # copied for every item
            item_error="quarantine",
            open=True,
        )
        print(f"stored on the swarm: {[t.task_name for t in swarm.item_success]}")
        await swarm.aio_run_no_wait()
        await swarm.add([await client.sign(parse_row, n=n) for n in (6, 7)])
        await swarm.close()
        await runner.drain()

        print(f"item_success fired for: {sorted(stored)}")
        print(f"item_error fired for: {sorted(quarantined)}")
        later = "rows:7" in stored and "bad row 6" in quarantined
        print(f"items added later got them too: {later}")
        left = await client.load_signature(template.id)
        print(f"the template itself stays {left and left.status.value}")
        final = await client.load_signature(swarm.id)
        print(f"swarm {final and final.status.value}")

        try:
            await client.swarm(
                [parse_row], item_success=await client.chain([parse_row, parse_row])
            )
        except TypeError as exc:
            print(f"a chain as item_success: TypeError: {str(exc).split(';')[0]}")
        await client.redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
