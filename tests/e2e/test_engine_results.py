"""Results on a real Hatchet engine: awaiting chains and swarms, waiting by
id, retrying what failed, and a seed-style task whose output arrives whole.

Runs go through the engine to the worker subprocess; the waits are mageflow's
own (pub/sub on the suite's Redis), each bounded by ``within``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import ModuleType

import pytest
from e2e_helpers import key, status, within
from redis.asyncio import Redis

import mageflow
from mageflow import SignatureStatus

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture(autouse=True)
def _worker_alive(worker: subprocess.Popen[bytes]) -> None:
    assert worker.poll() is None, "the e2e worker has exited"


async def test_a_chain_returns_its_last_steps_result(tasks: ModuleType) -> None:
    mf = tasks.mf
    chain = await mf.chain(
        [await mf.sign(tasks.add, x=1, plus=1), await mf.sign(tasks.add, plus=10)]
    )
    assert await within(chain.aio_run()) == {"v": 12}


async def test_a_swarm_returns_its_outcomes_in_add_order(tasks: ModuleType) -> None:
    mf = tasks.mf
    # Later items finish first; the result is still in add order.
    items = [await mf.sign(tasks.add, x=i, delay=0.3 - 0.1 * i) for i in range(3)]
    swarm = await mf.swarm(items)
    assert await within(swarm.aio_run()) == [{"v": 0}, {"v": 1}, {"v": 2}]


async def test_wait_by_id_for_a_run_started_without_waiting(
    tasks: ModuleType,
) -> None:
    mf = tasks.mf
    signature = await mf.sign(tasks.add, x=4, plus=3)
    await signature.aio_run_no_wait()
    assert await within(mf.wait(signature.id, timeout=60)) == {"v": 7}
    loaded = await mf.load_signature(signature.id)
    assert loaded is not None
    assert (loaded.status, loaded.outcome) == (SignatureStatus.DONE, {"v": 7})


async def test_a_failed_chain_raises_then_retry_continues_it(
    tasks: ModuleType, redis: Redis
) -> None:
    mf, k = tasks.mf, key()
    chain = await mf.chain(
        [await mf.sign(tasks.add, x=2, plus=3), await mf.sign(tasks.fails_once, key=k)]
    )
    with pytest.raises(mageflow.SignatureFailedError) as caught:
        await within(chain.aio_run())
    assert caught.value.error is not None
    assert caught.value.error.message == "the first call fails"

    await mf.retry(chain.id)
    # The first step is not run again: the retried step gets its result.
    assert await within(chain.aio_result(timeout=60)) == {
        "calls": 2,
        "got": {"v": 5},
    }
    assert await status(mf, chain.steps[0]) is SignatureStatus.DONE
    assert await redis.get(f"e2e:once:{k}") == "2"


async def test_a_seed_style_task_returns_the_same_both_ways(
    tasks: ModuleType, worker_process: tuple[subprocess.Popen[bytes], Path]
) -> None:
    _, log_path = worker_process
    direct = await within(tasks.seed_style.aio_run(tasks.SeedInput(data="x")))
    signature = await tasks.mf.sign(tasks.seed_style)
    signed = await within(signature.aio_run({"data": "x"}))
    assert direct == signed == {"processed": "X"}
    assert type(direct) is type(signed) is dict
    assert "PydanticSerializationUnexpectedValue" not in log_path.read_text(
        errors="replace"
    )
