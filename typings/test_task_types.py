"""What ``@client.task`` and ``@client.durable_task`` give back, as mypy sees it.

Checked by mypy (``files`` in pyproject.toml), never run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from hatchet_sdk import Context, Depends, DurableContext, EmptyModel
from hatchet_sdk.runnables.workflow import Standalone
from pydantic import BaseModel
from typing_extensions import assert_type

import mageflow
from mageflow import TaskSignature
from mageflow.testing import offline_hatchet

client = mageflow.Mageflow(offline_hatchet())


class In(BaseModel):
    value: int


class Out(BaseModel):
    doubled: int


@dataclass
class DataIn:
    value: int


async def dep(msg: In, ctx: Context) -> int:
    return msg.value


# --- @client.task ----------------------------------------------------------


@client.task(name="explicit-validator", input_validator=In)
async def explicit_validator(msg: In, ctx: Context) -> Out:
    return Out(doubled=msg.value * 2)


assert_type(explicit_validator, Standalone[In, Out])


@client.task(name="inferred-validator")
async def inferred_validator(msg: In, ctx: Context) -> Out:
    return Out(doubled=msg.value * 2)


assert_type(inferred_validator, Standalone[In, Out])


@client.task(name="no-ctx")
async def no_ctx(msg: In) -> Out:
    return Out(doubled=msg.value * 2)


assert_type(no_ctx, Standalone[In, Out])


@client.task(name="no-ctx-explicit", input_validator=In)
async def no_ctx_explicit(msg: In) -> Out:
    return Out(doubled=msg.value * 2)


assert_type(no_ctx_explicit, Standalone[In, Out])


@client.task(name="sync")
def sync_task(msg: In, ctx: Context) -> Out:
    return Out(doubled=msg.value * 2)


assert_type(sync_task, Standalone[In, Out])


@client.task(name="sync-no-ctx", input_validator=In)
def sync_no_ctx(msg: In) -> Out:
    return Out(doubled=msg.value * 2)


assert_type(sync_no_ctx, Standalone[In, Out])


@client.task(name="dataclass-input")
async def dataclass_input(msg: DataIn) -> dict[str, int]:
    return {"value": msg.value}


assert_type(dataclass_input, Standalone[DataIn, dict[str, int]])


@client.task(name="returns-none")
async def returns_none(msg: In) -> None:
    return None


assert_type(returns_none, Standalone[In, None])


@client.task(name="everything", retries=2)
async def everything(
    msg: In,
    ctx: Context,
    signature: TaskSignature | None,
    doubled: Annotated[int, Depends(dep)],
    scale: int = 1,
) -> Out:
    return Out(doubled=doubled * scale)


assert_type(everything, Standalone[In, Out])


@client.task(name="empty-model", input_validator=EmptyModel)
async def empty_model(msg: EmptyModel, ctx: Context) -> dict[str, Any]:
    return {}


assert_type(empty_model, Standalone[EmptyModel, dict[str, Any]])


# --- @client.durable_task --------------------------------------------------


@client.durable_task(name="durable", input_validator=In)
async def durable(msg: In, ctx: DurableContext) -> Out:
    return Out(doubled=msg.value * 2)


assert_type(durable, Standalone[In, Out])


@client.durable_task(name="durable-inferred")
async def durable_inferred(msg: In, ctx: DurableContext) -> Out:
    return Out(doubled=msg.value * 2)


assert_type(durable_inferred, Standalone[In, Out])


@client.durable_task(name="durable-no-ctx")
async def durable_no_ctx(msg: In) -> Out:
    return Out(doubled=msg.value * 2)


assert_type(durable_no_ctx, Standalone[In, Out])


# --- running them ----------------------------------------------------------


async def run_them() -> None:
    assert_type(await explicit_validator.aio_run(In(value=1)), Out)
    assert_type(await no_ctx.aio_run(In(value=1)), Out)
    assert_type(await durable.aio_run(In(value=1)), Out)
    assert_type(await dataclass_input.aio_run(DataIn(value=1)), dict[str, int])
    assert_type(sync_task.run(In(value=1)), Out)
    assert_type(await everything.aio_mock_run(In(value=1)), Out)


# --- what mypy must reject (strict mode reports an unused ignore otherwise) --


class Other(BaseModel):
    name: str


async def rejected() -> None:
    await explicit_validator.aio_run(Other(name="x"))  # type: ignore[call-overload]
    await no_ctx.aio_mock_run(Other(name="x"))  # type: ignore[arg-type]


wrong_output: Standalone[In, Other] = no_ctx  # type: ignore[assignment]
wrong_input: Standalone[Other, Out] = no_ctx  # type: ignore[assignment]


# input_validator and the first parameter must agree.
@client.task(name="disagree", input_validator=Other)  # type: ignore[arg-type]
async def disagree(msg: In) -> Out:
    return Out(doubled=msg.value)


# A task needs a first parameter for its input message.
@client.task(name="no-message")  # type: ignore[arg-type]
async def no_message() -> Out:
    return Out(doubled=0)


# A task returns what Hatchet can serialise.
@client.task(name="returns-int")  # type: ignore[type-var]
async def returns_int(msg: In) -> int:
    return msg.value


# cron_input is typed by the input, whether the validator is given or inferred.
@client.task(name="cron-inferred", on_crons=["0 * * * *"], cron_input=In(value=1))
async def cron_inferred(msg: In) -> Out:
    return Out(doubled=msg.value)


assert_type(cron_inferred, Standalone[In, Out])


@client.task(
    name="cron-explicit",
    input_validator=In,
    on_crons=["0 * * * *"],
    cron_input=In(value=1),
)
async def cron_explicit(msg: In) -> Out:
    return Out(doubled=msg.value)


assert_type(cron_explicit, Standalone[In, Out])


@client.task(name="cron-mismatch", cron_input=Other(name="x"))  # type: ignore[arg-type]
async def cron_mismatch(msg: In) -> Out:
    return Out(doubled=msg.value)


@client.durable_task(
    name="durable-cron", on_crons=["0 * * * *"], cron_input=In(value=1)
)
async def durable_cron(msg: In, ctx: DurableContext) -> Out:
    return Out(doubled=msg.value)


assert_type(durable_cron, Standalone[In, Out])
