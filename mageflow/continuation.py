"""``Continue``: a task that hands its outcome over to other work.

A task that returns ``Continue(signature)`` does not record an output of
its own. The signature (a task, a chain or a swarm, signed in the run) runs
in its place, and whatever it ends with becomes the task's outcome: the
task's callbacks, and the next step when the task is a chain step, wait for
it and receive its result. That is Celery's ``Task.replace``, kept in the
store so it outlives workers. It gives run-time branches (return one of two
signatures) and loops (return a signature of yourself with new input).

How the return annotation reads: ``-> Out | Continue[Out]`` is a task that
either returns an ``Out`` now or continues with work that ends with one;
``Signature[Out]`` is what signing it gives (see ``typings/``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Generic

from mageflow.signature import OutputT, TaskSignature


@dataclasses.dataclass(frozen=True)
class Continue(Generic[OutputT]):
    """Return this from a task to continue with ``work`` instead.

    ``work`` must be a stored signature that has not started and belongs to
    no other workflow: typically one the task just signed. It is started with
    an empty message (bind what it needs when you sign it).
    """

    work: TaskSignature[OutputT]


def result_hint(hint: object) -> object:
    """The type a task's *outcome* has, given its return annotation: each
    ``Continue[X]`` in it stands for ``X`` (the continuation's result), and
    a bare ``Continue`` for ``Any``. Other annotations are kept as they are."""
    origin = typing.get_origin(hint)
    if hint is Continue:
        return Any
    if origin is Continue:
        (inner,) = typing.get_args(hint)
        return inner
    if origin is typing.Union or origin is types.UnionType:
        members = tuple(dict.fromkeys(result_hint(m) for m in typing.get_args(hint)))
        if len(members) == 1:
            return members[0]
        return typing.Union[members]  # noqa: UP007 (built from a tuple)
    return hint


def continues(hint: object) -> bool:
    """Whether a return annotation allows a :class:`Continue`."""
    if hint is Continue or typing.get_origin(hint) is Continue:
        return True
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(continues(m) for m in typing.get_args(hint))
    return False
