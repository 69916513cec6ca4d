"""Root tasks and continuations on the local backend: round trips and wall time.

    python bench/dynamic.py                 # 200 children, depth 20, 7 rounds
    python bench/dynamic.py --quick         # 50 children, 3 rounds: a smoke run
    python bench/dynamic.py --children 500 --depth 20 --rounds 9

Everything runs on the local backend (hatchet-sdk's ``aio_mock_run``, a real
``Context``) against a real ``redis-server`` (``REDIS_URL``, or one started
here by mageflow.embedded), in one process. Each row prints its target and
whether it was met:

1. round trips per item, counted on the wire (:mod:`wire`), everything
   mageflow sends included, the drain's recovery pass too: a root task's
   child (signed and started in the body, which joins it to the root's
   swarm), against a plain start of the same task (signed and started on
   its own) and an item of a prebuilt swarm; the start call alone; and a
   root's own run against a plain task's;
2. round trips per continuation: a loop that continues with itself to the
   given depth, against a task that returns at once and a chain of as many
   steps;
3. wall time per item: a root fanning out N children, against a plain
   swarm of N items (its creation timed too) and N plain starts, alternating
   in the same run;
4. wall time per step: the continuation loop against the chain.

The round-trip targets are the tests' exact counts
(tests/test_dynamic_roundtrips.py): a root child costs what a plain start
costs, a root's own run six more than a plain task's, a continuation six
more than a direct return. The wall-time targets are this bench's guards: a
root child within 1.5x of a plain start's time (the same round trips), and a
continuation within the round trips' ratio of a chain step's time (both run
one step after another).

The machine is shared: the speed rows repeat and print their spread; read
them as this run's numbers, not as promises.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel
from redis.asyncio import Redis
from wire import Wire
from workflows import alternate, heading, load, print_machine, spread, verdict

import mageflow
from mageflow.dispatch.local import LocalDispatcher
from mageflow.embedded import ensure_redis

CAP = 50
"""The root's and the swarm's ``max_concurrency``."""


class Item(BaseModel):
    x: int = 0
    n: int = 0
    result: Any = None


class DynamicWorkload:
    """A client with a cheap task, a root task that fans it out, and a task
    that continues with itself; each run checks its own outcome."""

    def __init__(self, redis_client: Redis | str) -> None:
        self.client = client = mageflow.Mageflow(
            redis_client=redis_client, backend="local"
        )
        self.joins: list[Counter[str]] = []
        self.wire: Wire | None = None
        """When set, the root's body counts its first child's start alone."""
        self.drained: Callable[[], None] | None = None
        """Called when a run's drain is over, before its outcome is read."""

        @client.task(name="noop")
        async def noop(msg: Item) -> dict[str, int]:
            return {"x": msg.x}

        @client.task(name="fan-out")
        @client.root_task(max_concurrency=CAP)
        async def fan_out(msg: Item) -> dict[str, int]:
            for i in range(msg.n):
                child = await client.sign(noop)
                if i == 0 and self.wire is not None:
                    self.wire.reset()
                    await child.aio_run_no_wait({"x": i})
                    # Before the child's run can send anything: it is a task
                    # the local backend made, which runs when this body waits.
                    self.joins.append(self.wire.commands)
                else:
                    await child.aio_run_no_wait({"x": i})
            return {"started": msg.n}

        @client.task(name="count-down")
        async def count_down(msg: Item) -> Any:
            if msg.n == 0:
                return {"x": 0}
            return mageflow.Continue(await client.sign(count_down, n=msg.n - 1))

        self.noop, self.fan_out, self.count_down = noop, fan_out, count_down
        local = client.dispatch_backend
        assert isinstance(local, LocalDispatcher), "made with backend='local'"
        self.local = local

    @property
    def redis(self) -> Redis:
        return self.client.redis

    async def _done(self, signature_id: str) -> Any:
        await self.local.drain(timeout=600)
        if self.drained is not None:
            self.drained()
        self.local.runs.clear()  # the local backend's log of past runs
        signature = await self.client.load_signature(signature_id)
        assert signature is not None
        assert signature.status is mageflow.SignatureStatus.DONE, signature.status
        return signature.outcome

    async def root(self, n: int) -> None:
        """A root task whose body signs and starts ``n`` children."""
        root = await self.client.sign(self.fan_out)
        await root.aio_run_no_wait({"n": n})
        outcome = await self._done(root.id)
        assert len(outcome["children"]) == n, "the root lost children"

    async def swarm(self, n: int) -> None:
        """A swarm of ``n`` items, made here and started once."""
        swarm = await self.client.swarm(["noop"] * n, max_concurrency=CAP)
        await swarm.aio_run_no_wait()
        assert len(await self._done(swarm.id)) == n, "the swarm lost items"

    async def plain(self, n: int) -> None:
        """``n`` tasks, each signed and started on its own."""
        ids = []
        for i in range(n):
            signature = await self.client.sign(self.noop)
            await signature.aio_run_no_wait({"x": i})
            ids.append(signature.id)
        await self._done(ids[-1])

    async def loop(self, depth: int) -> None:
        """A task that continues with itself ``depth`` times (0: returns)."""
        first = await self.client.sign(self.count_down)
        await first.aio_run_no_wait({"n": depth})
        assert await self._done(first.id) == {"x": 0}

    async def chain(self, steps: int) -> None:
        chain = await self.client.chain(["noop"] * steps)
        await chain.aio_run_no_wait()
        await self._done(chain.id)

    async def aclose(self) -> None:
        await self.client.redis.aclose()


