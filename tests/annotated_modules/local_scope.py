"""Models and dependencies defined in the same function as the task.

Every annotation here is a string, and ``typing.get_type_hints`` evaluates a
string against the module's globals only; these names live in the factory
function's scope instead. mageflow reads them from the factory's frame while
the task is decorated.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Annotated

from hatchet_sdk import Context, Depends
from pydantic import BaseModel

if TYPE_CHECKING:
    from hatchet_sdk.runnables.workflow import Standalone

    from mageflow import HatchetMageflow


class Order(BaseModel):
    """The module's own ``Order``; ``build_shadowing`` defines another one."""

    item: str


def build(client: HatchetMageflow) -> dict[str, Standalone]:
    class Parcel(BaseModel):
        item: str
        weight: int

    class Label(BaseModel):
        text: str
        context: str

    async def shout(msg: Parcel, ctx: Context) -> str:
        return msg.item.upper()

    def grams(msg: Parcel, ctx: Context) -> int:
        return msg.weight * 1000

    async def describe(
        msg: Parcel,
        ctx: Context,
        loud: Annotated[str, Depends(shout)],
        weight: Annotated[int, Depends(grams)],
    ) -> str:
        return f"{loud} ({weight} g)"

    @client.task(name="local-label")
    async def label(
        msg: Parcel,
        text: Annotated[str, Depends(describe)],
        ctx: Context,
    ) -> Label:
        return Label(text=text, context=type(ctx).__name__)

    return {"label": label}


def build_nested(client: HatchetMageflow) -> dict[str, Standalone]:
    """The task two functions deep: a name from the outer one resolves too."""

    class Crate(BaseModel):
        count: int

    def inner() -> dict[str, Standalone]:
        class Tally(BaseModel):
            total: int

        def doubled(msg: Crate, ctx: Context) -> int:
            return msg.count * 2

        @client.task(name="local-nested")
        async def tally(msg: Crate, n: Annotated[int, Depends(doubled)]) -> Tally:
            return Tally(total=n)

        return {"tally": tally}

    return inner()


def build_shadowing(client: HatchetMageflow) -> dict[str, Standalone]:
    """A local ``Order`` shadows the module's, as it does in Python."""

    class Order(BaseModel):
        count: int

    @client.task(name="local-shadowing")
    async def shadowing(msg: Order) -> Order:
        return msg

    return {"shadowing": shadowing}


def build_late(client: HatchetMageflow) -> dict[str, Standalone]:
    """Names bound in the factory only after the decorator has run."""

    class Parcel(BaseModel):
        item: str

    class Seen(BaseModel):
        database: str

    async def open_database(msg: Parcel, ctx: Context) -> object:
        return Database(msg.item)

    @client.task(name="local-late-used")
    async def uses_database(
        msg: Parcel, db: Annotated[Database, Depends(open_database)]
    ) -> Seen:
        # The body uses Database, so the closure has it once it is bound.
        assert isinstance(db, Database)
        return Seen(database=f"{type(db).__name__}({db.name})")

    @client.task(name="local-late-annotation-only")
    async def annotation_only(
        msg: Parcel, db: Annotated[Ledger, Depends(open_database)]
    ) -> Seen:
        # Ledger appears in the annotation only: nothing holds on to it.
        return Seen(database="never")

    class Database:
        def __init__(self, name: str) -> None:
            self.name = name

    class Ledger:
        pass

    return {"uses_database": uses_database, "annotation_only": annotation_only}


class Bystander:
    """A local the task never mentions: it must not outlive the factory."""


def build_with_bystander(
    client: HatchetMageflow,
) -> tuple[dict[str, Standalone], weakref.ref[Bystander]]:
    class Parcel(BaseModel):
        item: str

    bystander = Bystander()

    @client.task(name="local-bystander")
    async def plain(msg: Parcel) -> Parcel:
        return msg

    return {"plain": plain}, weakref.ref(bystander)
