"""The client wrapper: it is a Hatchet client, it forwards every option, and it
keeps its state to itself."""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from hatchet_sdk import Context, Hatchet
from hatchet_sdk.runnables.workflow import Standalone
from pydantic import BaseModel
from redis.asyncio import Redis

import mageflow
from mageflow import AcceptParams, HatchetMageflow, RedisNotConfiguredError
from mageflow.task_options import DurableTaskOptions, TaskOptions
from mageflow.testing import offline_token


class In(BaseModel):
    value: int


class Out(BaseModel):
    doubled: int


def test_mageflow_returns_a_hatchet_client_sharing_the_wrapped_connection(
    hatchet: Hatchet,
) -> None:
    client = mageflow.Mageflow(hatchet)

    assert isinstance(client, HatchetMageflow)
    assert isinstance(client, Hatchet)
    assert client.config is hatchet.config
    assert client.tenant_id == hatchet.tenant_id
    assert client.namespace == hatchet.namespace
    # Feature clients come from the same underlying connection.
    assert client.runs is hatchet.runs
    assert client.param_config is AcceptParams.NO_CTX


def test_mageflow_without_a_hatchet_client_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HATCHET_CLIENT_TOKEN", offline_token("tenant-from-env"))

    client = mageflow.Mageflow()

    assert client.tenant_id == "tenant-from-env"


def test_param_config_must_be_an_accept_params_member(hatchet: Hatchet) -> None:
    with pytest.raises(TypeError, match="AcceptParams"):
        mageflow.Mageflow(hatchet, param_config="ALL")  # type: ignore[arg-type]


async def test_task_returns_hatchets_standalone_with_every_option_forwarded(
    client: HatchetMageflow,
) -> None:
    @client.task(
        name="forwarded",
        description="doubles",
        retries=3,
        execution_timeout=timedelta(seconds=17),
        schedule_timeout=timedelta(minutes=2),
        default_additional_metadata={"team": "core"},
        on_events=["value:changed"],
    )
    async def forwarded(msg: In) -> Out:
        return Out(doubled=msg.value * 2)

    assert isinstance(forwarded, Standalone)
    assert forwarded.name == "forwarded"
    proto = forwarded.to_proto()
    assert proto.description == "doubles"
    assert proto.event_triggers == ["value:changed"]
    (task_proto,) = proto.tasks
    assert task_proto.retries == 3
    assert task_proto.timeout == "17s"
    assert task_proto.schedule_timeout == "2m"
    assert await forwarded.aio_mock_run(In(value=21)) == Out(doubled=42)


def test_unknown_option_fails_where_it_is_written(client: HatchetMageflow) -> None:
    with pytest.raises(TypeError, match="retry_count"):
        client.task(name="typo", retry_count=3)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="slot_cost"):
        # slot_cost exists on Hatchet.task but not on Hatchet.durable_task.
        client.durable_task(name="typo", slot_cost=2)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("method", "typed_options"),
    [("task", TaskOptions), ("durable_task", DurableTaskOptions)],
)
def test_typed_options_list_every_option_hatchet_has(
    method: str, typed_options: type
) -> None:
    """If a hatchet-sdk upgrade adds an option, this fails until we type it."""
    hatchet_options = set(inspect.signature(getattr(Hatchet, method)).parameters)
    typed = set(typed_options.__optional_keys__)  # type: ignore[attr-defined]
    assert typed | {"self", "input_validator", "cron_input"} == hatchet_options


async def test_durable_task_is_declared_durable(client: HatchetMageflow) -> None:
    @client.durable_task(name="durable")
    async def durable(msg: In, ctx: Context) -> Out:
        return Out(doubled=msg.value * 2)

    (task_proto,) = durable.to_proto().tasks
    assert task_proto.is_durable
    assert await durable.aio_mock_run(In(value=4)) == Out(doubled=8)


def test_two_clients_keep_their_tasks_apart(
    make_client: Callable[..., HatchetMageflow],
) -> None:
    first, second = make_client(), make_client(AcceptParams.ALL)

    @first.task(name="only-on-first")
    async def only_on_first(msg: In) -> None:
        return None

    assert "only-on-first" in first.explain(only_on_first)
    with pytest.raises(mageflow.UnknownTaskError, match="only-on-first") as caught:
        second.explain(only_on_first)
    assert caught.value.task_name == "only-on-first"
    assert first.param_config is AcceptParams.NO_CTX
    assert second.param_config is AcceptParams.ALL


