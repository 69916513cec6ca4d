"""How a client gets its Redis connection: lazily.

Defining tasks, importing modules and building workers must work on a machine
with no Redis at all; only the first operation that really needs Redis may
fail, and then with an error that says how to configure it.
"""

from __future__ import annotations

import os

from redis.asyncio import BlockingConnectionPool, Redis

from mageflow.errors import RedisNotConfiguredError

REDIS_URL_ENV = "REDIS_URL"

MAX_CONNECTIONS = 128
"""Connections of a client mageflow builds from a URL. Pass your own client
for another limit; the seeds' ``max_connections=1028`` works too."""

POOL_TIMEOUT_SECONDS = 30
"""How long a run waits for a free connection before failing."""


class RedisConnection:
    """Holds a Redis client, or the URL to make one from at first use.

    A client built here from a URL is owned here and closed by :meth:`aclose`;
    a client the user passed in is theirs to close.
    """

    def __init__(self, source: Redis | str | None) -> None:
        if source is None:
            source = os.environ.get(REDIS_URL_ENV) or None
        self._url: str | None = source if isinstance(source, str) else None
        self._client: Redis | None = source if isinstance(source, Redis) else None
        self._owned = False

    @property
    def configured(self) -> bool:
        """Whether a Redis client or URL was given (nothing is contacted)."""
        return self._client is not None or self._url is not None

    def holds(self, source: Redis | str) -> bool:
        """Whether ``source`` is this connection's client, or its URL."""
        if isinstance(source, str):
            return source == self._url
        return source is self._client

    @property
    def client(self) -> Redis:
        """The asyncio Redis client, created from the URL on first access."""
        if self._client is None:
            if self._url is None:
                raise RedisNotConfiguredError(
                    "mageflow needs Redis for this operation, and none is "
                    "configured. Pass `redis_client=` (an asyncio Redis client "
                    f"or a URL) to Mageflow(...), or set the {REDIS_URL_ENV} "
                    "environment variable, e.g. REDIS_URL=redis://localhost:6379/0."
                )
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
            # The pool was made here too: close its connections with it.
            await self._client.aclose(close_connection_pool=True)
            self._client = None
            self._owned = False
