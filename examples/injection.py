"""A tour of type-driven injection: each task asks for what it needs by type.

Runs every task in-process through Hatchet's own ``aio_mock_run`` (a real
``Context`` is built; no engine is contacted) and prints, for each, what
mageflow planned for its parameters and what the run returned.

    python examples/injection.py
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from hatchet_sdk import Context, Depends, DurableContext
from pydantic import BaseModel

import mageflow
from mageflow import TaskSignature
from mageflow.testing import offline_hatchet

hatchet = mageflow.Mageflow(offline_hatchet())


class Order(BaseModel):
    item: str
    quantity: int


class Receipt(BaseModel):
    total: float
    note: str = ""


class PriceList:
    def __init__(self) -> None:
        self.prices = {"tea": 2.5, "cake": 4.0}
        self.open = True


@asynccontextmanager
async def price_list(msg: Order, ctx: Context) -> AsyncIterator[PriceList]:
    """A dependency that is a context manager: entered before, exited after."""
    prices = PriceList()
    try:
        yield prices
    finally:
        prices.open = False  # closed after the task, like a DB session


# 1. Nothing but the message: input_validator is inferred from `msg: Order`.
@hatchet.task(name="plain")
async def plain(msg: Order) -> Receipt:
    return Receipt(total=msg.quantity * 2.5)


# 2. Ask for the context by annotating a parameter with it.
@hatchet.task(name="annotated-context")
async def annotated_context(msg: Order, ctx: Context) -> Receipt:
    return Receipt(total=0, note=f"attempt {ctx.attempt_number} of {ctx.max_attempts}")


# 3. Hatchet style, unannotated: @with_ctx hands the second parameter the context.
@hatchet.task(name="with-ctx")
@hatchet.with_ctx
async def with_ctx(msg: Order, ctx) -> Receipt:  # type: ignore[no-untyped-def]
    return Receipt(total=0, note=f"context is a {type(ctx).__name__}")


# 4. The task's own signature; None here because this run did not come from one.
@hatchet.task(name="with-signature")
@hatchet.with_signature
async def with_signature(msg: Order, signature: TaskSignature | None) -> Receipt:
    return Receipt(total=0, note=f"signature: {signature}")


# 5. Hatchet's Depends keeps working, even with `from __future__ import annotations`.
@hatchet.task(name="depends", retries=2)
async def depends(
    msg: Order, prices: Annotated[PriceList, Depends(price_list)]
) -> Receipt:
    assert prices.open
    return Receipt(total=prices.prices[msg.item] * msg.quantity, note="priced")


# 6. A synchronous task runs in a worker thread, never on the event loop.
@hatchet.task(name="sync")
def sync(msg: Order) -> Receipt:
    return Receipt(total=msg.quantity, note="computed in a worker thread")


# 7. Durable tasks may ask for the DurableContext.
@hatchet.durable_task(name="durable")
async def durable(msg: Order, ctx: DurableContext) -> Receipt:
    return Receipt(total=0, note=f"durable context: {type(ctx).__name__}")


async def main() -> None:
    order = Order(item="tea", quantity=3)
    for task in (
        plain,
        annotated_context,
        with_ctx,
        with_signature,
        depends,
        sync,
        durable,
    ):
        print(hatchet.explain(task))
        result = await task.aio_mock_run(order)
        print(f"  => {result!r}\n")


if __name__ == "__main__":
    asyncio.run(main())
