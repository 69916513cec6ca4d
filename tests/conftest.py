"""Fixtures shared by the whole suite.

* ``hatchet``: a real ``Hatchet`` client that never reaches an engine. Its
  token points at a closed loopback port, so ``aio_mock_run`` builds a real
  ``Context`` and anything that would talk to an engine fails fast.
* ``make_client`` / ``client``: mageflow clients wrapping it.
* ``redis_url``: a real ``redis-server`` for the session, started on a free
  loopback port (or ``REDIS_URL`` when set). Never a fake.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from hatchet_sdk import Hatchet

import mageflow
from mageflow import AcceptParams, HatchetMageflow
from mageflow.testing import offline_hatchet


@pytest.fixture
def hatchet() -> Hatchet:
    return offline_hatchet()


@pytest.fixture
def make_client(
    hatchet: Hatchet,
) -> Callable[..., HatchetMageflow]:
    def make(
        param_config: AcceptParams = AcceptParams.NO_CTX,
        redis_client: str | None = None,
    ) -> HatchetMageflow:
        return mageflow.Mageflow(
            hatchet, redis_client=redis_client, param_config=param_config
        )

    return make


@pytest.fixture
def client(make_client: Callable[..., HatchetMageflow]) -> HatchetMageflow:
    return make_client()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_ping(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.02)  # ok: polling interval while waiting for a condition
    raise RuntimeError(f"redis-server did not answer PING within {timeout}s")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis for the session: ``REDIS_URL`` if set, else our own server."""
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed; run ./scripts/test to install it")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="mageflow-redis-") as workdir:
        process = subprocess.Popen(
            [
                binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", workdir,
            ],
            stdout=(Path(workdir) / "redis.log").open("wb"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _wait_for_ping(port, process, timeout=10)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
async def local(redis_url: str) -> AsyncIterator[HatchetMageflow]:
    """A client on the local backend, over a freshly flushed real Redis."""
    client = mageflow.Mageflow(redis_client=redis_url, backend="local")
    await client.redis.flushdb()
    try:
        with client.use():
            yield client
    finally:
        await client.redis.aclose()
