"""Fault injection for the test suite: a Redis that can go away.

:class:`RedisProxy` forwards TCP connections to a real Redis server. An
:meth:`~RedisProxy.outage` drops every open connection and refuses new ones
for a while, which is what a client sees when Redis restarts or the network
between them fails. Nothing is faked: the server behind it is real.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit


class RedisProxy:
    """A TCP proxy in front of a Redis server, with outages on demand."""

    def __init__(
        self,
        target_url: str,
        tap: Callable[[Any], Callable[[bytes], None]] | None = None,
    ) -> None:
        self._target = urlsplit(target_url)
        self._tap = tap
        """Per connection, a function that sees every byte its client
        sends, in order (see tests/roundtrips.py)."""
        self._server: asyncio.AbstractServer | None = None
        self._pipes: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.down = False
        self.url = ""
        self.refused = 0
        """Connections refused during outages (so a test can see one bit)."""

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"redis://127.0.0.1:{port}/0"
        return self.url

    async def _upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._target.scheme == "unix":
            return await asyncio.open_unix_connection(self._target.path)
        return await asyncio.open_connection(
            self._target.hostname or "127.0.0.1", self._target.port or 6379
        )

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self.down:
            self.refused += 1
            writer.close()
            return
        if (me := asyncio.current_task()) is not None:
            self._handlers.add(me)
        up_reader, up_writer = await self._upstream()
        self._pipes.update((writer, up_writer))

        async def pump(
            src: asyncio.StreamReader,
            dst: asyncio.StreamWriter,
            tap: Callable[[bytes], None] | None = None,
        ) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    if tap is not None:
                        tap(data)
                    dst.write(data)
                    await dst.drain()
            dst.close()

        tap = self._tap(writer) if self._tap is not None else None
        await asyncio.gather(pump(reader, up_writer, tap), pump(up_reader, writer))
        self._pipes.difference_update((writer, up_writer))
        if me is not None:
            self._handlers.discard(me)

    def _cut(self) -> None:
        for pipe in list(self._pipes):
            pipe.close()
        self._pipes.clear()

    async def outage(self, seconds: float) -> None:
        """Redis is unreachable for ``seconds``: open connections drop, new
        ones are refused; then it is back."""
        self.down = True
        self._cut()
        try:
            await asyncio.sleep(seconds)  # ok: the outage lasts this long
        finally:
            self.down = False

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._cut()
        # Every pump ends once its ends are closed; wait for them to.
        await asyncio.wait_for(
            asyncio.gather(*self._handlers, return_exceptions=True), 10
        )
        if self._server is not None:
            await self._server.wait_closed()
