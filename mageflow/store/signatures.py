"""``SignatureStore``: every Redis access for signatures goes through here.

Each method is one round trip: a pipeline for writes of new records, and one
Lua script (see :mod:`mageflow.store.scripts`) for each state transition, so a
transition is always checked and applied atomically on the server.

Records are flat hashes of strings and JSON. Reading one back validates it;
anything that is not a mageflow record raises :class:`CorruptSignatureError`
and is never executed.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, cast

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from mageflow.connection import RedisConnection
from mageflow.errors import (
    CorruptSignatureError,
    InvalidTransitionError,
    SignatureNotFoundError,
)
from mageflow.signature import (
    ChainSignature,
    SignatureStatus,
    SwarmSignature,
    TaskSignature,
)
from mageflow.store import keys, scripts
from mageflow.ttl import TTLConfig


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(flat: Sequence[Any]) -> dict[str, str]:
    """``HGETALL`` as returned inside a Lua reply: a flat key/value list."""
    items = [_text(x) for x in flat]
    return dict(zip(items[::2], items[1::2], strict=True))


def dumps(value: Any) -> str:
    """Compact JSON, the only format mageflow stores."""
    return json.dumps(value, separators=(",", ":"), default=str)


class Verdict(enum.Enum):
    """What a delivery of a signed run may do, decided by :data:`ACTIVATE`."""

    RUN = "run"
    DUPLICATE = "duplicate"
    SUSPENDED = "suspended"
    FINISHED = "finished"
    CANCELED = "canceled"


@dataclasses.dataclass(frozen=True)
class Activation:
    verdict: Verdict
    status: str
    signature: TaskSignature | None = None
    record: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class CallbackTarget:
    """A callback to dispatch: enough to trigger it without another read."""

    id: str
    kind: str
    task_name: str
    kwargs: dict[str, Any]
    return_field: str | None


@dataclasses.dataclass(frozen=True)
class Finish:
    verdict: str
    """``fire``, ``held``, ``dropped``, ``lost`` or ``missing``."""
    targets: tuple[CallbackTarget, ...] = ()


@dataclasses.dataclass(frozen=True)
class SwarmStep:
    """What a swarm script decided, and the items it started."""

    verdict: str
    ids: tuple[str, ...] = ()
    """The started items, or (``fail``) the items still running."""
    started: tuple[CallbackTarget, ...] = ()
    input: Any = None
    """The swarm's input message, for the started items."""


@dataclasses.dataclass(frozen=True)
class Transition:
    """A lifecycle step that happened: the status it left, and the kind."""

    previous: SignatureStatus
    kind: str


@dataclasses.dataclass(frozen=True)
class Resumption:
    verdict: str
    """``fire``, ``redispatch``, ``running`` or ``pending``."""
    kind: str
    message: Any = None
    record: Mapping[str, str] = dataclasses.field(default_factory=dict)


def kind_of(signature: TaskSignature) -> str:
    if isinstance(signature, ChainSignature):
        return "chain"
    if isinstance(signature, SwarmSignature):
        return "swarm"
    return "task"


def encode(signature: TaskSignature) -> dict[str, str]:
    """The hash fields of a new record."""
    fields = _encode_common(signature)
    if isinstance(signature, ChainSignature):
        fields["items"] = dumps(signature.steps)
    elif isinstance(signature, SwarmSignature):
        fields.update(
            maxc=str(signature.max_concurrency),
            stopn=str(signature.stop_after_n_failures or 0),
            maxt=str(signature.max_tasks or 0),
            closed="1" if signature.closed else "0",
            n="0",
            running="0",
            nfin="0",
            nfail="0",
        )
    return fields


def _encode_common(signature: TaskSignature) -> dict[str, str]:
    return {
        "v": keys.SCHEMA_VERSION,
        "kind": kind_of(signature),
        "task": signature.task_name,
        "kwargs": dumps(signature.kwargs),
        "ids": dumps(signature.task_identifiers),
        "ok": dumps(signature.success_callbacks),
        "err": dumps(signature.error_callbacks),
        "status": signature.status.value,
        "created": signature.created_at.isoformat(),
        "container": signature.container_id or "",
        "crole": signature.container_role or "",
        "rv": signature.return_field or "",
    }


