"""Per-function marks set by ``with_ctx``, ``with_signature``,
``stagger_execution`` and ``root_task``.

These decorators run *before* ``@client.task`` (they sit below it), so they
cannot build anything themselves. They only note what they want on the
function, and the task decorator reads the note once, when it plans the task.
Keeping the note on the function (not in a registry) means there is no global
state, and the decorators stack in either order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from hatchet_sdk.runnables.workflow import BaseWorkflow

from mageflow.errors import InjectionError

F = TypeVar("F", bound=Callable[..., Any])

_ATTRIBUTE = "__mageflow_marks__"


@dataclasses.dataclass(frozen=True)
class RootOptions:
    """What ``@client.root_task(...)`` asked: how the children of one run of
    the task run (as a swarm's items do)."""

    max_concurrency: int = 30
    stop_after_n_failures: int | None = None


@dataclasses.dataclass(frozen=True)
class TaskMarks:
    """What the marking decorators asked for one function."""

    with_ctx: bool = False
    with_signature: bool = False
    stagger: timedelta | None = None
    root: RootOptions | None = None


def read_marks(fn: Callable[..., Any]) -> TaskMarks:
    """The marks on ``fn``, or the empty marks."""
    marks = getattr(fn, _ATTRIBUTE, None)
    return marks if isinstance(marks, TaskMarks) else TaskMarks()


def add_mark(fn: F, decorator: str, **changes: Any) -> F:
    """Return ``fn`` itself with ``changes`` merged into its marks.

    The function is returned unchanged in type, so the marking decorators are
    invisible to type checkers.
    """
    if isinstance(fn, BaseWorkflow):
        raise InjectionError(
            f"@{decorator} was applied to the task {fn.name!r}, which is already "
            f"a Hatchet task. Put @{decorator} *below* @client.task(...) / "
            "@client.durable_task(...), directly on the function."
        )
    if not callable(fn):
        raise InjectionError(f"@{decorator} decorates a function, got {fn!r}.")
    marks = dataclasses.replace(read_marks(fn), **changes)
    try:
        setattr(fn, _ATTRIBUTE, marks)
    except (AttributeError, TypeError) as exc:
        raise InjectionError(
            f"@{decorator} cannot mark {fn!r}: it does not accept attributes. "
            "Decorate a plain `def` or `async def` function instead."
        ) from exc
    return fn


def stagger_mark(wait_delta: timedelta) -> Callable[[F], F]:
    """The decorator ``client.stagger_execution(wait_delta)`` returns."""
    if not isinstance(wait_delta, timedelta) or wait_delta < timedelta(0):
        raise ValueError(
            f"stagger_execution(wait_delta=...) takes a non-negative "
            f"timedelta, got {wait_delta!r}."
        )

    def mark(fn: F) -> F:
        return add_mark(fn, "stagger_execution", stagger=wait_delta)

    return mark


def root_mark(
    max_concurrency: int, stop_after_n_failures: int | None
) -> Callable[[F], F]:
    """The decorator ``client.root_task(...)`` returns."""
    if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int):
        raise TypeError(f"max_concurrency must be an int, got {max_concurrency!r}.")
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}.")
    if stop_after_n_failures is not None and stop_after_n_failures < 1:
        raise ValueError(
            "stop_after_n_failures must be at least 1 (or None), got "
            f"{stop_after_n_failures}."
        )
    options = RootOptions(max_concurrency, stop_after_n_failures)

    def mark(fn: F) -> F:
        return add_mark(fn, "root_task", root=options)

    return mark
