"""``TaskSignature``: one stored, resumable task call.

A signature is data: a task name, bound inputs, callback ids and a status,
kept in Redis as JSON. Nothing in it is ever imported or executed when it is
read back. A signature returned by ``sign`` or ``load_signature`` is bound to
the client that made it, so it can run and steer itself.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Generic, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from typing_extensions import TypeVar

from mageflow.errors import SignatureNotBoundError

if TYPE_CHECKING:
    from mageflow.client import HatchetMageflow

OutputT = TypeVar("OutputT", default=Any)


class SignatureStatus(str, enum.Enum):
    """Where a signature is in its life. See ``docs/lifecycle.md``."""

    PENDING = "pending"
    """Stored, not running yet."""
    ACTIVE = "active"
    """A run holds it and the function is executing."""
    SUSPENDED = "suspended"
    """Paused: no new execution starts until it is resumed."""
    INTERRUPTED = "interrupted"
    """Cut short by its container (a swarm that failed); final."""
    CANCELED = "canceled"
    """Stopped; final, it never runs."""
    DONE = "done"
    """Finished successfully; final."""
    FAILED = "failed"
    """Failed after its last attempt; final."""

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset(
    {
        SignatureStatus.DONE,
        SignatureStatus.FAILED,
        SignatureStatus.CANCELED,
        SignatureStatus.INTERRUPTED,
    }
)


def _new_id() -> str:
    return uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(timezone.utc)


Message = BaseModel | Mapping[str, Any] | None
"""What a signature can be run with: a model, a mapping, or nothing."""


class TaskSignature(BaseModel, Generic[OutputT]):
    """A task call with bound inputs, callbacks and a status, stored in Redis.

    ``OutputT`` is the task's return type when the signature was made from a
    task object, so ``await signature.aio_run(msg)`` is typed.
    """

    model_config = ConfigDict(extra="forbid", frozen=False)

    id: str = Field(default_factory=_new_id)
    task_name: str
    kwargs: dict[str, Any] = Field(default_factory=dict)
    task_identifiers: dict[str, Any] = Field(default_factory=dict)
    success_callbacks: list[str] = Field(default_factory=list)
    error_callbacks: list[str] = Field(default_factory=list)
    status: SignatureStatus = SignatureStatus.PENDING
    created_at: datetime = Field(default_factory=_now)
    container_id: str | None = None
    container_role: Literal["step", "last", "item"] | None = None
    """What this signature is to its container: a chain ``step``, the chain's
    ``last`` step, or a swarm ``item``. Lets a finished child skip its
    container when the container has nothing to do (a middle chain step)."""
    return_field: str | None = None
    """The field of the task's input that receives a triggering result (a
    ``ReturnValue[...]`` field), found when the signature was made."""

    _client: HatchetMageflow | None = PrivateAttr(default=None)

    def _bound(self) -> HatchetMageflow:
        if self._client is None:
            raise SignatureNotBoundError(
                f"signature {self.id} is not bound to a mageflow client. Get "
                "signatures from `client.sign(...)` / `client.load_signature(...)` "
                "(or the module functions inside a task) instead of building "
                "TaskSignature(...) by hand."
            )
        return self._client

    async def aio_run_no_wait(self, msg: Message = None) -> str:
        """Dispatch the task with ``msg`` merged with the bound kwargs.

        Returns the Hatchet run id. See ``docs/signatures.md`` for how the
        message and the bound kwargs combine.
        """
        return await self._bound().dispatch_signature(self, msg)

    async def aio_run(self, msg: Message = None) -> OutputT:
        """Dispatch the task, wait for it, and return its (validated) result."""
        result: OutputT = await self._bound().run_signature(self, msg)
        return result

    async def pause(self) -> None:
        """Pause this signature; see :func:`mageflow.pause`."""
        await self._bound().pause(self.id)

    async def resume(self) -> None:
        """Resume this signature; see :func:`mageflow.resume`."""
        await self._bound().resume(self.id)

    async def stop(self) -> None:
        """Stop this signature; see :func:`mageflow.stop`."""
        await self._bound().stop(self.id)

    async def remove(self) -> int:
        """Delete this signature and its callbacks; see :func:`mageflow.remove`."""
        return await self._bound().remove(self.id)


class ChainSignature(TaskSignature[OutputT]):
    """Steps that run one after the other, each given the previous result.

    Built by :func:`mageflow.chain`. ``steps`` are the ids of the step
    signatures, in order; ``status`` is the chain's own.
    """

    steps: list[str] = Field(default_factory=list)


class SwarmSignature(TaskSignature[OutputT]):
    """Items that run in parallel, at most ``max_concurrency`` at once.

    Built by :func:`mageflow.swarm`. Its success callbacks receive the items'
    results as a list in the order the items were added.
    """

    max_concurrency: int = 30
    stop_after_n_failures: int | None = None
    max_tasks: int | None = None
    closed: bool = False
    size: int = 0
    """How many items were added so far."""
    finished: int = 0
    """How many items have finished (done or failed)."""
    failed: int = 0

    async def add(self, tasks: Any) -> list[str]:
        """Add items: a signature, a task, a task name, or a list of them.

        Items added while the swarm runs start as soon as a slot is free.

        :raises InvalidTransitionError: the swarm is closed, or ``max_tasks``
            would be exceeded.
        """
        ids: list[str] = await self._bound().swarm_add(self, tasks)
        return ids

    async def close(self) -> None:
        """No more items will come; the swarm completes when the last finishes."""
        await self._bound().swarm_close(self.id)
