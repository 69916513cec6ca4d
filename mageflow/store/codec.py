"""Records as stored: a signature to hash fields and back, validated.

A record is a flat hash of strings and JSON. Every record carries ``v`` (the
schema version) and ``kind``; the fields every kind shares are written by
:func:`encode` and read by :func:`decode`, and each kind adds its own
through its :class:`RecordFormat` in :data:`FORMATS`. Anything that is not a
mageflow record raises :class:`~mageflow.CorruptSignatureError`; nothing read
is ever executed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from mageflow.errors import CorruptSignatureError
from mageflow.signature import (
    CallbackTemplate,
    ChainSignature,
    SignatureStatus,
    SwarmSignature,
    TaskSignature,
)
from mageflow.store import keys
from mageflow.store.replies import BadTarget, CallbackTarget


def dumps(value: Any) -> str:
    """Compact JSON, the only format mageflow stores."""
    return json.dumps(value, separators=(",", ":"), default=str)


def text(value: Any) -> str:
    """A reply element as ``str`` (clients may or may not decode responses)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def fields_of(flat: Sequence[Any]) -> dict[str, str]:
    """``HGETALL`` as returned inside a Lua reply: a flat key/value list."""
    items = [text(x) for x in flat]
    return dict(zip(items[::2], items[1::2], strict=True))


@dataclasses.dataclass(frozen=True)
class RecordFormat:
    """How one kind of signature adds its own fields to the shared ones."""

    cls: type[TaskSignature]
    encode: Callable[[Any], dict[str, str]]
    """The kind's fields of a new record."""
    decode: Callable[[Mapping[str, str]], dict[str, Any]]
    """The kind's model values, read from a record."""


def _no_fields(signature: TaskSignature) -> dict[str, str]:
    return {}


def _no_values(record: Mapping[str, str]) -> dict[str, Any]:
    return {}


def _chain_fields(chain: ChainSignature) -> dict[str, str]:
    return {"items": dumps(chain.steps)}


def _chain_values(record: Mapping[str, str]) -> dict[str, Any]:
    return {"steps": json.loads(record["items"])}


def _swarm_fields(swarm: SwarmSignature) -> dict[str, str]:
    # The counters are the swarm scripts' own; see scripts._SWARM.
    return {
        "maxc": str(swarm.max_concurrency),
        "stopn": str(swarm.stop_after_n_failures or 0),
        "maxt": str(swarm.max_tasks or 0),
        "closed": "1" if swarm.closed else "0",
        "n": "0",
        "running": "0",
        "nfin": "0",
        "nfail": "0",
        "iok": dumps([t.model_dump() for t in swarm.item_success]),
        "ierr": dumps([t.model_dump() for t in swarm.item_error]),
    }


def _templates(raw: str | None) -> list[CallbackTemplate]:
    return [CallbackTemplate.model_validate(t) for t in json.loads(raw or "[]")]


def _swarm_values(record: Mapping[str, str]) -> dict[str, Any]:
    return {
        "max_concurrency": int(record["maxc"]),
        "stop_after_n_failures": int(record["stopn"]) or None,
        "max_tasks": int(record["maxt"]) or None,
        "closed": record["closed"] == "1",
        "size": int(record["n"]),
        "finished": int(record["nfin"]),
        "failed": int(record["nfail"]),
        "item_success": _templates(record.get("iok")),
        "item_error": _templates(record.get("ierr")),
    }


FORMATS: Mapping[str, RecordFormat] = {
    fmt.cls.kind: fmt
    for fmt in (
        RecordFormat(TaskSignature, _no_fields, _no_values),
        RecordFormat(ChainSignature, _chain_fields, _chain_values),
        RecordFormat(SwarmSignature, _swarm_fields, _swarm_values),
    )
}
"""Every kind of record, by its ``kind`` field."""


def encode(signature: TaskSignature) -> dict[str, str]:
    """The hash fields of a new record."""
    return {
        "v": keys.SCHEMA_VERSION,
        "kind": signature.kind,
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
        **FORMATS[signature.kind].encode(signature),
    }


TASK_FIELDS = (
    "v",
    "kind",
    "task",
    "kwargs",
    "ids",
    "ok",
    "err",
    "status",
    "created",
    "container",
    "crole",
    "rv",
    "outcome",
    "gen",
    "retried",
    "cdepth",
)
"""The fields :func:`decode` reads from a task's record: all a run needs."""


