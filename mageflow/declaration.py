"""Declaring a task: plan its injection once, wrap it, register it.

Decoration-time work only. :func:`declare` reads the function once
(:func:`~mageflow.injection.plan.build_plan`), hands Hatchet the wrapper
from :mod:`mageflow.run.entry` in its place, and records the task in the
client's :class:`~mageflow.registry.TaskRegistry`. Nothing here runs at run
time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from hatchet_sdk import Hatchet
from hatchet_sdk.runnables.workflow import BaseWorkflow, Standalone
from pydantic import TypeAdapter

from mageflow.callbacks import return_field_of
from mageflow.continuation import result_hint
from mageflow.errors import InjectionError
from mageflow.injection.plan import NO_RETURN_HINT, PlanCell, build_plan
from mageflow.markers import read_marks
from mageflow.params import AcceptParams
from mageflow.registry import RegisteredTask, TaskRegistry
from mageflow.run.entry import make_task_callable
from mageflow.run.runtime import TaskRuntime


def declare(
    hatchet: Hatchet,
    fn: Callable[..., Any],
    *,
    durable: bool,
    options: Mapping[str, Any],
    config: AcceptParams,
    runtime: TaskRuntime,
    registry: TaskRegistry,
) -> Standalone[Any, Any]:
    """Declare ``fn`` as a task of ``hatchet`` with Hatchet's ``options``.

    :raises InjectionError: a parameter of ``fn`` cannot be satisfied, or
        ``fn`` is already a task.
    """
    if isinstance(fn, BaseWorkflow):
        raise InjectionError(
            f"{fn.name!r} is already a Hatchet task; decorate the function "
            "with @client.task(...) once.",
            task_name=fn.name,
        )
    task_name = options.get("name") or getattr(fn, "__name__", None)
    if not task_name:
        raise InjectionError(
            f"cannot name the task for {fn!r}: pass name=... to the decorator."
        )
    plan = build_plan(
        fn,
        task_name=task_name,
        durable=durable,
        config=config,
        marks=read_marks(fn),
        # Runs started by a cron or an event carry no signature.
        triggered=bool(options.get("on_crons") or options.get("on_events")),
    )
    if options.get("input_validator") is None and plan.input_model is not None:
        options = {**options, "input_validator": plan.input_model}
    cell = PlanCell(plan)
    # Hatchet's own decorator, not the client's override of it.
    hatchet_decorator: Callable[..., Callable[[Callable[..., Any]], Any]] = (
        Hatchet.durable_task if durable else Hatchet.task
    )
    standalone = cast(
        "Standalone[Any, Any]",
        hatchet_decorator(hatchet, **options)(make_task_callable(cell, runtime)),
    )
    output = (
        None
        if plan.return_hint is NO_RETURN_HINT
        # What a signature of it ends with (a Continue stands for its work's).
        else TypeAdapter(cast(Any, result_hint(plan.return_hint)))
    )
    return_field = return_field_of(options.get("input_validator"))
    registry.add(RegisteredTask(standalone, cell, return_field, output))
    return standalone
