"""mageflow against plain Hatchet, on a real engine.

    scripts/hatchet-engine start      # once
    python bench/e2e.py [--repeat 3] [--runs 200] [--chain 20] [--caps 30,200]
                        [--profile]

Starts its own ``redis-server`` on a free loopback port (or uses
``REDIS_URL``) and its own worker (this file, with ``--worker``) in a
subprocess, in a fresh Hatchet namespace, and measures wall time from the
client's side. Every mageflow case includes creating its signatures in
Redis; it ends when ``client.wait(workflow_id)`` returns: the end of the
chain or swarm is announced on Redis pub/sub, nothing polls.

* chain: ``client.chain([...20 no-op tasks])``, started with
  ``aio_run_no_wait``, against the same 20 no-op steps as one plain Hatchet
  DAG workflow (``parents=``, one run), timed two ways: ``aio_run`` (the
  SDK's result listener tells the client), and triggered without waiting,
  its last step setting a Redis key that the client polls (every
  ``--poll`` seconds: 5 ms, a fraction of one engine hop). Two more rows,
  20 sequential ``aio_run`` of a plain task and of a mageflow task, show
  what one client-driven hop costs and what mageflow's task wrapper adds.
* swarm: ``client.swarm([...200 no-op tasks], max_concurrency=cap)`` for each
  ``--caps`` value (30 and 200; made from a list, it is closed), started with
  ``aio_run_no_wait``, against plain Hatchet *with the same cap*: 200 runs
  of a standalone task declared with ``concurrency=ConcurrencyExpression(
  "input.group", max_runs=cap, GROUP_ROUND_ROBIN)`` (one group per round),
  triggered in bulk (``aio_run_many(..., wait_for_result=False)``). Capped at
  200, a swarm of 200 is uncapped, so it is also set against 200 runs of a
  task without a concurrency limit. Both sides end on the same completion
  signal, an announcement on Redis pub/sub that the client subscribed to
  before it started: mageflow announces the swarm's end (``client.wait``);
  each plain run INCRs a counter, and the run that brings it to 200
  PUBLISHes. Two rows more time the uncapped plain runs the older ways: all
  results awaited at once with ``aio_result()`` (the SDK's listener), and
  the counter polled every ``--poll`` seconds.
* many: ``aio_run_many`` of 200 runs of a plain task against the same for a
  mageflow-wrapped task (no signature); ``aio_run_many`` awaits results ten
  at a time, so these rows measure the SDK more than the engine or mageflow.

Prints the machine (CPU model, cores, Python), the medians of ``--repeat``
rounds (after one warm-up round, cases interleaved, all in this one run),
and each ratio mageflow / plain next to its target and whether it was met:
a chain below 0.7x of the plain DAG, a capped swarm within 1.1x of plain
Hatchet with the same cap (at each cap), and the uncapped swarm within 1.1x
of ``aio_run_many``. Ratios without a target say so. ``--only
chain_dag,chain_mf`` runs some cases.

``--profile`` runs each chain and swarm case once more with the worker
logging, per run, when it started and how long each Redis round trip
(``SignatureStore`` method) and each trigger took, and with the CPU time of
each process group (client, worker, redis-server, hatchet-lite, PostgreSQL)
read from /proc; it prints where one chain hop and the swarm spend their time.
``--in-flight N`` (an experiment) sets the worker's dispatcher's
``max_in_flight``: how many trigger calls it keeps under way before it holds
new starts back to send them together. ``--threads N`` (an experiment) gives
the worker's event loop a default executor of N threads: the SDK's own
``aio_`` calls run in it (mageflow's triggers no longer do: they go on
``grpc.aio``, see ``mageflow/dispatch/hatchet.py``).

Needs the engine's ``HATCHET_CLIENT_*`` settings in the environment, or reads
them with ``scripts/hatchet-engine env``.
"""

import argparse
import asyncio
import contextlib
import functools
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
WORKER_NAME = "mageflow-bench"
CHAIN_TARGET = 0.7
"""mageflow's chain / the plain DAG of the same steps: below this."""
SWARM_TARGET = 1.1
"""mageflow's swarm / plain Hatchet with the same cap (or none): at most."""


