"""Every mistake in a task's parameters fails where the task is decorated.

Each message must name the task, the parameter and the fix, so every check
below matches all three. The only run-time failure is a required
``TaskSignature`` on a run that has none.
"""

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any, Optional

import pytest
from hatchet_sdk import Context, Depends, DurableContext, EmptyModel
from hatchet_sdk.exceptions import NonRetryableException
from pydantic import BaseModel
from typing_extensions import TypedDict

from mageflow import (
    AcceptParams,
    HatchetMageflow,
    InjectionError,
    MageflowError,
    MissingSignatureError,
    TaskSignature,
    UnknownTaskError,
)
from mageflow.injection.plan import build_plan
from mageflow.markers import read_marks


class In(BaseModel):
    value: int


class CustomSignature(TaskSignature):
    pass


def says(task: str, *parts: str) -> str:
    """A pattern matching a message naming ``task``, then each part, in order."""
    return ".*".join([re.escape(f"task {task!r}"), *parts])


@contextmanager
def refused(task: str, parameter: str | None, *parts: str) -> Iterator[None]:
    """The block raises an InjectionError whose message names ``task``, then
    each (regex) part in order, and whose fields hold the task and the
    parameter at fault."""
    with pytest.raises(InjectionError, match=says(task, *parts)) as caught:
        yield
    assert caught.value.task_name == task
    assert caught.value.parameter == parameter


# Dependencies that cannot be planned. They live at module level, so their
# string annotations can name each other.


def ping(msg: In, ctx: Context, pong: "Annotated[int, Depends(ping)]") -> int:
    return pong


def tick(msg: In, ctx: Context, tock: "Annotated[int, Depends(tock)]") -> int:
    return tock


def tock(msg: In, ctx: Context, tick: "Annotated[int, Depends(tick)]") -> int:
    return tick


def connect(msg: In, ctx: Context, url: str) -> str:
    return url


def with_context_extra(msg: In, ctx: Context, again: Context) -> str:
    return "never"


def with_good_extras(
    msg: In, ctx: Context, *args: Any, url: str = "db://", **kwargs: Any
) -> str:
    return url


def nested_bad(msg: In, ctx: Context, conn: Annotated[str, Depends(connect)]) -> str:
    return conn


# --- a parameter nothing fills ----------------------------------------------


def test_an_unannotated_parameter_without_a_default_is_rejected(
    client: HatchetMageflow,
) -> None:
    with pytest.raises(InjectionError, match=says("needs-db", "'db'", "default")):

        @client.task(name="needs-db")
        async def needs_db(msg: In, db) -> None:
            return None


def test_a_parameter_of_an_ordinary_type_without_a_default_is_rejected(
    client: HatchetMageflow,
) -> None:
    with pytest.raises(InjectionError, match=says("needs-count", "'count'", "Depends")):

        @client.task(name="needs-count")
        async def needs_count(msg: In, count: int) -> None:
            return None


def test_a_required_keyword_only_parameter_is_rejected(
    client: HatchetMageflow,
) -> None:
    with pytest.raises(InjectionError, match=says("kw-required", "'flag'", "default")):

        @client.task(name="kw-required")
        async def kw_required(msg: In, ctx: Context, *, flag: bool) -> None:
            return None


def test_ctx_only_does_not_fill_a_third_unannotated_parameter(
    make_client: Callable[..., HatchetMageflow],
) -> None:
    client = make_client(AcceptParams.CTX_ONLY)
    with pytest.raises(InjectionError, match=says("third", "'signature'", "default")):

        @client.task(name="third")
        async def third(msg: In, ctx, signature) -> None:
            return None


def test_a_failed_decoration_registers_nothing(client: HatchetMageflow) -> None:
    with pytest.raises(InjectionError):

        @client.task(name="not-registered")
        async def not_registered(msg: In, db) -> None:
            return None

    with pytest.raises(UnknownTaskError, match="not-registered"):
        client.explain("not-registered")


def test_injection_error_is_a_type_error_and_a_mageflow_error(
    client: HatchetMageflow,
) -> None:
    with pytest.raises(TypeError) as caught:

        @client.task(name="type-error")
        async def type_error(msg: In, db) -> None:
            return None

    assert isinstance(caught.value, InjectionError)
    assert isinstance(caught.value, MageflowError)


