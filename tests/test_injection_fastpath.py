"""The shorter run path against the general one, plan shape by plan shape.

A run with no signature, no values given by name and no test overrides takes
:func:`mageflow.injection.resolve.unsigned_call`, made once per task at
decoration. Every other run takes the general path,
:func:`mageflow.run.call.call_user` (``assemble`` /
``call_with_dependencies``). The two must give the task function the same
arguments: each test here runs both on one plan and compares what the task
function received, and checks that against the values expected, so a change
that broke both the same way fails too.

Like ``test_injection.py``, this module does not use
``from __future__ import annotations``: the tasks see real annotations.
"""

import functools
import random
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from typing import Annotated, Any

import pytest
from annotated_modules import local_scope
from hatchet_sdk import Context, Depends, DurableContext
from pydantic import BaseModel

import mageflow.run.entry
from mageflow import AcceptParams, HatchetMageflow, MissingSignatureError, TaskSignature
from mageflow.injection.plan import InjectionPlan, build_plan
from mageflow.injection.resolve import (
    Exits,
    Override,
    assemble_with_dependencies,
    unsigned_call,
)
from mageflow.markers import read_marks
from mageflow.run.call import call_user
from mageflow.run.runtime import TaskRuntime
from mageflow.scope import in_effect


class In(BaseModel):
    value: int


class Out(BaseModel):
    value: int
    note: str = ""


MSG = In(value=1)


class FakeContext:
    """Stands in for the run context: injection passes it on untouched."""


CTX: Any = FakeContext()


def plan_of(
    fn: Callable[..., Any],
    *,
    config: AcceptParams = AcceptParams.NO_CTX,
    durable: bool = False,
) -> InjectionPlan:
    return build_plan(
        fn,
        task_name=getattr(fn, "__name__", "task"),
        durable=durable,
        config=config,
        marks=read_marks(fn),
    )


@pytest.fixture
def runtime(client: HatchetMageflow) -> TaskRuntime:
    """The general path's collaborators, with no overrides."""
    return TaskRuntime(client.engine, {}, random.Random(0), in_effect, client)


async def both_paths(
    plan: InjectionPlan, runtime: TaskRuntime, ctx: Any = CTX
) -> tuple[Any, Any]:
    """What the shorter path returns, then what the general path returns."""
    shorter = await unsigned_call(plan)(MSG, ctx)
    general = await call_user(plan, MSG, ctx, None, {}, runtime)
    return shorter, general


# --- no dependencies -----------------------------------------------------------


async def ctx_only(msg: In, ctx: Context) -> dict[str, Any]:
    return dict(locals())


async def test_ctx_only(runtime: TaskRuntime) -> None:
    plan = plan_of(ctx_only)
    shorter, general = await both_paths(plan, runtime)

    assert shorter == general == {"msg": MSG, "ctx": CTX}
    assert shorter["ctx"] is CTX
    # Passed by position, the call needs nothing between the run and the task.
    assert unsigned_call(plan) is ctx_only


async def signature_only(msg: In, signature: TaskSignature | None) -> dict[str, Any]:
    return dict(locals())


async def unannotated_signature(msg: In, signature=None) -> dict[str, Any]:
    return dict(locals())


@pytest.mark.parametrize(
    ("fn", "config"),
    [
        (signature_only, AcceptParams.NO_CTX),
        (unannotated_signature, AcceptParams.ALL),
    ],
    ids=["annotated", "unannotated-with-ALL"],
)
async def test_signature_only(
    runtime: TaskRuntime, fn: Callable[..., Any], config: AcceptParams
) -> None:
    plan = plan_of(fn, config=config)
    assert plan.wants_signature
    shorter, general = await both_paths(plan, runtime)

    # An unsigned run has no signature to give.
    assert shorter == general == {"msg": MSG, "signature": None}


async def ctx_signature_default(
    msg: In, ctx: Context, signature: TaskSignature | None = None, scale: int = 2
) -> dict[str, Any]:
    return dict(locals())


