"""Swarms: many signatures in parallel, under a concurrency cap kept in Redis.

The cap holds across every worker because the decision to start an item is
made inside one Lua script, next to the counter it checks. Per item the cost
is constant: an item that finishes records its outcome at its position,
frees its slot and takes the next queued item in one script; nothing walks
the swarm. Only completion reads all results once, to hand the success
callbacks the list **in the order the items were added**.

Keys: the swarm's hash, plus ``items`` (ids in order), ``queue`` (waiting
for a slot), ``running`` (a set), ``results`` (position -> outcome) and
``next`` (position -> the item its finish started, so a replayed finish
starts the same one again instead of a second).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mageflow.callbacks import TaskError
from mageflow.containers import CONTAINER_LEASE
from mageflow.errors import InvalidTransitionError, SignatureNotFoundError
from mageflow.launch import jsonable
from mageflow.launch import start as start_targets
from mageflow.signature import SignatureStatus, SwarmSignature, TaskSignature
from mageflow.store import keys
from mageflow.store.signatures import CallbackTarget, dumps, encode

if TYPE_CHECKING:
    from mageflow.client import CallbackSpec, HatchetMageflow, TaskRef

logger = logging.getLogger("mageflow")

_FILL = """
local function fill(sw, queue, running)
  local maxc, count, stopping =
    unpack(redis.call('HMGET', sw, 'maxc', 'running', 'stopping'))
  local started = {}
  if stopping == '1' then return started end
  local free = tonumber(maxc) - tonumber(count)
  while free > 0 do
    local id = redis.call('LPOP', queue)
    if not id then break end
    redis.call('SADD', running, id)
    started[#started + 1] = id
    free = free - 1
  end
  redis.call('HINCRBY', sw, 'running', #started)
  return started
end
local function complete(sw)
  local closed, n, nfin, stopping =
    unpack(redis.call('HMGET', sw, 'closed', 'n', 'nfin', 'stopping'))
  return closed == '1' and n == nfin and stopping ~= '1'
end
"""

START = (
    _FILL
    + """
local sw, queue, running = KEYS[1], KEYS[2], KEYS[3]
local status = redis.call('HGET', sw, 'status')
if not status then return {'missing', {}, ''} end
if status == 'suspended' then
  redis.call('HSETNX', sw, 'msg', ARGV[1])
  return {'suspended', {}, ''}
end
if status == 'pending' then
  redis.call('HSET', sw, 'status', 'active', 'lease', ARGV[2], 'input', ARGV[1])
elseif status ~= 'active' then
  return {'noop', {}, ''}
end
local started = fill(sw, queue, running)
if complete(sw) then return {'complete', started, ''} end
return {'ok', started, redis.call('HGET', sw, 'input')}
"""
)
"""KEYS: swarm, queue, running. ARGV: input JSON, lease. Start (or refill)."""

ADD = (
    _FILL
    + """
local sw, items, queue, running = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local status, closed, n, maxt =
  unpack(redis.call('HMGET', sw, 'status', 'closed', 'n', 'maxt'))
if not status then return {'missing', {}, ''} end
if closed == '1' then return {'closed', {}, n} end
local count = #KEYS - 4
n = tonumber(n)
if tonumber(maxt) > 0 and n + count > tonumber(maxt) then return {'full', {}, maxt} end
for i = 1, count do
  redis.call('HSET', KEYS[i + 4], 'pos', n + i - 1)
  redis.call('RPUSH', items, ARGV[i + 1])
  redis.call('RPUSH', queue, ARGV[i + 1])
end
n = n + count
redis.call('HSET', sw, 'n', n)
if tonumber(maxt) > 0 and n >= tonumber(maxt) then
  redis.call('HSET', sw, 'closed', '1')
end
for _, key in ipairs({items, queue}) do redis.call('PEXPIRE', key, ARGV[1]) end
if status ~= 'active' then return {'queued', {}, ''} end
return {'ok', fill(sw, queue, running), redis.call('HGET', sw, 'input')}
"""
)
"""KEYS: swarm, items, queue, running, then the new items. ARGV: TTL ms,
then the new item ids."""

ITEM_DONE = (
    _FILL
    + """
local sw, queue, running = KEYS[1], KEYS[2], KEYS[3]
local results, nexts, item = KEYS[4], KEYS[5], KEYS[6]
local pos = redis.call('HGET', item, 'pos')
if not pos then return {'unknown', {}, ''} end
if redis.call('HSETNX', results, pos, ARGV[3]) == 0 then
  local again = redis.call('HGET', nexts, pos)
  if again then return {'dup', {again}, redis.call('HGET', sw, 'input')} end
  return {'dup', {}, ''}
end
redis.call('PEXPIRE', results, ARGV[4])
redis.call('SREM', running, ARGV[1])
redis.call('HINCRBY', sw, 'running', -1)
redis.call('HINCRBY', sw, 'nfin', 1)
if ARGV[2] == 'failed' then
  local nfail = redis.call('HINCRBY', sw, 'nfail', 1)
  local stopn = tonumber(redis.call('HGET', sw, 'stopn'))
  if stopn > 0 and nfail == stopn then
    redis.call('HSET', sw, 'stopping', '1')
    return {'fail', redis.call('SMEMBERS', running), ''}
  end
end
local started = {}
if redis.call('HGET', sw, 'status') == 'active' then
  started = fill(sw, queue, running)
  if started[1] then
    redis.call('HSET', nexts, pos, started[1])
    redis.call('PEXPIRE', nexts, ARGV[4])
  end
end
if complete(sw) then return {'complete', started, redis.call('HGET', sw, 'input')} end
return {'ok', started, redis.call('HGET', sw, 'input')}
"""
)
"""KEYS: swarm, queue, running, results, next, the item. ARGV: item id,
outcome status, outcome JSON, TTL ms. Exactly once per item position."""

CLOSE = (
    _FILL
    + """
local sw = KEYS[1]
local status = redis.call('HGET', sw, 'status')
if not status then return {'missing', {}, ''} end
redis.call('HSET', sw, 'closed', '1')
if status == 'active' and complete(sw) then return {'complete', {}, ''} end
return {'ok', {}, ''}
"""
)
"""KEYS: swarm. Mark it closed; ``complete`` if nothing is left to run."""


def _keys(swarm_id: str) -> tuple[str, str, str, str, str]:
    base = f"{keys.PREFIX}:swarm:{swarm_id}"
    return (
        keys.signature(swarm_id),
        keys.swarm_queue(swarm_id),
        f"{base}:running",
        keys.swarm_results(swarm_id),
        f"{base}:next",
    )


async def _script(
    client: HatchetMageflow, text: str, keys_: Sequence[str], args: Sequence[Any]
) -> tuple[str, list[str], str]:
    script = client.redis.register_script(text)
    verdict, ids, extra = await script(keys=list(keys_), args=list(args))
    return _text(verdict), [_text(i) for i in ids], _text(extra)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def create(
    client: HatchetMageflow,
    tasks: Sequence[TaskSignature[Any] | TaskRef] | None,
    *,
    task_name: str | None,
    max_concurrency: int,
    stop_after_n_failures: int | None,
    max_tasks: int | None,
    success: CallbackSpec | None,
    error: CallbackSpec | None,
    kwargs: Mapping[str, Any],
) -> SwarmSignature[Any]:
    """Store a swarm (see :meth:`HatchetMageflow.swarm`) and add ``tasks``."""
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}.")
    swarm: SwarmSignature[Any] = SwarmSignature(
        task_name=task_name or "swarm",
        kwargs=jsonable(dict(kwargs)),
        max_concurrency=max_concurrency,
        stop_after_n_failures=stop_after_n_failures,
        max_tasks=max_tasks,
    )
    if task_name is not None:
        swarm.return_field = client._resolve_task(task_name)[1]
    records: list[tuple[str, Mapping[str, str]]] = []
    swarm.success_callbacks = client._callback_ids(success, records)
    swarm.error_callbacks = client._callback_ids(error, records)
    records.append((swarm.id, encode(swarm)))
    await client.store.create(records)
    swarm._client = client
    if tasks:
        await add(client, swarm, tasks)
    return swarm


async def add(
    client: HatchetMageflow,
    swarm: SwarmSignature[Any],
    tasks: TaskSignature[Any] | TaskRef | Sequence[TaskSignature[Any] | TaskRef],
) -> list[str]:
    """Add items; start those that fit under the cap if the swarm runs."""
    items_in = (
        list(tasks)
        if isinstance(tasks, Sequence) and not isinstance(tasks, str)
        else [tasks]
    )
    items: list[TaskSignature[Any]] = []
    records: list[tuple[str, Mapping[str, str]]] = []
    for task in items_in:
        if isinstance(task, TaskSignature):
            task.container_id = swarm.id
            records.append((task.id, {"container": swarm.id}))
        else:
            task = client._new_signature(task, dict(swarm.kwargs), None)
            task.container_id = swarm.id
            records.append((task.id, encode(task)))
        items.append(task)
    if swarm.return_field is None and items:
        swarm.return_field = items[0].return_field
    await client.store.create(records)
    sw, queue, running, _, _ = _keys(swarm.id)
    verdict, started, input_json = await _script(
        client,
        ADD,
        [
            sw,
            keys.swarm_items(swarm.id),
            queue,
            running,
            *(keys.signature(i.id) for i in items),
        ],
        [client.store.ttl.active_ms, *(i.id for i in items)],
    )
    if verdict == "missing":
        raise SignatureNotFoundError(f"swarm {swarm.id} does not exist.")
    if verdict == "closed":
        raise InvalidTransitionError(
            f"cannot add to swarm {swarm.id}: it is closed (close() was called "
            "or max_tasks was reached). Create another swarm for more work."
        )
    if verdict == "full":
        raise InvalidTransitionError(
            f"cannot add {len(items)} item(s) to swarm {swarm.id}: it takes at "
            f"most max_tasks={input_json} items."
        )
    await _start_items(client, started, input_json)
    return [item.id for item in items]


async def _start_items(
    client: HatchetMageflow, ids: Sequence[str], input_json: str
) -> None:
    if not ids:
        return
    message = json.loads(input_json or "{}")
    targets = await client.store.targets(ids)
    await start_targets(client, [(t, message) for t in targets])


async def start(
    client: HatchetMageflow, swarm_id: str, message: Mapping[str, Any]
) -> None:
    """Start the swarm with ``message``: fill the free slots from the queue."""
    sw, queue, running, _, _ = _keys(swarm_id)
    verdict, started, _ = await _script(
        client, START, [sw, queue, running], [dumps(dict(message)), CONTAINER_LEASE]
    )
    if verdict == "missing":
        raise SignatureNotFoundError(f"swarm {swarm_id} does not exist.")
    await _start_items(client, started, dumps(dict(message)))
    if verdict == "complete":
        await _complete(client, swarm_id)


async def refill(client: HatchetMageflow, swarm_id: str) -> None:
    """After a resume: start what the free slots allow."""
    record = await client.store.load_record(swarm_id)
    if record is None:
        return
    await start(client, swarm_id, json.loads(record.get("input") or "{}"))


async def close(client: HatchetMageflow, swarm_id: str) -> None:
    verdict, _, _ = await _script(client, CLOSE, [keys.signature(swarm_id)], [])
    if verdict == "missing":
        raise SignatureNotFoundError(f"swarm {swarm_id} does not exist.")
    if verdict == "complete":
        await _complete(client, swarm_id)


async def item_ids(client: HatchetMageflow, swarm_id: str) -> list[str]:
    raw = await client.redis.lrange(keys.swarm_items(swarm_id), 0, -1)
    return [x.decode() if isinstance(x, bytes) else str(x) for x in raw]


async def item_finished(
    client: HatchetMageflow,
    swarm: SwarmSignature[Any],
    item: TaskSignature[Any],
    status: SignatureStatus,
    value: Any,
) -> None:
    """Record the item's outcome, free its slot, start the next; maybe settle."""
    sw, queue, running, results, nexts = _keys(swarm.id)
    verdict, ids, input_json = await _script(
        client,
        ITEM_DONE,
        [sw, queue, running, results, nexts, keys.signature(item.id)],
        [item.id, status.value, dumps(value), client.store.ttl.active_ms],
    )
    if verdict == "fail":
        await _fail(client, swarm, ids, value)
        return
    await _start_items(client, ids, input_json)
    if verdict == "complete":
        await _complete(client, swarm.id)


async def _complete(client: HatchetMageflow, swarm_id: str) -> None:
    from mageflow.signed_run import settle

    record = await client.store.load_record(swarm_id)
    if record is None:
        return
    n = int(record.get("n") or 0)
    raw = (
        await client.redis.hmget(
            keys.swarm_results(swarm_id), [str(i) for i in range(n)]
        )
        if n
        else []
    )
    results = [json.loads(x) if x is not None else None for x in raw]
    swarm = await client.load_signature(swarm_id)
    assert swarm is not None
    await settle(client, swarm, CONTAINER_LEASE, SignatureStatus.DONE, results)


async def _fail(
    client: HatchetMageflow,
    swarm: SwarmSignature[Any],
    running: Sequence[str],
    value: Any,
) -> None:
    from mageflow.signed_run import settle

    for item_id in running:
        try:
            await client.store.stop(item_id, SignatureStatus.INTERRUPTED)
        except (InvalidTransitionError, SignatureNotFoundError):
            continue
    error = TaskError(
        error_type="SwarmFailed",
        message=(
            f"swarm {swarm.id} reached stop_after_n_failures="
            f"{swarm.stop_after_n_failures}; last failure: "
            f"{value.get('error_type') if isinstance(value, dict) else value}: "
            f"{value.get('message') if isinstance(value, dict) else ''}"
        ),
        signature_id=swarm.id,
        task_name=swarm.task_name,
        original_message={},
    )
    current = await client.load_signature(swarm.id)
    assert current is not None
    await settle(client, current, CONTAINER_LEASE, SignatureStatus.FAILED, error)


__all__ = ["CallbackTarget", "add", "close", "create", "item_finished", "start"]
