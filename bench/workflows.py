"""Swarms and chains on the local backend: round trips on the wire, speed, scale.

    python bench/workflows.py            # every row at full size (minutes)
    python bench/workflows.py --quick    # small sizes and few rounds: a smoke run
    python bench/workflows.py --scale    # and last, bench/scale.py's big swarm
    python bench/workflows.py --profile  # and where a swarm's time goes
    python bench/workflows.py --rounds 7 # more rounds for the speed rows
    python bench/workflows.py --only 2,3 # some rows only
    python bench/workflows.py --baseline DIR   # today's code from DIR (a checkout)

Everything runs on the local backend (hatchet-sdk's ``aio_mock_run``, a
real ``Context``) against a real ``redis-server`` (``REDIS_URL``, or one
started here by mageflow.embedded). Each row prints its target and whether
it was met:

1. round trips per swarm item, counted on the wire (:mod:`wire`: a loopback
   proxy that reads the commands the client sends), everything mageflow
   sends included, the drain's recovery pass too; by script for one size;
2. items per second of a swarm, the current code against today's (commit
   :data:`BASELINE`, exported with ``git archive`` and run in a subprocess
   with ``PYTHONPATH`` on it, alternating with the current code in the same
   way, several rounds; :mod:`swarm_rate` is the workload);
3. the same swarm against a bare redis-py loop making as many ``EVALSHA``
   calls, as many at a time as the swarm's cap, on mageflow's own client,
   in this process;
4. the same swarm with redis-py's pure-Python reply parser and with hiredis
   (when it is importable), on clients built as mageflow builds its own;
5. the round trips of creating work (a chain, a swarm, ``swarm.add``) at
   three sizes, with the wall time;
6. the round trips of pause, resume, stop and remove of a chain and a swarm
   at three sizes;
7. with ``--scale``: :mod:`scale`, a 100,000-item swarm at cap 500;
8. with ``--profile``: where a swarm of 1,000's time goes (cProfile), by
   part of the stack.

The machine is shared: the speed rows repeat and print their spread; read
them as this run's numbers, not as promises.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import importlib.metadata
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import redis
import scale
from redis.asyncio import BlockingConnectionPool, Redis
from swarm_rate import SwarmWorkload, parser_name
from wire import Wire

import mageflow
from mageflow.embedded import ensure_redis
from mageflow.store.connection import MAX_CONNECTIONS, POOL_TIMEOUT_SECONDS

BASELINE = "34a1223"
"""Today's code: the commit before the performance work."""

REPO = Path(__file__).resolve().parent.parent
CURRENT = Path(mageflow.__file__).resolve().parent.parent
"""The current code: where this process imported mageflow from (this
checkout, or what ``PYTHONPATH`` names, e.g. an export of one commit while
others edit the checkout); row 2's subprocesses import the same."""
CAP = 50
"""The swarms' ``max_concurrency`` in rows 1 to 4."""

CARRIES = {
    "EVALSHA ACTIVATE": "claims the item, clears its owed start, takes its lease",
    "EVALSHA FINISH_ITEM": "records the outcome, frees the slot, starts the next",
    "EVALSHA FINISH": "the swarm's and its callback's outcomes",
    "EVALSHA SWARM_START": "activates the swarm, starts its first items (once)",
    "EVALSHA MARK_DUE": "the swarm's own start, owed before it is sent (once)",
    "EVALSHA MARK_SENT": "the swarm's completion told (once)",
    "EVALSHA CLAIM": "recovery at drain: takes overdue debts",
    "EVALSHA RENEW": "renews this process's leases, every 5 s",
    "ZRANGEBYSCORE": "recovery at drain: expired leases",
    "HGETALL": "the swarm's record, when it completes",
    "HMGET": "the swarm's results, for its success callback",
}


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def spread(values: Sequence[float], unit: str = "", digits: int = 0) -> str:
    """``median (min-max)`` of repeated measurements."""
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:,.{digits}f}{unit} ({low:,.{digits}f}-{high:,.{digits}f})"


def heading(text: str) -> None:
    print()
    print(text)
    print("-" * min(len(text), 100))


