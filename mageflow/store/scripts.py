"""The Lua scripts behind every signature state transition.

Each transition is one script, so it is checked and applied in one atomic
server-side step: two workers can never both see ``pending`` and both move it
to ``active``. Every script first checks that the record it changes is a
mageflow record (schema ``v``, a known ``kind`` and ``status``) and changes
nothing otherwise. Scripts reply with a small tuple whose first element is a
*verdict* word; :mod:`mageflow.store.signatures` turns those into Python.

**Debts.** A transition that owes downstream work records the debt in the
same script, in a sorted set of its shard that recovery scans
(:mod:`mageflow.store.keys`): ``due`` for signatures decided to start, with
the message in ``dmsg`` (cleared by their activation), ``owed`` for
finished signatures whose container was not told yet (cleared by
``MARK_SENT``; a callback's start is owed in ``due`` by the finish itself),
and ``leases`` for the lease of every running signature (renewed by its
holder, cleared by its finish).

**Slots.** Every key a script touches comes in ``KEYS``, and all of one
call's keys are of one shard (one hash slot on a cluster). A start owed to
a signature of another shard (a callback or a chain step signed on its own
and linked later, a swarm's item) is recorded in the *owing* shard's
``due``, without reading the other record: the start is sent, and the
other shard's activation meets it; an entry that outlives it is settled by
recovery, which relays it to the signature's own shard (``MARK_DUE``).
Work that must change records in two shards is two scripts, the first of
which leaves the debt that makes the second happen.

A signature is a hash (see :mod:`mageflow.store.keys`). Fields:

``v``         schema version; a hash without it is not a mageflow record
``kind``      ``task``, ``chain`` or ``swarm``
``task``      the task name
``kwargs``    bound inputs, JSON
``ids``       task identifiers, JSON
``ok``/``err``  success / error callback ids, JSON lists
``status``    see :class:`mageflow.SignatureStatus`
``holder``    the token of the attempt that holds it (``container`` for a
              chain or swarm); only the holder may record an outcome
``tries``     how many attempts were admitted
``input``     the message the current attempt was delivered with
``run``       the Hatchet run id of the current attempt
``msg``       the message of a delivery that arrived while suspended
``held``      the outcome status of a run that finished while suspended
``outcome``   the result (``done``) or error payload, JSON
``cont``      the signature a task continued with (``mageflow.Continue``)
``cdepth``    how many continuations a signature descends from
``rootsw``    a root task's swarm of children
``body``      a root task's body result, JSON, once its body returned
``imsg``      the message a root task's child was started with
``sent``      ``1`` once the outcome's callbacks were dispatched
``paused_from`` the status ``pause`` moved away from
``gen``       how many times it was retried (absent: never)
``retried``   when it was last retried (ISO)
"""

from __future__ import annotations

from mageflow.callbacks import DEFAULT_RESULT_FIELD
from mageflow.signature import SignatureStatus
from mageflow.store import keys
from mageflow.store.codec import FORMATS, TASK_FIELDS

SHEBANG = "#!lua\n"
"""Put before every script when it is loaded. A script that declares itself
so (Redis 7) may not touch keys of two slots on a cluster: a script that
strayed across slots fails loudly there instead of working by chance."""

_PRELUDE = (
    """
local SCHEMA = '@SCHEMA@'
local KINDS = {@KINDS@}
local STATUSES = {@STATUSES@}
local RESULT_FIELD = '@RESULT@'
local DONE = '@DONE@'
-- ended(id, status): tell whoever waits for this signature that it ended.
local function ended(id, status)
  redis.call('PUBLISH', DONE .. id, status)
end
-- check(key): the record's status and kind, or nil, nil and why it is not one.
local function check(key)
  local t = redis.call('TYPE', key)['ok']
  if t == 'none' then return nil, nil, 'missing' end
  if t ~= 'hash' then return nil, nil, 'a ' .. t .. ' value' end
  local v, kind, status = unpack(redis.call('HMGET', key, 'v', 'kind', 'status'))
  if v ~= SCHEMA then return nil, nil, 'a hash with schema v=' .. tostring(v) end
  if not KINDS[kind] then return nil, nil, 'unknown kind ' .. tostring(kind) end
  if not STATUSES[status] then
    return nil, nil, 'unknown status ' .. tostring(status)
  end
  return status, kind, nil
end
local function problem_reply(problem)
  if problem == 'missing' then return {'missing'} end
  return {'corrupt', problem}
end
local function final(status)
  return status == 'done' or status == 'failed' or status == 'canceled'
    or status == 'interrupted'
end
-- describe(key): what starting the signature needs (v, kind, task, kwargs,
-- rv, status, and the message a root child was joined with); {} when it is
-- gone; {'!', why} when it is not a record.
local function describe(key)
  local status, kind, problem = check(key)
  if problem == 'missing' then return {} end
  if problem then return {'!', problem} end
  return redis.call('HMGET', key, 'v', 'kind', 'task', 'kwargs', 'rv', 'status',
                    'imsg')
end
-- owe_start(due, dmsgs, id, msg, at): record, in this shard's index, that
-- signature id is owed a start with msg. Only the index is written, never
-- the record, which may live in another shard: its activation clears the
-- entry when it is this shard's, recovery when it is not.
local function owe_start(due, dmsgs, id, msg, at)
  redis.call('ZADD', due, at, id)
  redis.call('HSET', dmsgs, id, msg)
end
-- settled_start(due, dmsgs, id): the owed start of id is met (or void).
local function settled_start(due, dmsgs, id)
  redis.call('ZREM', due, id)
  redis.call('HDEL', dmsgs, id)
end
""".replace("@SCHEMA@", keys.SCHEMA_VERSION)
    .replace("@KINDS@", ", ".join(f"{kind}=true" for kind in FORMATS))
    .replace("@STATUSES@", ", ".join(f"{s.value}=true" for s in SignatureStatus))
    .replace("@RESULT@", DEFAULT_RESULT_FIELD)
    .replace("@DONE@", keys.done_channel(""))
)
"""Shared by every script: the record check and the debt helpers."""

CONTAINER_HOLDER = "container"
"""The holder of a chain or swarm: a container has no run of its own."""

