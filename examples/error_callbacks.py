"""An error callback receives a ``TaskError`` after the last retry.

The task fails every time. With ``retries=2`` it gets three attempts; the
earlier failures fire nothing, and only the final one runs the error
callback, once. The callback's input marks a field
``ReturnValue[TaskError]``, so it receives the failure as a validated
``mageflow.TaskError`` (the exception crosses processes as JSON, never as an
object): its type, message, task, signature and the input the run was given.

    python examples/error_callbacks.py
"""

from __future__ import annotations

import asyncio

from hatchet_sdk import Context
from pydantic import BaseModel

import mageflow
from mageflow import ReturnValue, TaskError
from mageflow.dispatch.local import LocalDispatcher
from mageflow.embedded import ensure_redis


class Order(BaseModel):
    item: str
    quantity: int


class Alert(BaseModel):
    failure: ReturnValue[TaskError]
    channel: str


async def main() -> None:
    async with ensure_redis() as url:
        client = mageflow.Mageflow(redis_client=url, backend="local")
        runner = client.dispatch_backend
        assert isinstance(runner, LocalDispatcher)

        @client.task(name="reserve-stock", retries=2)
        async def reserve_stock(msg: Order, ctx: Context) -> dict[str, int]:
            print(f"attempt {ctx.attempt_number} of {ctx.max_attempts}: failing")
            raise ValueError(f"out of {msg.item}")

        @client.task(name="page-someone")
        async def page_someone(msg: Alert) -> None:
            failure = msg.failure
            print(f"error callback via {msg.channel} got a {type(failure).__name__}:")
            print(f"  {failure.model_dump_json()}")

        on_error = await client.sign(page_someone, channel="sms")
        signature = await client.sign(reserve_stock, error=on_error)
        await signature.aio_run_no_wait(Order(item="tea", quantity=4))
        await runner.drain()

        (run,) = [r for r in runner.runs if r.task_name == "reserve-stock"]
        print(f"reserve-stock: {run.state.value} after {run.attempts} attempts")
        callbacks = [r for r in runner.runs if r.task_name == "page-someone"]
        print(f"error callback ran {len(callbacks)} time(s)")
        final = await client.load_signature(signature.id)
        assert final is not None
        print(f"signature status: {final.status.value}")
        await client.redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
