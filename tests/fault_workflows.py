"""The workflows the fault-injection suite breaks, and how it checks them.

Used by tests/test_faults.py in the test process and in the child processes
it kills, so both declare the same tasks. Everything a task does is written
to Redis under ``faulttest:{ft}:`` (one hash slot on a cluster), next to
mageflow's own keys, so a process that is killed leaves its marks behind:

* ``faulttest:runs`` counts the body runs of each signature;
* ``faulttest:open`` holds the signatures whose body started and did not
  end;
* ``faulttest:unit:<tag>`` is the set of a swarm's items running right now,
  and ``faulttest:peak`` the largest that set ever got, per swarm.

Checks only read Redis and the public API: the stored tree of each
workflow, the statuses, the outcomes the callbacks received.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from mageflow import Continue, HatchetMageflow, SignatureStatus, TaskSignature
from mageflow.engine.signing import child_id
from mageflow.engine.swarm import ITEM_OK
from mageflow.tree import TreeNode, build_tree

PREFIX = "faulttest:{ft}"  # one hash tag: its scripts touch several keys

_ENTER = """
-- Once per body run, even if a lost reply makes the caller send it again.
if redis.call('SADD', KEYS[5], ARGV[4]) == 0 then return 1 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('SADD', KEYS[2], ARGV[1])
if ARGV[2] ~= '' then
  redis.call('SADD', KEYS[3], ARGV[3])
  local now = redis.call('SCARD', KEYS[3])
  local peak = tonumber(redis.call('HGET', KEYS[4], ARGV[2]) or '0')
  if now > peak then redis.call('HSET', KEYS[4], ARGV[2], now) end