# --- the machine ----------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def hiredis_version() -> str | None:
    """hiredis's version if redis-py will use it, else ``None``."""
    from redis.utils import HIREDIS_AVAILABLE

    if not HIREDIS_AVAILABLE:
        return None
    return importlib.metadata.version("hiredis")


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"


def code_state() -> str:
    """The code measured: the commit, and whether mageflow/ differs from it
    (others may be editing it while the bench runs); or the directory
    mageflow was imported from, when it is not this checkout."""
    if CURRENT != REPO:
        return f"code: mageflow from {CURRENT} (PYTHONPATH)"
    git = ["git", "-C", str(REPO)]
    head = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    changed = subprocess.run(
        [*git, "status", "--porcelain", "--", "mageflow"],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    dirty = f" + {len(changed)} uncommitted file(s) in mageflow/" if changed else ""
    return f"code: {head or 'unknown'}{dirty}"


async def print_machine(client: Redis) -> None:
    server = (await client.info("server"))["redis_version"]
    found = hiredis_version()
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, redis-server {server}, "
        f"redis-py {redis.__version__}, "
        f"hiredis {found + ' (in use)' if found else 'not installed'}; {load()}"
    )
    print(code_state())


# --- 1. round trips per swarm item ----------------------------------------------------


async def swarm_round_trips(
    workload: SwarmWorkload, wire: Wire, size: int
) -> Counter[str]:
    """The commands a swarm of ``size`` sends, from its start to the end of
    the drain (its recovery pass included)."""
    swarm = await workload.swarm(size, CAP)
    wire.reset()
    await workload.run(swarm, size)
    return wire.commands


async def evalsha_calls(url: str, size: int) -> int:
    """The ``EVALSHA`` calls of a swarm of ``size``, when row 1 is not run."""
    async with Wire(url) as wire:
        workload = SwarmWorkload(wire.url)
        await swarm_round_trips(workload, wire, 10)  # the scripts load
        commands = await swarm_round_trips(workload, wire, size)
        await workload.aclose()
    return sum(n for name, n in commands.items() if name.startswith("EVALSHA"))


def renewals(commands: Counter[str]) -> int:
    """Lease renewals: one per process every 5 s, so they count time, not items."""
    return commands["EVALSHA RENEW"]


async def row_round_trips(url: str, sizes: Sequence[int]) -> int:
    """Row 1; returns the ``EVALSHA`` calls of the first size's swarm (row 3)."""
    heading(
        f"1. round trips per swarm item (cap {CAP}; items with no callbacks, the "
        "swarm has one), on the wire, all included"
    )
    async with Wire(url) as wire:
        workload = SwarmWorkload(wire.url)
        await workload.redis.flushdb()
        await swarm_round_trips(workload, wire, 10)  # the scripts load
        small = await swarm_round_trips(workload, wire, 10)
        fixed = sum(small.values()) - renewals(small)
        print(f"{'items':>9}{'round trips':>13}{'per item':>10}{'growth':>9}  target")
        by_command: list[tuple[int, Counter[str], int]] = []
        for size in sizes:
            commands = await swarm_round_trips(workload, wire, size)
            by_command.append((size, commands, wire.handshakes))
            total = sum(commands.values())
            # What grows with the items: all of it but what a swarm of 10
            # pays too and the renewals (which count time, not items).
            growth = (total - renewals(commands) - fixed) / (size - 10)
            print(
                f"{size:>9,}{total:>13,}{total / size:>10.4f}{growth:>9.4f}  "
                f"<= 2 per item  {verdict(growth <= 2)}"
            )
        await workload.aclose()
    size, shown, handshakes = by_command[0]
    print(
        "per item: all round trips / items; growth: (round trips - renewals - "
        "those of a swarm of 10) / (items - 10). A swarm's own cost: "
        f"{fixed - 2 * 10} round trips whatever its size; RENEW: one per "
        "process every 5 s. Counted as commands sent: a pipelined batch counts "
        "each of its commands, so never fewer than the network's round trips. "
        f"Left out: the connection handshakes ({handshakes} for the swarm of "
        f"{size:,}: the pool's new connections)."
    )
    print(f"\nwhere the round trips of the swarm of {size:,} go, as sent:")
    print(f"{'command':<24}{'calls':>8}{'per item':>10}  what it carries")
    for name, calls in shown.most_common():
        print(f"{name:<24}{calls:>8,}{calls / size:>10.3f}  {CARRIES.get(name, '')}")
    return sum(n for name, n in shown.items() if name.startswith("EVALSHA"))