# --- the first parameter -----------------------------------------------------


def test_a_function_without_parameters_is_rejected(client: HatchetMageflow) -> None:
    with pytest.raises(
        InjectionError, match=says("no-message", "input message", "Add one")
    ):

        @client.task(name="no-message")
        async def no_message() -> None:
            return None


def test_a_keyword_only_first_parameter_is_rejected(client: HatchetMageflow) -> None:
    with pytest.raises(
        InjectionError, match=says("kw-message", "input message", "Add one")
    ):

        @client.task(name="kw-message")
        async def kw_message(*, msg: In) -> None:
            return None


def test_an_unresolvable_first_parameter_annotation_is_rejected(
    client: HatchetMageflow,
) -> None:
    with pytest.raises(
        InjectionError, match=says("bad-message", "'msg'", "Invoice", "Import")
    ):

        @client.task(name="bad-message")
        async def bad_message(msg: "Invoice") -> None:  # noqa: F821
            return None


def test_an_unresolvable_return_annotation_is_rejected(
    client: HatchetMageflow,
) -> None:
    with pytest.raises(
        InjectionError,
        match=says("bad-return", "return annotation", "Invoice", "Import"),
    ):

        @client.task(name="bad-return")
        async def bad_return(msg: In) -> "Invoice":  # noqa: F821
            return None


def test_an_annotation_that_is_not_valid_python_is_rejected_at_once(
    client: HatchetMageflow,
) -> None:
    """Only unknown *names* may wait for the first run; broken syntax never
    gets better."""
    with pytest.raises(InjectionError, match=says("bad-syntax", "'ctx'", "Import")):

        @client.task(name="bad-syntax")
        async def bad_syntax(msg: In, ctx: "Context[") -> None:  # noqa: F722
            return None


# --- DurableContext ----------------------------------------------------------


@pytest.mark.parametrize(
    "hint",
    [DurableContext, DurableContext | None, Optional[DurableContext]],  # noqa: UP045
    ids=["DurableContext", "X | None", "Optional[X]"],
)
def test_a_durable_context_on_a_plain_task_is_rejected(
    client: HatchetMageflow, hint: Any
) -> None:
    with pytest.raises(
        InjectionError,
        match=says("not-durable", "'ctx'", "DurableContext", "durable_task"),
    ):

        @client.task(name="not-durable")
        async def not_durable(msg: In, ctx: hint) -> None:
            return None


# --- two parameters asking for the same thing ------------------------------


def test_two_context_parameters_are_rejected(client: HatchetMageflow) -> None:
    with pytest.raises(
        InjectionError, match=says("two-contexts", "'ctx'", "'again'", "Keep one")
    ):

        @client.task(name="two-contexts")
        async def two_contexts(msg: In, ctx: Context, again: Context | None) -> None:
            return None


def test_a_context_and_a_durable_context_are_rejected_together(
    client: HatchetMageflow,
) -> None:
    with pytest.raises(
        InjectionError, match=says("both-contexts", "'ctx'", "'durable'", "Keep one")
    ):

        @client.durable_task(name="both-contexts")
        async def both_contexts(msg: In, ctx: Context, durable: DurableContext) -> None:
            return None


def test_two_signature_parameters_are_rejected(client: HatchetMageflow) -> None:
    with pytest.raises(
        InjectionError, match=says("two-signatures", "'sig'", "'mine'", "Keep one")
    ):

        @client.task(name="two-signatures")
        async def two_signatures(
            msg: In, sig: TaskSignature | None, mine: CustomSignature | None
        ) -> None:
            return None


@pytest.mark.parametrize(
    "hint", [Context | int, TaskSignature | str], ids=["Context", "TaskSignature"]
)
def test_a_union_mixing_an_injectable_type_is_rejected(
    client: HatchetMageflow, hint: Any
) -> None:
    with pytest.raises(
        InjectionError, match=says("ambiguous", "'value'", "union", "exactly one")
    ):

        @client.task(name="ambiguous")
        async def ambiguous(msg: In, value: hint) -> None:
            return None


# --- *args and **kwargs ------------------------------------------------------


