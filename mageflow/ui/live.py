"""Live updates: the ends that ``wait()`` hears, fanned out to open pages.

Every script that ends a signature publishes on its channel
(:func:`mageflow.store.keys.done_channel`). The dashboard holds one pattern
subscription to all of them, whatever the number of open pages, and each
open page's event stream registers a :class:`Watch`: the ids whose end
changes what it shows (``None``: any). An end sets the watch's flag; the
stream then waits a moment, so a burst of ends becomes one update, and
tells its page to fetch the part that changed. Nothing polls Redis, and a
page with nothing new costs nothing but a keep-alive comment.

If the subscription drops, ends announced meanwhile are lost, so every
watch is flagged once it is back: pages re-read what they show.

On a Redis Cluster the subscription is on one node: a ``PUBLISH`` reaches
every node (:func:`mageflow.store.connection.pubsub_of`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Callable, Set
from typing import Any

from redis.asyncio.client import PubSub

from mageflow.store import keys
from mageflow.store.connection import RedisClient, pubsub_of

logger = logging.getLogger("mageflow.ui")

BURST_SECONDS = 0.25
"""How long a stream gathers ends before telling its page."""
KEEPALIVE_SECONDS = 15.0
"""A comment this often keeps proxies from closing a quiet stream."""


@dataclasses.dataclass(eq=False)
class Watch:
    """What one open page listens for."""

    ids: Set[str] | None
    """The ids whose end matters to the page; ``None``: any end."""
    changed: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    ended: dict[str, str] = dataclasses.field(default_factory=dict)
    """The ends heard since the page was last told: id -> final status."""

    def hear(self, signature_id: str, status: str) -> None:
        if self.ids is None or signature_id in self.ids:
            self.ended[signature_id] = status
            self.changed.set()


class Hub:
    """One pub/sub subscription to every end, shared by the open pages."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._watches: set[Watch] = set()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe, then keep reading: the app serves once it hears."""
        if self._reader is None:
            pubsub = await self._subscribe()
            self._reader = asyncio.get_running_loop().create_task(
                self._read(pubsub), name="mageflow-ui-live"
            )

    async def _subscribe(self) -> PubSub:
        pubsub = await pubsub_of(self._redis)
        await pubsub.psubscribe(keys.done_channel("") + "*")
        return pubsub

    async def aclose(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    @contextlib.contextmanager
    def watch(self, ids: Set[str] | None) -> Any:
        """Register a :class:`Watch` for the duration of a stream."""
        watch = Watch(ids)
        self._watches.add(watch)
        try:
            yield watch
        finally:
            self._watches.discard(watch)

    async def _read(self, pubsub: PubSub | None) -> None:
        prefix = keys.done_channel("")
        pause = 0.05
        try:
            while True:
                try:
                    if pubsub is None:  # a new subscription, after a lost one
                        pubsub = await self._subscribe()
                        self._flag_all()  # whatever ended while we were away
                        pause = 0.05
                    message = await pubsub.get_message(timeout=None)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.warning("mageflow ui: lost the live channel; reconnecting")
                    await _close(pubsub)
                    pubsub = None
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 2.0)
                    continue
                if message is None or message.get("type") != "pmessage":
                    continue
                channel = _text(message["channel"]).removeprefix(prefix)
                status = _text(message["data"])
                for watch in list(self._watches):
                    watch.hear(channel, status)
        finally:
            await _close(pubsub)

    def _flag_all(self) -> None:
        for watch in self._watches:
            watch.changed.set()


async def _close(pubsub: PubSub | None) -> None:
    if pubsub is not None:
        with contextlib.suppress(Exception):
            await pubsub.aclose()  # type: ignore[no-untyped-call]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def events(
    watch: Watch, refresh: Callable[[], Any] | None = None
) -> AsyncIterator[str]:
    """A Server-Sent Events stream for ``watch``: a ``change`` event (data:
    the ids that ended, with their status) after each burst of ends.
    ``refresh`` (async), called after each event, lets the stream widen what
    it watches (items added to a swarm since the page opened).

    The first event is sent at once: what ended between the page being
    read and this stream being watched would otherwise go unseen, so the
    page reads its live part once more (an ``EventSource`` that reconnects
    gets the same)."""
    yield "retry: 2000\n\nevent: change\ndata: {}\n\n"
    while True:
        try:
            await asyncio.wait_for(watch.changed.wait(), KEEPALIVE_SECONDS)
        except asyncio.TimeoutError:
            yield ": keep-alive\n\n"
            continue
        await asyncio.sleep(BURST_SECONDS)  # gather the rest of the burst
        watch.changed.clear()
        ended, watch.ended = watch.ended, {}
        yield f"event: change\ndata: {json.dumps(ended)}\n\n"
        if refresh is not None:
            await refresh()
