"""mageflow on a real Hatchet engine: runs go through the engine to a worker
subprocess and back. Each test waits on the run itself (with a timeout), or on
Redis state the worker wrote, never on a fixed sleep.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from types import ModuleType
from typing import Any

import pytest
from redis.asyncio import Redis

# Every test here is e2e, and all share the session's event loop: the Hatchet
# client's result listener lives on the loop that first used it.
pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

RUN_TIMEOUT = float(os.environ.get("MAGEFLOW_E2E_RUN_TIMEOUT", "60"))


async def within(awaitable: Any, seconds: float = RUN_TIMEOUT) -> Any:
    """Await a run, failing the test (not hanging it) after ``seconds``."""
    return await asyncio.wait_for(awaitable, timeout=seconds)


def key() -> str:
    return uuid.uuid4().hex


async def attempts(redis: Redis, key: str) -> list[int]:
    return [int(n) for n in await redis.lrange(f"e2e:attempts:{key}", 0, -1)]


@pytest.fixture(autouse=True)
def _worker_alive(worker: subprocess.Popen[bytes]) -> None:
    assert worker.poll() is None, "the e2e worker has exited"


async def test_injection_by_annotation(tasks: ModuleType) -> None:
    k = key()
    seen = await within(tasks.annotated.aio_run(tasks.Probe(key=k)))
    assert isinstance(seen, tasks.Seen)  # the validated output model, not a dict
    assert seen.ctx_type == "Context"
    assert seen.run_id
    assert seen.attempt == 1
    # the dependency ran in the same run, with the same input and context
    assert seen.dependency == f"dep:{k}:{seen.run_id}"


async def test_with_ctx(tasks: ModuleType) -> None:
    ref = await within(
        tasks.with_ctx_task.aio_run(tasks.Probe(key=key()), wait_for_result=False)
    )
    seen = await within(ref.aio_result())
    assert seen.ctx_type == "Context"
    assert seen.run_id == ref.workflow_run_id


async def test_with_signature_on_a_run_without_one(tasks: ModuleType) -> None:
    seen = await within(tasks.with_signature_task.aio_run(tasks.Probe(key=key())))
    assert seen.signature_is_none is True


async def test_accept_params_all(tasks: ModuleType) -> None:
    seen = await within(tasks.accept_all.aio_run(tasks.Probe(key=key())))
    assert seen.ctx_type == "Context"
    assert seen.run_id
    assert seen.signature_is_none is True


async def test_stagger_extends_the_real_timeout(
    tasks: ModuleType, redis: Redis
) -> None:
    timeout = tasks.STAGGER_TIMEOUT.total_seconds()
    # Control: with the same execution_timeout, a task that waits longer is
    # cancelled by the engine. So timeouts are enforced here.
    control = key()
    with pytest.raises(Exception, match=r"(?i)time.?out|cancel"):
        await within(tasks.timeout_control.aio_run(tasks.Probe(key=control)))
    assert await attempts(redis, control) == [1]

    # Staggered runs: each waits a random delay in [0, STAGGER_WINDOW] before
    # its body, and still succeeds, because mageflow extended its timeout on
    # the engine first. Eight runs make a draw where no delay outlasts the
    # timeout by a second (P = 0.3**8) a negligible risk.
    keys = [key() for _ in range(8)]
    refs = await within(
        tasks.stagger_task.aio_run_many(
            [tasks.stagger_task.create_bulk_run_item(tasks.Probe(key=k)) for k in keys],
            wait_for_result=False,
        )
    )
    results = await within(asyncio.gather(*(ref.aio_result() for ref in refs)))
    delays = []
    for k, ref, seen in zip(keys, refs, results, strict=True):
        assert await attempts(redis, k) == [1]  # succeeded first time, no retry
        details = await within(tasks.hatchet.runs.aio_get(ref.workflow_run_id))
        started = details.tasks[0].started_at
        assert started is not None
        delays.append(seen.extra["body_started"] - started.timestamp())
    assert max(delays) > timeout + 1, (
        f"no stagger delay outlasted the {timeout}s timeout: {delays}"
    )


async def test_durable_task(tasks: ModuleType, redis: Redis) -> None:
    k = key()
    started = time.monotonic()
    seen = await within(tasks.durable_task.aio_run(tasks.Probe(key=k)))
    assert time.monotonic() - started >= 1  # the engine-side sleep took its time
    assert seen.ctx_type == "DurableContext"
    assert seen.run_id
    assert seen.extra["slept"]
    assert await attempts(redis, k)  # the body ran (again after the sleep, or once)


async def test_retries_until_success(tasks: ModuleType, redis: Redis) -> None:
    k = key()
    seen = await within(
        tasks.flaky.aio_run(tasks.Probe(key=k, fail_times=tasks.RETRIES))
    )
    assert seen.attempt == tasks.RETRIES + 1
    assert await attempts(redis, k) == list(range(1, tasks.RETRIES + 2))


async def test_retries_exhausted(tasks: ModuleType, redis: Redis) -> None:
    k = key()
    with pytest.raises(Exception, match="planned failure"):
        await within(
            tasks.flaky.aio_run(tasks.Probe(key=k, fail_times=tasks.RETRIES + 5))
        )
    # N retries: N + 1 attempts, and no more
    assert await attempts(redis, k) == list(range(1, tasks.RETRIES + 2))
