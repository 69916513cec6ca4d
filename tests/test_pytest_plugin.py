"""The pytest plugin, run the way users run it: pytest on a test file (pytester).

The plugin is loaded through its ``pytest11`` entry point, as in any project
that installs mageflow; Redis is real (``REDIS_URL`` from the suite's server,
or a private server the plugin starts itself).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mageflow.embedded import server_reachable

pytest_plugins = ["pytester"]

HEADER = """
from typing import Annotated, Any

import pytest
from hatchet_sdk import Context, Depends
from pydantic import BaseModel

import mageflow
from mageflow import ReturnValue, SignatureStatus, TaskError, TaskSignature


class Order(BaseModel):
    item: str
    quantity: int = 1


class Receipt(BaseModel):
    total: float


class Notify(BaseModel):
    receipt: ReturnValue[Receipt]
    channel: str = "mail"


class OnError(BaseModel):
    failure: ReturnValue[TaskError]


def declare(client):
    @client.task(name="price")
    async def price(msg: Order) -> Receipt:
        if msg.item == "boom":
            raise RuntimeError("no price for boom")
        return Receipt(total=2.5 * msg.quantity)

    @client.task(name="notify")
    async def notify(msg: Notify) -> dict:
        return {"sent": msg.channel}

    @client.task(name="on-error")
    async def on_error(msg: OnError) -> None:
        return None

    return price, notify, on_error
"""


@pytest.fixture
def run_tests(
    pytester: pytest.Pytester, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    monkeypatch.setenv("REDIS_URL", redis_url)
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    return pytester


def test_the_runner_runs_signatures_and_callbacks_and_asserts_on_them(
    run_tests: pytest.Pytester,
) -> None:
    run_tests.makepyfile(
        HEADER
        + """
async def test_flow(mageflow_runner):
    price, notify, on_error = declare(mageflow_runner.client)
    sms = await mageflow.sign(notify, channel="sms")
    failed = await mageflow.sign(on_error)
    sig = await mageflow.sign(price, success=sms, error=failed, quantity=4)
    await sig.aio_run_no_wait({"item": "tea"})
    await mageflow_runner.drain()

    run = mageflow_runner.assert_dispatched(price, {"item": "tea", "quantity": 4})
    assert run.output == {"total": 10.0}
    mageflow_runner.assert_dispatched("notify", {"receipt": {"total": 10.0}}, times=1)
    mageflow_runner.assert_not_dispatched(on_error)

    tree = await mageflow_runner.tree(sig)
    assert tree.statuses() == {"price": "done", "notify": "done", "on-error": "pending"}
    text = str(tree)
    assert text.splitlines()[0].startswith("price [done] " + sig.id)
    assert "├── on success: notify [done]" in text
    assert "└── on error: on-error [pending]" in text
    assert 'kwargs={"quantity":4}' in text
    assert tree.find("notify").children == []


async def test_errors_reach_error_callbacks(mageflow_runner):
    price, notify, on_error = declare(mageflow_runner.client)
    failed = await mageflow.sign(on_error)
    sig = await mageflow.sign(price, error=failed)
    await sig.aio_run_no_wait({"item": "boom"})
    await mageflow_runner.drain()
    run = mageflow_runner.assert_dispatched("on-error")
    assert run.input["failure"]["message"] == "no price for boom"
    tree = await mageflow_runner.tree(sig.id)
    assert tree.status == "failed"
    assert "error=" in tree.line()
    assert tree.children[0].status == "done"
"""
    )
    result = run_tests.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_failed_assertions_read_well(run_tests: pytest.Pytester) -> None:
    run_tests.makepyfile(
        HEADER
        + """
async def test_wrong_input(mageflow_runner):
    price, notify, on_error = declare(mageflow_runner.client)
    await (await mageflow.sign(price)).aio_run_no_wait({"item": "tea"})
    await (await mageflow.sign(price)).aio_run_no_wait({"item": "boom"})
    await mageflow_runner.drain()
    mageflow_runner.assert_dispatched(price, {"item": "coffee"})


async def test_unexpected_dispatch(mageflow_runner):
    price, notify, on_error = declare(mageflow_runner.client)
    await (await mageflow.sign(price)).aio_run_no_wait({"item": "tea"})
    await mageflow_runner.drain()
    mageflow_runner.assert_not_dispatched("price")


async def test_wrong_count(mageflow_runner):
    price, notify, on_error = declare(mageflow_runner.client)
    await (await mageflow.sign(price)).aio_run_no_wait({"item": "tea"})
    await mageflow_runner.drain()
    mageflow_runner.assert_dispatched(price, {"item": "tea"}, times=2)


