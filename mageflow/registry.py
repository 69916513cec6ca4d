"""``TaskRegistry``: the tasks one client declared, by name.

Decoration time fills it (one :class:`RegisteredTask` per ``@client.task``);
run time only reads it: the local backend finds the task to run, a signed run
finds the output type to validate with. It belongs to one client, so two
clients in a process never see each other's tasks.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hatchet_sdk.runnables.workflow import Standalone
from pydantic import TypeAdapter

from mageflow.errors import UnknownTaskError
from mageflow.injection import InjectionPlan, PlanCell


@dataclasses.dataclass(frozen=True)
class RegisteredTask:
    """A task declared with a mageflow client: what mageflow knows about it."""

    standalone: Standalone[Any, Any]
    cell: PlanCell
    """The task's injection plan (rebuilt once if it had unresolved names)."""
    return_field: str | None
    """The input field that receives a triggering result (``ReturnValue``)."""
    output: TypeAdapter[Any] | None
    """Validates a stored result back into the task's return type; ``None``
    when the function has no return annotation."""


class TaskRegistry:
    """Declared tasks by name; see the module docstring."""

    def __init__(self, namespace: str = "") -> None:
        self._tasks: dict[str, RegisteredTask] = {}
        self.namespace = namespace
        """The Hatchet namespace the client's task names carry (``""``:
        none). A name given without it names the same task."""

    def add(self, task: RegisteredTask) -> None:
        self._tasks[task.standalone.name] = task

    def canonical(self, name: str) -> str:
        """``name`` as the engine knows it: with the namespace."""
        if not self.namespace or name.startswith(self.namespace):
            return name
        return self.namespace + name

    def get(self, name: str) -> RegisteredTask | None:
        """The task declared under ``name`` (with or without the
        namespace), if any."""
        found = self._tasks.get(name)
        if found is None and self.namespace:
            found = self._tasks.get(self.canonical(name))
        return found

    def owns(self, standalone: Standalone[Any, Any]) -> bool:
        """Whether this very task object was declared here."""
        registered = self.get(standalone.name)
        return registered is not None and registered.standalone is standalone

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def plan_of(self, name: str) -> InjectionPlan:
        """The injection plan of the task ``name``.

        :raises UnknownTaskError: no task of that name was declared here.
        """
        registered = self.get(name)
        if registered is None:
            known = ", ".join(self.names()) or "none"
            raise UnknownTaskError(
                f"{name!r} was not declared with this client's @task or "
                "@durable_task, so mageflow has no plan for it. Declare it "
                f"with this client; its tasks are: {known}.",
                task_name=name,
            )
        return registered.cell.plan