ACTIVATE = (
    _PRELUDE
    + """
local RUN_FIELDS = {@RUN_FIELDS@}
-- whole(key): the record as one JSON object, which the client decodes in C
-- (a flat reply of 30 elements costs it more than the script does).
local function whole(key)
  local flat, record = redis.call('HGETALL', key), {}
  for i = 1, #flat, 2 do record[flat[i]] = flat[i + 1] end
  return cjson.encode(record)
end
local key, due, leases, dmsgs = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local token, message, now, task, want_kind, lease_ms, run, id, now_iso =
  ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], tonumber(ARGV[6]),
  ARGV[7], ARGV[8], ARGV[9]
local status, kind, problem = check(key)
if problem == 'missing' then
  settled_start(due, dmsgs, id)
  return {'missing', ''}
end
if problem then return {'corrupt', problem} end
local stored_task = redis.call('HGET', key, 'task')
-- A name signed without the client's namespace names the same task.
local same_task = task == '' or stored_task == task
  or (stored_task and ARGV[12] .. stored_task == task)
if kind ~= want_kind or not same_task then
  return {'mismatch', kind .. ' ' .. tostring(stored_task)}
end
settled_start(due, dmsgs, id)
local holder = redis.call('HGET', key, 'holder')
local function live()
  if not holder or holder == '' then return false end
  if holder == 'container' then return true end
  local ends = redis.call('ZSCORE', leases, id)
  return ends ~= false and ends ~= nil and tonumber(ends) > now
end
local function admit()
  redis.call('HSET', key, 'status', 'active', 'holder', token, 'input', message,
             'started', now_iso, 'run', run)
  redis.call('HINCRBY', key, 'tries', 1)
  if lease_ms > 0 then redis.call('ZADD', leases, now + lease_ms, id) end
  -- A chain's first step is owed from the moment the chain starts (here,
  -- in the chain's shard: the step's record is not read, it may live in
  -- another; its activation, or recovery, settles the debt).
  if ARGV[10] ~= '' then
    owe_start(due, dmsgs, ARGV[10], message, now + tonumber(ARGV[11]))
  end
  if kind ~= 'task' then return {'run', whole(key)} end
  -- A task's run needs its signature, not the record's bookkeeping (the
  -- input it was just sent, its holder, tries...): a third of the reply.
  local values = redis.call('HMGET', key, unpack(RUN_FIELDS))
  local record = {}
  for i, name in ipairs(RUN_FIELDS) do
    if values[i] then record[name] = values[i] end
  end
  return {'run', cjson.encode(record)}
end
if status == 'pending' then return admit() end
if status == 'active' then
  if holder == token or not live() then return admit() end
  return {'duplicate', status}
end
if status == 'suspended' then
  local held, from = unpack(redis.call('HMGET', key, 'held', 'paused_from'))
  -- Paused mid-run, the attempt holding it is still going: another delivery
  -- is a duplicate. Otherwise the delivery is kept, to run on resume.
  if held or (from == 'active' and live() and holder ~= token) then
    return {'duplicate', status}
  end
  redis.call('HSETNX', key, 'msg', message)
  return {'suspended', status}
end
if status == 'done' or status == 'failed' then
  -- A holder that just finished it may still be sending its callbacks: a
  -- delivery then leaves the completion to it ('1'), else completes it.
  local completing = '0'
  if redis.call('HGET', key, 'sent') == '0' and live() then completing = '1' end
  return {'finished', whole(key), completing}
end
return {'canceled', status}
"""
)
ACTIVATE = ACTIVATE.replace(
    "@RUN_FIELDS@", ", ".join(f"'{name}'" for name in TASK_FIELDS)
)
"""KEYS: signature, due, leases, the shard's owed-start messages. ARGV:
holder token, message JSON, now (ms), task name (``''``: any), the kind
expected, lease ms (0: no lease, for a container), Hatchet run id,
signature id, now (ISO), for a chain the first step's id and the grace ms
(its start is owed, atomically, with the chain's, in the chain's shard;
else ``''`` and 0), and the client's Hatchet namespace.

The record comes as one JSON object. ``run`` (with the record; for a task
only the fields its signature is made
of, :data:`~mageflow.store.codec.TASK_FIELDS`) when this attempt holds the
signature now: it was
pending, or held by nobody alive (its holder's lease ran out or was
released), or already held by this very token. Otherwise why not:
``duplicate`` (a live holder has it), ``suspended`` (the message was
recorded for resume), ``finished`` (with the record, so lost callbacks can
be re-sent, and ``1`` when its live holder is still sending them),
``canceled``, ``mismatch`` (the record is another task's or kind's),
``missing`` or ``corrupt``."""

_FINISH = """
-- keep_delivery(key, message): a paused signature keeps the delivery it
-- was owed, to run on resume (what ACTIVATE records for one that arrives).
local function keep_delivery(key, message)
  local held, from = unpack(redis.call('HMGET', key, 'held', 'paused_from'))
  if not held and from ~= 'active' then redis.call('HSETNX', key, 'msg', message) end
end
-- finish(...): record an outcome by its holder; owe each callback its start.
-- callbacks: the keys of this shard's callbacks, with their ids; remote:
-- (id, return field) of callbacks in other shards, whose starts are owed
-- here, in this shard's index, without reading their records.
-- alone == '1': nothing else is owed (no container to tell), so the
-- completion is done here: sent, and the holder's lease let go.
local function finish(key, owed, leases, due, dmsgs, callbacks, callback_ids,
                      remote, token, outcome_status, outcome, done_ms, now_iso,
                      alone, now, grace, id)
  local status, kind, problem = check(key)
  if problem then return problem_reply(problem) end
  if redis.call('HGET', key, 'holder') ~= token then return {'lost', status} end
  if status == 'active' then
    redis.call('HSET', key, 'status', outcome_status, 'outcome', outcome,
               'finished', now_iso, 'sent', alone)
    redis.call('PEXPIRE', key, done_ms)
    ended(id, outcome_status)
    -- The holder keeps its lease until its completion is sent (MARK_SENT).
    if alone == '0' then
      redis.call('ZADD', owed, now + grace, id)
    else
      redis.call('ZREM', leases, id)
      redis.call('ZREM', owed, id)  -- a settle a close or a root owed
    end
    local described = {}
    for i, callback in ipairs(callbacks) do
      local d = describe(callback)
      described[i] = d
      if d[1] ~= nil and d[1] ~= '!' then
        local field = d[5]
        if not field or field == '' then field = RESULT_FIELD end
        local message = '{' .. cjson.encode(field) .. ':' .. outcome .. '}'
        if d[6] == 'pending' then
          owe_start(due, dmsgs, callback_ids[i], message, now + grace)
        elseif d[6] == 'suspended' then
          keep_delivery(callback, message)
        end
      end
    end
    for i = 1, #remote, 2 do
      local message = '{' .. cjson.encode(remote[i + 1]) .. ':' .. outcome .. '}'
      owe_start(due, dmsgs, remote[i], message, now + grace)
    end
    return {'fire', described}
  end
  if status == 'suspended' then
    redis.call('HSET', key, 'held', outcome_status, 'outcome', outcome,
               'finished', now_iso)
    redis.call('ZREM', leases, id)
    return {'held', status}
  end
  if status == 'done' or status == 'failed' then return {'finished', status} end
  redis.call('ZREM', leases, id)
  return {'dropped', status}
end
"""
"""Shared by :data:`FINISH` and :data:`FINISH_ITEM`: recording an outcome."""

FINISH = (
    _PRELUDE
    + _FINISH
    + """
local callbacks, callback_ids, remote = {}, {}, {}
for i = 6, #KEYS do
  callbacks[#callbacks + 1] = KEYS[i]
  callback_ids[#callback_ids + 1] = ARGV[10 + i - 5]
end
for i = 11 + #callbacks, #ARGV do remote[#remote + 1] = ARGV[i] end
return cjson.encode(finish(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], callbacks,
  callback_ids, remote, ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6],
  tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]))
"""
)
"""KEYS: signature, owed, leases, due, the shard's owed-start messages,
then the callbacks of this outcome in the signature's shard. The reply is
JSON (decoded by the client in one call). ARGV: holder token, outcome
status, outcome JSON, done TTL ms, now (ISO), ``1`` if nothing but the
callbacks' starts is owed (no container needs to hear of it), now (ms),
grace ms, signature id, ``''`` (unused), then the ids of the callbacks in
KEYS, then (id, return field) of each callback in another shard.

Each callback's start is owed in the same step (``due``, in this shard
whatever shard the callback lives in), and a paused callback of this shard
keeps its delivery for its resume (one of another shard is kept by its
activation, or by recovery), so a worker that dies after this loses
nothing. ``fire`` with each callback described (see
:data:`TARGETS`) when the holder recorded the outcome; ``held`` when it was
paused meanwhile (resume fires it); ``finished`` when it was already done
or failed (a repeat); ``dropped`` when it was stopped; ``lost`` when another
attempt holds it now."""

