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

from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from mageflow.callbacks import DEFAULT_RESULT_FIELD
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
from mageflow.store.connection import RedisClient, RedisConnection
from mageflow.store.keys import Index
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


def _batches(writes: Iterable[Write]) -> dict[int, tuple[list[str], str]]:
    """Per shard, KEYS and the batch argument of :data:`scripts.CREATE`: one
    JSON string, since packing a million arguments costs the client seconds."""
    grouped: dict[int, tuple[list[str], list[Any]]] = {}
    for write in writes:
        shard = keys.shard_of(write.id)
        if shard not in grouped:
            grouped[shard] = ([keys.due_messages(shard)], [])
        record_keys, batch = grouped[shard]
        record_keys.append(keys.signature(write.id))
        batch.append([_mode(write), write.fields, write.id])
    return {shard: (ks, dumps(batch)) for shard, (ks, batch) in grouped.items()}


def by_shard(ids: Iterable[str]) -> dict[int, list[str]]:
    """``ids`` grouped by shard, each group in the order given."""
    groups: dict[int, list[str]] = {}
    for signature_id in ids:
        groups.setdefault(keys.shard_of(signature_id), []).append(signature_id)
    return groups


@dataclasses.dataclass(frozen=True)
class Entry:
    """An entry of a recovery index: the shard whose index holds it, and the
    signature it names (whose record may live in another shard)."""

    shard: int
    signature_id: str

    @property
    def relayed(self) -> bool:
        """Whether the entry is a debt of another shard than the record's."""
        return keys.shard_of(self.signature_id) != self.shard


