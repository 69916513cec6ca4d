"""Fixtures for the end-to-end suite: a real Hatchet engine and a real worker.

Run it with ``scripts/test-e2e`` (starts and stops the engine), or against a
running engine with ``pytest -m e2e tests/e2e``. A plain ``pytest`` run
deselects it (``-m "not e2e"`` in pyproject's addopts).

When the suite runs and there is no engine, every test *fails* with the
reason: an e2e run that skips would prove nothing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import pytest_asyncio
from redis.asyncio import Redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ENGINE_SCRIPT = ROOT / "scripts" / "hatchet-engine"

# How long one run may take before a test gives up on it (seconds). Generous:
# the engine polls its queues, and CI machines are slow.
RUN_TIMEOUT = float(os.environ.get("MAGEFLOW_E2E_RUN_TIMEOUT", "60"))
WORKER_NAME = "mageflow-e2e"
WORKER_READY_TIMEOUT = float(os.environ.get("MAGEFLOW_E2E_WORKER_TIMEOUT", "90"))


def _engine_env() -> dict[str, str]:
    """HATCHET_CLIENT_* settings: from the environment, else the engine's env file."""
    if os.environ.get("HATCHET_CLIENT_TOKEN"):
        return {k: v for k, v in os.environ.items() if k.startswith("HATCHET_CLIENT_")}
    try:
        out = subprocess.run(
            [str(ENGINE_SCRIPT), "env"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError as exc:
        pytest.fail(f"e2e: cannot run {ENGINE_SCRIPT} env: {exc}", pytrace=False)
    if out.returncode != 0:
        pytest.fail(
            "e2e: no Hatchet engine. Start one with `scripts/hatchet-engine start` "
            "(or run `scripts/test-e2e`, which does). "
            f"`scripts/hatchet-engine env` said: {out.stderr.strip()}",
            pytrace=False,
        )
    env: dict[str, str] = {}
    for line in out.stdout.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.startswith("HATCHET_CLIENT_"):
            env[name] = value
    if not env.get("HATCHET_CLIENT_TOKEN"):
        pytest.fail(
            "e2e: the engine's env file has no HATCHET_CLIENT_TOKEN", pytrace=False
        )
    return env


def _check_reachable(host_port: str) -> None:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            return
    except OSError as exc:
        pytest.fail(
            f"e2e: the Hatchet engine's gRPC address {host_port} does not answer "
            f"({exc}). Is it running? `scripts/hatchet-engine status` says what is.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def e2e_env(single_redis_url: str) -> Iterator[dict[str, str]]:
    """The environment for this session's clients and worker, set in os.environ.

    A fresh namespace per session keeps the runs of this session away from
    workers (or leftovers) of any other session on the same engine.
    """
    env = _engine_env()
    _check_reachable(env.get("HATCHET_CLIENT_HOST_PORT", "localhost:7070"))
    env["HATCHET_CLIENT_NAMESPACE"] = f"e2e_{uuid.uuid4().hex[:8]}_"
    env["REDIS_URL"] = single_redis_url
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def tasks(e2e_env: dict[str, str]) -> ModuleType:
    """The e2e task module, imported once the environment points at the engine."""
    sys.path.insert(0, str(HERE))
    import e2e_tasks

    return e2e_tasks


def _log_tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def spawn_worker(
    name: str, log_path: Path, env: dict[str, str], group: str = "main"
) -> subprocess.Popen[bytes]:
    """Start ``worker.py`` in its own session (so its whole process group,
    Hatchet's action-listener child included, can be signalled at once)."""
    # the worker imports e2e_tasks, and mageflow from this same checkout
    path = os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")])
    full_env = {
        **os.environ,
        **env,
        "PYTHONPATH": path,
        "PYTHONUNBUFFERED": "1",
        "MAGEFLOW_E2E_WORKER_NAME": name,
        "MAGEFLOW_E2E_WORKER_GROUP": group,
    }
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, str(HERE / "worker.py")],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the worker's process group, SIGKILL it if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


async def wait_registered(
    tasks: ModuleType,
    name: str,
    process: subprocess.Popen[bytes],
    log_path: Path,
    *,
    exclude_ids: frozenset[str] = frozenset(),
) -> str:
    """Wait until the engine lists an ACTIVE worker ``name``; return its id.

    A run triggered before the worker registered its tasks would be lost.
    ``exclude_ids``: earlier workers of the same name, which do not count.
    """
    deadline = time.monotonic() + WORKER_READY_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(
                f"e2e: the worker {name} exited with {process.returncode} before "
                f"it registered. Its log ({log_path}):\n{_log_tail(log_path)}",
                pytrace=False,
            )
        workers = (await tasks.hatchet.workers.aio_list()).rows or []
        for w in workers:
            if (
                w.name == name
                and w.status == "ACTIVE"
                and w.metadata.id not in exclude_ids
            ):
                return str(w.metadata.id)
        if time.monotonic() > deadline:
            pytest.fail(
                f"e2e: the worker {name} did not register within "
                f"{WORKER_READY_TIMEOUT}s. Its log ({log_path}):\n"
                f"{_log_tail(log_path)}",
                pytrace=False,
            )
        await asyncio.sleep(0.2)  # ok: polling interval for a condition


@pytest.fixture(scope="session")
def worker_process(
    tasks: ModuleType, e2e_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """The worker subprocess, and its log file; SIGTERM (then SIGKILL) at the end."""
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    process = spawn_worker(WORKER_NAME, log_path, e2e_env)
    try:
        yield process, log_path
    finally:
        stop_worker(process)
        if os.environ.get("MAGEFLOW_E2E_SHOW_WORKER_LOG"):
            print(f"----- worker log {log_path} -----\n{_log_tail(log_path, 400)}")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def worker(
    tasks: ModuleType,
    e2e_env: dict[str, str],
    worker_process: tuple[subprocess.Popen[bytes], Path],
) -> subprocess.Popen[bytes]:
    """The worker, once registered with the engine and through a first run."""
    process, log_path = worker_process

    def check_alive(what: str) -> None:
        if process.poll() is not None:
            pytest.fail(
                f"e2e: the worker exited with {process.returncode} before {what}. "
                f"Its log ({log_path}):\n{_log_tail(log_path)}",
                pytrace=False,
            )

    # 1. registered: the engine lists the worker as active
    name = e2e_env["HATCHET_CLIENT_NAMESPACE"] + WORKER_NAME
    await wait_registered(tasks, name, process, log_path)
    # 2. working: a run goes through the engine to it and back
    ping = asyncio.ensure_future(tasks.ping.aio_run(tasks.Probe(key="ready")))
    deadline = time.monotonic() + WORKER_READY_TIMEOUT
    while not ping.done():
        check_alive("its first run")
        if time.monotonic() > deadline:
            ping.cancel()
            pytest.fail(
                f"e2e: no run completed within {WORKER_READY_TIMEOUT}s of the "
                f"worker registering. Its log ({log_path}):\n{_log_tail(log_path)}",
                pytrace=False,
            )
        await asyncio.wait({ping}, timeout=0.2)
    assert ping.result().extra == {"pong": "ready"}
    return process


@dataclass
class ExtraWorker:
    process: subprocess.Popen[bytes]
    log_path: Path
    worker_id: str


StartWorker = Callable[[str, str], Awaitable[ExtraWorker]]


@pytest.fixture
def start_worker(
    tasks: ModuleType, e2e_env: dict[str, str], tmp_path: Path
) -> Iterator[StartWorker]:
    """Start another worker subprocess: ``await start_worker(name, group)``.

    Returns once the engine lists it as ACTIVE (a worker of the same name
    started earlier, alive or dead, does not count). Whatever is still
    running is stopped when the test ends.
    """
    started: list[ExtraWorker] = []

    async def start(name: str, group: str) -> ExtraWorker:
        log_path = tmp_path / f"worker-{name}-{len(started)}.log"
        process = spawn_worker(name, log_path, e2e_env, group=group)
        worker_id = await wait_registered(
            tasks,
            e2e_env["HATCHET_CLIENT_NAMESPACE"] + name,
            process,
            log_path,
            exclude_ids=frozenset(w.worker_id for w in started),
        )
        started.append(ExtraWorker(process, log_path, worker_id))
        return started[-1]

    try:
        yield start
    finally:
        for extra in started:
            stop_worker(extra.process)
            if os.environ.get("MAGEFLOW_E2E_SHOW_WORKER_LOG"):
                print(
                    f"----- worker log {extra.log_path} -----\n"
                    f"{_log_tail(extra.log_path, 400)}"
                )


@pytest_asyncio.fixture(loop_scope="session")
async def redis(e2e_env: dict[str, str]) -> AsyncIterator[Redis]:
    client = Redis.from_url(e2e_env["REDIS_URL"], decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()
