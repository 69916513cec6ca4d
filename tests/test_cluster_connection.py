"""Connecting to a real Redis Cluster: by URL, by client, by ``REDIS_URL``;
pub/sub and flushing across its nodes. Never a fake: an
:class:`~mageflow.embedded.EmbeddedCluster` (or ``REDIS_CLUSTER_URL``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster

import mageflow
from mageflow import HatchetMageflow
from mageflow.embedded import ensure_cluster
from mageflow.errors import RedisNotConfiguredError
from mageflow.pytest_plugin import MageflowRunner
from mageflow.store import keys
from mageflow.store.connection import (
    RedisConnection,
    flush_all,
    is_cluster_url,
    pubsub_of,
)
from mageflow.ui.live import Hub

WAIT = 10.0
"""Seconds a message or a condition gets before the test fails."""


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    with ensure_cluster() as url:
        yield url


def _plain(url: str) -> str:
    return url.replace("redis+cluster://", "redis://", 1)


def _new_cluster_client(url: str, **kwargs: Any) -> RedisCluster:
    return RedisCluster.from_url(_plain(url), decode_responses=True, **kwargs)


def _keys_on_distinct_nodes(client: RedisCluster, count: int) -> dict[str, str]:
    """``count`` keys (hash tags) owned by ``count`` different primaries:
    key -> owner name."""
    owners: dict[str, str] = {}
    for n in range(500):
        key = f"{{conn{n}}}:k"
        node = client.get_node_from_key(key)
        assert node is not None
        if node.name not in owners.values():
            owners[key] = node.name
        if len(owners) == count:
            return owners
    raise AssertionError(f"no {count} keys on distinct nodes")


async def _clients_named(client: RedisCluster, name: str) -> int:
    """How many connections named ``name`` the primaries see."""
    replies = await client.client_list(target_nodes=RedisCluster.PRIMARIES)
    entries: list[dict[str, str]] = []
    if isinstance(replies, dict):  # one reply per node
        for per_node in replies.values():
            entries.extend(per_node)
    else:
        entries.extend(replies)
    return sum(1 for entry in entries if entry.get("name") == name)


async def _eventually(condition: Any, what: str) -> None:
    """Until ``await condition()`` is true, or fail after :data:`WAIT`."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.02)  # ok: poll interval of a condition with a deadline


async def _messages(pubsub: PubSub, count: int) -> list[dict[str, Any]]:
    """The next ``count`` messages (subscribe confirmations are ignored by
    :func:`pubsub_of`'s connection), or fail after :data:`WAIT`."""

    async def read() -> list[dict[str, Any]]:
        heard: list[dict[str, Any]] = []
        while len(heard) < count:
            message = await pubsub.get_message(timeout=WAIT)
            if message is not None:
                heard.append(message)
        return heard

    return await asyncio.wait_for(read(), WAIT)


def test_cluster_urls_are_recognized() -> None:
    assert is_cluster_url("redis+cluster://10.0.0.1:7000")
    assert is_cluster_url("rediss+cluster://h:7000?ssl_cert_reqs=none")
    assert is_cluster_url("REDIS+CLUSTER://h:7000")
    assert not is_cluster_url("redis://localhost:6379/0")
    assert not is_cluster_url("unix:///tmp/redis.sock")
    assert not is_cluster_url("redis+cluster")
    assert RedisConnection("redis+cluster://127.0.0.1:9").is_cluster
    assert not RedisConnection("redis://127.0.0.1:9/0").is_cluster


def test_no_configuration_names_the_cluster_url_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    connection = RedisConnection(None)
    assert not connection.configured
    with pytest.raises(RedisNotConfiguredError, match=r"redis\+cluster://host:port"):
        _ = connection.client


async def test_a_cluster_url_builds_an_owned_cluster_client(cluster_url: str) -> None:
    name = f"mf-owned-{uuid.uuid4().hex[:8]}"
    connection = RedisConnection(f"{cluster_url}?client_name={name}")
    assert connection.is_cluster
    client = connection.client
    assert isinstance(client, RedisCluster)
    assert connection.client is client
    await client.initialize()
    owners = _keys_on_distinct_nodes(client, 3)
    for key in owners:
        await client.set(key, f"v-{key}")
    for key in owners:
        assert await client.get(key) == f"v-{key}"  # decode_responses=True
    assert len(set(owners.values())) == 3
    # Something to count on the servers: this client's own connections.
    observer = _new_cluster_client(cluster_url)
    try:
        assert await _clients_named(observer, name) >= 3
        await connection.aclose()

        async def all_closed() -> bool:
            return await _clients_named(observer, name) == 0

        await _eventually(all_closed, "the owned cluster client was not closed")
        await observer.delete(*owners)
    finally:
        await observer.aclose()