async def test_never_dispatched(mageflow_runner):
    declare(mageflow_runner.client)
    mageflow_runner.assert_dispatched("notify")
"""
    )
    result = run_tests.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(
        [
            "E * expected a run of 'price' with input containing"
            " {'item': 'coffee'}, found none.",
            "E * Runs of 'price': 2",
            # ("[[]" is a literal "[" in these glob patterns.)
            "E * #1 input={'item': 'tea'} [[]succeeded] signature=*",
            "E * #2 input={'item': 'boom'} [[]failed, RuntimeError:"
            " no price for boom] signature=*",
            "E * No other task was dispatched.",
        ]
    )
    result.stdout.fnmatch_lines(["E * expected no run of 'price', found 1.*"])
    result.stdout.fnmatch_lines(
        ["E * expected 2 run(s) of 'price' with input containing *, found 1*"]
    )
    result.stdout.fnmatch_lines(
        ["E * expected a run of 'notify', found none.", "E * Runs of 'notify': none"]
    )


def test_each_test_gets_a_clean_redis_and_a_fresh_client(
    run_tests: pytest.Pytester,
) -> None:
    run_tests.makepyfile(
        """
import pytest

@pytest.mark.parametrize("n", [1, 2])
async def test_isolated(mageflow_runner, n):
    redis = mageflow_runner.client.redis
    assert await redis.dbsize() == 0
    assert mageflow_runner.runs == []
    assert mageflow_runner.client.registered_task("t") is None

    @mageflow_runner.client.task(name="t")
    async def t(msg: dict) -> None:
        return None

    await redis.set("leftover", n)
"""
    )
    run_tests.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_without_redis_url_a_private_server_runs_for_the_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    seen = tmp_path / "url"
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(
        f"""
from pathlib import Path

async def test_one(mageflow_runner, mageflow_redis_url):
    assert mageflow_redis_url.startswith("unix://")
    assert await mageflow_runner.client.redis.ping()
    Path({str(seen)!r}).write_text(mageflow_redis_url)

async def test_two(mageflow_redis_url):
    assert Path({str(seen)!r}).read_text() == mageflow_redis_url
"""
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
    url = seen.read_text()
    assert url.startswith("unix://")
    assert not server_reachable(url)  # stopped with the session


def test_override_replaces_dependencies_and_injectables(
    run_tests: pytest.Pytester,
) -> None:
    run_tests.makepyfile(
        HEADER
        + """
async def real_db(msg: Order, ctx: Context) -> str:
    return "real-db"


def region(msg: Order, ctx: Context) -> str:
    return "eu"


async def label(
    msg: Order, ctx: Context, where: Annotated[str, Depends(region)]
) -> str:
    return f"{msg.item}@{where}"


def declare_deps(client, seen):
    @client.task(name="uses-deps")
    async def uses_deps(
        msg: Order,
        db: Annotated[str, Depends(real_db)],
        tag: Annotated[str, Depends(label)],
    ) -> dict:
        seen.append((db, tag))
        return {"db": db, "tag": tag}

    @client.task(name="uses-ctx")
    async def uses_ctx(msg: Order, ctx: Context, sig: TaskSignature | None) -> dict:
        seen.append((ctx, sig))
        return {}

    return uses_deps, uses_ctx


async def run(runner, task, **message):
    sig = await mageflow.sign(task)
    await sig.aio_run_no_wait(message)
    await runner.drain()


async def test_depends_values_and_factories(mageflow_runner):
    seen = []
    uses_deps, _ = declare_deps(mageflow_runner.client, seen)

    await run(mageflow_runner, uses_deps, item="tea")
    assert seen.pop() == ("real-db", "tea@eu")

    with mageflow_runner.override(real_db, "fake-db"):
        await run(mageflow_runner, uses_deps, item="tea")
        assert seen.pop() == ("fake-db", "tea@eu")
        # A nested dependency, by its Depends object, with an async factory.
        async def us(msg, ctx):
            return "us-" + msg.item
        with mageflow_runner.override(Depends(region), us):
            await run(mageflow_runner, uses_deps, item="tea")
            assert seen.pop() == ("fake-db", "tea@us-tea")
        # Restored on exit, the outer override still on.
        await run(mageflow_runner, uses_deps, item="tea")
        assert seen.pop() == ("fake-db", "tea@eu")
    with mageflow_runner.override(label, lambda: "fixed"):
        await run(mageflow_runner, uses_deps, item="tea")
        assert seen.pop() == ("real-db", "fixed")
    await run(mageflow_runner, uses_deps, item="tea")
    assert seen.pop() == ("real-db", "tea@eu")


