"""Chains and swarms, as mypy sees them.

Checked by mypy (``files`` in pyproject.toml), never run.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from typing_extensions import assert_type

import mageflow
from mageflow import (
    ChainSignature,
    SignatureStatus,
    SwarmSignature,
    TaskError,
    TaskSignature,
)
from mageflow.testing import offline_hatchet

client = mageflow.Mageflow(offline_hatchet())


class In(BaseModel):
    value: int


@client.task(name="step")
async def step(msg: In) -> dict[str, int]:
    return {"value": msg.value + 1}


async def chains() -> None:
    first: TaskSignature[dict[str, int]] = await client.sign(step, value=1)
    chain = await client.chain([first, step, "step"], name="three", success=step)
    assert_type(chain, ChainSignature[Any])
    assert_type(chain.steps, list[str])
    assert_type(await mageflow.chain([step, step]), ChainSignature[Any])
    assert_type(await chain.aio_run_no_wait({"value": 1}), str)


async def swarms() -> None:
    swarm = await client.swarm([step, "step"], max_concurrency=5, error="step")
    assert_type(swarm, SwarmSignature[Any])
    assert_type(await swarm.add(step), list[str])
    assert_type(await swarm.add([step, await client.sign(step)]), list[str])
    assert_type(await swarm.close(), None)
    assert_type(swarm.max_concurrency, int)
    assert_type(swarm.stop_after_n_failures, int | None)
    assert_type(await mageflow.swarm(task_name="step"), SwarmSignature[Any])
    # a swarm is a signature: it can be a chain step or a callback
    nested = await client.chain([step, swarm])
    assert_type(nested.status, SignatureStatus)


async def results() -> None:
    signature = await client.sign(step, value=1)
    # A task's result is its return type, by id or by awaiting the run.
    assert_type(await signature.aio_run(), dict[str, int])
    assert_type(await signature.aio_result(timeout=5), dict[str, int])
    assert_type(signature.outcome, Any)
    assert_type(signature.error, TaskError | None)
    assert_type(signature.generation, int)
    # A chain's steps are a list, so its last step's type is not known: Any.
    chain = await client.chain([step, step])
    assert_type(await chain.aio_run({"value": 1}), Any)
    assert_type(await chain.aio_result(), Any)
    # A swarm's result is the list of its items' outcomes.
    swarm = await client.swarm([step, step])
    assert_type(await swarm.aio_run(), list[Any])
    typed: SwarmSignature[dict[str, int]] = await client.swarm([step])
    assert_type(await typed.aio_result(timeout=1.0), list[dict[str, int]])
    assert_type(await client.wait(signature.id, timeout=1.0), Any)
    assert_type(await mageflow.wait(signature.id), Any)
    assert_type(await client.retry(signature.id), None)
    assert_type(await mageflow.retry(signature.id), None)
    assert_type(await signature.retry(), None)


def rewrapping() -> None:
    again = mageflow.Mageflow(client, param_config=mageflow.AcceptParams.ALL)
    assert_type(again, mageflow.HatchetMageflow)
