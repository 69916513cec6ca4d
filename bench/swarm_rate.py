"""One swarm workload, timed: the same code for today's mageflow and the current.

    python bench/swarm_rate.py REDIS_URL --sizes 1000 10000 [--cap 50]

prints one JSON line: where ``mageflow`` was imported from, the reply parser
in use, and the seconds each swarm took (wall, and this process's CPU).
bench/workflows.py runs it in a subprocess with ``PYTHONPATH`` pointing at
an export of commit ``34a1223`` (today's code), alternating with the
current code, against one redis-server; it also imports
:class:`SwarmWorkload` to time the workload in its own process. So it must
only use what both versions have: a swarm made from task names,
``aio_run_no_wait``, the local backend's ``drain``.

What is timed is running the swarm (its start, every item, its success
callback, the recovery pass of ``drain``), not creating it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

from pydantic import BaseModel
from redis.asyncio import Redis

import mageflow
from mageflow.dispatch.local import LocalDispatcher

WARM_UP = 2_000
"""Items run before anything is timed: the scripts load, the pool opens its
connections, and the garbage collector reaches its steady state. The first
thousand or so items after start run before the collector's first full pass
over the process's long-lived objects (the imported modules, mostly), so
they look a third cheaper; from then on a pass comes every thousand or so
items, and a swarm of 1,000 has one or none: the rounds' spread shows it."""


class Item(BaseModel):
    result: Any = None
    x: int = 0


class SwarmWorkload:
    """A client with a cheap item task and a success callback that keeps the
    results, so a run can check that every item finished."""

    def __init__(self, redis_client: Redis | str) -> None:
        self.client = mageflow.Mageflow(redis_client=redis_client, backend="local")
        self.done: list[Any] = []
        self.finished = 0
        """Items run so far, counted in-process (for progress, not results)."""

        @self.client.task(name="noop")
        async def noop(msg: Item) -> dict[str, int]:
            self.finished += 1
            return {"x": msg.x}

        @self.client.task(name="collect")
        async def collect(msg: Item) -> None:
            self.done.append(msg.result)

        local = self.client.dispatch_backend
        assert isinstance(local, LocalDispatcher), "made with backend='local'"
        self.local = local
        self.cpu = 0.0
        """This process's CPU seconds during the last :meth:`run`: less
        moved by other processes on the machine than the wall time."""

    @property
    def redis(self) -> Redis:
        return self.client.redis

    async def swarm(self, size: int, cap: int) -> Any:
        """A closed swarm of ``size`` items, not started."""
        return await self.client.swarm(
            ["noop"] * size, max_concurrency=cap, success="collect"
        )

    async def run(self, swarm: Any, size: int) -> float:
        """Run ``swarm`` to its end; the seconds it took."""
        self.local.runs.clear()  # the local backend's log of past runs
        cpu, started = time.process_time(), time.perf_counter()
        await swarm.aio_run_no_wait({})
        await self.local.drain(timeout=3600)
        elapsed = time.perf_counter() - started
        self.cpu = time.process_time() - cpu
        assert self.done, "the swarm did not complete"
        assert len(self.done[-1]) == size, "the swarm lost items"
        return elapsed

    async def timed(self, size: int, cap: int) -> float:
        return await self.run(await self.swarm(size, cap), size)

    async def warm_up(self, cap: int) -> None:
        """See :data:`WARM_UP`."""
        await self.timed(WARM_UP, cap)

    async def aclose(self) -> None:
        await self.client.redis.aclose()


def parser_name(redis: Redis) -> str:
    """The reply parser the client's connections use: ``hiredis``, or the
    pure-Python one (redis-py's default when hiredis is not importable)."""
    from redis._parsers import _AsyncHiredisParser
    from redis.asyncio.connection import DefaultParser
    from redis.utils import HIREDIS_AVAILABLE

    pool: Any = redis.connection_pool
    parser = pool.connection_kwargs.get("parser_class") or DefaultParser
    hiredis = parser is _AsyncHiredisParser and HIREDIS_AVAILABLE
    return "hiredis" if hiredis else "pure Python"


async def main(url: str, sizes: list[int], cap: int) -> dict[str, Any]:
    workload = SwarmWorkload(url)
    await workload.redis.flushdb()
    await workload.warm_up(cap)
    seconds, cpu = {}, {}
    for size in sizes:
        seconds[str(size)] = await workload.timed(size, cap)
        cpu[str(size)] = workload.cpu
    parser = parser_name(workload.redis)
    await workload.aclose()
    return {
        "mageflow": os.path.dirname(os.path.dirname(mageflow.__file__)),
        "parser": parser,
        "seconds": seconds,
        "cpu": cpu,
    }


if __name__ == "__main__":
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("url")
    args.add_argument("--sizes", type=int, nargs="+", default=[1000])
    args.add_argument("--cap", type=int, default=50)
    parsed = args.parse_args()
    print(json.dumps(asyncio.run(main(parsed.url, parsed.sizes, parsed.cap))))
