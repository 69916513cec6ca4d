"""What the e2e tests share: waiting with a timeout, and reading what ran."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from redis.asyncio import Redis

from mageflow import HatchetMageflow, SignatureStatus

RUN_TIMEOUT = float(os.environ.get("MAGEFLOW_E2E_RUN_TIMEOUT", "60"))

T = TypeVar("T")

KILL_WORKER = "mageflow-e2e-kill"


def key() -> str:
    return uuid.uuid4().hex


async def within(awaitable: Awaitable[T], seconds: float = RUN_TIMEOUT) -> T:
    """Await a run, failing the test (not hanging it) after ``seconds``."""
    return await asyncio.wait_for(awaitable, timeout=seconds)


async def eventually(
    probe: Callable[[], Awaitable[T]],
    what: str,
    timeout: float = RUN_TIMEOUT,
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(
                f"timed out after {timeout}s waiting for {what} (last: {value!r})"
            )
        await asyncio.sleep(0.1)  # ok: polling interval for a condition


async def events(redis: Redis, k: str) -> list[dict[str, Any]]:
    return [json.loads(e) for e in await redis.lrange(f"e2e:events:{k}", 0, -1)]


async def events_named(redis: Redis, k: str, name: str) -> list[dict[str, Any]]:
    return [e for e in await events(redis, k) if e["event"] == name]


async def status(mf: HatchetMageflow, signature_id: str) -> SignatureStatus:
    signature = await mf.load_signature(signature_id)
    assert signature is not None, f"signature {signature_id} is gone"
    return signature.status


async def statuses(mf: HatchetMageflow, ids: list[str]) -> list[SignatureStatus]:
    return [await status(mf, i) for i in ids]


async def counts(redis: Redis, name: str) -> dict[int, int]:
    return {int(i): int(n) for i, n in (await redis.hgetall(name)).items()}