def decode(signature_id: str, record: Mapping[str, str]) -> TaskSignature:
    """Validate a record into a ``TaskSignature``; refuse anything else."""
    if record.get("v") != keys.SCHEMA_VERSION:
        raise CorruptSignatureError(
            f"{keys.signature(signature_id)} is not a mageflow signature record "
            f"(schema field v={record.get('v')!r}, expected "
            f"{keys.SCHEMA_VERSION!r}). Remove the key, or point mageflow at a "
            "Redis database that only it writes to."
        )
    try:
        kind = record.get("kind", "task")
        extra: dict[str, Any] = {}
        cls: type[TaskSignature] = TaskSignature
        if kind == "chain":
            cls = ChainSignature
            extra["steps"] = json.loads(record["items"])
        elif kind == "swarm":
            cls = SwarmSignature
            extra.update(
                max_concurrency=int(record["maxc"]),
                stop_after_n_failures=int(record["stopn"]) or None,
                max_tasks=int(record["maxt"]) or None,
                closed=record["closed"] == "1",
                size=int(record["n"]),
                finished=int(record["nfin"]),
                failed=int(record["nfail"]),
            )
        elif kind != "task":
            raise ValueError(f"unknown kind {kind!r}")
        return cls(
            **extra,
            id=signature_id,
            task_name=record["task"],
            kwargs=json.loads(record["kwargs"]),
            task_identifiers=json.loads(record["ids"]),
            success_callbacks=json.loads(record["ok"]),
            error_callbacks=json.loads(record["err"]),
            status=SignatureStatus(record["status"]),
            created_at=datetime.fromisoformat(record["created"]),
            container_id=record.get("container") or None,
            container_role=cast(Any, record.get("crole") or None),
            return_field=record.get("rv") or None,
        )
    except (KeyError, ValueError, TypeError, ValidationError) as exc:
        raise CorruptSignatureError(
            f"{keys.signature(signature_id)} holds a damaged signature record "
            f"({type(exc).__name__}: {exc}). It was not run; remove the key "
            "with mageflow.remove() or by hand."
        ) from exc


