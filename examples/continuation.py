"""Continuations: a task hands its outcome over to work it picks at run time.

``route`` looks at the parcel and returns ``mageflow.Continue(signature)``
of one of two carriers: a branch. The carrier runs in its place, and its
result is ``route``'s, so the next step of the chain waits for it and gets
it. ``collatz`` returns a signature of itself with new input until it
reaches 1: a loop, one stored round per step. The guard,
``client.max_continuations``, ends a loop that goes too deep: the task
fails with a ``ContinuationError``.

    python examples/continuation.py
"""

from __future__ import annotations

import asyncio
from collections import Counter

from pydantic import BaseModel

import mageflow
from mageflow import ReturnValue, TaskError
from mageflow.dispatch.local import LocalDispatcher
from mageflow.embedded import ensure_redis


class Parcel(BaseModel):
    weight: int


class Shipped(BaseModel):
    carrier: str
    weight: int


class Label(BaseModel):
    shipped: ReturnValue[Shipped]  # the previous step's result


class Walk(BaseModel):
    n: int
    steps: int = 0


class Walked(BaseModel):
    steps: int


class Alert(BaseModel):
    failure: ReturnValue[TaskError]


async def main() -> None:
    rounds: Counter[int] = Counter()
    async with ensure_redis() as url:
        client = mageflow.Mageflow(redis_client=url, backend="local")
        runner = client.dispatch_backend
        assert isinstance(runner, LocalDispatcher)

        @client.task(name="ship-courier")
        async def ship_courier(msg: Parcel) -> Shipped:
            return Shipped(carrier="courier", weight=msg.weight)

        @client.task(name="ship-freight")
        async def ship_freight(msg: Parcel) -> Shipped:
            return Shipped(carrier="freight", weight=msg.weight)

        @client.task(name="route")
        async def route(msg: Parcel) -> mageflow.Continue[Shipped]:
            carrier = ship_freight if msg.weight > 20 else ship_courier
            return mageflow.Continue(await client.sign(carrier, weight=msg.weight))

        @client.task(name="print-label")
        async def print_label(msg: Label) -> dict[str, str]:
            print(f"next step got {msg.shipped!r}")
            return {"label": f"{msg.shipped.carrier}, {msg.shipped.weight} kg"}

        step = await client.sign(route, weight=30)
        chain = await client.chain([step, print_label])
        print(f"chain returned {await chain.aio_run()!r}")
        routed = await client.load_signature(step.id)
        assert routed is not None
        assert routed.continuation_id is not None
        work = await client.load_signature(routed.continuation_id)
        print(f"route {routed.status.value}, continued by {work and work.task_name}")

        @client.task(name="collatz")
        async def collatz(msg: Walk) -> Walked | mageflow.Continue[Walked]:
            rounds[msg.n] += 1
            if msg.n == 1:
                return Walked(steps=msg.steps)
            n = msg.n // 2 if msg.n % 2 == 0 else 3 * msg.n + 1
            return mageflow.Continue(
                await client.sign(collatz, n=n, steps=msg.steps + 1)
            )

        walked = await (await client.sign(collatz, n=7)).aio_run()
        print(f"collatz(7) reached 1 in {walked.steps} continuations: {walked!r}")
        print(f"each round ran once: {set(rounds.values()) == {1}}")

        @client.task(name="alert")
        async def alert(msg: Alert) -> None:
            print(f"error callback got kind={msg.failure.kind!r}")

        client.max_continuations = 10  # the default is 100
        rounds.clear()
        too_deep = await client.sign(collatz, n=27, error=alert)  # 111 steps
        try:
            await too_deep.aio_run()
        except mageflow.SignatureFailedError as exc:
            error = exc.error
            assert error is not None
            why = error.message.split("cannot continue: this would be ")[1]
            print(f"collatz(27) failed with {error.error_type}: {why.split(' (')[0]}")
        await runner.drain()
        print(f"rounds of collatz(27) run: {sum(rounds.values())}")
        await client.redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
