"""Counting the round trips mageflow makes to Redis, for cost assertions.

Counts every packed command redis-py sends (a pipeline is one), leaving out
the handshake it sends when it opens a connection: how many connections a
run opens depends on timing, what it sends does not.
"""

from __future__ import annotations

import contextvars
from typing import Any

import pytest
from redis.asyncio.connection import AbstractConnection

_CONNECTING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "connecting", default=False
)


class RoundTrips:
    def __init__(self) -> None:
        self.count = 0

    @classmethod
    def install(cls, monkeypatch: pytest.MonkeyPatch) -> RoundTrips:
        counter = cls()
        send = AbstractConnection.send_packed_command

        async def counted_send(
            self: Any, command: Any, check_health: bool = True
        ) -> None:
            if not _CONNECTING.get():
                counter.count += 1
            await send(self, command, check_health)

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counted_send)
        # redis-py 5 connects through on_connect, later releases through
        # on_connect_check_health: silence whichever runs.
        for name in ("on_connect", "on_connect_check_health"):
            if hasattr(AbstractConnection, name):
                monkeypatch.setattr(
                    AbstractConnection, name, _quiet(getattr(AbstractConnection, name))
                )
        return counter


def _quiet(connect: Any) -> Any:
    async def quiet(self: Any, *args: Any, **kwargs: Any) -> None:
        token = _CONNECTING.set(True)
        try:
            await connect(self, *args, **kwargs)
        finally:
            _CONNECTING.reset(token)

    return quiet