def _three(msg: In, ctx: Context) -> int:
    return 3


@pytest.mark.parametrize(
    ("star", "hint"),
    [
        ("*", Context),
        ("**", Context),
        ("*", TaskSignature | None),
        ("**", TaskSignature),
        ("*", Annotated[int, Depends(_three)]),
    ],
    ids=["*Context", "**Context", "*TaskSignature", "**TaskSignature", "*Depends"],
)
def test_an_injectable_type_on_a_variadic_parameter_is_rejected(
    client: HatchetMageflow, star: str, hint: Any
) -> None:
    if star == "*":

        async def variadic(msg: In, *extra: hint) -> None:
            return None
    else:

        async def variadic(msg: In, **extra: hint) -> None:
            return None

    with pytest.raises(
        InjectionError,
        match=says("variadic", re.escape(f"{star}extra"), "normal parameter"),
    ):
        client.task(name="variadic")(variadic)


# --- with_ctx / with_signature ----------------------------------------------


def test_with_ctx_without_a_second_parameter_is_rejected(
    client: HatchetMageflow,
) -> None:
    with pytest.raises(
        InjectionError, match=says("strict-ctx", "@with_ctx", "ctx: Context")
    ):

        @client.task(name="strict-ctx")
        @client.with_ctx
        async def strict_ctx(msg: In) -> None:
            return None


def test_with_ctx_when_the_second_parameter_is_annotated_is_rejected(
    client: HatchetMageflow,
) -> None:
    with pytest.raises(
        InjectionError,
        match=says("strict-annotated", "@with_ctx", "'count'", "ctx: Context"),
    ):

        @client.task(name="strict-annotated")
        @client.with_ctx
        async def strict_annotated(msg: In, count: int = 0) -> None:
            return None


def test_with_ctx_when_the_second_parameter_is_variadic_is_rejected(
    client: HatchetMageflow,
) -> None:
    with pytest.raises(
        InjectionError,
        match=says("strict-variadic", "@with_ctx", re.escape("*rest"), "ctx: Context"),
    ):

        @client.task(name="strict-variadic")
        @client.with_ctx
        async def strict_variadic(msg: In, *rest: Any) -> None:
            return None


def test_with_ctx_when_the_second_parameter_is_keyword_only_is_rejected(
    client: HatchetMageflow,
) -> None:
    with pytest.raises(
        InjectionError,
        match=says("strict-kw", "@with_ctx", "'ctx'", "keyword-only", "ctx: Context"),
    ):

        @client.task(name="strict-kw")
        @client.with_ctx
        async def strict_kw(msg: In, *, ctx) -> None:
            return None


def test_with_ctx_does_not_take_the_parameter_with_signature_reserves(
    client: HatchetMageflow,
) -> None:
    with pytest.raises(
        InjectionError, match=says("reserved", "@with_ctx", "ctx: Context")
    ):

        @client.task(name="reserved")
        @client.with_ctx
        @client.with_signature
        async def reserved(msg: In, signature) -> None:
            return None


def test_with_ctx_stays_strict_on_a_ctx_only_client(
    make_client: Callable[..., HatchetMageflow],
) -> None:
    client = make_client(AcceptParams.CTX_ONLY)
    with pytest.raises(
        InjectionError, match=says("strict-anyway", "@with_ctx", "ctx: Context")
    ):

        @client.task(name="strict-anyway")
        @client.with_ctx
        async def strict_anyway(msg: In) -> None:
            return None


def test_with_signature_without_a_signature_parameter_is_rejected(
    client: HatchetMageflow,
) -> None:
    with pytest.raises(
        InjectionError,
        match=says("strict-signature", "@with_signature", "signature: TaskSignature"),
    ):

        @client.task(name="strict-signature")
        @client.with_signature
        async def strict_signature(msg: In, ctx: Context, sig=None) -> None:
            return None


def test_with_signature_when_signature_is_annotated_otherwise_is_rejected(
    make_client: Callable[..., HatchetMageflow],
) -> None:
    client = make_client(AcceptParams.ALL)
    with pytest.raises(
        InjectionError,
        match=says(
            "signature-str",
            "@with_signature",
            "'signature'",
            "signature: TaskSignature",
        ),
    ):

        @client.task(name="signature-str")
        @client.with_signature
        async def signature_str(msg: In, ctx, signature: str = "") -> None:
            return None