async def test_context_and_signature(mageflow_runner):
    seen = []
    _, uses_ctx = declare_deps(mageflow_runner.client, seen)
    fake_ctx = object()
    fake_sig = object()
    with mageflow_runner.override(Context, fake_ctx), mageflow_runner.override(
        TaskSignature, fake_sig
    ):
        await run(mageflow_runner, uses_ctx, item="tea")
        assert seen.pop() == (fake_ctx, fake_sig)
    await run(mageflow_runner, uses_ctx, item="tea")
    ctx, sig = seen.pop()
    assert isinstance(ctx, Context)
    assert isinstance(sig, TaskSignature)
    assert sig.status is SignatureStatus.ACTIVE


async def test_a_context_factory_sees_the_real_context(mageflow_runner):
    seen = []
    _, uses_ctx = declare_deps(mageflow_runner.client, seen)
    with mageflow_runner.override(Context, lambda msg, ctx: ("wrapped", ctx)):
        await run(mageflow_runner, uses_ctx, item="tea")
    (label, real), _ = seen.pop()
    assert label == "wrapped"
    assert isinstance(real, Context)


async def test_plain_runs_without_a_signature_are_overridden_too(mageflow_runner):
    seen = []

    @mageflow_runner.client.task(name="plain-ctx")
    async def plain_ctx(msg: Order, ctx: Context) -> None:
        seen.append(ctx)

    with mageflow_runner.override(Context, "not-a-context"):
        await plain_ctx.aio_mock_run(Order(item="x"))
    assert seen == ["not-a-context"]


def test_bad_targets_and_factories_are_refused(mageflow_runner):
    with pytest.raises(TypeError, match="not injected by mageflow"):
        with mageflow_runner.override(Order, None):
            pass
    with pytest.raises(TypeError, match="called like a dependency"):
        with mageflow_runner.override(real_db, lambda only_one: 1):
            pass
"""
    )
    result = run_tests.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


def test_unknown_ids_and_drain_timeouts_are_clear(run_tests: pytest.Pytester) -> None:
    run_tests.makepyfile(
        HEADER
        + """
import asyncio

from mageflow import SignatureNotFoundError


async def test_unknown_signature(mageflow_runner):
    with pytest.raises(SignatureNotFoundError, match="no signature nope"):
        await mageflow_runner.tree("nope")


async def test_drain_timeout_names_the_runs(mageflow_runner):
    never = asyncio.Event()

    @mageflow_runner.client.task(name="stuck")
    async def stuck(msg: dict) -> None:
        await never.wait()

    await (await mageflow.sign(stuck)).aio_run_no_wait()
    with pytest.raises(
        TimeoutError, match=r"1 local run\\(s\\) still in flight.*stuck"
    ):
        await mageflow_runner.drain(timeout=0.05)
    # The fixture cancels what is left at teardown.
"""
    )
    run_tests.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


MODES_MODULE = """
import asyncio

import pytest
import pytest_asyncio


def asyncio_marks(request):
    return list(request.node.iter_markers("asyncio"))


async def test_unmarked(mageflow_runner, request):
    await asyncio.sleep(0)  # ok: an await, so the test is a real coroutine
    assert await mageflow_runner.client.redis.ping()
    assert len(asyncio_marks(request)) == 1


async def test_the_body_runs(mageflow_runner):
    await asyncio.sleep(0)  # ok: an await, so the test is a real coroutine
    raise AssertionError("the body of an unmarked test ran")


@pytest.mark.asyncio
async def test_marked_by_hand(mageflow_runner, request):
    assert await mageflow_runner.client.redis.ping()
    assert len(asyncio_marks(request)) == 1


@pytest.mark.asyncio(loop_scope="function")
async def test_its_own_mark_is_kept(mageflow_runner, request):
    assert await mageflow_runner.client.redis.ping()
    (mark,) = asyncio_marks(request)
    assert mark.kwargs == {"loop_scope": "function"}


@pytest.fixture
def client(mageflow_runner):
    return mageflow_runner.client


@pytest_asyncio.fixture
async def pinged(mageflow_runner):
    return await mageflow_runner.client.redis.ping()


async def test_through_a_fixture(client):
    assert await client.redis.ping()


async def test_through_an_async_fixture(pinged):
    assert pinged


@pytest.mark.parametrize("n", [1, 2])
async def test_parametrized(mageflow_runner, n):
    assert await mageflow_runner.client.redis.ping()


class TestInAClass:
    async def test_method(self, mageflow_runner):
        assert await mageflow_runner.client.redis.ping()


def test_a_sync_test_is_not_marked(mageflow_runner, request):
    assert asyncio_marks(request) == []
    assert mageflow_runner.runs == []


