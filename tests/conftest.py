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
from mageflow.embedded import ensure_cluster, ensure_redis
from mageflow.store.connection import close_client, flush_all, is_cluster_url
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


CLUSTER_MODULES = frozenset(
    {
        "test_workflows",
        "test_signatures",
        "test_faults",
        "test_dynamic",
        "test_liveness",
        "test_retry",
        "test_keys",
    }
)
"""The modules whose tests run twice: on one Redis server and on a real
3-master Redis Cluster (``redis_kind``)."""


SINGLE_NODE_FIXTURES = frozenset({"round_trips", "proxied"})
"""Fixtures that reach Redis through a proxy of one server."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the store's tests on a single server and on a cluster.

    A test that must see one server (it counts round trips or cuts the
    connection through a proxy: a cluster client reaches every node on its
    own) is marked ``single_node`` and runs on the single server only."""
    if "redis_url" not in metafunc.fixturenames:
        return
    if metafunc.module.__name__.rpartition(".")[2] not in CLUSTER_MODULES:
        return
    single = metafunc.definition.get_closest_marker("single_node") is not None
    if single or SINGLE_NODE_FIXTURES & set(metafunc.fixturenames):
        return
    metafunc.parametrize("redis_kind", ["single", "cluster"])


@pytest.fixture
def redis_kind() -> str:
    """Which Redis the test's ``redis_url`` is: ``single`` unless the test
    is parametrized over both (see :func:`pytest_generate_tests`)."""
    return "single"


@pytest.fixture(scope="session")
def single_redis_url() -> Iterator[str]:
    """A real Redis for the session: ``REDIS_URL`` if set, else a private
    ``redis-server`` started by :mod:`mageflow.embedded`."""
    with ensure_redis(probe=None) as url:
        yield url


@pytest.fixture(scope="session")
def cluster_redis_url() -> Iterator[str]:
    """A real 3-master Redis Cluster for the session: ``REDIS_CLUSTER_URL``
    if set, else a private one started by :mod:`mageflow.embedded`."""
    with ensure_cluster() as url:
        yield url


@pytest.fixture
def redis_url(redis_kind: str, request: pytest.FixtureRequest) -> str:
    """The test's Redis URL: the single server, or the cluster."""
    if redis_kind == "cluster":
        url: str = request.getfixturevalue("cluster_redis_url")
        return url
    single: str = request.getfixturevalue("single_redis_url")
    needs_one = request.node.get_closest_marker("single_node") or (
        SINGLE_NODE_FIXTURES & set(request.fixturenames)
    )
    if is_cluster_url(single) and needs_one:
        pytest.skip("needs one Redis server; REDIS_URL is a cluster")
    return single


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
    await flush_all(client.redis)
    try:
        with client.use():
            yield client
    finally:
        await close_client(client.redis)
        if counter is not None:
            await counter.proxy.close()


@pytest.fixture
def round_trips(redis_url: str) -> RoundTrips:
    """Counts the commands the test's ``local`` client sends, on the wire
    (``local`` connects through its proxy); see :class:`roundtrips.RoundTrips`."""
    if is_cluster_url(redis_url):
        pytest.skip("round trips are counted on one Redis server")
    return RoundTrips(redis_url)
