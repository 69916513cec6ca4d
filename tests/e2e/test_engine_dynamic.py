"""Dynamic workflows on a real Hatchet engine: a root task whose children are
what its body starts, and continuations (a branch chosen at run time, and a
chain step that hands its outcome over).

Every run goes through the engine to the worker subprocess. The tasks write
what they did into Redis (``tests/e2e/e2e_tasks.py``); the tests wait for
those facts, or for a run's own end, with a timeout, never a fixed sleep.
"""

from __future__ import annotations

import subprocess
from types import ModuleType

import pytest
from e2e_helpers import (
    counts,
    events,
    events_named,
    eventually,
    key,
    status,
    statuses,
    within,
)
from redis.asyncio import Redis

import mageflow
from mageflow import SignatureStatus

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture(autouse=True)
def _worker_alive(worker: subprocess.Popen[bytes]) -> None:
    assert worker.poll() is None, "the e2e worker has exited"


async def loaded(
    mf: mageflow.HatchetMageflow, signature_id: str
) -> mageflow.TaskSignature:
    signature = await mf.load_signature(signature_id)
    assert signature is not None, f"signature {signature_id} is gone"
    return signature


# --- a root task with 20 children ----------------------------------------------


async def test_root_with_20_children_settles_after_them_with_their_outcomes(
    tasks: ModuleType, redis: Redis
) -> None:
    mf, k = tasks.mf, key()
    n, cap = 20, tasks.ROOT_CAP
    on_ok = await mf.sign(tasks.collect, key=k)
    root = await mf.sign(tasks.fan_out, success=on_ok)
    summary = {"key": k, "started": n}
    try:
        run_id = await root.aio_run_no_wait({"key": k, "n": n})
        # The body returns while its children wait at the gate: the engine's
        # run of the root completes with the body's result ...
        output = await within(tasks.hatchet.runs.get_run_ref(run_id).aio_result())
        assert output == {"e2e-root": summary}

        # ... and the cap fills up, but the root has not settled: it waits.
        async def cap_reached() -> bool:
            return int(await redis.get(f"e2e:root-running:{k}") or 0) >= cap

        await eventually(cap_reached, f"{cap} children running at the gate")
        assert len(await counts(redis, f"e2e:root-runs:{k}")) == cap
        assert await status(mf, root.id) is SignatureStatus.ACTIVE
        assert await events_named(redis, k, "collected") == []
    finally:
        # open it whatever happened, so no child holds a worker slot for long
        await redis.set(f"e2e:gate:{k}", "1")
    # waiting for the root gives the body's result, once everything settled
    assert await within(root.aio_result(timeout=120)) == tasks.FanSummary(**summary)

    (collected,) = await eventually(
        lambda: events_named(redis, k, "collected"), "the root's success callback"
    )
    children = [{"i": i, "square": i * i} for i in range(n)]
    expected = {"result": summary, "children": children}
    assert collected["result"] == expected
    typed = mageflow.RootResult[tasks.FanSummary].model_validate(collected["result"])
    assert typed.result == tasks.FanSummary(**summary)
    assert len(typed.children) == n

    # every child ran exactly once; never more than the cap at once
    assert await counts(redis, f"e2e:root-runs:{k}") == {i: 1 for i in range(n)}
    peak = int(await redis.get(f"e2e:root-peak:{k}") or 0)
    assert peak == cap, f"peak {peak} concurrent children under max_concurrency={cap}"
    assert int(await redis.get(f"e2e:root-running:{k}") or 0) == 0
    assert len(await events_named(redis, k, "root-body")) == 1

    stored = await loaded(mf, root.id)
    assert stored.status is SignatureStatus.DONE
    assert stored.outcome == expected
    assert stored.root_swarm_id is not None
    assert await status(mf, stored.root_swarm_id) is SignatureStatus.DONE
    child_ids = await redis.lrange(f"e2e:root-children:{k}", 0, -1)
    assert len(set(child_ids)) == n
    assert await statuses(mf, child_ids) == [SignatureStatus.DONE] * n
    for child_id, outcome in zip(child_ids, children, strict=True):
        child = await loaded(mf, child_id)
        assert child.outcome == outcome
        assert child.container_id == stored.root_swarm_id
    assert await status(mf, on_ok.id) is SignatureStatus.DONE
    assert [e["event"] for e in await events(redis, k)] == ["root-body", "collected"]


