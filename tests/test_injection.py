"""Type-driven injection, rule by rule, run through Hatchet's own ``aio_mock_run``.

Every run here goes through hatchet-sdk, which builds a real ``Context`` (or
``DurableContext``) from the run's metadata; the tests check that the task
receives *that* context, by reading the metadata and retry count back.

This module deliberately does not use ``from __future__ import annotations``,
so tasks defined inside a test see their annotations as real objects. The
string-annotation cases live in ``tests/annotated_modules``.
"""

import asyncio
import contextvars
import dataclasses
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType
from typing import Annotated, Any, Optional

import pytest
from hatchet_sdk import Context, Depends, DurableContext, EmptyModel
from hatchet_sdk.runnables.workflow import Standalone
from pydantic import BaseModel, TypeAdapter

from mageflow import AcceptParams, HatchetMageflow, TaskSignature


class In(BaseModel):
    value: int


class Out(BaseModel):
    value: int
    note: str = ""


@dataclasses.dataclass
class DataIn:
    name: str
    count: int


class CustomSignature(TaskSignature):
    """A subclass still asks for the run's signature."""


class CustomContext(Context):
    """A subclass still asks for the run context."""


METADATA = {"run": "injection-test"}

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


async def run(task: Standalone[Any, Any], value: int = 1, **options: Any) -> Any:
    """One run through Hatchet, with metadata and a retry count to read back."""
    options.setdefault("additional_metadata", METADATA)
    options.setdefault("retry_count", 2)
    return await task.aio_mock_run(In(value=value), **options)


def assert_is_the_runs_context(ctx: object, cls: type[Context] = Context) -> None:
    """``ctx`` is the context hatchet-sdk built for the run started by ``run``."""
    assert type(ctx) is cls
    assert isinstance(ctx, Context)
    assert ctx.additional_metadata == METADATA
    assert ctx.retry_count == 2


@pytest.fixture
def ctx_only(make_client: Callable[..., HatchetMageflow]) -> HatchetMageflow:
    return make_client(AcceptParams.CTX_ONLY)


@pytest.fixture
def accept_all(make_client: Callable[..., HatchetMageflow]) -> HatchetMageflow:
    return make_client(AcceptParams.ALL)


# --- the first parameter: the input message ---------------------------------


async def test_first_parameter_receives_the_validated_input(
    client: HatchetMageflow,
) -> None:
    seen: list[object] = []

    @client.task(name="message")
    async def message(anything_named: In) -> Out:
        seen.append(anything_named)
        return Out(value=anything_named.value * 2)

    assert await run(message, 21) == Out(value=42)
    (msg,) = seen
    assert isinstance(msg, In)
    assert msg.value == 21


async def test_a_task_without_a_context_parameter_runs(
    client: HatchetMageflow,
) -> None:
    @client.task(name="only-message")
    async def only_message(msg: In) -> Out:
        return Out(value=msg.value + 1)

    assert await run(only_message, 1) == Out(value=2)


@pytest.mark.parametrize(
    "hint",
    [In, Optional[In], Annotated[In, "meta"]],  # noqa: UP045
    ids=["model", "optional", "annotated"],
)
async def test_input_validator_is_inferred_from_a_pydantic_first_parameter(
    client: HatchetMageflow, hint: Any
) -> None:
    @client.task(name="inferred-model")
    async def inferred_model(msg: hint) -> Out:
        assert isinstance(msg, In)
        return Out(value=msg.value)

    assert inferred_model.input_validator_type is In
    adapter = inferred_model._workflow._config.input_validator
    assert isinstance(adapter, TypeAdapter)
    assert adapter.validate_python({"value": 5}) == In(value=5)
    assert await run(inferred_model, 5) == Out(value=5)


