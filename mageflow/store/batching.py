"""Script calls asked for at the same moment go out together, in one pipeline.

A process runs many signatures at once (a swarm at a cap of 200 has 200 in
flight), and each of their steps is one script call. For redis-py, each call
costs more than the script costs the server: a pool checkout, packing, a
socket write, a read. So calls queued in the same event-loop iteration are
sent as one pipeline, and each caller gets its own reply or its own error.
The pipeline is not a transaction: each script is still its own atomic step,
run in the order it was asked for, exactly as if sent one by one; only the
client's cost is shared. A call alone in its iteration goes out by itself.
On a Redis Cluster (whose client pipelines no scripts) every call goes by
itself, concurrently.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from mageflow.store.connection import RedisClient


@dataclasses.dataclass(frozen=True)
class _Call:
    script: AsyncScript
    keys: Sequence[str]
    args: Sequence[Any]
    future: asyncio.Future[Any]


class ScriptBatcher:
    """Coalesces the script calls of one Redis client."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._pending: list[_Call] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def call(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        """Run ``script``; its reply, or the error it raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append(_Call(script, keys, args, future))
        if len(self._pending) == 1:
            # After every call this iteration makes is queued.
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending.add(task)  # held until done: the loop keeps weak refs
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Call]) -> None:
        if len(batch) == 1:
            await _one(batch[0])
            return
        if isinstance(self._redis, RedisCluster):
            # redis-py's cluster pipelines refuse scripts: on a cluster each
            # call goes by itself, all at once (the client keeps a pool per
            # node, so they still overlap on the wire).
            await asyncio.gather(*(_one(call) for call in batch))
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for call in batch:
                pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
            replies = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # the connection: every caller hears it
            for call in batch:
                _settle(call.future, error=exc)
            if not isinstance(exc, Exception):
                raise
            return
        for call, reply in zip(batch, replies, strict=True):
            if isinstance(reply, NoScriptError):
                # The server lost its scripts (restarted, flushed): this one
                # goes alone, which loads it again.
                await _one(call)
            elif isinstance(reply, Exception):
                _settle(call.future, error=reply)
            else:
                _settle(call.future, reply)


async def _one(call: _Call) -> None:
    try:
        reply = await call.script(keys=list(call.keys), args=list(call.args))
    except BaseException as exc:
        _settle(call.future, error=exc)
        if not isinstance(exc, Exception):
            raise
        return
    _settle(call.future, reply)


def _settle(
    future: asyncio.Future[Any], reply: Any = None, error: BaseException | None = None
) -> None:
    if future.done():  # its caller was cancelled meanwhile
        return
    if error is None:
        future.set_result(reply)
    elif isinstance(error, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(error)