def _target(signature_id: str, reply: Sequence[Any]) -> CallbackTarget | None:
    version, kind, task, kwargs, return_field = (
        None if x is None else _text(x) for x in reply
    )
    if version is None:
        return None  # removed or expired: nothing to call
    if version != keys.SCHEMA_VERSION or kind is None or kwargs is None:
        raise CorruptSignatureError(
            f"callback {keys.signature(signature_id)} is not a valid mageflow "
            "record; it was not dispatched."
        )
    try:
        bound = json.loads(kwargs)
    except ValueError as exc:
        raise CorruptSignatureError(
            f"callback {keys.signature(signature_id)} has damaged kwargs ({exc})."
        ) from exc
    return CallbackTarget(signature_id, kind, task or "", bound, return_field or None)


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
                    "use a Redis database that only mageflow writes to."
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
        try:
            raw = await self.redis.hgetall(keys.signature(signature_id))
        except ResponseError as exc:
            if "WRONGTYPE" in str(exc):
                raise CorruptSignatureError(
                    f"{keys.signature(signature_id)} is not a hash, so it is not "
                    "a mageflow signature. Remove the key, or use a Redis "
                    "database that only mageflow writes to."
                ) from exc
            raise
        if not raw:
            return None
        return decode(signature_id, {_text(k): _text(v) for k, v in raw.items()})

    async def load_record(self, signature_id: str) -> dict[str, str] | None:
        """The raw hash fields of a signature (for internal bookkeeping)."""
        raw = await self.redis.hgetall(keys.signature(signature_id))
        if not raw:
            return None
        return {_text(k): _text(v) for k, v in raw.items()}

    # --- the run path ---------------------------------------------------------

    async def activate(self, signature_id: str, lease: str, message: str) -> Activation:
        """Claim the signature for one delivery (see :data:`scripts.ACTIVATE`)."""
        verdict, payload = await self._call(
            "ACTIVATE", [keys.signature(signature_id)], [lease, message, _now()]
        )
        verdict = _text(verdict)
        if verdict == "missing":
            raise SignatureNotFoundError(
                f"signature {signature_id} does not exist: it was removed or it "
                "expired, so this run did nothing. Raise TTLConfig(active=...) "
                "if workflows outlive it."
            )
        if verdict == "corrupt":
            raise CorruptSignatureError(
                f"{keys.signature(signature_id)} holds {_text(payload)}, not a "
                "mageflow signature; the run did nothing. Remove the key."
            )
        if verdict in ("run", "finished"):
            record = _fields(payload)
            return Activation(
                Verdict(verdict),
                record["status"],
                decode(signature_id, record),
                record,
            )
        return Activation(Verdict(verdict), _text(payload))

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
        verdict, payload = await self._call(
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
        verdict = _text(verdict)
        if verdict != "fire":
            return Finish(verdict)
        return Finish(verdict, self._targets(callbacks, payload))

    def _targets(
        self, callbacks: Sequence[str], replies: Sequence[Any]
    ) -> tuple[CallbackTarget, ...]:
        found = (
            _target(cid, reply) for cid, reply in zip(callbacks, replies, strict=True)
        )
        return tuple(t for t in found if t is not None)

    async def targets(self, callbacks: Sequence[str]) -> tuple[CallbackTarget, ...]:
        """Read callbacks for dispatch (the recovery path), in one round trip."""
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
            _text(x)
            for x in await self._call(script, [keys.signature(signature_id)], args)
        )
        if verdict == "missing":
            raise SignatureNotFoundError(
                f"cannot {action} signature {signature_id}: it does not exist "
                "(removed, expired, or never created)."
            )
        if verdict == "illegal":
            raise InvalidTransitionError(
                f"cannot {action} signature {signature_id}: it is {status}. "
                f"{_ALLOWED[action]} See docs/lifecycle.md."
            )
        return Transition(SignatureStatus(status), kind)

    async def resume(self, signature_id: str) -> Resumption:
        """Leave ``suspended``; say what the caller must now dispatch."""
        reply = await self._call(
            "RESUME", [keys.signature(signature_id)], [self.ttl.done_ms]
        )
        verdict, payload, kind = _text(reply[0]), reply[1], _text(reply[2])
        if verdict == "missing":
            raise SignatureNotFoundError(
                f"cannot resume signature {signature_id}: it does not exist."
            )
        if verdict == "illegal":
            raise InvalidTransitionError(
                f"cannot resume signature {signature_id}: it is {_text(payload)}, "
                f"not suspended. {_ALLOWED['resume']} See docs/lifecycle.md."
            )
        if verdict == "fire":
            return Resumption(verdict, kind, record=_fields(payload))
        if verdict == "redispatch":
            return Resumption(verdict, kind, message=json.loads(_text(payload)))
        return Resumption(verdict, kind)

    async def remove(self, signature_id: str) -> int:
        """Delete the signature, its callbacks and children; count the keys."""
        removed = await self._call("REMOVE", [], [f"{keys.PREFIX}:", signature_id])
        return int(removed)

    # --- swarms ---------------------------------------------------------------

    async def _swarm(
        self, script: str, keys_: Sequence[str], args: Sequence[Any]
    ) -> SwarmStep:
        verdict, ids, input_json, described = await self._call(script, keys_, args)
        verdict = _text(verdict)
        if verdict == "missing":
            raise SignatureNotFoundError(
                f"swarm {keys_[0]} does not exist (removed or expired)."
            )
        id_list = tuple(_text(i) for i in ids)
        if verdict in ("full", "closed", "fail"):
            return SwarmStep(verdict, id_list, input=_text(input_json))
        started = self._targets(id_list, described)
        return SwarmStep(verdict, id_list, started, json.loads(_text(input_json)))

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
        return [None if x is None else json.loads(_text(x)) for x in raw]

    async def swarm_items(self, swarm_id: str) -> list[str]:
        raw = await self.redis.lrange(keys.swarm_items(swarm_id), 0, -1)
        return [_text(x) for x in raw]


_ALLOWED = {
    "pause": "Only pending or active signatures can be paused.",
    "resume": "Only suspended (paused) signatures can be resumed.",
    "stop": "Only pending, active or suspended signatures can be stopped.",
}
