"""The embedded servers' context managers, as mypy sees them: a server's
``with`` gives the server, an ``ensure_*`` gives a URL, sync or async.

Checked by mypy (``files`` in pyproject.toml), never run.
"""

from __future__ import annotations

from typing_extensions import assert_type

from mageflow.embedded import (
    EmbeddedCluster,
    EmbeddedRedis,
    ensure_cluster,
    ensure_redis,
)


def sync_forms() -> None:
    with EmbeddedRedis() as server:
        assert_type(server, EmbeddedRedis)
    with EmbeddedCluster() as cluster:
        assert_type(cluster, EmbeddedCluster)
    with ensure_redis() as url:
        assert_type(url, str)
    with ensure_cluster() as cluster_url:
        assert_type(cluster_url, str)


async def async_forms() -> None:
    async with EmbeddedRedis() as server:
        assert_type(server, EmbeddedRedis)
    async with EmbeddedCluster() as cluster:
        assert_type(cluster, EmbeddedCluster)
    async with ensure_redis() as url:
        assert_type(url, str)
    async with ensure_cluster() as cluster_url:
        assert_type(cluster_url, str)