def decode(signature_id: str, record: Mapping[str, str]) -> TaskSignature:
    """Validate a record into a signature of its kind; refuse anything else."""
    key = keys.signature(signature_id)
    if record.get("v") != keys.SCHEMA_VERSION:
        raise CorruptSignatureError(
            f"{key} is not a mageflow signature record (schema field "
            f"v={record.get('v')!r}, expected {keys.SCHEMA_VERSION!r}). Remove "
            "the key, or point mageflow at a Redis database that only it "
            "writes to.",
            key=key,
            signature_id=signature_id,
        )
    try:
        kind = record.get("kind", TaskSignature.kind)
        fmt = FORMATS.get(kind)
        if fmt is None:
            raise ValueError(f"unknown kind {kind!r}")
        return fmt.cls(
            **fmt.decode(record),
            id=signature_id,
            task_name=record["task"],
            kwargs=json.loads(record["kwargs"]),
            task_identifiers=json.loads(record["ids"]),
            success_callbacks=json.loads(record["ok"]),
            error_callbacks=json.loads(record["err"]),
            status=SignatureStatus(record["status"]),
            created_at=datetime.fromisoformat(record["created"]),
            container_id=record.get("container") or None,
            container_role=record.get("crole") or None,
            return_field=record.get("rv") or None,
            outcome=json.loads(record["outcome"]) if "outcome" in record else None,
            generation=int(record.get("gen") or 0),
            continuation_id=record.get("cont") or None,
            continuation_depth=int(record.get("cdepth") or 0),
            root_swarm_id=record.get("rootsw") or None,
            retried_at=(
                datetime.fromisoformat(record["retried"])
                if record.get("retried")
                else None
            ),
        )
    except (KeyError, ValueError, TypeError, ValidationError) as exc:
        raise CorruptSignatureError(
            f"{key} holds a damaged signature record ({type(exc).__name__}: "
            f"{exc}). It was not run; remove the key with mageflow.remove() or "
            "by hand.",
            key=key,
            signature_id=signature_id,
        ) from exc


def decode_target(
    signature_id: str, reply: Sequence[Any]
) -> CallbackTarget | BadTarget | None:
    """A script's description of a signature to start (``v, kind, task,
    kwargs, rv, status, imsg``); ``None`` when the record is gone (removed or
    expired); a :class:`BadTarget` when it is not a mageflow record."""
    key = keys.signature(signature_id)
    if not reply:
        return None
    if text(reply[0]) == "!":
        return BadTarget(signature_id, key, text(reply[1]))
    version, kind, task, kwargs, return_field, status, joined = (
        # A missing field is nil in Lua: None from Redis, false in JSON.
        None if x is None or x is False else text(x)
        for x in [*reply[:7], *[None] * (7 - len(reply))]
    )
    if version != keys.SCHEMA_VERSION or kind is None or kwargs is None:
        return BadTarget(signature_id, key, "not a valid mageflow record")
    try:
        bound = json.loads(kwargs)
    except ValueError as exc:
        return BadTarget(signature_id, key, f"damaged kwargs ({exc})")
    if not isinstance(bound, dict):
        return BadTarget(signature_id, key, "kwargs are not a JSON object")
    message = None
    if joined is not None:
        try:
            message = json.loads(joined)
        except ValueError as exc:
            return BadTarget(signature_id, key, f"damaged start message ({exc})")
        if not isinstance(message, dict):
            return BadTarget(signature_id, key, "start message is not a JSON object")
    return CallbackTarget(
        signature_id,
        kind,
        task or "",
        bound,
        return_field or None,
        status or "",
        message,
    )


def loads_outcome(key: str, raw: str | None) -> Any:
    """A stored outcome (JSON); :class:`CorruptSignatureError` naming the key
    when it is not JSON."""
    try:
        return json.loads(raw or "null")
    except ValueError as exc:
        raise CorruptSignatureError(
            f"{key} holds a damaged outcome ({exc}); it was not used.", key=key
        ) from exc


@dataclasses.dataclass(frozen=True)
class Write:
    """A record to write in one batch (see ``scripts.CREATE``).

    ``claim=False``: a new record, kept as it is if it exists already.
    ``claim=True``: fields of a stored signature, which must be pending and
    in no other container.
    """

    id: str
    fields: Mapping[str, str]
    claim: bool = False