async def test_input_validator_is_inferred_from_a_dataclass_first_parameter(
    client: HatchetMageflow,
) -> None:
    seen: list[object] = []

    @client.task(name="inferred-dataclass")
    async def inferred_dataclass(msg: DataIn) -> Out:
        seen.append(msg)
        return Out(value=msg.count)

    assert inferred_dataclass.input_validator_type is DataIn
    assert inferred_dataclass._workflow._config.input_validator.validate_python(
        {"name": "a", "count": 2}
    ) == DataIn(name="a", count=2)
    result = await inferred_dataclass.aio_mock_run(DataIn(name="x", count=3))
    assert result == Out(value=3)
    assert seen == [DataIn(name="x", count=3)]


async def test_input_validator_is_inferred_from_a_dict_first_parameter(
    client: HatchetMageflow,
) -> None:
    @client.task(name="inferred-dict")
    async def inferred_dict(msg: dict[str, int]) -> dict[str, int]:
        return {"sum": sum(msg.values())}

    adapter = inferred_dict._workflow._config.input_validator
    assert adapter.validate_python({"a": "1", "b": 2}) == {"a": 1, "b": 2}
    assert inferred_dict.input_validator_type != EmptyModel


def test_unannotated_first_parameter_keeps_hatchets_default_validator(
    client: HatchetMageflow,
) -> None:
    @client.task(name="not-inferred")
    async def not_inferred(msg) -> None:
        return None

    assert not_inferred.input_validator_type is EmptyModel


def test_an_explicit_input_validator_wins_over_the_annotation(
    client: HatchetMageflow,
) -> None:
    class Wider(In):
        extra: str = "x"

    @client.task(name="explicit-validator", input_validator=Wider)
    async def explicit_validator(msg: In) -> None:
        return None

    assert explicit_validator.input_validator_type is Wider


# --- the return annotation ---------------------------------------------------


async def test_return_annotation_becomes_the_output_validator(
    client: HatchetMageflow,
) -> None:
    @client.task(name="returns-out")
    async def returns_out(msg: In) -> Out:
        return Out(value=msg.value, note="done")

    assert returns_out.output_validator_type is Out
    assert returns_out.output_validator.validate_python({"value": 3}) == Out(value=3)
    result = await run(returns_out, 3)
    assert isinstance(result, Out)
    assert result == Out(value=3, note="done")


@pytest.mark.parametrize("order", ["ctx-then-signature", "signature-then-ctx"])
async def test_marking_decorators_keep_the_output_validator(
    client: HatchetMageflow, order: str
) -> None:
    def marked(fn: Callable[..., Any]) -> Callable[..., Any]:
        if order == "ctx-then-signature":
            return client.with_ctx(client.with_signature(fn))
        return client.with_signature(client.with_ctx(fn))

    @client.task(name="marked-output")
    @marked
    async def marked_output(msg: In, ctx, signature) -> Out:
        return Out(value=msg.value, note=f"{type(ctx).__name__}/{signature}")

    assert marked_output.output_validator_type is Out
    assert marked_output.input_validator_type is In
    assert await run(marked_output, 4) == Out(value=4, note="Context/None")


# --- rule 1: the run context ------------------------------------------------


@pytest.mark.parametrize(
    "hint",
    [
        Context,
        Context | None,
        Optional[Context],  # noqa: UP045
        Annotated[Context, "meta"],
        Annotated[Context | None, "meta"],
        Optional[Annotated[Context, "meta"]],  # noqa: UP045
        CustomContext,
    ],
    ids=[
        "Context",
        "X | None",
        "Optional[X]",
        "Annotated[X, ...]",
        "Annotated[X | None, ...]",
        "Optional[Annotated[X, ...]]",
        "subclass",
    ],
)
async def test_a_parameter_annotated_context_receives_the_run_context(
    client: HatchetMageflow, hint: Any
) -> None:
    seen: list[object] = []

    @client.task(name="context-forms")
    async def context_forms(msg: In, run_context: hint) -> Out:
        seen.append(run_context)
        return Out(value=msg.value)

    assert await run(context_forms, 9) == Out(value=9)
    (ctx,) = seen
    assert_is_the_runs_context(ctx)