# --- 1 and 2: round trips -----------------------------------------------------------


async def counted(
    workload: DynamicWorkload, wire: Wire, run: Callable[[int], Awaitable[None]], n: int
) -> Counter[str]:
    """The commands ``run(n)`` sends, to the end of its drain (the check of
    its outcome after that is not counted)."""
    seen: list[Counter[str]] = []
    workload.drained = lambda: seen.append(wire.commands)
    wire.reset()
    try:
        await run(n)
    finally:
        workload.drained = None
    return seen[-1]


def scripts(commands: Counter[str], top: int = 5) -> str:
    return ", ".join(
        f"{name.removeprefix('EVALSHA ')} {n}" for name, n in commands.most_common(top)
    )


async def row_round_trips(url: str, n: int, depth: int) -> dict[str, float]:
    heading(
        f"1. round trips per item, on the wire, all included (cap {CAP}; "
        f"growth: (cost of {n:,} - cost of 1) / {n - 1:,})"
    )
    async with Wire(url) as wire:
        workload = DynamicWorkload(wire.url)
        await workload.redis.flushdb()
        runs: dict[str, Callable[[int], Awaitable[None]]] = {
            "plain start": workload.plain,
            "root child": workload.root,
            "swarm item": workload.swarm,
        }
        for run in runs.values():
            await run(2)  # every script is loaded from here on
        growth: dict[str, float] = {}
        print(f"{'each item is a':<14}{'cost of 1':>10}{f'of {n:,}':>10}{'growth':>8}")
        shown: dict[str, Counter[str]] = {}
        for name, run in runs.items():
            one = await counted(workload, wire, run, 1)
            many = await counted(workload, wire, run, n)
            growth[name] = (many.total() - one.total()) / (n - 1)
            shown[name] = many - one
            print(
                f"{name:<14}{one.total():>10,}{many.total():>10,}{growth[name]:>8.2f}"
            )
        for name, grown in shown.items():
            print(f"  {name:<12} grew by: {scripts(grown, 6)}")
        plain, child = growth["plain start"], growth["root child"]
        print(
            f"root child / plain start: {child / plain:.2f}x the round trips  "
            f"target 1.00x (a join costs what a start's owed mark does)  "
            f"{verdict(child == plain)}"
        )
        print(
            f"root child / swarm item: {child / growth['swarm item']:.2f}x  (a "
            "swarm's items are all made in one round trip and added in one more; "
            "a root's children are signed and joined one by one)"
        )
        workload.wire = wire
        workload.joins.clear()
        await workload.root(1)
        joined = workload.joins[-1]
        workload.wire = None
        signature = await workload.client.sign(workload.noop)
        wire.reset()
        await signature.aio_run_no_wait({"x": 0})
        start = wire.commands
        await workload.local.drain()
        plain_run = await counted(workload, wire, workload.loop, 0)
        root_run = await counted(workload, wire, workload.root, 0)
        extra = root_run - plain_run
        print(
            f"a root's own run, no children: {root_run.total()} round trips, a "
            f"plain task's {plain_run.total()}: +{extra.total()} ({scripts(extra, 6)})"
            f"  target +6 (the tests' count)  {verdict(extra.total() == 6)}"
        )
        print(
            f"the start call alone: in a root {joined.total()} ({scripts(joined)}), "
            f"plain {start.total()} ({scripts(start)})  target equal  "
            f"{verdict(joined.total() == start.total())}"
        )

        heading(
            f"2. round trips per continuation (a loop to depth {depth}) vs a "
            f"direct return, and a chain of {depth} steps"
        )
        await workload.loop(1)
        await workload.chain(2)
        direct = await counted(workload, wire, workload.loop, 0)
        deep = await counted(workload, wire, workload.loop, depth)
        chain_two = await counted(workload, wire, workload.chain, 2)
        chain = await counted(workload, wire, workload.chain, depth)
        per_round = (deep.total() - direct.total()) / depth
        per_step = (chain.total() - chain_two.total()) / (depth - 2)
        print(f"{'run':<34}{'round trips':>12}  by script")
        print(f"{'a task that returns':<34}{direct.total():>12}  {scripts(direct)}")
        print(f"{f'a loop of {depth} continuations':<34}{deep.total():>12}")
        print(
            f"{'  per continuation':<34}{per_round:>12.2f}  {scripts(deep - direct, 6)}"
        )
        print(f"{f'a chain of {depth} steps':<34}{chain.total():>12}")
        print(f"{'  per step':<34}{per_step:>12.2f}  {scripts(chain - chain_two)}")
        print(
            f"continuation / chain step: {per_round / per_step:.2f}x the round "
            f"trips; per continuation target 6 (the tests' count)  "
            f"{verdict(per_round == 6)}"
        )
        await workload.aclose()
    return {
        "root child": child,
        "swarm item": growth["swarm item"],
        "continuation / step": per_round / per_step,
    }


