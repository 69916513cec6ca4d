"""Dynamic workflows on the local backend and a real Redis: per-item swarm
callbacks, continuations and root tasks, each counted exactly once."""

from __future__ import annotations

import contextlib
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

import mageflow
from mageflow import HatchetMageflow, SignatureStatus
from mageflow.dispatch.local import LocalDispatcher
from mageflow.store import keys


class Num(BaseModel):
    x: int = 0
    result: Any = None


class Got(BaseModel):
    result: Any = None


def backend(client: HatchetMageflow) -> LocalDispatcher:
    assert isinstance(client.dispatch_backend, LocalDispatcher)
    return client.dispatch_backend


async def status(client: HatchetMageflow, signature_id: str) -> SignatureStatus:
    signature = await client.load_signature(signature_id)
    assert signature is not None
    return signature.status


class Seen:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.ok: list[Any] = []
        self.err: list[Any] = []
        self.done: list[Any] = []


@pytest.fixture
def seen(local: HatchetMageflow) -> Seen:
    seen = Seen()

    @local.task(name="square")
    async def square(msg: Num) -> dict[str, int]:
        seen.calls[f"square {msg.x}"] += 1
        if msg.x < 0:
            raise ValueError(f"negative {msg.x}")
        return {"v": msg.x * msg.x}

    @local.task(name="item-ok")
    async def item_ok(msg: Got) -> None:
        seen.ok.append(msg.result)

    @local.task(name="item-err")
    async def item_err(msg: Got) -> None:
        seen.err.append(msg.result)

    @local.task(name="all-done")
    async def all_done(msg: Got) -> None:
        seen.done.append(msg.result)

    return seen


# --- per-item swarm callbacks -------------------------------------------------


async def test_item_callbacks_fire_once_per_item_with_its_outcome(
    local: HatchetMageflow, seen: Seen
) -> None:
    values = [1, -2, 3, -4, 5]
    items = [await local.sign("square", x=x) for x in values]
    swarm = await local.swarm(
        items,
        max_concurrency=2,
        success="all-done",
        item_success="item-ok",
        item_error=["item-err"],
    )
    await swarm.aio_run_no_wait()
    await backend(local).drain()
    assert sorted(r["v"] for r in seen.ok) == [1, 9, 25]
    assert sorted(e["message"] for e in seen.err) == ["negative -2", "negative -4"]
    assert all(e["error_type"] == "ValueError" for e in seen.err)
    # The swarm's own callback fired once, with every outcome in order.
    assert len(seen.done) == 1
    assert [r.get("v") for r in seen.done[0]] == [1, None, 9, None, 25]
    assert seen.calls == Counter({f"square {x}": 1 for x in values})


async def test_items_added_later_get_their_own_callbacks(
    local: HatchetMageflow, seen: Seen
) -> None:
    template = await local.sign("item-ok")
    swarm = await local.swarm(max_concurrency=3, item_success=template)
    await swarm.aio_run_no_wait()
    await swarm.add(["square", await local.sign("square", x=4)])
    loaded = await local.load_signature(swarm.id)
    assert isinstance(loaded, mageflow.SwarmSignature)
    assert [t.task_name for t in loaded.item_success] == ["item-ok"]
    await loaded.add(await local.sign("square", x=6))
    await swarm.close()
    await backend(local).drain()
    assert sorted(r["v"] for r in seen.ok) == [0, 16, 36]
    # The template is copied, never run itself.
    assert await status(local, template.id) is SignatureStatus.PENDING
    assert await status(local, swarm.id) is SignatureStatus.DONE


async def test_item_callback_with_callbacks_of_its_own_is_refused(
    local: HatchetMageflow, seen: Seen
) -> None:
    shared = await local.sign("item-ok", success="all-done")
    with pytest.raises(ValueError, match="callbacks of its own"):
        await local.swarm(["square"], item_success=shared)
    chain = await local.chain(["square", "square"])
    with pytest.raises(TypeError, match="must be tasks"):
        await local.swarm(["square"], item_error=chain)


# --- continuations ------------------------------------------------------------


class Countdown(BaseModel):
    n: int
    acc: int = 0


class Total(BaseModel):
    total: int