def load_engine_env() -> None:
    if os.environ.get("HATCHET_CLIENT_TOKEN"):
        return
    out = subprocess.run(
        [str(ROOT / "scripts" / "hatchet-engine"), "env"],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.exit(
            "bench/e2e.py needs a running engine: scripts/hatchet-engine start\n"
            + out.stderr.strip()
        )
    for line in out.stdout.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.startswith("HATCHET_CLIENT_"):
            os.environ[name] = value


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """``REDIS_URL`` if set, else a private redis-server on a free port."""
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("bench/e2e.py needs redis-server (./scripts/test installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="mageflow-bench-redis-") as workdir:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                        c.sendall(b"PING\r\n")
                        if c.recv(16).startswith(b"+PONG"):
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"redis-server did not start on port {port}")
                time.sleep(0.05)  # ok: polling interval for a condition
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=10)


# --- the tasks (built after the environment is set) --------------------------


class Noop(BaseModel):
    n: int = 0
    signal: str = ""
    """Plain runs only: a Redis key to INCR when done (the last DAG step sets
    it), so plain Hatchet can also be timed to completion the way mageflow is,
    through Redis, instead of through the SDK's result listener."""
    total: int = 0
    """With ``signal``: the run that brings the counter to ``total`` PUBLISHes
    on the channel ``signal``, as mageflow announces a swarm's end."""
    group: str = ""
    """The concurrency group of a capped plain task (one per round)."""


def build(chain_length: int, caps: list[int]) -> dict[str, Any]:
    # imported here: Hatchet() reads HATCHET_CLIENT_* when it is built
    from hatchet_sdk import (
        ConcurrencyExpression,
        ConcurrencyLimitStrategy,
        Context,
        Hatchet,
    )

    import mageflow

    hatchet = Hatchet()
    mf = mageflow.Mageflow(hatchet)  # Redis from REDIS_URL
    log = _profile_log()

    async def plain_body(msg: Noop) -> dict[str, int]:
        started = time.time()
        if msg.signal:
            done = await mf.redis.incr(msg.signal)
            if msg.total and done == msg.total:
                await mf.redis.publish(msg.signal, "done")
        if log is not None:
            log("plain-run", started, time.time())
        return {"n": msg.n}

    @hatchet.task(name="bench-plain-noop", input_validator=Noop)
    async def plain_noop(msg: Noop, ctx: Context) -> dict[str, int]:
        return await plain_body(msg)

    def capped(cap: int) -> Any:
        @hatchet.task(
            name=f"bench-plain-cap{cap}",
            input_validator=Noop,
            concurrency=ConcurrencyExpression(
                expression="input.group",
                max_runs=cap,
                limit_strategy=ConcurrencyLimitStrategy.GROUP_ROUND_ROBIN,
            ),
        )
        async def plain_capped(msg: Noop, ctx: Context) -> dict[str, int]:
            return await plain_body(msg)

        return plain_capped

    @mf.task(name="bench-mf-noop")
    async def mf_noop(msg: Noop) -> Noop:
        return msg

    dag = hatchet.workflow(name="bench-plain-dag", input_validator=Noop)
    previous = None

    def make_step(last: bool) -> Callable[[Noop, Context], Awaitable[Any]]:
        async def step(msg: Noop, ctx: Context) -> dict[str, int]:
            if log is not None:
                log("dag-step", time.time(), time.time())
            if last and msg.signal:
                await mf.redis.incr(msg.signal)
            return {"n": msg.n}

        return step

    for i in range(chain_length):
        previous = dag.task(
            name=f"step-{i:02d}", parents=[previous] if previous else []
        )(make_step(i == chain_length - 1))

    return {
        "hatchet": hatchet,
        "mf": mf,
        "plain_noop": plain_noop,
        "plain_capped": {cap: capped(cap) for cap in caps},
        "mf_noop": mf_noop,
        "dag": dag,
    }


# --- profiling (worker side, --profile only) ---------------------------------


@functools.cache
def _profile_log() -> Callable[[str, float, float], None] | None:
    """In the worker with --profile: append (what, start, end) lines to a file.

    Line-buffered, so the bench can read the events of a run right after it
    (one small write per event; only in profile mode).
    """
    path = os.environ.get("MAGEFLOW_BENCH_PROFILE")
    if not path:
        return None
    out = open(path, "a", buffering=1)  # noqa: SIM115 (lives with the worker)

    def log(what: str, start: float, end: float) -> None:
        out.write(f'["{what}",{start:.6f},{end:.6f}]\n')

    return log


