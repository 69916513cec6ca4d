"""``SignatureStore``: every Redis access for signatures goes through here.

Each method is one round trip: one Lua script (see
:mod:`mageflow.store.scripts`) for each state transition, so a transition is
always checked and applied atomically on the server. Replies come back as the
typed values of :mod:`mageflow.store.replies`; records are read and written
by :mod:`mageflow.store.codec`.

Redis blips: a call that fails because Redis cannot be reached is retried,
with backoff, for up to :data:`TRANSIENT_RETRY_SECONDS`. Every script is
written to be safe to run twice (a retry after a lost reply repeats the
first decision), except ``resume``, which is a user's call and is not
retried.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from mageflow.errors import (
    CorruptSignatureError,
    InvalidTransitionError,
    SignatureNotFoundError,
)
from mageflow.signature import SignatureStatus, TaskSignature
from mageflow.store import keys, scripts
from mageflow.store.batching import ScriptBatcher
from mageflow.store.codec import (
    Write,
    decode,
    decode_target,
    dumps,
    fields_of,
    loads_outcome,
    text,
)
from mageflow.store.connection import RedisConnection
from mageflow.store.replies import (
    Activation,
    ActivationVerdict,
    BadTarget,
    CallbackTarget,
    Finish,
    FinishVerdict,
    Handover,
    HandoverVerdict,
    Requeue,
    Reset,
    ResumeVerdict,
    Resumption,
    RootVerdict,
    SwarmStep,
    SwarmVerdict,
    Transition,
)
from mageflow.ttl import TTLConfig

TRANSIENT_RETRY_SECONDS = 10.0
"""How long a call keeps retrying while Redis cannot be reached."""

_TRANSIENT = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


logger = logging.getLogger("mageflow")

T = TypeVar("T")


def now_ms() -> int:
    """Milliseconds since the epoch: the scores of the recovery indexes."""
    return int(time.time() * 1000)


def _mode(write: Write) -> str:
    return "claim" if write.claim else "new"


def _batch(writes: Iterable[Write]) -> tuple[list[str], str]:
    """KEYS and the batch argument of :data:`scripts.CREATE`: one JSON
    string, since packing a million arguments costs the client seconds."""
    record_keys: list[str] = []
    batch: list[Any] = []
    for write in writes:
        record_keys.append(keys.signature(write.id))
        batch.append([_mode(write), write.fields])
    return record_keys, dumps(batch)


class SignatureStore:
    """Reads and moves signatures, one round trip per operation."""

    def __init__(self, connection: RedisConnection, ttl: TTLConfig) -> None:
        self._connection = connection
        self.ttl = ttl
        self._scripts: dict[str, AsyncScript] = {}
        self._scripts_for: Redis | None = None
        self._batcher: ScriptBatcher | None = None

    @property
    def connection(self) -> RedisConnection:
        return self._connection

    @property
    def redis(self) -> Redis:
        return self._connection.client

    def _script(self, name: str) -> tuple[AsyncScript, ScriptBatcher]:
        """The script ``name`` on the current client, and that client's
        batcher (both made again if the client changed)."""
        redis = self.redis
        if self._batcher is None or self._scripts_for is not redis:
            self._scripts = {}
            self._scripts_for = redis
            self._batcher = ScriptBatcher(redis)
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = redis.register_script(getattr(scripts, name))
        return script, self._batcher

    async def _call(
        self,
        name: str,
        keys_: Sequence[str],
        args: Sequence[Any],
        *,
        retry: bool = True,
    ) -> Any:
        deadline = time.monotonic() + TRANSIENT_RETRY_SECONDS
        pause = 0.05
        while True:
            try:
                script, batcher = self._script(name)
                return await batcher.call(script, keys_, args)
            except ResponseError as exc:
                if "WRONGTYPE" in str(exc):
                    raise CorruptSignatureError(
                        f"a key of {', '.join(keys_)} holds a value of the wrong "
                        "type for mageflow; it was not touched. Remove the key, "
                        "or use a Redis database that only mageflow writes to.",
                        key=keys_[0] if keys_ else None,
                    ) from exc
                raise
            except _TRANSIENT:
                if not retry or time.monotonic() + pause > deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)

    async def _read(self, coro_factory: Any) -> Any:
        """A plain read command, retried like a script while Redis is away."""
        deadline = time.monotonic() + TRANSIENT_RETRY_SECONDS
        pause = 0.05
        while True:
            try:
                return await coro_factory()
            except _TRANSIENT:
                if time.monotonic() + pause > deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)

    @staticmethod
    def _problem(reply: Sequence[Any], signature_id: str, action: str) -> None:
        """Raise for a script's ``missing`` / ``corrupt`` reply."""
        word = text(reply[0])
        key = keys.signature(signature_id)
        if word == "missing":
            raise SignatureNotFoundError(
                f"cannot {action} signature {signature_id}: it does not exist "
                "(removed, expired, or never created).",
                signature_id=signature_id,
            )
        if word == "corrupt":
            raise CorruptSignatureError(
                f"cannot {action} {key}: it holds {text(reply[1])}, not a valid "
                "mageflow record; nothing was changed. Remove the key.",
                key=key,
                signature_id=signature_id,
            )

    # --- records ------------------------------------------------------------

    async def create(self, writes: Iterable[Write]) -> int:
        """Write new records and claims, all or nothing, in one round trip.

        Returns how many new records were written (a ``new`` record that
        exists already is kept as it is).

        :raises InvalidTransitionError: a claimed signature is not pending or
            belongs to another container; nothing was written.
        """
        record_keys, batch = _batch(writes)
        if not record_keys:
            return 0
        reply = await self._call("CREATE", record_keys, [self.ttl.active_ms, batch])
        if text(reply[0]) == "refused":
            key, why = text(reply[1]), text(reply[2])
            signature_id = key.removeprefix(keys.signature(""))
            raise InvalidTransitionError(
                f"cannot use signature {signature_id} here: {why}. Sign the "
                "task again for a new signature.",
                signature_id=signature_id,
                action="claim",
            )
        return int(reply[1])

    async def load(self, signature_id: str) -> TaskSignature | None:
        """The signature, or ``None`` if there is none under that id."""
        record = await self.load_record(signature_id)
        return None if record is None else decode(signature_id, record)

    async def load_record(self, signature_id: str) -> dict[str, str] | None:
        """The raw hash fields of a signature, or ``None``; not validated."""
        key = keys.signature(signature_id)
        try:
            raw = await self._read(lambda: self.redis.hgetall(key))
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

    async def activate(
        self,
        signature_id: str,
        token: str,
        message: str,
        *,
        task: str = "",
        kind: str = TaskSignature.kind,
        lease: bool = True,
        run_id: str = "",
        first_step: str | None = None,
        namespace: str = "",
    ) -> Activation:
        """Claim the signature for one attempt (see :data:`scripts.ACTIVATE`).

        ``first_step``: a chain's first step, owed its start with the
        chain's message from the same step. ``namespace``: the Hatchet
        namespace ``task`` carries, which a stored name may lack.
        """
        key = keys.signature(signature_id)
        keys_ = [key, keys.DUE, keys.LEASES]
        args: list[Any] = [
            token,
            message,
            now_ms(),
            task,
            kind,
            self.ttl.lease_ms if lease else 0,
            run_id,
            signature_id,
            _now_iso(),
        ]
        if first_step is not None:
            keys_.append(keys.signature(first_step))
            args += [first_step, self.ttl.grace_ms]
        else:
            args += ["", 0]
        args.append(namespace)
        reply = await self._call("ACTIVATE", keys_, args)
        word, payload = text(reply[0]), reply[1]
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
            record = json.loads(text(payload))
            completing = len(reply) > 2 and text(reply[2]) == "1"
            return Activation(
                verdict,
                record["status"],
                decode(signature_id, record),
                record,
                completing,
            )
        return Activation(verdict, text(payload))

    async def finish(
        self,
        signature_id: str,
        token: str,
        status: SignatureStatus,
        outcome: str,
        callbacks: Sequence[str],
        *,
        alone: bool = True,
        swarm_id: str | None = None,
    ) -> Finish:
        """Record the outcome and read the callbacks to fire, atomically.

        Each callback's start is recorded as owed in the same step. With
        ``alone`` (no container needs to hear of it) nothing else is owed:
        the completion is done (``sent``). With ``swarm_id`` (an item of
        that swarm) the swarm's step is taken in the same script
        (:data:`~mageflow.store.scripts.FINISH_ITEM`) and comes back as
        :attr:`Finish.step`.
        """
        keys_ = [keys.signature(signature_id), keys.OWED, keys.LEASES, keys.DUE]
        args: list[Any] = [
            token,
            status.value,
            outcome,
            self.ttl.done_ms,
            _now_iso(),
            "1" if alone else "0",
            now_ms(),
            self.ttl.grace_ms,
            signature_id,
        ]
        if swarm_id is None:
            reply = await self._call(
                "FINISH",
                [*keys_, *map(keys.signature, callbacks)],
                [*args, *callbacks],
            )
            return self._finish(
                json.loads(text(reply)), signature_id, callbacks, sent=alone
            )
        reply = await self._call(
            "FINISH_ITEM",
            [
                *keys_,
                keys.signature(swarm_id),
                keys.swarm_queue(swarm_id),
                keys.swarm_running(swarm_id),
                keys.swarm_results(swarm_id),
                keys.swarm_next(swarm_id),
                keys.swarm_items(swarm_id),
                *map(keys.signature, callbacks),
            ],
            [*args, self.ttl.active_ms, *callbacks],
        )
        reply = json.loads(text(reply))
        finished = self._finish(reply[0], signature_id, callbacks, sent=False)
        if not reply[1] or text(reply[1][0]) in ("missing", "corrupt"):
            # The outcome is recorded; its swarm could not be told (it is
            # gone or damaged): left owed, for the caller to report.
            return finished
        step = self._swarm_step(reply[1], swarm_id)
        return dataclasses.replace(finished, sent=text(reply[2]) == "1", step=step)

    def _finish(
        self,
        reply: Sequence[Any],
        signature_id: str,
        callbacks: Sequence[str],
        *,
        sent: bool,
    ) -> Finish:
        word = text(reply[0])
        if word in ("missing", "corrupt"):
            self._problem(reply, signature_id, "finish")
        verdict = FinishVerdict(word)
        if verdict is not FinishVerdict.FIRE:
            return Finish(verdict)
        good, bad = self._targets(callbacks, reply[1])
        return Finish(verdict, good, bad, sent=sent)

    def _targets(
        self, ids: Sequence[str], replies: Sequence[Any]
    ) -> tuple[tuple[CallbackTarget, ...], tuple[BadTarget, ...]]:
        good: list[CallbackTarget] = []
        bad: list[BadTarget] = []
        for signature_id, reply in zip(ids, replies, strict=True):
            found = decode_target(signature_id, reply)
            if isinstance(found, CallbackTarget):
                good.append(found)
            elif isinstance(found, BadTarget):
                bad.append(found)
        return tuple(good), tuple(bad)

    async def targets(
        self, ids: Sequence[str]
    ) -> tuple[tuple[CallbackTarget, ...], tuple[BadTarget, ...]]:
        """What starting each signature needs, in one round trip; the ones
        that are not mageflow records come second."""
        if not ids:
            return (), ()
        replies = await self._call("TARGETS", list(map(keys.signature, ids)), [])
        return self._targets(ids, replies)

    async def mark_sent(self, signature_id: str) -> None:
        """Record that the outcome's callbacks were dispatched and its
        container told: its completion is no longer owed."""
        await self._call(
            "MARK_SENT",
            [keys.signature(signature_id), keys.OWED, keys.LEASES],
            [signature_id],
        )

    async def release(self, signature_id: str, token: str) -> bool:
        """Give up the hold of an attempt that ends without an outcome."""
        released = await self._call(
            "RELEASE",
            [keys.signature(signature_id), keys.LEASES],
            [token, signature_id],
        )
        return bool(released)

    async def renew(self, held: Sequence[tuple[str, str]]) -> set[str]:
        """Extend the leases of ``(signature id, token)`` pairs still held;
        return the ids that are."""
        if not held:
            return set()
        args: list[Any] = [now_ms() + self.ttl.lease_ms]
        for signature_id, token in held:
            args += [signature_id, token]
        reply = await self._call(
            "RENEW",
            [keys.LEASES, *(keys.signature(sid) for sid, _ in held)],
            args,
        )
        return {text(x) for x in reply}

    async def mark_due(self, signature_id: str, message: str) -> bool:
        """Record a start about to be sent, so a lost one is sent again."""
        reply = await self._call(
            "MARK_DUE",
            [keys.signature(signature_id), keys.DUE, keys.ROOTS],
            [
                signature_id,
                message,
                now_ms() + self.ttl.grace_ms,
                # Microseconds, so starts in one millisecond keep their order.
                time.time_ns() // 1000,
                self.ttl.active_ms * 1000,
                keys.ROOTS_LIMIT,
            ],
        )
        if text(reply[0]) in ("missing", "corrupt"):
            self._problem(reply, signature_id, "start")
        return text(reply[0]) == "ok"

    # --- lifecycle ------------------------------------------------------------

    async def subtree(self, signature_id: str) -> list[str]:
        """``signature_id`` and everything below it (a chain's steps, a
        swarm's items, and theirs), depth first, parents before children:
        one round trip per level, whatever the number of signatures."""
        children: dict[str, list[str]] = {}
        level = [signature_id]
        while level:
            level_keys = []
            for node in level:
                level_keys += [keys.signature(node), keys.swarm_items(node)]
            replies = await self._call("TREE", level_keys, [])
            following: list[str] = []
            for node, reply in zip(level, replies, strict=True):
                below = [text(x) for x in reply[1:] if text(x) not in children]
                children[node] = below
                following += below
            level = [node for node in following if node not in children]
        ordered: list[str] = []
        stack = [signature_id]
        while stack:
            node = stack.pop()
            if node in ordered:
                continue
            ordered.append(node)
            stack.extend(reversed(children.get(node, [])))
        return ordered

    async def pause(self, signature_ids: Sequence[str]) -> list[Transition | None]:
        """Move each to ``suspended``, in one step: the first must be able
        to (else it raises and nothing changed); each other that cannot (it
        ended, it is gone) is ``None``."""
        replies = await self._call(
            "PAUSE", list(map(keys.signature, signature_ids)), []
        )
        return self._each(replies, signature_ids, "pause", self._transition)

    async def stop(
        self,
        signature_ids: Sequence[str],
        final: SignatureStatus = SignatureStatus.CANCELED,
    ) -> list[Transition | None]:
        """Move each to ``canceled`` (or ``interrupted``), with a swarm's
        keys, in one step (the first, as :meth:`pause`)."""
        record_keys = [keys.LEASES, keys.DUE]
        for signature_id in signature_ids:
            record_keys += [keys.signature(signature_id), *keys.swarm_aux(signature_id)]
        replies = await self._call(
            "STOP", record_keys, [self.ttl.done_ms, final.value, *signature_ids]
        )
        return self._each(replies, signature_ids, "stop", self._transition)

    def _each(
        self,
        replies: Sequence[Any],
        signature_ids: Sequence[str],
        action: str,
        parse: Callable[[Sequence[Any], str, str], T],
    ) -> list[T | None]:
        """Parse a batch's replies: the first's problem raises; below it, a
        signature that cannot move is skipped (a damaged one with a warning:
        it is left as it is)."""
        out: list[T | None] = []
        for n, (reply, signature_id) in enumerate(
            zip(replies, signature_ids, strict=False)
        ):
            if n == 0:
                out.append(parse(reply, action, signature_id))
                continue
            try:
                out.append(parse(reply, action, signature_id))
            except (InvalidTransitionError, SignatureNotFoundError):
                out.append(None)
            except CorruptSignatureError as exc:
                logger.warning("mageflow: %s skipped a damaged child: %s", action, exc)
                out.append(None)
        return out

    def _transition(
        self, reply: Sequence[Any], action: str, signature_id: str
    ) -> Transition:
        word = text(reply[0])
        if word in ("missing", "corrupt"):
            self._problem(reply, signature_id, action)
        status, kind = text(reply[1]), text(reply[2])
        if word == "illegal":
            raise InvalidTransitionError(
                f"cannot {action} signature {signature_id}: it is {status}. "
                f"{_ALLOWED[action]} See docs/lifecycle.md.",
                signature_id=signature_id,
                status=status,
                action=action,
            )
        extra = [text(x) or None for x in reply[3:7]]
        container, role, run, due = [*extra, None, None, None, None][:4]
        return Transition(
            SignatureStatus(status), kind, container, role, run, due == "1"
        )

    async def resume(self, signature_ids: Sequence[str]) -> list[Resumption | None]:
        """Leave ``suspended``, each in one step (the first, as
        :meth:`pause`); say what the caller must now dispatch."""
        replies = await self._call(
            "RESUME",
            [keys.OWED, keys.DUE, *map(keys.signature, signature_ids)],
            [self.ttl.done_ms, now_ms(), self.ttl.grace_ms, *signature_ids],
            retry=False,
        )
        return self._each(replies, signature_ids, "resume", self._resumption)

    def _resumption(
        self, reply: Sequence[Any], action: str, signature_id: str
    ) -> Resumption:
        word = text(reply[0])
        if word in ("missing", "corrupt"):
            self._problem(reply, signature_id, action)
        payload, kind = reply[1], text(reply[2])
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
            message = loads_outcome(keys.signature(signature_id), text(payload))
            return Resumption(verdict, kind, message=message)
        return Resumption(verdict, kind)

    async def retry(self, plan: Sequence[Reset | Requeue]) -> list[tuple[str, str]]:
        """Apply a retry plan in one atomic step; return the (id, message
        JSON) of each start it made owed, for the caller to send.

        Not retried on a lost connection: a repeat would find the records
        moved and refuse.

        :raises InvalidTransitionError: a record is no longer what the plan
            saw (``status``: what it is now); nothing was changed.
        """
        record_keys = [keys.DUE, keys.OWED, keys.LEASES]
        args: list[Any] = [now_ms(), self.ttl.grace_ms, self.ttl.active_ms, _now_iso()]
        for step in plan:
            if isinstance(step, Reset):
                record_keys.append(keys.signature(step.signature_id))
                args += [
                    "r",
                    step.signature_id,
                    step.expect.value,
                    step.new.value,
                    step.message or "",
                ]
            else:
                record_keys += [
                    keys.signature(step.swarm_id),
                    keys.swarm_queue(step.swarm_id),
                    keys.swarm_running(step.swarm_id),
                    keys.swarm_results(step.swarm_id),
                    keys.swarm_next(step.swarm_id),
                    keys.swarm_items(step.swarm_id),
                ]
                args += ["s", step.swarm_id, "1" if step.fill else "0", len(step.items)]
                for position, item in step.items:
                    args += [position, item]
        reply = await self._call("RETRY", record_keys, args, retry=False)
        if text(reply[0]) == "changed":
            signature_id, now = text(reply[1]), text(reply[2])
            raise InvalidTransitionError(
                f"cannot retry: signature {signature_id} changed while the retry "
                f"was planned (it is {now} now). Try again once it has ended.",
                signature_id=signature_id,
                status=now,
                action="retry",
            )
        return [(text(pair[0]), text(pair[1])) for pair in reply[1]]

    async def remove(self, signature_id: str) -> int:
        """Delete the signature, its callbacks and children; count the keys."""
        removed = await self._call(
            "REMOVE",
            [keys.DUE, keys.OWED, keys.LEASES, keys.ROOTS],
            [f"{keys.PREFIX}:", signature_id],
        )
        return int(removed)

    # --- recovery ---------------------------------------------------------------

    async def claim_overdue(self, index: str, before_ms: int, limit: int) -> list[str]:
        """Take up to ``limit`` entries of ``index`` scored before
        ``before_ms`` and push them back by the grace, atomically."""
        reply = await self._call(
            "CLAIM", [index], [before_ms, now_ms() + self.ttl.grace_ms, limit]
        )
        return [text(x) for x in reply]

    async def expired_leases(self, before_ms: int, limit: int) -> list[str]:
        """Held signatures whose lease ran out before ``before_ms``.

        Read, not claimed: a lease's score *is* its expiry, so pushing it
        back would make a dead holder look alive. Taking one over is the
        atomic step (:meth:`take_over`)."""
        raw = await self._read(
            lambda: self.redis.zrangebyscore(
                keys.LEASES, "-inf", before_ms, start=0, num=limit
            )
        )
        return [text(x) for x in raw]

    async def take_over(self, signature_id: str, holder: str) -> int | None:
        """Free a signature whose holder ``holder`` is gone (its lease ran
        out); return how many attempts it had, or ``None`` if it is held by
        someone else now or moved on."""
        reply = await self._call(
            "TAKE_OVER",
            [keys.signature(signature_id), keys.LEASES],
            [holder, signature_id],
        )
        return None if reply is None else int(reply)

    async def count_resend(self, signature_id: str) -> int:
        """Count one more start sent by recovery; return the count."""
        key = keys.signature(signature_id)
        count: int = await self._read(lambda: self.redis.hincrby(key, "resends", 1))
        return count

    async def forget(self, index: str, signature_id: str) -> None:
        """Drop a stale entry (its record is gone or moved on)."""
        await self._read(lambda: self.redis.zrem(index, signature_id))

    async def roots(self, offset: int = 0, count: int = 50) -> list[tuple[str, float]]:
        """``(id, started at, seconds since the epoch)`` of the workflows
        started from outside any workflow, newest first; ``count`` from
        ``offset``. Entries may name records that expired since."""
        reply = await self._read(
            lambda: self.redis.zrevrange(
                keys.ROOTS, offset, offset + count - 1, withscores=True
            )
        )
        return [(text(member), float(score) / 1e6) for member, score in reply]

    async def load_records(
        self, signature_ids: Sequence[str]
    ) -> list[dict[str, str] | None]:
        """The raw records of ``signature_ids``, in one round trip, not
        validated: ``None`` for each that is gone, ``{}`` for a key that is
        not a hash."""
        if not signature_ids:
            return []

        async def read() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            for signature_id in signature_ids:
                pipe.hgetall(keys.signature(signature_id))
            result: list[Any] = await pipe.execute(raise_on_error=False)
            return result

        replies = await self._read(read)
        # A key that is no hash (WRONGTYPE) reads as {}, which decode refuses
        # as not a mageflow record: one bad key spoils no other.
        return [
            {}
            if isinstance(reply, Exception)
            else {text(k): text(v) for k, v in reply.items()}
            if reply
            else None
            for reply in replies
        ]

    async def index_size(self, index: str) -> int:
        size: int = await self._read(lambda: self.redis.zcard(index))
        return size

    # --- swarms ---------------------------------------------------------------

    async def _swarm(
        self,
        script: str,
        swarm_id: str,
        keys_: Sequence[str],
        args: Sequence[Any],
    ) -> SwarmStep:
        return self._swarm_step(await self._call(script, keys_, args), swarm_id)

    def _swarm_step(self, reply: Sequence[Any], swarm_id: str) -> SwarmStep:
        word = text(reply[0])
        if word in ("missing", "corrupt"):
            self._problem(reply, swarm_id, "change swarm")
        verdict = SwarmVerdict(word)
        ids, payload, described = reply[1], reply[2], reply[3]
        id_list = tuple(text(i) for i in ids)
        if verdict in (
            SwarmVerdict.FULL,
            SwarmVerdict.CLOSED,
            SwarmVerdict.FAIL,
            SwarmVerdict.REFUSED,
        ):
            return SwarmStep(verdict, id_list, input=text(payload))
        good, bad = self._targets(id_list, described)
        message = loads_outcome(keys.signature(swarm_id), text(payload))
        return SwarmStep(verdict, id_list, good, message, bad)

    async def swarm_start(self, swarm_id: str, message: str) -> SwarmStep:
        """Activate (or refill) a swarm: start what its free slots allow."""
        return await self._swarm(
            "SWARM_START",
            swarm_id,
            [
                keys.signature(swarm_id),
                keys.swarm_queue(swarm_id),
                keys.swarm_running(swarm_id),
                keys.DUE,
            ],
            [
                message,
                _now_iso(),
                now_ms(),
                self.ttl.grace_ms,
                self.ttl.active_ms,
                swarm_id,
            ],
        )

    async def swarm_add(
        self,
        swarm_id: str,
        items: Sequence[Write],
        *,
        close: bool = False,
        join: bool = False,
    ) -> SwarmStep:
        """Write and append items in order; start those that fit. ``close``:
        and take no more after them, in the same step. ``join`` (a root
        task's start): an item that is in this swarm already is skipped."""
        args: list[Any] = [
            self.ttl.active_ms,
            now_ms(),
            self.ttl.grace_ms,
            swarm_id,
            uuid.uuid4().hex,  # this call, so a retry of it is not a second add
            "1" if close else "0",
            dumps([[item.id, _mode(item), item.fields] for item in items]),
            "1" if join else "0",
        ]
        return await self._swarm(
            "SWARM_ADD",
            swarm_id,
            [
                keys.signature(swarm_id),
                keys.swarm_items(swarm_id),
                keys.swarm_queue(swarm_id),
                keys.swarm_running(swarm_id),
                keys.DUE,
                *(keys.signature(item.id) for item in items),
            ],
            args,
        )

    async def swarm_item_done(
        self, swarm_id: str, item_id: str, status: SignatureStatus, outcome: str
    ) -> SwarmStep:
        """Record an item's outcome at its position; free its slot; refill."""
        return await self._swarm(
            "SWARM_ITEM_DONE",
            swarm_id,
            [
                keys.signature(swarm_id),
                keys.swarm_queue(swarm_id),
                keys.swarm_running(swarm_id),
                keys.swarm_results(swarm_id),
                keys.swarm_next(swarm_id),
                keys.signature(item_id),
                keys.DUE,
                keys.swarm_items(swarm_id),
            ],
            [
                item_id,
                status.value,
                outcome,
                self.ttl.active_ms,
                now_ms(),
                self.ttl.grace_ms,
                self.ttl.done_ms,
            ],
        )

    async def swarm_close(self, swarm_id: str) -> SwarmStep:
        return await self._swarm(
            "SWARM_CLOSE",
            swarm_id,
            [keys.signature(swarm_id), *keys.swarm_aux(swarm_id), keys.OWED],
            [self.ttl.done_ms, now_ms(), self.ttl.grace_ms, swarm_id],
        )

    async def swarm_results(self, swarm_id: str, size: int) -> list[Any]:
        """Every item's outcome, in the order the items were added."""
        if size == 0:
            return []
        key = keys.swarm_results(swarm_id)
        raw = await self._read(
            lambda: self.redis.hmget(key, [str(i) for i in range(size)])
        )
        return [None if x is None else loads_outcome(key, text(x)) for x in raw]

    async def swarm_items(
        self, swarm_id: str, start: int = 0, stop: int | None = None
    ) -> list[str]:
        """The swarm's item ids in add order, ``[start, stop)`` of them."""
        key = keys.swarm_items(swarm_id)
        last = -1 if stop is None else stop - 1
        raw = await self._read(lambda: self.redis.lrange(key, start, last))
        return [text(x) for x in raw]

    # --- dynamic workflows ------------------------------------------------------

    async def handover(
        self, task_id: str, token: str, work_id: str, depth: int
    ) -> Handover:
        """Hand the task held by ``token`` over to ``work_id`` (its
        continuation, at ``depth``), and owe the work's start: one step."""
        reply = await self._call(
            "HANDOVER",
            [
                keys.signature(task_id),
                keys.signature(work_id),
                keys.DUE,
                keys.LEASES,
            ],
            [token, task_id, work_id, now_ms(), self.ttl.grace_ms, depth],
        )
        word = text(reply[0])
        if word in ("missing", "corrupt"):
            self._problem(reply, task_id, "continue")
        verdict = HandoverVerdict(word)
        if verdict is HandoverVerdict.OK:
            (target,), _ = self._targets([work_id], [reply[1]])
            return Handover(verdict, target)
        if verdict is HandoverVerdict.REFUSED:
            return Handover(verdict, reason=text(reply[1]))
        return Handover(verdict)

    async def root_open(
        self, task_id: str, token: str, swarm_id: str, swarm: Mapping[str, str]
    ) -> bool:
        """Make a root task's swarm (``swarm``: its record) and name it on
        the task held by ``token``; ``False`` when the task is not held so."""
        reply = await self._call(
            "ROOT_OPEN",
            [keys.signature(task_id), keys.signature(swarm_id)],
            [token, swarm_id, self.ttl.active_ms, dumps(dict(swarm))],
        )
        if text(reply[0]) in ("missing", "corrupt"):
            self._problem(reply, task_id, "open the root of")
        return text(reply[0]) == "ok"

    async def root_done(
        self, task_id: str, token: str, swarm_id: str, body: str
    ) -> RootVerdict:
        """The root task's body returned ``body`` (JSON): hand the task to
        its children and close their swarm, in one step."""
        reply = await self._call(
            "ROOT_DONE",
            [
                keys.signature(task_id),
                keys.OWED,
                keys.LEASES,
                keys.signature(swarm_id),
                *keys.swarm_aux(swarm_id),
            ],
            [
                token,
                task_id,
                body,
                self.ttl.done_ms,
                now_ms(),
                self.ttl.grace_ms,
                swarm_id,
            ],
        )
        if text(reply[0]) in ("missing", "corrupt"):
            self._problem(reply, task_id, "settle the root")
        return RootVerdict(text(reply[0]))


_ALLOWED = {
    "pause": "Only pending or active signatures can be paused.",
    "resume": "Only suspended (paused) signatures can be resumed.",
    "stop": "Only pending, active or suspended signatures can be stopped.",
}