async def test_the_context_parameter_may_be_anywhere_and_keyword_only(
    client: HatchetMageflow,
) -> None:
    seen: dict[str, object] = {}

    @client.task(name="context-last")
    async def context_last(msg: In, scale: int = 3, *, run_ctx: Context) -> Out:
        seen.update(scale=scale, ctx=run_ctx)
        return Out(value=msg.value * scale)

    assert await run(context_last, 2) == Out(value=6)
    assert seen["scale"] == 3
    assert_is_the_runs_context(seen["ctx"])


async def test_a_context_with_a_default_of_none_still_receives_the_context(
    client: HatchetMageflow,
) -> None:
    seen: list[object] = []

    @client.task(name="context-default")
    async def context_default(msg: In, ctx: Context | None = None) -> None:
        seen.append(ctx)

    await run(context_default)
    assert_is_the_runs_context(seen[0])


@pytest.mark.parametrize("hint", [DurableContext, Context, DurableContext | None])
async def test_a_durable_task_receives_a_durable_context(
    client: HatchetMageflow, hint: Any
) -> None:
    seen: list[object] = []

    @client.durable_task(name="durable-context")
    async def durable_context(msg: In, ctx: hint) -> Out:
        seen.append(ctx)
        return Out(value=msg.value)

    assert await run(durable_context, 8) == Out(value=8)
    assert_is_the_runs_context(seen[0], DurableContext)


# --- rule 2: the task's signature --------------------------------------------


@pytest.mark.parametrize(
    ("hint", "default_none"),
    [
        (TaskSignature | None, False),
        (Optional[TaskSignature], False),  # noqa: UP045
        (Annotated[TaskSignature | None, "meta"], False),
        (TaskSignature, True),
        (CustomSignature | None, False),
    ],
    ids=["X | None", "Optional[X]", "Annotated[X | None]", "default None", "subclass"],
)
async def test_an_optional_signature_parameter_receives_none(
    client: HatchetMageflow, hint: Any, default_none: bool
) -> None:
    seen: list[object] = []

    if default_none:

        async def body(msg: In, sig: hint = None) -> Out:
            seen.append(sig)
            return Out(value=msg.value)
    else:

        async def body(msg: In, sig: hint) -> Out:
            seen.append(sig)
            return Out(value=msg.value)

    task = client.task(name="optional-signature")(body)

    assert await run(task, 6) == Out(value=6)
    assert seen == [None]
    assert "None when the run has none" in client.explain(task)


# --- rule 3: dependencies ----------------------------------------------------


async def test_an_async_dependency_receives_the_input_and_the_context(
    client: HatchetMageflow,
) -> None:
    async def label(msg: In, ctx: Context) -> str:
        assert_is_the_runs_context(ctx)
        return f"{msg.value}:{ctx.additional_metadata['run']}"

    @client.task(name="async-dependency")
    async def async_dependency(msg: In, text: Annotated[str, Depends(label)]) -> Out:
        return Out(value=msg.value, note=text)

    assert await run(async_dependency, 5) == Out(value=5, note="5:injection-test")


async def test_a_sync_dependency_runs_in_a_worker_thread(
    client: HatchetMageflow,
) -> None:
    loop_thread = threading.get_ident()

    def which_thread(msg: In, ctx: Context) -> int:
        assert_is_the_runs_context(ctx)
        return threading.get_ident()

    @client.task(name="sync-dependency")
    async def sync_dependency(
        msg: In, thread: Annotated[int, Depends(which_thread)]
    ):  # returns the thread id; no annotation, so any value is allowed
        return thread

    assert await run(sync_dependency) != loop_thread


async def test_nested_dependencies_are_resolved_first(
    client: HatchetMageflow,
) -> None:
    calls: list[str] = []

    def base(msg: In, ctx: Context) -> int:
        calls.append("base")
        return msg.value

    async def doubled(
        msg: In,
        ctx: Context,
        inner: Annotated[int, Depends(base)],
        factor: int = 2,
    ) -> int:
        calls.append("doubled")
        return inner * factor

    async def described(
        msg: In, ctx: Context, number: Annotated[int, Depends(doubled)]
    ) -> str:
        calls.append("described")
        return f"n={number}"

    @client.task(name="nested-dependencies")
    async def nested_dependencies(
        msg: In,
        text: Annotated[str, Depends(described)],
        ctx: Context,
    ) -> Out:
        assert_is_the_runs_context(ctx)
        return Out(value=msg.value, note=text)

    assert await run(nested_dependencies, 7) == Out(value=7, note="n=14")
    assert calls == ["base", "doubled", "described"]
    assert "Depends(described(number=doubled(inner=base)))" in client.explain(
        nested_dependencies
    )


