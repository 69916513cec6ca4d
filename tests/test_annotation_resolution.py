"""Annotations as real modules write them: strings, and names that exist only
for the type checker. The modules are in ``tests/annotated_modules``; each
builds its tasks on the client it is given."""

from __future__ import annotations

import gc
from collections.abc import Callable

import pytest
from annotated_modules import (
    dotted_names,
    forward_ref,
    future_depends,
    local_scope,
    never_defined,
    type_checking_only,
)
from hatchet_sdk.exceptions import NonRetryableException

from mageflow import (
    HatchetMageflow,
    InjectionError,
    MissingSignatureError,
    UnresolvedAnnotationError,
)


def _row(explained: str, name: str) -> str:
    (line,) = [
        row for row in explained.splitlines()[1:] if row.split("<-")[0].strip() == name
    ]
    return line


# --- from __future__ import annotations + Depends ---------------------------


async def test_depends_resolves_in_a_module_with_string_annotations(
    client: HatchetMageflow,
) -> None:
    tasks = future_depends.build(client)
    order = future_depends.Order(item="tea", quantity=2)

    result = await tasks["priced"].aio_mock_run(order)

    # unit_price (async) used price_table (sync, nested): 2.5 per tea.
    assert result == future_depends.Receipt(total=5.0, events=["Context"])
    assert tasks["priced"].input_validator_type is future_depends.Order
    assert tasks["priced"].output_validator_type is future_depends.Receipt
    explained = client.explain(tasks["priced"])
    assert "Depends(unit_price(table=price_table))" in _row(explained, "price")
    assert "the run context" in _row(explained, "ctx")


async def test_string_annotated_context_managers_wrap_a_sync_task(
    client: HatchetMageflow,
) -> None:
    tasks = future_depends.build(client)
    order = future_depends.Order(item="cake", quantity=1)

    first, second = await tasks["sessions"].aio_mock_run(order)

    assert isinstance(first, future_depends.Session)
    assert first.events == ["async enter", "task", "async exit"]
    assert second.events == ["sync enter", "task", "sync exit"]
    assert "worker thread" in client.explain(tasks["sessions"])


async def test_string_annotated_dependencies_can_be_overridden_by_name(
    client: HatchetMageflow,
) -> None:
    tasks = future_depends.build(client)
    order = future_depends.Order(item="unknown item", quantity=3)

    result = await tasks["priced"].aio_mock_run(order, dependencies={"price": 10.0})

    # unit_price was not called: it would fail on an unknown item.
    assert result.total == 30.0


# --- names imported only under TYPE_CHECKING ---------------------------------


def test_the_type_checking_module_really_lacks_the_names_at_run_time() -> None:
    for name in ("Context", "DurableContext", "TaskSignature", "Depends", "Annotated"):
        assert not hasattr(type_checking_only, name), name


async def test_type_checking_only_context_and_signature_are_injected(
    client: HatchetMageflow,
) -> None:
    tasks = type_checking_only.build(client)
    order = type_checking_only.Order(item="tea")

    result = await tasks["context_signature"].aio_mock_run(order)

    assert result == type_checking_only.Seen(context="Context", signature="None")
    explained = client.explain(tasks["context_signature"])
    assert "the run context" in _row(explained, "ctx")
    assert "None when the run has none" in _row(explained, "sig")


async def test_type_checking_only_required_signature_is_still_required(
    client: HatchetMageflow,
) -> None:
    tasks = type_checking_only.build(client)

    with pytest.raises(MissingSignatureError, match="'tc-required-signature'"):
        await tasks["required_signature"].aio_mock_run(
            type_checking_only.Order(item="tea")
        )


async def test_type_checking_only_durable_context_is_injected(
    client: HatchetMageflow,
) -> None:
    tasks = type_checking_only.build(client)

    result = await tasks["durable"].aio_mock_run(type_checking_only.Order(item="x"))

    assert result.context == "DurableContext"


async def test_type_checking_only_annotated_and_depends_are_seeded(
    client: HatchetMageflow,
) -> None:
    tasks = type_checking_only.build(client)

    result = await tasks["depends"].aio_mock_run(type_checking_only.Order(item="tea"))

    assert result == type_checking_only.Seen(context="Context", signature="", count=3)
    assert "Depends(item_length)" in client.explain(tasks["depends"])


# --- dotted names under TYPE_CHECKING ----------------------------------------