# --- 2. today's code against the current ----------------------------------------------


def baseline_tree(path: str | None) -> Path:
    """A directory whose ``mageflow`` package is today's code: ``path``, or
    an export of :data:`BASELINE` (made once, then reused)."""
    if path is not None:
        return Path(path).resolve()
    tree = Path(tempfile.gettempdir()) / f"mageflow-baseline-{BASELINE}"
    if not (tree / "mageflow" / "__init__.py").is_file():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", BASELINE, "mageflow"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def rate_in_subprocess(code: Path, url: str, sizes: Sequence[int]) -> dict[str, Any]:
    """Run :mod:`swarm_rate` with ``code``'s mageflow; its JSON reply."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(code), os.environ.get("PYTHONPATH", "")) if p
    )
    script = Path(__file__).with_name("swarm_rate.py")
    done = subprocess.run(
        [sys.executable, str(script), url, "--cap", str(CAP), "--sizes"]
        + [str(s) for s in sizes],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    reply: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    imported = Path(reply["mageflow"]).resolve()
    assert imported == code, f"imported mageflow from {imported}, not {code}"
    return reply


def row_against_today(
    url: str, baseline: Path, sizes: Sequence[int], rounds: int
) -> None:
    """Row 2. Each version in its own interpreter (the only way to import
    two mageflows), the two alternating on one redis-server so that a change
    in the machine's load falls on both."""
    heading(
        f"2. items per second, swarm at cap {CAP}: current code vs today's "
        f"({BASELINE}), one subprocess each, alternating, {rounds} rounds"
    )
    rates: dict[str, dict[int, list[float]]] = {"today": {}, "current": {}}
    cpu: dict[str, dict[int, list[float]]] = {"today": {}, "current": {}}
    parsers = set()
    for n in range(rounds):
        order = [("current", CURRENT), ("today", baseline)]
        for name, code in order if n % 2 == 0 else order[::-1]:
            reply = rate_in_subprocess(code, url, sizes)
            parsers.add(reply["parser"])
            for size, seconds in reply["seconds"].items():
                rates[name].setdefault(int(size), []).append(int(size) / seconds)
                per_item = reply["cpu"][size] / int(size) * 1e6
                cpu[name].setdefault(int(size), []).append(per_item)
    print(f"{'items':>8}  {'code':<9}{'items/s':<24}worker CPU per item")
    for size in sizes:
        for name in ("today", "current"):
            print(
                f"{f'{size:,}' if name == 'today' else '':>8}  {name:<9}"
                f"{spread(rates[name][size]):<24}{spread(cpu[name][size], ' us')}"
            )
        today, current = rates["today"][size], rates["current"][size]
        ratio = statistics.median(current) / statistics.median(today)
        per_round = [c / t for c, t in zip(current, today, strict=True)]
        less_cpu = statistics.median(cpu["today"][size]) / statistics.median(
            cpu["current"][size]
        )
        print(
            f"{'':>8}  current / today: {ratio:.2f}x the items/s (rounds "
            f"{min(per_round):.2f}-{max(per_round):.2f}), {less_cpu:.2f}x less "
            f"CPU per item  target >= 3x items/s  {verdict(ratio >= 3)}"
        )
    print(
        "median (min-max) over the rounds, one swarm per size per round; "
        f"reply parser: {', '.join(sorted(parsers))}; the swarm's creation is "
        "not timed. Worker CPU: the subprocess's own, which other load on the "
        "machine moves less than the wall time."
    )


# --- 3. against a bare redis-py loop --------------------------------------------------