def instrument(log: Callable[[str, float, float], None]) -> None:
    """Time mageflow's Redis round trips, its triggers and each signed run.

    Patches classes and module globals of this worker process only (bench
    code, mageflow itself is unchanged): every ``SignatureStore`` method, the
    Hatchet dispatcher's ``trigger``/``trigger_many`` and ``send`` (each call
    to the engine, which may carry many triggers), and ``run_signed``
    (everything mageflow does around a signed run's function).
    """
    from mageflow.dispatch.hatchet import HatchetDispatcher
    from mageflow.run import entry
    from mageflow.store.signatures import SignatureStore

    def timed(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.time()
            try:
                return await original(*args, **kwargs)
            finally:
                log(label, start, time.time())

        setattr(owner, name, wrapper)

    for name in ("create", "load", "load_record", "activate", "finish", "targets",
                 "mark_sent", "swarm_start", "swarm_add", "swarm_item_done",
                 "swarm_close", "swarm_results"):  # fmt: skip
        timed(SignatureStore, name, f"redis:{name}")
    timed(HatchetDispatcher, "trigger", "grpc:trigger")
    timed(HatchetDispatcher, "trigger_many", "grpc:trigger_many")
    timed(HatchetDispatcher, "send", "grpc:send (one call)")
    timed(entry, "run_signed", "run_signed")


def run_worker(chain_length: int, slots: int, caps: list[int]) -> None:
    t = build(chain_length, caps)
    workflows = [t["plain_noop"], *t["plain_capped"].values(), t["mf_noop"], t["dag"]]
    log = _profile_log()
    if log is not None:
        instrument(log)
    if in_flight := int(os.environ.get("MAGEFLOW_BENCH_IN_FLIGHT") or 0):
        # an experiment (--in-flight): how many trigger calls the dispatcher
        # keeps under way before it holds starts back to send them together
        t["mf"].dispatch_backend.max_in_flight = in_flight
    lifespan = None
    if threads := int(os.environ.get("MAGEFLOW_BENCH_THREADS") or 0):
        # an experiment (--threads): the SDK's triggers run in the loop's
        # default executor, min(32, cores + 4) threads unless set here
        from concurrent.futures import ThreadPoolExecutor

        async def lifespan() -> Any:
            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(threads))
            yield None

    worker = t["mf"].worker(
        os.environ.get("MAGEFLOW_BENCH_WORKER_NAME", WORKER_NAME),
        slots=slots,
        workflows=workflows,
        lifespan=lifespan,
    )
    worker.start()


# --- measuring -------------------------------------------------------------


async def wait_for_worker(t: dict[str, Any], name: str, process: Any) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(
                f"the bench worker exited with {process.returncode}; "
                f"see {os.environ['MAGEFLOW_BENCH_WORKER_LOG']}"
            )
        workers = (await t["hatchet"].workers.aio_list()).rows or []
        if any(w.name == name and w.status == "ACTIVE" for w in workers):
            return
        await asyncio.sleep(0.2)  # ok: polling interval for a condition
    sys.exit("the bench worker did not register within 90s")


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await asyncio.wait_for(fn(), timeout=600)
    return time.perf_counter() - started


