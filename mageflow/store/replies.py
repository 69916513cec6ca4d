"""What the store's scripts decide, as typed values.

Every state transition is one Lua script (:mod:`mageflow.store.scripts`)
whose reply starts with a verdict word. :class:`~mageflow.store.SignatureStore`
turns each reply into one of these, so the layers above switch on enum
members that mypy checks, never on strings.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

from mageflow.signature import SignatureStatus, TaskSignature


class ActivationVerdict(enum.Enum):
    """What a delivery of a signed run may do (:data:`scripts.ACTIVATE`)."""

    RUN = "run"
    """This delivery holds the signature: run the function."""
    DUPLICATE = "duplicate"
    """Another dispatch holds it: end without running."""
    SUSPENDED = "suspended"
    """Paused: the message was recorded, to run on resume."""
    FINISHED = "finished"
    """Already done or failed: replay its completion, never run again."""
    CANCELED = "canceled"
    """Stopped or interrupted: end without running."""
    MISMATCH = "mismatch"
    """The record is another task's (or a container's): refused."""


@dataclasses.dataclass(frozen=True)
class Activation:
    verdict: ActivationVerdict
    status: str
    signature: TaskSignature | None = None
    """The record, decoded, for ``RUN`` and ``FINISHED``."""
    record: Mapping[str, str] = dataclasses.field(default_factory=dict)
    completing: bool = False
    """``FINISHED``: its holder is alive and still sending its callbacks."""


@dataclasses.dataclass(frozen=True)
class CallbackTarget:
    """A signature to start: enough to trigger it without another read."""

    id: str
    kind: str
    task_name: str
    kwargs: dict[str, Any]
    return_field: str | None
    status: str = "pending"
    """Its status when it was read."""
    message: dict[str, Any] | None = None
    """The message it was started with, when it is a root task's child
    (which starts with its own message, not its swarm's input)."""


@dataclasses.dataclass(frozen=True)
class BadTarget:
    """A signature to start whose record is not a mageflow record: it is
    reported and skipped, and its siblings start anyway."""

    id: str
    key: str
    reason: str


class FinishVerdict(enum.Enum):
    """What recording an outcome did (:data:`scripts.FINISH`)."""

    FIRE = "fire"
    """Recorded: fire the callbacks it returned."""
    HELD = "held"
    """Paused meanwhile: the outcome waits for resume."""
    FINISHED = "finished"
    """An earlier delivery already recorded an outcome."""
    DROPPED = "dropped"
    """Stopped or interrupted meanwhile: the outcome is discarded."""
    LOST = "lost"
    """Another dispatch holds the signature."""
    MISSING = "missing"
    """The record is gone."""


@dataclasses.dataclass(frozen=True)
class Finish:
    verdict: FinishVerdict
    targets: tuple[CallbackTarget, ...] = ()
    bad: tuple[BadTarget, ...] = ()
    """Callbacks that could not be read (corrupt records)."""
    sent: bool = False
    """Nothing more is owed for this outcome (its starts are recorded as
    owed, its container, if any, heard of it): no ``mark_sent`` follows."""
    step: SwarmStep | None = None
    """For a swarm item finished with its swarm's step
    (:data:`~mageflow.store.scripts.FINISH_ITEM`): what the swarm decided."""


class SwarmVerdict(enum.Enum):
    """What a swarm script decided (``scripts.SWARM_*``)."""

    OK = "ok"
    """Applied; start the items it returned."""
    QUEUED = "queued"
    """Items added to a swarm that has not started."""
    COMPLETE = "complete"
    """Every item finished: settle the swarm as done."""
    FAIL = "fail"
    """``stop_after_n_failures`` was reached: interrupt what runs, fail it."""
    FULL = "full"
    """``max_tasks`` would be exceeded; nothing was added."""
    CLOSED = "closed"
    """The swarm takes no more items; nothing was added."""
    SUSPENDED = "suspended"
    """Paused: the start message was recorded for resume."""
    NOOP = "noop"
    """Already started or finished: nothing to do."""
    UNKNOWN = "unknown"
    """The item does not belong to the swarm."""
    REFUSED = "refused"
    """An item cannot be added (not pending, elsewhere, twice); nothing was."""


@dataclasses.dataclass(frozen=True)
class SwarmStep:
    """What a swarm script decided, and the items it started."""

    verdict: SwarmVerdict
    ids: tuple[str, ...] = ()
    """The started items, or (``FAIL``) the items still running or queued."""
    started: tuple[CallbackTarget, ...] = ()
    input: Any = None
    """The swarm's input message, for the started items (``FULL``: the cap;
    ``CLOSED`` and ``REFUSED``: why)."""
    bad: tuple[BadTarget, ...] = ()


@dataclasses.dataclass(frozen=True)
class Transition:
    """A lifecycle step that happened: the status it left, and the kind."""

    previous: SignatureStatus
    kind: str
    container_id: str | None = None
    """Its container, for a stop that must tell it (``None`` on a repeat)."""
    container_role: str | None = None
    run_id: str | None = None
    """The Hatchet run of its last attempt, if it ever ran."""
    was_due: bool = False
    """A start of it had been sent and had not begun (its run may be queued)."""


class HandoverVerdict(enum.Enum):
    """What handing a task over to its continuation did (:data:`scripts.HANDOVER`)."""

    OK = "ok"
    """Handed over: start the continuation (``Handover.target``)."""
    HELD = "held"
    """Handed over while the task is paused: the continuation waits for the
    task's resume."""
    REFUSED = "refused"
    """Not handed over (``Handover.reason``): nothing changed."""
    LOST = "lost"
    """Another attempt holds the task now, or it ended: nothing changed."""


@dataclasses.dataclass(frozen=True)
class Handover:
    verdict: HandoverVerdict
    target: CallbackTarget | None = None
    reason: str = ""


class RootVerdict(enum.Enum):
    """What the end of a root task's body decided (:data:`scripts.ROOT_DONE`)."""

    COMPLETE = "complete"
    """Every child had finished: settle the swarm (then the task)."""
    REPLAY = "replay"
    """The swarm had ended already: replay its completion to the task."""
    WAITING = "waiting"
    """Children are running: the last one settles the swarm, then the task."""
    NO_CHILDREN = "nochildren"
    """The swarm is gone: the task settles now, with no children."""
    LOST = "lost"
    """Another attempt holds the task now, or it ended: nothing changed."""


class ResumeVerdict(enum.Enum):
    """What leaving ``suspended`` requires of the caller (:data:`scripts.RESUME`)."""

    FIRE = "fire"
    """The run finished while paused: fire its callbacks now."""
    REDISPATCH = "redispatch"
    """A delivery arrived while paused: start it again with its message."""
    RUNNING = "running"
    """The paused run is still going; nothing to send."""
    PENDING = "pending"
    """Nothing had arrived; it waits for its first delivery."""


@dataclasses.dataclass(frozen=True)
class Resumption:
    verdict: ResumeVerdict
    kind: str
    message: Any = None
    record: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Reset:
    """A retry plan's step on one record (:data:`scripts.RETRY`, ``r``)."""

    signature_id: str
    expect: SignatureStatus
    """The status the plan saw; any other refuses the whole retry."""
    new: SignatureStatus
    """``pending``, or ``active`` for a container that continues."""
    message: str | None = None
    """JSON: when given, the record is owed a start with it."""


@dataclasses.dataclass(frozen=True)
class Requeue:
    """A retry plan's step on a swarm's queue (:data:`scripts.RETRY`, ``s``)."""

    swarm_id: str
    items: tuple[tuple[int, str], ...]
    """(position, item id) of the items to run again, in order."""
    fill: bool
    """Start what fits now (the swarm continues) or leave them queued."""
