"""The data model: ``TaskSignature`` and its container kinds, as stored.

A signature is data: a task name, bound inputs, callback ids and a status,
kept in Redis. Nothing in it is ever imported or executed when it is read
back. A signature returned by ``sign`` or ``load_signature`` is *bound* to
the :class:`SignatureHost` that made it (the workflow engine of one client),
so it can run and steer itself; the model never knows the client class.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, ClassVar, Generic, Protocol

from hatchet_sdk.runnables.workflow import Standalone
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from typing_extensions import Self, TypeVar

from mageflow.callbacks import TaskError
from mageflow.errors import SignatureNotBoundError

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

TaskRef = Standalone[Any, Any] | str
"""A task, as an object declared with a mageflow client or by name."""


class TaskSignature(BaseModel, Generic[OutputT]):
    """A task call with bound inputs, callbacks and a status, stored in Redis.

    ``OutputT`` is the task's return type when the signature was made from a
    task object, so ``await signature.aio_run(msg)`` is typed.
    """

    model_config = ConfigDict(extra="forbid", frozen=False)

    kind: ClassVar[str] = "task"
    """What sort of signature this is: ``task``, or a container kind
    (``chain``, ``swarm``). Stored with the record."""

    id: str = Field(default_factory=_new_id)
    task_name: str
    kwargs: dict[str, Any] = Field(default_factory=dict)
    task_identifiers: dict[str, Any] = Field(default_factory=dict)
    success_callbacks: list[str] = Field(default_factory=list)
    error_callbacks: list[str] = Field(default_factory=list)
    status: SignatureStatus = SignatureStatus.PENDING
    created_at: datetime = Field(default_factory=_now)
    container_id: str | None = None
    container_role: str | None = None
    """What this signature is to its container (a chain ``step``, the
    chain's ``last`` step, a swarm ``item``); each container kind names its
    roles. Lets a finished child skip its container when the container has
    nothing to do (a middle chain step)."""
    return_field: str | None = None
    """The field of the task's input that receives a triggering result (a
    ``ReturnValue[...]`` field), found when the signature was made."""
    outcome: Any = None
    """What it ended with, as stored (JSON data): the result when it is
    ``done``, the :class:`~mageflow.TaskError` payload when it ``failed``;
    ``None`` before it ends. As read when the signature was loaded: use
    :meth:`aio_result` to wait for it."""
    generation: int = 0
    """How many times it was retried (:meth:`retry`). Runs of a retried
    signature derive new ids for the signatures they make."""
    retried_at: datetime | None = None
    """When it was last retried, if ever."""
    continuation_id: str | None = None
    """The signature this task continued with (it returned
    :class:`mageflow.Continue`): its outcome is this task's."""
    continuation_depth: int = 0
    """How many continuations this signature descends from (the guard
    against a task that continues with itself for ever)."""
    root_swarm_id: str | None = None
    """A root task's swarm: every child its body started."""

    _host: SignatureHost | None = PrivateAttr(default=None)

    def bind(self, host: SignatureHost) -> Self:
        """Attach this signature to the engine that runs and steers it.

        ``sign``, ``load_signature``, ``chain`` and ``swarm`` return bound
        signatures; call this only for one you built yourself.
        """
        self._host = host
        return self

    def _bound(self) -> SignatureHost:
        if self._host is None:
            raise SignatureNotBoundError(
                f"signature {self.id} is not bound to a mageflow client. Get "
                "signatures from `client.sign(...)` / `client.load_signature(...)` "
                "(or the module functions inside a task) instead of building "
                "TaskSignature(...) by hand.",
                signature_id=self.id,
                task_name=self.task_name,
            )
        return self._host

    async def aio_run_no_wait(self, msg: Message = None) -> str:
        """Dispatch the task with ``msg`` merged with the bound kwargs.

        Returns the Hatchet run id. See ``docs/signatures.md`` for how the
        message and the bound kwargs combine.
        """
        return await self._bound().dispatch_signature(self, msg)

    async def aio_run(self, msg: Message = None) -> OutputT:
        """Start it, wait for it to end, and return its (validated) result.

        A chain returns its last step's result, a swarm the list of its
        items' outcomes in add order.

        :raises SignatureFailedError: it failed; ``.error`` is its TaskError.
        """
        result: OutputT = await self._bound().run_signature(self, msg)
        return result

    async def aio_result(self, timeout: float | None = None) -> OutputT:
        """Wait until it ends (without starting it) and return its result.

        Event-driven: the end is announced by Redis, nothing polls.

        :raises SignatureFailedError: it failed; ``.error`` is its TaskError.
        :raises SignatureCanceledError: it was stopped or interrupted.
        :raises WaitTimeoutError: it did not end within ``timeout`` seconds.
        """
        result: OutputT = await self._bound().wait(self.id, timeout)
        return result

    @property
    def error(self) -> TaskError | None:
        """The :class:`~mageflow.TaskError` it failed with, when it failed."""
        if self.status is SignatureStatus.FAILED and isinstance(self.outcome, dict):
            return TaskError.model_validate(self.outcome)
        return None

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

    async def retry(self) -> None:
        """Run it again after it failed; see :func:`mageflow.retry`."""
        await self._bound().retry(self.id)