class Case:
    def __init__(
        self, key: str, label: str, run: Callable[["Case"], Awaitable[None]]
    ) -> None:
        self.key, self.label, self._run = key, label, run
        self.times: list[float] = []
        # client-side phases of the mageflow cases: create, start, wait
        self.phases: dict[str, list[float]] = defaultdict(list)

    def fn(self) -> Awaitable[None]:
        return self._run(self)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def make_cases(args: argparse.Namespace, t: dict[str, Any]) -> list[Case]:
    mf, mf_noop, plain_noop = t["mf"], t["mf_noop"], t["plain_noop"]
    n, runs = args.chain, args.runs

    async def mageflow_workflow(case: Case, create: Any) -> None:
        t0 = time.perf_counter()
        workflow = await create()
        t1 = time.perf_counter()
        await workflow.aio_run_no_wait(Noop(n=1))
        t2 = time.perf_counter()
        # The completion signal: the end is announced on Redis pub/sub, and
        # wait() returns the result (or raises if the workflow failed).
        result = await mf.wait(workflow.id, timeout=600)
        t3 = time.perf_counter()
        assert result is not None, workflow.id
        for name, value in (("create", t1 - t0), ("start", t2 - t1),
                            ("wait", t3 - t2)):  # fmt: skip
            case.phases[name].append(value)

    async def chain_dag(case: Case) -> None:
        out = await t["dag"].aio_run(Noop(n=1))
        assert len(out) == n, out

    async def wait_count(key: str, count: int) -> None:
        while True:
            if int(await mf.redis.get(key) or 0) >= count:
                return
            await asyncio.sleep(args.poll)  # ok: polling interval for a condition

    async def chain_dag_redis(case: Case) -> None:
        key = f"bench:signal:{uuid.uuid4().hex}"
        t0 = time.perf_counter()
        await t["dag"].aio_run(Noop(n=1, signal=key), wait_for_result=False)
        t1 = time.perf_counter()
        await wait_count(key, 1)
        case.phases["start"].append(t1 - t0)
        case.phases["wait"].append(time.perf_counter() - t1)

    async def chain_mf(case: Case) -> None:
        await mageflow_workflow(case, lambda: mf.chain([mf_noop] * n))

    def sequential(task: Any) -> Callable[[Case], Awaitable[None]]:
        async def run(case: Case) -> None:
            for i in range(n):
                await task.aio_run(Noop(n=i))

        return run

    async def swarm_plain(case: Case) -> None:
        items = [plain_noop.create_bulk_run_item(Noop(n=i)) for i in range(runs)]
        refs = await plain_noop.aio_run_many(items, wait_for_result=False)
        results = await asyncio.gather(*(ref.aio_result() for ref in refs))
        assert len(results) == runs

    async def swarm_plain_redis(case: Case) -> None:
        key = f"bench:signal:{uuid.uuid4().hex}"
        items = [
            plain_noop.create_bulk_run_item(Noop(n=i, signal=key)) for i in range(runs)
        ]
        t0 = time.perf_counter()
        await plain_noop.aio_run_many(items, wait_for_result=False)
        t1 = time.perf_counter()
        await wait_count(key, runs)
        case.phases["start"].append(t1 - t0)
        case.phases["wait"].append(time.perf_counter() - t1)

    # One pub/sub connection for every plain round, as mageflow keeps one per
    # process for all of its waits.
    shared: dict[str, Any] = {}

    def swarm_plain_announced(task: Any) -> Callable[[Case], Awaitable[None]]:
        """``runs`` plain runs of ``task``, ended by the last one's PUBLISH."""

        async def run(case: Case) -> None:
            key = f"bench:signal:{uuid.uuid4().hex}"
            t0 = time.perf_counter()
            if "pubsub" not in shared:
                shared["pubsub"] = mf.redis.pubsub(ignore_subscribe_messages=True)
            pubsub = shared["pubsub"]
            await pubsub.subscribe(key)
            try:
                items = [
                    task.create_bulk_run_item(
                        Noop(n=i, signal=key, total=runs, group=key)
                    )
                    for i in range(runs)
                ]
                t1 = time.perf_counter()
                await task.aio_run_many(items, wait_for_result=False)
                t2 = time.perf_counter()
                channels = (key, key.encode())  # with or without decoding
                while True:
                    message = await pubsub.get_message(timeout=600)
                    if message is not None and message["channel"] in channels:
                        break
                t3 = time.perf_counter()
            finally:
                await pubsub.unsubscribe(key)
            for name, value in (("create", t1 - t0), ("start", t2 - t1),
                                ("wait", t3 - t2)):  # fmt: skip
                case.phases[name].append(value)

        return run

    def swarm_mf(cap: int) -> Callable[[Case], Awaitable[None]]:
        async def create() -> Any:
            # Made from a list, the swarm is closed: it completes on its own.
            return await mf.swarm([mf_noop] * runs, max_concurrency=cap)

        async def run(case: Case) -> None:
            await mageflow_workflow(case, create)

        return run

    def many(task: Any) -> Callable[[Case], Awaitable[None]]:
        async def run(case: Case) -> None:
            items = [task.create_bulk_run_item(Noop(n=i)) for i in range(runs)]
            results = await task.aio_run_many(items)
            assert len(results) == runs

        return run

    caps = args.caps
    cases = [
        Case("chain_dag", f"chain {n}: plain DAG, aio_run", chain_dag),
        Case("chain_dag_redis", f"chain {n}: plain DAG, done polled in Redis",
             chain_dag_redis),
        Case("chain_mf", f"chain {n}: mageflow client.chain", chain_mf),
        Case("seq_plain", f"chain {n}: plain aio_run x{n}", sequential(plain_noop)),
        Case("seq_mf", f"chain {n}: mageflow task aio_run x{n}", sequential(mf_noop)),
        Case("swarm_plain", f"swarm {runs}: plain aio_run_many, gathered", swarm_plain),
        Case("swarm_plain_redis", f"swarm {runs}: plain, done polled in Redis",
             swarm_plain_redis),
        Case("swarm_plain_pub", f"swarm {runs}: plain aio_run_many, uncapped",
             swarm_plain_announced(plain_noop)),
        *(Case(f"swarm_plain_cap{cap}", f"swarm {runs}: plain, max_runs={cap}",
               swarm_plain_announced(t["plain_capped"][cap])) for cap in caps),
        *(Case(f"swarm_mf_{cap}", f"swarm {runs}: mageflow, max_concurrency={cap}",
               swarm_mf(cap)) for cap in caps),
        Case("many_plain", f"many {runs}: plain aio_run_many", many(plain_noop)),
        Case("many_mf", f"many {runs}: mageflow task aio_run_many", many(mf_noop)),
    ]  # fmt: skip
    if args.only:
        wanted = set(args.only.split(","))
        cases = [c for c in cases if c.key in wanted]
    return cases


