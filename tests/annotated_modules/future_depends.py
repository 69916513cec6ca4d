"""``Depends`` in a module where every annotation is a string.

Hatchet reads the raw annotation and would not find ``Depends`` inside a
string; mageflow resolves the strings first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Annotated

from hatchet_sdk import Context, Depends
from pydantic import BaseModel

if TYPE_CHECKING:
    from hatchet_sdk.runnables.workflow import Standalone

    from mageflow import HatchetMageflow


class Order(BaseModel):
    item: str
    quantity: int


class Receipt(BaseModel):
    total: float
    events: list[str]


class Session:
    def __init__(self, events: list[str]) -> None:
        self.events = events


def price_table(msg: Order, ctx: Context) -> dict[str, float]:
    return {"tea": 2.5, "cake": 4.0}


async def unit_price(
    msg: Order,
    ctx: Context,
    table: Annotated[dict[str, float], Depends(price_table)],
) -> float:
    return table[msg.item]


@asynccontextmanager
async def async_session(msg: Order, ctx: Context) -> AsyncIterator[Session]:
    session = Session([])
    session.events.append("async enter")
    try:
        yield session
    finally:
        session.events.append("async exit")


@contextmanager
def sync_session(msg: Order, ctx: Context) -> Iterator[Session]:
    session = Session([])
    session.events.append("sync enter")
    try:
        yield session
    finally:
        session.events.append("sync exit")


def build(client: HatchetMageflow) -> dict[str, Standalone]:
    @client.task(name="future-priced")
    async def priced(
        msg: Order,
        ctx: Context,
        price: Annotated[float, Depends(unit_price)],
    ) -> Receipt:
        return Receipt(total=price * msg.quantity, events=[type(ctx).__name__])

    @client.task(name="future-sessions")
    def sessions(
        msg: Order,
        first: Annotated[Session, Depends(async_session)],
        second: Annotated[Session, Depends(sync_session)],
    ):  # no return annotation: Hatchet cannot validate a Session
        # A sync task: runs in a worker thread, both sessions open meanwhile.
        first.events.append("task")
        second.events.append("task")
        return first, second

    return {"priced": priced, "sessions": sessions}