@pytest.mark.parametrize("marker", ["with_ctx", "with_signature"])
def test_a_marking_decorator_above_the_task_decorator_is_rejected(
    client: HatchetMageflow, marker: str
) -> None:
    @client.task(name="already-a-task")
    async def already_a_task(msg: In, ctx: Context, signature=None) -> None:
        return None

    with pytest.raises(
        InjectionError,
        match=re.escape(f"@{marker} was applied to the task 'already-a-task'")
        + ".*below",
    ):
        getattr(client, marker)(already_a_task)


def test_decorating_a_task_twice_is_rejected(client: HatchetMageflow) -> None:
    @client.task(name="inner")
    async def inner(msg: In) -> None:
        return None

    with pytest.raises(
        InjectionError, match=r"'inner' is already a Hatchet task.*once"
    ):
        client.task(name="outer")(inner)


# --- dependencies ------------------------------------------------------------


def test_a_dependency_that_depends_on_itself_is_rejected(
    client: HatchetMageflow,
) -> None:
    with pytest.raises(
        InjectionError,
        match=says("self-cycle", "'ping'", re.escape("ping -> ping"), "cycle"),
    ):

        @client.task(name="self-cycle")
        async def self_cycle(msg: In, n: Annotated[int, Depends(ping)]) -> None:
            return None


def test_a_dependency_cycle_through_two_functions_is_rejected(
    client: HatchetMageflow,
) -> None:
    with pytest.raises(
        InjectionError,
        match=says("two-cycle", re.escape("tick -> tock -> tick"), "cycle"),
    ):

        @client.task(name="two-cycle")
        async def two_cycle(msg: In, n: Annotated[int, Depends(tick)]) -> None:
            return None


@pytest.mark.parametrize(
    ("dependency", "culprit", "parameter"),
    [
        (connect, "connect", "url"),
        (with_context_extra, "with_context_extra", "again"),
        (nested_bad, "connect", "url"),
    ],
    ids=["plain", "annotated-context", "nested"],
)
def test_a_dependency_with_a_parameter_it_can_never_receive_is_rejected(
    client: HatchetMageflow,
    dependency: Callable[..., Any],
    culprit: str,
    parameter: str,
) -> None:
    with pytest.raises(
        InjectionError,
        match=says("dep-required", f"'{culprit}'", f"'{parameter}'", "default"),
    ):

        @client.task(name="dep-required")
        async def dep_required(
            msg: In, conn: Annotated[str, Depends(dependency)]
        ) -> None:
            return None


async def test_dependency_extras_with_defaults_or_variadic_are_accepted(
    client: HatchetMageflow,
) -> None:
    @client.task(name="dep-extras")
    async def dep_extras(
        msg: In, url: Annotated[str, Depends(with_good_extras)]
    ) -> dict[str, str]:
        return {"url": url}

    assert await dep_extras.aio_mock_run(In(value=1)) == {"url": "db://"}


# --- a. Depends written as a default, FastAPI-style -------------------------


def test_depends_as_a_default_is_rejected(client: HatchetMageflow) -> None:
    """Hatchet reads Depends only in the annotation: as a default, the body
    would receive the Depends object itself."""
    with refused(
        "fastapi-default",
        "x",
        "'x'",
        "default",
        re.escape("`x: Annotated[int, Depends(_three)]`"),
    ):

        @client.task(name="fastapi-default")
        async def fastapi_default(msg: In, x: int = Depends(_three)) -> None:
            return None


def test_depends_as_the_default_of_an_unannotated_parameter_is_rejected(
    client: HatchetMageflow,
) -> None:
    with refused(
        "fastapi-bare",
        "x",
        "'x'",
        re.escape("`x: Annotated[T, Depends(_three)]`"),
    ):

        @client.task(name="fastapi-bare")
        async def fastapi_bare(msg: In, *, x=Depends(_three)) -> None:  # noqa: B008
            return None


def _fastapi_dependency(msg: In, ctx: Context, n: int = Depends(_three)) -> int:
    return n


