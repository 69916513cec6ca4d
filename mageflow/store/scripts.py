"""The Lua scripts behind every signature state transition.

Each transition is one script, so it is checked and applied in one atomic
server-side step: two workers can never both see ``pending`` and both move it
to ``active``. Scripts reply with a small tuple whose first element is a
*verdict* word; :mod:`mageflow.store.signatures` turns those into Python.

A signature is a hash (see :mod:`mageflow.store.keys`). Fields:

``v``         schema version; a hash without it is not a mageflow record
``kind``      ``task``, ``chain`` or ``swarm``
``task``      the task name (``task`` kind only)
``kwargs``    bound inputs, JSON
``ids``       task identifiers, JSON
``ok``/``err``  success / error callback ids, JSON lists
``status``    see :class:`mageflow.SignatureStatus`
``lease``     the dispatch that holds the activation (a retry of the same
              dispatch may take it again; any other dispatch is a duplicate)
``msg``       the message of a delivery that arrived while suspended
``held``      the outcome status of a run that finished while suspended
``outcome``   the result (``done``) or error payload (``failed``), JSON
``sent``      ``1`` once the outcome's callbacks were dispatched
``paused_from`` the status ``pause`` moved away from
"""

from __future__ import annotations

from mageflow.store import keys

ACTIVATE = """
local key = KEYS[1]
local kind = redis.call('TYPE', key)['ok']
if kind == 'none' then return {'missing', ''} end
if kind ~= 'hash' then return {'corrupt', 'a ' .. kind .. ' value'} end
local v, status = unpack(redis.call('HMGET', key, 'v', 'status'))
if not v or not status then return {'corrupt', 'a hash without v/status'} end
if status == 'pending' then
  redis.call('HSET', key, 'status', 'active', 'lease', ARGV[1], 'started', ARGV[3])
  return {'run', redis.call('HGETALL', key)}
end
if status == 'active' then
  if redis.call('HGET', key, 'lease') == ARGV[1] then
    return {'run', redis.call('HGETALL', key)}
  end
  return {'duplicate', status}
end
if status == 'suspended' then
  local held, from, lease =
    unpack(redis.call('HMGET', key, 'held', 'paused_from', 'lease'))
  -- Paused mid-run, the run holding it is still going: another dispatch is a
  -- duplicate, not a delivery to keep. Only that run's own retry (its attempt
  -- died) is recorded, to run again on resume.
  if held or (from == 'active' and lease ~= ARGV[1]) then
    return {'duplicate', status}
  end
  redis.call('HSETNX', key, 'msg', ARGV[2])
  return {'suspended', status}
end
if status == 'done' or status == 'failed' then
  return {'finished', redis.call('HGETALL', key)}
end
return {'canceled', status}
"""
"""KEYS: signature. ARGV: lease, message JSON, now.

``run`` (with the record) when this delivery may run the function; otherwise
why not: ``duplicate``, ``suspended`` (the message was recorded for resume),
``finished`` (with the record, so lost callbacks can be re-sent),
``canceled``, ``missing`` or ``corrupt``."""

_TARGETS = """
local function targets(first)
  local out = {}
  for i = first, #KEYS do
    out[#out + 1] = redis.call('HMGET', KEYS[i], 'v', 'kind', 'task', 'kwargs', 'rv')
  end
  return out
end
"""

FINISH = (
    _TARGETS
    + """
local key = KEYS[1]
local status, lease = unpack(redis.call('HMGET', key, 'status', 'lease'))
if not status then return {'missing', ''} end
if lease ~= ARGV[1] then return {'lost', status} end
if status == 'active' then
  local sent = '0'
  if #KEYS == 1 and ARGV[6] == '0' then sent = '1' end
  redis.call('HSET', key, 'status', ARGV[2], 'outcome', ARGV[3],
             'finished', ARGV[5], 'sent', sent)
  redis.call('PEXPIRE', key, ARGV[4])
  return {'fire', targets(2)}
end
if status == 'suspended' then
  redis.call('HSET', key, 'held', ARGV[2], 'outcome', ARGV[3], 'finished', ARGV[5])
  return {'held', status}
end
if status == 'done' or status == 'failed' then return {'finished', status} end
return {'dropped', status}
"""
)
"""KEYS: signature, then the callbacks of this outcome. ARGV: lease, outcome
status (``done``/``failed``), outcome JSON, done TTL in ms, now, ``1`` if
the signature has a container (its hook must run before ``sent``).

``fire`` with each callback's ``v, kind, task, kwargs, rv``; ``held`` when the
signature was paused meanwhile (resume fires); ``finished`` when an earlier
delivery already finished it; ``dropped`` when it was stopped; ``lost`` when
another dispatch holds it."""

