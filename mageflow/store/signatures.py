"""``SignatureStore``: every Redis access for signatures goes through here.

Each method is one round trip: a pipeline for writes of new records, and one
Lua script (see :mod:`mageflow.store.scripts`) for each state transition, so a
transition is always checked and applied atomically on the server. Replies
come back as the typed values of :mod:`mageflow.store.replies`; records are
read and written by :mod:`mageflow.store.codec`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, cast

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from mageflow.errors import (
    CorruptSignatureError,
    InvalidTransitionError,
    SignatureNotFoundError,
)
from mageflow.signature import SignatureStatus, TaskSignature
from mageflow.store import keys, scripts
from mageflow.store.codec import decode, decode_target, fields_of, text
from mageflow.store.connection import RedisConnection
from mageflow.store.replies import (
    Activation,
    ActivationVerdict,
    CallbackTarget,
    Finish,
    FinishVerdict,
    ResumeVerdict,
    Resumption,
    SwarmStep,
    SwarmVerdict,
    Transition,
)
from mageflow.ttl import TTLConfig


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class SignatureStore:
    """Reads and moves signatures, one round trip per operation."""

    def __init__(self, connection: RedisConnection, ttl: TTLConfig) -> None:
        self._connection = connection
        self.ttl = ttl
        self._scripts: dict[str, AsyncScript] = {}
        self._scripts_for: Redis | None = None

    @property
    def connection(self) -> RedisConnection:
        return self._connection

    @property
    def redis(self) -> Redis:
        return self._connection.client

    def _script(self, name: str) -> AsyncScript:
        redis = self.redis
        if self._scripts_for is not redis:
            self._scripts = {}
            self._scripts_for = redis
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = redis.register_script(getattr(scripts, name))
        return script

    async def _call(self, name: str, keys_: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await self._script(name)(keys=list(keys_), args=list(args))
        except ResponseError as exc:
            if "WRONGTYPE" in str(exc):
                raise CorruptSignatureError(
                    f"a key of {', '.join(keys_)} holds a value of the wrong "
                    "type for mageflow; it was not touched. Remove the key, or "
                    "use a Redis database that only mageflow writes to.",
                    key=keys_[0] if keys_ else None,
                ) from exc
            raise

    # --- records ------------------------------------------------------------

    async def create(self, records: Iterable[tuple[str, Mapping[str, str]]]) -> None:
        """Store new records (id, fields) with the active TTL, in one round trip."""
        pipe = self.redis.pipeline(transaction=True)
        for signature_id, fields in records:
            key = keys.signature(signature_id)
            pipe.hset(key, mapping=cast("Mapping[Any, Any]", fields))
            pipe.pexpire(key, self.ttl.active_ms)
        await pipe.execute()

    async def load(self, signature_id: str) -> TaskSignature | None:
        """The signature, or ``None`` if there is none under that id."""
        record = await self.load_record(signature_id)
        return None if record is None else decode(signature_id, record)

    async def load_record(self, signature_id: str) -> dict[str, str] | None:
        """The raw hash fields of a signature, or ``None``; not validated."""
        key = keys.signature(signature_id)
        try:
            raw = await self.redis.hgetall(key)
        except ResponseError as exc:
            if "WRONGTYPE" in str(exc):
                raise CorruptSignatureError(
                    f"{key} is not a hash, so it is not a mageflow signature. "
                    "Remove the key, or use a Redis database that only "
                    "mageflow writes to.",
                    key=key,
                    signature_id=signature_id,
                ) from exc
            raise
        if not raw:
            return None
        return {text(k): text(v) for k, v in raw.items()}

    # --- the run path ---------------------------------------------------------

    async def activate(self, signature_id: str, lease: str, message: str) -> Activation:
        """Claim the signature for one delivery (see :data:`scripts.ACTIVATE`)."""
        key = keys.signature(signature_id)
        word, payload = await self._call("ACTIVATE", [key], [lease, message, _now()])
        word = text(word)
        if word == "missing":
            raise SignatureNotFoundError(
                f"signature {signature_id} does not exist: it was removed or it "
                "expired, so this run did nothing. Raise TTLConfig(active=...) "
                "if workflows outlive it.",
                signature_id=signature_id,
            )
        if word == "corrupt":
            raise CorruptSignatureError(
                f"{key} holds {text(payload)}, not a mageflow signature; the "
                "run did nothing. Remove the key.",
                key=key,
                signature_id=signature_id,
            )
        verdict = ActivationVerdict(word)
        if verdict in (ActivationVerdict.RUN, ActivationVerdict.FINISHED):
            record = fields_of(payload)
            return Activation(
                verdict, record["status"], decode(signature_id, record), record
            )
        return Activation(verdict, text(payload))

    async def finish(
        self,
        signature_id: str,
        lease: str,
        status: SignatureStatus,
        outcome: str,
        callbacks: Sequence[str],
        in_container: bool = False,
    ) -> Finish:
        """Record the outcome and read the callbacks to fire, atomically."""
        word, payload = await self._call(
            "FINISH",
            [keys.signature(signature_id), *map(keys.signature, callbacks)],
            [
                lease,
                status.value,
                outcome,
                self.ttl.done_ms,
                _now(),
                "1" if in_container else "0",
            ],
        )
        verdict = FinishVerdict(text(word))
        if verdict is not FinishVerdict.FIRE:
            return Finish(verdict)
        return Finish(verdict, self._targets(callbacks, payload))

    def _targets(
        self, callbacks: Sequence[str], replies: Sequence[Any]
    ) -> tuple[CallbackTarget, ...]:
        found = (
            decode_target(cid, reply)
            for cid, reply in zip(callbacks, replies, strict=True)
        )
        return tuple(t for t in found if t is not None)

    async def targets(self, callbacks: Sequence[str]) -> tuple[CallbackTarget, ...]:
        """Read signatures to start (callbacks, steps), in one round trip."""
        if not callbacks:
            return ()
        replies = await self._call("TARGETS", list(map(keys.signature, callbacks)), [])
        return self._targets(callbacks, replies)

    async def mark_sent(self, signature_id: str) -> None:
        """Record that the outcome's callbacks were dispatched."""
        await self._call("MARK_SENT", [keys.signature(signature_id)], [])

    # --- lifecycle ------------------------------------------------------------

    async def pause(self, signature_id: str) -> Transition:
        """Move to ``suspended``."""
        return await self._transition("PAUSE", "pause", signature_id, [])

    async def stop(
        self,
        signature_id: str,
        final: SignatureStatus = SignatureStatus.CANCELED,
    ) -> Transition:
        """Move to ``canceled`` (or ``interrupted``)."""
        return await self._transition(
            "STOP", "stop", signature_id, [self.ttl.done_ms, final.value]
        )

    async def _transition(
        self, script: str, action: str, signature_id: str, args: Sequence[Any]
    ) -> Transition:
        verdict, status, kind = (
            text(x)
            for x in await self._call(script, [keys.signature(signature_id)], args)
        )
        if verdict == "missing":
            raise SignatureNotFoundError(
                f"cannot {action} signature {signature_id}: it does not exist "
                "(removed, expired, or never created).",
                signature_id=signature_id,
            )
        if verdict == "illegal":
            raise InvalidTransitionError(
                f"cannot {action} signature {signature_id}: it is {status}. "
                f"{_ALLOWED[action]} See docs/lifecycle.md.",
                signature_id=signature_id,
                status=status,
                action=action,
            )
        return Transition(SignatureStatus(status), kind)

    async def resume(self, signature_id: str) -> Resumption:
        """Leave ``suspended``; say what the caller must now dispatch."""
        reply = await self._call(
            "RESUME", [keys.signature(signature_id)], [self.ttl.done_ms]
        )
        word, payload, kind = text(reply[0]), reply[1], text(reply[2])
        if word == "missing":
            raise SignatureNotFoundError(
                f"cannot resume signature {signature_id}: it does not exist.",
                signature_id=signature_id,
            )
        if word == "illegal":
            raise InvalidTransitionError(
                f"cannot resume signature {signature_id}: it is {text(payload)}, "
                f"not suspended. {_ALLOWED['resume']} See docs/lifecycle.md.",
                signature_id=signature_id,
                status=text(payload),
                action="resume",
            )
        verdict = ResumeVerdict(word)
        if verdict is ResumeVerdict.FIRE:
            return Resumption(verdict, kind, record=fields_of(payload))
        if verdict is ResumeVerdict.REDISPATCH:
            return Resumption(verdict, kind, message=json.loads(text(payload)))
        return Resumption(verdict, kind)

    async def remove(self, signature_id: str) -> int:
        """Delete the signature, its callbacks and children; count the keys."""
        removed = await self._call("REMOVE", [], [f"{keys.PREFIX}:", signature_id])
        return int(removed)

    # --- swarms ---------------------------------------------------------------

    async def _swarm(
        self, script: str, keys_: Sequence[str], args: Sequence[Any]
    ) -> SwarmStep:
        word, ids, input_json, described = await self._call(script, keys_, args)
        word = text(word)
        if word == "missing":
            raise SignatureNotFoundError(
                f"swarm {keys_[0]} does not exist (removed or expired)."
            )
        verdict = SwarmVerdict(word)
        id_list = tuple(text(i) for i in ids)
        if verdict in (SwarmVerdict.FULL, SwarmVerdict.CLOSED, SwarmVerdict.FAIL):
            return SwarmStep(verdict, id_list, input=text(input_json))
        started = self._targets(id_list, described)
        return SwarmStep(verdict, id_list, started, json.loads(text(input_json)))

    async def swarm_start(self, swarm_id: str, message: str, lease: str) -> SwarmStep:
        """Activate (or refill) a swarm: start what its free slots allow."""
        return await self._swarm(
            "SWARM_START",
            [
                keys.signature(swarm_id),
                keys.swarm_queue(swarm_id),
                keys.swarm_running(swarm_id),
            ],
            [message, lease, _now()],
        )

    async def swarm_add(self, swarm_id: str, item_ids: Sequence[str]) -> SwarmStep:
        """Append items (already stored) in order; start those that fit."""
        return await self._swarm(
            "SWARM_ADD",
            [
                keys.signature(swarm_id),
                keys.swarm_items(swarm_id),
                keys.swarm_queue(swarm_id),
                keys.swarm_running(swarm_id),
                *map(keys.signature, item_ids),
            ],
            [self.ttl.active_ms, *item_ids],
        )

    async def swarm_item_done(
        self, swarm_id: str, item_id: str, status: SignatureStatus, outcome: str
    ) -> SwarmStep:
        """Record an item's outcome at its position; free its slot; refill."""
        return await self._swarm(
            "SWARM_ITEM_DONE",
            [
                keys.signature(swarm_id),
                keys.swarm_queue(swarm_id),
                keys.swarm_running(swarm_id),
                keys.swarm_results(swarm_id),
                keys.swarm_next(swarm_id),
                keys.signature(item_id),
            ],
            [item_id, status.value, outcome, self.ttl.active_ms],
        )

    async def swarm_close(self, swarm_id: str) -> SwarmStep:
        return await self._swarm("SWARM_CLOSE", [keys.signature(swarm_id)], [])

    async def swarm_results(self, swarm_id: str, size: int) -> list[Any]:
        """Every item's outcome, in the order the items were added."""
        if size == 0:
            return []
        raw = await self.redis.hmget(
            keys.swarm_results(swarm_id), [str(i) for i in range(size)]
        )
        return [None if x is None else json.loads(text(x)) for x in raw]

    async def swarm_items(self, swarm_id: str) -> list[str]:
        raw = await self.redis.lrange(keys.swarm_items(swarm_id), 0, -1)
        return [text(x) for x in raw]


_ALLOWED = {
    "pause": "Only pending or active signatures can be paused.",
    "resume": "Only suspended (paused) signatures can be resumed.",
    "stop": "Only pending, active or suspended signatures can be stopped.",
}