async def test_a_branch_chosen_at_run_time_is_the_tasks_outcome(
    local: HatchetMageflow, seen: Seen
) -> None:
    @local.task(name="even")
    async def even(msg: Num) -> dict[str, str]:
        seen.calls["even"] += 1
        return {"branch": f"even {msg.x}"}

    @local.task(name="odd")
    async def odd(msg: Num) -> dict[str, str]:
        seen.calls["odd"] += 1
        return {"branch": f"odd {msg.x}"}

    @local.task(name="route")
    async def route(msg: Num) -> mageflow.Continue[dict[str, str]]:
        seen.calls["route"] += 1
        target = "even" if msg.x % 2 == 0 else "odd"
        return mageflow.Continue(await local.sign(target, x=msg.x))

    routed = await local.sign(route, success="all-done")
    assert await routed.aio_run({"x": 3}) == {"branch": "odd 3"}
    await backend(local).drain()
    assert seen.done == [{"branch": "odd 3"}]
    assert seen.calls == Counter({"route": 1, "odd": 1})
    loaded = await local.load_signature(routed.id)
    assert loaded is not None
    assert loaded.continuation_id is not None
    assert loaded.status is SignatureStatus.DONE
    assert await status(local, loaded.continuation_id) is SignatureStatus.DONE


async def test_a_continuation_in_a_chain_holds_the_next_step(
    local: HatchetMageflow, seen: Seen
) -> None:
    @local.task(name="later")
    async def later(msg: Num) -> dict[str, int]:
        return {"v": msg.x + 100}

    @local.task(name="hand-over")
    async def hand_over(msg: Num) -> mageflow.Continue[dict[str, int]]:
        return mageflow.Continue(await local.sign("later", x=msg.x))

    @local.task(name="after")
    async def after(msg: Got) -> dict[str, Any]:
        seen.done.append(msg.result)
        return {"saw": msg.result}

    chain = await local.chain(
        [await local.sign("hand-over", x=1), "after"], success="item-ok"
    )
    await chain.aio_run_no_wait()
    await backend(local).drain()
    assert seen.done == [{"v": 101}]
    assert seen.ok == [{"saw": {"v": 101}}]
    assert await status(local, chain.id) is SignatureStatus.DONE


async def test_a_failing_continuation_fails_the_task_with_its_error(
    local: HatchetMageflow, seen: Seen
) -> None:
    @local.task(name="delegate")
    async def delegate(msg: Num) -> mageflow.Continue[dict[str, int]]:
        return mageflow.Continue(await local.sign("square", x=-7))

    signature = await local.sign("delegate", error="item-err")
    with pytest.raises(mageflow.SignatureFailedError, match="negative -7"):
        await signature.aio_run()
    await backend(local).drain()
    assert [e["message"] for e in seen.err] == ["negative -7"]


async def test_a_loop_of_depth_twenty_runs_each_round_once(
    local: HatchetMageflow, seen: Seen
) -> None:
    @local.task(name="count-down")
    async def count_down(msg: Countdown) -> Total | mageflow.Continue[Total]:
        seen.calls[f"round {msg.n}"] += 1
        if msg.n == 0:
            return Total(total=msg.acc)
        again = await local.sign(count_down, n=msg.n - 1, acc=msg.acc + msg.n)
        return mageflow.Continue(again)

    first = await local.sign(count_down, n=20, success="all-done")
    result = await first.aio_run()
    assert result == Total(total=210)
    await backend(local).drain()
    assert seen.calls == Counter({f"round {n}": 1 for n in range(21)})
    assert seen.done == [{"total": 210}]


async def test_unbounded_recursion_is_stopped_by_the_guard(
    local: HatchetMageflow, seen: Seen
) -> None:
    local.max_continuations = 5

    @local.task(name="forever")
    async def forever(msg: Num) -> mageflow.Continue[dict[str, int]]:
        seen.calls["forever"] += 1
        return mageflow.Continue(await local.sign(forever, x=msg.x + 1))

    signature = await local.sign(forever, error="item-err")
    with pytest.raises(mageflow.SignatureFailedError, match="over the limit of 5"):
        await signature.aio_run()
    await backend(local).drain()
    assert seen.calls["forever"] == 6  # the first, then five continuations
    assert len(seen.err) == 1
    assert seen.err[0]["kind"] == "continuation"