def test_depends_as_a_default_in_a_dependency_is_rejected(
    client: HatchetMageflow,
) -> None:
    with refused(
        "fastapi-nested",
        "x",
        "'_fastapi_dependency'",
        "'n'",
        re.escape("`n: Annotated[int, Depends(_three)]`"),
    ):

        @client.task(name="fastapi-nested")
        async def fastapi_nested(
            msg: In, x: Annotated[int, Depends(_fastapi_dependency)]
        ) -> None:
            return None


# --- b. the first parameter must be something Hatchet can validate -----------


@pytest.mark.parametrize(
    "hint",
    [int, str, list[int], Optional[int], Mapping[str, int]],  # noqa: UP045
    ids=["int", "str", "list[int]", "Optional[int]", "Mapping"],
)
def test_a_first_parameter_hatchet_cannot_validate_is_rejected(
    client: HatchetMageflow, hint: Any
) -> None:
    with refused(
        "scalar-input",
        "msg",
        "'msg'",
        "pydantic model, a dataclass or a dict",
        re.escape("`class MsgInput(BaseModel): value: "),
        re.escape("`msg: MsgInput`"),
    ):

        @client.task(name="scalar-input")
        async def scalar_input(msg: hint) -> None:
            return None


def test_a_union_of_models_as_the_first_parameter_is_rejected(
    client: HatchetMageflow,
) -> None:
    class Other(BaseModel):
        name: str

    with refused("union-input", "msg", "'msg'", "union", "one model"):

        @client.task(name="union-input")
        async def union_input(msg: In | Other) -> None:
            return None


def test_the_context_as_the_first_parameter_is_rejected(
    client: HatchetMageflow,
) -> None:
    """A forgotten message parameter: the context would receive the input."""
    with refused(
        "context-first",
        "ctx",
        "'ctx'",
        "input message",
        re.escape("`async def task(msg: MyInput, ctx: Context, ...)`"),
    ):

        @client.task(name="context-first")
        async def context_first(ctx: Context) -> None:
            return None


@dataclasses.dataclass
class DataIn:
    value: int


class TypedIn(TypedDict):
    value: int


@pytest.mark.parametrize(
    ("hint", "validator"),
    [
        (In, In),
        (Optional[In], In),  # noqa: UP045
        (Annotated[In, "meta"], In),
        (EmptyModel, EmptyModel),
        (DataIn, DataIn),
        (dict, dict),
        (dict[str, int], dict[str, int]),
        (TypedIn, TypedIn),
        (Any, EmptyModel),
        (object, EmptyModel),
    ],
    ids=[
        "model",
        "Optional",
        "Annotated",
        "EmptyModel",
        "dataclass",
        "dict",
        "dict[str, int]",
        "TypedDict",
        "Any",
        "object",
    ],
)
def test_first_parameters_hatchet_can_validate_are_accepted(
    client: HatchetMageflow, hint: Any, validator: Any
) -> None:
    @client.task(name="model-input")
    async def model_input(msg: hint) -> None:
        return None

    assert model_input.input_validator_type == validator


def test_a_typed_dict_first_parameter_validates_the_input(
    client: HatchetMageflow,
) -> None:
    @client.task(name="typed-dict-input")
    async def typed_dict_input(msg: TypedIn) -> None:
        return None

    adapter = typed_dict_input._workflow._config.input_validator
    assert adapter.validate_python({"value": "3"}) == {"value": 3}


# --- c. two Depends in one annotation ----------------------------------------


def _four(msg: In, ctx: Context) -> int:
    return 4


def test_two_depends_in_one_annotation_are_rejected(client: HatchetMageflow) -> None:
    with refused(
        "two-depends",
        "n",
        "'n'",
        re.escape("Depends(_three), Depends(_four)"),
        "Keep one",
    ):

        @client.task(name="two-depends")
        async def two_depends(
            msg: In, n: Annotated[int, Depends(_three), Depends(_four)]
        ) -> None:
            return None


def _two_inside(
    msg: In, ctx: Context, n: Annotated[int, Depends(_three), Depends(_four)]
) -> int:
    return n


