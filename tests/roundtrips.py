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
    bulk strings, which is all a client sends)."""

    def __init__(self, seen: Counter[str]) -> None:
        self._seen = seen
        self._buffer = b""

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while (parsed := self._one()) is not None:
            args, self._buffer = parsed
            name = args[0].upper() if args else ""
            if name in ("CLIENT", "SCRIPT", "CONFIG") and len(args) > 1:
                name = f"{name} {args[1].upper()}"
            self._seen[name] += 1

    def _one(self) -> tuple[list[str], bytes] | None:
        buf = self._buffer
        end = buf.find(b"\r\n")
        if end < 0:
            return None
        if buf[:1] != b"*":
            raise AssertionError(f"not a RESP command: {buf[:40]!r}")
        count, at, args = int(buf[1:end]), end + 2, []
        for _ in range(count):
            end = buf.find(b"\r\n", at)
            if end < 0:
                return None
            size = int(buf[at + 1 : end])
            start = end + 2
            if len(buf) < start + size + 2:
                return None
            if len(args) < 2:  # only the name (and subcommand) are needed
                args.append(buf[start : start + size].decode(errors="replace"))
            at = start + size + 2
        return args, buf[at:]


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
