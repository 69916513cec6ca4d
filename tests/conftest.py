"""Fixtures shared by the whole suite.

* ``hatchet``: a real ``Hatchet`` client that never reaches an engine. Its
  token points at a closed loopback port, so ``aio_mock_run`` builds a real
  ``Context`` and anything that would talk to an engine fails fast.
* ``make_client`` / ``client``: mageflow clients wrapping it.
* ``redis_url``: a real ``redis-server`` for the session, started by
  ``mageflow.embedded`` (or ``REDIS_URL`` when set). Never a fake.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from hatchet_sdk import Hatchet
from roundtrips import RoundTrips

import mageflow
from mageflow import AcceptParams, HatchetMageflow
from mageflow.embedded import ensure_redis
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


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis for the session: ``REDIS_URL`` if set, else a private
    ``redis-server`` started by :mod:`mageflow.embedded`."""
    with ensure_redis(probe=None) as url:
        yield url


@pytest.fixture
async def local(
    redis_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[HatchetMageflow]:
    """A client on the local backend, over a freshly flushed real Redis.

    In a test that also asks for ``round_trips``, it reaches that Redis
    through the counting proxy."""
    url = redis_url
    counter: RoundTrips | None = None
    if "round_trips" in request.fixturenames:
        counter = request.getfixturevalue("round_trips")
        url = await counter.proxy.start()
    client = mageflow.Mageflow(redis_client=url, backend="local")
    await client.redis.flushdb()
    try:
        with client.use():
            yield client
    finally:
        await client.redis.aclose()
        if counter is not None:
            await counter.proxy.close()


@pytest.fixture
def round_trips(redis_url: str) -> RoundTrips:
    """Counts the commands the test's ``local`` client sends, on the wire
    (``local`` connects through its proxy); see :class:`roundtrips.RoundTrips`."""
    return RoundTrips(redis_url)
