"""Round trips counted on the wire: a loopback proxy that reads what a client sends.

    async with Wire(redis_url) as wire:
        client = mageflow.Mageflow(redis_client=wire.url, backend="local")
        wire.reset()
        ...                                   # the work to count
        wire.total, wire.commands             # what it sent

The bench's own copy of the idea behind ``tests/roundtrips.py``: nothing in
redis-py is patched, the server behind the proxy is the real one, and every
command is counted as the client wrote it, so the count holds whatever
redis-py does inside (a pipeline counts one per command, never less than the
truth). Unlike the tests' counter it names each ``EVALSHA`` by the mageflow
script whose SHA1 it carries, for the per-script breakdown. It lives here,
not imported from ``tests/``, so the bench does not move when the tests do.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from urllib.parse import urlsplit

from mageflow.store import scripts

HANDSHAKE = frozenset(
    {
        "HELLO",
        "AUTH",
        "SELECT",
        "CLIENT SETINFO",
        "CLIENT SETNAME",
        "CLIENT MAINT_NOTIFICATIONS",
    }
)
"""What a connection sends when it opens: how many connections a run opens
depends on timing (the pool grows under load), so these are shown apart."""


def script_names() -> dict[str, str]:
    """SHA1 -> name of every script in :mod:`mageflow.store.scripts`, as
    redis-py computes it for ``EVALSHA``."""
    names: dict[str, str] = {}
    for name in dir(scripts):
        value = getattr(scripts, name)
        if name.isupper() and not name.startswith("_") and isinstance(value, str):
            source = scripts.SHEBANG + value  # as the store loads it
            names[hashlib.sha1(source.encode()).hexdigest()] = name
    return names


class _Commands:
    """Splits one connection's byte stream into RESP commands (arrays of bulk
    strings, all a client sends), incrementally, keeping each command's first
    two arguments: its name, and its subcommand or script SHA1."""

    def __init__(self, seen: Counter[str], names: dict[str, str]) -> None:
        self._seen = seen
        self._names = names
        self._buffer = bytearray()
        self._args_left = 0
        self._bulk = -1  # the length of the bulk string being read, or -1
        self._args: list[str] = []

    def feed(self, data: bytes) -> None:
        buf = self._buffer
        buf += data
        at = 0
        while True:
            if self._bulk >= 0:
                if len(buf) - at < self._bulk + 2:
                    break
                if len(self._args) < 2:
                    self._args.append(
                        bytes(buf[at : at + self._bulk]).decode(errors="replace")
                    )
                at += self._bulk + 2
                self._bulk = -1
                self._args_left -= 1
                if self._args_left == 0:
                    self._count()
                continue
            end = buf.find(b"\r\n", at)
            if end < 0:
                break
            kind, size = buf[at : at + 1], int(buf[at + 1 : end])
            at = end + 2
            if kind == b"*":
                self._args, self._args_left = [], size
            elif kind == b"$":
                self._bulk = size
            else:
                raise AssertionError(f"not a RESP command: {bytes(kind)!r}")
        del buf[:at]

    def _count(self) -> None:
        name = self._args[0].upper() if self._args else ""
        second = self._args[1] if len(self._args) > 1 else ""
        if name == "EVALSHA":
            name = f"EVALSHA {self._names.get(second, second[:8])}"
        elif name in ("CLIENT", "SCRIPT", "CONFIG") and second:
            name = f"{name} {second.upper()}"
        self._seen[name] += 1


class Wire:
    """A TCP proxy in front of a Redis server that counts the commands sent
    through it since the last :meth:`reset`."""

    def __init__(self, target_url: str) -> None:
        self._target = urlsplit(target_url)
        self._names = script_names()
        self.seen: Counter[str] = Counter()
        self.url = ""
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Wire:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"redis://127.0.0.1:{port}/0"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        await self._server.wait_closed()

    def reset(self) -> None:
        self.seen.clear()

    @property
    def commands(self) -> Counter[str]:
        """Per command (``EVALSHA`` per script), handshakes left out."""
        return Counter({k: v for k, v in self.seen.items() if k not in HANDSHAKE})

    @property
    def total(self) -> int:
        """Round trips since :meth:`reset`, handshakes left out."""
        return sum(self.commands.values())

    @property
    def handshakes(self) -> int:
        return sum(v for k, v in self.seen.items() if k in HANDSHAKE)

    async def _upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._target.scheme == "unix":
            return await asyncio.open_unix_connection(self._target.path)
        return await asyncio.open_connection(
            self._target.hostname or "127.0.0.1", self._target.port or 6379
        )

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        up_reader, up_writer = await self._upstream()
        self._writers.update((writer, up_writer))
        tap = _Commands(self.seen, self._names).feed
        pumps = [
            asyncio.ensure_future(_pump(reader, up_writer, tap)),
            asyncio.ensure_future(_pump(up_reader, writer, None)),
        ]
        self._pumps.update(pumps)
        await asyncio.gather(*pumps, return_exceptions=True)
        self._pumps.difference_update(pumps)
        self._writers.difference_update((writer, up_writer))


async def _pump(
    src: asyncio.StreamReader,
    dst: asyncio.StreamWriter,
    tap: Callable[[bytes], None] | None,
) -> None:
    """Copy ``src`` to ``dst``; ``tap`` (a ``feed``) sees the bytes first, so
    a command is counted before its reply can exist."""
    with contextlib.suppress(ConnectionError, OSError):
        while data := await src.read(65536):
            if tap is not None:
                tap(data)
            dst.write(data)
            await dst.drain()
    dst.close()