async def signature_then_ctx(
    msg: In, signature: TaskSignature | None, ctx: Context
) -> dict[str, Any]:
    return dict(locals())


async def unannotated_ctx_and_signature(msg, ctx, signature=None):
    return dict(locals())


async def ctx_signature_then_default(
    msg: In, ctx: Context, signature: TaskSignature | None, scale: int = 3
) -> dict[str, Any]:
    return dict(locals())


@pytest.mark.parametrize(
    ("fn", "config", "expected"),
    [
        (
            ctx_signature_default,
            AcceptParams.NO_CTX,
            {"ctx": CTX, "signature": None, "scale": 2},
        ),
        (signature_then_ctx, AcceptParams.NO_CTX, {"signature": None, "ctx": CTX}),
        (
            unannotated_ctx_and_signature,
            AcceptParams.ALL,
            {"ctx": CTX, "signature": None},
        ),
        (
            ctx_signature_then_default,
            AcceptParams.NO_CTX,
            {"ctx": CTX, "signature": None, "scale": 3},
        ),
    ],
    ids=["ctx-sig-default", "sig-ctx", "unannotated-with-ALL", "ctx-sig-then-default"],
)
async def test_ctx_and_signature(
    runtime: TaskRuntime,
    fn: Callable[..., Any],
    config: AcceptParams,
    expected: dict[str, Any],
) -> None:
    plan = plan_of(fn, config=config)
    shorter, general = await both_paths(plan, runtime)

    assert shorter == general == {"msg": MSG, **expected}
    assert shorter["ctx"] is CTX


async def keyword_only_ctx(msg: In, *, ctx: Context) -> dict[str, Any]:
    return dict(locals())


async def default_before_ctx(
    msg: In, scale: int = 4, ctx: Context = None
) -> dict[str, Any]:
    return dict(locals())


async def positional_only_ctx(msg: In, ctx: Context, /) -> dict[str, Any]:
    return dict(locals())


async def positional_only_default_first(
    msg: In,
    scale: int = 5,
    /,
    ctx: Context = None,
) -> dict[str, Any]:
    return dict(locals())


async def positional_only_default_before(
    msg: In,
    scale: int = 6,
    ctx: Context = None,
    /,
) -> dict[str, Any]:
    return dict(locals())


async def with_variadics(
    msg: In, ctx: Context, *rest: Any, **extra: Any
) -> dict[str, Any]:
    return dict(locals())


async def only_the_message(msg: In, scale: int = 7) -> dict[str, Any]:
    return dict(locals())


async def unannotated_second(msg, ctx):
    return dict(locals())


async def keyword_only_signature_default_ctx(
    msg: In, *, signature: TaskSignature | None, scale: int = 9, ctx: Context
) -> dict[str, Any]:
    return dict(locals())