async def test_dependency_context_managers_are_entered_and_exited_around_the_task(
    client: HatchetMageflow,
) -> None:
    events: list[str] = []

    class AsyncResource:
        async def __aenter__(self) -> str:
            events.append("enter class")
            return "class resource"

        async def __aexit__(
            self,
            exc_type: type[BaseException] | None,
            exc: BaseException | None,
            tb: TracebackType | None,
        ) -> None:
            events.append("exit class")

    async def class_based(msg: In, ctx: Context) -> AsyncResource:
        return AsyncResource()

    @asynccontextmanager
    async def async_generator(msg: In, ctx: Context) -> AsyncIterator[str]:
        events.append("enter async")
        yield "async resource"
        events.append("exit async")

    @contextmanager
    def sync_generator(msg: In, ctx: Context) -> Iterator[str]:
        events.append("enter sync")
        yield "sync resource"
        events.append("exit sync")

    @client.task(name="context-managers")
    async def context_managers(
        msg: In,
        first: Annotated[str, Depends(class_based)],
        second: Annotated[str, Depends(async_generator)],
        third: Annotated[str, Depends(sync_generator)],
    ) -> Out:
        events.append(f"task: {first}, {second}, {third}")
        return Out(value=msg.value)

    assert await run(context_managers, 2) == Out(value=2)
    assert events == [
        "enter class",
        "enter async",
        "enter sync",
        "task: class resource, async resource, sync resource",
        "exit sync",
        "exit async",
        "exit class",
    ]


async def test_dependency_context_managers_are_exited_when_the_task_fails(
    client: HatchetMageflow,
) -> None:
    exits: list[object] = []

    @asynccontextmanager
    async def resource(msg: In, ctx: Context) -> AsyncIterator[str]:
        try:
            yield "open"
        except BaseException as exc:
            exits.append(exc)
            raise
        exits.append("clean exit")

    @client.task(name="failing-with-resource")
    async def failing_with_resource(
        msg: In, res: Annotated[str, Depends(resource)]
    ) -> None:
        raise ValueError(f"task failed with {res}")

    with pytest.raises(ValueError, match="task failed with open"):
        await run(failing_with_resource)
    (exc,) = exits
    assert isinstance(exc, ValueError)


async def test_a_failing_dependency_exits_the_ones_already_entered(
    client: HatchetMageflow,
) -> None:
    events: list[str] = []

    @contextmanager
    def opened(msg: In, ctx: Context) -> Iterator[str]:
        events.append("enter")
        try:
            yield "opened"
        finally:
            events.append("exit")

    async def broken(msg: In, ctx: Context) -> str:
        raise LookupError("dependency failed")

    @client.task(name="broken-dependency")
    async def broken_dependency(
        msg: In,
        first: Annotated[str, Depends(opened)],
        second: Annotated[str, Depends(broken)],
    ) -> None:
        events.append("task")

    with pytest.raises(LookupError, match="dependency failed"):
        await run(broken_dependency)
    assert events == ["enter", "exit"]


async def test_a_sync_task_with_dependencies_sees_them_open(
    client: HatchetMageflow,
) -> None:
    events: list[str] = []
    loop_thread = threading.get_ident()

    @asynccontextmanager
    async def connection(msg: In, ctx: Context) -> AsyncIterator[str]:
        events.append("open")
        yield "conn"
        events.append("close")

    @client.task(name="sync-with-dependency")
    def sync_with_dependency(
        msg: In, conn: Annotated[str, Depends(connection)], ctx: Context
    ) -> Out:
        events.append(f"task uses {conn}")
        assert threading.get_ident() != loop_thread
        assert_is_the_runs_context(ctx)
        return Out(value=msg.value)

    assert await run(sync_with_dependency, 3) == Out(value=3)
    assert events == ["open", "task uses conn", "close"]


