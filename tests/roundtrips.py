"""Counting the round trips mageflow makes to Redis, on the wire.

A test that asks for ``round_trips`` gets its ``local`` client connected
through a loopback proxy (:class:`faults.RedisProxy`) that reads the RESP
commands each client sends: nothing in redis-py is patched, so the count
holds for every redis-py release mageflow supports, and the server behind
the proxy is the real one. Every command mageflow sends on these paths is a
script call or a single read, one round trip each; a pipeline would count
one per command, so the count is never below the truth. Left out: the
handshake a connection sends when it opens (:data:`HANDSHAKE`): how many
connections a run opens depends on timing, what it sends does not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from faults import RedisProxy

HANDSHAKE = frozenset(
    {
        "HELLO",
        "AUTH",
        "SELECT",
        "CLIENT SETINFO",
        "CLIENT SETNAME",
        "CLIENT MAINT_NOTIFICATIONS",  # redis-py 7 asks for these on connect
    }
)


class _Commands:
    """Splits one connection's byte stream into RESP commands (arrays of
    bulk strings, which is all a client sends), incrementally: a command of
    many megabytes costs its length once."""

    def __init__(self, seen: Counter[str]) -> None:
        self._seen = seen
        self._buffer = bytearray()
        self._args_left = 0
        self._bulk = -1  # the length of the bulk string being read, or -1
        self._args: list[str] = []

    def feed(self, data: bytes) -> None:
        buf = self._buffer
        buf += data
        at = 0
        while True:
            if self._bulk >= 0:
                if len(buf) - at < self._bulk + 2:
                    break
                if len(self._args) < 2:  # the name and subcommand suffice
                    arg = buf[at : at + self._bulk]
                    self._args.append(arg.decode(errors="replace"))
                at += self._bulk + 2
                self._bulk = -1
                self._args_left -= 1
                if self._args_left == 0:
                    self._count()
                continue
            end = buf.find(b"\r\n", at)
            if end < 0:
                break
            kind, size = buf[at : at + 1], int(buf[at + 1 : end])
            at = end + 2
            if kind == b"*":
                self._args, self._args_left = [], size
            elif kind == b"$":
                self._bulk = size
            else:
                raise AssertionError(f"not a RESP command: {bytes(kind)!r}")
        del buf[:at]

    def _count(self) -> None:
        name = self._args[0].upper() if self._args else ""
        if name in ("CLIENT", "SCRIPT", "CONFIG") and len(self._args) > 1:
            name = f"{name} {self._args[1].upper()}"
        self._seen[name] += 1


class RoundTrips:
    """Commands sent through one proxy since the last :meth:`reset`."""

    def __init__(self, redis_url: str) -> None:
        self.seen: Counter[str] = Counter()
        self.proxy = RedisProxy(redis_url, tap=self._tap)

    def _tap(self, _client: Any) -> Callable[[bytes], None]:
        return _Commands(self.seen).feed

    def reset(self) -> None:
        self.seen.clear()

    @property
    def commands(self) -> Counter[str]:
        """Per command name, how many were sent (handshakes left out)."""
        return Counter({k: v for k, v in self.seen.items() if k not in HANDSHAKE})

    @property
    def count(self) -> int:
        return sum(self.commands.values())
