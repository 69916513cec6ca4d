"""Making signatures: from a task, a task name or a callback spec to records.

Nothing here touches Redis. A :class:`Signer` turns what the user wrote
(``sign("price", success=[notify, "audit"])``) into signature objects and
the records to store for them; the caller stores every record of one call in
a single round trip, so a signature never exists without its callbacks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hatchet_sdk.runnables.workflow import BaseWorkflow, Standalone

from mageflow.engine.inputs import jsonable
from mageflow.errors import UnknownTaskError
from mageflow.registry import RegisteredTask, TaskRegistry
from mageflow.signature import CallbackSpec, SignatureOrRef, TaskRef, TaskSignature
from mageflow.store.codec import encode

Records = list[tuple[str, Mapping[str, str]]]
"""``(signature id, hash fields)`` of new records, stored together."""

FindTask = Callable[[Standalone[Any, Any]], RegisteredTask | None]
"""Finds a task object among the tasks of every mageflow client, so a
signature can name a task another client declared."""


def as_list(spec: SignatureOrRef | Sequence[SignatureOrRef]) -> list[SignatureOrRef]:
    """One ref or a sequence of refs as a list (a ``str`` is one ref)."""
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        return list(spec)
    return [spec]


class Signer:
    """Builds signatures for the tasks one client knows.

    :param registry: the client's own tasks.
    :param strict_names: refuse task names that are not in ``registry``
        (the local backend can only run its own tasks; on Hatchet a name may
        belong to another worker).
    :param find_task: finds a task object declared with any mageflow client.
    """

    def __init__(
        self, registry: TaskRegistry, *, strict_names: bool, find_task: FindTask
    ) -> None:
        self._registry = registry
        self._strict = strict_names
        self._find_task = find_task

    def resolve(self, task: TaskRef) -> tuple[str, str | None]:
        """The task's name and the input field that receives a result."""
        if isinstance(task, str):
            registered = self._registry.get(task)
            if registered is not None:
                return task, registered.return_field
            if self._strict:
                raise UnknownTaskError(
                    f"no task named {task!r} is declared on this client. Known "
                    f"tasks: {', '.join(self._registry.names()) or 'none'}.",
                    task_name=task,
                )
            return task, None
        if isinstance(task, BaseWorkflow):
            found = self._find_task(task)
            if found is None:
                raise UnknownTaskError(
                    f"task {task.name!r} was declared with plain Hatchet, so it "
                    "cannot run a signature. Declare it with a mageflow client's "
                    "@client.task(...).",
                    task_name=task.name,
                )
            return task.name, found.return_field
        raise TypeError(
            f"expected a task or a task name, got {type(task).__name__}: {task!r}."
        )

    def new(
        self,
        task: TaskRef,
        kwargs: Mapping[str, Any],
        task_identifiers: Mapping[str, Any] | None = None,
    ) -> TaskSignature[Any]:
        """A new, unsaved signature of ``task`` with ``kwargs`` bound."""
        name, return_field = self.resolve(task)
        return TaskSignature(
            task_name=name,
            kwargs=jsonable(dict(kwargs)),
            task_identifiers=jsonable(dict(task_identifiers or {})),
            return_field=return_field,
        )

    def callbacks(self, spec: CallbackSpec | None, records: Records) -> list[str]:
        """The ids of the callbacks in ``spec``; new ones are added to ``records``.

        A signature in the spec is used as it is (it is already stored); a
        task or a task name becomes a new signature with nothing bound.
        """
        if spec is None:
            return []
        ids: list[str] = []
        for item in as_list(spec):
            if isinstance(item, TaskSignature):
                ids.append(item.id)
                continue
            callback = self.new(item, {})
            records.append((callback.id, encode(callback)))
            ids.append(callback.id)
        return ids