async def test_dependencies_given_by_name_replace_resolution(
    client: HatchetMageflow,
) -> None:
    calls: list[str] = []

    async def real_database(msg: In, ctx: Context) -> str:
        calls.append("database")
        return "real database"

    def inner(msg: In, ctx: Context) -> int:
        calls.append("inner")
        return 1

    def outer(msg: In, ctx: Context, n: Annotated[int, Depends(inner)]) -> int:
        calls.append("outer")
        return n + 1

    @client.task(name="overridden")
    async def overridden(
        msg: In,
        db: Annotated[str, Depends(real_database)],
        number: Annotated[int, Depends(outer)],
    ) -> Out:
        return Out(value=number, note=db)

    result = await run(overridden, dependencies={"db": "fake database"})
    assert result == Out(value=2, note="fake database")
    assert calls == ["inner", "outer"]

    calls.clear()
    result = await run(overridden, dependencies={"db": "fake", "number": 40})
    assert result == Out(value=40, note="fake")
    assert calls == []


async def test_dependencies_work_on_positional_only_parameters(
    client: HatchetMageflow,
) -> None:
    def three(msg: In, ctx: Context) -> int:
        return 3

    @client.task(name="positional-dependency")
    async def positional_dependency(
        msg: In, n: Annotated[int, Depends(three)], /, ctx: Context
    ) -> Out:
        assert_is_the_runs_context(ctx)
        return Out(value=n)

    assert await run(positional_dependency) == Out(value=3)
    overridden = await run(positional_dependency, dependencies={"n": 11})
    assert overridden == Out(value=11)


async def test_a_durable_task_passes_its_durable_context_to_dependencies(
    client: HatchetMageflow,
) -> None:
    def context_type(msg: In, ctx: Context) -> str:
        return type(ctx).__name__

    @client.durable_task(name="durable-dependency")
    async def durable_dependency(
        msg: In, kind: Annotated[str, Depends(context_type)]
    ) -> Out:
        return Out(value=msg.value, note=kind)

    assert await run(durable_dependency) == Out(value=1, note="DurableContext")


# --- sync tasks ---------------------------------------------------------------


async def test_a_sync_task_runs_in_a_worker_thread_with_the_callers_contextvars(
    client: HatchetMageflow,
) -> None:
    loop_thread = threading.get_ident()
    seen: dict[str, object] = {}

    @client.task(name="sync-task")
    def sync_task(msg: In, ctx: Context) -> Out:
        seen["thread"] = threading.get_ident()
        seen["request"] = REQUEST_ID.get("unset")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            seen["loop"] = None
        else:
            seen["loop"] = "running"
        assert_is_the_runs_context(ctx)
        return Out(value=msg.value * 10)

    token = REQUEST_ID.set("request-42")
    try:
        assert await run(sync_task, 4) == Out(value=40)
    finally:
        REQUEST_ID.reset(token)
    assert seen["thread"] != loop_thread
    assert seen["request"] == "request-42"
    assert seen["loop"] is None
    assert "sync, runs in a worker thread" in client.explain(sync_task)


async def test_an_async_task_runs_on_the_event_loop(client: HatchetMageflow) -> None:
    loop_thread = threading.get_ident()

    @client.task(name="async-task")
    async def async_task(msg: In):  # returns the thread id, unannotated
        return threading.get_ident()

    assert await run(async_task) == loop_thread


# --- rule 4: unannotated parameters -----------------------------------------


async def test_no_ctx_leaves_unannotated_parameters_their_defaults(
    client: HatchetMageflow,
) -> None:
    assert client.param_config is AcceptParams.NO_CTX

    @client.task(name="no-ctx")
    async def no_ctx(msg: In, ctx=None, signature="unset") -> Out:
        return Out(value=msg.value, note=f"{ctx}/{signature}")

    assert await run(no_ctx) == Out(value=1, note="None/unset")


