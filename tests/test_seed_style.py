"""Tasks written as the seed docs write them: no return annotation.

``@hatchet.task(name=..., input_validator=Model) async def f(msg: Model):
return {...}`` is the style of ``setup.md``. Hatchet derives a task's output
validator from the return annotation of the function it is handed, and with
none it picks ``EmptyModel``: a dict output then warns
(``PydanticSerializationUnexpectedValue``) on every run, which fails a signed
run when warnings are errors, and a model output is sent as ``{}``. mageflow
hands Hatchet a wrapper returning ``Any`` for such a task, so the output goes
through as JSON data, the same whether the run was started by
``task.aio_run`` or by ``mageflow.sign(task).aio_run``.

Everything runs on the local backend, over a real Redis (the ``local``
fixture), with warnings turned into errors.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hatchet_sdk.runnables.workflow import Standalone
from hatchet_sdk.serde import HATCHET_PYDANTIC_SENTINEL
from pydantic import BaseModel

import mageflow
from mageflow import HatchetMageflow
from mageflow.dispatch import RunRequest
from mageflow.dispatch.local import LocalDispatcher

RUN_TIMEOUT = 30.0


class ProcessInput(BaseModel):
    data: str


class Processed(BaseModel):
    processed: str


@contextmanager
def warnings_are_errors() -> Iterator[list[warnings.WarningMessage]]:
    """Every warning raised inside is an error, and is recorded as well.

    The filter is process-wide, so it reaches the runs the local backend
    starts in their own asyncio tasks. Recording keeps the evidence when a
    warning is raised where an ``except`` swallows it.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("error")
        yield caught


def serializer_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [
        str(w.message)
        for w in caught
        if "PydanticSerializationUnexpectedValue" in str(w.message)
    ]


async def task_aio_run(
    client: HatchetMageflow, task: Standalone[Any, Any], message: BaseModel
) -> Any:
    """What ``task.aio_run(message)`` returns, on the local backend.

    ``Standalone.aio_run`` triggers the run on the Hatchet engine (the local
    backend does not intercept it: it would dial the engine) and then
    validates the worker's reply with ``task.output_validator``
    (``Standalone._extract_result``). These are the same two steps: an
    unsigned run through the local backend, which serializes the output as a
    worker does, then the same validation of that JSON.
    """
    output = await asyncio.wait_for(
        client.dispatch_backend.run(
            RunRequest(task.name, message.model_dump(mode="json"), {})
        ),
        RUN_TIMEOUT,
    )
    return task.output_validator.validate_python(
        output, context=HATCHET_PYDANTIC_SENTINEL
    )


async def signed_aio_run(task: Standalone[Any, Any], message: BaseModel) -> Any:
    signature = await mageflow.sign(task)
    return await asyncio.wait_for(signature.aio_run(message), RUN_TIMEOUT)


def declare_dict_task(client: HatchetMageflow) -> Standalone[Any, Any]:
    @client.task(name="process-data", input_validator=ProcessInput)
    async def process_data(msg: ProcessInput):  # no return annotation
        return {"processed": msg.data}

    return process_data


def declare_model_task(client: HatchetMageflow) -> Standalone[Any, Any]:
    @client.task(name="process-model", input_validator=ProcessInput)
    async def process_model(msg: ProcessInput):  # no return annotation
        return Processed(processed=msg.data)

    return process_model


async def test_dict_output_runs_without_a_warning_both_ways(
    local: HatchetMageflow,
) -> None:
    task = declare_dict_task(local)
    with warnings_are_errors() as caught:
        direct = await task_aio_run(local, task, ProcessInput(data="x"))
        signed = await signed_aio_run(task, ProcessInput(data="x"))
    assert serializer_warnings(caught) == []
    assert direct == {"processed": "x"}
    assert signed == direct
    assert type(direct) is dict
    assert type(signed) is type(direct)


async def test_model_output_runs_without_a_warning_both_ways(
    local: HatchetMageflow,
) -> None:
    task = declare_model_task(local)
    with warnings_are_errors() as caught:
        direct = await task_aio_run(local, task, ProcessInput(data="y"))
        signed = await signed_aio_run(task, ProcessInput(data="y"))
    assert serializer_warnings(caught) == []
    # An unannotated task's result is plain JSON data: the model, dumped.
    assert direct == {"processed": "y"}
    assert signed == direct
    assert type(signed) is type(direct) is dict


@pytest.mark.parametrize("declare", [declare_dict_task, declare_model_task])
async def test_worker_sends_the_whole_output(
    local: HatchetMageflow,
    declare: Callable[[HatchetMageflow], Standalone[Any, Any]],
) -> None:
    """What the worker sends (the local backend's record of the run) is the
    whole output, dumped without a warning; with ``EmptyModel`` as the
    validator a model output was sent as ``{}``."""
    task = declare(local)
    with warnings_are_errors() as caught:
        await task_aio_run(local, task, ProcessInput(data="z"))
    assert serializer_warnings(caught) == []
    backend = local.dispatch_backend
    assert isinstance(backend, LocalDispatcher)
    [run] = backend.runs
    assert run.error is None
    assert run.output == {"processed": "z"}


async def test_validator_passes_json_data_through(local: HatchetMageflow) -> None:
    """``task.output_validator`` of an unannotated task returns what it is
    given, neither an ``EmptyModel`` nor a copy of another type."""
    task = declare_dict_task(local)
    data = {"processed": "x", "nested": {"n": [1, 2]}}
    validated = task.output_validator.validate_python(
        data, context=HATCHET_PYDANTIC_SENTINEL
    )
    assert validated == data
    assert type(validated) is dict
