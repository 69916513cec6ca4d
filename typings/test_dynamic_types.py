"""Dynamic workflows, as mypy sees them: ``Continue``, root tasks, and
per-item callbacks.

Checked by mypy (``files`` in pyproject.toml), never run.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from hatchet_sdk.runnables.workflow import Standalone
from pydantic import BaseModel
from typing_extensions import assert_type

import mageflow
from mageflow import (
    CallbackTemplate,
    Continue,
    ReturnValue,
    RootResult,
    SwarmSignature,
    TaskSignature,
)
from mageflow.testing import offline_hatchet

client = mageflow.Mageflow(offline_hatchet())


class In(BaseModel):
    value: int


class Out(BaseModel):
    doubled: int


# --- Continue ---------------------------------------------------------------------


@client.task(name="double")
async def double(msg: In) -> Out:
    return Out(doubled=msg.value * 2)


@client.task(name="maybe-later")
async def maybe_later(msg: In) -> Out | Continue[Out]:
    if msg.value > 10:
        return Out(doubled=msg.value * 2)
    # A signature of a task that returns Out: Continue[Out].
    later = await client.sign(double, value=msg.value)
    assert_type(Continue(later), Continue[Out])
    return Continue(later)


@client.task(name="always-later")
async def always_later(msg: In) -> Continue[Out]:
    return Continue(await client.sign(double, value=msg.value))


# Hatchet sees the function's return annotation; mageflow's signatures see
# the outcome: a continuation stands for its work's result.
assert_type(maybe_later, Standalone[In, Out | Continue[Out]])


async def signing() -> None:
    assert_type(await client.sign(maybe_later), TaskSignature[Out])
    assert_type(await client.sign(always_later), TaskSignature[Out])
    assert_type(await client.sign(double), TaskSignature[Out])
    assert_type(await mageflow.sign(maybe_later), TaskSignature[Out])
    assert_type(await (await client.sign(maybe_later)).aio_run(), Out)
    # A chain or a swarm is a signature too: a continuation may be either.
    chain = await client.chain([double, double])
    assert_type(Continue(chain), Continue[Any])
    swarm: SwarmSignature[Out] = await client.swarm([double])
    assert_type(Continue(swarm), Continue[list[Out]])
    signature = await client.sign(double)
    assert_type(signature.continuation_id, str | None)
    assert_type(signature.continuation_depth, int)
    assert_type(client.max_continuations, int)


# --- root tasks ---------------------------------------------------------------------


@client.task(name="orchestrate")
@client.root_task(max_concurrency=5, stop_after_n_failures=2)
async def orchestrate(msg: In) -> Out:
    for _ in range(msg.value):
        await (await client.sign(double, value=1)).aio_run_no_wait()
    with mageflow.without_root():
        await (await client.sign(double, value=2)).aio_run_no_wait()
    return Out(doubled=msg.value)


# root_task changes nothing in the function's type.
assert_type(orchestrate, Standalone[In, Out])
marker = client.root_task()


def unmarked() -> Callable[[In], Coroutine[Any, Any, Out]]:
    raise NotImplementedError


assert_type(marker(unmarked()), Callable[[In], Coroutine[Any, Any, Out]])


class Report(BaseModel):
    everything: ReturnValue[RootResult[Out]]


async def rooting() -> None:
    root = await client.sign(orchestrate)
    # Waiting for a root gives its body's result ...
    assert_type(await root.aio_run(In(value=3)), Out)
    assert_type(root.root_swarm_id, str | None)
    # ... and its success callbacks get the body's with the children's.
    report = Report(everything=RootResult[Out](result=Out(doubled=1)))
    assert_type(report.everything.result, Out)
    assert_type(report.everything.children, list[Any])


# --- per-item callbacks ---------------------------------------------------------------


async def per_item() -> None:
    swarm = await client.swarm(
        [double, "double"], item_success="notify", item_error=[double]
    )
    assert_type(swarm.item_success, list[CallbackTemplate])
    assert_type(swarm.item_error[0].task_name, str)
    assert_type(
        await mageflow.swarm([double], item_success=await client.sign(double)),
        SwarmSignature[Any],
    )