@pytest.mark.parametrize("hint", [None, Any, object], ids=["bare", "Any", "object"])
async def test_ctx_only_gives_the_context_to_an_unannotated_second_parameter(
    ctx_only: HatchetMageflow, hint: Any
) -> None:
    seen: list[object] = []

    if hint is None:

        async def body(msg: In, ctx) -> None:
            seen.append(ctx)
    else:

        async def body(msg: In, ctx: hint) -> None:
            seen.append(ctx)

    task = ctx_only.task(name="ctx-only")(body)

    await run(task)
    assert_is_the_runs_context(seen[0])
    assert "AcceptParams.CTX_ONLY" in ctx_only.explain(task)


async def test_ctx_only_fills_an_unannotated_second_parameter_despite_its_default(
    ctx_only: HatchetMageflow,
) -> None:
    seen: list[object] = []

    @ctx_only.task(name="ctx-over-default")
    async def ctx_over_default(msg: In, ctx=None) -> None:
        seen.append(ctx)

    await run(ctx_over_default)
    assert_is_the_runs_context(seen[0])


async def test_ctx_only_is_lenient_when_nothing_can_take_the_context(
    ctx_only: HatchetMageflow,
) -> None:
    @ctx_only.task(name="message-only")
    async def message_only(msg: In) -> Out:
        return Out(value=msg.value)

    @ctx_only.task(name="annotated-second")
    async def annotated_second(msg: In, count: int = 5) -> Out:
        return Out(value=count)

    @ctx_only.task(name="variadic-only")
    async def variadic_only(msg: In, *args: Any, **kwargs: Any) -> Out:
        return Out(value=len(args) + len(kwargs))

    assert await run(message_only, 3) == Out(value=3)
    assert await run(annotated_second) == Out(value=5)
    assert await run(variadic_only) == Out(value=0)


async def test_ctx_only_gives_the_context_once(ctx_only: HatchetMageflow) -> None:
    seen: dict[str, object] = {}

    @ctx_only.task(name="context-once")
    async def context_once(msg: In, ctx: Context, extra="kept") -> None:
        seen.update(ctx=ctx, extra=extra)

    await run(context_once)
    assert_is_the_runs_context(seen["ctx"])
    assert seen["extra"] == "kept"


async def test_ctx_only_does_not_give_the_signature(
    ctx_only: HatchetMageflow,
) -> None:
    seen: dict[str, object] = {}

    @ctx_only.task(name="no-signature")
    async def no_signature(msg: In, ctx, signature="kept") -> None:
        seen.update(ctx=ctx, signature=signature)

    await run(no_signature)
    assert_is_the_runs_context(seen["ctx"])
    assert seen["signature"] == "kept"


async def test_ctx_only_leaves_keyword_only_parameters_alone(
    ctx_only: HatchetMageflow,
) -> None:
    """A keyword-only parameter is not the second *positional* parameter, so
    it keeps its default; Hatchet passes the context positionally."""
    seen: list[object] = []

    @ctx_only.task(name="keyword-only-option")
    async def keyword_only_option(msg: In, *, limit=3) -> None:
        seen.append(limit)

    await run(keyword_only_option)
    assert seen == [3]


async def test_ctx_only_fills_a_positional_only_second_parameter(
    ctx_only: HatchetMageflow,
) -> None:
    seen: dict[str, object] = {}

    @ctx_only.task(name="positional-only")
    async def positional_only(msg, ctx, /, scale=4, *, label="kw") -> Out:
        seen.update(msg=msg, ctx=ctx, scale=scale, label=label)
        return Out(value=scale)

    assert await positional_only.aio_mock_run(
        In(value=1), additional_metadata=METADATA, retry_count=2
    ) == Out(value=4)
    assert_is_the_runs_context(seen["ctx"])
    assert (seen["scale"], seen["label"]) == (4, "kw")


async def test_positional_only_defaults_before_an_injected_parameter_are_kept(
    client: HatchetMageflow,
) -> None:
    seen: dict[str, object] = {}

    @client.task(name="positional-defaults")
    async def positional_defaults(
        msg: In, first=10, second: int = 20, ctx: Context | None = None, /
    ) -> Out:
        seen.update(first=first, second=second, ctx=ctx)
        return Out(value=first + second)

    assert await run(positional_defaults) == Out(value=30)
    assert_is_the_runs_context(seen["ctx"])


