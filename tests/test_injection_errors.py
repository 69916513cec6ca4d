"""Every mistake in a task's parameters fails where the task is decorated.

Each message must name the task, the parameter and the fix, so every check
below matches all three. The only run-time failure is a required
``TaskSignature`` on a run that has none.
"""

import re
from collections.abc import Callable
from typing import Annotated, Any, Optional

import pytest
from hatchet_sdk import Context, Depends, DurableContext
from hatchet_sdk.exceptions import NonRetryableException
from pydantic import BaseModel

from mageflow import (
    AcceptParams,
    HatchetMageflow,
    InjectionError,
    MageflowError,
    MissingSignatureError,
    TaskSignature,
    UnknownTaskError,
)


class In(BaseModel):
    value: int


class CustomSignature(TaskSignature):
    pass


def says(task: str, *parts: str) -> str:
    """A pattern matching a message naming ``task``, then each part, in order."""
    return ".*".join([re.escape(f"task {task!r}"), *parts])


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
    ) -> str:
        return url

    assert await dep_extras.aio_mock_run(In(value=1)) == "db://"


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