# --- 3 and 4: wall time -------------------------------------------------------------


async def row_fan_out(url: str, n: int, rounds: int, trips: dict[str, float]) -> None:
    heading(
        f"3. wall time per item: a root fanning out {n:,} children vs a swarm of "
        f"{n:,} items vs {n:,} plain starts (cap {CAP}), {rounds} rounds, alternating"
    )
    workload = DynamicWorkload(url)
    await workload.redis.flushdb()
    loop = asyncio.get_running_loop()

    def timed(run: Callable[[int], Awaitable[None]]) -> Callable[[], Awaitable[float]]:
        async def once() -> float:
            started = loop.time()
            await run(n)
            return loop.time() - started

        return once

    runs = {
        "root": timed(workload.root),
        "swarm": timed(workload.swarm),
        "plain starts": timed(workload.plain),
    }
    await alternate(2, *runs.values())  # warm: scripts, pool, collector
    seconds = dict(zip(runs, await alternate(rounds, *runs.values()), strict=True))
    print(f"{'work':<14}{'per item':<28}whole run")
    for name, each in seconds.items():
        per_item = [s / n * 1e6 for s in each]
        print(f"{name:<14}{spread(per_item, ' us'):<28}{spread(each, ' s', 3)}")
    root, swarm = (statistics.median(seconds[k]) for k in ("root", "swarm"))
    plain = statistics.median(seconds["plain starts"])
    per_round = [r / s for r, s in zip(seconds["root"], seconds["swarm"], strict=True)]
    ratio = trips["root child"] / trips["swarm item"]
    print(
        f"root / swarm: {root / swarm:.2f}x the time per item (rounds "
        f"{min(per_round):.2f}-{max(per_round):.2f}), for {ratio:.2f}x the round "
        "trips, two of them (sign, join) one after the other in the body  no target"
    )
    per_plain = [
        r / p for r, p in zip(seconds["root"], seconds["plain starts"], strict=True)
    ]
    print(
        f"root / plain starts: {root / plain:.2f}x the time per item (rounds "
        f"{min(per_plain):.2f}-{max(per_plain):.2f}), for the same round trips  "
        f"target <= 1.5x  {verdict(root / plain <= 1.5)}"
    )
    print(
        "each whole run: made, started, every item run, settled, and the "
        "drain's recovery pass; the swarm's creation is timed too, as the root "
        "signs its children in its body."
    )
    await workload.aclose()


