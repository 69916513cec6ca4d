"""A chain of three steps, each receiving the previous step's result.

Each step's input model marks one field ``ReturnValue[...]``: that is where
the previous step's result lands (validated back into its model), next to the
step's own bound kwargs. The chain's success callback gets the last result.
Which field receives what is declared by type once, when the step is signed.

    python examples/chain.py
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

import mageflow
from mageflow import ReturnValue
from mageflow.dispatch.local import LocalDispatcher
from mageflow.embedded import ensure_redis


class Order(BaseModel):
    item: str
    quantity: int


class Priced(BaseModel):
    item: str
    total: float


class Taxed(BaseModel):
    priced: ReturnValue[Priced]  # step 1's result
    rate: float  # bound when the step is signed


class Invoice(BaseModel):
    text: str


class Formatted(BaseModel):
    taxed: ReturnValue[Priced]  # step 2's result


class Sent(BaseModel):
    invoice: ReturnValue[Invoice]  # the chain's last result


async def main() -> None:
    async with ensure_redis() as url:
        client = mageflow.Mageflow(redis_client=url, backend="local")
        runner = client.dispatch_backend
        assert isinstance(runner, LocalDispatcher)

        @client.task(name="price")
        async def price(msg: Order) -> Priced:
            return Priced(item=msg.item, total=2.5 * msg.quantity)

        @client.task(name="add-tax")
        async def add_tax(msg: Taxed) -> Priced:
            print(f"step 2 got {msg.priced!r}")
            total = round(msg.priced.total * (1 + msg.rate), 2)
            return Priced(item=msg.priced.item, total=total)

        @client.task(name="format-invoice")
        async def format_invoice(msg: Formatted) -> Invoice:
            print(f"step 3 got {msg.taxed!r}")
            return Invoice(text=f"{msg.taxed.item}: {msg.taxed.total:.2f} EUR")

        @client.task(name="send-invoice")
        async def send_invoice(msg: Sent) -> None:
            print(f"success callback got {msg.invoice!r}")

        chain = await client.chain(
            [price, await client.sign(add_tax, rate=0.2), format_invoice],
            name="invoice-order",
            success=send_invoice,
        )
        await chain.aio_run_no_wait(Order(item="tea", quantity=4))
        await runner.drain()  # waits for every step and callback
        final = await client.load_signature(chain.id)
        print(f"chain {chain.task_name}: {final and final.status.value}")
        await client.redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