async def test_root_run_waited_for_returns_the_bodys_result(
    tasks: ModuleType, redis: Redis
) -> None:
    mf, k = tasks.mf, key()
    await redis.set(f"e2e:gate:{k}", "1")  # the children need not wait
    root = await mf.sign(tasks.fan_out)
    assert await within(root.aio_run({"key": k, "n": 3})) == tasks.FanSummary(
        key=k, started=3
    )
    # it returned once the children had finished too, not at the body's end
    assert await counts(redis, f"e2e:root-runs:{k}") == {0: 1, 1: 1, 2: 1}
    assert int(await redis.get(f"e2e:root-running:{k}") or 0) == 0
    stored = await loaded(mf, root.id)
    assert stored.status is SignatureStatus.DONE
    assert stored.outcome == {
        "result": {"key": k, "started": 3},
        "children": [{"i": i, "square": i * i} for i in range(3)],
    }


# --- continuations ---------------------------------------------------------------


@pytest.mark.parametrize(("x", "branch"), [(4, "even"), (7, "odd")])
async def test_a_branch_chosen_at_run_time_is_the_routers_result(
    tasks: ModuleType, redis: Redis, x: int, branch: str
) -> None:
    mf, k = tasks.mf, key()
    on_ok = await mf.sign(tasks.collect, key=k)
    routed = await mf.sign(tasks.route, success=on_ok, key=k)

    expected = {"branch": branch, "v": x * 10}
    run_id = await routed.aio_run_no_wait({"x": x})
    assert await within(routed.aio_result(timeout=60)) == expected
    # the engine's run of the router has no output: the outcome is stored
    output = await within(tasks.hatchet.runs.get_run_ref(run_id).aio_result())
    assert output.get("e2e-route") is None
    (collected,) = await eventually(
        lambda: events_named(redis, k, "collected"), "the router's success callback"
    )
    assert collected["result"] == expected
    # the router ran once, then only the branch it chose
    assert [e["event"] for e in await events(redis, k)] == [
        "route",
        branch,
        "collected",
    ]
    assert [e["x"] for e in await events_named(redis, k, branch)] == [x]

    stored = await loaded(mf, routed.id)
    assert stored.status is SignatureStatus.DONE
    assert stored.outcome == expected
    assert stored.continuation_id is not None
    work = await loaded(mf, stored.continuation_id)
    # the chosen branch's task (its name as the engine knows it: namespaced)
    assert work.task_name == getattr(tasks, f"branch_{branch}").name
    assert work.status is SignatureStatus.DONE
    assert work.outcome == expected


async def test_a_router_may_answer_at_once_without_continuing(
    tasks: ModuleType, redis: Redis
) -> None:
    mf, k = tasks.mf, key()
    routed = await mf.sign(tasks.route, key=k)
    expected = {"branch": "direct", "v": -30}
    assert await within(routed.aio_run({"x": -3})) == expected
    assert [e["event"] for e in await events(redis, k)] == ["route"]
    stored = await loaded(mf, routed.id)
    assert (stored.status, stored.outcome) == (SignatureStatus.DONE, expected)
    assert stored.continuation_id is None


async def test_a_chain_step_that_continues_passes_the_continuations_result_on(
    tasks: ModuleType, redis: Redis
) -> None:
    mf, k = tasks.mf, key()
    router = await mf.sign(tasks.route, key=k, x=3)
    after = await mf.sign(tasks.add, plus=1)
    chain = await mf.chain([router, after, await mf.sign(tasks.collect, key=k)])
    await chain.aio_run_no_wait({})

    (collected,) = await eventually(
        lambda: events_named(redis, k, "collected"), "the chain's last step"
    )
    # the odd branch gave {"branch": "odd", "v": 30}; the next step added 1
    assert collected["result"] == {"v": 31}
    assert [e["event"] for e in await events(redis, k)] == [
        "route",
        "odd",
        "collected",
    ]
    assert await within(chain.aio_result(timeout=60)) is None
    assert await status(mf, chain.id) is SignatureStatus.DONE
    assert await statuses(mf, chain.steps) == [SignatureStatus.DONE] * 3
    step = await loaded(mf, router.id)
    assert step.outcome == {"branch": "odd", "v": 30}
    assert step.continuation_id is not None
    work = await loaded(mf, step.continuation_id)
    assert (work.task_name, work.outcome) == (tasks.branch_odd.name, step.outcome)
    assert (await loaded(mf, after.id)).outcome == {"v": 31}
