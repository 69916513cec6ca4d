"""A durable task asks for its ``DurableContext`` by annotation.

Durable tasks are for long-running or critical work: on a Hatchet engine
their progress survives a worker restart, and the ``DurableContext`` offers
durable waits (``aio_sleep_for``, ``aio_wait_for``). A mageflow durable task
gets that context because of the parameter's annotation, not its name or
position, and with nothing else to configure. The same annotation on a
regular task is refused when the task is decorated, because a regular run
has no durable context to give.

    python examples/durable_task.py
"""

from __future__ import annotations

import asyncio

from hatchet_sdk import DurableContext
from pydantic import BaseModel

import mageflow
from mageflow.embedded import ensure_redis


class Batch(BaseModel):
    name: str
    rows: int


class Report(BaseModel):
    completed: bool
    context: str
    attempt: int


async def main() -> None:
    async with ensure_redis() as url:
        client = mageflow.Mageflow(redis_client=url, backend="local")

        @client.durable_task(name="critical-process")
        async def critical_process(msg: Batch, run: DurableContext) -> Report:
            await asyncio.sleep(0.1)  # simulated long-running work
            return Report(
                completed=True,
                context=type(run).__name__,
                attempt=run.attempt_number,
            )

        print(client.explain(critical_process))
        signature = await client.sign(critical_process)
        report = await signature.aio_run(Batch(name="nightly", rows=1000))
        print(f"  => {report!r}")

        try:

            @client.task(name="not-durable")
            async def not_durable(msg: Batch, run: DurableContext) -> None:
                pass

        except mageflow.InjectionError as exc:
            print(f"on a regular task: InjectionError: {exc}")
        await client.redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