async def bare_loop(client: Redis, calls: int, concurrency: int) -> float:
    """Seconds for ``calls`` EVALSHA of a trivial script, ``concurrency`` at
    a time, each caller waiting for its reply before the next: the floor
    under a swarm that makes these calls, with nothing of mageflow in it."""
    script = client.register_script("return 1")
    await script()  # loaded
    left = calls

    async def caller() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await script(keys=[], args=[])

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return time.perf_counter() - started


async def alternate(
    rounds: int, *runs: Callable[[], Awaitable[float]]
) -> list[list[float]]:
    """Run each of ``runs`` once a round, in turns (reversed every other
    round, so a drift in the machine's load favours none); their seconds."""
    seconds: list[list[float]] = [[] for _ in runs]
    order = list(enumerate(runs))
    for n in range(rounds):
        for i, run in order if n % 2 == 0 else order[::-1]:
            seconds[i].append(await run())
    return seconds


async def row_against_bare(url: str, size: int, evalsha: int, rounds: int) -> None:
    """Row 3: how far mageflow is from the cost of its own round trips."""
    heading(
        f"3. a swarm of {size:,} against a bare redis-py loop of its {evalsha:,} "
        f"EVALSHA calls ({CAP} at a time, same client), this process, "
        f"{rounds} rounds"
    )
    workload = SwarmWorkload(url)  # mageflow builds the client, as it does
    await workload.redis.flushdb()
    await workload.warm_up(CAP)
    cpu: dict[str, list[float]] = {"mageflow": [], "bare": []}

    async def swarm() -> float:
        seconds = await workload.timed(size, CAP)
        cpu["mageflow"].append(workload.cpu)
        return seconds

    async def bare() -> float:
        started = time.process_time()
        seconds = await bare_loop(workload.redis, evalsha, CAP)
        cpu["bare"].append(time.process_time() - started)
        return seconds

    swarm_s, bare_s = await alternate(rounds, swarm, bare)
    ratio = statistics.median(swarm_s) / statistics.median(bare_s)
    per_round = [s / b for s, b in zip(swarm_s, bare_s, strict=True)]
    cpu_ratio = statistics.median(cpu["mageflow"]) / statistics.median(cpu["bare"])
    print(f"mageflow {spread(swarm_s, ' s', 3)}; bare loop {spread(bare_s, ' s', 3)}")
    print(
        f"mageflow / bare = {ratio:.2f}x the time (rounds {min(per_round):.2f}-"
        f"{max(per_round):.2f}), {cpu_ratio:.2f}x the CPU  "
        f"target <= 1.5x  {verdict(ratio <= 1.5)}"
    )
    print(
        f"reply parser: {parser_name(workload.redis)}; the bare loop's script is "
        "'return 1', no keys."
    )
    await workload.aclose()


# --- 4. hiredis -----------------------------------------------------------------------


def client_with(url: str, parser_class: type[Any]) -> Redis:
    """A client built as mageflow builds one from a URL, with this parser."""
    pool = BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_TIMEOUT_SECONDS,
        parser_class=parser_class,
    )
    return Redis(connection_pool=pool)


async def row_hiredis(url: str, size: int, rounds: int) -> None:
    """Row 4: what ``mageflow[fast]`` (hiredis) buys. The pure-Python parser
    is forced with ``parser_class``, so both run in this one process."""
    from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser

    heading(
        f"4. a swarm of {size:,}: redis-py's pure-Python parser vs hiredis, "
        f"this process, {rounds} rounds"
    )
    pure = SwarmWorkload(client_with(url, _AsyncRESP2Parser))
    await pure.redis.flushdb()
    runs = [pure]
    if hiredis_version() is not None:
        runs.append(SwarmWorkload(client_with(url, _AsyncHiredisParser)))
    for workload in runs:
        await workload.warm_up(CAP)
    seconds = await alternate(rounds, *(lambda w=w: w.timed(size, CAP) for w in runs))
    rates = [[size / s for s in each] for each in seconds]
    line = f"pure Python {spread(rates[0], ' items/s')}"
    if len(runs) > 1:
        ratio = statistics.median(rates[1]) / statistics.median(rates[0])
        line += (
            f"; hiredis {spread(rates[1], ' items/s')}; hiredis / pure = {ratio:.2f}x"
        )
    else:
        line += "; hiredis is not installed (pip install 'mageflow[fast]')"
    print(line + "  target: none, reported")
    for workload in runs:
        await workload.client.redis.aclose()


