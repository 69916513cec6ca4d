"""The embedded Redis is a real ``redis-server`` process, started and stopped."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis
from redis.asyncio import Redis

from mageflow.embedded import (
    EmbeddedRedis,
    EmbeddedRedisError,
    ensure_redis,
    server_reachable,
)


def _roundtrip(url: str) -> None:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        client.set("k", "v")
        assert client.get("k") == "v"
        # Real Redis: Lua scripts run.
        assert client.eval("return redis.call('GET', KEYS[1])", 1, "k") == "v"
    finally:
        client.close()


def test_a_private_server_on_a_unix_socket_runs_lua_and_is_stopped() -> None:
    server = EmbeddedRedis()
    url = server.start()
    try:
        assert url.startswith("unix://")
        socket_path = Path(urlparse(url).path)
        assert socket_path.exists()
        assert server.running
        _roundtrip(url)
    finally:
        server.stop()
    assert not server.running
    assert not socket_path.exists()
    assert not server_reachable(url)
    server.stop()  # twice is fine


def test_a_loopback_port_when_asked() -> None:
    with EmbeddedRedis(use_unix_socket=False) as server:
        assert server.url.startswith("redis://127.0.0.1:")
        _roundtrip(server.url)
        url = server.url
    assert not server_reachable(url)
    with pytest.raises(EmbeddedRedisError, match="not running"):
        _ = server.url


async def test_the_async_context_manager_with_the_asyncio_client() -> None:
    async with EmbeddedRedis() as server:
        client = Redis.from_url(server.url, decode_responses=True)
        try:
            assert await client.ping()
        finally:
            await client.aclose()
        url = server.url
    assert not server_reachable(url)


def test_ensure_redis_prefers_redis_url_and_does_not_contact_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/5")
    guard = ensure_redis()
    with guard as url:
        assert url == "redis://127.0.0.1:9/5"
        assert guard.server is None


def test_ensure_redis_uses_a_reachable_server_else_starts_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    with EmbeddedRedis(use_unix_socket=False) as running:
        guard = ensure_redis(probe=running.url)
        with guard as url:
            assert url == running.url
            assert guard.server is None
    # Nothing listens on the discard port: a private server is started.
    guard = ensure_redis(probe="redis://127.0.0.1:9/0")
    with guard as url:
        assert guard.server is not None
        assert url.startswith("unix://")
        _roundtrip(url)
    assert guard.server is None
    assert not server_reachable(url)


async def test_ensure_redis_async_without_probe_always_starts_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    async with ensure_redis(probe=None) as url:
        assert server_reachable(url)
    assert not server_reachable(url)


def test_a_missing_or_broken_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedRedisError, match="cannot run"):
        EmbeddedRedis(binary=str(tmp_path / "no-such-redis-server")).start()
    broken = tmp_path / "redis-server"
    broken.write_text("#!/bin/sh\necho 'no config for you' >&2\nexit 3\n")
    os.chmod(broken, 0o755)
    with pytest.raises(EmbeddedRedisError, match="exited with status 3"):
        EmbeddedRedis(binary=str(broken)).start()


def test_no_binary_anywhere_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import mageflow.embedded as embedded

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(embedded.REDIS_SERVER_ENV, raising=False)
    if embedded.find_redis_server() is not None:
        pytest.skip("a redis-server is installed next to this Python")
    with pytest.raises(EmbeddedRedisError, match=r"mageflow\[local\]"):
        EmbeddedRedis().start()
