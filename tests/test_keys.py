"""The key layout: shards, hash tags, and transitions across slots.

The layout tests read :mod:`mageflow.store.keys` and the scripts' text; the
workflow tests run on a single server and on a real 3-master Redis Cluster
(``redis_kind``, see conftest), with signatures placed in different shards
on purpose, so every link between them crosses slots.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from pydantic import BaseModel
from redis.crc import key_slot

from mageflow import HatchetMageflow, SignatureStatus
from mageflow.dispatch.local import LocalDispatcher
from mageflow.errors import CorruptSignatureError
from mageflow.store import keys, scripts


class Num(BaseModel):
    x: int = 0
    result: Any = None


def backend(client: HatchetMageflow) -> LocalDispatcher:
    dispatcher = client.engine.dispatcher
    assert isinstance(dispatcher, LocalDispatcher)
    return dispatcher


def move(client: HatchetMageflow) -> None:
    """Sign what comes next in the next shard (as after a workflow start)."""
    client.engine.signer.next_shard()


def declare(client: HatchetMageflow, ran: Counter[str]) -> None:
    @client.task(name="inc")
    async def inc(msg: Num) -> dict[str, int]:
        ran[f"inc {msg.x}"] += 1
        base = msg.result["v"] if isinstance(msg.result, dict) else 0
        return {"v": base + msg.x + 1}

    @client.task(name="got")
    async def got(msg: Num) -> dict[str, int]:
        ran[f"got {msg.result}"] += 1
        return {"n": 1}


# --- the layout -------------------------------------------------------------------


def test_each_shard_tag_hashes_into_its_own_sixteenth_of_the_slots() -> None:
    assert len(keys.TAGS) == keys.SHARDS == 16
    for shard, tag in enumerate(keys.TAGS):
        slot = key_slot(keys.signature(f"{shard:x}abc").encode())
        assert slot == key_slot(tag.encode())
        assert shard * 1024 <= slot < (shard + 1) * 1024, (shard, tag, slot)


def test_a_shard_is_named_by_the_ids_first_character() -> None:
    assert [keys.shard_of(f"{n:x}123") for n in range(16)] == list(range(16))
    assert keys.shard_of("A5") == keys.shard_of("a5") == 10
    assert 0 <= keys.shard_of("job-1") < keys.SHARDS
    assert keys.placed_near("0123", "f999") == "f123"
    moved = keys.placed_near("0123", "job-1")
    assert keys.shard_of(moved) == keys.shard_of("job-1")


def test_a_swarms_keys_and_its_indexes_share_its_slot() -> None:
    swarm_id = "7" + "0" * 31
    slots = {
        key_slot(key.encode())
        for key in [
            keys.signature(swarm_id),
            *keys.swarm_aux(swarm_id),
            *(keys.index_of(which, swarm_id) for which in keys.Index),
            keys.due_messages(keys.shard_of(swarm_id)),
        ]
    }
    assert len(slots) == 1


def test_no_script_builds_a_key_name() -> None:
    """Every key a script touches comes in KEYS: no script text holds the key
    prefix (only the pub/sub channel's, which is no key)."""
    texts = {
        name: value
        for name, value in vars(scripts).items()
        if name.isupper() and isinstance(value, str) and name != "SHEBANG"
    }
    assert len(texts) > 20
    channel = keys.done_channel("")
    for name, text in texts.items():
        assert keys.PREFIX + ":" not in text.replace(channel, ""), name
        assert "'sig:'" not in text, name
        assert "prefix .." not in text, name


# --- one workflow, one slot --------------------------------------------------------


async def test_a_workflow_made_from_refs_lives_in_one_shard(
    local: HatchetMageflow,
) -> None:
    ran: Counter[str] = Counter()
    declare(local, ran)
    items = await local.swarm(["inc"] * 5, max_concurrency=2)
    chain = await local.chain(["inc", items, "got"], success="got", error="got")
    await chain.aio_run_no_wait({})
    await backend(local).drain()
    assert (await local.load_signature(chain.id)).status is SignatureStatus.DONE
    tags = set()
    async for key in local.redis.scan_iter(match=f"{keys.PREFIX}:*"):
        name = key.decode() if isinstance(key, bytes) else key
        tags.add(name.split("{", 1)[1].split("}", 1)[0])
    assert tags == {keys.TAGS[keys.shard_of(chain.id)]}


# --- across slots ------------------------------------------------------------------


async def test_a_chain_of_steps_signed_in_other_shards_runs_in_order(
    local: HatchetMageflow,
) -> None:
    ran: Counter[str] = Counter()
    declare(local, ran)
    steps = []
    for x in range(4):
        move(local)
        steps.append(await local.sign("inc", x=x))
    move(local)
    done = await local.sign("got")
    assert len({keys.shard_of(s.id) for s in [*steps, done]}) == 5
    chain = await local.chain(steps, success=done)
    await chain.aio_run_no_wait({})
    await backend(local).drain()
    stored = await local.load_signature(chain.id)
    assert stored is not None
    assert stored.status is SignatureStatus.DONE
    # 1, then 1+1+1, 3+2+1, 6+3+1: each step had its predecessor's result.
    assert ran == Counter(
        {"inc 0": 1, "inc 1": 1, "inc 2": 1, "inc 3": 1, "got {'v': 10}": 1}
    )


async def test_a_swarm_of_items_from_other_shards_keeps_its_cap_and_order(
    local: HatchetMageflow,
) -> None:
    ran: Counter[str] = Counter()
    declare(local, ran)
    items = []
    for x in range(8):
        move(local)
        items.append(await local.sign("inc", x=x))
    swarm = await local.swarm(items, max_concurrency=3, success="got")
    assert sum(keys.shard_of(i.id) != keys.shard_of(swarm.id) for i in items) >= 7
    await swarm.aio_run_no_wait({})
    await backend(local).drain()
    stored = await local.load_signature(swarm.id)
    assert stored is not None
    assert stored.status is SignatureStatus.DONE
    expected = [{"v": x + 1} for x in range(8)]
    assert ran == Counter({**{f"inc {x}": 1 for x in range(8)}, f"got {expected}": 1})
    for item in items:
        done = await local.load_signature(item.id)
        assert done is not None
        assert done.status is SignatureStatus.DONE


async def test_an_item_refused_by_a_swarm_in_another_shard_is_given_back(
    local: HatchetMageflow,
) -> None:
    ran: Counter[str] = Counter()
    declare(local, ran)
    swarm = await local.swarm(["inc"], max_concurrency=1)  # closed with it
    move(local)
    item = await local.sign("inc", x=5)
    assert keys.shard_of(item.id) != keys.shard_of(swarm.id)
    with pytest.raises(Exception, match=r"closed|no more"):
        await swarm.add(item)
    stored = await local.load_signature(item.id)
    assert stored is not None
    assert stored.container_id is None
    # Given back, it can be used elsewhere.
    await item.aio_run_no_wait({})
    await backend(local).drain()
    assert ran["inc 5"] == 1


async def test_pause_resume_stop_and_remove_reach_every_shard(
    local: HatchetMageflow,
) -> None:
    ran: Counter[str] = Counter()
    declare(local, ran)
    items = []
    for x in range(6):
        move(local)
        items.append(await local.sign("inc", x=x))
    swarm = await local.swarm(items, max_concurrency=2)
    await local.pause(swarm.id)
    for item in items:
        paused = await local.load_signature(item.id)
        assert paused is not None
        assert paused.status is SignatureStatus.SUSPENDED
    await local.resume(swarm.id)
    await local.stop(swarm.id)
    for item in items:
        stopped = await local.load_signature(item.id)
        assert stopped is not None
        assert stopped.status is SignatureStatus.CANCELED
    assert await local.remove(swarm.id) > len(items)
    for signature_id in [swarm.id, *(i.id for i in items)]:
        assert await local.load_signature(signature_id) is None
    assert [k async for k in local.redis.scan_iter(match=keys.SIGNATURE_MATCH)] == []
    assert ran == Counter()


async def test_a_record_of_the_old_layout_is_refused_not_misread(
    local: HatchetMageflow,
) -> None:
    old = keys.legacy_signature("0ld")
    await local.redis.hset(old, mapping={"v": "1", "kind": "task", "task": "inc"})
    with pytest.raises(CorruptSignatureError, match="old key layout") as caught:
        await local.load_signature("0ld")
    assert caught.value.key == old
    assert await local.redis.hgetall(old) == {"v": "1", "kind": "task", "task": "inc"}
    assert await local.load_signature("0ther") is None  # nothing there at all
