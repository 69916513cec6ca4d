"""mageflow against plain Hatchet, on a real engine.

    scripts/hatchet-engine start      # once
    python bench/e2e.py [--repeat 3] [--runs 200] [--chain 20]

Starts its own worker (this file, with ``--worker``) in a subprocess, in a
fresh namespace, and measures wall time from the client's side:

* chain: a 20-step plain Hatchet DAG (one run, each step after the previous)
  against 20 sequential ``aio_run`` calls of a mageflow task (mageflow's chain
  API is not there yet; sequential runs are what a chain does today). A third
  row, 20 sequential ``aio_run`` of a plain task, separates what sequencing
  from the client costs from what mageflow's wrapper costs.
* many: ``aio_run_many`` of 200 runs of a plain task against the same for a
  mageflow-wrapped task; and the same 200 runs triggered in bulk with all
  their results awaited at once (``aio_run_many`` awaits results ten at a
  time, which makes it measure the SDK more than the engine or mageflow).

Prints the median of ``--repeat`` rounds (after one warm-up round) and the
ratio mageflow / plain. Needs the engine's ``HATCHET_CLIENT_*`` settings in
the environment, or reads them with ``scripts/hatchet-engine env``. The
mageflow client gets ``REDIS_URL`` if set; these tasks do not use Redis.
"""

import argparse
import asyncio
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
WORKER_NAME = "mageflow-bench"


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


# --- the tasks (built after the environment is set) --------------------------


class Noop(BaseModel):
    n: int = 0


def build(chain_length: int) -> dict[str, Any]:
    # imported here: Hatchet() reads HATCHET_CLIENT_* when it is built
    from hatchet_sdk import Context, Hatchet

    import mageflow

    hatchet = Hatchet()
    mf = mageflow.Mageflow(hatchet)

    @hatchet.task(name="bench-plain-noop", input_validator=Noop)
    async def plain_noop(msg: Noop, ctx: Context) -> dict[str, int]:
        return {"n": msg.n}

    @mf.task(name="bench-mf-noop")
    async def mf_noop(msg: Noop) -> Noop:
        return msg

    dag = hatchet.workflow(name="bench-plain-dag", input_validator=Noop)
    previous = None
    for i in range(chain_length):

        async def step(msg: Noop, ctx: Context) -> dict[str, int]:
            return {"n": msg.n}

        previous = dag.task(
            name=f"step-{i:02d}", parents=[previous] if previous else []
        )(step)

    return {
        "Noop": Noop,
        "hatchet": hatchet,
        "mf": mf,
        "plain_noop": plain_noop,
        "mf_noop": mf_noop,
        "dag": dag,
    }


def run_worker(chain_length: int, slots: int) -> None:
    t = build(chain_length)
    worker = t["mf"].worker(
        os.environ.get("MAGEFLOW_BENCH_WORKER_NAME", WORKER_NAME),
        slots=slots,
        workflows=[t["plain_noop"], t["mf_noop"], t["dag"]],
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


async def measure(args: argparse.Namespace, process: Any) -> None:
    t = build(args.chain)
    await wait_for_worker(
        t, os.environ["HATCHET_CLIENT_NAMESPACE"] + WORKER_NAME, process
    )
    noop = t["Noop"]

    async def dag() -> None:
        out = await t["dag"].aio_run(noop(n=1))
        assert len(out) == args.chain, out

    def sequential(task: Any) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            for i in range(args.chain):
                await task.aio_run(noop(n=i))

        return run

    def many(task: Any) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            items = [task.create_bulk_run_item(noop(n=i)) for i in range(args.runs)]
            results = await task.aio_run_many(items)
            assert len(results) == args.runs

        return run

    def many_gathered(task: Any) -> Callable[[], Awaitable[None]]:
        # the same runs, but all results awaited at once: aio_run_many awaits
        # them 10 at a time, which dominates its time on a fast engine
        async def run() -> None:
            items = [task.create_bulk_run_item(noop(n=i)) for i in range(args.runs)]
            refs = await task.aio_run_many(items, wait_for_result=False)
            results = await asyncio.gather(*(ref.aio_result() for ref in refs))
            assert len(results) == args.runs

        return run

    cases: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        (f"chain {args.chain}: plain DAG (1 run)", dag),
        (
            f"chain {args.chain}: plain aio_run x{args.chain}",
            sequential(t["plain_noop"]),
        ),
        (
            f"chain {args.chain}: mageflow aio_run x{args.chain}",
            sequential(t["mf_noop"]),
        ),
        (f"many {args.runs}: plain aio_run_many", many(t["plain_noop"])),
        (f"many {args.runs}: mageflow aio_run_many", many(t["mf_noop"])),
        (f"many {args.runs}: plain, results gathered", many_gathered(t["plain_noop"])),
        (f"many {args.runs}: mageflow, results gathered", many_gathered(t["mf_noop"])),
    ]
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _, fn in cases:  # warm-up round: connections, listeners, first dispatch
        await timed(fn)
    for _ in range(args.repeat):
        for name, fn in cases:  # interleaved, so drift hits every case alike
            times[name].append(await timed(fn))
    median = {name: statistics.median(v) for name, v in times.items()}

    names = [name for name, _ in cases]
    print()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()}")
    print(
        f"engine: hatchet-lite (scripts/hatchet-engine), worker slots {args.slots}, "
        f"median of {args.repeat} rounds after 1 warm-up"
    )
    print()
    width = max(len(n) for n in names)
    print(f"{'case':<{width}}  {'median s':>9}  {'min s':>7}  {'max s':>7}")
    print(f"{'-' * width}  {'-' * 9}  {'-' * 7}  {'-' * 7}")
    for name in names:
        v = times[name]
        print(f"{name:<{width}}  {median[name]:>9.3f}  {min(v):>7.3f}  {max(v):>7.3f}")
    print()
    chain_vs_dag = median[names[2]] / median[names[0]]
    chain_vs_seq = median[names[2]] / median[names[1]]
    many_ratio = median[names[4]] / median[names[3]]
    print(f"ratio chain, mageflow sequential / plain DAG:        {chain_vs_dag:.2f}x")
    print(f"ratio chain, mageflow sequential / plain sequential: {chain_vs_seq:.2f}x")
    gathered_ratio = median[names[6]] / median[names[5]]
    print(f"ratio many,  mageflow / plain aio_run_many:          {many_ratio:.2f}x")
    print(f"ratio many,  mageflow / plain, results gathered:     {gathered_ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--chain", type=int, default=20)
    parser.add_argument("--slots", type=int, default=100)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    load_engine_env()
    if args.worker:
        run_worker(args.chain, args.slots)
        return
    os.environ["HATCHET_CLIENT_NAMESPACE"] = f"bench_{uuid.uuid4().hex[:8]}_"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    log_path = Path(tempfile.mkdtemp(prefix="mageflow-bench-")) / "worker.log"
    os.environ["MAGEFLOW_BENCH_WORKER_LOG"] = str(log_path)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, __file__, "--worker", "--chain", str(args.chain),
             "--slots", str(args.slots)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
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