@pytest.mark.parametrize(
    ("fn", "config", "expected"),
    [
        (keyword_only_ctx, AcceptParams.NO_CTX, {"ctx": CTX}),
        (default_before_ctx, AcceptParams.NO_CTX, {"scale": 4, "ctx": CTX}),
        (positional_only_ctx, AcceptParams.NO_CTX, {"ctx": CTX}),
        (positional_only_default_first, AcceptParams.NO_CTX, {"scale": 5, "ctx": CTX}),
        (
            positional_only_default_before,
            AcceptParams.NO_CTX,
            {"scale": 6, "ctx": CTX},
        ),
        (with_variadics, AcceptParams.NO_CTX, {"ctx": CTX, "rest": (), "extra": {}}),
        (only_the_message, AcceptParams.NO_CTX, {"scale": 7}),
        (unannotated_second, AcceptParams.CTX_ONLY, {"ctx": CTX}),
        (
            keyword_only_signature_default_ctx,
            AcceptParams.NO_CTX,
            {"signature": None, "scale": 9, "ctx": CTX},
        ),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
async def test_other_plain_shapes(
    runtime: TaskRuntime,
    fn: Callable[..., Any],
    config: AcceptParams,
    expected: dict[str, Any],
) -> None:
    shorter, general = await both_paths(plan_of(fn, config=config), runtime)

    assert shorter == general == {"msg": MSG, **expected}


def sync_task(msg: In, ctx: Context) -> dict[str, Any]:
    return {**locals(), "thread": threading.get_ident()}


async def test_a_sync_task_runs_in_a_worker_thread_on_both_paths(
    runtime: TaskRuntime,
) -> None:
    shorter, general = await both_paths(plan_of(sync_task), runtime)

    loop_thread = threading.get_ident()
    assert shorter["thread"] != loop_thread
    assert general["thread"] != loop_thread
    for received in (shorter, general):
        del received["thread"]
    assert shorter == general == {"msg": MSG, "ctx": CTX}


# --- what is passed by position --------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "by_position", "by_name"),
    [
        (ctx_only, ["ctx"], []),
        (ctx_signature_default, ["ctx", "signature"], []),
        (keyword_only_ctx, [], ["ctx"]),
        # scale keeps its default, so ctx after it must still go by name.
        (default_before_ctx, [], ["ctx"]),
        (positional_only_default_first, [], ["ctx"]),
        (positional_only_default_before, ["scale", "ctx"], []),
        (
            keyword_only_signature_default_ctx,
            [],
            ["signature", "ctx"],
        ),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_the_shorter_path_passes_by_position_what_the_code_binds_by_position(
    fn: Callable[..., Any], by_position: list[str], by_name: list[str]
) -> None:
    plan = plan_of(fn)

    assert [p.name for p in plan.call_positional] == by_position
    assert [p.name for p in plan.call_keyword] == by_name
    # The same parameters as the general path's, each once.
    assert sorted(p.name for p in plan.call_positional + plan.call_keyword) == sorted(
        p.name for p in plan.positional + plan.keyword
    )


async def test_a_wrapped_function_gets_the_same_positional_and_keyword_split(
    runtime: TaskRuntime,
) -> None:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def recording(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls.append((args, kwargs))
            return await fn(*args, **kwargs)

        return wrapper

    @recording
    async def wrapped(
        msg: In, ctx: Context, signature: TaskSignature | None = None
    ) -> dict[str, Any]:
        return dict(locals())

    plan = plan_of(wrapped)
    # The wrapper's own code is (*args, **kwargs): nothing moves.
    assert plan.call_positional == plan.positional == ()

    shorter, general = await both_paths(plan, runtime)

    assert shorter == general == {"msg": MSG, "ctx": CTX, "signature": None}
    assert calls[0] == calls[1] == ((MSG,), {"ctx": CTX, "signature": None})


async def test_an_object_with_an_async_call_gets_the_same_arguments(
    runtime: TaskRuntime,
) -> None:
    calls: list[tuple[Any, ...]] = []

    class Handler:
        async def __call__(self, msg, ctx):
            calls.append((msg, ctx))
            return {"msg": msg, "ctx": ctx}

    plan = plan_of(Handler(), config=AcceptParams.CTX_ONLY)
    assert plan.is_async
    shorter, general = await both_paths(plan, runtime)

    assert shorter == general == {"msg": MSG, "ctx": CTX}
    assert calls == [(MSG, CTX), (MSG, CTX)]


# --- one dependency ----------------------------------------------------------------


async def the_answer(msg: In, ctx: Context) -> dict[str, Any]:
    return {"answer_for": msg.value, "answer_ctx": ctx}


ANSWER = {"answer_for": 1, "answer_ctx": CTX}


async def ctx_then_dependency(
    msg: In, ctx: Context, answer: Annotated[dict[str, Any], Depends(the_answer)]
) -> dict[str, Any]:
    return dict(locals())


async def dependency_only(
    msg: In, answer: Annotated[dict[str, Any], Depends(the_answer)]
) -> dict[str, Any]:
    return dict(locals())


async def dependency_then_ctx(
    msg: In, answer: Annotated[dict[str, Any], Depends(the_answer)], ctx: Context
) -> dict[str, Any]:
    return dict(locals())


async def ctx_signature_dependency(
    msg: In,
    ctx: Context,
    signature: TaskSignature | None,
    answer: Annotated[dict[str, Any], Depends(the_answer)],
) -> dict[str, Any]:
    return dict(locals())


async def ctx_dependency_signature(
    msg: In,
    ctx: Context,
    answer: Annotated[dict[str, Any], Depends(the_answer)],
    signature: TaskSignature | None = None,
) -> dict[str, Any]:
    return dict(locals())


async def keyword_only_dependency(
    msg: In, *, answer: Annotated[dict[str, Any], Depends(the_answer)], ctx: Context
) -> dict[str, Any]:
    return dict(locals())


async def positional_only_dependency(
    msg: In, answer: Annotated[dict[str, Any], Depends(the_answer)], /, ctx: Context
) -> dict[str, Any]:
    return dict(locals())


async def default_then_dependency(
    msg: In,
    scale: int = 8,
    *,
    answer: Annotated[dict[str, Any], Depends(the_answer)],
) -> dict[str, Any]:
    return dict(locals())


def sync_task_with_dependency(
    msg: In, ctx: Context, answer: Annotated[dict[str, Any], Depends(the_answer)]
) -> dict[str, Any]:
    return dict(locals())


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (ctx_then_dependency, {"ctx": CTX, "answer": ANSWER}),
        (dependency_only, {"answer": ANSWER}),
        (dependency_then_ctx, {"answer": ANSWER, "ctx": CTX}),
        (ctx_signature_dependency, {"ctx": CTX, "signature": None, "answer": ANSWER}),
        (ctx_dependency_signature, {"ctx": CTX, "answer": ANSWER, "signature": None}),
        (keyword_only_dependency, {"answer": ANSWER, "ctx": CTX}),
        (positional_only_dependency, {"answer": ANSWER, "ctx": CTX}),
        (default_then_dependency, {"scale": 8, "answer": ANSWER}),
        (sync_task_with_dependency, {"ctx": CTX, "answer": ANSWER}),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
async def test_one_dependency(
    runtime: TaskRuntime, fn: Callable[..., Any], expected: dict[str, Any]
) -> None:
    plan = plan_of(fn)
    assert plan.has_dependencies
    shorter, general = await both_paths(plan, runtime)

    assert shorter == general == {"msg": MSG, **expected}
    # The dependency was called with the run's input and context.
    assert shorter["answer"]["answer_ctx"] is CTX


def context_managers(
    events: list[str],
) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """A dependency returning an async context manager, one returning a sync
    one, and one returning an async one that suppresses the task's error."""

    @asynccontextmanager
    async def async_resource() -> AsyncIterator[str]:
        events.append("async enter")
        try:
            yield "async value"
        except Exception as exc:
            events.append(f"async exit with {type(exc).__name__}")
            raise
        else:
            events.append("async exit")

    @contextmanager
    def sync_resource() -> Iterator[str]:
        events.append("sync enter")
        try:
            yield "sync value"
        except Exception as exc:
            events.append(f"sync exit with {type(exc).__name__}")
            raise
        else:
            events.append("sync exit")

    @asynccontextmanager
    async def suppressing() -> AsyncIterator[str]:
        events.append("suppressing enter")
        try:
            yield "suppressing value"
        except Exception as exc:
            events.append(f"suppressed {type(exc).__name__}")

    async def open_async(msg: In, ctx: Context) -> Any:
        return async_resource()

    async def open_sync(msg: In, ctx: Context) -> Any:
        return sync_resource()

    async def open_suppressing(msg: In, ctx: Context) -> Any:
        return suppressing()

    return open_async, open_sync, open_suppressing


@pytest.mark.parametrize("which", ["async", "sync"])
async def test_a_dependencys_context_manager_is_entered_and_exited_around_the_task(
    runtime: TaskRuntime, which: str
) -> None:
    events: list[str] = []
    open_async, open_sync, _ = context_managers(events)
    opener = open_async if which == "async" else open_sync

    async def task(
        msg: In, ctx: Context, resource: Annotated[str, Depends(opener)]
    ) -> dict[str, Any]:
        events.append(f"task sees {resource}")
        return {"msg": msg, "ctx": ctx, "resource": resource}

    shorter, general = await both_paths(plan_of(task), runtime)

    assert shorter == general == {"msg": MSG, "ctx": CTX, "resource": f"{which} value"}
    one_run = [f"{which} enter", f"task sees {which} value", f"{which} exit"]
    assert events == one_run + one_run


@pytest.mark.parametrize("which", ["async", "sync"])
async def test_a_failing_task_exits_the_dependencys_context_manager_with_the_error(
    runtime: TaskRuntime, which: str
) -> None:
    events: list[str] = []
    open_async, open_sync, _ = context_managers(events)
    opener = open_async if which == "async" else open_sync

    async def task(msg: In, resource: Annotated[str, Depends(opener)]) -> None:
        raise KeyError(resource)

    plan = plan_of(task)
    with pytest.raises(KeyError, match=f"{which} value"):
        await unsigned_call(plan)(MSG, CTX)
    with pytest.raises(KeyError, match=f"{which} value"):
        await call_user(plan, MSG, CTX, None, {}, runtime)

    one_run = [f"{which} enter", f"{which} exit with KeyError"]
    assert events == one_run + one_run


async def test_a_suppressing_context_manager_makes_the_result_none(
    runtime: TaskRuntime,
) -> None:
    events: list[str] = []
    _, _, open_suppressing = context_managers(events)

    async def task(msg: In, resource: Annotated[str, Depends(open_suppressing)]) -> Out:
        raise KeyError(resource)

    shorter, general = await both_paths(plan_of(task), runtime)

    assert shorter is None
    assert general is None
    one_run = ["suppressing enter", "suppressed KeyError"]
    assert events == one_run + one_run


async def test_a_failing_dependency_fails_both_paths_the_same_way(
    runtime: TaskRuntime,
) -> None:
    async def broken(msg: In, ctx: Context) -> int:
        raise LookupError("no answer")

    called: list[str] = []

    async def task(msg: In, answer: Annotated[int, Depends(broken)]) -> None:
        called.append("task")

    plan = plan_of(task)
    with pytest.raises(LookupError, match="no answer"):
        await unsigned_call(plan)(MSG, CTX)
    with pytest.raises(LookupError, match="no answer"):
        await call_user(plan, MSG, CTX, None, {}, runtime)
    assert called == []


# --- nested, sync and several dependencies --------------------------------------


def sync_base(msg: In, ctx: Context) -> dict[str, Any]:
    return {"base_thread": threading.get_ident() != LOOP_THREAD[0], "base_ctx": ctx}


async def on_top(
    msg: In, ctx: Context, base: Annotated[dict[str, Any], Depends(sync_base)]
) -> dict[str, Any]:
    return {"on_top_of": base, "top_ctx": ctx}


LOOP_THREAD: list[int] = []


async def nested_dependency(
    msg: In, ctx: Context, top: Annotated[dict[str, Any], Depends(on_top)]
) -> dict[str, Any]:
    return dict(locals())


async def several_dependencies(
    msg: In,
    first: Annotated[dict[str, Any], Depends(the_answer)],
    second: Annotated[dict[str, Any], Depends(sync_base)],
    ctx: Context,
) -> dict[str, Any]:
    return dict(locals())


async def sync_dependency(
    msg: In, base: Annotated[dict[str, Any], Depends(sync_base)]
) -> dict[str, Any]:
    return dict(locals())


BASE = {"base_thread": True, "base_ctx": CTX}


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (
            nested_dependency,
            {"ctx": CTX, "top": {"on_top_of": BASE, "top_ctx": CTX}},
        ),
        (several_dependencies, {"first": ANSWER, "second": BASE, "ctx": CTX}),
        (sync_dependency, {"base": BASE}),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
async def test_nested_sync_and_several_dependencies(
    runtime: TaskRuntime, fn: Callable[..., Any], expected: dict[str, Any]
) -> None:
    LOOP_THREAD[:] = [threading.get_ident()]
    shorter, general = await both_paths(plan_of(fn), runtime)

    assert shorter == general == {"msg": MSG, **expected}


# --- overrides, given explicitly ---------------------------------------------------


async def real_answer(msg: In, ctx: Context) -> str:
    return "real"


async def overridable(
    msg: In, ctx: Context, answer: Annotated[str, Depends(real_answer)]
) -> dict[str, Any]:
    return dict(locals())


async def test_overrides_passed_explicitly_replace_the_dependency(
    client: HatchetMageflow,
) -> None:
    plan = plan_of(overridable)
    table = {real_answer: Override(value="overridden")}

    args, kwargs = await assemble_with_dependencies(
        plan, MSG, CTX, None, Exits(), {}, table
    )
    assert (args, kwargs) == ([MSG], {"ctx": CTX, "answer": "overridden"})

    with_table = TaskRuntime(client.engine, table, random.Random(0), in_effect, client)
    received = await call_user(plan, MSG, CTX, None, {}, with_table)
    assert received == {"msg": MSG, "ctx": CTX, "answer": "overridden"}

    # The shorter path knows nothing of overrides; without them both agree.
    runtime = TaskRuntime(client.engine, {}, random.Random(0), in_effect, client)
    shorter, general = await both_paths(plan, runtime)
    assert shorter == general == {"msg": MSG, "ctx": CTX, "answer": "real"}


@pytest.fixture
def general_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records each run the task wrapper hands to the general path."""
    calls: list[str] = []

    async def recorded(plan: InjectionPlan, *args: Any) -> Any:
        calls.append(plan.task_name)
        return await call_user(plan, *args)

    monkeypatch.setattr(mageflow.run.entry, "call_user", recorded)
    return calls


async def test_the_task_wrapper_honours_overrides_set_between_runs(
    client: HatchetMageflow, general_calls: list[str]
) -> None:
    @client.task(name="overridden-between-runs")
    async def task(
        msg: In, ctx: Context, answer: Annotated[str, Depends(real_answer)]
    ) -> Out:
        return Out(value=msg.value, note=f"{answer} {type(ctx).__name__}")

    assert await task.aio_mock_run(MSG) == Out(value=1, note="real Context")
    assert general_calls == []

    client.dependency_overrides[real_answer] = Override(value="fake")
    client.dependency_overrides[Context] = Override(value=FakeContext())
    try:
        overridden = await task.aio_mock_run(MSG)
    finally:
        client.dependency_overrides.clear()
    assert overridden == Out(value=1, note="fake FakeContext")
    assert general_calls == ["overridden-between-runs"]

    assert await task.aio_mock_run(MSG) == Out(value=1, note="real Context")
    assert general_calls == ["overridden-between-runs"]


async def test_values_given_by_name_take_the_general_path(
    client: HatchetMageflow, general_calls: list[str]
) -> None:
    @client.task(name="given-by-name")
    async def task(msg: In, answer: Annotated[str, Depends(real_answer)]) -> Out:
        return Out(value=msg.value, note=answer)

    given = await task.aio_mock_run(MSG, dependencies={"answer": "given"})
    assert given == Out(value=1, note="given")
    assert general_calls == ["given-by-name"]
    assert await task.aio_mock_run(MSG) == Out(value=1, note="real")
    assert general_calls == ["given-by-name"]


# --- the task wrapper ------------------------------------------------------------


async def test_the_task_wrapper_takes_the_shorter_path_with_the_runs_context(
    client: HatchetMageflow, general_calls: list[str]
) -> None:
    @client.task(name="shorter-plain")
    async def plain(msg: In, ctx: Context, signature: TaskSignature | None) -> Out:
        assert signature is None
        return Out(value=msg.value, note=type(ctx).__name__)

    @client.task(name="shorter-dependency")
    async def with_dependency(
        msg: In, ctx: Context, answer: Annotated[dict[str, Any], Depends(the_answer)]
    ) -> Out:
        assert answer["answer_ctx"] is ctx
        return Out(value=answer["answer_for"], note=type(ctx).__name__)

    assert await plain.aio_mock_run(In(value=3)) == Out(value=3, note="Context")
    assert await with_dependency.aio_mock_run(In(value=4)) == Out(
        value=4, note="Context"
    )
    assert general_calls == []


async def test_a_durable_task_gets_its_durable_context_on_the_shorter_path(
    client: HatchetMageflow, general_calls: list[str]
) -> None:
    async def context_type(msg: In, ctx: Context) -> str:
        return type(ctx).__name__

    @client.durable_task(name="shorter-durable")
    async def durable(
        msg: In, ctx: DurableContext, kind: Annotated[str, Depends(context_type)]
    ) -> Out:
        return Out(value=msg.value, note=f"{type(ctx).__name__} {kind}")

    result = await durable.aio_mock_run(MSG)

    assert result == Out(value=1, note="DurableContext DurableContext")
    assert general_calls == []


async def test_a_durable_plan_gives_both_paths_the_same_arguments(
    runtime: TaskRuntime,
) -> None:
    async def durable(msg: In, ctx: DurableContext) -> dict[str, Any]:
        return dict(locals())

    plan = plan_of(durable, durable=True)
    assert plan.durable
    shorter, general = await both_paths(plan, runtime)

    assert shorter == general == {"msg": MSG, "ctx": CTX}


async def test_staggered_and_signature_requiring_tasks_take_the_general_path(
    client: HatchetMageflow, general_calls: list[str]
) -> None:
    @client.task(name="staggered")
    @client.stagger_execution(wait_delta=timedelta(milliseconds=1))
    async def staggered(msg: In, ctx: Context) -> Out:
        return Out(value=msg.value)

    @client.task(name="requires-signature")
    async def requires_signature(msg: In, signature: TaskSignature) -> Out:
        return Out(value=msg.value)

    assert await staggered.aio_mock_run(MSG) == Out(value=1)
    assert general_calls == ["staggered"]
    with pytest.raises(MissingSignatureError):
        await requires_signature.aio_mock_run(MSG)
    assert general_calls == ["staggered"]  # refused before the call


async def test_a_plan_rebuilt_at_the_first_run_gets_its_shorter_path(
    client: HatchetMageflow, general_calls: list[str]
) -> None:
    task = local_scope.build_late(client)["uses_database"]
    parcel = task.input_validator_type(item="late")

    first = await task.aio_mock_run(parcel)
    second = await task.aio_mock_run(parcel)

    assert first.database == second.database == "Database(late)"
    assert general_calls == []


async def test_the_shorter_path_is_made_once_per_task(
    client: HatchetMageflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    real = mageflow.run.entry.unsigned_call

    def counted(plan: InjectionPlan) -> Any:
        made.append(plan.task_name)
        return real(plan)

    monkeypatch.setattr(mageflow.run.entry, "unsigned_call", counted)

    @client.task(name="made-once")
    async def task(msg: In, ctx: Context) -> Out:
        return Out(value=msg.value)

    assert made == ["made-once"]  # at decoration
    for value in range(3):
        assert await task.aio_mock_run(In(value=value)) == Out(value=value)
    assert made == ["made-once"]


async def test_a_run_with_a_signature_id_still_goes_to_the_signed_path(
    client: HatchetMageflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str]] = []

    async def signed(
        plan: InjectionPlan, input: Any, ctx: Any, signature_id: str, *rest: Any
    ) -> Out:
        seen.append((plan.task_name, signature_id))
        return Out(value=-1)

    monkeypatch.setattr(mageflow.run.entry, "run_signed", signed)

    @client.task(name="signed-run")
    async def task(msg: In, ctx: Context) -> Out:
        return Out(value=msg.value)

    result = await task.aio_mock_run(
        MSG, additional_metadata={mageflow.run.entry.SIGNATURE_ID: "sig-1"}
    )

    assert result == Out(value=-1)
    assert seen == [("signed-run", "sig-1")]
