"""Chains and swarms, as mypy sees them.

Checked by mypy (``files`` in pyproject.toml), never run.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from typing_extensions import assert_type

import mageflow
from mageflow import ChainSignature, SignatureStatus, SwarmSignature, TaskSignature
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