async def test_a_cluster_client_passed_in_is_used_as_is_and_left_open(
    cluster_url: str,
) -> None:
    name = f"mf-theirs-{uuid.uuid4().hex[:8]}"
    theirs = _new_cluster_client(cluster_url, client_name=name)
    try:
        connection = RedisConnection(theirs)
        assert connection.client is theirs
        assert connection.holds(theirs)
        assert connection.is_cluster
        assert await connection.client.set("{passed}:k", "1")
        before = await _clients_named(theirs, name)
        assert before >= 1
        await connection.aclose()
        # Their connections are still there (a closed cluster client would
        # reconnect on the next command, so count on the server first).
        observer = _new_cluster_client(cluster_url)
        try:
            assert await _clients_named(observer, name) == before
        finally:
            await observer.aclose()
        assert await theirs.get("{passed}:k") == "1"
        await theirs.delete("{passed}:k")
    finally:
        await theirs.aclose()


async def test_redis_url_may_name_a_cluster(
    cluster_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", cluster_url)
    connection = RedisConnection(None)
    try:
        assert connection.configured
        assert connection.is_cluster
        client = connection.client
        assert isinstance(client, RedisCluster)
        assert await client.ping()
        assert len(client.get_primaries()) >= 3
    finally:
        await connection.aclose()


@pytest.mark.single_node  # about a plain server's URL
async def test_a_single_server_url_still_gives_a_plain_client(redis_url: str) -> None:
    connection = RedisConnection(redis_url)
    try:
        assert not connection.is_cluster
        assert type(connection.client) is Redis
        assert await connection.client.ping()
    finally:
        await connection.aclose()


async def test_pubsub_on_a_cluster_hears_publishes_routed_to_every_node(
    cluster_url: str,
) -> None:
    client = _new_cluster_client(cluster_url)
    try:
        # Never used yet: pubsub_of loads the slot map itself.
        pubsub = await pubsub_of(client)
        try:
            node = pubsub.get_pubsub_node()
            assert isinstance(node, ClusterNode)
            assert node.server_type == "primary"
            tag = uuid.uuid4().hex[:8]
            await pubsub.psubscribe(f"mf-test:{tag}:*")
            # Channels whose slots are on every node: PUBLISH is sent to the
            # slot's owner, and the cluster bus carries it to our node.
            channels = [
                f"mf-test:{tag}:{key}" for key in _keys_on_distinct_nodes(client, 3)
            ]
            owners = {client.get_node_from_key(channel).name for channel in channels}
            assert len(owners) == 3
            assert any(owner != node.name for owner in owners)
            await pubsub.subscribe(channels[0])
            for channel in channels:
                await client.publish(channel, f"end of {channel}")
            expected = {("pmessage", channel) for channel in channels}
            expected.add(("message", channels[0]))
            heard = await _messages(pubsub, len(expected))
            assert {(m["type"], m["channel"]) for m in heard} == expected
            assert all(m["data"] == f"end of {m['channel']}" for m in heard)
        finally:
            await pubsub.aclose()
    finally:
        await client.aclose()


async def test_the_dashboard_hub_hears_ends_on_a_cluster(cluster_url: str) -> None:
    client = _new_cluster_client(cluster_url)
    hub = Hub(client)
    try:
        await hub.start()
        signature_id = f"sig-{uuid.uuid4().hex}"
        with hub.watch({signature_id}) as watch:
            await client.publish(keys.done_channel(signature_id), "done")
            await asyncio.wait_for(watch.changed.wait(), WAIT)
            assert watch.ended == {signature_id: "done"}
    finally:
        await hub.aclose()
        await client.aclose()


async def test_flush_all_empties_every_primary(cluster_url: str) -> None:
    client = _new_cluster_client(cluster_url)
    try:
        await client.initialize()
        for n in range(64):
            await client.set(f"{{flush{n}}}:k", n)
        primaries = client.get_primaries()
        assert len(primaries) >= 3
        sizes = [await client.dbsize(target_nodes=node) for node in primaries]
        assert all(size > 0 for size in sizes), sizes
        await flush_all(client)
        sizes = [await client.dbsize(target_nodes=node) for node in primaries]
        assert sizes == [0] * len(primaries)
    finally:
        await client.aclose()


@pytest.mark.single_node  # about a plain server
async def test_flush_all_on_a_single_server(redis_url: str) -> None:
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        await client.set("mf-flush-single", "1")
        assert await client.dbsize() > 0
        await flush_all(client)
        assert await client.dbsize() == 0
    finally:
        await client.aclose()


@pytest.fixture
async def mageflow_client(cluster_url: str) -> HatchetMageflow:
    """The plugin's client, on the cluster, over stale keys on every node."""
    seed = _new_cluster_client(cluster_url)
    try:
        await seed.initialize()
        for key in _keys_on_distinct_nodes(seed, 3):
            await seed.set(key, "stale")
    finally:
        await seed.aclose()
    return mageflow.Mageflow(redis_client=cluster_url, backend="local")


async def test_the_pytest_plugin_flushes_and_closes_a_cluster(
    mageflow_runner: MageflowRunner,
) -> None:
    # Its teardown closes the cluster client too: an error there fails this.
    redis = mageflow_runner.client.redis
    assert isinstance(redis, RedisCluster)
    primaries = redis.get_primaries()
    assert len(primaries) == 3
    assert [await redis.dbsize(target_nodes=node) for node in primaries] == [0, 0, 0]