async def test_continuing_with_started_work_is_refused_and_fails_the_task(
    local: HatchetMageflow, seen: Seen
) -> None:
    @local.task(name="reuse")
    async def reuse(msg: Num) -> mageflow.Continue[dict[str, int]]:
        work = await local.sign("square", x=2)
        await work.aio_run_no_wait()
        return mageflow.Continue(work)

    signature = await local.sign(reuse)
    with pytest.raises(mageflow.SignatureFailedError, match="started already"):
        await signature.aio_run()
    await backend(local).drain()
    assert seen.calls["square 2"] == 1


async def test_stopping_a_continued_task_stops_its_continuation(
    local: HatchetMageflow, seen: Seen
) -> None:
    import asyncio

    entered = asyncio.Event()
    release = asyncio.Event()

    @local.task(name="slow")
    async def slow(msg: Num) -> dict[str, int]:
        entered.set()
        await release.wait()
        return {"v": 1}

    @local.task(name="to-slow")
    async def to_slow(msg: Num) -> mageflow.Continue[dict[str, int]]:
        return mageflow.Continue(await local.sign("slow"))

    signature = await local.sign(to_slow, success="all-done")
    await signature.aio_run_no_wait()
    await asyncio.wait_for(entered.wait(), 5)
    await signature.stop()
    release.set()
    await backend(local).drain()
    loaded = await local.load_signature(signature.id)
    assert loaded is not None
    assert loaded.continuation_id is not None
    assert loaded.status is SignatureStatus.CANCELED
    assert await status(local, loaded.continuation_id) is SignatureStatus.CANCELED
    assert seen.done == []


# --- root tasks -----------------------------------------------------------------


class Fan(BaseModel):
    n: int = 0
    fail_body: bool = False


class Summary(BaseModel):
    started: int


class Peak:
    def __init__(self) -> None:
        self.running = 0
        self.peak = 0


async def test_a_root_fans_out_fifty_children_at_cap_five(
    local: HatchetMageflow, seen: Seen
) -> None:
    import asyncio

    peak = Peak()
    overlapped = asyncio.Event()

    @local.task(name="child")
    async def child(msg: Num) -> dict[str, int]:
        seen.calls[f"child {msg.x}"] += 1
        peak.running += 1
        peak.peak = max(peak.peak, peak.running)
        if peak.running > 1:
            overlapped.set()
        try:
            # Hold the slot until a sibling runs too (bounded: a swarm that
            # ran one at a time fails the peak check below, slowly).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(overlapped.wait(), 0.2)
        finally:
            peak.running -= 1
        return {"v": msg.x}

    @local.task(name="fan-out")
    @local.root_task(max_concurrency=5)
    async def fan_out(msg: Fan) -> Summary:
        seen.calls["body"] += 1
        for i in range(msg.n):
            # Each child with its own message, as a plain start would.
            await (await local.sign(child)).aio_run_no_wait({"x": i})
        return Summary(started=msg.n)

    root = await local.sign(fan_out, success="all-done")
    assert await root.aio_run({"n": 50}) == Summary(started=50)
    await backend(local).drain()
    assert 1 < peak.peak <= 5  # measured, not assumed
    assert seen.calls == Counter({"body": 1, **{f"child {i}": 1 for i in range(50)}})
    assert len(seen.done) == 1
    result = mageflow.RootResult[Summary].model_validate(seen.done[0])
    assert result.result == Summary(started=50)
    assert result.children == [{"v": i} for i in range(50)]
    loaded = await local.load_signature(root.id)
    assert loaded is not None
    assert loaded.status is SignatureStatus.DONE
    assert loaded.outcome == seen.done[0]


async def test_the_root_waits_for_children_but_not_for_opted_out_work(
    local: HatchetMageflow, seen: Seen
) -> None:
    import asyncio

    release = asyncio.Event()
    aside_ran = asyncio.Event()

    @local.task(name="aside")
    async def aside(msg: Num) -> dict[str, int]:
        aside_ran.set()
        return {}

    @local.task(name="held-child")
    async def held_child(msg: Num) -> dict[str, int]:
        await release.wait()
        return {"v": 7}

    @local.task(name="waits")
    @local.root_task(max_concurrency=2)
    async def waits(msg: Fan) -> dict[str, str]:
        await (await local.sign(held_child)).aio_run_no_wait()
        with mageflow.without_root():
            await (await local.sign(aside)).aio_run_no_wait()
        return {"body": "done"}

    root = await local.sign(waits, success="all-done")
    await root.aio_run_no_wait({})

    await asyncio.wait_for(aside_ran.wait(), 5)
    # The body returned, the opted-out task ran, the child still runs.
    assert await status(local, root.id) is SignatureStatus.ACTIVE
    release.set()
    await backend(local).drain()
    assert seen.done == [{"result": {"body": "done"}, "children": [{"v": 7}]}]


