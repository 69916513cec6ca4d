"""Building a worker: ``client.worker(name, workflows=[...])``, as in Hatchet.

In production a worker process declares its tasks, builds a worker with them
and calls ``worker.start()``, which connects to the Hatchet engine. This
program stops short of ``start()`` (there is no engine here): it builds the
worker and shows what it would register. ``client.worker`` is Hatchet's, with
two additions: mageflow's own tasks are appended to ``workflows`` (none yet),
and the lifespan closes mageflow's Redis connection when the worker stops.
Building a worker needs neither Redis nor an engine, and ``workflows=None``
is accepted (a worker with only mageflow's own tasks).

    python examples/worker_setup.py
"""

from __future__ import annotations

import asyncio
from typing import Any

from hatchet_sdk import DurableContext
from pydantic import BaseModel

import mageflow
from mageflow.testing import offline_hatchet

# In production: mageflow.Mageflow(Hatchet(), redis_client="redis://...").
hatchet = mageflow.Mageflow(offline_hatchet())


class YourModelA(BaseModel):
    data: str


@hatchet.task(name="process-data")
async def process_data(msg: YourModelA) -> dict[str, Any]:
    return {"processed": msg.data}


@hatchet.task(name="send-notification")
async def send_notification(msg: YourModelA) -> dict[str, str]:
    return {"status": "sent"}


@hatchet.durable_task(name="critical-process")
async def critical_process(msg: YourModelA, ctx: DurableContext) -> dict[str, bool]:
    await asyncio.sleep(0.01)  # simulated long-running work
    return {"completed": True}


def main() -> None:
    worker = hatchet.worker(
        "my-worker", workflows=[process_data, send_notification, critical_process]
    )
    # worker.start() would register these with the engine and run them.
    # Hatchet keeps the list on the worker; it has no public accessor for it.
    names = [workflow.name for workflow in worker._workflows]
    print(f"worker {worker.name!r} will register: {', '.join(names)}")

    empty = hatchet.worker("empty-worker", workflows=None)
    count = len(empty._workflows)
    print(f"worker {empty.name!r} with workflows=None registers: {count} workflows")


if __name__ == "__main__":
    main()