def test_the_dotted_module_really_lacks_the_modules_at_run_time() -> None:
    assert not hasattr(dotted_names, "hatchet_sdk")
    assert not hasattr(dotted_names, "mageflow")


@pytest.mark.parametrize("name", ["plain", "optional", "union", "annotated"])
async def test_a_dotted_context_name_is_recognised(
    client: HatchetMageflow, name: str
) -> None:
    task = dotted_names.build(client)[name]

    result = await task.aio_mock_run(dotted_names.Order(item="tea"))

    assert result.context == "Context"
    assert "the run context" in _row(client.explain(task), "ctx")


async def test_a_dotted_signature_name_is_recognised(client: HatchetMageflow) -> None:
    task = dotted_names.build(client)["union"]

    result = await task.aio_mock_run(dotted_names.Order(item="tea"))

    assert result == dotted_names.Seen(context="Context", signature="None")
    assert "None when the run has none" in _row(client.explain(task), "sig")


async def test_a_dotted_durable_context_name_is_recognised(
    client: HatchetMageflow,
) -> None:
    task = dotted_names.build(client)["durable"]

    result = await task.aio_mock_run(dotted_names.Order(item="tea"))

    assert result.context == "DurableContext"


def test_a_dotted_durable_context_on_a_plain_task_is_rejected(
    client: HatchetMageflow,
) -> None:
    with pytest.raises(
        InjectionError, match=r"task 'dotted-not-durable'.*'ctx'.*durable_task"
    ):
        dotted_names.build_not_durable(client)


# --- a class defined later in the module ------------------------------------