end
return 1
"""

_LEAVE = """
redis.call('SREM', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then redis.call('SREM', KEYS[2], ARGV[3]) end
return 1
"""


class Work(BaseModel):
    result: Any = None
    x: int = 0
    tag: str = ""
    """The swarm whose concurrency this body counts toward ('' for none)."""
    unit: str = ""
    """What counts as one running item of that swarm (an item, or a chain)."""


class Picky(Work):
    """Work whose ``result`` must be an int: what a step, an item or a
    chain passes it at run time (a dict, or nothing) never is. Bound kwargs
    are checked when signing, so this is how a bad input reaches a run."""

    result: int


class Callback(BaseModel):
    result: Any = None


class FanOut(Work):
    """A root task's input: how many children, and which one is special."""

    n: int = 50
    chosen: int = -1
    step: str = "work"


class Loop(Work):
    """A continuation's input: how many more rounds, and the last one's task."""

    n: int = 0
    step: str = "work"


@dataclasses.dataclass
class Marks:
    """Writes the marks. Like any robust task body, it rides out a Redis
    outage (retrying for up to 15 s) instead of failing the run on it."""

    redis: Redis

    async def _eval(self, script: str, nkeys: int, *args: str) -> None:
        for attempt in range(150):
            try:
                await self.redis.eval(script, nkeys, *args)
                return
            except (RedisConnectionError, OSError):
                if attempt == 149:
                    raise
                await asyncio.sleep(0.1)  # ok: backing off while Redis is away

    async def record(self, callback_id: str, value: Any) -> None:
        await self._eval(
            "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])",
            1,
            f"{PREFIX}:got",
            callback_id,
            json.dumps(value),
        )

    async def enter(self, signature: TaskSignature | None, msg: Work) -> None:
        sid = signature.id if signature else "plain"
        unit = msg.unit or sid
        await self._eval(
            _ENTER,
            5,
            f"{PREFIX}:runs",
            f"{PREFIX}:open",
            f"{PREFIX}:unit:{msg.tag}",
            f"{PREFIX}:peak",
            f"{PREFIX}:tokens",
            sid,
            msg.tag,
            unit,
            uuid.uuid4().hex,
        )

    async def leave(self, signature: TaskSignature | None, msg: Work) -> None:
        sid = signature.id if signature else "plain"
        unit = msg.unit or sid
        await self._eval(
            _LEAVE, 2, f"{PREFIX}:open", f"{PREFIX}:unit:{msg.tag}", sid, msg.tag, unit
        )


def declare(client: HatchetMageflow) -> None:
    """The tasks of the suite, on ``client``."""
    marks = Marks(client.redis)

    @client.task(name="work", retries=1)
    async def work(msg: Work, signature: TaskSignature | None) -> dict[str, int]:
        await marks.enter(signature, msg)
        value = msg.result["v"] if isinstance(msg.result, dict) else msg.x
        await marks.leave(signature, msg)
        return {"v": value + 1}

    @client.task(name="picky")
    async def picky(msg: Picky) -> dict[str, int]:
        raise AssertionError("picky's input never validates, so it never runs")

    @client.task(name="slow", execution_timeout=timedelta(milliseconds=300))
    async def slow(msg: Work, signature: TaskSignature | None) -> dict[str, int]:
        await marks.enter(signature, msg)
        await asyncio.Event().wait()  # never ends: its execution_timeout does
        return {"v": 0}

    @client.task(name="fan", retries=1)
    @client.root_task(max_concurrency=ROOT_CAP)
    async def fan(msg: FanOut, signature: TaskSignature | None) -> dict[str, int]:
        await marks.enter(signature, Work())
        for i in range(msg.n):
            task = msg.step if i == msg.chosen else "work"
            child = await client.sign(task, x=i, tag=ROOT_TAG)
            await child.aio_run_no_wait()
        await marks.leave(signature, Work())
        return {"n": msg.n}

    @client.task(name="loop", retries=1)
    async def loop(
        msg: Loop, signature: TaskSignature | None
    ) -> dict[str, int] | Continue[dict[str, int]]:
        await marks.enter(signature, Work())
        await marks.leave(signature, Work())
        if msg.n <= 1:
            return Continue(await client.sign(msg.step, x=msg.x))
        again = await client.sign("loop", n=msg.n - 1, x=msg.x + 1, step=msg.step)
        return Continue(again)

    @client.task(name="count")
    async def count(msg: Callback) -> dict[str, int]:
        return {"n": len(msg.result) if isinstance(msg.result, list) else -1}

    @client.task(name="cb")
    async def cb(msg: Callback, signature: TaskSignature | None) -> None:
        await marks.enter(signature, Work())
        await marks.record(signature.id if signature else "plain", msg.result)
        await marks.leave(signature, Work())


@dataclasses.dataclass
class Built:
    """A workflow started by :func:`build`, and what it must end with."""

    shape: str
    root: str
    success: str
    """The success callback's id: it gets the workflow's result."""
    error: str
    """The error callback's id."""
    expected: Any
    """The result the success callback must get (when the workflow succeeds)."""
    caps: dict[str, int] = dataclasses.field(default_factory=dict)
    """Each swarm's tag and its max_concurrency."""
    item_callbacks: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Per-item success callbacks' ids, and the result each must get."""


SHAPES = (
    "task",
    "chain",
    "swarm",
    "chain-with-swarm",
    "swarm-of-chains",
    "root",
    "continuation",
    "swarm-item-callbacks",
    "cross-shard",
)

ROOT_CAP = 5
ROOT_TAG = "root"
ROOT_CHILDREN = 50
LOOP_DEPTH = 20


async def build(
    client: HatchetMageflow,
    shape: str,
    *,
    step: str = "work",
    bad: bool = False,
    success: TaskSignature[Any] | None = None,
) -> Built:
    """Sign (not start) one workflow of ``shape``.

    ``step`` is the task of one chosen step or item (``slow`` for a
    timeout); ``bad`` makes that one step ``picky``, whose input the run
    time message never satisfies;
    ``success`` replaces the success callback (a task no worker here runs).
    """

    async def one(x: int, chosen: bool = False, **bound: Any) -> TaskSignature[Any]:
        task = ("picky" if bad else step) if chosen else "work"
        return await client.sign(task, x=x, **bound)

    success = success or await client.sign("cb")
    error = await client.sign("cb")
    if shape == "task":
        root = await client.sign(
            "picky" if bad else step, success=success, error=error, x=1
        )
        return Built(shape, root.id, success.id, error.id, {"v": 2})
    if shape == "chain":
        steps = [await one(1), await one(0, chosen=True), await one(0)]
        chain = await client.chain(steps, success=success, error=error)
        return Built(shape, chain.id, success.id, error.id, {"v": 4})
    if shape == "swarm":
        tag = "swarm"
        items = [await one(i, chosen=i == 7, tag=tag) for i in range(20)]
        swarm = await client.swarm(
            items, max_concurrency=3, success=success, error=error
        )
        await swarm.close()
        return Built(
            shape,
            swarm.id,
            success.id,
            error.id,
            [{"v": i + 1} for i in range(20)],
            {tag: 3},
        )
    if shape == "chain-with-swarm":
        tag = "middle"
        items = [await one(0, chosen=i == 2, tag=tag) for i in range(5)]
        middle = await client.swarm(items, max_concurrency=2)
        await middle.close()
        chain = await client.chain(
            [await one(1), middle, "count"], success=success, error=error
        )
        return Built(shape, chain.id, success.id, error.id, {"n": 5}, {tag: 2})
    if shape == "swarm-of-chains":
        tag = "outer"
        chains = []
        for n in range(4):
            first = await one(n, chosen=n == 1)
            chains.append(await client.chain([first, "work"], tag=tag, unit=f"c{n}"))
        swarm = await client.swarm(
            chains, max_concurrency=2, success=success, error=error
        )
        await swarm.close()
        return Built(
            shape,
            swarm.id,
            success.id,
            error.id,
            [{"v": n + 2} for n in range(4)],
            {tag: 2},
        )
    if shape == "root":
        root = await client.sign(
            "fan",
            success=success,
            error=error,
            n=ROOT_CHILDREN,
            chosen=7,
            step="picky" if bad else step,
        )
        expected = {
            "result": {"n": ROOT_CHILDREN},
            "children": [{"v": i + 1} for i in range(ROOT_CHILDREN)],
        }
        return Built(
            shape, root.id, success.id, error.id, expected, {ROOT_TAG: ROOT_CAP}
        )
    if shape == "continuation":
        # 20 continuations: the loop 19 times, then the step.
        root = await client.sign(
            "loop",
            success=success,
            error=error,
            n=LOOP_DEPTH,
            x=0,
            step="picky" if bad else step,
        )
        return Built(shape, root.id, success.id, error.id, {"v": LOOP_DEPTH})
    if shape == "swarm-item-callbacks":
        tag = "items"
        items = [await one(i, chosen=i == 4, tag=tag) for i in range(10)]
        swarm = await client.swarm(
            items,
            max_concurrency=3,
            success=success,
            error=error,
            item_success="cb",
            item_error="cb",
        )
        per_item = {
            child_id(item.id, ITEM_OK, 0): {"v": i + 1} for i, item in enumerate(items)
        }
        return Built(
            shape,
            swarm.id,
            success.id,
            error.id,
            [{"v": i + 1} for i in range(10)],
            {tag: 3},
            per_item,
        )
    if shape == "cross-shard":
        # Every part signed in a shard of its own, then linked: each link is
        # a transition across slots (a chain step's start, a swarm's items,
        # the callbacks), done as separate steps per shard.
        def move() -> None:
            client.engine.signer.next_shard()

        tag = "spread"
        items = []
        for i in range(6):
            move()
            items.append(await one(i, chosen=i == 2, tag=tag))
        swarm = await client.swarm(items, max_concurrency=2)
        await swarm.close()
        move()
        first = await one(1)
        move()
        last = await client.sign("count")
        move()
        chain = await client.chain([first, swarm, last], success=success, error=error)
        return Built(shape, chain.id, success.id, error.id, {"n": 6}, {tag: 2})
    raise ValueError(shape)


def nodes(tree: TreeNode) -> Iterable[TreeNode]:
    yield tree
    for child in tree.children:
        yield from nodes(child)


async def check(
    client: HatchetMageflow,
    built: Built,
    *,
    killed_mid_run: Iterable[str] = (),
    allow_failure: bool = False,
    compare: bool = True,
) -> TreeNode:
    """Assert the workflow ended, and everything happened once.

    * every signature of the tree (callbacks included) is final, except a
      callback that never fires because its outcome did not happen;
    * every body ran once, but those a kill caught mid-run (at most twice);
    * no swarm ever had more items running than its cap;
    * the success callback got the expected result, in add order, once.
    """
    redis = client.redis
    tree = await build_tree(client, built.root)
    root_status = tree.status
    assert SignatureStatus(root_status).is_final, tree.render()
    fired = built.success if root_status == "done" else built.error
    unfired = built.error if fired == built.success else built.success
    for node in nodes(tree):
        if node.problem == "already shown above":
            continue
        assert node.problem is None, tree.render()
        if node.id == unfired:
            assert node.status == "pending", tree.render()
            continue
        if node.role.startswith("on ") and node.status == "pending":
            continue  # a callback of an outcome that did not happen
        assert SignatureStatus(node.status).is_final, tree.render()
    killed = set(killed_mid_run)
    runs = {k: int(v) for k, v in (await redis.hgetall(f"{PREFIX}:runs")).items()}
    for signature_id, count in runs.items():
        limit = 2 if signature_id in killed else 1
        assert count <= limit, (signature_id, count, tree.render())
    peaks = {k: int(v) for k, v in (await redis.hgetall(f"{PREFIX}:peak")).items()}
    for tag, cap in built.caps.items():
        assert peaks.get(tag, 0) <= cap, (tag, peaks, cap)
    if not allow_failure:
        assert root_status == "done", tree.render()
    got_all = await redis.hgetall(f"{PREFIX}:got")
    for callback_id, expected in built.item_callbacks.items():
        # An item's own callback got that item's result, once, or (its item
        # failed) never ran.
        raw = got_all.get(callback_id)
        if raw is not None:
            assert json.loads(raw) == expected, (callback_id, tree.render())
            assert runs.get(callback_id) == 1 or callback_id in killed, runs
        elif root_status == "done" and not allow_failure:
            raise AssertionError(
                f"item callback {callback_id} never ran\n{tree.render()}"
            )
    if compare:
        got = await redis.hget(f"{PREFIX}:got", fired)
        assert got is not None, tree.render()
        if root_status == "done" and built.expected is not None:
            assert json.loads(got) == built.expected, tree.render()
        assert runs.get(fired) == 1 or fired in killed, runs
    return tree


async def unsettled(client: HatchetMageflow) -> set[str]:
    """The signatures whose body started but whose outcome is not recorded."""
    started = await client.redis.hkeys(f"{PREFIX}:runs")
    out = set()
    for signature_id in started:
        signature = await client.load_signature(signature_id)
        if signature is not None and not signature.status.is_final:
            out.add(signature_id)
    return out


async def received(client: HatchetMageflow, callback_id: str) -> Any:
    """What the callback ``callback_id`` was given (JSON data)."""
    raw = await client.redis.hget(f"{PREFIX}:got", callback_id)
    assert raw is not None, f"callback {callback_id} never ran"
    return json.loads(raw)


async def reset(redis: Redis) -> None:
    """Forget every mark (each run of a case starts clean)."""
    found = [key async for key in redis.scan_iter("faulttest:*")]
    if found:
        await redis.delete(*found)
