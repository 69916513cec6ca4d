"""Making signatures: from a task, a task name or a callback spec to records.

Nothing here touches Redis. A :class:`Signer` turns what the user wrote
(``sign("price", success=[notify, "audit"])``) into signature objects and
the records to store for them; the caller stores every record of one call in
a single round trip, so a signature never exists without its callbacks.

**Ids.** Outside a task run, a new signature gets a random id. Inside one,
its id is derived from the run (the signature the run executes, or Hatchet's
task run id, both the same on every attempt), the task and its kwargs, and
how many identical signatures the run made before: so a run that fails and
is retried signs *the same* signatures again, and the store keeps the ones
the failed attempt created instead of making new ones. Callbacks, chain
steps and swarm items made from refs get ids derived from their parent's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from hatchet_sdk.runnables.workflow import BaseWorkflow, Standalone

from mageflow._hatchet import current_task_run_id
from mageflow.engine import bound as bound_inputs
from mageflow.engine.inputs import jsonable
from mageflow.errors import InputValidationError, UnknownTaskError
from mageflow.registry import RegisteredTask, TaskRegistry
from mageflow.signature import (
    CallbackSpec,
    CallbackTemplate,
    SignatureOrRef,
    TaskRef,
    TaskSignature,
)
from mageflow.store import keys
from mageflow.store.codec import Write, dumps, encode

Records = list[Write]
"""The records of one creation, stored together in one round trip."""

_NAMESPACE = uuid.UUID("6f6d1a52-7a8e-4a5c-9a4f-9e0f0e2b8d17")


@dataclasses.dataclass
class _Scope:
    """The signing of one task run: what it derives ids from, and counts."""

    base: str
    seen: dict[str, int] = dataclasses.field(default_factory=dict)


_scope: ContextVar[_Scope | None] = ContextVar("mageflow_signing_scope", default=None)


@contextmanager
def signing_in(base: str) -> Iterator[None]:
    """Derive the ids of signatures made in this block from ``base`` (a
    signed run's signature id)."""
    token = _scope.set(_Scope(base))
    try:
        yield
    finally:
        _scope.reset(token)


def child_id(parent_id: str, role: str, index: int) -> str:
    """The id of a signature a parent made from a ref (a callback, a step),
    in the parent's shard."""
    derived = uuid.uuid5(_NAMESPACE, f"{parent_id}/{role}/{index}").hex
    return keys.placed_near(derived, parent_id)


def linked_to(*specs: object) -> str | None:
    """The id of the first stored signature among ``specs`` (refs or
    sequences of refs), if any: a new signature made to be linked with it
    goes in its shard, so the two change together in one script."""
    for spec in specs:
        items = (
            spec if isinstance(spec, Sequence) and not isinstance(spec, str) else [spec]
        )
        for item in items:
            if isinstance(item, TaskSignature):
                return item.id
    return None


def new_id(
    label: str, fingerprint: object, near: str | None = None, anchor: str = ""
) -> str:
    """A new signature's id: random outside a run, derived inside one.

    ``label`` names what is made (a task name, ``chain``, ``swarm``) and
    ``fingerprint`` what it is made of; both go into a derived id, so two
    different signatures never share one, whatever order a run makes them in.

    **Shard.** The id's first character places it (see
    :mod:`mageflow.store.keys`): next to ``near`` when given, else next to
    the run that signs it; outside a run and with nothing near, in
    ``anchor``'s shard (the signing client's, see :attr:`Signer.anchor`).
    """
    scope = _scope.get()
    if scope is None:
        base = current_task_run_id()
        if base is None:
            return keys.placed_near(uuid.uuid4().hex, near or anchor)
        scope = _Scope(base)
        _scope.set(scope)
    digest = hashlib.sha256(dumps(fingerprint).encode()).hexdigest()[:16]
    key = f"{label}/{digest}"
    count = scope.seen.get(key, 0)
    scope.seen[key] = count + 1
    derived = uuid.uuid5(_NAMESPACE, f"{scope.base}/{key}/{count}").hex
    return keys.placed_near(derived, near or scope.base)


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

    Bound kwargs are checked against the task's input model when the task is
    declared in this process (see :mod:`mageflow.engine.bound`); each task's
    check is built once, at its first signature with something bound.
    """

    def __init__(
        self, registry: TaskRegistry, *, strict_names: bool, find_task: FindTask
    ) -> None:
        self._registry = registry
        self._strict = strict_names
        self._find_task = find_task
        self._shard = random.randrange(keys.SHARDS)
        # By id of the task object, which the entry keeps alive (so the id
        # is never reused while it is here).
        self._checks: dict[
            int, tuple[Standalone[Any, Any], bound_inputs.BoundCheck | None]
        ] = {}

    @property
    def anchor(self) -> str:
        """Where what this client signs outside a run goes: one shard, until
        it starts a workflow (:meth:`next_shard`). So the signatures a caller
        makes and then links (a task and its callbacks, the steps of a chain,
        a swarm's items) share a slot, and each workflow it starts moves on
        to the next shard: workflows spread, their parts stay together."""
        return f"{self._shard:x}"

    def next_shard(self) -> None:
        """A workflow was started: sign the next one in the next shard."""
        self._shard = (self._shard + 1) % keys.SHARDS

    def resolve(self, task: TaskRef) -> tuple[str, str | None]:
        """The task's name and the input field that receives a result."""
        name, registered = self._lookup(task)
        return name, None if registered is None else registered.return_field

    def _lookup(self, task: TaskRef) -> tuple[str, RegisteredTask | None]:
        """The task's name, and the task when this process declares it."""
        if isinstance(task, str):
            registered = self._registry.get(task)
            if registered is not None:
                return registered.standalone.name, registered
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
            return task.name, found
        raise TypeError(
            f"expected a task or a task name, got {type(task).__name__}: {task!r}."
        )

    def new(
        self,
        task: TaskRef,
        kwargs: Mapping[str, Any],
        task_identifiers: Mapping[str, Any] | None = None,
        *,
        signature_id: str | None = None,
        near: str | None = None,
    ) -> TaskSignature[Any]:
        """A new, unsaved signature of ``task`` with ``kwargs`` bound.

        Its id is ``signature_id`` when given, else :func:`new_id`'s (in
        ``near``'s shard, when given).

        :raises InputValidationError: a bound kwarg is not a field of the
            task's input, or its value does not validate as that field (the
            kwargs are checked as the JSON that is stored).
        """
        name, registered = self._lookup(task)
        bound = jsonable(dict(kwargs))
        if bound and registered is not None:
            check = self._check_of(registered.standalone)
            if check is not None:
                check.refuse(name, bound)
        identifiers = jsonable(dict(task_identifiers or {}))
        return TaskSignature(
            id=signature_id or new_id(name, [bound, identifiers], near, self.anchor),
            task_name=name,
            kwargs=bound,
            task_identifiers=identifiers,
            return_field=None if registered is None else registered.return_field,
        )

    def check_shared(
        self, what: str, task_names: Sequence[str], kwargs: Mapping[str, Any]
    ) -> None:
        """Check kwargs a container binds into all of its children.

        Each child reads the fields it has, so each value is checked against
        every child that reads it, and a field must be read by one of them at
        least (when every child's input is known here).

        :raises InputValidationError: a value a child refuses, or a field
            that no child reads.
        """
        bound = jsonable(dict(kwargs))
        if not bound:
            return
        read: set[str] = set()
        every_known = True
        for name in task_names:
            registered = self._registry.get(name)
            check = (
                None if registered is None else self._check_of(registered.standalone)
            )
            if check is None or not check.reads:
                every_known = False
                continue
            mine = {key: value for key, value in bound.items() if key in check.reads}
            read.update(mine)
            if mine:
                check.refuse(name, mine)
        unread = sorted(set(bound) - read)
        if every_known and unread:
            raise InputValidationError(
                f"cannot make {what}: {', '.join(map(repr, unread))} "
                f"{'is' if len(unread) == 1 else 'are'} bound to every step, but "
                f"no step's input reads {'it' if len(unread) == 1 else 'them'} "
                f"(steps: {', '.join(task_names)}). Bind it to the step that "
                "needs it, or remove it. Nothing was stored.",
                errors=[
                    {"loc": [key], "msg": "no step reads it", "type": "unread"}
                    for key in unread
                ],
            )

    def _check_of(
        self, standalone: Standalone[Any, Any]
    ) -> bound_inputs.BoundCheck | None:
        """``standalone``'s bound-input check, built at its first use."""
        cached = self._checks.get(id(standalone))
        if cached is None:
            cached = (standalone, bound_inputs.check_for(standalone))
            self._checks[id(standalone)] = cached
        return cached[1]

    def callbacks(
        self,
        parent_id: str,
        role: str,
        spec: CallbackSpec | None,
        records: Records,
    ) -> list[str]:
        """The ids of the callbacks in ``spec``; new ones are added to ``records``.

        A signature in the spec is used as it is (it is already stored); a
        task or a task name becomes a new signature with nothing bound, its
        id derived from ``parent_id`` and ``role`` (``ok`` / ``err``).
        """
        if spec is None:
            return []
        ids: list[str] = []
        for index, item in enumerate(as_list(spec)):
            if isinstance(item, TaskSignature):
                ids.append(item.id)
                continue
            callback = self.new(item, {}, signature_id=child_id(parent_id, role, index))
            records.append(Write(callback.id, encode(callback)))
            ids.append(callback.id)
        return ids

    def templates(self, what: str, spec: CallbackSpec | None) -> list[CallbackTemplate]:
        """Per-item callbacks (``item_success`` / ``item_error``) as templates.

        A signature in the spec is copied, not used: it would run once, and
        each item needs its own. So it must be a plain task's signature
        with no callbacks of its own (those would be shared by every copy).

        :raises TypeError: a chain or swarm signature, or not a task at all.
        :raises ValueError: a signature that has callbacks of its own.
        """
        if spec is None:
            return []
        made: list[CallbackTemplate] = []
        for item in as_list(spec):
            if not isinstance(item, TaskSignature):
                name, field = self.resolve(item)
                made.append(CallbackTemplate(task_name=name, return_field=field))
                continue
            if item.kind != TaskSignature.kind:
                raise TypeError(
                    f"{what} must be tasks, task names or task signatures; got "
                    f"a {item.kind} ({item.id}). Give the chain's or swarm's "
                    "work as a task that starts it."
                )
            if item.success_callbacks or item.error_callbacks:
                raise ValueError(
                    f"{what}: signature {item.id} ({item.task_name}) has "
                    "callbacks of its own. It is copied once per item, and its "
                    "callbacks would be shared by every copy; sign it without "
                    "callbacks."
                )
            made.append(
                CallbackTemplate(
                    task_name=item.task_name,
                    kwargs=item.kwargs,
                    task_identifiers=item.task_identifiers,
                    return_field=item.return_field,
                )
            )
        return made

    @staticmethod
    def from_templates(
        parent_id: str,
        role: str,
        templates: Sequence[CallbackTemplate],
        records: Records,
    ) -> list[str]:
        """One new signature per template for ``parent_id`` (an item), its id
        derived from the item's and ``role``; their records go to
        ``records``."""
        ids: list[str] = []
        for index, template in enumerate(templates):
            callback: TaskSignature[Any] = TaskSignature(
                id=child_id(parent_id, role, index),
                task_name=template.task_name,
                kwargs=dict(template.kwargs),
                task_identifiers=dict(template.task_identifiers),
                return_field=template.return_field,
            )
            records.append(Write(callback.id, encode(callback)))
            ids.append(callback.id)
        return ids