def _with_db(url: str, db: int) -> str:
    """``url`` pointing at database ``db`` (a TCP or a unix-socket URL)."""
    parsed = urlsplit(url)
    if parsed.scheme == "unix":
        return urlunsplit(parsed._replace(query=f"db={db}"))
    return urlunsplit(parsed._replace(path=f"/{db}"))


@pytest.mark.single_node  # a plain server: databases, or a Redis client of its own
async def test_two_clients_with_different_redis_do_not_interfere(
    make_client: Callable[..., HatchetMageflow], redis_url: str
) -> None:
    first = make_client(redis_client=_with_db(redis_url, 1))
    second = make_client(redis_client=_with_db(redis_url, 2))
    try:
        await first.redis.flushdb()
        await second.redis.flushdb()
        await first.redis.set("mageflow-test:owner", "first")
        assert await first.redis.get("mageflow-test:owner") == "first"
        assert await second.redis.get("mageflow-test:owner") is None
    finally:
        await first.redis.flushdb()
        await first.redis.aclose()
        await second.redis.aclose()


def test_missing_redis_fails_at_first_use_not_before(
    make_client: Callable[..., HatchetMageflow], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    client = make_client()

    @client.task(name="no-redis-needed")
    async def no_redis_needed(msg: In) -> None:
        return None

    client.worker("worker-without-redis", workflows=[no_redis_needed])
    with pytest.raises(RedisNotConfiguredError, match="REDIS_URL"):
        _ = client.redis


async def test_redis_url_is_read_from_the_environment(
    make_client: Callable[..., HatchetMageflow],
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    client = make_client()
    try:
        assert await client.redis.ping() is True
    finally:
        await client.redis.aclose()


@pytest.mark.single_node  # a plain server: databases, or a Redis client of its own
async def test_a_given_redis_client_is_used_as_is(
    make_client: Callable[..., HatchetMageflow], redis_url: str
) -> None:
    own = Redis.from_url(redis_url, decode_responses=True)
    try:
        client = make_client(redis_client=own)
        assert client.redis is own
    finally:
        await own.aclose()


def test_worker_accepts_no_workflows(client: HatchetMageflow) -> None:
    worker = client.worker("empty-worker", workflows=None)
    assert worker.name.endswith("empty-worker")


def test_worker_registers_the_given_tasks(client: HatchetMageflow) -> None:
    @client.task(name="registered")
    async def registered(msg: In) -> None:
        return None

    worker = client.worker("worker", workflows=[registered])

    # Hatchet registers them with the engine when the worker starts.
    assert registered in worker._workflows


async def test_worker_lifespan_runs_the_users_and_closes_owned_redis(
    make_client: Callable[..., HatchetMageflow], redis_url: str
) -> None:
    client = make_client(redis_client=redis_url)
    owned = client.redis
    assert await owned.ping() is True
    events: list[str] = []

    async def lifespan() -> AsyncGenerator[dict[str, Any], None]:
        events.append("setup")
        yield {"db": "connected"}
        events.append("teardown")

    worker = client.worker("lifespan-worker", lifespan=lifespan)
    value = await worker._setup_lifespan()
    assert value == {"db": "connected"}
    assert events == ["setup"]

    await worker._cleanup_lifespan()

    assert events == ["setup", "teardown"]
    # The owned client was closed; the next access builds a fresh one.
    fresh = client.redis
    assert fresh is not owned
    await fresh.aclose()


@pytest.mark.single_node  # a plain server: databases, or a Redis client of its own
async def test_worker_lifespan_leaves_a_users_redis_open(
    make_client: Callable[..., HatchetMageflow], redis_url: str
) -> None:
    own = Redis.from_url(redis_url, decode_responses=True)
    try:
        client = make_client(redis_client=own)
        worker = client.worker("keeps-user-redis")
        assert await worker._setup_lifespan() is None
        await worker._cleanup_lifespan()
        assert client.redis is own
        assert await own.ping() is True
    finally:
        await own.aclose()
