"""Bound kwargs are checked against the task's input model when signing.

An unknown field, or a value its field refuses, raises
``InputValidationError`` at ``sign`` (and when a swarm builds items from
refs), naming the field; nothing is stored. Fields left for the message stay
allowed. On the local backend and a real Redis; nothing here is faked.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any

import pytest
from hatchet_sdk import EmptyModel
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

import mageflow
from mageflow import HatchetMageflow, ReturnValue, SwarmSignature
from mageflow.dispatch.local import LocalDispatcher
from mageflow.engine import bound as bound_module
from mageflow.errors import InputValidationError
from mageflow.store import keys
from mageflow.testing import offline_hatchet


class Order(BaseModel):
    item: str
    quantity: int = Field(gt=0)


class Receipt(BaseModel):
    total: float


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")

    item: str = ""


class Shipment(BaseModel):
    order: Order
    when: datetime


class Aliased(BaseModel):
    order_id: int = Field(alias="orderId")


class AliasedByName(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    order_id: int = Field(alias="orderId")


class Notify(BaseModel):
    receipt: ReturnValue[Receipt]
    channel: str = "mail"


@dataclasses.dataclass
class DataIn:
    value: int
    note: str = ""


class TypedIn(TypedDict):
    value: int
    note: str


def backend(client: HatchetMageflow) -> LocalDispatcher:
    assert isinstance(client.dispatch_backend, LocalDispatcher)
    return client.dispatch_backend


@pytest.fixture
def tasks(local: HatchetMageflow) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    @local.task(name="price")
    async def price(msg: Order) -> Receipt:
        return Receipt(total=2.5 * msg.quantity)

    @local.task(name="loose")
    async def loose(msg: Loose) -> dict[str, Any]:
        return msg.model_dump()

    @local.task(name="empty")
    async def empty(msg: EmptyModel) -> None:
        return None

    @local.task(name="ship")
    async def ship(msg: Shipment) -> dict[str, str]:
        return {"text": f"{msg.order.quantity} {msg.order.item} on {msg.when:%Y-%m-%d}"}

    @local.task(name="aliased")
    async def aliased(msg: Aliased) -> dict[str, int]:
        return {"order_id": msg.order_id}

    @local.task(name="aliased-by-name")
    async def aliased_by_name(msg: AliasedByName) -> dict[str, int]:
        return {"order_id": msg.order_id}

    @local.task(name="notify")
    async def notify(msg: Notify) -> dict[str, str]:
        seen["notified"] = msg
        return {"channel": msg.channel}

    @local.task(name="data")
    async def data(msg: DataIn) -> dict[str, int]:
        return {"value": msg.value}

    @local.task(name="typed")
    async def typed(msg: TypedIn) -> dict[str, int]:
        return {"value": msg["value"]}

    @local.task(name="counts")
    async def counts(msg: dict[str, int]) -> dict[str, int]:
        return {"sum": sum(msg.values())}

    @local.task(name="anything")
    async def anything(msg: dict) -> dict[str, int]:  # type: ignore[type-arg]
        return {"keys": len(msg)}

    seen.update(
        price=price,
        loose=loose,
        empty=empty,
        ship=ship,
        aliased=aliased,
        aliased_by_name=aliased_by_name,
        notify=notify,
        data=data,
        typed=typed,
        counts=counts,
        anything=anything,
    )
    return seen


async def stored_keys(client: HatchetMageflow) -> list[Any]:
    return list(await client.redis.keys("mageflow:*"))


async def size_of(client: HatchetMageflow, swarm_id: str) -> int:
    swarm = await client.load_signature(swarm_id)
    assert isinstance(swarm, SwarmSignature)
    return swarm.size


# --- unknown fields and wrong types ------------------------------------------


async def test_an_unknown_field_is_refused_naming_it_and_nothing_is_stored(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    with pytest.raises(InputValidationError) as caught:
        await local.sign(tasks["price"], nosuch=1)

    error = caught.value
    assert error.task_name == "price"
    assert error.errors == [
        {
            "loc": ["nosuch"],
            "msg": "Extra inputs are not permitted",
            "type": "extra_forbidden",
        }
    ]
    message = str(error)
    assert "'nosuch' is not a field" in message
    assert "item, quantity" in message  # what the input does have
    assert "extra='allow'" in message  # and what to do about it
    assert await stored_keys(local) == []


async def test_a_value_of_the_wrong_type_is_refused_naming_the_field(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    with pytest.raises(InputValidationError) as caught:
        await local.sign(tasks["price"], quantity="lots")

    (problem,) = caught.value.errors
    assert problem["loc"] == ["quantity"]
    assert problem["type"] == "int_parsing"
    message = str(caught.value)
    assert "field 'quantity' is bound to 'lots'" in message
    assert "valid integer" in message
    assert "leave it unbound" in message
    assert await stored_keys(local) == []


async def test_the_fields_constraints_are_checked_too(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    with pytest.raises(InputValidationError, match="greater than 0") as caught:
        await local.sign("price", quantity=0)
    assert [p["loc"] for p in caught.value.errors] == [["quantity"]]


async def test_every_bad_field_is_reported_at_once(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    with pytest.raises(InputValidationError) as caught:
        await local.sign("price", quantity="lots", item=3, nosuch=1)
    assert sorted(p["loc"][0] for p in caught.value.errors) == [
        "item",
        "nosuch",
        "quantity",
    ]


async def test_a_signing_by_name_is_checked_like_a_task_object(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    with pytest.raises(InputValidationError, match="'nosuch'"):
        await mageflow.sign("price", nosuch=1)


# --- what stays allowed ------------------------------------------------------


async def test_a_missing_required_field_is_left_for_the_message(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    sig = await local.sign(tasks["price"], quantity=4)  # no item: the message has it

    assert await sig.aio_run({"item": "tea"}) == Receipt(total=10.0)


async def test_models_and_datetimes_are_checked_as_the_json_that_is_stored(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    when = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    sig = await local.sign(
        tasks["ship"], order=Order(item="tea", quantity=2), when=when
    )

    assert sig.kwargs == {
        "order": {"item": "tea", "quantity": 2},
        "when": "2024-05-01T12:00:00Z",
    }
    assert await sig.aio_run() == {"text": "2 tea on 2024-05-01"}


async def test_a_bound_model_value_must_be_whole(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    # Only top-level fields are left for the message; a bound value is final.
    with pytest.raises(InputValidationError, match=r"order\.quantity") as caught:
        await local.sign(tasks["ship"], order={"item": "tea"})
    assert caught.value.errors[0]["loc"] == ["order", "quantity"]


async def test_a_model_that_allows_extra_fields_accepts_any(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    sig = await local.sign(tasks["loose"], anything=[1, 2], item="tea")
    assert await sig.aio_run() == {"item": "tea", "anything": [1, 2]}

    with pytest.raises(InputValidationError, match="'item'"):
        await local.sign(tasks["loose"], item=["not", "a", "str"])


async def test_hatchets_empty_model_accepts_any_field(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    sig = await local.sign(tasks["empty"], whatever=1, more={"x": 2})
    assert sig.kwargs == {"whatever": 1, "more": {"x": 2}}


async def test_a_return_value_field_may_be_bound_and_is_checked(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    sig = await local.sign(tasks["notify"], receipt=Receipt(total=1.5), channel="sms")
    assert await sig.aio_run() == {"channel": "sms"}
    assert tasks["notified"].receipt == Receipt(total=1.5)

    with pytest.raises(InputValidationError, match="'receipt'"):
        await local.sign(tasks["notify"], receipt="paid")


async def test_a_callback_by_name_binds_nothing_and_is_accepted(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    sig = await local.sign(tasks["price"], quantity=2, success="notify")
    await sig.aio_run({"item": "tea"})
    await backend(local).drain()
    assert tasks["notified"].receipt == Receipt(total=5.0)


# --- aliases -----------------------------------------------------------------


async def test_a_field_with_an_alias_is_bound_under_its_alias(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    sig = await local.sign(tasks["aliased"], **{"orderId": 7})
    assert await sig.aio_run() == {"order_id": 7}

    with pytest.raises(InputValidationError) as caught:
        await local.sign(tasks["aliased"], order_id=7)
    assert caught.value.errors[0]["loc"] == ["order_id"]
    assert "its alias 'orderId'" in str(caught.value)

    with pytest.raises(InputValidationError, match="'orderId'"):
        await local.sign(tasks["aliased"], **{"orderId": "seven"})


async def test_a_model_populated_by_name_takes_the_name_too(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    by_name = await local.sign(tasks["aliased_by_name"], order_id=3)
    by_alias = await local.sign(tasks["aliased_by_name"], **{"orderId": 4})
    assert await by_name.aio_run() == {"order_id": 3}
    assert await by_alias.aio_run() == {"order_id": 4}


# --- other input types -------------------------------------------------------


@pytest.mark.parametrize("task", ["data", "typed"])
async def test_dataclass_and_typed_dict_inputs_are_checked_field_by_field(
    local: HatchetMageflow, tasks: dict[str, Any], task: str
) -> None:
    sig = await local.sign(task, value="5")  # lax, as the run will validate it
    assert await sig.aio_run({"note": "n"}) == {"value": 5}

    with pytest.raises(InputValidationError, match="'nosuch'"):
        await local.sign(task, nosuch=1)
    with pytest.raises(InputValidationError, match="field 'value'"):
        await local.sign(task, value="five")


async def test_a_dict_input_takes_any_key_and_checks_its_values(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    sig = await local.sign(tasks["counts"], a=1, b=2)
    assert await sig.aio_run({"c": 3}) == {"sum": 6}

    with pytest.raises(InputValidationError, match="field 'b'") as caught:
        await local.sign(tasks["counts"], a=1, b="two")
    assert caught.value.errors[0]["loc"] == ["b"]

    sig = await local.sign(tasks["anything"], a="x", b=[1])
    assert await sig.aio_run() == {"keys": 2}


# --- tasks this process does not declare -------------------------------------


async def test_a_task_this_process_does_not_declare_is_not_checked(
    local: HatchetMageflow, redis_url: str
) -> None:
    remote = mageflow.Mageflow(offline_hatchet(), redis_client=redis_url)
    try:
        sig = await remote.sign("declared-elsewhere", nosuch=1, quantity="lots")
        loaded = await remote.load_signature(sig.id)
    finally:
        await remote.redis.aclose()
    assert loaded is not None
    assert loaded.kwargs == {"nosuch": 1, "quantity": "lots"}


async def test_a_task_object_of_another_client_is_checked_by_its_model(
    local: HatchetMageflow, redis_url: str
) -> None:
    other = mageflow.Mageflow(offline_hatchet(), redis_client=redis_url)

    @other.task(name="other-price")
    async def other_price(msg: Order) -> Receipt:
        return Receipt(total=msg.quantity)

    try:
        with pytest.raises(InputValidationError, match="'nosuch'"):
            await local.sign(other_price, nosuch=1)
    finally:
        await other.redis.aclose()


# --- swarms and chains -------------------------------------------------------


async def test_swarm_items_made_from_refs_are_checked_with_the_swarms_kwargs(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    with pytest.raises(InputValidationError, match="field 'quantity'"):
        await local.swarm([tasks["price"], "price"], quantity="lots")

    swarm = await local.swarm([tasks["price"]], quantity=2)
    assert await size_of(local, swarm.id) == 1
    with pytest.raises(InputValidationError, match="'quantity' is not a field"):
        await swarm.add(tasks["notify"])  # notify has no field 'quantity'
    assert await size_of(local, swarm.id) == 1


async def test_chain_steps_signed_with_bad_kwargs_never_reach_the_chain(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    with pytest.raises(InputValidationError, match="field 'quantity'"):
        await local.chain(
            [await local.sign("price", quantity="lots"), "notify"]  # refused here
        )


async def test_a_chains_kwargs_are_checked_against_each_step_made_from_a_ref(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    with pytest.raises(InputValidationError, match="quantity"):
        await local.chain([tasks["price"], tasks["price"]], quantity="lots")
    assert await local.redis.keys(keys.SIGNATURE_MATCH) == []


async def test_a_chain_kwarg_no_step_reads_is_refused(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    with pytest.raises(InputValidationError, match="no step's input reads"):
        await local.chain([tasks["price"], tasks["price"]], nosuch=1)
    assert await local.redis.keys(keys.SIGNATURE_MATCH) == []


async def test_a_refused_swarm_item_leaves_no_swarm_behind(
    local: HatchetMageflow, tasks: dict[str, Any]
) -> None:
    with pytest.raises(InputValidationError):
        await local.swarm([tasks["price"]], quantity="lots")
    assert await local.redis.keys("mageflow:*") == []


# --- cost --------------------------------------------------------------------


async def test_a_tasks_check_is_built_once_not_per_signature(
    local: HatchetMageflow, tasks: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    original = bound_module.check_for

    def counting(standalone: Any) -> Any:
        built.append(standalone.name)
        return original(standalone)

    monkeypatch.setattr(bound_module, "check_for", counting)

    swarm = await local.swarm([tasks["price"]] * 50, quantity=2)
    for n in range(1, 20):
        await local.sign(tasks["price"], quantity=n)
    with pytest.raises(InputValidationError):
        await local.sign(tasks["price"], quantity="lots")

    assert await size_of(local, swarm.id) == 50
    assert built == ["price"]