# --- 5. creating work -----------------------------------------------------------------


CREATIONS = ("chain of refs", "swarm of refs", "swarm of signed", "swarm.add(refs)")


async def sign_many(workload: SwarmWorkload, n: int) -> list[Any]:
    """``n`` signatures, 100 signed at a time (each is a round trip)."""
    gate = asyncio.Semaphore(100)

    async def one(i: int) -> Any:
        async with gate:
            return await workload.client.sign("noop", x=i)

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def create(
    counted: SwarmWorkload, direct: SwarmWorkload, wire: Wire, how: str, n: int
) -> tuple[int, float]:
    """Round trips and seconds of one creation of ``n`` items; the signing
    (on ``direct``, not through the proxy) and the open swarm are not counted."""
    work: list[Any] = ["noop"] * n
    if how == "swarm of signed":
        work = await sign_many(direct, n)
    opened = await counted.client.swarm(max_concurrency=CAP) if "add" in how else None
    wire.reset()
    started = time.perf_counter()
    if how.startswith("chain"):
        await counted.client.chain(work)
    elif opened is not None:
        await opened.add(work)
    else:
        await counted.client.swarm(work, max_concurrency=CAP)
    return wire.total, time.perf_counter() - started


async def row_creation(url: str, sizes: Sequence[int]) -> None:
    """Row 5: creating work must cost the same round trips at any size."""
    heading(
        "5. round trips of creating work, on the wire (wall time through the "
        "counting proxy)"
    )
    async with Wire(url) as wire:
        counted, direct = SwarmWorkload(wire.url), SwarmWorkload(url)
        await create(counted, direct, wire, "swarm.add(refs)", 2)  # scripts load
        for how in CREATIONS:
            await create(counted, direct, wire, how, 2)
        print(
            f"{'creation':<18}"
            + "".join(f"{f'{n:,} items':>20}" for n in sizes)
            + "  target"
        )
        for how in CREATIONS:
            cells, counts = "", set()
            for n in sizes:
                await direct.redis.flushdb()
                count, seconds = await create(counted, direct, wire, how, n)
                counts.add(count)
                cells += f"{f'{count} in {seconds:.3f} s':>20}"
            print(f"{how:<18}{cells}  same at every size  {verdict(len(counts) == 1)}")
        await counted.aclose()
        await direct.aclose()
    print("signing the signatures is not counted: only the chain/swarm/add call.")


# --- 6. lifecycle ---------------------------------------------------------------------


ACTIONS = ("pause", "resume", "stop", "remove")


async def lifecycle(
    workload: SwarmWorkload, wire: Wire, kind: str, n: int
) -> list[tuple[int, float]]:
    """Round trips and seconds of each of :data:`ACTIONS` on a new ``kind``
    of ``n`` children, in order."""
    client = workload.client
    workflow: mageflow.TaskSignature[Any]
    if kind == "chain":
        workflow = await client.chain(["noop"] * n)
    else:
        workflow = await client.swarm(["noop"] * n, max_concurrency=CAP)
    paid = []
    for action in ACTIONS:
        wire.reset()
        started = time.perf_counter()
        await getattr(client, action)(workflow.id)
        paid.append((wire.total, time.perf_counter() - started))
    return paid


async def row_lifecycle(url: str, sizes: Sequence[int]) -> None:
    """Row 6: so must acting on a whole workflow."""
    heading("6. round trips of pause / resume / stop / remove, on the wire")
    async with Wire(url) as wire:
        workload = SwarmWorkload(wire.url)
        await workload.redis.flushdb()
        await lifecycle(workload, wire, "swarm", 2)  # scripts load
        await lifecycle(workload, wire, "chain", 2)
        print(
            f"{'workflow':<16}"
            + "".join(f"{f'{n:,} children':>22}" for n in sizes)
            + "  target"
        )
        for kind in ("chain", "swarm"):
            paid = [await lifecycle(workload, wire, kind, n) for n in sizes]
            for i, action in enumerate(ACTIONS):
                cells = "".join(
                    f"{f'{each[i][0]} in {each[i][1]:.3f} s':>22}" for each in paid
                )
                same = len({each[i][0] for each in paid}) == 1
                print(
                    f"{kind + ' ' + action:<16}{cells}  same at every size  "
                    f"{verdict(same)}"
                )
        await workload.aclose()


