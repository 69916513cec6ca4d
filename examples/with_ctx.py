"""``@client.with_ctx``: one task gets the run context on a ``NO_CTX`` client.

Most tasks of a client need only their message, so the client is built with
``AcceptParams.NO_CTX`` (the default). ``with_ctx`` opts a single task in:
its second parameter receives the Hatchet ``Context`` (here to read
``ctx.step_run_id``), while a regular task on the same client gets nothing
but the message. Without ``with_ctx`` an unannotated ``ctx`` is refused when
the task is decorated, not in the middle of a run. (Annotated ``ctx: Context``
gets the context with or without ``with_ctx``: the annotation is enough.)

    python examples/with_ctx.py
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

from hatchet_sdk import Context
from pydantic import BaseModel

import mageflow
from mageflow import AcceptParams
from mageflow.embedded import ensure_redis


class Job(BaseModel):
    data: str


async def main() -> None:
    async with ensure_redis() as url:
        client = mageflow.Mageflow(
            redis_client=url, backend="local", param_config=AcceptParams.NO_CTX
        )

        @client.task(name="context-aware-task")
        @client.with_ctx
        async def context_aware_task(msg: Job, ctx) -> dict[str, Any]:  # type: ignore[no-untyped-def]
            with warnings.catch_warnings():  # Hatchet now calls it task_run_id
                warnings.simplefilter("ignore", DeprecationWarning)
                step_id = ctx.step_run_id
            assert isinstance(ctx, Context)
            return {"step_id": step_id, "is_task_run_id": step_id == ctx.task_run_id}

        @client.task(name="regular-task")
        async def regular_task(msg: Job) -> dict[str, Any]:
            return {"processed": msg.data}

        for task in (context_aware_task, regular_task):
            print(client.explain(task))
            signature = await client.sign(task)
            print(f"  => {await signature.aio_run(Job(data='x'))}")

        try:

            @client.task(name="forgot-with-ctx")
            async def forgot(msg: Job, ctx) -> None:  # type: ignore[no-untyped-def]
                pass

        except mageflow.InjectionError as exc:
            print(f"without with_ctx: InjectionError: {exc}")
        await client.redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