def print_table(args: argparse.Namespace, cases: list[Case]) -> None:
    by_key = {c.key: c for c in cases}
    print()
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()}, "
        f"Python {platform.python_version()}"
    )
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at the end (1, 5, 15 min): {load}; the engine is shared")
    print(
        f"engine: hatchet-lite (scripts/hatchet-engine), worker slots {args.slots}, "
        f"median of {args.repeat} rounds after 1 warm-up"
    )
    print()
    width = max(len(c.label) for c in cases)
    print(f"{'case':<{width}}  {'median s':>9}  {'min s':>7}  {'max s':>7}")
    print(f"{'-' * width}  {'-' * 9}  {'-' * 7}  {'-' * 7}")
    for c in cases:
        print(
            f"{c.label:<{width}}  {c.median:>9.3f}  {min(c.times):>7.3f}  "
            f"{max(c.times):>7.3f}"
        )
    print()

    def ratio(
        what: str, top: str, bottom: str, target: float | None, below: bool = False
    ) -> None:
        """mageflow / plain, medians; the spread of the rounds' own ratios
        (interleaved, so one round's cases ran side by side); the target."""
        if top not in by_key or bottom not in by_key:
            return
        r = by_key[top].median / by_key[bottom].median
        rounds = [
            a / b for a, b in zip(by_key[top].times, by_key[bottom].times, strict=True)
        ]
        spread = f"rounds {min(rounds):.2f}-{max(rounds):.2f}"
        if target is None:
            verdict = "no target (for reference)"
        else:
            met = r < target if below else r <= target
            sign = "<" if below else "<="
            verdict = f"target {sign} {target}x: {'met' if met else 'MISSED'}"
        print(f"ratio {what:<52} {r:>5.2f}x  ({spread})  {verdict}")

    ratio("chain, mageflow chain / plain DAG", "chain_mf", "chain_dag", CHAIN_TARGET,
          below=True)  # fmt: skip
    ratio("chain, mageflow chain / plain DAG polled", "chain_mf", "chain_dag_redis",
          None)  # fmt: skip
    ratio(f"chain, mageflow aio_run x{args.chain} / plain aio_run x{args.chain}",
          "seq_mf", "seq_plain", None)  # fmt: skip
    for cap in args.caps:
        ratio(f"swarm, mageflow cap {cap} / plain max_runs={cap}",
              f"swarm_mf_{cap}", f"swarm_plain_cap{cap}", SWARM_TARGET)  # fmt: skip
    uncapped = [cap for cap in args.caps if cap >= args.runs]
    for cap in uncapped[:1]:
        ratio(f"swarm, mageflow uncapped (cap {cap}) / plain aio_run_many",
              f"swarm_mf_{cap}", "swarm_plain_pub", SWARM_TARGET)  # fmt: skip
        ratio(f"swarm, mageflow uncapped (cap {cap}) / plain gathered",
              f"swarm_mf_{cap}", "swarm_plain", None)  # fmt: skip
        ratio(f"swarm, mageflow uncapped (cap {cap}) / plain polled",
              f"swarm_mf_{cap}", "swarm_plain_redis", None)  # fmt: skip
    ratio("many, mageflow task / plain aio_run_many", "many_mf", "many_plain", None)
    phased = [c for c in cases if c.phases]
    if phased:
        print()
        print(
            "client-side phases (median s): create (mageflow: store the "
            "signatures) / start (trigger) / wait"
        )
        for c in phased:
            parts = " / ".join(
                f"{statistics.median(c.phases[p]):.3f}" if c.phases[p] else "  -  "
                for p in ("create", "start", "wait")
            )
            print(f"  {c.label:<{width}}  {parts}")


