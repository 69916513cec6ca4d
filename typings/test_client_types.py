"""The client itself, as mypy sees it.

Checked by mypy (``files`` in pyproject.toml), never run.
"""

from __future__ import annotations

from typing import Any

from hatchet_sdk import Context, Hatchet
from hatchet_sdk.runnables.workflow import BaseWorkflow, Standalone
from hatchet_sdk.worker.worker import Worker
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from typing_extensions import assert_type

import mageflow
from mageflow import AcceptParams, HatchetMageflow
from mageflow.testing import offline_hatchet

# --- Mageflow(...) ---------------------------------------------------------

client = mageflow.Mageflow(offline_hatchet())
assert_type(client, HatchetMageflow)
assert_type(mageflow.Mageflow(), HatchetMageflow)
assert_type(mageflow.Mageflow(redis_client="redis://localhost:6379/0"), HatchetMageflow)
assert_type(
    mageflow.Mageflow(
        offline_hatchet(),
        redis_client=Redis.from_url("redis://localhost:6379/0"),
        param_config=AcceptParams.ALL,
    ),
    HatchetMageflow,
)
mageflow.Mageflow(param_config="all")  # type: ignore[arg-type]
mageflow.Mageflow(redis_client=6379)  # type: ignore[arg-type]

assert_type(client.param_config, AcceptParams)
assert_type(client.redis, Redis | RedisCluster)


# --- a HatchetMageflow is a Hatchet ----------------------------------------


def wants_hatchet(hatchet: Hatchet) -> str:
    return hatchet.tenant_id


wants_hatchet(client)
as_hatchet: Hatchet = client
assert_type(client.tenant_id, str)


# --- explain and worker ----------------------------------------------------


class In(BaseModel):
    value: int


class Out(BaseModel):
    doubled: int


@client.task(name="double")
async def double(msg: In, ctx: Context) -> Out:
    return Out(doubled=msg.value * 2)


assert_type(double, Standalone[In, Out])
assert_type(client.explain(double), str)
assert_type(client.explain("double"), str)
client.explain(print)  # type: ignore[arg-type]

workflows: list[BaseWorkflow[Any]] = [double]
assert_type(client.worker("w", slots=4, workflows=workflows), Worker)
assert_type(client.worker("w"), Worker)