async def row_depth(url: str, depth: int, rounds: int, trips_ratio: float) -> None:
    heading(
        f"4. wall time per step: a loop of {depth} continuations vs a chain of "
        f"{depth} steps, {rounds * 3} rounds, alternating"
    )
    workload = DynamicWorkload(url)
    await workload.redis.flushdb()
    loop = asyncio.get_running_loop()

    async def looped() -> float:
        started = loop.time()
        await workload.loop(depth)
        return loop.time() - started

    async def chained() -> float:
        started = loop.time()
        await workload.chain(depth)
        return loop.time() - started

    await alternate(3, looped, chained)
    loops, chains = await alternate(rounds * 3, looped, chained)
    print(f"{'work':<22}{'per step':<28}whole run")
    for name, each in (
        (f"{depth} continuations", loops),
        (f"chain of {depth}", chains),
    ):
        per_step = [s / depth * 1e6 for s in each]
        print(f"{name:<22}{spread(per_step, ' us'):<28}{spread(in_ms(each), ' ms', 1)}")
    ratio = statistics.median(loops) / statistics.median(chains)
    per_round = [a / b for a, b in zip(loops, chains, strict=True)]
    print(
        f"continuations / chain: {ratio:.2f}x the time per step (rounds "
        f"{min(per_round):.2f}-{max(per_round):.2f}), for {trips_ratio:.2f}x the "
        f"round trips  target <= {trips_ratio:.2f}x  {verdict(ratio <= trips_ratio)}"
    )
    print(
        "each continuation is a sign, a handover and a run, and its outcome is "
        "relayed back up level by level when the last one returns; a chain's "
        "steps were all made in one round trip, and each step's finish starts "
        "the next."
    )
    await workload.aclose()


def in_ms(values: list[float]) -> list[float]:
    return [v * 1e3 for v in values]


async def main(args: argparse.Namespace) -> None:
    n = args.children or (50 if args.quick else 200)
    rounds = args.rounds or (3 if args.quick else 7)
    with ensure_redis(probe=None) as url:  # REDIS_URL, else a private server
        probe = DynamicWorkload(url)
        await print_machine(probe.redis)
        await probe.aclose()
        trips = await row_round_trips(url, n, args.depth)
        await row_fan_out(url, n, rounds, trips)
        await row_depth(url, args.depth, rounds, trips["continuation / step"])
    print(f"\n{load()} at the end")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 children, 3 rounds")
    parser.add_argument("--children", type=int, default=0, help="root's children")
    parser.add_argument("--depth", type=int, default=20, help="continuation depth")
    parser.add_argument("--rounds", type=int, default=0, help="rounds of rows 3-4")
    asyncio.run(main(parser.parse_args()))
