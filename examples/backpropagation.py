"""``AcceptParams.ALL``: tasks written the Hatchet way keep working unchanged.

Code written for plain Hatchet leaves the context unannotated
(``async def task(msg, ctx)``). A client built with
``param_config=AcceptParams.ALL`` hands every such task the run context in its
second parameter, and the task's own signature to an unannotated parameter
named ``signature`` (``None`` when the run did not come from one), with no
per-task decorator. Each task below runs through a signature, and once through
plain Hatchet's ``aio_mock_run``, which has no signature.

    python examples/backpropagation.py
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

import mageflow
from mageflow import AcceptParams
from mageflow.embedded import ensure_redis


class Notification(BaseModel):
    data: str


async def main() -> None:
    async with ensure_redis() as url:
        client = mageflow.Mageflow(
            redis_client=url, backend="local", param_config=AcceptParams.ALL
        )

        @client.task(name="send-notification")
        async def send_notification(msg: Notification, ctx) -> dict[str, Any]:  # type: ignore[no-untyped-def]
            return {"sent": msg.data, "ctx": type(ctx).__name__}

        @client.task(name="audit-notification")
        async def audit(msg: Notification, ctx, signature) -> dict[str, Any]:  # type: ignore[no-untyped-def]
            return {
                "ctx": type(ctx).__name__,
                "signature": signature and signature.task_name,
            }

        for task in (send_notification, audit):
            print(client.explain(task))
            signature = await client.sign(task)
            result = await signature.aio_run(Notification(data="hi"))
            print(f"  via a signature => {result}")
        plain = await audit.aio_mock_run(Notification(data="hi"))
        print(f"audit-notification via plain Hatchet => {plain}")
        await client.redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
