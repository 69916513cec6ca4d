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
    await asyncio.sleep(0)
    assert await mageflow_runner.client.redis.ping()
    assert len(asyncio_marks(request)) == 1


async def test_the_body_runs(mageflow_runner):
    await asyncio.sleep(0)
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
    await asyncio.sleep(0)
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
