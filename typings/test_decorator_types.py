"""``with_ctx``, ``with_signature`` and ``stagger_execution`` hand the function
back with its exact type, in any order, under ``@client.task`` too.

Checked by mypy (``files`` in pyproject.toml), never run. The callback
protocols below are compared exactly: a decorator that returned
``Callable[..., Any]`` or dropped a parameter name would fail here.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any, Protocol

from hatchet_sdk import Context
from hatchet_sdk.runnables.workflow import Standalone
from pydantic import BaseModel
from typing_extensions import assert_type

import mageflow
from mageflow import TaskSignature
from mageflow.testing import offline_hatchet

client = mageflow.Mageflow(offline_hatchet())


class In(BaseModel):
    value: int


class Out(BaseModel):
    doubled: int


class AsyncTaskFn(Protocol):
    def __call__(
        self, msg: In, ctx: Context, *, scale: int = ...
    ) -> Coroutine[Any, Any, Out]: ...


class SyncTaskFn(Protocol):
    def __call__(self, msg: In, signature: TaskSignature | None) -> Out: ...


# --- each decorator on its own ---------------------------------------------


@client.with_ctx
async def ctx_marked(msg: In, ctx: Context, *, scale: int = 2) -> Out:
    return Out(doubled=msg.value * scale)


assert_type(ctx_marked, AsyncTaskFn)


@client.with_signature
def signature_marked(msg: In, signature: TaskSignature | None) -> Out:
    return Out(doubled=msg.value)


assert_type(signature_marked, SyncTaskFn)


@client.stagger_execution(wait_delta=timedelta(seconds=5))
async def staggered(msg: In, ctx: Context, *, scale: int = 2) -> Out:
    return Out(doubled=msg.value * scale)


assert_type(staggered, AsyncTaskFn)

# The decorator factory itself: generic, so it fits any function.
mark = client.stagger_execution(timedelta(milliseconds=250))
assert_type(mark(signature_marked), SyncTaskFn)
assert_type(mark(ctx_marked), AsyncTaskFn)
client.stagger_execution(wait_delta=5)  # type: ignore[arg-type]


# --- stacked, in either order ----------------------------------------------


@client.with_ctx
@client.with_signature
@client.stagger_execution(wait_delta=timedelta(seconds=1))
async def stacked(msg: In, ctx: Context, *, scale: int = 2) -> Out:
    return Out(doubled=msg.value * scale)


assert_type(stacked, AsyncTaskFn)


@client.stagger_execution(wait_delta=timedelta(seconds=1))
@client.with_signature
@client.with_ctx
async def stacked_reversed(msg: In, ctx: Context, *, scale: int = 2) -> Out:
    return Out(doubled=msg.value * scale)


assert_type(stacked_reversed, AsyncTaskFn)


# Positional-only parameters let a plain Callable pin the type exactly too.
def positional(msg: In, ctx: Context, /) -> Out:
    return Out(doubled=msg.value)


assert_type(client.with_ctx(positional), Callable[[In, Context], Out])
assert_type(client.with_signature(positional), Callable[[In, Context], Out])


# --- under @client.task ----------------------------------------------------


@client.task(name="marked-task")
@client.with_ctx
@client.stagger_execution(wait_delta=timedelta(seconds=1))
async def marked_task(msg: In, ctx: Context) -> Out:
    return Out(doubled=msg.value * 2)


assert_type(marked_task, Standalone[In, Out])


@client.durable_task(name="marked-durable", input_validator=In)
@client.with_signature
async def marked_durable(msg: In, signature: TaskSignature | None) -> Out:
    return Out(doubled=msg.value * 2)


assert_type(marked_durable, Standalone[In, Out])