async def test_a_failing_body_interrupts_its_children(
    local: HatchetMageflow, seen: Seen
) -> None:
    import asyncio

    entered = asyncio.Event()

    @local.task(name="stuck")
    async def stuck(msg: Num) -> dict[str, int]:
        seen.calls["stuck"] += 1
        entered.set()
        await asyncio.Event().wait()  # until cancelled
        return {}

    @local.task(name="breaks")
    @local.root_task(max_concurrency=1)
    async def breaks(msg: Fan) -> dict[str, int]:
        children = [await local.sign(stuck) for _ in range(3)]
        for signature in children:
            await signature.aio_run_no_wait()
        await asyncio.wait_for(entered.wait(), 5)
        raise RuntimeError("body broke")

    root = await local.sign(breaks, error="item-err")
    with pytest.raises(mageflow.SignatureFailedError, match="body broke"):
        await root.aio_run({})
    await backend(local).drain()
    assert seen.calls["stuck"] == 1  # the queued two never started
    assert [e["message"] for e in seen.err] == ["body broke"]
    loaded = await local.load_signature(root.id)
    assert loaded is not None
    assert loaded.root_swarm_id is not None
    assert await status(local, loaded.root_swarm_id) is SignatureStatus.INTERRUPTED


async def test_children_reaching_the_failure_limit_fail_the_root(
    local: HatchetMageflow, seen: Seen
) -> None:
    @local.task(name="strict")
    @local.root_task(max_concurrency=2, stop_after_n_failures=2)
    async def strict(msg: Fan) -> dict[str, int]:
        for x in (-1, -2):
            await (await local.sign("square", x=x)).aio_run_no_wait()
        return {"body": 1}

    root = await local.sign(strict, error="item-err")
    with pytest.raises(mageflow.SignatureFailedError, match="stop_after_n_failures"):
        await root.aio_run({})
    await backend(local).drain()
    assert len(seen.err) == 1
    assert seen.err[0]["error_type"] == "SwarmFailed"


async def test_nested_roots_each_settle_with_their_own_children(
    local: HatchetMageflow, seen: Seen
) -> None:
    @local.task(name="inner")
    @local.root_task(max_concurrency=3)
    async def inner(msg: Num) -> dict[str, int]:
        for x in range(msg.x):
            await (await local.sign("square", x=x)).aio_run_no_wait()
        return {"inner": msg.x}

    @local.task(name="outer")
    @local.root_task(max_concurrency=2)
    async def outer(msg: Fan) -> dict[str, int]:
        for n in (2, 3):
            await (await local.sign(inner)).aio_run_no_wait({"x": n})
        return {"outer": 2}

    root = await local.sign(outer, success="all-done")
    await root.aio_run({})
    await backend(local).drain()
    (got,) = seen.done
    assert got["result"] == {"outer": 2}
    assert got["children"] == [
        {"result": {"inner": 2}, "children": [{"v": 0}, {"v": 1}]},
        {"result": {"inner": 3}, "children": [{"v": 0}, {"v": 1}, {"v": 4}]},
    ]
    assert sum(seen.calls.values()) == 5


async def test_a_root_with_no_children_settles_with_its_body(
    local: HatchetMageflow, seen: Seen
) -> None:
    @local.task(name="lonely")
    @local.root_task()
    async def lonely(msg: Fan) -> dict[str, int]:
        return {"alone": 1}

    root = await local.sign(lonely, success="all-done")
    assert await root.aio_run({}) == {"alone": 1}
    await backend(local).drain()
    assert seen.done == [{"result": {"alone": 1}, "children": []}]


async def test_root_tasks_and_continue_are_explained(local: HatchetMageflow) -> None:
    @local.task(name="explained")
    @local.root_task(max_concurrency=4)
    async def explained(msg: Fan) -> Summary | mageflow.Continue[Summary]:
        return Summary(started=0)

    text = local.explain(explained)
    assert "root task" in text
    assert "max_concurrency=4" in text
    assert "returns: Summary" in text
    assert "Continue" in text


# --- visible in the tree --------------------------------------------------------


