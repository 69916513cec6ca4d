"""MUST FAIL type-checking, with exactly one error: the line marked below.

``with_ctx`` returns the function with its type unchanged, so the task keeps
its ``Standalone[In, Out]`` type, and mypy still rejects the wrong input
model. ``tests/test_typing.py`` runs mypy on this file and checks the error;
the normal mypy run excludes ``typings/fail/``.
"""

from __future__ import annotations

from hatchet_sdk import Context
from pydantic import BaseModel

import mageflow
from mageflow.testing import offline_hatchet

client = mageflow.Mageflow(offline_hatchet())


class In(BaseModel):
    value: int


class Other(BaseModel):
    name: str


class Out(BaseModel):
    doubled: int


@client.task(name="double")
@client.with_ctx
async def double(msg: In, ctx: Context) -> Out:
    return Out(doubled=msg.value * 2)


async def run_with_the_wrong_input() -> None:
    await double.aio_run(Other(name="x"))  # EXPECTED ERROR
