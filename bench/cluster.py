"""1 node vs 3 masters, same run: commands per item, items per second, spread.

    python bench/cluster.py              # swarms of 1,000 and 10,000; 3 rounds
    python bench/cluster.py --quick      # a swarm of 200, small rounds: a smoke run
    python bench/cluster.py --rounds 5   # more rounds of row 2
    python bench/cluster.py --swarms 16 --items 250 --cap 10   # row 2's work

Everything runs on the local backend (hatchet-sdk's ``aio_mock_run``, a
real ``Context``) against two deployments this bench starts itself with
mageflow.embedded and stops at the end (``REDIS_URL`` and
``REDIS_CLUSTER_URL`` are ignored: it flushes what it uses): one
``redis-server`` and a real Redis Cluster of three masters, no replicas,
both on loopback TCP (not the Unix socket a private single server gets by
default, which would favour it). The same workload
(:class:`swarm_rate.SwarmWorkload`'s ``noop`` items and ``collect`` success
callback) runs on both:

1. round trips and commands per swarm item, single vs cluster, counted the
   same way on both, for the swarm's creation and for its run (to the end
   of the drain, its recovery pass included): ``INFO commandstats`` summed
   over the masters before and after (``EVALSHA`` apart; on Redis 7 it
   also counts the commands scripts run, so its total is the servers' work,
   not round trips), and the round trips on the wire, counted by a
   :class:`wire.Wire` proxy in front of every master (the cluster client
   reaches them through redis-py's ``address_remap``). Target: the
   cluster's counts per item equal the single server's; when they differ,
   what differs is shown, and the count again without the lease renewals
   (one per process every 5 s: a slower run sends more);
2. items per second with two worker processes (this file, ``--worker``),
   each making and starting ``--swarms`` swarms of ``--items`` items one
   after the other and draining, single and cluster alternating, several
   rounds; with the worker CPU, the Redis CPU and the commands per item of
   the same runs. No target: on a 2-core machine the three masters and the
   two workers share the cores, so no scaling can show;
3. the spread over the masters after row 2's runs (before any flush):
   each master's ``DBSIZE``, ``INFO keyspace`` keys and commands of the
   timed runs, as shares; keys per shard. Target: the largest share of
   keys under 1.5x the smallest.

A missed target is reported, not an error: the exit status is nonzero only
when something fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from swarm_rate import SwarmWorkload
from wire import Wire
from workflows import heading, load, print_machine, spread, verdict

from mageflow.embedded import EmbeddedRedis, ensure_cluster
from mageflow.store import keys
from mageflow.store import scripts as store_scripts
from mageflow.store.connection import CLUSTER_MAX_CONNECTIONS_PER_NODE, close_client

CAP = 50
"""Row 1's swarm's ``max_concurrency`` (bench/workflows.py's)."""

WORKERS = 2
"""Row 2's worker processes."""

SCRIPT = Path(__file__).resolve()
"""This file: what a worker process runs, with ``--worker``."""

WARM_SWARMS = keys.SHARDS
"""Swarms each client runs before anything is counted or timed: one per
shard, so every master has run every script, the cluster client knows the
slots, and the pools have connections to every node. As many as there are
shards, so the shard a client signs in next is where it was."""

WARM_ITEMS = 20

SETUP = frozenset(
    {
        "hello",
        "auth",
        "select",
        "ping",
        "readonly",
        "command",
        "command|docs",
        "command|info",
        "cluster|slots",
        "cluster|shards",
        "cluster|nodes",
    }
)
"""What a client sends to open a connection or learn the cluster's slots
(``client|...`` too): counted apart, as :mod:`wire` leaves handshakes out."""

OWN = frozenset({"info", "dbsize", "cluster|countkeysinslot", "flushdb"})
"""What this bench sends itself to read the servers: never counted."""


def cores_note() -> str:
    return (
        f"{os.cpu_count()} cores: the three masters, the single "
        "server and the two workers all share them, so items/s cannot show a "
        "cluster's scaling (it can only cost a little: more processes, no more "
        "cores). The figures that matter here are the per-item costs "
        "(commands, CPU) and the spread over the masters."
    )


# --- reading the servers ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """One server's counters at one moment."""

    calls: Counter[str]
    """``INFO commandstats``: calls per command (``evalsha``, ``client|setinfo``)."""
    cpu: float
    """``INFO cpu``: the server's own CPU seconds, system and user."""


class Servers:
    """Plain clients of every master of one deployment (one for a single
    server), for ``INFO`` and ``DBSIZE``: never through the cluster client
    or the counting proxy, so reading them changes nothing that is counted
    but their own ``INFO`` calls, which are left out."""

    def __init__(self, name: str, nodes: Sequence[tuple[str, int]]) -> None:
        self.name = name
        self.nodes = list(nodes)
        self.clients = [Redis(host=h, port=p, decode_responses=True) for h, p in nodes]

    @property
    def labels(self) -> list[str]:
        return [f":{port}" for _, port in self.nodes]

    async def snap(self) -> list[Snapshot]:
        return list(await asyncio.gather(*(_snapshot(c) for c in self.clients)))

    async def load_scripts(self) -> None:
        """Every mageflow script on every master, as a deployment that has
        run for a while has them: else the first call of each script on
        each master costs a ``NOSCRIPT`` reply and a ``SCRIPT LOAD`` (the
        lease renewal's only once a run lasts 5 s)."""
        for client in self.clients:
            for source in store_script_sources().values():
                await client.script_load(source)

    async def flush(self) -> None:
        await asyncio.gather(*(c.flushdb() for c in self.clients))

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


async def _snapshot(client: Redis) -> Snapshot:
    stats = await client.info("commandstats")
    cpu = await client.info("cpu")
    calls = Counter(
        {
            name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in stats.items()
        }
    )
    return Snapshot(calls, float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]))


