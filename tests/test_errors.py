"""Errors hold what they are about, live in one module, and travel.

Each case raises the error through the public API on the local backend and a
real Redis, then reads the fields a handler would use instead of parsing the
message.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from typing import Any

import pytest
from pydantic import BaseModel

import mageflow
from mageflow import HatchetMageflow, errors
from mageflow.store import keys


class Order(BaseModel):
    item: str
    quantity: int = 1


@pytest.fixture
def order_task(local: HatchetMageflow) -> Any:
    @local.task(name="order")
    async def order(msg: Order) -> None:
        return None

    return order


def test_every_exception_lives_in_errors_and_is_a_mageflow_error() -> None:
    for info in pkgutil.walk_packages(mageflow.__path__, "mageflow."):
        if info.name == "mageflow.__main__":
            continue  # importing it runs the command line
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if not (inspect.isclass(value) and issubclass(value, BaseException)):
                continue
            if value.__module__.startswith("mageflow"):
                assert value.__module__ == "mageflow.errors", (info.name, name)
                assert issubclass(value, mageflow.MageflowError), name


async def test_a_missing_signature_names_its_id(local: HatchetMageflow) -> None:
    with pytest.raises(mageflow.SignatureNotFoundError) as caught:
        await local.pause("no-such-id")
    assert caught.value.signature_id == "no-such-id"


async def test_an_illegal_transition_names_id_status_and_action(
    local: HatchetMageflow, order_task: Any
) -> None:
    signature = await local.sign(order_task)
    with pytest.raises(mageflow.InvalidTransitionError) as caught:
        await local.resume(signature.id)
    error = caught.value
    assert (error.signature_id, error.status, error.action) == (
        signature.id,
        "pending",
        "resume",
    )


async def test_an_input_conflict_names_the_field(
    local: HatchetMageflow, order_task: Any
) -> None:
    signature = await local.sign(order_task, quantity=2)
    with pytest.raises(mageflow.InputConflictError) as caught:
        await signature.aio_run_no_wait({"item": "tea", "quantity": 3})
    error = caught.value
    assert (error.signature_id, error.task_name, error.field) == (
        signature.id,
        "order",
        "quantity",
    )


async def test_a_corrupt_record_names_its_key(local: HatchetMageflow) -> None:
    await local.redis.hset(keys.signature("bad"), mapping={"v": "1", "kind": "?"})
    with pytest.raises(mageflow.CorruptSignatureError) as caught:
        await local.load_signature("bad")
    assert caught.value.key == keys.signature("bad")
    assert caught.value.signature_id == "bad"


async def test_an_unknown_task_name_is_held(local: HatchetMageflow) -> None:
    with pytest.raises(mageflow.UnknownTaskError) as caught:
        await local.sign("no-such-task")
    assert caught.value.task_name == "no-such-task"


def test_an_injection_error_names_the_task(local: HatchetMageflow) -> None:
    with pytest.raises(mageflow.InjectionError) as caught:

        @local.task(name="needs-db")
        async def needs_db(msg: Order, db) -> None:  # type: ignore[no-untyped-def]
            return None

    assert caught.value.task_name == "needs-db"


def test_an_unbound_signature_says_which() -> None:
    signature = mageflow.TaskSignature(task_name="by-hand")
    with pytest.raises(mageflow.SignatureNotBoundError) as caught:
        signature._bound()
    assert caught.value.signature_id == signature.id


@pytest.mark.parametrize(
    "error",
    [
        errors.SignatureNotFoundError("gone", signature_id="s1"),
        errors.InvalidTransitionError(
            "no", signature_id="s1", status="done", action="pause"
        ),
        errors.InputConflictError("two", signature_id="s1", field="x"),
        errors.CorruptSignatureError("bad", key="k", signature_id="s1"),
        errors.UnknownTaskError("who", task_name="t"),
        errors.DashboardExposedError("open", host="0.0.0.0"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_survive_pickling_with_their_fields(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))  # what crossing a process does
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