def test_two_depends_in_one_annotation_of_a_dependency_are_rejected(
    client: HatchetMageflow,
) -> None:
    with refused("two-depends-nested", "x", "'_two_inside'", "'n'", "Keep one"):

        @client.task(name="two-depends-nested")
        async def two_depends_nested(
            msg: In, x: Annotated[int, Depends(_two_inside)]
        ) -> None:
            return None


# --- d. a required signature on a task crons or events start ------------------


def _plan(fn: Callable[..., Any], **options: Any) -> Any:
    return build_plan(
        fn,
        task_name="triggered",
        durable=False,
        config=AcceptParams.NO_CTX,
        marks=read_marks(fn),
        **options,
    )


@pytest.mark.parametrize(
    "hint",
    [TaskSignature, CustomSignature, Annotated[TaskSignature, "meta"]],
    ids=["TaskSignature", "subclass", "Annotated"],
)
def test_a_required_signature_on_a_triggered_task_is_rejected(hint: Any) -> None:
    async def nightly(msg: In, sig: hint) -> None:
        return None

    with refused(
        "triggered",
        "sig",
        "'sig'",
        "crons or events",
        re.escape("`TaskSignature | None`"),
    ):
        _plan(nightly, triggered=True)


def test_an_optional_signature_on_a_triggered_task_is_accepted() -> None:
    async def nightly(msg: In, sig: TaskSignature | None, other=None) -> None:
        return None

    assert not _plan(nightly, triggered=True).requires_signature
    assert _plan(lambda msg, sig=None: None, triggered=True).unresolved == ()


def test_a_required_signature_on_a_task_not_triggered_is_accepted() -> None:
    async def signed_only(msg: In, sig: TaskSignature) -> None:
        return None

    assert _plan(signed_only).requires_signature
    assert _plan(signed_only, triggered=False).requires_signature


# --- e. a return annotation Hatchet's worker cannot send -----------------------


@pytest.mark.parametrize(
    "hint",
    [int, str, list[int], bool, Optional[int], In | int, tuple[In, In]],  # noqa: UP045
    ids=["int", "str", "list[int]", "bool", "Optional[int]", "In | int", "tuple"],
)
def test_a_return_annotation_hatchet_cannot_send_is_rejected(
    client: HatchetMageflow, hint: Any
) -> None:
    with refused(
        "scalar-output",
        "return",
        "return annotation",
        "dict, a pydantic model, a dataclass or None",
        "Return a model",
    ):

        @client.task(name="scalar-output")
        async def scalar_output(msg: In) -> hint:
            return None


class OtherOut(BaseModel):
    note: str


class TypedOut(TypedDict):
    value: int


@pytest.mark.parametrize(
    "hint",
    [
        None,
        In,
        Optional[In],  # noqa: UP045
        In | OtherOut,
        In | OtherOut | None,
        Annotated[In, "meta"],
        DataIn,
        dict,
        dict[str, int],
        Mapping[str, int],
        TypedOut,
        Any,
        object,
    ],
    ids=[
        "None",
        "model",
        "Optional",
        "union",
        "union | None",
        "Annotated",
        "dataclass",
        "dict",
        "dict[str, int]",
        "Mapping",
        "TypedDict",
        "Any",
        "object",
    ],
)
def test_return_annotations_hatchet_can_send_are_accepted(
    client: HatchetMageflow, hint: Any
) -> None:
    @client.task(name="model-output")
    async def model_output(msg: In) -> hint:
        return None

    assert client.explain(model_output)


def test_no_return_annotation_is_accepted(client: HatchetMageflow) -> None:
    @client.task(name="no-output-annotation")
    async def no_output_annotation(msg: In):
        return None

    assert client.explain(no_output_annotation)


# --- f. Depends given something that is not a dependency function --------------
# In a string annotation (as with `from __future__ import annotations`), the
# Depends(...) call runs when mageflow resolves it; written as a real
# annotation, Hatchet's Depends raises on the `def` line itself.


def test_depends_of_a_number_is_rejected(client: HatchetMageflow) -> None:
    with refused(
        "depends-number",
        "x",
        "'x'",
        re.escape("Depends(42)"),
        "not a function",
        re.escape("(input, ctx"),
    ):

        @client.task(name="depends-number")
        async def depends_number(msg: In, x: "Annotated[int, Depends(42)]") -> None:
            return None