async def test_the_tree_shows_root_children_continuations_and_item_callbacks(
    local: HatchetMageflow, seen: Seen
) -> None:
    from mageflow.tree import build_tree

    @local.task(name="hop")
    async def hop(msg: Num) -> mageflow.Continue[dict[str, int]]:
        return mageflow.Continue(await local.sign("square", x=msg.x))

    @local.task(name="parent")
    @local.root_task(max_concurrency=2)
    async def parent(msg: Fan) -> dict[str, int]:
        await (await local.sign(hop)).aio_run_no_wait({"x": 2})
        items = [await local.sign("square", x=3)]
        swarm = await local.swarm(items, item_success="item-ok")
        await swarm.aio_run_no_wait()
        return {"ok": 1}

    root = await local.sign(parent)
    await root.aio_run({})
    await backend(local).drain()
    tree = await build_tree(local, root.id)
    text = tree.render()
    (children,) = tree.children
    assert children.role == "children"
    assert children.kind == "swarm"
    first, second = children.children
    assert first.task_name == "hop"
    assert first.status == "done"
    (continued,) = first.children
    assert continued.role == "continued by"
    assert continued.task_name == "square"
    (item,) = second.children
    (per_item,) = item.children
    assert per_item.role == "on item success", text
    assert per_item.status == "done", text
    assert "continued by: square" in text
    assert "on item success: item-ok" in text


async def test_a_retried_continuation_runs_again_whole(
    local: HatchetMageflow, seen: Seen
) -> None:
    flaky = {"fail": True}

    @local.task(name="maybe")
    async def maybe(msg: Num) -> dict[str, int]:
        seen.calls["maybe"] += 1
        if flaky["fail"]:
            raise RuntimeError("not yet")
        return {"v": msg.x}

    @local.task(name="hands")
    async def hands(msg: Num) -> mageflow.Continue[dict[str, int]]:
        return mageflow.Continue(await local.sign(maybe, x=5))

    @local.task(name="rooty")
    @local.root_task()
    async def rooty(msg: Num) -> dict[str, int]:
        await (await local.sign(maybe, x=6)).aio_run_no_wait()
        return {"body": 1}

    continued = await local.sign(hands)
    with pytest.raises(mageflow.SignatureFailedError, match="not yet"):
        await continued.aio_run()
    rooted = await local.sign(rooty)
    await rooted.aio_run({})
    await backend(local).drain()
    flaky["fail"] = False
    await continued.retry()
    assert await continued.aio_result(timeout=10) == {"v": 5}
    first = await local.load_signature(rooted.id)
    assert first is not None
    assert first.status is SignatureStatus.DONE
    assert first.outcome["children"][0]["message"] == "not yet"