async def test_not_ours():
    # Without mageflow_runner the plugin leaves the test to the mode.
    await asyncio.sleep(0)  # ok: an await, so the test is a real coroutine
"""

MODULE_MARKED = """
import pytest

pytestmark = pytest.mark.asyncio


async def test_module_mark(mageflow_runner, request):
    assert await mageflow_runner.client.redis.ping()
    assert len(list(request.node.iter_markers("asyncio"))) == 1
"""


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_async_tests_using_the_runner_run_in_strict_and_auto_mode(
    pytester: pytest.Pytester,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    # strict is pytest-asyncio's default: that ini has no asyncio_mode.
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        + ("asyncio_mode = auto\n" if mode == "auto" else "")
    )
    pytester.makepyfile(test_modes=MODES_MODULE, test_module_marked=MODULE_MARKED)
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--strict-markers",
        "-W",
        "error::pytest.PytestWarning",
    )
    result.stdout.re_match_lines([rf"asyncio: mode=(Mode\.)?({mode}|{mode.upper()})\b"])
    result.stdout.fnmatch_lines(["E * the body of an unmarked test ran"])
    if mode == "strict":
        # Strict mode still decides for async tests that do not use the runner.
        result.assert_outcomes(passed=10, failed=2)
        result.stdout.fnmatch_lines(
            ["FAILED *::test_not_ours - Failed: async def functions are not nat*"]
        )
    else:
        result.assert_outcomes(passed=11, failed=1)


def test_your_own_client_can_drive_the_runner_across_tests(
    run_tests: pytest.Pytester,
) -> None:
    # The client of an application: declared once, at import, and shared by
    # every test through an overridden mageflow_client.
    run_tests.makepyfile(
        app="""
import os

import mageflow

client = mageflow.Mageflow(redis_client=os.environ["REDIS_URL"], backend="local")


@client.task(name="double")
async def double(msg: dict) -> dict:
    return {"n": msg["n"] * 2}
""",
        conftest="""
import pytest

import app


@pytest.fixture
def mageflow_client():
    return app.client
""",
        test_own_client="""
import pytest

import app
import mageflow


@pytest.mark.parametrize("n", [1, 2, 3])
async def test_double(mageflow_runner, n):
    assert mageflow_runner.client is app.client
    assert mageflow_runner.runs == []  # not the runs of the tests before
    await (await mageflow.sign(app.double)).aio_run_no_wait({"n": n})
    await mageflow_runner.drain()
    run = mageflow_runner.assert_dispatched(app.double, times=1)
    assert run.output == {"n": 2 * n}
""",
        test_not_local="""
import pytest

import mageflow
from mageflow.testing import offline_hatchet


@pytest.fixture
def mageflow_client(mageflow_redis_url):
    return mageflow.Mageflow(offline_hatchet(), redis_client=mageflow_redis_url)


async def test_refused(mageflow_runner):
    pass
""",
    )
    result = run_tests.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        ["E * TypeError: mageflow_runner needs a client on the local backend*"]
    )


def test_runs_still_going_at_the_end_of_a_test_are_cancelled(
    run_tests: pytest.Pytester,
) -> None:
    run_tests.makepyfile(
        """
import asyncio

import mageflow

seen = []


async def test_leaves_a_run_going(mageflow_runner):
    started = asyncio.Event()

    @mageflow_runner.client.task(name="stuck")
    async def stuck(msg: dict) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    await (await mageflow.sign(stuck)).aio_run_no_wait()
    await started.wait()
    (run,) = mageflow_runner.runs
    assert run.state.value == "running"


def test_it_was_cancelled_at_teardown():
    assert seen == ["cancelled"]
"""
    )
    run_tests.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_the_tree_shows_chain_steps_swarm_items_and_what_nodes_hold(
    run_tests: pytest.Pytester,
) -> None:
    run_tests.makepyfile(
        HEADER
        + """
async def test_chain_and_swarm(mageflow_runner):
    price, notify, on_error = declare(mageflow_runner.client)
    chain = await mageflow.chain(
        [await mageflow.sign(price, quantity=2), await mageflow.sign(notify)]
    )
    swarm = await mageflow.swarm([price, price])
    await chain.aio_run_no_wait({"item": "tea"})
    await swarm.aio_run_no_wait({"item": "tea"})
    await swarm.close()
    await mageflow_runner.drain()

    tree = await mageflow_runner.tree(chain)
    assert tree.status == "done"
    assert [(c.role, c.task_name) for c in tree.children] == [
        ("step 1", "price"),
        ("step 2", "notify"),
    ]
    step = tree.find("price")
    assert step.kwargs == {"quantity": 2}
    assert step.outcome == {"total": 5.0}
    assert step.duration is not None
    assert step.duration >= 0
    assert "step 1: price [done]" in str(tree)

    tree = await mageflow_runner.tree(swarm.id)
    assert tree.status == "done"
    assert [(c.role, c.status) for c in tree.children] == [
        ("item 1", "done"),
        ("item 2", "done"),
    ]
