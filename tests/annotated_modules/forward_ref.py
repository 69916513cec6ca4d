"""Annotations naming classes that are defined further down this module.

When ``build`` runs after the import, every name exists. The tests also build
the tasks while those names are still missing (as a module-level task
decorator would see them, halfway through the import), to check that the plan
is deferred to the first run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from hatchet_sdk import Context, Depends
from pydantic import BaseModel

if TYPE_CHECKING:
    from hatchet_sdk.runnables.workflow import Standalone

    from mageflow import HatchetMageflow

LATE_NAMES = ("Database", "RunContext")
"""The classes below the tasks, which a mid-import build would not see yet."""


class Order(BaseModel):
    item: str


class Seen(BaseModel):
    context: str
    database: str


async def open_database(msg: Order, ctx: Context) -> Database:
    return Database(msg.item)


def build(client: HatchetMageflow) -> dict[str, Standalone]:
    @client.task(name="forward-depends")
    async def uses_database(
        msg: Order, db: Annotated[Database, Depends(open_database)]
    ) -> Seen:
        return Seen(context="", database=f"{type(db).__name__}({db.name})")

    @client.task(name="forward-context")
    async def uses_context(msg: Order, ctx: RunContext) -> Seen:
        return Seen(context=type(ctx).__name__, database="")

    return {"uses_database": uses_database, "uses_context": uses_context}


# --- defined after the tasks ------------------------------------------------


class Database:
    def __init__(self, name: str) -> None:
        self.name = name


class RunContext(Context):
    """A Context subclass: asking for it asks for the run context."""