class ChainSignature(TaskSignature[OutputT]):
    """Steps that run one after the other, each given the previous result.

    Built by :func:`mageflow.chain`. ``steps`` are the ids of the step
    signatures, in order; ``status`` is the chain's own.
    """

    kind: ClassVar[str] = "chain"

    steps: list[str] = Field(default_factory=list)


class CallbackTemplate(BaseModel):
    """A callback made anew for every item of a swarm (``item_success`` /
    ``item_error``): a signature runs once, so each item gets its own, from
    this task and these bound inputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_name: str
    kwargs: dict[str, Any] = Field(default_factory=dict)
    task_identifiers: dict[str, Any] = Field(default_factory=dict)
    return_field: str | None = None


class SwarmSignature(TaskSignature[list[OutputT]], Generic[OutputT]):
    """Items that run in parallel, at most ``max_concurrency`` at once.

    Built by :func:`mageflow.swarm`. Its result (what ``aio_run`` returns and
    its success callbacks receive) is the list of its items' outcomes in the
    order the items were added; ``OutputT`` is an item's.
    """

    kind: ClassVar[str] = "swarm"

    max_concurrency: int = 30
    stop_after_n_failures: int | None = None
    max_tasks: int | None = None
    closed: bool = False
    size: int = 0
    """How many items were added so far."""
    finished: int = 0
    """How many items have finished (done or failed)."""
    failed: int = 0
    item_success: list[CallbackTemplate] = Field(default_factory=list)
    """Callbacks each item that succeeds fires with its own result."""
    item_error: list[CallbackTemplate] = Field(default_factory=list)
    """Callbacks each item that fails fires with its own ``TaskError``."""

    async def add(self, tasks: SignatureOrRef | Sequence[SignatureOrRef]) -> list[str]:
        """Add items: a signature, a task, a task name, or a list of them.

        Items added while the swarm runs start as soon as a slot is free.

        :raises InvalidTransitionError: the swarm is closed, or ``max_tasks``
            would be exceeded.
        """
        return await self._bound().swarm_add(self, tasks)

    async def close(self) -> None:
        """No more items will come; the swarm completes when the last finishes."""
        await self._bound().swarm_close(self.id)


SignatureOrRef = TaskSignature[Any] | TaskRef
"""A step or an item: a stored signature, a task, or a task name."""

CallbackSpec = SignatureOrRef | Sequence[SignatureOrRef]
"""A callback: a signature, a task, a task name, or a list of them."""


class SignatureHost(Protocol):
    """What a bound signature asks of the engine that made it.

    The workflow engine implements it; the data model depends on this
    protocol only, never on the client.
    """

    async def dispatch_signature(
        self, signature: TaskSignature[Any], message: Message, /
    ) -> str: ...

    async def run_signature(
        self, signature: TaskSignature[Any], message: Message, /
    ) -> Any: ...

    async def pause(self, signature_id: str, /) -> None: ...

    async def resume(self, signature_id: str, /) -> None: ...

    async def stop(self, signature_id: str, /) -> None: ...

    async def remove(self, signature_id: str, /) -> int: ...

    async def swarm_add(
        self,
        swarm: SwarmSignature[Any],
        tasks: SignatureOrRef | Sequence[SignatureOrRef],
        /,
    ) -> list[str]: ...

    async def swarm_close(self, swarm_id: str, /) -> None: ...

    async def wait(self, signature_id: str, timeout: float | None, /) -> Any: ...

    async def retry(self, signature_id: str, /) -> None: ...