TARGETS = (
    _PRELUDE
    + """
local out = {}
for i = 1, #KEYS do out[i] = describe(KEYS[i]) end
return out
"""
)
"""KEYS: signatures. What starting each needs (see :data:`FINISH`)."""

MARK_SENT = (
    _PRELUDE
    + """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'sent', '1')
  return 1
end
return 0
"""
)
"""KEYS: signature, owed, leases. ARGV: signature id. The outcome's callbacks
were dispatched and its container told: the completion is no longer owed,
and its holder lets go."""

RELEASE = (
    _PRELUDE
    + """
local status = check(KEYS[1])
if status ~= 'active' and status ~= 'suspended' then return 0 end
if redis.call('HGET', KEYS[1], 'holder') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'holder', '')
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
"""
)
"""KEYS: signature, leases. ARGV: holder token, signature id. The attempt
ended without an outcome (Hatchet will retry it): the next attempt may take
the signature at once instead of waiting for the lease to run out."""

TAKE_OVER = (
    _PRELUDE
    + """
local status = check(KEYS[1])
if status ~= 'active' then return nil end
if (redis.call('HGET', KEYS[1], 'holder') or '') ~= ARGV[1] then return nil end
redis.call('HSET', KEYS[1], 'holder', '')
redis.call('ZREM', KEYS[2], ARGV[2])
return tonumber(redis.call('HGET', KEYS[1], 'tries') or '0')
"""
)
"""KEYS: signature, leases. ARGV: the holder found gone, signature id.
Frees the signature for a new attempt if that holder still has it (nobody
came back or took it first); answers how many attempts it had, or nil."""

RENEW = """
local held = {}
local ends = tonumber(ARGV[1])
for i = 2, #KEYS do
  local id, token = ARGV[2 * i - 2], ARGV[2 * i - 1]
  if redis.call('HGET', KEYS[i], 'holder') == token
     and redis.call('HGET', KEYS[i], 'status') == 'active' then
    redis.call('ZADD', KEYS[1], ends, id)
    held[#held + 1] = id
  end
end
return held
"""
"""KEYS: leases, then the held signatures. ARGV: the new end (ms), then
(id, token) pairs. Extends the leases this process still holds; answers
the ids it still holds."""

PAUSE = (
    _PRELUDE
    + """
local function pause(key)
  local status, kind, problem = check(key)
  if problem then return problem_reply(problem) end
  if status == 'pending' or status == 'active' then
    redis.call('HSET', key, 'status', 'suspended', 'paused_from', status)
    return {'ok', status, kind}
  end
  if status == 'suspended' then return {'ok', status, kind} end
  return {'illegal', status, kind}
end
local out = {}
for i = 1, #KEYS do
  out[i] = pause(KEYS[i])
  -- The first is what was asked for: if it cannot, nothing changes.
  if i == 1 and ARGV[1] == '1' and out[1][1] ~= 'ok' then return out end
end
return out
"""
)
"""KEYS: signatures of one shard, the one asked for first, then everything
below it (:meth:`~mageflow.store.SignatureStore.subtree`). ARGV: ``1`` when
the first is the one asked for (else each is on its own). Per signature ``ok`` with
the previous status and the kind, or ``illegal``, ``missing`` or
``corrupt``; when the first is not ``ok``, only its reply, and nothing
changed. One step however many there are."""

RESUME = (
    _PRELUDE
    + """
local owed, due, dmsgs = KEYS[1], KEYS[2], KEYS[3]
local done_ms, now, grace = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local function resume(key, id)
  local status, kind, problem = check(key)
  if problem then return problem_reply(problem) end
  if status ~= 'suspended' then return {'illegal', status, kind} end
  local held, msg, from = unpack(redis.call('HMGET', key, 'held', 'msg', 'paused_from'))
  redis.call('HDEL', key, 'held', 'msg', 'paused_from')
  if held then
    redis.call('HSET', key, 'status', held, 'sent', '0')
    redis.call('PEXPIRE', key, done_ms)
    redis.call('ZADD', owed, now + grace, id)
    ended(id, held)
    return {'fire', redis.call('HGETALL', key), kind}
  end
  if msg then
    redis.call('HSET', key, 'status', 'pending', 'holder', '')
    owe_start(due, dmsgs, id, msg, now + grace)
    return {'redispatch', msg, kind}
  end
  if from == 'active' then
    redis.call('HSET', key, 'status', 'active')
    return {'running', '', kind}
  end
  redis.call('HSET', key, 'status', 'pending')
  return {'pending', '', kind}
end
local out = {}
for i = 4, #KEYS do
  out[#out + 1] = resume(KEYS[i], ARGV[i + 1])
  local word = out[1][1]
  local stuck = word == 'illegal' or word == 'missing' or word == 'corrupt'
  if i == 4 and ARGV[4] == '1' and stuck then
    return out
  end
end
return out
"""
)
"""KEYS: owed, due, the shard's owed-start messages, then the signatures
(as :data:`PAUSE`, all of one shard). ARGV: done TTL ms, now (ms), grace
ms, ``1`` when the first is the one asked for, then their ids.

Per signature: ``fire`` (with the record) when the run finished while
paused (its completion is owed); ``redispatch`` with the recorded message
(its start is owed); ``running`` when the paused run is still going;
``pending`` when nothing had arrived; ``illegal`` from any other status.
Every reply ends with the signature's kind. When the first cannot resume,
only its reply, and nothing changed."""

STOP = (
    _PRELUDE
    + """
local leases, due, dmsgs, done_ms, final = KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2]
local AUX = @AUX@
local function stop(key, aux, id)
  local status, kind, problem = check(key)
  if problem then return problem_reply(problem) end
  local container, role, run =
    unpack(redis.call('HMGET', key, 'container', 'crole', 'run'))
  if status == 'pending' or status == 'active' or status == 'suspended' then
    redis.call('HSET', key, 'status', final)
    redis.call('HDEL', key, 'msg', 'held')
    -- A stopped swarm's items are stopped with it: every slot is given back.
    if kind == 'swarm' then redis.call('HSET', key, 'running', '0') end
    redis.call('PEXPIRE', key, done_ms)
    redis.call('ZREM', leases, id)
    local was_due = redis.call('ZREM', due, id)
    redis.call('HDEL', dmsgs, id)
    ended(id, final)
    for _, other in ipairs(aux) do
      if redis.call('EXISTS', other) == 1 then
        redis.call('PEXPIRE', other, done_ms)
      end
    end
    return {'ok', status, kind, container or '', role or '', run or '',
            tostring(was_due)}
  end
  if status == final then
    return {'ok', status, kind, container or '', role or '', run or '', '0'}
  end
  return {'illegal', status, kind, '', '', '', '0'}
end
local out, n = {}, 0
for i = 4, #KEYS, AUX + 1 do
  n = n + 1
  local aux = {}
  for j = 1, AUX do aux[j] = KEYS[i + j] end
  out[n] = stop(KEYS[i], aux, ARGV[3 + n])
  if n == 1 and ARGV[3] == '1' and out[1][1] ~= 'ok' then return out end
end
return out
"""
).replace("@AUX@", str(len(keys.swarm_aux(""))))
"""KEYS: leases, due, the shard's owed-start messages, then per signature
(as :data:`PAUSE`, all of one shard) its record and the keys that end with
it (a swarm's, :func:`~mageflow.store.keys.swarm_aux`). ARGV: done TTL ms, the final
status (``canceled`` for stop, ``interrupted`` when a container cuts its
children short), ``1`` when the first is the one asked for, then their ids.

Per signature ``ok`` with the status it left, its kind, container, role,
the Hatchet run id of its last attempt and whether a start of it was in
flight (a repeat of the same stop answers the same, so a container told
twice hears the same thing twice); ``illegal`` when it already ended
otherwise. When the first cannot stop, only its reply, and nothing
changed."""