@pytest.fixture
def mid_import(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Hide forward_ref's late classes, as a module-level decorator halfway
    through the import would see the module; the returned function finishes
    the "import" by putting them back."""
    late = {name: getattr(forward_ref, name) for name in forward_ref.LATE_NAMES}
    for name in late:
        monkeypatch.delattr(forward_ref, name)

    def finish_import() -> None:
        for name, value in late.items():
            monkeypatch.setattr(forward_ref, name, value, raising=False)

    return finish_import


async def test_forward_references_resolve_when_built_after_the_import(
    client: HatchetMageflow,
) -> None:
    tasks = forward_ref.build(client)

    for task in tasks.values():
        assert "unresolved" not in client.explain(task)
    result = await tasks["uses_database"].aio_mock_run(forward_ref.Order(item="main"))
    assert result.database == "Database(main)"


async def test_a_forward_reference_is_retried_at_the_first_run(
    client: HatchetMageflow, mid_import: Callable[[], None]
) -> None:
    tasks = forward_ref.build(client)
    for name, param in [("uses_database", "db"), ("uses_context", "ctx")]:
        row = _row(client.explain(tasks[name]), param)
        assert "unresolved" in row
        assert "retried at first call" in row

    mid_import()

    order = forward_ref.Order(item="late")
    assert await tasks["uses_database"].aio_mock_run(order) == forward_ref.Seen(
        context="", database="Database(late)"
    )
    assert await tasks["uses_context"].aio_mock_run(order) == forward_ref.Seen(
        context="Context", database=""
    )
    # The plan was rebuilt, once, and is kept.
    assert "Depends(open_database)" in _row(
        client.explain(tasks["uses_database"]), "db"
    )
    assert "the run context" in _row(client.explain(tasks["uses_context"]), "ctx")
    again = await tasks["uses_database"].aio_mock_run(forward_ref.Order(item="again"))
    assert again.database == "Database(again)"


async def test_a_forward_reference_still_missing_at_the_first_run_fails_it(
    client: HatchetMageflow, mid_import: Callable[[], None]
) -> None:
    tasks = forward_ref.build(client)

    with pytest.raises(
        UnresolvedAnnotationError, match=r"task 'forward-context'.*'ctx'.*RunContext"
    ) as caught:
        await tasks["uses_context"].aio_mock_run(forward_ref.Order(item="x"))

    assert isinstance(caught.value, NonRetryableException)


# --- a name that is never defined --------------------------------------------


@pytest.mark.parametrize("name", ["never", "never_with_default"])
async def test_a_never_defined_name_fails_the_run_as_non_retryable(
    client: HatchetMageflow, name: str
) -> None:
    tasks = never_defined.build(client)  # decorating is fine: it may appear later
    task = tasks[name]
    assert "unresolved 'NeverDefinedAnywhere" in _row(client.explain(task), "helper")

    with pytest.raises(
        UnresolvedAnnotationError,
        match=rf"task '{task.name}'.*'helper'.*NeverDefinedAnywhere.*Import",
    ) as caught:
        await task.aio_mock_run(never_defined.Order(item="x"))

    assert isinstance(caught.value, NonRetryableException)
    assert isinstance(caught.value, InjectionError)


async def test_a_never_defined_name_fails_every_run_not_only_the_first(
    client: HatchetMageflow,
) -> None:
    task = never_defined.build(client)["never"]

    for _ in range(2):
        with pytest.raises(UnresolvedAnnotationError):
            await task.aio_mock_run(never_defined.Order(item="x"))


# --- names from the function that defines the task --------------------------


async def test_a_model_and_dependencies_defined_in_the_factory_resolve(
    client: HatchetMageflow,
) -> None:
    task = local_scope.build(client)["label"]
    parcel_type = task.input_validator_type

    # The input and output models are the factory's own classes.
    assert parcel_type.__qualname__ == "build.<locals>.Parcel"
    assert task.output_validator_type.__qualname__ == "build.<locals>.Label"
    explained = client.explain(task)
    assert "unresolved" not in explained
    assert "Depends(describe(loud=shout, weight=grams))" in _row(explained, "text")

    result = await task.aio_mock_run(parcel_type(item="box", weight=2))

    assert result.text == "BOX (2000 g)"
    assert result.context == "Context"


async def test_names_from_every_enclosing_function_resolve(
    client: HatchetMageflow,
) -> None:
    task = local_scope.build_nested(client)["tally"]

    result = await task.aio_mock_run(task.input_validator_type(count=4))

    assert result.total == 8
    assert task.input_validator_type.__qualname__ == "build_nested.<locals>.Crate"


def test_a_local_name_shadows_the_modules(client: HatchetMageflow) -> None:
    task = local_scope.build_shadowing(client)["shadowing"]

    assert task.input_validator_type is not local_scope.Order
    assert set(task.input_validator_type.model_fields) == {"count"}
    assert task.output_validator_type is task.input_validator_type


async def test_a_local_name_bound_after_the_decorator_resolves_at_the_first_run(
    client: HatchetMageflow,
) -> None:
    task = local_scope.build_late(client)["uses_database"]
    row = _row(client.explain(task), "db")
    assert "unresolved 'Annotated[Database, Depends(open_database)]'" in row

    result = await task.aio_mock_run(task.input_validator_type(item="late"))

    # The replan found Database in the task's closure, and Parcel (its input
    # type) in what was captured when it was decorated.
    assert result.database == "Database(late)"
    assert "Depends(open_database)" in _row(client.explain(task), "db")


async def test_a_local_name_only_an_annotation_uses_fails_clearly_if_bound_late(
    client: HatchetMageflow,
) -> None:
    task = local_scope.build_late(client)["annotation_only"]
    assert "unresolved 'Annotated[Ledger" in _row(client.explain(task), "db")

    with pytest.raises(
        UnresolvedAnnotationError,
        match=r"task 'local-late-annotation-only'.*'db'.*Ledger.*"
        r"in build_late\(\) before the task is decorated",
    ) as caught:
        await task.aio_mock_run(task.input_validator_type(item="x"))

    assert caught.value.task_name == "local-late-annotation-only"
    assert caught.value.parameter == "db"
    assert isinstance(caught.value, NonRetryableException)


def test_the_factorys_frame_and_other_locals_are_not_kept(
    client: HatchetMageflow,
) -> None:
    tasks, bystander = local_scope.build_with_bystander(client)
    gc.collect()

    assert bystander() is None
    assert tasks["plain"].input_validator_type.__name__ == "Parcel"


# --- tasks from these modules are ordinary Hatchet tasks ----------------------


async def test_modules_build_independent_tasks_per_client(
    make_client: Callable[..., HatchetMageflow],
) -> None:
    first, second = make_client(), make_client()
    first_tasks = type_checking_only.build(first)
    second_tasks = type_checking_only.build(second)

    assert first_tasks["depends"] is not second_tasks["depends"]
    assert first.explain("tc-depends") == second.explain("tc-depends")
    for tasks, item in [(first_tasks, "ab"), (second_tasks, "abcd")]:
        result = await tasks["depends"].aio_mock_run(
            type_checking_only.Order(item=item)
        )
        assert result.count == len(item)