"""
    )
    run_tests.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_override_factories_values_and_nesting_as_documented(
    run_tests: pytest.Pytester,
) -> None:
    run_tests.makepyfile(
        HEADER
        + """
import contextlib
import functools
from unittest.mock import MagicMock


def real_db(msg: Order, ctx: Context) -> object:
    return "real-db"


def region(msg: Order, ctx: Context) -> str:
    return "ctx" if isinstance(ctx, Context) else f"ctx={ctx}"


def declare_deps(client, seen):
    @client.task(name="uses-deps")
    async def uses_deps(
        msg: Order,
        db: Annotated[object, Depends(real_db)],
        where: Annotated[str, Depends(region)],
    ) -> None:
        seen.append((db, where))

    return uses_deps


async def run(runner, task):
    await (await mageflow.sign(task)).aio_run_no_wait({"item": "tea"})
    await runner.drain()


async def test_a_returned_context_manager_is_entered_and_exited(mageflow_runner):
    seen, events = [], []
    uses_deps = declare_deps(mageflow_runner.client, seen)

    @contextlib.asynccontextmanager
    async def session():
        events.append("enter")
        yield "session"
        events.append("exit")

    with mageflow_runner.override(real_db, lambda: session()):
        await run(mageflow_runner, uses_deps)
    assert seen.pop() == ("session", "ctx")
    assert events == ["enter", "exit"]


class Databases:
    def make(self, msg, ctx):
        return f"method-{msg.item}"


async def test_partials_methods_mocks_and_wrapped_functions(mageflow_runner):
    seen = []
    uses_deps = declare_deps(mageflow_runner.client, seen)
    labelled = functools.partial(lambda label, msg, ctx: f"{label}-{msg.item}", "p")
    with mageflow_runner.override(real_db, labelled):
        await run(mageflow_runner, uses_deps)
    assert seen.pop()[0] == "p-tea"
    with mageflow_runner.override(real_db, Databases().make):
        await run(mageflow_runner, uses_deps)
    assert seen.pop()[0] == "method-tea"
    mock = MagicMock()
    with mageflow_runner.override(real_db, mock):
        await run(mageflow_runner, uses_deps)
    assert seen.pop()[0] is mock
    mock.assert_not_called()
    with mageflow_runner.override(real_db, lambda: len):
        await run(mageflow_runner, uses_deps)
    assert seen.pop()[0] is len


async def test_a_context_override_reaches_dependencies(mageflow_runner):
    seen = []
    uses_deps = declare_deps(mageflow_runner.client, seen)
    with mageflow_runner.override(Context, "fake"):
        await run(mageflow_runner, uses_deps)
    assert seen.pop() == ("real-db", "ctx=fake")


async def test_the_same_target_nests_and_is_restored(mageflow_runner):
    seen = []
    uses_deps = declare_deps(mageflow_runner.client, seen)
    with mageflow_runner.override(real_db, "outer"):
        with mageflow_runner.override(Depends(real_db), "inner"):
            await run(mageflow_runner, uses_deps)
            assert seen.pop()[0] == "inner"
        await run(mageflow_runner, uses_deps)
        assert seen.pop()[0] == "outer"
    await run(mageflow_runner, uses_deps)
    assert seen.pop()[0] == "real-db"
    assert mageflow_runner.client.dependency_overrides == {}
"""
    )
    run_tests.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=4)


@pytest.mark.parametrize("fixture_loop", ["function", "module"])
def test_a_wider_test_loop_needs_the_same_fixture_loop(
    pytester: pytest.Pytester,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    fixture_loop: str,
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    pytester.makeini(f"[pytest]\nasyncio_default_fixture_loop_scope = {fixture_loop}\n")
    pytester.makepyfile(
        """
import pytest

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_one(mageflow_runner):
    assert await mageflow_runner.client.redis.ping()


async def test_two(mageflow_runner):
    assert await mageflow_runner.client.redis.ping()
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    if fixture_loop == "module":
        result.assert_outcomes(passed=2)
    else:
        # The fixture on a loop of its own: docs/testing.md says how it fails.
        result.assert_outcomes(failed=2)
        result.stdout.fnmatch_lines(["E * attached to a different loop"])