class SignatureStore:
    """Reads and moves signatures, one round trip per operation."""

    def __init__(self, connection: RedisConnection, ttl: TTLConfig) -> None:
        self._connection = connection
        self.ttl = ttl
        self._scripts: dict[str, AsyncScript] = {}
        self._scripts_for: RedisClient | None = None
        self._batcher: ScriptBatcher | None = None

    @property
    def connection(self) -> RedisConnection:
        return self._connection

    @property
    def redis(self) -> RedisClient:
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
            source = scripts.SHEBANG + getattr(scripts, name)
            script = self._scripts[name] = redis.register_script(source)
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
                await self._ready()
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

    async def _ready(self) -> None:
        """Let a cluster client learn the slot map before its first command.

        redis-py's cluster client learns it lazily, on the first command;
        commands sent at once on a new client can then meet a redirect that
        makes it reconnect under the others, which fail. Once is enough: on a
        known cluster this returns at once."""
        redis = self.redis
        if isinstance(redis, RedisCluster):
            await redis.initialize()

    async def _read(self, coro_factory: Any) -> Any:
        """A plain read command, retried like a script while Redis is away."""
        deadline = time.monotonic() + TRANSIENT_RETRY_SECONDS
        pause = 0.05
        while True:
            try:
                await self._ready()
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
        groups = _batches(writes)
        if not groups:
            return 0
        ttl = self.ttl.active_ms
        if len(groups) > 1:
            # Records of several shards (a signature signed on its own, then
            # claimed): every shard checks its claims first, then each
            # writes, so a refusal anywhere still writes nothing.
            checks = await asyncio.gather(
                *(
                    self._call("CREATE", ks, [ttl, batch, "1"])
                    for ks, batch in groups.values()
                )
            )
            for reply in checks:
                self._refused(reply)
        replies = await asyncio.gather(
            *(
                self._call("CREATE", ks, [ttl, batch, "0"])
                for ks, batch in groups.values()
            )
        )
        for reply in replies:
            self._refused(reply)
        return sum(int(reply[1]) for reply in replies)

    @staticmethod
    def _refused(reply: Sequence[Any]) -> None:
        if text(reply[0]) == "refused":
            key, why = text(reply[1]), text(reply[2])
            signature_id = key.rpartition(":sig:")[2]
            raise InvalidTransitionError(
                f"cannot use signature {signature_id} here: {why}. Sign the "
                "task again for a new signature.",
                signature_id=signature_id,
                action="claim",
            )

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
            await self._refuse_legacy(signature_id)
            return None
        return {text(k): text(v) for k, v in raw.items()}

    async def _refuse_legacy(self, signature_id: str) -> None:
        """Raise if ``signature_id`` is a record of the layout before shards:
        it is not read (its bookkeeping is elsewhere), but it must not look
        like a signature that never existed either."""
        old = keys.legacy_signature(signature_id)
        if await self._read(lambda: self.redis.exists(old)):
            raise CorruptSignatureError(
                f"signature {signature_id} is stored in mageflow's old key "
                f"layout ({old}, schema 1), which this version does not read. "
                "Let the old workers finish their workflows before upgrading, "
                "or remove the old keys: see 'Migrating from schema 1' in "
                "docs/operations.md.",
                key=old,
                signature_id=signature_id,
            )

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
        shard = keys.shard_of(signature_id)
        keys_ = [
            key,
            keys.index(Index.DUE, shard),
            keys.index(Index.LEASES, shard),
            keys.due_messages(shard),
        ]
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
            args += [first_step, self.ttl.grace_ms]
        else:
            args += ["", 0]
        args.append(namespace)
        reply = await self._call("ACTIVATE", keys_, args)
        word, payload = text(reply[0]), reply[1]
        if word == "missing":
            await self._refuse_legacy(signature_id)
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
        shard = keys.shard_of(signature_id)
        keys_ = [
            keys.signature(signature_id),
            keys.index(Index.OWED, shard),
            keys.index(Index.LEASES, shard),
            keys.index(Index.DUE, shard),
            keys.due_messages(shard),
        ]
        local = [c for c in callbacks if keys.shard_of(c) == shard]
        remote: list[CallbackTarget] = []
        remote_bad: tuple[BadTarget, ...] = ()
        if len(local) < len(callbacks):
            # Callbacks signed on their own live in other shards: read what
            # starting them needs first, so their starts are owed here.
            remote_ids = [c for c in callbacks if keys.shard_of(c) != shard]
            found, remote_bad = await self.targets(remote_ids)
            remote = list(found)
        pairs: list[str] = []
        for target in remote:
            pairs += [target.id, target.return_field or DEFAULT_RESULT_FIELD]
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
        if swarm_id is None or keys.shard_of(swarm_id) != shard:
            # An item of a swarm in another shard finishes alone; its swarm
            # hears of it next, from the caller (the completion is owed).
            reply = await self._call(
                "FINISH",
                [*keys_, *map(keys.signature, local)],
                [*args, "", *local, *pairs],
            )
            return self._finish(
                json.loads(text(reply)),
                signature_id,
                local,
                (remote, remote_bad),
                sent=alone and swarm_id is None,
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
                keys.swarm_starts(swarm_id),
                keys.swarm_positions(swarm_id),
                *map(keys.signature, local),
            ],
            [*args, self.ttl.active_ms, *local, *pairs],
        )
        reply = json.loads(text(reply))
        finished = self._finish(
            reply[0], signature_id, local, (remote, remote_bad), sent=False
        )
        if not reply[1] or text(reply[1][0]) in ("missing", "corrupt"):
            # The outcome is recorded; its swarm could not be told (it is
            # gone or damaged): left owed, for the caller to report.
            return finished
        step = await self._swarm_step(reply[1], swarm_id)
        return dataclasses.replace(finished, sent=text(reply[2]) == "1", step=step)

    def _finish(
        self,
        reply: Sequence[Any],
        signature_id: str,
        callbacks: Sequence[str],
        remote: tuple[Sequence[CallbackTarget], Sequence[BadTarget]],
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
        return Finish(verdict, (*good, *remote[0]), (*bad, *remote[1]), sent=sent)

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
        described = await self._replies_by_id("TARGETS", ids, _record_keys)
        return self._targets(ids, [described[i] for i in ids])

    async def mark_sent(self, signature_id: str) -> None:
        """Record that the outcome's callbacks were dispatched and its
        container told: its completion is no longer owed."""
        await self._call(
            "MARK_SENT",
            [
                keys.signature(signature_id),
                keys.index_of(Index.OWED, signature_id),
                keys.index_of(Index.LEASES, signature_id),
            ],
            [signature_id],
        )

    async def release(self, signature_id: str, token: str) -> bool:
        """Give up the hold of an attempt that ends without an outcome."""
        released = await self._call(
            "RELEASE",
            [keys.signature(signature_id), keys.index_of(Index.LEASES, signature_id)],
            [token, signature_id],
        )
        return bool(released)

    async def renew(self, held: Sequence[tuple[str, str]]) -> set[str]:
        """Extend the leases of ``(signature id, token)`` pairs still held;
        return the ids that are."""
        if not held:
            return set()
        ends = now_ms() + self.ttl.lease_ms
        groups: dict[int, list[tuple[str, str]]] = {}
        for pair in held:
            groups.setdefault(keys.shard_of(pair[0]), []).append(pair)

        async def renew(shard: int, pairs: list[tuple[str, str]]) -> Any:
            args: list[Any] = [ends]
            for signature_id, token in pairs:
                args += [signature_id, token]
            return await self._call(
                "RENEW",
                [
                    keys.index(Index.LEASES, shard),
                    *(keys.signature(sid) for sid, _ in pairs),
                ],
                args,
            )

        replies = await asyncio.gather(*(renew(*group) for group in groups.items()))
        return {text(x) for reply in replies for x in reply}

    async def mark_due(
        self, signature_id: str, message: str, *, relayed: bool = False
    ) -> bool:
        """Record a start about to be sent, so a lost one is sent again.

        ``relayed``: recovery moves a start owed in another shard here; it
        is no start of a workflow's root, and a paused signature keeps it.
        """
        shard = keys.shard_of(signature_id)
        reply = await self._call(
            "MARK_DUE",
            [
                keys.signature(signature_id),
                keys.index(Index.DUE, shard),
                keys.index(Index.ROOTS, shard),
                keys.due_messages(shard),
            ],
            [
                signature_id,
                message,
                now_ms() + self.ttl.grace_ms,
                # Microseconds, so starts in one millisecond keep their order.
                time.time_ns() // 1000,
                self.ttl.active_ms * 1000,
                keys.ROOTS_LIMIT,
                "0" if relayed else "1",
                "1" if relayed else "0",
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
            replies = await self._tree(level)
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

    async def _replies_by_id(
        self,
        name: str,
        ids: Sequence[str],
        keys_of: Callable[[list[str]], list[str]],
        args: Sequence[Any] = (),
    ) -> dict[str, Any]:
        """Script ``name`` once per shard of ``ids``, all at once (one round
        trip on a single server); the reply for each id (the script answers
        one per signature, in order)."""
        groups = list(by_shard(ids).values())
        replies = await asyncio.gather(
            *(self._call(name, keys_of(group), list(args)) for group in groups)
        )
        return dict(
            zip(
                (i for group in groups for i in group),
                (r for reply in replies for r in reply),
                strict=True,
            )
        )

    async def _tree(self, level: Sequence[str], callbacks: bool = False) -> list[Any]:
        """One level of :data:`scripts.TREE`, one call per shard at once."""

        def keys_of(group: list[str]) -> list[str]:
            out: list[str] = []
            for node in group:
                out += [keys.signature(node), keys.swarm_items(node)]
            return out

        found = await self._replies_by_id(
            "TREE", level, keys_of, ["1" if callbacks else "0"]
        )
        return [found[node] for node in level]

    async def _per_shard(
        self,
        name: str,
        signature_ids: Sequence[str],
        make: Callable[[int, list[str], bool], tuple[list[str], list[Any]]],
        *,
        retry: bool = True,
    ) -> list[Any]:
        """Run batch script ``name`` once per shard of ``signature_ids``;
        the replies in the order of ``signature_ids``.

        The first id is the one asked for: its shard goes first, alone, and
        when its reply is not ``ok`` the others do not go (nothing changed,
        as in one script). The other shards then go together, each entry on
        its own (``make``'s flag is whether the group starts with the first).
        """
        if not signature_ids:
            return []
        groups = by_shard(signature_ids)
        first = keys.shard_of(signature_ids[0])
        head_ids = groups.pop(first)
        head = await self._call(name, *make(first, head_ids, True), retry=retry)
        replies: dict[str, Any] = dict(zip(head_ids, head, strict=False))
        if len(head) < len(head_ids) or not groups:
            return [replies[i] for i in signature_ids if i in replies]
        rest = list(groups.items())
        tails = await asyncio.gather(
            *(
                self._call(name, *make(shard, ids, False), retry=retry)
                for shard, ids in rest
            )
        )
        for (_, ids), tail in zip(rest, tails, strict=True):
            replies.update(zip(ids, tail, strict=True))
        return [replies[i] for i in signature_ids]

    async def pause(self, signature_ids: Sequence[str]) -> list[Transition | None]:
        """Move each to ``suspended``, in one step per shard: the first must
        be able to (else it raises and nothing changed); each other that
        cannot (it ended, it is gone) is ``None``."""

        def make(
            shard: int, ids: list[str], first: bool
        ) -> tuple[list[str], list[Any]]:
            return list(map(keys.signature, ids)), ["1" if first else "0"]

        replies = await self._per_shard("PAUSE", signature_ids, make)
        return self._each(replies, signature_ids, "pause", self._transition)

    async def stop(
        self,
        signature_ids: Sequence[str],
        final: SignatureStatus = SignatureStatus.CANCELED,
    ) -> list[Transition | None]:
        """Move each to ``canceled`` (or ``interrupted``), with a swarm's
        keys, in one step (the first, as :meth:`pause`)."""

        def make(
            shard: int, ids: list[str], first: bool
        ) -> tuple[list[str], list[Any]]:
            record_keys = [
                keys.index(Index.LEASES, shard),
                keys.index(Index.DUE, shard),
                keys.due_messages(shard),
            ]
            for signature_id in ids:
                record_keys += [
                    keys.signature(signature_id),
                    *keys.swarm_aux(signature_id),
                ]
            args = [self.ttl.done_ms, final.value, "1" if first else "0", *ids]
            return record_keys, args

        replies = await self._per_shard("STOP", signature_ids, make)
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
        now = now_ms()

        def make(
            shard: int, ids: list[str], first: bool
        ) -> tuple[list[str], list[Any]]:
            record_keys = [
                keys.index(Index.OWED, shard),
                keys.index(Index.DUE, shard),
                keys.due_messages(shard),
                *map(keys.signature, ids),
            ]
            args = [self.ttl.done_ms, now, self.ttl.grace_ms, "1" if first else "0"]
            return record_keys, [*args, *ids]

        replies = await self._per_shard("RESUME", signature_ids, make, retry=False)
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
        groups: dict[int, tuple[list[str], list[Any]]] = {}

        def group(shard: int) -> tuple[list[str], list[Any]]:
            if shard not in groups:
                groups[shard] = (
                    [
                        keys.index(Index.DUE, shard),
                        keys.index(Index.OWED, shard),
                        keys.index(Index.LEASES, shard),
                        keys.due_messages(shard),
                    ],
                    [],
                )
            return groups[shard]

        for step in plan:
            if isinstance(step, Reset):
                record_keys, ops = group(keys.shard_of(step.signature_id))
                record_keys.append(keys.signature(step.signature_id))
                ops += [
                    "r",
                    step.signature_id,
                    step.expect.value,
                    step.new.value,
                    step.message or "",
                ]
            else:
                record_keys, ops = group(keys.shard_of(step.swarm_id))
                record_keys += [
                    keys.signature(step.swarm_id),
                    keys.swarm_queue(step.swarm_id),
                    keys.swarm_running(step.swarm_id),
                    keys.swarm_results(step.swarm_id),
                    keys.swarm_next(step.swarm_id),
                    keys.swarm_items(step.swarm_id),
                    keys.swarm_starts(step.swarm_id),
                ]
                ops += ["s", step.swarm_id, "1" if step.fill else "0", len(step.items)]
                for position, item in step.items:
                    ops += [position, item]
        head = [now_ms(), self.ttl.grace_ms, self.ttl.active_ms, _now_iso()]
        if len(groups) > 1:
            # A plan over several shards: every shard checks first, so a
            # record that moved anywhere still changes nothing.
            checks = await asyncio.gather(
                *(
                    self._call("RETRY", ks, [*head, "1", *ops], retry=False)
                    for ks, ops in groups.values()
                )
            )
            for reply in checks:
                self._changed(reply)
        replies = await asyncio.gather(
            *(
                self._call("RETRY", ks, [*head, "0", *ops], retry=False)
                for ks, ops in groups.values()
            )
        )
        for reply in replies:
            self._changed(reply)
        return [(text(pair[0]), text(pair[1])) for r in replies for pair in r[1]]

    @staticmethod
    def _changed(reply: Sequence[Any]) -> None:
        if text(reply[0]) == "changed":
            signature_id, now = text(reply[1]), text(reply[2])
            raise InvalidTransitionError(
                f"cannot retry: signature {signature_id} changed while the retry "
                f"was planned (it is {now} now). Try again once it has ended.",
                signature_id=signature_id,
                status=now,
                action="retry",
            )

    async def remove(self, signature_id: str) -> int:
        """Delete the signature, its callbacks and children; count the keys.

        What it reaches is read first, one level per round trip (one script
        per shard of the level), then each shard deletes its part in one
        step. Run again
        after a failure, it finishes the job."""
        seen: list[str] = []
        level = [signature_id]
        while level:
            level = [i for i in dict.fromkeys(level) if i not in seen]
            following: list[str] = []
            for node, reply in zip(level, await self._tree(level, True), strict=True):
                if text(reply[0]) == "":
                    continue  # gone, or a key that is not a hash: not ours
                seen.append(node)
                following += [text(x) for x in reply[1:]]
            level = following
        aux = len(keys.swarm_aux(""))

        async def delete(shard: int, ids: list[str]) -> int:
            doomed = [
                *(keys.index(which, shard) for which in _REMOVED_FROM),
                keys.due_messages(shard),
            ]
            for node in ids:
                doomed += [keys.signature(node), *keys.swarm_aux(node)]
            return int(await self._call("REMOVE", doomed, [aux, *ids]))

        counts = await asyncio.gather(
            *(delete(shard, ids) for shard, ids in by_shard(seen).items())
        )
        return sum(counts)

    # --- recovery ---------------------------------------------------------------

    async def claim_overdue(
        self, index: Index, before_ms: int, limit: int
    ) -> list[Entry]:
        """Take up to ``limit`` entries of each shard's ``index`` scored
        before ``before_ms`` and push them back by the grace, atomically."""
        later = now_ms() + self.ttl.grace_ms
        replies = await asyncio.gather(
            *(
                self._call(
                    "CLAIM", [keys.index(index, shard)], [before_ms, later, limit]
                )
                for shard in range(keys.SHARDS)
            )
        )
        return [
            Entry(shard, text(x)) for shard, reply in enumerate(replies) for x in reply
        ]

    async def expired_leases(self, before_ms: int, limit: int) -> list[Entry]:
        """Held signatures whose lease ran out before ``before_ms``.

        Read, not claimed: a lease's score *is* its expiry, so pushing it
        back would make a dead holder look alive. Taking one over is the
        atomic step (:meth:`take_over`)."""

        async def read() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            for shard in range(keys.SHARDS):
                pipe.zrangebyscore(
                    keys.index(Index.LEASES, shard),
                    "-inf",
                    before_ms,
                    start=0,
                    num=limit,
                )
            result: list[Any] = await pipe.execute()
            return result

        replies = await self._read(read)
        return [
            Entry(shard, text(x)) for shard, reply in enumerate(replies) for x in reply
        ]

    async def take_over(self, signature_id: str, holder: str) -> int | None:
        """Free a signature whose holder ``holder`` is gone (its lease ran
        out); return how many attempts it had, or ``None`` if it is held by
        someone else now or moved on."""
        reply = await self._call(
            "TAKE_OVER",
            [keys.signature(signature_id), keys.index_of(Index.LEASES, signature_id)],
            [holder, signature_id],
        )
        return None if reply is None else int(reply)

    async def due_message(self, entry: Entry) -> str | None:
        """The message of an owed start (``entry`` of :attr:`Index.DUE`)."""
        key = keys.due_messages(entry.shard)
        raw = await self._read(lambda: self.redis.hget(key, entry.signature_id))
        return None if raw is None else text(raw)

    async def count_resend(self, signature_id: str) -> int:
        """Count one more start sent by recovery; return the count."""
        key = keys.signature(signature_id)
        count: int = await self._read(lambda: self.redis.hincrby(key, "resends", 1))
        return count

    async def forget(self, index: Index, entry: Entry) -> None:
        """Drop a stale entry (its record is gone or moved on)."""
        key = keys.index(index, entry.shard)
        if index is not Index.DUE:
            await self._read(lambda: self.redis.zrem(key, entry.signature_id))
            return

        async def both() -> None:
            pipe = self.redis.pipeline(transaction=False)
            pipe.zrem(key, entry.signature_id)
            pipe.hdel(keys.due_messages(entry.shard), entry.signature_id)
            await pipe.execute()

        await self._read(both)

    async def roots(self, offset: int = 0, count: int = 50) -> list[tuple[str, float]]:
        """``(id, started at, seconds since the epoch)`` of the workflows
        started from outside any workflow, newest first; ``count`` from
        ``offset``. Entries may name records that expired since."""

        # Each shard lists its own: the newest offset + count of each, merged.
        async def read() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            for shard in range(keys.SHARDS):
                pipe.zrevrange(
                    keys.index(Index.ROOTS, shard),
                    0,
                    offset + count - 1,
                    withscores=True,
                )
            result: list[Any] = await pipe.execute()
            return result

        replies = await self._read(read)
        merged = sorted(
            (
                (text(member), float(score))
                for reply in replies
                for member, score in reply
            ),
            key=lambda pair: (pair[1], pair[0]),
            reverse=True,
        )
        return [
            (member, score / 1e6) for member, score in merged[offset : offset + count]
        ]

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

    async def index_size(self, index: Index) -> int:
        """How many entries ``index`` holds, over every shard."""

        async def read() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            for shard in range(keys.SHARDS):
                pipe.zcard(keys.index(index, shard))
            result: list[Any] = await pipe.execute()
            return result

        return sum(int(n) for n in await self._read(read))

    # --- swarms ---------------------------------------------------------------

    async def _swarm(
        self,
        script: str,
        swarm_id: str,
        keys_: Sequence[str],
        args: Sequence[Any],
    ) -> SwarmStep:
        return await self._swarm_step(await self._call(script, keys_, args), swarm_id)

    async def _swarm_step(self, reply: Sequence[Any], swarm_id: str) -> SwarmStep:
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
        # An item the swarm holds no start for (queued again by a retry, or
        # a replay's successor) is read from its own record.
        unknown = [i for i, d in zip(id_list, described, strict=True) if _unknown(d)]
        read: dict[str, Any] = {}
        if unknown:
            read = await self._replies_by_id("TARGETS", unknown, _record_keys)
        described = [read.get(i, d) for i, d in zip(id_list, described, strict=True)]
        good, bad = self._targets(id_list, described)
        message = loads_outcome(keys.signature(swarm_id), text(payload))
        return SwarmStep(verdict, id_list, good, message, bad)

    def _swarm_keys(self, swarm_id: str, *parts: str) -> list[str]:
        shard = keys.shard_of(swarm_id)
        named = {
            "queue": keys.swarm_queue,
            "running": keys.swarm_running,
            "results": keys.swarm_results,
            "next": keys.swarm_next,
            "items": keys.swarm_items,
            "starts": keys.swarm_starts,
            "positions": keys.swarm_positions,
        }
        out = [keys.signature(swarm_id)]
        for part in parts:
            if part == "due":
                out.append(keys.index(Index.DUE, shard))
            elif part == "dmsgs":
                out.append(keys.due_messages(shard))
            else:
                out.append(named[part](swarm_id))
        return out

    async def swarm_start(self, swarm_id: str, message: str) -> SwarmStep:
        """Activate (or refill) a swarm: start what its free slots allow."""
        return await self._swarm(
            "SWARM_START",
            swarm_id,
            self._swarm_keys(swarm_id, "queue", "running", "due", "dmsgs", "starts"),
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
        task's start): an item that is in this swarm already is skipped.

        An item of another shard (signed on its own) is first made the
        swarm's in its own shard (:data:`scripts.CLAIM_ITEMS`), then added;
        if the swarm then refuses, it is given back."""
        shard = keys.shard_of(swarm_id)
        remote = [item for item in items if keys.shard_of(item.id) != shard]
        starts: dict[str, str] = {}
        if remote:
            starts = await self._claim_items(swarm_id, remote)
        local = [item for item in items if keys.shard_of(item.id) == shard]
        batch = [
            [item.id, "remote", {}, starts[item.id]]
            if item.id in starts
            else [item.id, _mode(item), item.fields]
            for item in items
        ]
        args: list[Any] = [
            self.ttl.active_ms,
            now_ms(),
            self.ttl.grace_ms,
            swarm_id,
            uuid.uuid4().hex,  # this call, so a retry of it is not a second add
            "1" if close else "0",
            dumps(batch),
            "1" if join else "0",
        ]
        try:
            step = await self._swarm(
                "SWARM_ADD",
                swarm_id,
                [
                    *self._swarm_keys(
                        swarm_id,
                        "items",
                        "queue",
                        "running",
                        "due",
                        "dmsgs",
                        "starts",
                        "positions",
                    ),
                    *(keys.signature(item.id) for item in local),
                ],
                args,
            )
        except BaseException:
            if remote:
                await self._unclaim_items(swarm_id, remote)
            raise
        if remote and step.verdict in (
            SwarmVerdict.CLOSED,
            SwarmVerdict.FULL,
            SwarmVerdict.REFUSED,
        ):
            await self._unclaim_items(swarm_id, remote)
        return step

    async def _claim_items(
        self, swarm_id: str, items: Sequence[Write]
    ) -> dict[str, str]:
        """Make ``items`` (of other shards than the swarm's) the swarm's, in
        their shards; what starting each needs, by id."""
        groups: dict[int, list[Write]] = {}
        for item in items:
            groups.setdefault(keys.shard_of(item.id), []).append(item)

        async def claim(shard: int, group: list[Write]) -> list[Any]:
            reply = await self._call(
                "CLAIM_ITEMS",
                [keys.due_messages(shard), *(keys.signature(i.id) for i in group)],
                [swarm_id, dumps([[i.id, i.fields] for i in group])],
            )
            if text(reply[0]) == "refused":
                signature_id, why = text(reply[1][0]), text(reply[2])
                raise InvalidTransitionError(
                    f"cannot use signature {signature_id} here: {why}. Sign the "
                    "task again for a new signature.",
                    signature_id=signature_id,
                    action="claim",
                )
            return list(zip((i.id for i in group), map(text, reply[1]), strict=True))

        results = await asyncio.gather(
            *(claim(*group) for group in groups.items()), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            await self._unclaim_items(swarm_id, items)
            raise failed[0]
        return {
            i: start
            for pairs in results
            if isinstance(pairs, list)
            for i, start in pairs
        }

    async def _unclaim_items(self, swarm_id: str, items: Sequence[Write]) -> None:
        for ids in by_shard(item.id for item in items).values():
            await self._call(
                "UNCLAIM_ITEMS", list(map(keys.signature, ids)), [swarm_id]
            )

    async def swarm_item_done(
        self, swarm_id: str, item_id: str, status: SignatureStatus, outcome: str
    ) -> SwarmStep:
        """Record an item's outcome at its position; free its slot; refill."""
        return await self._swarm(
            "SWARM_ITEM_DONE",
            swarm_id,
            self._swarm_keys(
                swarm_id,
                "queue",
                "running",
                "results",
                "next",
                "items",
                "due",
                "dmsgs",
                "starts",
                "positions",
            ),
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
            [
                keys.signature(swarm_id),
                *keys.swarm_aux(swarm_id),
                keys.index_of(Index.OWED, swarm_id),
            ],
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
        shard = keys.shard_of(task_id)
        if keys.shard_of(work_id) != shard:
            return Handover(
                HandoverVerdict.REFUSED,
                reason=(
                    f"signature {work_id} was signed outside this task's run, "
                    "so it is stored in another shard than the task; sign the "
                    "work inside the task (then it is stored next to it)"
                ),
            )
        reply = await self._call(
            "HANDOVER",
            [
                keys.signature(task_id),
                keys.signature(work_id),
                keys.index(Index.DUE, shard),
                keys.index(Index.LEASES, shard),
                keys.due_messages(shard),
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
                keys.index_of(Index.OWED, task_id),
                keys.index_of(Index.LEASES, task_id),
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


def _record_keys(ids: list[str]) -> list[str]:
    return list(map(keys.signature, ids))


def _unknown(described: Any) -> bool:
    """Whether a swarm script described an item as ``{'?'}``: not known."""
    return (
        isinstance(described, list | tuple)
        and len(described) == 1
        and text(described[0]) == "?"
    )


_REMOVED_FROM = (Index.DUE, Index.OWED, Index.LEASES, Index.ROOTS)
"""The indexes a removed signature leaves, in :data:`scripts.REMOVE`'s order."""


_ALLOWED = {
    "pause": "Only pending or active signatures can be paused.",
    "resume": "Only suspended (paused) signatures can be resumed.",
    "stop": "Only pending, active or suspended signatures can be stopped.",
}
