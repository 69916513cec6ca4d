"""Signatures, as mypy sees them: the task's output type flows through.

Checked by mypy (``files`` in pyproject.toml), never run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hatchet_sdk.runnables.workflow import Standalone
from pydantic import BaseModel
from typing_extensions import assert_type

import mageflow
from mageflow import ReturnValue, SignatureStatus, TaskError, TaskSignature
from mageflow.testing import offline_hatchet

client = mageflow.Mageflow(offline_hatchet())


class In(BaseModel):
    value: int


class Out(BaseModel):
    doubled: int


class Notify(BaseModel):
    doubled: ReturnValue[int]
    channel: str = "mail"


class OnError(BaseModel):
    failure: ReturnValue[TaskError]


@dataclass
class DataNotify:
    total: ReturnValue[float]


@client.task(name="double")
async def double(msg: In) -> Out:
    return Out(doubled=msg.value * 2)


@client.task(name="count")
async def count(msg: In) -> dict[str, int]:
    return {"value": msg.value}


@client.task(name="notify")
async def notify(msg: Notify) -> None:
    return None


assert_type(double, Standalone[In, Out])
assert_type(count, Standalone[In, dict[str, int]])
assert_type(notify, Standalone[Notify, None])


# --- ReturnValue[T] is T to the type checker --------------------------------


def fields(n: Notify, e: OnError, d: DataNotify) -> None:
    assert_type(n.doubled, int)
    assert_type(e.failure, TaskError)
    assert_type(d.total, float)


Notify(doubled=3)
Notify(doubled="three")  # type: ignore[arg-type]


# --- client.sign --------------------------------------------------------------


async def client_sign() -> None:
    by_task = await client.sign(double, value=2)
    assert_type(by_task, TaskSignature[Out])
    assert_type(await client.sign(count), TaskSignature[dict[str, int]])
    assert_type(await client.sign(notify, channel="sms"), TaskSignature[None])
    assert_type(await client.sign("double"), TaskSignature[Any])

    # callbacks: a signature, a task, a name, or a list of them
    on_done = await client.sign(notify)
    assert_type(
        await client.sign(double, success=on_done, error="on-error"),
        TaskSignature[Out],
    )
    assert_type(
        await client.sign(double, success=[on_done, notify, "notify"], error=[]),
        TaskSignature[Out],
    )
    assert_type(
        await client.sign(double, task_identifiers={"order": 7}), TaskSignature[Out]
    )
    await client.sign(double, success=print)  # type: ignore[call-overload]
    await client.sign(double, task_identifiers=["order"])  # type: ignore[call-overload]
    await client.sign(print)  # type: ignore[call-overload]

    # running it gives the task's output type
    assert_type(await by_task.aio_run(In(value=1)), Out)
    assert_type(await by_task.aio_run({"value": 1}), Out)
    assert_type(await by_task.aio_run(), Out)
    assert_type(await (await client.sign(count)).aio_run(), dict[str, int])
    assert_type(await (await client.sign("double")).aio_run(), Any)
    assert_type(await by_task.aio_run_no_wait(In(value=1)), str)
    await by_task.aio_run(3)  # type: ignore[arg-type]

    # fields and steering
    assert_type(by_task.id, str)
    assert_type(by_task.task_name, str)
    assert_type(by_task.kwargs, dict[str, Any])
    assert_type(by_task.task_identifiers, dict[str, Any])
    assert_type(by_task.success_callbacks, list[str])
    assert_type(by_task.error_callbacks, list[str])
    assert_type(by_task.status, SignatureStatus)
    assert_type(await by_task.pause(), None)
    assert_type(await by_task.resume(), None)
    assert_type(await by_task.stop(), None)
    assert_type(await by_task.remove(), int)


# --- the module functions -------------------------------------------------------


async def module_functions() -> None:
    by_task = await mageflow.sign(double, value=2)
    assert_type(by_task, TaskSignature[Out])
    assert_type(await mageflow.sign(count), TaskSignature[dict[str, int]])
    assert_type(await mageflow.sign("double"), TaskSignature[Any])
    assert_type(
        await mageflow.sign(double, success=notify, error=["on-error"]),
        TaskSignature[Out],
    )
    assert_type(await by_task.aio_run(In(value=1)), Out)
    await mageflow.sign(42)  # type: ignore[call-overload]

    assert_type(await mageflow.load_signature(by_task.id), TaskSignature[Any] | None)
    assert_type(await client.load_signature(by_task.id), TaskSignature[Any] | None)
    loaded = await mageflow.load_signature(by_task.id)
    print(loaded.status)  # type: ignore[union-attr]
    if loaded is not None:
        assert_type(await loaded.aio_run(), Any)

    assert_type(await mageflow.pause(by_task.id), None)
    assert_type(await mageflow.resume(by_task.id), None)
    assert_type(await mageflow.stop(by_task.id), None)
    assert_type(await mageflow.remove(by_task.id), int)
    await mageflow.pause(by_task)  # type: ignore[arg-type]

    with client.use() as active:
        assert_type(active, mageflow.HatchetMageflow)


# --- TTLConfig and TaskError --------------------------------------------------


def plain_data() -> None:
    from datetime import timedelta

    assert_type(mageflow.TTLConfig(), mageflow.TTLConfig)
    mageflow.Mageflow(ttl=mageflow.TTLConfig(active=timedelta(hours=2)))
    mageflow.Mageflow(ttl=3600)  # type: ignore[arg-type]
    error = TaskError(
        error_type="ValueError",
        message="boom",
        signature_id="s",
        task_name="t",
        original_message={},
    )
    assert_type(error.original_message, dict[str, Any])
    assert_type(mageflow.DEFAULT_RESULT_FIELD, str)
