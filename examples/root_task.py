"""A root task: a fan-out decided at run time, waited for as one task.

The body of ``import-batch`` learns its rows when it runs (here: a count in
its message) and starts one ``import-row`` per row with
``aio_run_no_wait``. Because the task is a root, those starts join the
run's children instead of running on their own: at most 3 run at once, and
the task ends only when its body has returned *and* every child has
finished. Its success callback gets a ``RootResult``: the body's result and
each child's outcome in start order, a failed child as its ``TaskError``.
A start inside ``with mageflow.without_root():`` runs on its own. A second
root, whose children reach ``stop_after_n_failures``, fails as a whole.

    python examples/root_task.py
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

import mageflow
from mageflow import ReturnValue, RootResult, TaskError
from mageflow.dispatch.local import LocalDispatcher
from mageflow.embedded import ensure_redis


class Batch(BaseModel):
    rows: int


class Row(BaseModel):
    n: int


class Imported(BaseModel):
    n: int
    value: int


class Summary(BaseModel):
    started: int


class Report(BaseModel):
    root: ReturnValue[RootResult[Summary]]


class Alert(BaseModel):
    failure: ReturnValue[TaskError]


async def main() -> None:
    running, peak = 0, 0
    started: list[int] = []
    finished: list[int] = []
    body_returned = asyncio.Event()
    async with ensure_redis() as url:
        client = mageflow.Mageflow(redis_client=url, backend="local")
        runner = client.dispatch_backend
        assert isinstance(runner, LocalDispatcher)

        @client.task(name="import-row")
        async def import_row(msg: Row) -> Imported:
            nonlocal running, peak
            started.append(msg.n)
            running += 1
            peak = max(peak, running)
            await body_returned.wait()  # busy until the body is gone
            await asyncio.sleep(0.01)  # simulated work
            running -= 1
            finished.append(msg.n)
            if msg.n == 5:
                raise ValueError(f"bad row {msg.n}")
            return Imported(n=msg.n, value=msg.n * 10)

        @client.task(name="audit")
        async def audit(msg: Batch) -> None:
            print(f"audit ran on its own, for {msg.rows} rows")

        @client.task(name="import-batch")
        @client.root_task(max_concurrency=3)
        async def import_batch(msg: Batch) -> Summary:
            for n in range(msg.rows):  # decided now, not when it was signed
                await (await client.sign(import_row)).aio_run_no_wait({"n": n})
            with mageflow.without_root():  # not a child: not waited for
                await (await client.sign(audit)).aio_run_no_wait(msg)
            print(f"body returned; children finished so far: {len(finished)}")
            body_returned.set()
            return Summary(started=msg.rows)

        @client.task(name="report")
        async def report(msg: Report) -> None:
            got = msg.root
            print(f"success callback got result={got.result!r}")
            shown = [c.get("value", c.get("error_type")) for c in got.children]
            print(f"children in start order: {shown}")

        root = await client.sign(import_batch, success=report)
        result = await root.aio_run(Batch(rows=8))
        print(f"aio_run returned {result!r}, once {len(finished)} of 8 had finished")
        await runner.drain()
        final = await client.load_signature(root.id)
        assert final is not None
        print(f"peak concurrency: {peak} (cap 3)")
        print(f"root {final.status.value}; children: swarm {final.root_swarm_id}")

        @client.task(name="alert")
        async def alert(msg: Alert) -> None:
            print(f"error callback got {msg.failure.error_type}")

        @client.task(name="strict-batch")
        @client.root_task(max_concurrency=1, stop_after_n_failures=1)
        async def strict_batch(msg: Batch) -> Summary:
            for n in (4, 5, 6):  # row 5 fails
                await (await client.sign(import_row)).aio_run_no_wait({"n": n})
            return Summary(started=3)

        started.clear()
        strict = await client.sign(strict_batch, error=alert)
        await strict.aio_run_no_wait(Batch(rows=3))
        await runner.drain()
        failed = await client.load_signature(strict.id)
        assert failed is not None
        assert failed.root_swarm_id is not None
        children = await client.load_signature(failed.root_swarm_id)
        assert children is not None
        print(
            f"strict root {failed.status.value}; children {children.status.value}, "
            f"rows started: {started}"
        )
        await client.redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