def calls_between(before: Snapshot, after: Snapshot) -> Counter[str]:
    """Calls per command from ``before`` to ``after``, this bench's own left out."""
    grown = after.calls - before.calls
    return Counter({k: v for k, v in grown.items() if k not in OWN})


def summed(before: Sequence[Snapshot], after: Sequence[Snapshot]) -> Counter[str]:
    """Calls per command over every node."""
    total: Counter[str] = Counter()
    for b, a in zip(before, after, strict=True):
        total += calls_between(b, a)
    return total


def is_setup(command: str) -> bool:
    return command in SETUP or command.startswith("client|")


def work(commands: Counter[str]) -> int:
    """The commands that do mageflow's work: all but the connections' setup."""
    return sum(n for name, n in commands.items() if not is_setup(name))


def setup(commands: Counter[str]) -> int:
    return sum(n for name, n in commands.items() if is_setup(name))


def scripts(commands: Counter[str]) -> int:
    """Script calls: ``EVALSHA`` (and ``EVAL``, should one be sent)."""
    return sum(commands[k] for k in ("evalsha", "evalsha_ro", "eval", "eval_ro"))


def cpu_between(before: Sequence[Snapshot], after: Sequence[Snapshot]) -> float:
    return sum(a.cpu - b.cpu for b, a in zip(before, after, strict=True))


# --- the workload -------------------------------------------------------------------


async def run_swarms(workload: SwarmWorkload, swarms: int, size: int, cap: int) -> int:
    """Make and start ``swarms`` swarms of ``size``, one after the other
    (a client moves to the next shard when it starts a workflow, so each
    swarm is made in its own shard: made all first, they would all share
    one), then drain; the items run."""
    workload.local.runs.clear()  # the local backend's log of past runs
    workload.done.clear()
    for _ in range(swarms):
        swarm = await workload.swarm(size, cap)
        await swarm.aio_run_no_wait({})
    await workload.local.drain(timeout=3600)
    assert len(workload.done) == swarms, "a swarm did not complete"
    assert all(len(results) == size for results in workload.done), "items lost"
    return swarms * size


async def warm_up(workload: SwarmWorkload) -> None:
    """See :data:`WARM_SWARMS`."""
    await run_swarms(workload, WARM_SWARMS, WARM_ITEMS, CAP)


async def aclose(workload: SwarmWorkload) -> None:
    await close_client(workload.client.redis)


