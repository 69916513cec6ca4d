"""MUST FAIL type-checking, with exactly one error: the line marked below.

A task annotated ``-> Continue[Out]`` may only continue with work whose
result is an ``Out``: continuing with a task that returns ``Other`` is
rejected. ``tests/test_typing.py`` runs mypy on this file and checks the
error; the normal mypy run excludes ``typings/fail/``.
"""

from __future__ import annotations

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


@client.task(name="other")
async def other(msg: In) -> Other:
    return Other(name="x")


@client.task(name="wrong-continuation")
async def wrong(msg: In) -> mageflow.Continue[Out]:
    work = await client.sign(other)
    return mageflow.Continue(work)  # EXPECTED ERROR