# --- 8. where the time goes -----------------------------------------------------------

AREAS = (
    ("hatchet_sdk", "hatchet-sdk: aio_mock_run, its Context"),
    ("/redis/", "redis-py: commands, pool, replies"),
    ("/mageflow/", "mageflow"),
    ("/asyncio/", "asyncio: the event loop, tasks"),
    ("pydantic", "pydantic"),
)


STDLIB = "Python itself: the rest of the standard library, builtins"

Where = tuple[str, int, str]
"""A profiled function: (file, line, name), as :mod:`pstats` keys them."""


def home(where: Where) -> str | None:
    """The part of the stack a profiled function is in, or ``None`` for the
    standard library and builtins, whose time belongs to their callers."""
    filename, _, function = where
    if filename == "~" and any(w in function for w in ("socket", "epoll")):
        return "system calls: socket send/recv, epoll"
    for fragment, name in AREAS:
        if fragment in filename or fragment in function:
            return name
    return None


def shares(
    where: Where, table: dict[Where, Any], memo: dict[Where, Counter[str]]
) -> Counter[str]:
    """How ``where``'s own time splits among the parts of the stack: its own
    part, or (standard library, builtins) its callers' parts, in proportion
    to the time spent under each, up the call graph. So the ``queue.Queue``
    hatchet-sdk makes per run counts as hatchet-sdk's."""
    if where in memo:
        return memo[where]
    memo[where] = Counter({STDLIB: 1.0})  # a cycle, or no caller: Python's
    part = home(where)
    callers = table[where][4]
    if part is not None or not callers:
        memo[where] = Counter({part or STDLIB: 1.0})
        return memo[where]
    weights = {caller: max(timing[2], 1e-9) for caller, timing in callers.items()}
    total = sum(weights.values())
    split: Counter[str] = Counter()
    for caller, weight in weights.items():
        if caller in table:
            for name, share in shares(caller, table, memo).items():
                split[name] += share * weight / total
    memo[where] = split or Counter({STDLIB: 1.0})
    return memo[where]


def time_by_area(stats: pstats.Stats) -> Counter[str]:
    """Own time per part of the stack (see :func:`shares`)."""
    table: dict[Where, Any] = stats.stats  # type: ignore[attr-defined]
    memo: dict[Where, Counter[str]] = {}
    by: Counter[str] = Counter()
    for where, entry in table.items():
        for name, share in shares(where, table, memo).items():
            by[name] += entry[2] * share
    return by


class CollectorTime:
    """Time spent in the cyclic garbage collector inside a ``with`` block,
    which a profile scatters over whatever function was allocating."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._started = 0.0

    def _note(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections += 1

    def __enter__(self) -> CollectorTime:
        gc.callbacks.append(self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._note)


async def row_profile(url: str, size: int, rounds: int) -> None:
    """Row 8: where a swarm's time goes, for when a speed target is missed."""
    heading(
        f"8. where the time of a swarm of {size:,} goes (cProfile; the standard "
        "library's time counted to its callers)"
    )
    workload = SwarmWorkload(url)
    await workload.redis.flushdb()
    await workload.warm_up(CAP)
    swarm = await workload.swarm(size, CAP)
    profile = cProfile.Profile()
    with CollectorTime() as collector:
        profile.enable()
        await workload.run(swarm, size)
        profile.disable()
    await workload.aclose()
    stats = pstats.Stats(profile)
    by = time_by_area(stats)
    total = sum(by.values())
    for name, seconds in by.most_common():
        print(f"{name:<44}{seconds:>7.3f} s{seconds / total:>6.0%}")
    print(
        f"of all of it, the cyclic garbage collector: {collector.seconds:.3f} s in "
        f"{collector.collections} collections (counted to whatever it interrupted)"
    )
    print(
        f"\nthe largest cumulative times (of {total:.2f} s under the profiler; "
        "calls: a coroutine's every resumption counts as one):"
    )
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    ours = [
        (entry[3], entry[1], where)
        for where, entry in table.items()
        if any(part in where[0] for part in ("/mageflow/", "hatchet_sdk", "/redis/"))
    ]
    for cumulative, calls, (filename, line, function) in sorted(ours)[::-1][:14]:
        short = filename.split("site-packages/")[-1].split(str(CURRENT) + "/")[-1]
        print(f"{cumulative:>7.3f} s{calls:>7}  {function} ({short}:{line})")
    await collector_what_if(url, size, rounds)