TREE = (
    _PRELUDE
    + """
local out = {}
local LISTS = {'ok', 'err'}
for i = 1, #KEYS, 2 do
  local status, kind, problem = check(KEYS[i])
  local node = {''}
  local hash = redis.call('TYPE', KEYS[i])['ok'] == 'hash'
  if problem and problem ~= 'missing' and hash then
    node[1] = '!'  -- a hash, but not a record: removable, with nothing below
  end
  if not problem then
    node[1] = kind
    if kind == 'swarm' then
      for _, id in ipairs(redis.call('LRANGE', KEYS[i + 1], 0, -1)) do
        node[#node + 1] = id
      end
    elseif kind == 'task' then
      -- A task's own children: its root swarm, then what it continued with.
      for _, id in ipairs(redis.call('HMGET', KEYS[i], 'rootsw', 'cont')) do
        if id and id ~= '' then node[#node + 1] = id end
      end
    elseif kind == 'chain' then
      local raw = redis.call('HGET', KEYS[i], 'items') or '[]'
      local ok, steps = pcall(cjson.decode, raw)
      if ok and type(steps) == 'table' then
        for _, id in ipairs(steps) do
          if type(id) == 'string' then node[#node + 1] = id end
        end
      end
    end
    -- Removing follows the callbacks too.
    if ARGV[1] == '1' then
      for _, field in ipairs(LISTS) do
        local ok, ids = pcall(cjson.decode, redis.call('HGET', KEYS[i], field) or '[]')
        if ok and type(ids) == 'table' then
          for _, id in ipairs(ids) do
            if type(id) == 'string' then node[#node + 1] = id end
          end
        end
      end
    end
  end
  out[#out + 1] = node
end
return out
"""
)
"""KEYS: per signature (all of one shard), its record and its swarm's item
list. ARGV: ``1`` to list the callbacks too. Per signature ``{kind, child
ids...}`` (a chain's steps, a swarm's items, in order; a task's root swarm
and continuation; then its callbacks, if asked); ``{''}`` when it is gone
or not a hash, ``{'!'}`` for a hash that is not a record. Read only: one
level of a workflow per round trip, so
lifecycle steps cost a constant number of them whatever the size."""

REMOVE = """
local AUX, removed = tonumber(ARGV[1]), 0
local n = 0
for i = 6, #KEYS, AUX + 1 do
  n = n + 1
  local id = ARGV[1 + n]
  local doomed = {}
  for j = i, i + AUX do doomed[#doomed + 1] = KEYS[j] end
  removed = removed + redis.call('DEL', unpack(doomed))
  for k = 1, 4 do redis.call('ZREM', KEYS[k], id) end
  redis.call('HDEL', KEYS[5], id)
end
return removed
"""
"""KEYS: the shard's indexes (due, owed, leases, roots) and owed-start
messages, then per signature of that shard its record and its swarm keys
(:func:`~mageflow.store.keys.swarm_aux`). ARGV: how many swarm keys each
has, then the ids. Deletes them and their index entries; returns how many
keys went. Which signatures a removal reaches is read first, level by level
(:meth:`~mageflow.store.SignatureStore.remove`): this script only deletes
what it is given, in one shard."""

CREATE = (
    _PRELUDE
    + """
-- ARGV: TTL ms, then the batch as JSON: per key, [mode, {field: value}].
-- Modes: 'new' writes a record unless one exists (a repeat of the same
-- creation keeps the first); 'claim' changes fields of a stored signature
-- that must be pending and in no other container.
local ttl, dmsgs = ARGV[1], KEYS[1]
local batch = cjson.decode(ARGV[2])
local plan = {}
for i = 2, #KEYS do
  local mode, object = batch[i - 1][1], batch[i - 1][2]
  local fields = {}
  for name, value in pairs(object) do
    fields[#fields + 1] = name
    fields[#fields + 1] = value
  end
  plan[i] = {mode, fields}
  if mode == 'claim' then
    local status, kind, problem = check(KEYS[i])
    if problem then return {'refused', KEYS[i], problem} end
    local container = redis.call('HGET', KEYS[i], 'container')
    local wanted = object['container'] or ''
    if container and container ~= '' and container ~= wanted then
      return {'refused', KEYS[i], 'it already belongs to ' .. container}
    end
    if status ~= 'pending' and container ~= wanted then
      return {'refused', KEYS[i], 'it is ' .. status .. ', not pending'}
    end
    if container ~= wanted and redis.call('HEXISTS', dmsgs, batch[i - 1][3]) == 1 then
      return {'refused', KEYS[i], 'it was started already'}
    end
  end
end
if ARGV[3] == '1' then return {'ok', 0} end  -- checked only
local created = 0
for i = 2, #KEYS do
  local mode, fields = plan[i][1], plan[i][2]
  if mode == 'new' then
    if redis.call('EXISTS', KEYS[i]) == 0 then
      redis.call('HSET', KEYS[i], unpack(fields))
      redis.call('PEXPIRE', KEYS[i], ttl)
      created = created + 1
    end
  elseif #fields > 0 then
    redis.call('HSET', KEYS[i], unpack(fields))
  end
end
return {'ok', created}
"""
)
"""KEYS: the shard's owed-start messages, then the records (of that
shard). ARGV: TTL ms, then the batch as one JSON argument: per record,
``[mode, {field: value}, id]`` (mode ``new`` or ``claim``): one argument,
however many records, which the server decodes in C; ``1`` to check the
claims only and write nothing. All or nothing: ``refused`` (with the key
and why) writes nothing. A ``new``
record that exists is kept as it is, so signing is idempotent when ids are
derived (a retried task)."""

MARK_DUE = (
    _PRELUDE
    + """
local status, kind, problem = check(KEYS[1])
if problem then return problem_reply(problem) end
-- A start asked for from outside any workflow makes a root (also one that
-- is paused, or ran before): list it where the dashboard finds it, newest
-- first, bounded and no older than a record.
if ARGV[7] == '1' and (redis.call('HGET', KEYS[1], 'container') or '') == '' then
  local now, keep = tonumber(ARGV[4]), tonumber(ARGV[5])
  redis.call('ZADD', KEYS[3], now, ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - keep)
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[6]) - 1)
  redis.call('PEXPIRE', KEYS[3], math.floor(keep / 1000))
end
if status == 'suspended' and ARGV[8] == '1' then
  -- A start relayed from another shard, to a paused signature: kept for its
  -- resume, as a delivery that arrives while paused is.
  local held, from = unpack(redis.call('HMGET', KEYS[1], 'held', 'paused_from'))
  if not held and from ~= 'active' then
    redis.call('HSETNX', KEYS[1], 'msg', ARGV[2])
  end
  return {'skip', status}
end
if status ~= 'pending' then return {'skip', status} end
owe_start(KEYS[2], KEYS[4], ARGV[1], ARGV[2], tonumber(ARGV[3]))
return {'ok', status}
"""
)
"""KEYS: signature, due, roots, owed-start messages (all of its shard).
ARGV: id, message JSON, when it is overdue (ms), now (µs), how long a root
stays listed (µs: a record's whole life), how many roots are listed at
most, ``1`` to list it as a root, ``1`` to keep the message of a paused one.
Before a start is sent: if it is lost, recovery sends it again. A start
asked for by the user of a signature in no container is a workflow's root:
it is listed in ``roots`` in the same step, so listing costs no round trip.
Recovery also moves here a start owed in another shard (a relay), and then
a paused signature keeps the message for its resume."""

CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1],
                       'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids
"""
"""KEYS: an index. ARGV: now (ms), the new score, how many. Takes the
overdue entries and pushes them back to the new score in one step, so two
recoverers never work on the same entry at the same time."""


# --- swarms ---------------------------------------------------------------------
# The cap, the queue and the per-position results of a swarm live next to each
# other, so starting an item and counting it are one atomic step. A swarm's
# scripts never read or write its items' records: an item may live in another
# shard (it was signed on its own, then added). What starting a queued item
# needs is kept with the swarm (``starts``), and its position too.

_SWARM = (
    _PRELUDE
    + """
local COUNTERS = {'maxc', 'running', 'n', 'nfin', 'nfail', 'stopn', 'maxt'}
-- swarm(sw): the swarm's status, or nil and a problem reply.
local function swarm(sw)
  local status, kind, problem = check(sw)
  if problem then return nil, problem_reply(problem) end
  if kind ~= 'swarm' then return nil, {'corrupt', 'a ' .. kind .. ', not a swarm'} end
  local values = redis.call('HMGET', sw, unpack(COUNTERS))
  for i, name in ipairs(COUNTERS) do
    if not tonumber(values[i]) then
      return nil, {'corrupt', 'counter ' .. name .. '=' .. tostring(values[i])}
    end
  end
  return status, nil