TARGETS = (
    _TARGETS
    + """
return targets(1)
"""
)
"""KEYS: callbacks. Their ``v, kind, task, kwargs, rv``, for re-sending."""

MARK_SENT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'sent', '1')
  return 1
end
return 0
"""
"""KEYS: signature. Record that the outcome's callbacks were dispatched."""

PAUSE = """
local key = KEYS[1]
local status, kind = unpack(redis.call('HMGET', key, 'status', 'kind'))
if not status then return {'missing', '', ''} end
if status == 'pending' or status == 'active' then
  redis.call('HSET', key, 'status', 'suspended', 'paused_from', status)
  return {'ok', status, kind}
end
if status == 'suspended' then return {'ok', status, kind} end
return {'illegal', status, kind}
"""
"""KEYS: signature. ``ok`` with the previous status and the kind, or
``illegal``."""

RESUME = """
local key = KEYS[1]
local status, kind = unpack(redis.call('HMGET', key, 'status', 'kind'))
if not status then return {'missing', '', ''} end
if status ~= 'suspended' then return {'illegal', status, kind} end
local held, msg, from = unpack(redis.call('HMGET', key, 'held', 'msg', 'paused_from'))
redis.call('HDEL', key, 'held', 'msg', 'paused_from')
if held then
  redis.call('HSET', key, 'status', held, 'sent', '0')
  redis.call('PEXPIRE', key, ARGV[1])
  return {'fire', redis.call('HGETALL', key), kind}
end
if msg then
  redis.call('HSET', key, 'status', 'pending')
  redis.call('HDEL', key, 'lease')
  return {'redispatch', msg, kind}
end
if from == 'active' then
  redis.call('HSET', key, 'status', 'active')
  return {'running', '', kind}
end
redis.call('HSET', key, 'status', 'pending')
return {'pending', '', kind}
"""
"""KEYS: signature. ARGV: done TTL in ms.

``fire`` (with the record) when the run finished while paused; ``redispatch``
with the recorded message; ``running`` when the paused run is still going;
``pending`` when nothing had arrived; ``illegal`` from any other status.
Every reply ends with the signature's kind."""

STOP = """
local key = KEYS[1]
local status, kind = unpack(redis.call('HMGET', key, 'status', 'kind'))
if not status then return {'missing', '', ''} end
if status == 'pending' or status == 'active' or status == 'suspended' then
  redis.call('HSET', key, 'status', ARGV[2])
  redis.call('HDEL', key, 'msg', 'held')
  redis.call('PEXPIRE', key, ARGV[1])
  return {'ok', status, kind}
end
if status == ARGV[2] then return {'ok', status, kind} end
return {'illegal', status, kind}
"""
"""KEYS: signature. ARGV: done TTL in ms, the final status (``canceled`` for
stop, ``interrupted`` when a container cuts its children short)."""

REMOVE = """
local prefix = ARGV[1]
local seen = {}
local queue = {ARGV[2]}
local removed = 0
local lists = {'ok', 'err', 'items'}
while #queue > 0 do
  local id = table.remove(queue)
  if not seen[id] then
    seen[id] = true
    local key = prefix .. 'sig:' .. id
    if redis.call('TYPE', key)['ok'] == 'hash' then
      for _, field in ipairs(lists) do
        local raw = redis.call('HGET', key, field)
        if raw then
          local ok, ids = pcall(cjson.decode, raw)
          if ok and type(ids) == 'table' then
            for _, child in ipairs(ids) do
              if type(child) == 'string' then queue[#queue + 1] = child end
            end
          end
        end
      end
      local items = prefix .. 'swarm:' .. id .. ':items'
      for _, child in ipairs(redis.call('LRANGE', items, 0, -1)) do
        queue[#queue + 1] = child
      end
      local swarm = prefix .. 'swarm:' .. id
      removed = removed + redis.call('DEL', key, swarm .. ':queue', swarm .. ':results',
        swarm .. ':items', swarm .. ':running', swarm .. ':next')
    end
  end
end
return removed
"""
"""ARGV: key prefix (``mageflow:``), root id. Deletes the signature, its
callbacks and its children, transitively; returns how many keys went. It walks
ids it reads, so it does not declare its keys: like all of mageflow it assumes
one Redis server, not a cluster."""


# --- swarms ---------------------------------------------------------------------
# The cap, the queue and the per-position results of a swarm live next to each
# other, so starting an item and counting it are one atomic step.