# --- 1. commands per swarm item -----------------------------------------------------


class Wires:
    """A counting proxy (:class:`wire.Wire`) in front of every master; a
    cluster client reaches them through ``address_remap``, which redis-py
    applies to every node address the cluster announces."""

    def __init__(self, nodes: Sequence[tuple[str, int]]) -> None:
        self.nodes = list(nodes)
        self.wires = [Wire(f"redis://{host}:{port}/0") for host, port in nodes]
        self._stack = contextlib.AsyncExitStack()
        self._remap: dict[tuple[str, int], tuple[str, int]] = {}

    async def __aenter__(self) -> Wires:
        for node, wire in zip(self.nodes, self.wires, strict=True):
            await self._stack.enter_async_context(wire)
            self._remap[node] = _address(wire.url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    def remap(self, address: tuple[str, int]) -> tuple[str, int]:
        return self._remap.get((address[0], int(address[1])), address)

    def cluster_client(self) -> RedisCluster:
        """A cluster client built as mageflow builds one from a URL, whose
        connections all go through the proxies."""
        host, port = self.remap(self.nodes[0])
        return RedisCluster(
            host=host,
            port=port,
            decode_responses=True,
            max_connections=CLUSTER_MAX_CONNECTIONS_PER_NODE,
            address_remap=self.remap,
        )

    def reset(self) -> None:
        for wire in self.wires:
            wire.reset()

    @property
    def commands(self) -> Counter[str]:
        """What went through every proxy since :meth:`reset`, handshakes
        left out (the cluster's slot discovery too: see :func:`on_wire`)."""
        total: Counter[str] = Counter()
        for wire in self.wires:
            total += wire.commands
        return total

    @property
    def per_node(self) -> list[int]:
        return [on_wire(wire.commands) for wire in self.wires]

    @property
    def scripts_per_node(self) -> list[int]:
        return [scripts_on_wire(wire.commands) for wire in self.wires]


TIME_BOUND = ("EVALSHA RENEW",)
"""What a run sends by the clock, not by its items: a process renews the
leases it holds every 5 s, so a slower run of the same swarm sends more."""

WIRE_SETUP = frozenset({"CLUSTER", "COMMAND", "READONLY", "PING"})
"""Sent on the wire to learn the cluster, not to do work (none once warm)."""


def on_wire(commands: Counter[str]) -> int:
    """Round trips sent on the wire, the cluster discovery left out."""
    return sum(n for name, n in commands.items() if name not in WIRE_SETUP)


@dataclasses.dataclass
class Count:
    """What one swarm of ``size`` cost one deployment: ``INFO commandstats``
    (summed over the masters) and the proxies' counts, for its creation and
    for its run (from its start to the end of the drain, the drain's
    recovery pass included)."""

    size: int
    create: Counter[str]
    run: Counter[str]
    wire_create: Counter[str]
    wire_run: Counter[str]
    per_node: list[int]
    """The round trips of creating and running it, per master."""

    @property
    def total(self) -> Counter[str]:
        return self.create + self.run

    @property
    def wire_total(self) -> Counter[str]:
        return self.wire_create + self.wire_run


async def count_swarm(
    workload: SwarmWorkload, servers: Servers, wires: Wires, size: int
) -> Count:
    before = await servers.snap()
    wires.reset()
    swarm = await workload.swarm(size, CAP)
    made = await servers.snap()
    wire_create, per_node = wires.commands, wires.per_node
    sent = wires.scripts_per_node
    wires.reset()
    await workload.run(swarm, size)
    after = await servers.snap()
    per_node = [a + b for a, b in zip(per_node, wires.per_node, strict=True)]
    sent = [a + b for a, b in zip(sent, wires.scripts_per_node, strict=True)]
    ran = [scripts(calls_between(b, a)) for b, a in zip(before, after, strict=True)]
    if sent != ran:
        # A connection around the proxies (a node address the remap missed):
        # the wire's counts would be short.
        raise RuntimeError(
            f"EVALSHA per master: {sent} on the wire, {ran} in INFO commandstats"
        )
    return Count(
        size,
        summed(before, made),
        summed(made, after),
        wire_create,
        wires.commands,
        per_node,
    )


async def counts(servers: Servers, sizes: Sequence[int], cluster: bool) -> list[Count]:
    """Row 1's swarms on one deployment, counted both ways."""
    async with Wires(servers.nodes) as wires:
        client: RedisCluster | str = wires.wires[0].url
        if cluster:
            client = wires.cluster_client()
            # Before the first command: left to initialize on first use,
            # redis-py sometimes sends one of the first scripts to the wrong
            # master, and the MOVED it gets points that slot at the master's
            # own address, around the proxy (address_remap is not applied to
            # redirections).
            await client.initialize()
        # Mageflow takes a RedisCluster too; SwarmWorkload's hint says Redis.
        workload = SwarmWorkload(cast(Redis, client))
        await warm_up(workload)
        found = [await count_swarm(workload, servers, wires, n) for n in sizes]
        await aclose(workload)
    return found


def ratio_cell(cluster: float, single: float) -> str:
    return f"{cluster / single:.3f}" if single else "-"


async def row_commands(single: Servers, cluster: Servers, sizes: Sequence[int]) -> None:
    heading(
        f"1. round trips and commands per swarm item, single server vs 3-master "
        f"cluster (cap {CAP}; items with no callbacks, the swarm has one), all "
        "included"
    )
    ones = await counts(single, sizes, cluster=False)
    threes = await counts(cluster, sizes, cluster=True)
    print(
        f"{'items':>8}  {'part':<7}{'count':<22}{'single':>9}{'cluster':>9}"
        f"{'single/item':>13}{'cluster/item':>14}{'cluster/single':>16}  target"
    )
    for one, three in zip(ones, threes, strict=True):
        n = one.size
        rows = (
            ("create", "round trips (wire)", on_wire(one.wire_create),
             on_wire(three.wire_create)),
            ("", "EVALSHA (INFO)", scripts(one.create), scripts(three.create)),
            ("", "all commands (INFO)", work(one.create), work(three.create)),
            ("run", "round trips (wire)", on_wire(one.wire_run),
             on_wire(three.wire_run)),
            ("", "EVALSHA (INFO)", scripts(one.run), scripts(three.run)),
            ("", "all commands (INFO)", work(one.run), work(three.run)),
            ("total", "round trips (wire)", on_wire(one.wire_total),
             on_wire(three.wire_total)),
            ("", "EVALSHA (INFO)", scripts(one.total), scripts(three.total)),
            ("", "all commands (INFO)", work(one.total), work(three.total)),
        )  # fmt: skip
        for i, (part, what, a, b) in enumerate(rows):
            tail = f"  equal  {verdict(a == b)}" if i >= 6 else ""
            print(
                f"{f'{n:,}' if i == 0 else '':>8}  {part:<7}{what:<22}{a:>9,}{b:>9,}"
                f"{a / n:>13.4f}{b / n:>14.4f}{ratio_cell(b, a):>16}{tail}"
            )
        wired = on_wire(one.wire_total)
        sent_one, sent_three = named(one.wire_total), named(three.wire_total)
        if sent_one != sent_three:
            timed = [sum(c[k] for k in TIME_BOUND) for c in (sent_one, sent_three)]
            rest = [on_wire(sent_one) - timed[0], on_wire(sent_three) - timed[1]]
            print(
                f"{'':>8}  the cluster sent more / fewer: "
                f"{differences(sent_one, sent_three)}. Without the lease renewals "
                f"(one RENEW per process every 5 s: they count time, not items; "
                f"single {timed[0]}, cluster {timed[1]}): single {rest[0]:,}, "
                f"cluster {rest[1]:,}  equal  {verdict(rest[0] == rest[1])}"
            )
        print(
            f"{'':>8}  EVALSHA per master on the wire == in INFO: checked on both; "
            f"the cluster's round trips per master "
            f"{' / '.join(f'{c:,}' for c in three.per_node)} (the swarm lives in "
            f"one shard); connection setup (INFO, left out): single "
            f"{setup(one.total)}, cluster {setup(three.total)}"
        )
        assert wired == sum(one.per_node), (wired, one.per_node)
    one, three = ones[0], threes[0]
    print(f"\nwhere the round trips of the swarm of {one.size:,} go, on the wire:")
    print(f"{'command':<24}{'single':>9}{'cluster':>9}{'per item':>10}")
    sent_one, sent_three = named(one.wire_total), named(three.wire_total)
    for name in _by_size(sent_one, sent_three):
        a, b = sent_one[name], sent_three[name]
        print(f"{name:<24}{a:>9,}{b:>9,}{a / one.size:>10.4f}")
    print("\nwhat the servers ran for it, INFO commandstats (inside scripts too):")
    print(f"{'command':<24}{'single':>9}{'cluster':>9}{'per item':>10}")
    for name in _by_size(one.total, three.total):
        a, b = one.total[name], three.total[name]
        print(f"{name:<24}{a:>9,}{b:>9,}{a / one.size:>10.4f}")
    print(
        "round trips (wire): the commands the client sent, counted by a proxy "
        "(bench/wire.py) in front of every master (the cluster client reaches them "
        "through redis-py's address_remap), handshakes left out. INFO: "
        "commandstats summed over the masters, this bench's own INFO calls left "
        "out; on Redis 7 it counts the commands a script runs (redis.call) as "
        "well as the client's, so 'all commands' is the servers' work, not round "
        "trips, and EVALSHA is the round trips that are scripts. Commands, not "
        "network writes: on one server the client pipelines the script calls "
        "asked for at once, on a cluster each goes by itself (redis-py's cluster "
        f"pipelines take no scripts). Every master had every script loaded first, "
        f"and both clients ran {WARM_SWARMS} swarms of {WARM_ITEMS}, one per shard "
        "(connections, the cluster's slots)."
    )


def store_script_sources() -> dict[str, str]:
    """Every script of :mod:`mageflow.store.scripts` by name, as the store
    sends it: with :data:`scripts.SHEBANG` (the flags line) before it."""
    found: dict[str, str] = {}
    for name in dir(store_scripts):
        source = getattr(store_scripts, name)
        if name.isupper() and isinstance(source, str) and "redis." in source:
            found[name] = store_scripts.SHEBANG + source
    return found


def script_names() -> dict[str, str]:
    """``EVALSHA <first 8 of its SHA1>`` -> ``EVALSHA <script>``:
    :func:`wire.script_names` hashes the scripts without the flags line, so
    :mod:`wire` names them by the first characters of their SHA1."""
    return {
        f"EVALSHA {hashlib.sha1(source.encode()).hexdigest()[:8]}": f"EVALSHA {name}"
        for name, source in store_script_sources().items()
    }


def named(commands: Counter[str]) -> Counter[str]:
    """``commands`` with each script's SHA1 replaced by its name."""
    names = script_names()
    return Counter({names.get(k, k): n for k, n in commands.items()})


def scripts_on_wire(commands: Counter[str]) -> int:
    return sum(n for name, n in commands.items() if name.startswith("EVALSHA"))


def differences(one: Counter[str], three: Counter[str]) -> str:
    """What the cluster sent more (``+``) or fewer (``-``) of, by command."""
    moved = [(k, three[k] - one[k]) for k in _by_size(one, three)]
    return ", ".join(f"{k} {d:+}" for k, d in moved if d)


def _by_size(one: Counter[str], three: Counter[str]) -> list[str]:
    return sorted(set(one) | set(three), key=lambda k: (-max(one[k], three[k]), k))


# --- 2. items per second, two worker processes --------------------------------------


@dataclasses.dataclass
class Round:
    """One timed run of both workers on one deployment."""

    items: int
    seconds: float
    worker_cpu: float
    server_cpu: float
    per_node: list[Counter[str]]

    @property
    def rate(self) -> float:
        return self.items / self.seconds


class Worker:
    """One worker process: this file with ``--worker``."""

    def __init__(self, process: asyncio.subprocess.Process, log: IO[bytes]) -> None:
        self.process = process
        self.log = log

    @classmethod
    async def start(
        cls, log: IO[bytes], url: str, swarms: int, items: int, cap: int
    ) -> Worker:
        """A worker writing its stderr to ``log``."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            "--worker",
            url,
            "--swarms",
            str(swarms),
            "--items",
            str(items),
            "--cap",
            str(cap),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        return cls(process, log)

    def failure(self, what: str) -> RuntimeError:
        self.log.seek(0)
        tail = self.log.read().decode(errors="replace")[-3000:]
        code = self.process.returncode
        return RuntimeError(f"a worker {what} (exit status {code}):\n{tail}")

    async def line(self, timeout: float) -> str:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            await self.process.wait()
            raise self.failure("ended early")
        return line.decode().strip()

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")

    async def finish(self) -> None:
        code = await asyncio.wait_for(self.process.wait(), 60)
        if code != 0:
            raise self.failure("failed")

    async def stop(self) -> None:
        """End this worker (one this bench started) if it still runs."""
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def timed_round(url: str, servers: Servers, args: argparse.Namespace) -> Round:
    """Start both workers, wait until both are warm and ready, then time
    them from the go to the last one's end."""
    workers: list[Worker] = []
    with contextlib.ExitStack() as logs:
        try:
            for _ in range(WORKERS):
                log = logs.enter_context(tempfile.TemporaryFile())
                workers.append(
                    await Worker.start(log, url, args.swarms, args.items, args.cap)
                )
            for worker in workers:
                ready = await worker.line(timeout=300)
                assert ready == "ready", ready
            before = await servers.snap()
            started = time.perf_counter()
            for worker in workers:
                worker.go()
            replies = await asyncio.gather(*(w.line(timeout=3600) for w in workers))
            seconds = time.perf_counter() - started
            after = await servers.snap()
            for worker in workers:
                await worker.finish()
        finally:
            for worker in workers:
                await worker.stop()
    done = [json.loads(reply) for reply in replies]
    return Round(
        items=sum(d["items"] for d in done),
        seconds=seconds,
        worker_cpu=sum(d["cpu"] for d in done),
        server_cpu=cpu_between(before, after),
        per_node=[calls_between(b, a) for b, a in zip(before, after, strict=True)],
    )


async def row_rate(
    single: tuple[str, Servers], cluster: tuple[str, Servers], args: argparse.Namespace
) -> list[Round]:
    """Row 2; returns the cluster's rounds, for row 3."""
    items = WORKERS * args.swarms * args.items
    heading(
        f"2. items per second, {WORKERS} worker processes x {args.swarms} swarms x "
        f"{args.items:,} items (cap {args.cap}; {items:,} items a round), single "
        f"vs cluster alternating, {args.rounds} rounds ({os.cpu_count()} cores: "
        "no scaling expected)"
    )
    for _, servers in (single, cluster):
        await servers.flush()  # row 3 counts the keys of these runs only
    runs: dict[str, list[Round]] = {"single": [], "cluster": []}
    order = [("single", single), ("cluster", cluster)]
    for n in range(args.rounds):
        for name, (url, servers) in order if n % 2 == 0 else order[::-1]:
            runs[name].append(await timed_round(url, servers, args))
    print(
        f"{'deployment':<12}{'items/s':<20}{'worker CPU/item':<26}"
        f"{'Redis CPU/item':<22}{'EVALSHA/item':<22}commands/item"
    )
    for name, rounds in runs.items():
        rates = [r.rate for r in rounds]
        worker = [r.worker_cpu / r.items * 1e6 for r in rounds]
        server = [r.server_cpu / r.items * 1e6 for r in rounds]
        commands = [sum(work(c) for c in r.per_node) / r.items for r in rounds]
        evalsha = [sum(scripts(c) for c in r.per_node) / r.items for r in rounds]
        print(
            f"{name:<12}{spread(rates):<20}{spread(worker, ' us'):<26}"
            f"{spread(server, ' us'):<22}{spread(evalsha, '', 3):<22}"
            f"{spread(commands, '', 3):<22}".rstrip()
        )
    one, three = runs["single"], runs["cluster"]
    ratio = statistics.median(r.rate for r in three) / statistics.median(
        r.rate for r in one
    )
    per_round = [c.rate / s.rate for c, s in zip(three, one, strict=True)]
    cpu = statistics.median(r.server_cpu / r.items for r in three) / statistics.median(
        r.server_cpu / r.items for r in one
    )
    print(
        f"cluster / single: {ratio:.2f}x the items/s (rounds {min(per_round):.2f}-"
        f"{max(per_round):.2f}), {cpu:.2f}x the Redis CPU per item (all masters "
        "summed)  target: none, reported; no scaling expected on "
        f"{os.cpu_count()} cores"
    )
    print(
        "median (min-max) over the rounds. Timed: from the go to both workers' "
        "last drain, both already warm (scripts, slots, connections); each "
        "worker makes and starts its swarms one after the other, so the swarms' "
        "creation is timed too. Worker CPU: both processes' own; Redis CPU: "
        "INFO cpu, system + user, of the server or of all masters; commands: "
        "INFO commandstats of the timed runs (script calls and what the scripts "
        "ran), connection setup left out. Each worker's drain runs recovery for "
        "what is overdue only: the local backend's own pass (grace 0) would take "
        "over the other worker's live work. "
        f"On {cores_note()}"
    )
    return three


# --- 3. the spread over the masters -------------------------------------------------


def slot_ranges(nodes: dict[str, Any], address: str) -> list[tuple[int, int]]:
    return [(int(lo), int(hi)) for lo, hi in nodes[address]["slots"]]


def shards_in(ranges: Sequence[tuple[int, int]]) -> list[int]:
    return [
        shard
        for shard, tag in enumerate(keys.TAGS)
        if any(lo <= key_slot(f"{{{tag}}}".encode()) <= hi for lo, hi in ranges)
    ]


def share_ratio(values: Sequence[int]) -> float:
    return max(values) / min(values) if min(values) else float("inf")


async def row_spread(
    cluster: Servers, single: Servers, rounds: Sequence[Round]
) -> None:
    heading(
        "3. spread over the 3 masters after row 2's cluster runs (before any "
        "flush): keys, and commands of the timed runs"
    )
    layout: dict[str, Any] = await cluster.clients[0].cluster("NODES")
    held: list[list[int]] = []
    slots: list[str] = []
    dbsize: list[int] = []
    keyspace: list[int] = []
    for (host, port), client in zip(cluster.nodes, cluster.clients, strict=True):
        ranges = slot_ranges(layout, f"{host}:{port}")
        held.append(shards_in(ranges))
        slots.append(",".join(f"{lo}-{hi}" for lo, hi in ranges))
        dbsize.append(await client.dbsize())
        db0 = (await client.info("keyspace")).get("db0", {})
        keyspace.append(int(db0.get("keys", 0)) if isinstance(db0, dict) else 0)
    commands = [sum(work(r.per_node[i]) for r in rounds) for i in range(3)]
    print(
        f"{'master':<8}{'slots':<13}{'shards':<18}{'DBSIZE':>9}{'keyspace':>10}"
        f"{'share':>8}{'commands':>11}{'share':>8}"
    )
    for i, label in enumerate(cluster.labels):
        shards = held[i]
        listed = f"{','.join(f'{s:x}' for s in shards)} ({len(shards)})"
        print(
            f"{label:<8}{slots[i]:<13}{listed:<18}{dbsize[i]:>9,}{keyspace[i]:>10,}"
            f"{dbsize[i] / sum(dbsize):>8.1%}{commands[i]:>11,}"
            f"{commands[i] / sum(commands):>8.1%}"
        )
    key_ratio, command_ratio = share_ratio(dbsize), share_ratio(commands)
    held_ratio = share_ratio([len(s) for s in held])
    print(
        f"max/min share: keys {key_ratio:.2f}, commands {command_ratio:.2f}  "
        f"target keys < 1.5  {verdict(key_ratio < 1.5)}"
    )
    print(
        f"the best an even spread over the {keys.SHARDS} shards can give: "
        f"{held_ratio:.2f} (the masters hold "
        f"{' / '.join(str(len(s)) for s in held)} shards). Single server after "
        f"its own runs: DBSIZE {await single.clients[0].dbsize():,} "
        f"(cluster, all masters: {sum(dbsize):,})."
    )
    per_shard: list[int] = []
    for shard, tag in enumerate(keys.TAGS):
        slot = key_slot(f"{{{tag}}}".encode())
        owner = next(i for i, s in enumerate(held) if shard in s)
        count = await cluster.clients[owner].cluster("COUNTKEYSINSLOT", slot)
        per_shard.append(int(count))
    print(
        "keys per shard: " + "  ".join(f"{s:x}:{n:,}" for s, n in enumerate(per_shard))
    )
    print(
        "keys: those of row 2's runs on the cluster, the workers' warm-ups "
        "included (finished records stay an hour, TTLConfig.done); commands: "
        "INFO commandstats of the timed runs, what scripts ran included. Each "
        "worker signs in one shard and moves to the next each time it starts a "
        f"workflow; with --swarms a multiple of {keys.SHARDS} (and the warm-ups' "
        f"{WARM_SWARMS}), each worker's swarms cover every shard equally, "
        "wherever it starts."
    )


# --- the worker process -------------------------------------------------------------


async def worker(url: str, swarms: int, items: int, cap: int) -> None:
    """``--worker``: warm up, say ``ready``, wait for ``go``, run the swarms,
    print one JSON line: the items run and this process's CPU seconds."""
    workload = SwarmWorkload(url)
    recovery = workload.client.engine.recovery

    async def overdue_only() -> bool:
        return (await recovery.run_once()).acted

    # The drain's own pass (grace 0) takes over whatever is owed, the other
    # worker's live starts and leases too: the local backend is one process's.
    workload.local.on_idle = overdue_only
    await warm_up(workload)
    print("ready", flush=True)
    go = await asyncio.to_thread(sys.stdin.readline)
    assert go.strip() == "go", go
    cpu = time.process_time()
    done = await run_swarms(workload, swarms, items, cap)
    cpu = time.process_time() - cpu
    await aclose(workload)
    print(json.dumps({"items": done, "cpu": cpu}), flush=True)


# --- the run ------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    sizes = (200,) if args.quick else (1_000, 10_000)
    started = ensure_cluster(use_env=False)
    # On TCP, as the cluster is (ensure_redis would pick a Unix socket,
    # which is quicker than loopback TCP and would favour the single server).
    with EmbeddedRedis(use_unix_socket=False) as server, started as cluster_url:
        assert started.cluster is not None
        single_url = server.url
        one = Servers("single", [_address(single_url)])
        three = Servers("cluster", started.cluster.nodes)
        try:
            await print_machine(one.clients[0])
            ports = ", ".join(str(port) for _, port in three.nodes)
            print(f"single: {single_url}; cluster: {cluster_url} (masters {ports})")
            print(f"note: this machine has {cores_note()}")
            for servers in (one, three):
                await servers.flush()
                await servers.load_scripts()
            await row_commands(one, three, sizes)
            single, cluster = (single_url, one), (cluster_url, three)
            rounds = await row_rate(single, cluster, args)
            await row_spread(three, one, rounds)
        finally:
            await one.aclose()
            await three.aclose()
    print(f"\n{load()} at the end")


def _address(url: str) -> tuple[str, int]:
    """The host and port of a ``redis://`` URL (the private server's)."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 6379


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 rounds")
    parser.add_argument("--rounds", type=int, default=0, help="rounds of row 2")
    parser.add_argument("--swarms", type=int, default=0, help="swarms per worker")
    parser.add_argument("--items", type=int, default=0, help="items per swarm")
    parser.add_argument("--cap", type=int, default=10, help="row 2's swarms' cap")
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    parsed.rounds = parsed.rounds or (2 if parsed.quick else 3)
    parsed.swarms = parsed.swarms or keys.SHARDS
    parsed.items = parsed.items or (25 if parsed.quick else 250)
    if parsed.worker:
        asyncio.run(worker(parsed.worker, parsed.swarms, parsed.items, parsed.cap))
    else:
        asyncio.run(main(parsed))
