"""An annotation naming something that exists nowhere, ever."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

if TYPE_CHECKING:
    from hatchet_sdk.runnables.workflow import Standalone

    from mageflow import HatchetMageflow


class Order(BaseModel):
    item: str


def build(client: HatchetMageflow) -> dict[str, Standalone]:
    @client.task(name="never-defined")
    async def never(msg: Order, helper: NeverDefinedAnywhere) -> None:  # noqa: F821
        raise AssertionError("the body must not run")

    @client.task(name="never-defined-with-default")
    async def never_with_default(
        msg: Order,
        helper: NeverDefinedAnywhere | None = None,  # noqa: F821
    ) -> None:
        raise AssertionError("the body must not run")

    return {"never": never, "never_with_default": never_with_default}