def test_depends_of_a_name_in_quotes_is_rejected(client: HatchetMageflow) -> None:
    with refused(
        "depends-string",
        "x",
        "'x'",
        "the string 'dep'",
        re.escape("`Depends(dep)`"),
    ):

        @client.task(name="depends-string")
        async def depends_string(msg: In, x: "Annotated[int, Depends('dep')]") -> None:
            return None


def test_depends_of_a_lambda_taking_only_star_args_is_rejected(
    client: HatchetMageflow,
) -> None:
    with refused(
        "depends-star",
        "x",
        "'x'",
        re.escape("(input, ctx)"),
        "two positional parameters",
        re.escape("lambda msg, ctx:"),
    ):

        @client.task(name="depends-star")
        async def depends_star(
            msg: In, x: "Annotated[int, Depends(lambda *a: 1)]"
        ) -> None:
            return None


def test_depends_of_a_function_with_a_keyword_only_context_is_rejected(
    client: HatchetMageflow,
) -> None:
    """Hatchet's Depends accepts it (two parameters), but the call
    ``fn(input, ctx)`` would fail on every run."""
    with refused(
        "depends-keyword-ctx",
        "x",
        "'x'",
        "'ctx'",
        "keyword-only",
        "two positional parameters",
    ):

        @client.task(name="depends-keyword-ctx")
        async def depends_keyword_ctx(
            msg: In, x: Annotated[int, Depends(lambda msg, *, ctx: 1)]
        ) -> None:
            return None


def _rest(msg: In, *rest: Any) -> dict[str, int]:
    return {"rest": len(rest)}


async def test_a_dependency_whose_star_args_take_the_context_is_accepted(
    client: HatchetMageflow,
) -> None:
    """``fn(input, ctx)`` fits ``(msg, *rest)``, and Hatchet's Depends takes it."""

    @client.task(name="depends-rest")
    async def depends_rest(
        msg: In, got: Annotated[dict[str, int], Depends(_rest)]
    ) -> dict[str, int]:
        return got

    assert await depends_rest.aio_mock_run(In(value=1)) == {"rest": 1}


# --- at run time: a required signature --------------------------------------


@pytest.mark.parametrize(
    "hint",
    [TaskSignature, CustomSignature, Annotated[TaskSignature, "meta"]],
    ids=["TaskSignature", "subclass", "Annotated"],
)
async def test_a_required_signature_fails_the_run_without_retries(
    client: HatchetMageflow, hint: Any
) -> None:
    calls: list[str] = []

    async def audit(msg: In, ctx: Context) -> str:
        calls.append("dependency")
        return "audit"

    @client.task(name="needs-signature")
    async def needs_signature(
        msg: In, sig: hint, log: Annotated[str, Depends(audit)]
    ) -> None:
        calls.append("task")

    with pytest.raises(MissingSignatureError, match="TaskSignature \\| None") as caught:
        await needs_signature.aio_mock_run(In(value=1))

    assert isinstance(caught.value, NonRetryableException)
    assert isinstance(caught.value, MageflowError)
    assert "'needs-signature'" in str(caught.value)
    assert calls == []  # neither the task nor its dependencies ran


async def test_with_signature_on_an_annotated_required_signature_still_requires_it(
    client: HatchetMageflow,
) -> None:
    @client.task(name="marked-required")
    @client.with_signature
    async def marked_required(msg: In, signature: TaskSignature) -> None:
        return None

    with pytest.raises(MissingSignatureError, match="'marked-required'"):
        await marked_required.aio_mock_run(In(value=1))


@pytest.mark.parametrize("trigger", [{"on_crons": ["0 * * * *"]}, {"on_events": ["x"]}])
def test_a_client_task_on_crons_or_events_cannot_require_a_signature(
    client: HatchetMageflow, trigger: dict[str, Any]
) -> None:
    with pytest.raises(InjectionError, match=r"TaskSignature \| None") as caught:

        @client.task(name="scheduled", **trigger)
        async def scheduled(msg: In, signature: TaskSignature) -> None:
            return None

    assert caught.value.task_name == "scheduled"
    assert caught.value.parameter == "signature"
