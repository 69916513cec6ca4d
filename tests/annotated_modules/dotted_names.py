"""Dotted names whose module is imported for type checking only.

``hatchet_sdk`` and ``mageflow`` are never imported here at run time, so
``hatchet_sdk.Context`` cannot be evaluated; mageflow recognises it by its
final name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

from pydantic import BaseModel

if TYPE_CHECKING:
    import hatchet_sdk
    import hatchet_sdk.runnables.workflow

    import mageflow


class Order(BaseModel):
    item: str


class Seen(BaseModel):
    context: str
    signature: str


def build(
    client: mageflow.HatchetMageflow,
) -> dict[str, hatchet_sdk.runnables.workflow.Standalone]:
    @client.task(name="dotted-plain")
    async def plain(msg: Order, ctx: hatchet_sdk.Context) -> Seen:
        return Seen(context=type(ctx).__name__, signature="")

    @client.task(name="dotted-optional")
    async def optional(
        msg: Order,
        ctx: Optional[hatchet_sdk.Context] = None,  # noqa: UP045
    ) -> Seen:
        return Seen(context=type(ctx).__name__, signature="")

    @client.task(name="dotted-union")
    async def union(
        msg: Order,
        ctx: hatchet_sdk.Context | None,
        sig: mageflow.TaskSignature | None,
    ) -> Seen:
        return Seen(context=type(ctx).__name__, signature=repr(sig))

    @client.durable_task(name="dotted-durable")
    async def durable(msg: Order, ctx: hatchet_sdk.DurableContext) -> Seen:
        return Seen(context=type(ctx).__name__, signature="")

    @client.task(name="dotted-annotated")
    async def annotated(msg: Order, ctx: Annotated[hatchet_sdk.Context, "run"]) -> Seen:
        return Seen(context=type(ctx).__name__, signature="")

    return {
        "plain": plain,
        "optional": optional,
        "union": union,
        "durable": durable,
        "annotated": annotated,
    }


def build_not_durable(
    client: mageflow.HatchetMageflow,
) -> dict[str, hatchet_sdk.runnables.workflow.Standalone]:
    """A plain task asking for a DurableContext: rejected even by dotted name."""

    @client.task(name="dotted-not-durable")
    async def not_durable(msg: Order, ctx: hatchet_sdk.DurableContext) -> None:
        return None

    return {"not_durable": not_durable}
