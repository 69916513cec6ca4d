"""The injectable types are imported for type checking only.

At run time the module has no ``Context``, ``DurableContext``,
``TaskSignature``, ``Annotated`` or ``Depends``; mageflow seeds them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

if TYPE_CHECKING:
    from typing import Annotated

    from hatchet_sdk import Context, Depends, DurableContext
    from hatchet_sdk.runnables.workflow import Standalone

    from mageflow import HatchetMageflow, TaskSignature


class Order(BaseModel):
    item: str


class Seen(BaseModel):
    context: str
    signature: str
    count: int = 0


async def item_length(msg: Order, ctx: Context) -> int:
    return len(msg.item)


def build(client: HatchetMageflow) -> dict[str, Standalone]:
    @client.task(name="tc-context-signature")
    async def context_signature(
        msg: Order, ctx: Context, sig: TaskSignature | None
    ) -> Seen:
        return Seen(context=type(ctx).__name__, signature=repr(sig))

    @client.task(name="tc-required-signature")
    async def required_signature(msg: Order, sig: TaskSignature) -> Seen:
        return Seen(context="", signature=repr(sig))

    @client.durable_task(name="tc-durable")
    async def durable(msg: Order, ctx: DurableContext) -> Seen:
        return Seen(context=type(ctx).__name__, signature="")

    @client.task(name="tc-depends")
    async def depends(
        msg: Order, count: Annotated[int, Depends(item_length)], ctx: Context
    ) -> Seen:
        return Seen(context=type(ctx).__name__, signature="", count=count)

    return {
        "context_signature": context_signature,
        "required_signature": required_signature,
        "durable": durable,
        "depends": depends,
    }