async def test_all_gives_the_context_and_the_signature(
    accept_all: HatchetMageflow,
) -> None:
    seen: dict[str, object] = {}

    @accept_all.task(name="all-positional")
    async def all_positional(msg: In, ctx, signature) -> None:
        seen.update(ctx=ctx, signature=signature)

    @accept_all.task(name="all-keyword-only")
    async def all_keyword_only(msg: In, ctx, *, signature="unset") -> None:
        seen.update(kw_ctx=ctx, kw_signature=signature)

    await run(all_positional)
    await run(all_keyword_only)
    assert_is_the_runs_context(seen["ctx"])
    assert seen["signature"] is None
    assert_is_the_runs_context(seen["kw_ctx"])
    assert seen["kw_signature"] is None
    assert "AcceptParams.ALL: parameter named 'signature'" in accept_all.explain(
        all_positional
    )


async def test_all_gives_a_lone_signature_parameter_the_signature_not_the_context(
    accept_all: HatchetMageflow,
) -> None:
    """Under ALL, a parameter named ``signature`` is where the signature goes,
    even when it is also the second parameter."""
    seen: list[object] = []

    @accept_all.task(name="lone-signature")
    async def lone_signature(msg: In, signature) -> None:
        seen.append(signature)

    await run(lone_signature)
    assert seen == [None]


async def test_all_is_lenient_and_never_overrides_annotations(
    accept_all: HatchetMageflow,
) -> None:
    seen: dict[str, object] = {}

    @accept_all.task(name="all-annotated")
    async def all_annotated(
        msg: In, count: int = 1, *, sig: TaskSignature | None, signature="kept"
    ) -> Out:
        seen.update(count=count, sig=sig, signature=signature)
        return Out(value=count)

    assert await run(all_annotated) == Out(value=1)
    assert seen == {"count": 1, "sig": None, "signature": "kept"}


async def test_with_ctx_gives_one_task_the_context(client: HatchetMageflow) -> None:
    seen: list[object] = []

    async def body(msg: In, ctx) -> None:
        seen.append(ctx)

    assert client.with_ctx(body) is body  # the function itself, only marked
    task = client.task(name="with-ctx")(body)

    await run(task)
    assert_is_the_runs_context(seen[0])
    assert "@with_ctx" in client.explain(task)


async def test_with_signature_gives_one_task_its_signature(
    client: HatchetMageflow,
) -> None:
    seen: list[object] = []

    @client.task(name="with-signature")
    @client.with_signature
    async def with_signature(msg: In, *, signature) -> None:
        seen.append(signature)

    await run(with_signature)
    assert seen == [None]
    assert "@with_signature: parameter named 'signature'" in client.explain(
        with_signature
    )


@pytest.mark.parametrize("order", ["ctx-outer", "signature-outer"])
async def test_with_ctx_and_with_signature_stack_in_either_order(
    client: HatchetMageflow, order: str
) -> None:
    seen: dict[str, object] = {}

    async def body(msg: In, ctx, signature) -> Out:
        seen.update(ctx=ctx, signature=signature)
        return Out(value=msg.value)

    if order == "ctx-outer":
        marked = client.with_ctx(client.with_signature(body))
    else:
        marked = client.with_signature(client.with_ctx(body))
    task = client.task(name="stacked")(marked)

    assert await run(task, 12) == Out(value=12)
    assert_is_the_runs_context(seen["ctx"])
    assert seen["signature"] is None


async def test_with_ctx_is_satisfied_by_an_annotated_context(
    client: HatchetMageflow,
) -> None:
    seen: dict[str, object] = {}

    @client.task(name="with-ctx-annotated")
    @client.with_ctx
    async def with_ctx_annotated(msg: In, count: int = 2, *, run_ctx: Context) -> None:
        seen.update(count=count, ctx=run_ctx)

    await run(with_ctx_annotated)
    assert seen["count"] == 2
    assert_is_the_runs_context(seen["ctx"])


