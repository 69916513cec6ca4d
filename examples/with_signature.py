"""``@client.with_signature``: a task receives the stored signature it runs from.

A signature is a stored call of a task: its name, bound kwargs, your own
``task_identifiers``, callbacks and status. A task can ask for it to know
who it is (here: its task name and identifiers). ``with_signature`` fills
the parameter named ``signature``; stacked with ``with_ctx`` the task gets
the run context too. (Here, as in the seed, the parameters are annotated, so
the annotation alone would do; the decorators matter for unannotated ones.)
Both tasks run through a signature (``client.sign`` then ``aio_run``), which
is what puts one in their hands.

    python examples/with_signature.py
"""

from __future__ import annotations

import asyncio
from typing import Any

from hatchet_sdk import Context
from pydantic import BaseModel

import mageflow
from mageflow import TaskSignature
from mageflow.embedded import ensure_redis


class Job(BaseModel):
    data: str


async def main() -> None:
    async with ensure_redis() as url:
        client = mageflow.Mageflow(redis_client=url, backend="local")

        @client.task(name="self-aware-task")
        @client.with_signature
        async def self_aware_task(msg: Job, signature: TaskSignature) -> dict[str, Any]:
            print(
                f"  running task: {signature.task_name} "
                f"with identifiers: {signature.task_identifiers}"
            )
            return {"task_name": signature.task_name, "signature_id": signature.id}

        @client.task(name="full-access-task")
        @client.with_ctx
        @client.with_signature
        async def full_access_task(
            msg: Job, ctx: Context, signature: TaskSignature
        ) -> dict[str, Any]:
            return {
                "context": type(ctx).__name__,
                "task_name": signature.task_name,
                "task_identifiers": signature.task_identifiers,
            }

        for task in (self_aware_task, full_access_task):
            signature = await client.sign(
                task, task_identifiers={"tenant": "acme", "order": 17}
            )
            result = await signature.aio_run(Job(data="x"))
            print(f"{task.name} => {result}")
            if "signature_id" in result:
                same = result["signature_id"] == signature.id
                print(f"  injected the signature it ran from: {same}")
        await client.redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