async def test_a_close_that_completes_a_swarm_owes_its_settle(
    local: HatchetMageflow, seen: Seen, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing a swarm whose items all finished completes it; if the closer
    dies before settling it, recovery settles it (the close left a debt)."""
    from mageflow.engine.progress import Progress

    swarm = await local.swarm(max_concurrency=2, success="all-done")
    await swarm.aio_run_no_wait()
    await swarm.add([await local.sign("square", x=2)])
    await backend(local).drain()

    async def dies(self: Progress, effects: Any) -> None:
        raise ConnectionError("the closer died here")

    monkeypatch.setattr(Progress, "apply", dies)
    with pytest.raises(ConnectionError):
        await swarm.close()
    monkeypatch.undo()
    assert await status(local, swarm.id) is SignatureStatus.ACTIVE
    await local.recover(grace=timedelta(0))
    await backend(local).drain()
    assert seen.done == [[{"v": 4}]]
    assert await status(local, swarm.id) is SignatureStatus.DONE


async def test_a_start_after_the_children_failed_says_why(
    local: HatchetMageflow, seen: Seen
) -> None:
    import asyncio

    said: list[str] = []

    @local.task(name="gives-up")
    @local.root_task(stop_after_n_failures=1)
    async def gives_up(msg: Fan, signature: mageflow.TaskSignature) -> dict[str, int]:
        await (await local.sign("square", x=-1)).aio_run_no_wait()
        loaded = await local.load_signature(signature.id)
        assert loaded is not None
        assert loaded.root_swarm_id is not None
        ended = await local.engine.waiters.until_final(loaded.root_swarm_id, 5)
        assert ended is not None
        assert ended.status is SignatureStatus.FAILED
        try:
            await (await local.sign("square", x=1)).aio_run_no_wait()
        except mageflow.InvalidTransitionError as exc:
            said.append(str(exc))
            raise
        return {}

    root = await local.sign(gives_up)
    with pytest.raises(mageflow.SignatureFailedError):
        await asyncio.wait_for(root.aio_run({}), 10)
    assert len(said) == 1
    assert "the root's children have ended (failed)" in said[0]
    assert "without_root" in said[0]
    assert seen.calls["square 1"] == 0


async def test_a_signature_started_already_cannot_join_a_root(
    local: HatchetMageflow, seen: Seen
) -> None:
    said: list[str] = []

    @local.task(name="joins-twice")
    @local.root_task()
    async def joins_twice(msg: Fan) -> dict[str, int]:
        once = await local.sign("square", x=4)
        with mageflow.without_root():
            await once.aio_run_no_wait()
        try:
            await once.aio_run_no_wait()
        except mageflow.InvalidTransitionError as exc:
            said.append(str(exc))
        return {}

    root = await local.sign(joins_twice, success="all-done")
    await root.aio_run({})
    await backend(local).drain()
    assert len(said) == 1
    assert "started already" in said[0]
    assert seen.calls["square 4"] == 1
    assert seen.done == [{"result": {}, "children": []}]


# --- runs triggered through plain Hatchet (no signature) ----------------------


async def test_a_root_run_without_a_signature_signs_itself(
    local: HatchetMageflow, seen: Seen
) -> None:
    from mageflow.dispatch import RunRequest

    @local.task(name="plain-root")
    @local.root_task(max_concurrency=2)
    async def plain_root(msg: Fan) -> dict[str, int]:
        for x in range(msg.n):
            await (await local.sign("square", x=x)).aio_run_no_wait()
        return {"n": msg.n}

    run_id = await backend(local).trigger(RunRequest("plain-root", {"n": 3}, {}))
    await backend(local).drain()
    (run,) = [r for r in backend(local).runs if r.run_id == run_id]
    assert run.output == {"n": 3}  # the engine's run returns the body's result
    assert run.signature_id is None
    assert seen.calls == Counter({f"square {x}": 1 for x in range(3)})
    stored = [
        await local.load_signature(keys.signature_id_of(key))
        async for key in local.redis.scan_iter(keys.SIGNATURE_MATCH)
    ]
    (root,) = [s for s in stored if s is not None and s.task_name == "plain-root"]
    assert root.status is SignatureStatus.DONE
    assert root.outcome == {
        "result": {"n": 3},
        "children": [{"v": 0}, {"v": 1}, {"v": 4}],
    }


async def test_continue_from_a_run_without_a_signature_is_refused(
    local: HatchetMageflow, seen: Seen
) -> None:
    from mageflow.dispatch import RunRequest

    @local.task(name="plain-continue")
    async def plain_continue(msg: Num) -> mageflow.Continue[dict[str, int]]:
        return mageflow.Continue(await local.sign("square", x=1))

    run_id = await backend(local).trigger(RunRequest("plain-continue", {}, {}))
    await backend(local).drain()
    (run,) = [r for r in backend(local).runs if r.run_id == run_id]
    assert isinstance(run.error, mageflow.ContinuationError)
    assert "no signature" in str(run.error)
    assert seen.calls["square 1"] == 0


def test_the_continuation_limit_is_bounded(local: HatchetMageflow) -> None:
    assert local.max_continuations == 100
    local.max_continuations = 200
    with pytest.raises(ValueError, match="from 0 to 200"):
        local.max_continuations = 201
    with pytest.raises(ValueError, match="from 0 to 200"):
        local.max_continuations = True
    assert local.max_continuations == 200


async def test_two_hundred_continuations_settle(
    local: HatchetMageflow, seen: Seen
) -> None:
    local.max_continuations = 200

    @local.task(name="deep")
    async def deep(msg: Countdown) -> Total | mageflow.Continue[Total]:
        if msg.n == 0:
            return Total(total=msg.acc)
        return mageflow.Continue(await local.sign(deep, n=msg.n - 1, acc=msg.acc + 1))

    first = await local.sign(deep, n=200, success="all-done")
    assert await first.aio_run() == Total(total=200)
    await backend(local).drain()
    assert seen.done == [{"total": 200}]