async def test_with_ctx_on_a_positional_only_parameter(
    client: HatchetMageflow,
) -> None:
    seen: list[object] = []

    @client.task(name="with-ctx-positional")
    @client.with_ctx
    async def with_ctx_positional(msg: In, ctx, /) -> None:
        seen.append(ctx)

    await run(with_ctx_positional)
    assert_is_the_runs_context(seen[0])


# --- rule 5: defaults --------------------------------------------------------


async def test_parameters_with_nothing_to_inject_keep_their_defaults(
    client: HatchetMageflow,
) -> None:
    seen: dict[str, object] = {}

    @client.task(name="defaults")
    async def defaults(
        msg: In,
        ctx: Context,
        scale: int = 2,
        label="untyped",
        *,
        flag: bool = True,
    ) -> Out:
        seen.update(scale=scale, label=label, flag=flag)
        assert_is_the_runs_context(ctx)
        return Out(value=msg.value * scale)

    assert await run(defaults, 3) == Out(value=6)
    assert seen == {"scale": 2, "label": "untyped", "flag": True}
    explained = client.explain(defaults)
    for name in ("scale", "label", "flag"):
        assert "keeps its default" in _row(explained, name)


# --- keyword-only parameters ------------------------------------------------


async def test_every_kind_of_injection_reaches_keyword_only_parameters(
    client: HatchetMageflow,
) -> None:
    seen: dict[str, object] = {}

    async def tripled(msg: In, ctx: Context) -> int:
        return msg.value * 3

    @client.task(name="keyword-only")
    async def keyword_only(
        msg: In,
        *,
        ctx: Context,
        sig: TaskSignature | None,
        number: Annotated[int, Depends(tripled)],
        note: str = "default",
    ) -> Out:
        seen.update(ctx=ctx, sig=sig)
        return Out(value=number, note=note)

    assert await run(keyword_only, 5) == Out(value=15, note="default")
    assert_is_the_runs_context(seen["ctx"])
    assert seen["sig"] is None


# --- explain -----------------------------------------------------------------


def _row(explained: str, name: str) -> str:
    (line,) = [
        row for row in explained.splitlines()[1:] if row.split("<-")[0].strip() == name
    ]
    return line


def test_explain_names_every_parameter_and_where_its_value_comes_from(
    ctx_only: HatchetMageflow,
) -> None:
    def settings(msg: In, ctx: Context) -> dict[str, str]:
        return {}

    @ctx_only.task(name="explained")
    async def explained_task(
        msg: In,
        ctx,
        sig: TaskSignature | None,
        conf: Annotated[dict[str, str], Depends(settings)],
        limit: int = 10,
    ) -> Out:
        return Out(value=0)

    @ctx_only.task(name="explained-required")
    async def explained_required(msg: In, required: CustomSignature) -> None:
        return None

    text = ctx_only.explain(explained_task)
    assert ctx_only.explain("explained") == text  # by name, too
    header = text.splitlines()[0]
    assert "task 'explained'" in header
    assert "async" in header
    assert "param_config=CTX_ONLY" in header
    assert "input message (In)" in _row(text, "msg")
    assert "the run context" in _row(text, "ctx")
    assert "CTX_ONLY" in _row(text, "ctx")
    assert "TaskSignature, None when the run has none" in _row(text, "sig")
    required = _row(ctx_only.explain(explained_required), "required")
    assert "TaskSignature, required" in required
    assert "annotated CustomSignature" in required
    assert "Depends(settings)" in _row(text, "conf")
    assert "keeps its default" in _row(text, "limit")


def test_explain_says_when_a_task_is_durable(client: HatchetMageflow) -> None:
    @client.durable_task(name="explained-durable")
    async def explained_durable(msg: In, ctx: DurableContext) -> None:
        return None

    text = client.explain(explained_durable)
    assert text.splitlines()[0].startswith("durable task 'explained-durable'")
    assert "annotated DurableContext" in _row(text, "ctx")
