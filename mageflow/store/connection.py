"""How a client gets its Redis connection: lazily.

Defining tasks, importing modules and building workers must work on a machine
with no Redis at all; only the first operation that really needs Redis may
fail, and then with an error that says how to configure it.

The Redis is one server (``redis://``, ``rediss://``, ``unix://``) or a Redis
Cluster: a ``redis+cluster://host:port`` URL (``rediss+cluster://`` for TLS)
names any one node, the client discovers the others. Code that needs to know
the difference goes through the helpers here (:func:`pubsub_of`,
:func:`flush_all`, :func:`close_client`) rather than asking for itself.
"""

from __future__ import annotations

import os
import random
from typing import TypeAlias

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster

from mageflow.errors import RedisNotConfiguredError

REDIS_URL_ENV = "REDIS_URL"

RedisClient: TypeAlias = Redis | RedisCluster
"""An asyncio client of one Redis server or of a Redis Cluster."""

CLUSTER_URL_SCHEME = "redis+cluster"
"""The scheme of a cluster URL: ``redis+cluster://host:port`` of any node."""

_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
"""Cluster URL schemes, and the plain ones redis-py's parser knows them as."""

MAX_CONNECTIONS = 128
"""Connections of a client mageflow builds from a URL. Pass your own client
for another limit; the seeds' ``max_connections=1028`` works too."""

CLUSTER_MAX_CONNECTIONS_PER_NODE = 256
"""Connections per node of a cluster client built from a URL. redis-py's
cluster client has no blocking pool: past this limit a command fails with
``MaxConnectionsError`` instead of waiting, so the limit is higher than the
single server's. ``?max_connections=N`` in the URL overrides it."""

POOL_TIMEOUT_SECONDS = 30
"""How long a run waits for a free connection before failing."""


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster (``redis+cluster://``,
    ``rediss+cluster://``)."""
    scheme, sep, _ = url.partition("://")
    return bool(sep) and scheme.lower() in _CLUSTER_SCHEMES


def _cluster_from_url(url: str) -> RedisCluster:
    scheme, _, rest = url.partition("://")
    # redis-py's URL parser knows redis:// and rediss:// only; the node and
    # the query (password, ssl options, max_connections...) carry over.
    plain = f"{_CLUSTER_SCHEMES[scheme.lower()]}://{rest}"
    return RedisCluster.from_url(
        plain,
        decode_responses=True,
        max_connections=CLUSTER_MAX_CONNECTIONS_PER_NODE,
    )


class RedisConnection:
    """Holds a Redis client, or the URL to make one from at first use.

    A client built here from a URL is owned here and closed by :meth:`aclose`;
    a client the user passed in is theirs to close.
    """

    def __init__(self, source: RedisClient | str | None) -> None:
        if source is None:
            source = os.environ.get(REDIS_URL_ENV) or None
        self._url: str | None = source if isinstance(source, str) else None
        self._client: RedisClient | None = (
            source if isinstance(source, Redis | RedisCluster) else None
        )
        self._owned = False

    @property
    def configured(self) -> bool:
        """Whether a Redis client or URL was given (nothing is contacted)."""
        return self._client is not None or self._url is not None

    @property
    def is_cluster(self) -> bool:
        """Whether this is a Redis Cluster: a cluster client, or a cluster URL
        (nothing is contacted)."""
        if self._client is not None:
            return isinstance(self._client, RedisCluster)
        return self._url is not None and is_cluster_url(self._url)

    def holds(self, source: RedisClient | str) -> bool:
        """Whether ``source`` is this connection's client, or its URL."""
        if isinstance(source, str):
            return source == self._url
        return source is self._client

    @property
    def client(self) -> RedisClient:
        """The asyncio client, created from the URL on first access: a
        ``RedisCluster`` for a cluster URL, else a ``Redis``."""
        if self._client is None:
            if self._url is None:
                raise RedisNotConfiguredError(
                    "mageflow needs Redis for this operation, and none is "
                    "configured. Pass `redis_client=` (an asyncio Redis or "
                    "RedisCluster client, or a URL) to Mageflow(...), or set the "
                    f"{REDIS_URL_ENV} environment variable, e.g. "
                    "REDIS_URL=redis://localhost:6379/0, or "
                    f"REDIS_URL={CLUSTER_URL_SCHEME}://host:port for a Redis "
                    "Cluster (any one node)."
                )
            if is_cluster_url(self._url):
                self._client = _cluster_from_url(self._url)
            else:
                # A blocking pool: a worker with more concurrent runs than
                # connections waits for one instead of failing the run.
                pool = BlockingConnectionPool.from_url(
                    self._url,
                    decode_responses=True,
                    max_connections=MAX_CONNECTIONS,
                    timeout=POOL_TIMEOUT_SECONDS,
                )
                self._client = Redis(connection_pool=pool)
            self._owned = True
        return self._client

    async def aclose(self) -> None:
        """Close the client if this object created it; leave the user's alone."""
        if self._owned and self._client is not None:
            client, self._client = self._client, None
            self._owned = False
            await close_client(client)


async def close_client(client: RedisClient) -> None:
    """Close ``client`` and every connection it holds, whichever its kind.

    A ``Redis`` given a pool does not close that pool by itself, and a
    ``RedisCluster`` has no single pool: each node holds its own. Either
    client can be used again afterwards; it reconnects.
    """
    if isinstance(client, RedisCluster):
        await client.aclose()
    else:
        await client.aclose(close_connection_pool=True)


async def flush_all(client: RedisClient) -> None:
    """Empty the database: on a cluster, every primary's (``FLUSHDB`` alone
    reaches one node, so most keys would stay)."""
    if isinstance(client, RedisCluster):
        await client.flushdb(target_nodes=RedisCluster.PRIMARIES)
    else:
        await client.flushdb()


async def pubsub_of(
    client: RedisClient, *, ignore_subscribe_messages: bool = True
) -> PubSub:
    """A new pub/sub connection of ``client``, for ``subscribe``,
    ``psubscribe`` and ``get_message``; the caller closes it (``aclose``).

    On a cluster a classic ``PUBLISH`` reaches every node over the cluster
    bus, so one subscription on one node hears every channel, patterns
    included. redis-py's asyncio ``ClusterPubSub`` does that: pinned to a
    node, it is a plain ``PubSub`` on one connection borrowed from that
    node's pool (it counts against ``max_connections`` per node). It is
    pinned here, to a random primary, because left to itself it picks the
    node from the first channel's slot, which needs the slot map loaded:
    the client is initialized first (a no-op when it already is), so this
    works as a process's first command too. Random spreads the subscribers
    of many processes over the primaries.
    """
    if isinstance(client, RedisCluster):
        await client.initialize()
        node = random.choice(client.get_primaries())
        return client.pubsub(
            node=node, ignore_subscribe_messages=ignore_subscribe_messages
        )
    return client.pubsub(ignore_subscribe_messages=ignore_subscribe_messages)
