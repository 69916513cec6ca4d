"""A 100,000-item swarm at cap 500: does an item cost the same at the end?

    python bench/scale.py                       # 100,000 items, cap 500
    python bench/scale.py --items 10000         # smaller
    python bench/workflows.py --scale           # the same, after the other rows

Against a real redis-server (``REDIS_URL``, or a private one started here).
Prints, for one swarm of cheap items (each returns a small dict), run on
the local backend:

* per tenth of the run: items per second, and what an item cost in CPU, in
  this process (the worker) and in redis-server; whether the last tenth is
  within 1.25x of the first (the per-item cost stays flat). The CPU times
  show a trend the wall time may hide or fake on a busy machine;
* Redis memory per item: ``INFO memory`` ``used_memory`` over what it was
  before the swarm was created, divided by the swarm's size, after creation,
  at about 10 %, 50 % and 90 % done and after completion (and the same for
  ``used_memory_dataset``, the keys without the client buffers, with what
  the keys grew per item finished between samples);
* the worker's memory: this process's ``VmRSS`` (and peak ``VmHWM``) at the
  same points.

The local backend keeps a log of every run it made (``LocalDispatcher.runs``,
for tests to inspect); a Hatchet worker keeps none, so the finished runs are
dropped from it as the swarm goes, and the RSS is the worker's own.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import resource
import time
from dataclasses import dataclass, field
from typing import Any

from swarm_rate import SwarmWorkload

from mageflow.dispatch.local import RunState
from mageflow.embedded import ensure_redis

FLAT = 1.25
"""How far apart the first and last tenth's per-item cost may be."""

SAMPLED = (1, 5, 9)
"""The tenths after which memory is sampled: ~10 %, 50 % and 90 % done."""


def rss_kib() -> tuple[int, int]:
    """This process's resident memory and its peak, in KiB."""
    found: dict[str, int] = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    found[name] = int(value.split()[0])
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return found.get("VmRSS", peak), found.get("VmHWM", peak)


@dataclass(frozen=True)
class Mark:
    """A moment of the run: items finished, and the clocks."""

    done: int
    wall: float
    cpu: float
    """This process's CPU seconds."""
    redis_cpu: float
    """redis-server's CPU seconds (``INFO cpu``)."""


@dataclass(frozen=True)
class Sample:
    label: str
    done: int
    used_memory: int
    """``used_memory`` over its value before the swarm existed."""
    dataset: int
    """``used_memory_dataset`` over its value before: the keys alone, without
    the client buffers (a big command's stays allocated a moment)."""
    clients: int
    lua: int
    """The Lua VM's memory, which ``used_memory`` does not count."""
    rss: int
    peak: int


@dataclass
class Run:
    """What one watched swarm left: a :class:`Mark` at its start and as each
    tenth was reached (the polling may overshoot a tenth a little), and the
    memory samples."""

    items: int
    first: int
    """Items the workload had run before this swarm."""
    marks: list[Mark] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)


async def mark(workload: SwarmWorkload, run: Run) -> None:
    cpu = await workload.redis.info("cpu")
    redis_cpu = float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
    done = workload.finished - run.first
    run.marks.append(Mark(done, time.perf_counter(), time.process_time(), redis_cpu))


async def memory(workload: SwarmWorkload) -> dict[str, int]:
    info = await workload.redis.info("memory")
    return {
        "used": int(info["used_memory"]),
        "dataset": int(info["used_memory_dataset"]),
        "clients": int(info["mem_clients_normal"]),
        "lua": int(info.get("used_memory_vm_eval", info["used_memory_lua"])),
    }


async def settled(workload: SwarmWorkload) -> None:
    """Wait until ``used_memory`` holds still: the server frees a creation's
    input (megabytes in a client buffer, which it may count as data until
    its cron has seen that buffer idle) up to about 2 s after the command."""
    await asyncio.sleep(2.5)
    previous = -1
    for _ in range(20):
        used = (await memory(workload))["used"]
        if abs(used - previous) < used / 1000:
            return
        previous = used
        await asyncio.sleep(0.25)  # the server's cron runs 10 times a second


async def sample(
    workload: SwarmWorkload, run: Run, label: str, base: dict[str, int]
) -> None:
    rss, peak = rss_kib()
    now = await memory(workload)
    run.samples.append(
        Sample(
            label,
            workload.finished - run.first,
            now["used"] - base["used"],
            now["dataset"] - base["dataset"],
            now["clients"],
            now["lua"],
            rss,
            peak,
        )
    )


def drop_finished_runs(workload: SwarmWorkload) -> None:
    """Empty the local backend's log of runs that ended (see the module
    docstring): only the ones in flight stay."""
    runs: list[Any] = workload.local.runs
    runs[:] = [r for r in runs if r.state is RunState.RUNNING]


