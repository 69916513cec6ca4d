"""Swarms and chains through the in-process path: round trips and throughput.

    python bench/workflows.py            # swarms of 10, 1,000, 10,000; chain of 100
    python bench/workflows.py --quick    # swarms of 10 and 1,000; chain of 20

Every run goes through the local backend (hatchet-sdk's ``aio_mock_run``, a
real ``Context``) against a real ``redis-server`` (``REDIS_URL``, or one
started here by mageflow.embedded). Round trips are counted at the Redis client's
socket writes (a pipeline is one), so "round trips per item" is exact, not
sampled. The table shows how the cost grows with the swarm: per-item round
trips must stay flat, and throughput should too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from collections import Counter
from typing import Any

from pydantic import BaseModel
from redis.asyncio.connection import AbstractConnection

import mageflow
from mageflow.dispatch.local import LocalDispatcher
from mageflow.embedded import ensure_redis
from mageflow.store.signatures import SignatureStore


class Item(BaseModel):
    result: Any = None
    x: int = 0


class RoundTrips:
    """Counts socket writes of every Redis connection in the process."""

    def __init__(self) -> None:
        self.count = 0
        real = AbstractConnection.send_packed_command
        counter = self

        async def counting(self: Any, command: Any, check_health: bool = True) -> None:
            counter.count += 1
            await real(self, command, check_health)

        AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]


class ByOperation:
    """Counts the store's calls by script (and plain reads), to show where
    the round trips go, and what the debts and leases cost among them."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        real_call, real_read = SignatureStore._call, SignatureStore._read
        counter = self

        async def call(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
            counter.calls[name] += 1
            return await real_call(self, name, *args, **kwargs)

        async def read(self: Any, *args: Any, **kwargs: Any) -> Any:
            counter.calls["(read)"] += 1
            return await real_read(self, *args, **kwargs)

        SignatureStore._call = call  # type: ignore[method-assign]
        SignatureStore._read = read  # type: ignore[method-assign]


CARRIES = {
    "ACTIVATE": "claims the item; clears its owed start; takes its lease",
    "FINISH": "records the outcome; owes its completion (its lease stays)",
    "SWARM_ITEM_DONE": "frees the slot; starts the next item, owing its start",
    "MARK_SENT": "clears the owed completion; drops the lease",
    "RENEW": "renews every lease this process holds, every 5 s",
    "CLAIM": "recovery: takes overdue debts (drain runs a pass when idle)",
    "(read)": "plain reads: the swarm record, results, expired leases",
    "MARK_DUE": "a start you ask for is owed before it is sent (once)",
    "SWARM_START": "activates the swarm; starts and owes its first items (once)",
}


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


async def main(quick: bool) -> None:
    trips = RoundTrips()
    with ensure_redis(probe=None) as url:  # REDIS_URL, else a private server
        client = mageflow.Mageflow(redis_client=url, backend="local")
        await client.redis.flushdb()
        server = (await client.redis.info("server"))["redis_version"]
        done: list[Any] = []

        @client.task(name="noop")
        async def noop(msg: Item) -> dict[str, int]:
            return {"x": msg.x}

        @client.task(name="collect")
        async def collect(msg: Item) -> None:
            done.append(msg.result)

        local = client.dispatch_backend
        assert isinstance(local, LocalDispatcher)
        print(f"machine: {machine()}; redis-server {server}")
        print()
        print(
            f"{'workload':<22}{'items':>8}{'round trips/item':>18}{'items/s':>10}"
            f"{'redis busy':>12}"
        )
        print("-" * 70)

        async def redis_cpu() -> float:
            cpu = await client.redis.info("cpu")
            return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])

        sizes = (10, 1_000) if quick else (10, 1_000, 10_000)
        for size in sizes:
            swarm = await client.swarm(max_concurrency=50, success="collect")
            await swarm.add([await client.sign("noop", x=i) for i in range(size)])
            await swarm.close()
            local.runs.clear()
            cpu_before = await redis_cpu()
            trips.count = 0
            started = time.perf_counter()
            await swarm.aio_run_no_wait({})
            await local.drain(timeout=600)
            elapsed = time.perf_counter() - started
            count = trips.count
            busy = (await redis_cpu() - cpu_before) / elapsed
            assert len(done[-1]) == size, "the swarm did not complete"
            print(
                f"{'swarm, cap 50':<22}{size:>8}{count / size:>18.2f}"
                f"{size / elapsed:>10.0f}{busy:>11.0%}"
            )
        steps = 20 if quick else 100
        chain = await client.chain(["noop"] * steps, success="collect")
        cpu_before = await redis_cpu()
        trips.count = 0
        started = time.perf_counter()
        await chain.aio_run_no_wait({"x": 1})
        await local.drain(timeout=600)
        elapsed = time.perf_counter() - started
        count = trips.count
        busy = (await redis_cpu() - cpu_before) / elapsed
        print(
            f"{'chain':<22}{steps:>8}{count / steps:>18.2f}"
            f"{steps / elapsed:>10.0f}{busy:>11.0%}"
        )
        print()
        print(
            "round trips/item includes the swarm's start and its success "
            "callback, which amortize; 'redis busy' is redis-server CPU time "
            "over wall time: the rest is Python (the in-process runner)."
        )

        # Where the round trips of one swarm go, by operation.
        size = 1_000
        swarm = await client.swarm(max_concurrency=50, success="collect")
        await swarm.add([await client.sign("noop", x=i) for i in range(size)])
        await swarm.close()
        ops = ByOperation()
        await swarm.aio_run_no_wait({})
        await local.drain(timeout=600)
        print()
        print(f"where the round trips of a swarm of {size:,} go:")
        print(f"{'operation':<18}{'calls':>7}{'per item':>10}  what it carries")
        print("-" * 90)
        for name, calls in ops.calls.most_common():
            print(f"{name:<18}{calls:>7}{calls / size:>10.3f}  {CARRIES.get(name, '')}")
        debt_scripts = {"RENEW", "CLAIM", "MARK_DUE", "TAKE_OVER", "RELEASE"}
        extra = sum(n for name, n in ops.calls.items() if name in debt_scripts)
        print(
            f"debts and leases: {extra / size:.3f} extra round trips per item "
            "(they ride in the four scripts every item already runs; the "
            "extras are recovery's passes and lease renewals, per process)."
        )
        await client.redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    asyncio.run(main(parser.parse_args().quick))