# --- the profile -------------------------------------------------------------


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _read_events(path: Path, offset: int) -> list[tuple[str, float, float]]:
    with path.open() as f:
        f.seek(offset)
        return [tuple(json.loads(line)) for line in f if line.strip()]  # type: ignore[misc]


CPU_GROUPS = ("bench client", "worker", "redis-server", "hatchet-lite", "postgres")


def cpu_seconds(worker_pid: int, redis_port: str) -> dict[str, float]:
    """CPU time (user + system) used so far by each group of processes.

    From /proc: this process, the worker's process group (the worker and the
    SDK's action-listener process), our redis-server, hatchet-lite and
    PostgreSQL. The engine's groups include anything else running on it.
    """
    tick = os.sysconf("SC_CLK_TCK")
    totals = dict.fromkeys(CPU_GROUPS, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        used = (int(fields[11]) + int(fields[12])) / tick
        pid, pgrp = int(entry.name), int(fields[2])
        if pid == os.getpid():
            group = "bench client"
        elif pgrp == worker_pid:
            group = "worker"
        elif comm.startswith("redis-server") and f":{redis_port}" in cmdline:
            group = "redis-server"
        elif comm.startswith("hatchet-lite"):
            group = "hatchet-lite"
        elif comm.startswith("postgres"):
            group = "postgres"
        else:
            continue
        totals[group] += used
    return totals


async def profiled(
    args: argparse.Namespace, case: Case, path: Path
) -> tuple[float, dict[str, float], list[tuple[str, float, float]], float, float]:
    """Run ``case`` once more: its wall time, CPU per group, worker events."""
    size = _size(path)
    cpu_before = cpu_seconds(args.worker_pid, args.redis_port)
    start = time.time()
    await timed(case.fn)
    end = time.time()
    await asyncio.sleep(0.5)  # ok: the worker's last writes of the run land
    cpu_after = cpu_seconds(args.worker_pid, args.redis_port)
    cpu = {g: cpu_after[g] - cpu_before[g] for g in CPU_GROUPS}
    events = [e for e in _read_events(path, size) if start <= e[1] <= end]
    return end - start, cpu, events, start, end


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def summarize_ops(events: list[tuple[str, float, float]], runs: int) -> None:
    totals: dict[str, list[float]] = defaultdict(list)
    for what, s, e in events:
        if what.startswith(("redis:", "grpc:")):
            totals[what].append(e - s)
    for what in sorted(totals):
        v = totals[what]
        print(
            f"    {what:<22} x{len(v):<4} median {ms(statistics.median(v))}  "
            f"total {ms(sum(v))}  ({len(v) / runs:.1f} per run)"
        )


async def profile(
    args: argparse.Namespace, t: dict[str, Any], cases: list[Case]
) -> None:
    path = Path(args.profile_path)
    by_key = {c.key: c for c in cases}
    print()
    print("profile: one more run of each, with the worker's own timings and the")
    print("CPU seconds each process group used during it (2 cores = 2 s per s)")

    # Redis round trip seen from this process, for scale
    mf = t["mf"]
    pings = []
    for _ in range(200):
        s = time.perf_counter()
        await mf.redis.ping()
        pings.append(time.perf_counter() - s)
    print(f"  Redis PING round trip, idle: median {ms(statistics.median(pings))}")

    keys = ["chain_dag", "chain_dag_redis", "chain_mf", "swarm_plain_pub",
            *(f"swarm_plain_cap{cap}" for cap in args.caps),
            *(f"swarm_mf_{cap}" for cap in args.caps)]  # fmt: skip
    for key in keys:
        if key not in by_key:
            continue
        case = by_key[key]
        wall, cpu, events, start, end = await profiled(args, case, path)
        print()
        print(f"  {case.label}: {wall:.3f} s")
        work = [e for e in events if e[0] in ("run_signed", "dag-step", "plain-run")]
        if work:
            first, last = min(e[1] for e in work), max(e[2] for e in work)
            print(
                f"    case start -> first run starts {ms(first - start)}; "
                f"last run ends -> case end {ms(end - last)}"
            )
        print("    CPU s: " + ", ".join(f"{g} {cpu[g]:.2f}" for g in CPU_GROUPS))
        runs = sorted((s, e) for what, s, e in events if what == "run_signed")
        steps = sorted(s for what, s, _ in events if what == "dag-step")
        if steps:
            gaps = [b - a for a, b in itertools.pairwise(steps)]
            print(
                f"    step start -> next step start: median "
                f"{ms(statistics.median(gaps))} (the engine's DAG hop)"
            )
        if runs and key == "chain_mf":
            hop = statistics.median(b[0] - a[0] for a, b in itertools.pairwise(runs))
            work = statistics.median(e - s for s, e in runs)
            print(
                f"    step start -> next step start: median {ms(hop)}; of it, in "
                f"the worker around the function (run_signed) {ms(work)}, the "
                f"rest {ms(hop - work)} (engine: new run queued, assigned, "
                "delivered; SDK)"
            )
        elif runs:
            first, last = runs[0][0], max(e for _, e in runs)
            inside = [e - s for s, e in runs]
            print(
                f"    {len(runs)} runs, first start -> last end {ms(last - first)}; "
                f"run_signed median {ms(statistics.median(inside))}"
            )
        if runs:
            summarize_ops(events, len(runs))


async def measure(args: argparse.Namespace, process: Any) -> None:
    t = build(args.chain, args.caps)
    await wait_for_worker(
        t, os.environ["HATCHET_CLIENT_NAMESPACE"] + WORKER_NAME, process
    )
    cases = make_cases(args, t)
    for case in cases:  # warm-up round: connections, listeners, first dispatch
        await timed(case.fn)
        case.phases.clear()
    for _ in range(args.repeat):
        for case in cases:  # interleaved, so drift hits every case alike
            case.times.append(await timed(case.fn))
    print_table(args, cases)
    if args.profile:
        await profile(args, t, cases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--chain", type=int, default=20)
    parser.add_argument("--slots", type=int, default=100)
    parser.add_argument(
        "--caps",
        type=lambda text: [int(c) for c in text.split(",")],
        default=[30, 200],
        help="the swarm caps to compare (a cap >= --runs is uncapped)",
    )
    parser.add_argument("--poll", type=float, default=0.005)
    parser.add_argument("--only", help="comma-separated case keys, e.g. chain_dag")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="experiment: the worker loop's default executor size",
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        default=0,
        help="experiment: the worker dispatcher's max_in_flight (trigger calls)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    load_engine_env()
    if args.worker:
        run_worker(args.chain, args.slots, args.caps)
        return
    os.environ["HATCHET_CLIENT_NAMESPACE"] = f"bench_{uuid.uuid4().hex[:8]}_"
    workdir = Path(tempfile.mkdtemp(prefix="mageflow-bench-"))
    log_path = workdir / "worker.log"
    os.environ["MAGEFLOW_BENCH_WORKER_LOG"] = str(log_path)
    args.profile_path = str(workdir / "profile.jsonl")
    with redis_server() as redis_url:
        os.environ["REDIS_URL"] = redis_url
        args.redis_port = redis_url.rsplit(":", 1)[-1].split("/")[0]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT), os.environ.get("PYTHONPATH", "")]
            ),
        }
        if args.profile:
            env["MAGEFLOW_BENCH_PROFILE"] = args.profile_path
        if args.threads:
            env["MAGEFLOW_BENCH_THREADS"] = str(args.threads)
        if args.in_flight:
            env["MAGEFLOW_BENCH_IN_FLIGHT"] = str(args.in_flight)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, __file__, "--worker", "--chain", str(args.chain),
                 "--slots", str(args.slots),
                 "--caps", ",".join(str(c) for c in args.caps)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        args.worker_pid = process.pid
        try:
            asyncio.run(measure(args, process))
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