_SWARM = """
local SIG = '@SIG@'
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
local function unstarted(queue, running)
  -- What a failing swarm interrupts: the items running, then those queued.
  local ids = redis.call('SMEMBERS', running)
  for _, id in ipairs(redis.call('LRANGE', queue, 0, -1)) do ids[#ids + 1] = id end
  return ids
end
local function reply(verdict, sw, started)
  local described = {}
  for i, id in ipairs(started) do
    described[i] = redis.call('HMGET', SIG .. id, 'v', 'kind', 'task', 'kwargs', 'rv')
  end
  return {verdict, started, redis.call('HGET', sw, 'input') or '{}', described}
end
""".replace("@SIG@", keys.signature(""))
"""Shared by the swarm scripts. ``fill`` starts queued items while slots are
free; ``reply`` answers ``{verdict, started ids, swarm input, the started
items' v/kind/task/kwargs/rv}`` so the caller can trigger them at once. It
reads the started items by id, so, like :data:`REMOVE`, it assumes one
Redis server rather than a cluster."""

SWARM_START = (
    _SWARM
    + """
local sw, queue, running = KEYS[1], KEYS[2], KEYS[3]
local status = redis.call('HGET', sw, 'status')
if not status then return {'missing', {}, '{}', {}} end
if status == 'suspended' then
  redis.call('HSETNX', sw, 'msg', ARGV[1])
  return {'suspended', {}, '{}', {}}
end
if status == 'pending' then
  redis.call('HSET', sw, 'status', 'active', 'lease', ARGV[2], 'input', ARGV[1],
             'started', ARGV[3])
elseif status ~= 'active' then
  return {'noop', {}, '{}', {}}
end
local started = fill(sw, queue, running)
if complete(sw) then return reply('complete', sw, started) end
return reply('ok', sw, started)
"""
)
"""KEYS: swarm, queue, running. ARGV: input JSON, lease, now. Start, or refill
after a resume (an active swarm keeps its first input)."""

SWARM_ADD = (
    _SWARM
    + """
local sw, items, queue, running = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local status, closed, n, maxt =
  unpack(redis.call('HMGET', sw, 'status', 'closed', 'n', 'maxt'))
if not status then return {'missing', {}, '{}', {}} end
if closed == '1' then return {'closed', {}, '{}', {}} end
local count = #KEYS - 4
n = tonumber(n)
if tonumber(maxt) > 0 and n + count > tonumber(maxt) then
  return {'full', {}, maxt, {}}
end
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
if status ~= 'active' then return {'queued', {}, '{}', {}} end
return reply('ok', sw, fill(sw, queue, running))
"""
)
"""KEYS: swarm, items, queue, running, then the new items. ARGV: TTL ms,
then the new item ids. ``closed``/``full`` refuse the whole batch."""

SWARM_ITEM_DONE = (
    _SWARM
    + """
local sw, queue, running = KEYS[1], KEYS[2], KEYS[3]
local results, nexts, item = KEYS[4], KEYS[5], KEYS[6]
local pos = redis.call('HGET', item, 'pos')
if not pos then return {'unknown', {}, '{}', {}} end
if redis.call('HSETNX', results, pos, ARGV[3]) == 0 then
  -- A replay: repeat what the first finish decided, never decide again.
  if redis.call('HGET', sw, 'stopping') == '1' then
    return {'fail', unstarted(queue, running), '{}', {}}
  end
  local again = {}
  local successor = redis.call('HGET', nexts, pos)
  if successor then again = {successor} end
  if complete(sw) then return reply('complete', sw, again) end
  return reply('ok', sw, again)
end
redis.call('PEXPIRE', results, ARGV[4])
redis.call('SREM', running, ARGV[1])
redis.call('HINCRBY', sw, 'running', -1)
redis.call('HINCRBY', sw, 'nfin', 1)
if ARGV[2] == 'failed' then
  local nfail = redis.call('HINCRBY', sw, 'nfail', 1)
  local stopn = tonumber(redis.call('HGET', sw, 'stopn'))
  if stopn > 0 and nfail >= stopn then
    redis.call('HSET', sw, 'stopping', '1')
    return {'fail', unstarted(queue, running), '{}', {}}
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
if complete(sw) then return reply('complete', sw, started) end
return reply('ok', sw, started)
"""
)
"""KEYS: swarm, queue, running, results, next, the item. ARGV: item id,
outcome status, outcome JSON, TTL ms. The outcome is recorded once per
position; ``fail`` when the failure threshold is reached (with the items
still running or queued, to interrupt), ``complete`` when the last item
finished."""

SWARM_CLOSE = (
    _SWARM
    + """
local sw = KEYS[1]
local status = redis.call('HGET', sw, 'status')
if not status then return {'missing', {}, '{}', {}} end
redis.call('HSET', sw, 'closed', '1')
if status == 'active' and complete(sw) then return {'complete', {}, '{}', {}} end
return {'ok', {}, '{}', {}}
"""
)
"""KEYS: swarm. Mark it closed; ``complete`` if nothing is left to run."""