async def watch(workload: SwarmWorkload, run: Run, base: dict[str, int]) -> None:
    """Mark each tenth of the items finished; sample memory at the tenths in
    :data:`SAMPLED`."""
    tenth = 0
    while tenth < 10:
        while (
            tenth < 10
            and workload.finished - run.first >= run.items * (tenth + 1) // 10
        ):
            await mark(workload, run)
            tenth += 1
            if tenth in SAMPLED:
                await sample(workload, run, f"{tenth * 10}% done", base)
        drop_finished_runs(workload)
        await asyncio.sleep(0.02)  # poll interval: the run goes on meanwhile


async def measure(url: str, items: int, cap: int) -> Run:
    """Create, then run and watch, one swarm of ``items``."""
    workload = SwarmWorkload(url)
    await workload.redis.flushdb()
    await workload.timed(100, cap)  # scripts loaded, connections open
    await workload.redis.flushdb()
    base = await memory(workload)
    run = Run(items, first=workload.finished)
    created = time.perf_counter()
    swarm = await workload.swarm(items, cap)
    print(f"swarm of {items:,} created in {time.perf_counter() - created:.1f} s")
    await settled(workload)
    await sample(workload, run, "created", base)
    await mark(workload, run)
    watcher = asyncio.ensure_future(watch(workload, run, base))
    await swarm.aio_run_no_wait({})
    await workload.local.drain(timeout=3600)
    await watcher
    assert len(workload.done[-1]) == items, "the swarm did not complete"
    await sample(workload, run, "completed", base)
    await workload.aclose()
    return run


def mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"


def apart(values: list[float]) -> float:
    """How far apart the first and last are, as a factor >= 1."""
    return max(values[0], values[-1]) / min(values[0], values[-1])


def report_tenths(run: Run, cap: int) -> bool:
    """Print the per-tenth costs; whether they stayed flat."""
    rates, cpu, redis_cpu = [], [], []
    for start, end in itertools.pairwise(run.marks):
        items = max(end.done - start.done, 1)
        rates.append(items / (end.wall - start.wall))
        cpu.append((end.cpu - start.cpu) / items * 1e6)
        redis_cpu.append((end.redis_cpu - start.redis_cpu) / items * 1e6)
    print(f"\nswarm of {run.items:,} at cap {cap}, by tenth of the items:")
    for label, row in (
        ("items/s", rates),
        ("worker CPU us/item", cpu),
        ("redis CPU us/item", redis_cpu),
    ):
        print(f"{label:<20}" + "".join(f"{value:>7.0f}" for value in row))
    total = run.marks[-1].wall - run.marks[0].wall
    print(f"overall {run.items / total:,.0f} items/s over {total:.1f} s")
    flat = apart(rates) <= FLAT
    print(
        f"first tenth vs last: items/s {apart(rates):.2f}x apart, worker CPU "
        f"{apart(cpu):.2f}x, redis CPU {apart(redis_cpu):.2f}x  "
        f"target: items/s within {FLAT}x  {'met' if flat else 'MISSED'}"
    )
    return flat


def report_memory(run: Run) -> None:
    print(
        f"\n{'memory':<12}{'Redis/item':>11}{'keys/item':>10}"
        f"{'keys/item run':>14}{'clients':>9}{'Lua VM':>9}{'RSS':>9}{'peak':>9}"
    )
    previous: Sample | None = None
    for s in run.samples:
        grew = ""
        if previous is not None and s.done > previous.done:
            added = (s.dataset - previous.dataset) / (s.done - previous.done)
            grew = f"{added:.0f} B"
        print(
            f"{s.label:<12}{s.used_memory / run.items:>9.0f} B"
            f"{s.dataset / run.items:>8.0f} B{grew:>14}{mib(s.clients):>9}"
            f"{mib(s.lua):>9}{mib(s.rss * 1024):>9}{mib(s.peak * 1024):>9}"
        )
        previous = s
    print(
        "Redis/item: used_memory over its value before the swarm, / items; "
        "keys/item: the same for used_memory_dataset (no client buffers); "
        "keys/item run: what the keys grew per item finished since the row "
        "above; clients: the client buffers; Lua VM: the scripts' heap, "
        "outside used_memory; RSS, peak: this process (the worker)."
    )


async def main(url: str, items: int, cap: int) -> bool:
    """Run and print the scale row; whether the per-item cost stayed flat."""
    run = await measure(url, items, cap)
    flat = report_tenths(run, cap)
    report_memory(run)
    return flat


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--cap", type=int, default=500)
    args = parser.parse_args()
    with ensure_redis(probe=None) as redis_url:
        asyncio.run(main(redis_url, args.items, args.cap))