async def collector_what_if(url: str, size: int, rounds: int) -> None:
    """The same swarm with the objects alive at its start frozen out of the
    collector's reach (``gc.freeze()``, undone after), alternating with the
    default: how much of an item's cost is the collector re-scanning the
    process's long-lived objects (imported modules, mostly)."""
    workload = SwarmWorkload(url)
    await workload.warm_up(CAP)
    runs: dict[str, list[tuple[float, float]]] = {"default": [], "frozen": []}

    async def measured(frozen: bool) -> float:
        if frozen:
            gc.freeze()
        with CollectorTime() as collector:
            seconds = await workload.timed(size, CAP)
        gc.unfreeze()
        runs["frozen" if frozen else "default"].append((seconds, collector.seconds))
        return seconds

    await alternate(rounds, lambda: measured(False), lambda: measured(True))
    await workload.aclose()
    print(
        f"\nwhat if the long-lived objects were frozen (gc.freeze()), {rounds} rounds:"
    )
    for name, each in runs.items():
        rates = [size / seconds for seconds, _ in each]
        collecting = [collector * 1e3 for _, collector in each]
        print(
            f"{name:<9}{spread(rates, ' items/s'):<28}"
            f"collector {spread(collecting, ' ms')}"
        )
    print(f"({len(gc.get_objects()):,} objects tracked by the collector now)")


# --- the run --------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    quick = args.quick
    rounds = args.rounds or (2 if quick else 5)
    rows = {int(n) for n in args.only.split(",")} if args.only else set(range(1, 7))
    rows |= {7} if args.scale else set()
    rows |= {8} if args.profile else set()
    with ensure_redis(probe=None) as url:  # REDIS_URL, else a private server
        probe = SwarmWorkload(url)
        await print_machine(probe.redis)
        await probe.aclose()
        if 1 in rows:
            sizes = (1_000,) if quick else (1_000, 100_000)
            evalsha = await row_round_trips(url, sizes)
        elif 3 in rows:
            evalsha = await evalsha_calls(url, 1_000)
        if 2 in rows:
            sizes = (1_000,) if quick else (1_000, 10_000)
            row_against_today(url, baseline_tree(args.baseline), sizes, rounds)
        if 3 in rows:
            await row_against_bare(url, 1_000, evalsha, max(rounds, 3))
        if 4 in rows:
            await row_hiredis(url, 1_000, max(rounds, 3))
        if 5 in rows:
            await row_creation(url, (10, 1_000) if quick else (10, 1_000, 100_000))
        if 6 in rows:
            await row_lifecycle(url, (10, 1_000) if quick else (10, 1_000, 10_000))
        if 7 in rows:
            heading("7. scale: bench/scale.py")
            await scale.main(url, 10_000 if quick else 100_000, 500)
        if 8 in rows:
            await row_profile(url, 1_000, max(rounds, 3))
    print(f"\n{load()} at the end")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 rounds")
    parser.add_argument("--scale", action="store_true", help="and bench/scale.py")
    parser.add_argument("--profile", action="store_true", help="row 8: cProfile")
    parser.add_argument("--rounds", type=int, default=0, help="rounds of rows 2-4")
    parser.add_argument("--only", help="the rows to run, e.g. 1,3")
    parser.add_argument("--baseline", help=f"a checkout of {BASELINE} to use")
    asyncio.run(main(parser.parse_args()))
