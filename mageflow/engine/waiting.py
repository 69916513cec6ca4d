"""Waiting for a signature to end, without polling.

Every script that ends a signature (``FINISH``, ``RESUME`` firing a held
outcome, ``STOP``) publishes its final status on the signature's channel
(:func:`mageflow.store.keys.done_channel`). :class:`Waiters` keeps one
pub/sub connection per process for all of its waits: a wait subscribes to
its channel, then reads the status once (the end may have come first), and
sleeps until the channel speaks. A thousand waiters cost a thousand
subscriptions and two reads each, and nothing while they wait.

If the pub/sub connection drops (Redis restarted), announcements made
meanwhile are lost: the reader reconnects, subscribes again, and reads the
status of every signature still waited for, so no end is missed.

On a Redis Cluster the one connection is to one node: a ``PUBLISH`` reaches
every node, so it hears every channel (:func:`mageflow.store.connection.pubsub_of`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio.client import PubSub

from mageflow.errors import SignatureNotFoundError
from mageflow.signature import TaskSignature
from mageflow.store import SignatureStore, keys
from mageflow.store.connection import pubsub_of

logger = logging.getLogger("mageflow")

RECHECK_SECONDS = 5.0
"""How often a wait reads the signature again, announcement or not: a
backstop for a missed one, rare enough that idle waiters cost little."""


class Waiters:
    """The waits of one process on one store."""

    def __init__(self, store: SignatureStore) -> None:
        self._store = store
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None

    async def until_final(
        self, signature_id: str, timeout: float | None
    ) -> TaskSignature | None:
        """Wait until ``signature_id`` is final and return it as it ended;
        ``None`` on timeout.

        :raises SignatureNotFoundError: there is no such signature (or it
            expired after it ended, before it was read).
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        first = signature_id not in self._waiting
        self._waiting.setdefault(signature_id, set()).add(future)
        try:
            if first:
                await self._subscribe(signature_id)
            if (ended := await self._final(signature_id)) is not None:
                return ended
            loop = asyncio.get_running_loop()
            deadline = None if timeout is None else loop.time() + timeout
            while True:
                left = None if deadline is None else deadline - loop.time()
                if left is not None and left <= 0:
                    # It may have ended just now: read once more.
                    return await self._final(signature_id)
                # The announcement is the fast path; a read every few
                # seconds is the backstop. A SUBSCRIBE is not confirmed
                # before the first read, and on a cluster an announcement
                # reaches the subscribed node later than the record changed:
                # one can be missed, and a wait must not hang on it.
                step = RECHECK_SECONDS if left is None else min(left, RECHECK_SECONDS)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(future), step)
                if (ended := await self._final(signature_id)) is not None:
                    return ended
                if future.done():  # announced, then started again (a retry)
                    self._waiting[signature_id].discard(future)
                    future = loop.create_future()
                    self._waiting[signature_id].add(future)
        finally:
            waiting = self._waiting.get(signature_id)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self._waiting[signature_id]
                    await self._unsubscribe(signature_id)

    async def _final(self, signature_id: str) -> TaskSignature | None:
        """The signature if it is final, else ``None``."""
        signature = await self._store.load(signature_id)
        if signature is None:
            raise SignatureNotFoundError(
                f"cannot wait for signature {signature_id}: it does not exist "
                "(removed, expired, or never created). Finished signatures are "
                "kept for TTLConfig(done=...); raise it to read results later.",
                signature_id=signature_id,
            )
        return signature if signature.status.is_final else None

    async def _open(self) -> PubSub:
        """The process's pub/sub connection, made on first use."""
        if (pubsub := self._pubsub) is not None:
            return pubsub
        made = await pubsub_of(self._store.redis)
        if self._pubsub is None:
            self._pubsub = made
            return made
        # Another wait made one while this one awaited (a cluster client
        # loads its slot map first): keep theirs, one connection per process.
        with contextlib.suppress(Exception):
            await made.aclose()  # type: ignore[no-untyped-call]
        return self._pubsub

    async def _subscribe(self, signature_id: str) -> None:
        pubsub = await self._open()
        await pubsub.subscribe(keys.done_channel(signature_id))
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(
                self._read(), name="mageflow-waiters"
            )

    async def _unsubscribe(self, signature_id: str) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            return
        with contextlib.suppress(Exception):  # the reader restores what it must
            await pubsub.unsubscribe(keys.done_channel(signature_id))
        if not self._waiting:
            await self.aclose()

    def _resolve(self, signature_id: str) -> None:
        for future in self._waiting.get(signature_id, ()):
            if not future.done():
                future.set_result(None)

    async def _read(self) -> None:
        prefix = keys.done_channel("")
        pause = 0.05
        while self._waiting and self._pubsub is not None:
            try:
                message = await self._pubsub.get_message(timeout=None)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("mageflow: lost the wait channel; reconnecting")
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)
                await self._recover()
                continue
            pause = 0.05
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            if isinstance(channel, bytes):
                channel = channel.decode()
            self._resolve(str(channel).removeprefix(prefix))

    async def _recover(self) -> None:
        """After a lost connection: subscribe again, and read what ended."""
        old, self._pubsub = self._pubsub, None
        if old is not None:
            with contextlib.suppress(Exception):
                await old.aclose()  # type: ignore[no-untyped-call]
        try:
            pubsub = await self._open()
            channels = [keys.done_channel(sid) for sid in self._waiting]
            if channels:
                await pubsub.subscribe(*channels)
            for signature_id in list(self._waiting):
                signature = await self._store.load(signature_id)
                if signature is None or signature.status.is_final:
                    self._resolve(signature_id)
        except Exception:
            logger.warning("mageflow: the wait channel is still away", exc_info=True)

    async def aclose(self) -> None:
        """Stop reading and drop the pub/sub connection."""
        reader, self._reader = self._reader, None
        pubsub, self._pubsub = self._pubsub, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