end
-- fill: start queued items while slots are free; each start is owed, here.
-- Returns the started ids and, for each, what starting it needs ({'?'}
-- when the swarm does not know: the caller reads the item).
local function fill(sw, queue, running, due, dmsgs, starts, input, at, ttl)
  local maxc, count, stopping =
    unpack(redis.call('HMGET', sw, 'maxc', 'running', 'stopping'))
  local started, described = {}, {}
  if stopping == '1' then return started, described end
  local free = tonumber(maxc) - tonumber(count)
  while free > 0 do
    local id = redis.call('LPOP', queue)
    if not id then break end
    redis.call('SADD', running, id)
    local d, message = {'?'}, input
    local known = redis.call('HGET', starts, id)
    if known then
      redis.call('HDEL', starts, id)
      d = cjson.decode(known)
      -- A root task's child starts with the message it was started with.
      if d[7] then message = d[7] end
    end
    owe_start(due, dmsgs, id, message, at)
    started[#started + 1] = id
    described[#described + 1] = d
    free = free - 1
  end
  redis.call('HINCRBY', sw, 'running', #started)
  redis.call('PEXPIRE', running, ttl)
  return started, described
end
local function complete(sw)
  local closed, n, nfin, stopping =
    unpack(redis.call('HMGET', sw, 'closed', 'n', 'nfin', 'stopping'))
  return closed == '1' and n == nfin and stopping ~= '1'
end
-- ending: the swarm is finished; its keys end with its record.
local function ending(aux, done_ms)
  for _, key in ipairs(aux) do
    if redis.call('EXISTS', key) == 1 then redis.call('PEXPIRE', key, done_ms) end
  end
end
local function reply(verdict, sw, started, described)
  return {verdict, started, redis.call('HGET', sw, 'input') or '{}', described or {}}
end
"""
)
"""Shared by the swarm scripts. ``swarm`` checks the record and its
counters; ``fill`` starts queued items while slots are free (each start
owed until the item activates); ``reply`` answers ``{verdict, started ids,
swarm input, the started items described}`` so the caller can trigger them
at once (an item described ``{'?'}`` is read by the caller)."""

SWARM_START = (
    _SWARM
    + """
local sw, queue, running, due, dmsgs, starts =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local message, now_iso, ttl, id = ARGV[1], ARGV[2], ARGV[5], ARGV[6]
local at = tonumber(ARGV[3]) + tonumber(ARGV[4])
local status, bad = swarm(sw)
if bad then return bad end
settled_start(due, dmsgs, id)
if status == 'suspended' then
  redis.call('HSETNX', sw, 'msg', message)
  return {'suspended', {}, '{}', {}}
end
if status == 'pending' then
  redis.call('HSET', sw, 'status', 'active', 'holder', 'container', 'input', message,
             'started', now_iso)
  redis.call('HINCRBY', sw, 'tries', 1)
elseif status ~= 'active' then
  return {'noop', {}, '{}', {}}
end
local started, described =
  fill(sw, queue, running, due, dmsgs, starts, redis.call('HGET', sw, 'input'), at, ttl)
if complete(sw) then return reply('complete', sw, started, described) end
return reply('ok', sw, started, described)
"""
)
"""KEYS: swarm, queue, running, due, owed-start messages, starts. ARGV:
input JSON, now (ISO), now (ms), grace ms, TTL ms, swarm id. Start, or
refill after a resume (an active swarm keeps its first input)."""

SWARM_ADD = (
    _SWARM
    + """
local sw, items, queue, running, due, dmsgs, starts, positions =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local ttl, at, swarm_id = ARGV[1], tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[4]
local batch_token, close_after = ARGV[5], ARGV[6]
local status, bad = swarm(sw)
if bad then return bad end
-- Read the batch: per item, [id, mode, {field: value}, start]. Modes: 'new'
-- and 'claim' (a record of this shard, whose key comes next in KEYS), and
-- 'remote' (claimed in its own shard already; start is what starting it
-- needs).
local given, batch, mine, k = cjson.decode(ARGV[7]), {}, 0, 9
local join = ARGV[8] == '1'
for _, entry in ipairs(given) do
  local id, mode, object, start = entry[1], entry[2], entry[3], entry[4]
  local key = false
  if mode ~= 'remote' then
    key = KEYS[k]
    k = k + 1
  end
  local fields = {}
  for name, value in pairs(object) do
    fields[#fields + 1] = name
    fields[#fields + 1] = value
  end
  local here = redis.call('HEXISTS', positions, id) == 1
  if here then mine = mine + 1 end
  -- Joining a root: a child that joined before (a retried body starts the
  -- same signatures again) is in already, and is left as it is.
  if not (join and here) then batch[#batch + 1] = {key, id, mode, fields, start} end
end
if join and #batch == 0 then return {'queued', {}, '{}', {}} end
-- The same call again (a retry after a lost reply): it is in already.
if mine > 0 and mine == #batch and redis.call('HGET', sw, 'lastadd') == batch_token then
  return {'queued', {}, '{}', {}}
end
local closed, n, maxt, stopping =
  unpack(redis.call('HMGET', sw, 'closed', 'n', 'maxt', 'stopping'))
if final(status) or stopping == '1' then return {'closed', {}, status, {}} end
if closed == '1' then return {'closed', {}, 'closed', {}} end
local seen = {}
for _, item in ipairs(batch) do
  local key, id, mode = item[1], item[2], item[3]
  if seen[id] then return {'refused', {id}, 'it is in this batch twice', {}} end
  seen[id] = true
  if redis.call('HEXISTS', positions, id) == 1 then
    return {'refused', {id}, 'it was added to a swarm already', {}}
  end
  if mode == 'claim' then
    local item_status, _, problem = check(key)
    if problem then return {'refused', {id}, problem, {}} end
    local container = redis.call('HGET', key, 'container')
    if container and container ~= '' and container ~= swarm_id then
      return {'refused', {id}, 'it already belongs to ' .. container, {}}
    end
    if item_status ~= 'pending' then
      return {'refused', {id}, 'it is ' .. item_status .. ', not pending', {}}
    end
    if redis.call('HEXISTS', dmsgs, id) == 1 then
      return {'refused', {id}, 'it was started already', {}}
    end
  elseif mode == 'new' and redis.call('EXISTS', key) == 1 then
    return {'refused', {id}, 'a signature with this id exists already', {}}
  end
end
local count = #batch
n = tonumber(n)
if tonumber(maxt) > 0 and n + count > tonumber(maxt) then
  return {'full', {}, maxt, {}}
end
for i, item in ipairs(batch) do
  local key, id, mode, fields, start = item[1], item[2], item[3], item[4], item[5]
  if key then
    if #fields > 0 then redis.call('HSET', key, unpack(fields)) end
    if mode == 'new' then redis.call('PEXPIRE', key, ttl) end
    redis.call('HSET', key, 'container', swarm_id, 'crole', 'item')
    start = cjson.encode(redis.call('HMGET', key, 'v', 'kind', 'task', 'kwargs',
                                    'rv', 'status', 'imsg'))
  end
  redis.call('HSET', positions, id, n + i - 1)
  redis.call('HSET', starts, id, start)
  redis.call('RPUSH', items, id)
  redis.call('RPUSH', queue, id)
end
n = n + count
redis.call('HSET', sw, 'n', n, 'lastadd', batch_token)
if close_after == '1' or (tonumber(maxt) > 0 and n >= tonumber(maxt)) then
  redis.call('HSET', sw, 'closed', '1')
end
for _, key in ipairs({items, queue, starts, positions}) do
  redis.call('PEXPIRE', key, ttl)
end
if status ~= 'active' then return {'queued', {}, '{}', {}} end
local input = redis.call('HGET', sw, 'input')
local started, described = fill(sw, queue, running, due, dmsgs, starts, input, at, ttl)
return reply('ok', sw, started, described)
"""
)
"""KEYS: swarm, items, queue, running, due, owed-start messages, starts,
positions, then the items of this shard. ARGV: TTL ms, now (ms), grace ms,
swarm id, the call's token (a repeat of the same call is applied once),
``1`` to close the swarm with this batch, then the items as one JSON
argument: per item ``[id, mode, {field: value}, start]`` (mode ``new`` or
``claim`` for an item of this shard, whose key is among KEYS; ``remote``
for one of another shard, claimed there first (:data:`CLAIM_ITEMS`), with
what starting it needs), then ``1`` to join (a root task's start: an item
that is in this swarm already is skipped, not refused). The items are
written here, with the checks: all or nothing. ``closed`` (the swarm takes
no more: closed, ending or ended), ``full`` (max_tasks), ``refused`` (an
item that is not pending, belongs elsewhere, was added before, or appears
twice) write nothing."""

CLAIM_ITEMS = (
    _PRELUDE
    + """
-- First check all, then write: all or nothing.
local dmsgs, swarm_id, given = KEYS[1], ARGV[1], cjson.decode(ARGV[2])
for i = 2, #KEYS do
  local id = given[i - 1][1]
  local status, _, problem = check(KEYS[i])
  if problem then return {'refused', {id}, problem} end
  local container = redis.call('HGET', KEYS[i], 'container')
  if container and container ~= '' and container ~= swarm_id then
    return {'refused', {id}, 'it already belongs to ' .. container}
  end
  if status ~= 'pending' then
    return {'refused', {id}, 'it is ' .. status .. ', not pending'}
  end
  if redis.call('HEXISTS', dmsgs, id) == 1 then
    return {'refused', {id}, 'it was started already'}
  end
end
local out = {}
for i = 2, #KEYS do
  local fields = {'container', swarm_id, 'crole', 'item'}
  for name, value in pairs(given[i - 1][2]) do
    fields[#fields + 1] = name
    fields[#fields + 1] = value
  end
  redis.call('HSET', KEYS[i], unpack(fields))
  out[#out + 1] = cjson.encode(redis.call('HMGET', KEYS[i], 'v', 'kind', 'task',
                                          'kwargs', 'rv', 'status', 'imsg'))
end
return {'ok', out}
"""
)
"""KEYS: the owed-start messages of one shard, then items of that shard
that a swarm of another shard takes. ARGV: the swarm's id, then per item
``[id, {field: value}]`` as one JSON argument. The first of the two steps
that add a signature to a swarm in another slot: here each item is checked
(pending, in no other container, not started) and made the swarm's, all
or nothing; ``ok`` with what starting each needs, for :data:`SWARM_ADD`.
``refused`` (with the id and why) writes nothing. A repeat finds them the
swarm's already and answers the same."""

UNCLAIM_ITEMS = (
    _PRELUDE
    + """
for i = 1, #KEYS do
  if redis.call('HGET', KEYS[i], 'container') == ARGV[1] then
    redis.call('HDEL', KEYS[i], 'container', 'crole')
  end
end
return 1
"""
)
"""KEYS: items of one shard. ARGV: the swarm's id. Gives back items that
:data:`CLAIM_ITEMS` took for a swarm that then refused them."""

_ITEM_DONE = """
-- item_done(...): an item of swarm sw ended so; record it at its position,
-- give its slot back, and start what fits (see SWARM_ITEM_DONE).
local function item_done(sw, queue, running, results, nexts, items, due, dmsgs,
                         starts, positions, item_id, outcome_status, outcome,
                         ttl, at, done_ms)
  local aux = {items, queue, running, results, nexts, starts, positions}
  local status, bad = swarm(sw)
  if bad then return bad end
  local pos = redis.call('HGET', positions, item_id)
  if not pos then return {'unknown', {}, '{}', {}} end
  local function unstarted()
    -- What a failing swarm interrupts: the items running, then those queued.
    local ids = redis.call('SMEMBERS', running)
    for _, id in ipairs(redis.call('LRANGE', queue, 0, -1)) do ids[#ids + 1] = id end
    return ids
  end
  if redis.call('HSETNX', results, pos, outcome) == 0 then
    -- A replay: repeat what the first finish decided, never decide again.
    if redis.call('HGET', sw, 'stopping') == '1' then
      if redis.call('HGET', sw, 'failpos') == pos then
        return {'fail', unstarted(), '{}', {}}
      end
      return {'noop', {}, '{}', {}}
    end
    local again, described = {}, {}
    local successor = redis.call('HGET', nexts, pos)
    if successor then again, described = {successor}, {{'?'}} end
    if complete(sw) then return reply('complete', sw, again, described) end
    return reply('ok', sw, again, described)
  end
  redis.call('PEXPIRE', results, ttl)
  redis.call('HINCRBY', sw, 'nfin', 1)
  local stopping = redis.call('HGET', sw, 'stopping')
  -- A swarm that is ending gave every slot back at once (below, or by stop).
  if stopping == '1' or final(status) then return {'noop', {}, '{}', {}} end
  -- The item gives its slot back, or leaves the queue if it never got one.
  if redis.call('SREM', running, item_id) == 1 then
    redis.call('HINCRBY', sw, 'running', -1)
  else
    redis.call('LREM', queue, 0, item_id)
    redis.call('HDEL', starts, item_id)
  end
  if outcome_status == 'failed' then
    local nfail = redis.call('HINCRBY', sw, 'nfail', 1)
    local stopn = tonumber(redis.call('HGET', sw, 'stopn'))
    if stopn > 0 and nfail >= stopn then
      -- Ending: the items still running or queued are interrupted, and give
      -- their slots back here, all at once.
      local victims = unstarted()
      redis.call('HSET', sw, 'stopping', '1', 'failpos', pos, 'running', '0')
      ending(aux, done_ms)
      return {'fail', victims, '{}', {}}
    end
  end
  local started, described = {}, {}
  if status == 'active' then
    started, described = fill(sw, queue, running, due, dmsgs, starts,
                              redis.call('HGET', sw, 'input'), at, ttl)
    if started[1] then
      redis.call('HSET', nexts, pos, started[1])
      redis.call('PEXPIRE', nexts, ttl)
    end
  end
  if complete(sw) then
    ending(aux, done_ms)
    return reply('complete', sw, started, described)
  end
  return reply('ok', sw, started, described)
end
"""
"""Shared by :data:`SWARM_ITEM_DONE` and :data:`FINISH_ITEM`."""

SWARM_ITEM_DONE = (
    _SWARM
    + _ITEM_DONE
    + """
return item_done(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7],
  KEYS[8], KEYS[9], KEYS[10], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
  tonumber(ARGV[5]) + tonumber(ARGV[6]), ARGV[7])
"""
)
"""KEYS: swarm, queue, running, results, next, items, due, owed-start
messages, starts, positions. ARGV: item id, outcome status, outcome JSON,
TTL ms, now (ms), grace ms, done TTL ms. The outcome is recorded once per
position, and the item gives its slot back exactly once (or leaves the
queue). ``fail`` when the failure threshold is reached, once (with the
items still running or queued, to interrupt); ``complete`` when the last
item finished; ``noop`` when the swarm is ending or ended. The item's
record is not read: it may live in another shard."""


FINISH_ITEM = (
    _SWARM
    + _FINISH
    + _ITEM_DONE
    + """
-- A swarm item's outcome and its swarm's bookkeeping, in one step.
local key, owed, leases, due, dmsgs = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, outcome_status, outcome, now, grace =
  ARGV[9], ARGV[2], ARGV[3], tonumber(ARGV[7]), tonumber(ARGV[8])
local callbacks, callback_ids, remote = {}, {}, {}
for i = 14, #KEYS do
  callbacks[#callbacks + 1] = KEYS[i]
  callback_ids[#callback_ids + 1] = ARGV[11 + i - 14]
end
for i = 11 + #callbacks, #ARGV do remote[#remote + 1] = ARGV[i] end
local done = finish(key, owed, leases, due, dmsgs, callbacks, callback_ids, remote,
  ARGV[1], outcome_status, outcome, ARGV[4], ARGV[5], '0', now, grace, id)
if done[1] ~= 'fire' then return cjson.encode({done, {}, '0'}) end
local step = item_done(KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], due,
  dmsgs, KEYS[12], KEYS[13], id, outcome_status, outcome, ARGV[10], now + grace,
  ARGV[4])
local told = step[1] == 'ok' or step[1] == 'noop' or step[1] == 'unknown'
if told then
  -- The swarm has heard of it, and the callbacks' starts are owed: the
  -- item's completion is done. A swarm that now ends (or fails) still
  -- needs settling: that stays owed, for the caller and recovery.
  redis.call('HSET', key, 'sent', '1')
  redis.call('ZREM', owed, id)
  redis.call('ZREM', leases, id)
  return cjson.encode({done, step, '1'})
end
return cjson.encode({done, step, '0'})
"""
)
"""KEYS: the item, owed, leases, due, owed-start messages, swarm, queue,
running, results, next, items, starts, positions, then the item's callbacks
of this outcome in its shard. ARGV: as :data:`FINISH` (its ``alone`` is
ignored, and its 10th is the TTL ms), then the callback ids, then (id,
return field) of each callback in another shard. The item and its swarm
share a shard (else the item finishes by :data:`FINISH` and its swarm
hears by :data:`SWARM_ITEM_DONE`, two steps).

:data:`FINISH`, then, if it recorded the outcome, :data:`SWARM_ITEM_DONE`'s
step, in one atomic step: an item costs one round trip to start and one to
end. Replies ``{finish reply, swarm step reply (empty if not taken), sent}``
where ``sent`` is ``1`` when nothing more is owed."""

SWARM_CLOSE = (
    _SWARM
    + """
local sw = KEYS[1]
local aux = {KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]}
local status, bad = swarm(sw)
if bad then return bad end
redis.call('HSET', sw, 'closed', '1')
if status == 'active' and complete(sw) then
  ending(aux, ARGV[1])
  -- Its settle is owed, to the caller now and to recovery if it dies first.
  redis.call('ZADD', KEYS[9], tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[4])
  return {'complete', {}, '{}', {}}
end
return {'ok', {}, '{}', {}}
"""
)
"""KEYS: swarm, then its other keys, then owed. ARGV: done TTL ms, now
(ms), grace ms, swarm id. Mark it closed; ``complete`` if nothing is left
to run (then its settle is owed, in ``owed``)."""

RETRY = (
    _SWARM
    + """
local due, owed, leases, dmsgs = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, grace, ttl, now_iso = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
-- A task that continued or was a root runs again whole: it forgets the
-- work it handed over to (its new run signs new work).
local CLEAR = {'outcome', 'finished', 'sent', 'held', 'msg', 'paused_from',
               'run', 'stopping', 'failpos', 'cont', 'rootsw', 'body'}
-- First check every record is as the plan saw it: all or nothing.
local ops, k, a = {}, 5, 6
while a <= #ARGV do
  if ARGV[a] == 'r' then
    local id, expect, new, msg = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
    local status, _, problem = check(KEYS[k])
    if problem then return {'changed', id, problem} end
    if status ~= expect then return {'changed', id, status} end
    ops[#ops + 1] = {'r', KEYS[k], id, new, msg}
    k, a = k + 1, a + 5
  else
    local id, fill_now, n = ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
    local redo = {}
    for j = 1, n do redo[j] = {ARGV[a + 2 + 2 * j], ARGV[a + 3 + 2 * j]} end
    ops[#ops + 1] = {'s', {KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3],
                           KEYS[k + 4], KEYS[k + 5], KEYS[k + 6]}, id, fill_now, redo}
    k, a = k + 7, a + 4 + 2 * n
  end
end
if ARGV[5] == '1' then return {'ok', {}} end  -- checked only
local owed_starts = {}
for _, op in ipairs(ops) do
  if op[1] == 'r' then
    local key, id, new, msg = op[2], op[3], op[4], op[5]
    redis.call('HDEL', key, unpack(CLEAR))
    if new == 'active' then
      -- A container that continues: it keeps its input.
      redis.call('HSET', key, 'status', 'active', 'holder', 'container')
    else
      redis.call('HDEL', key, 'input', 'started')
      redis.call('HSET', key, 'status', 'pending', 'holder', '')
    end
    redis.call('HSET', key, 'retried', now_iso)
    redis.call('HINCRBY', key, 'gen', 1)
    redis.call('PEXPIRE', key, ttl)
    redis.call('ZREM', owed, id)
    redis.call('ZREM', leases, id)
    settled_start(due, dmsgs, id)
    if msg ~= '' then
      owe_start(due, dmsgs, id, msg, now + grace)
      owed_starts[#owed_starts + 1] = {id, msg}
    end
  else
    local sw, queue, running, results, nexts, items, starts = unpack(op[2])
    redis.call('DEL', queue, running, nexts)
    for _, redo in ipairs(op[5]) do
      redis.call('HDEL', results, redo[1])
      redis.call('RPUSH', queue, redo[2])
    end
    redis.call('HSET', sw, 'running', '0', 'nfail', '0',
               'nfin', redis.call('HLEN', results))
    for _, aux in ipairs({queue, results, items}) do
      if redis.call('EXISTS', aux) == 1 then redis.call('PEXPIRE', aux, ttl) end
    end
    if op[4] == '1' then
      local input = redis.call('HGET', sw, 'input') or '{}'
      local started =
        fill(sw, queue, running, due, dmsgs, starts, input, now + grace, ttl)
      for _, id in ipairs(started) do
        owed_starts[#owed_starts + 1] = {id, input}
      end
    end
  end
end
return {'ok', owed_starts}
"""
)
"""KEYS: due, owed, leases, owed-start messages (of one shard), then each
operation's keys (of that shard). ARGV: now (ms), grace ms, active TTL ms,
now (ISO), ``1`` to check only (write nothing), then the operations of a
retry plan:

* ``r`` id, expected status, new status (``pending``, or ``active`` for a
  container that continues), message (``''``: none) on one record's key:
  the record is cleared of its outcome and attempt, its ``gen`` bumped, its
  TTL reset; with a message, its start is owed.
* ``s`` swarm id, ``1`` to fill now, count, then (position, item id) pairs,
  on the swarm's key, queue, running, results, next, items and starts keys: those
  positions are forgotten and queued again in order, the counters recounted.

The records are checked first: ``changed`` (with the id and what it is now)
when any is not what the plan expected, and then nothing is written.
Otherwise ``ok`` with the (id, message) of every start now owed."""


# --- dynamic workflows ------------------------------------------------------------
# A task hands its outcome over to other work: a continuation, or the children
# of a root task. The task stays active, held by the container holder (it has
# no run any more), and settles when that work ends.

HANDOVER = (
    _PRELUDE
    + """
local task, work, due, leases, dmsgs = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local token, task_id, work_id, now, grace, depth =
  ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local status, kind, problem = check(task)
if problem then return problem_reply(problem) end
local holder, cont = unpack(redis.call('HMGET', task, 'holder', 'cont'))
if cont and cont ~= '' then
  if cont == work_id then return {'ok', describe(work)} end
  return {'refused', 'it continued with ' .. cont .. ' already'}
end
if holder ~= token then return {'lost', status} end
if status ~= 'active' and status ~= 'suspended' then return {'lost', status} end
local work_status, _, work_problem = check(work)
local named = 'signature ' .. work_id
if work_problem then return {'refused', named .. ' is ' .. work_problem} end
local container = redis.call('HGET', work, 'container') or ''
if container ~= '' then
  return {'refused', named .. ' already belongs to ' .. container}
end
if work_status ~= 'pending' then
  return {'refused', named .. ' is ' .. work_status .. ', not pending'}
end
if redis.call('HEXISTS', dmsgs, work_id) == 1 then
  return {'refused', named .. ' was started already'}
end
redis.call('HSET', task, 'holder', 'container', 'cont', work_id)
redis.call('ZREM', leases, task_id)
redis.call('HSET', work, 'container', task_id, 'crole', 'cont', 'cdepth', depth)
if status == 'suspended' then
  -- Paused: the continuation waits, paused too, for the task's resume.
  redis.call('HSET', work, 'status', 'suspended', 'paused_from', 'pending', 'msg', '{}')
  return {'held', {}}
end
owe_start(due, dmsgs, work_id, '{}', now + grace)
return {'ok', describe(work)}
"""
)
"""KEYS: the task, the work it continues with (of the task's shard), due,
leases, owed-start messages. ARGV: the
task's holder token, its id, the work's id, now (ms), grace ms, the work's
continuation depth.

One step: the task is handed to the container holder (its lease let go, it
stays active) and records ``cont``; the work becomes its child (role
``cont``) and its start is owed. ``ok`` with the work described (to start
it now); ``held`` when the task is paused (the work is paused with it, to
start on resume); ``refused`` with why (the work is not pending or belongs
elsewhere, or the task continued with other work); ``lost`` when another
attempt holds the task. A repeat answers ``ok`` again."""

ROOT_OPEN = (
    _PRELUDE
    + """
local task, swarm = KEYS[1], KEYS[2]
local token, swarm_id, ttl = ARGV[1], ARGV[2], ARGV[3]
local status, kind, problem = check(task)
if problem then return problem_reply(problem) end
if redis.call('HGET', task, 'holder') ~= token then return {'lost', status} end
if status ~= 'active' and status ~= 'suspended' then return {'lost', status} end
if redis.call('EXISTS', swarm) == 0 then
  local fields = {}
  for name, value in pairs(cjson.decode(ARGV[4])) do
    fields[#fields + 1] = name
    fields[#fields + 1] = value
  end
  redis.call('HSET', swarm, unpack(fields))
  redis.call('PEXPIRE', swarm, ttl)
end
redis.call('HSET', task, 'rootsw', swarm_id)
return {'ok', status}
"""
)
"""KEYS: the root task, its swarm. ARGV: the task's holder token, the
swarm's id, TTL ms, the swarm's record as a JSON object (active, open, in
the task). Before a root task's body runs: its swarm of children exists and
the task names it, so a stop or pause of the task reaches every child."""

ROOT_DONE = (
    _SWARM
    + """
local task, owed, leases, sw = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local aux = {KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11]}
local token, task_id, body, done_ms, now, grace, swarm_id =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local status, kind, problem = check(task)
if problem then return problem_reply(problem) end
local holder = redis.call('HGET', task, 'holder')
if holder == 'container' and redis.call('HEXISTS', task, 'body') == 1 then
  return {'waiting'}  -- a repeat: the first one decided
end
if holder ~= token then return {'lost', status} end
if status ~= 'active' and status ~= 'suspended' then return {'lost', status} end
redis.call('HSET', task, 'holder', 'container', 'body', body)
redis.call('ZREM', leases, task_id)
local sw_status, bad = swarm(sw)
if bad then return {'nochildren'} end
redis.call('HSET', sw, 'closed', '1')
if sw_status == 'active' and complete(sw) then
  -- Nothing left to run: the swarm's settle is owed, to the caller now and
  -- to recovery if the caller dies first.
  ending(aux, done_ms)
  redis.call('ZADD', owed, now + grace, swarm_id)
  return {'complete'}
end
if final(sw_status) then
  -- The children ended first (they failed, or were stopped): their end
  -- is owed to the task again, now that it can settle.
  redis.call('HSET', sw, 'sent', '0')
  redis.call('ZADD', owed, now + grace, swarm_id)
  return {'replay'}
end
return {'waiting'}
"""
)
"""KEYS: the root task, owed, leases, its swarm and the swarm's other keys.
ARGV: holder token, task id, the body's result JSON, done TTL ms, now (ms),
grace ms, swarm id.

The body returned: in one step the task is handed to the container holder
(lease let go), keeps the body's result, and its swarm is closed.
``complete`` when every child had finished (settle the swarm; owed in
``owed`` until it is);
``replay`` when the swarm had ended already (its completion is owed again,
to settle the task); ``waiting`` while children run (or on a repeat);
``nochildren`` when the swarm is gone; ``lost`` when another attempt holds
the task."""
