"""``WorkflowEngine``: one client's signatures, chains and swarms, end to end.

The client's workflow methods are one line into here. The engine owns what
a workflow needs (the store, the dispatcher, the task registry, the signer)
and is the :class:`~mageflow.signature.SignatureHost` every signature it
returns is bound to, so ``signature.pause()`` and ``client.pause(id)`` are
the same call.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from mageflow.dispatch import Dispatcher, RunRequest
from mageflow.engine import chain as chains
from mageflow.engine import swarm as swarms
from mageflow.engine.inputs import (
    describe_problems,
    input_problems,
    message_data,
    request_for,
)
from mageflow.engine.kinds import KINDS
from mageflow.engine.leases import LeaseKeeper
from mageflow.engine.lifecycle import Lifecycle
from mageflow.engine.progress import Progress
from mageflow.engine.recovery import Recovery, RecoveryReport
from mageflow.engine.retrying import Retrier
from mageflow.engine.root import RootScope, body_result, current_root
from mageflow.engine.signing import Records, Signer, linked_to
from mageflow.engine.waiting import Waiters
from mageflow.errors import (
    InputValidationError,
    InvalidTransitionError,
    SignatureCanceledError,
    SignatureFailedError,
    WaitTimeoutError,
)
from mageflow.registry import TaskRegistry
from mageflow.signature import (
    CallbackSpec,
    ChainSignature,
    Message,
    SignatureOrRef,
    SignatureStatus,
    SwarmSignature,
    TaskRef,
    TaskSignature,
)
from mageflow.store import CallbackTarget, SignatureStore
from mageflow.store.codec import Write, dumps, encode

MAX_CONTINUATIONS = 100
"""The default limit on nested continuations (``client.max_continuations``)."""
CONTINUATIONS_CEILING = 200
"""The highest limit allowed: when the last level ends, each level above it
settles the next in one call stack (a few frames per level), so a deeper
chain would meet Python's recursion limit."""


class WorkflowEngine:
    """Signs, starts, settles and steers the workflows of one client."""

    def __init__(
        self,
        store: SignatureStore,
        dispatcher: Dispatcher,
        registry: TaskRegistry,
        signer: Signer,
    ) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.registry = registry
        self.signer = signer
        self.progress = Progress(store, dispatcher, registry)
        self.lifecycle = Lifecycle(store, self.progress)
        self.leases = LeaseKeeper(store)
        self.recovery = Recovery(
            store, self.progress, dispatcher, registry, self.leases
        )
        self.waiters = Waiters(store)
        self.retrier = Retrier(store, self.progress)
        self.max_continuations = MAX_CONTINUATIONS
        """How deep continuations may nest (see ``docs/continuations.md``)."""

    # --- making ------------------------------------------------------------------

    async def sign(
        self,
        task: TaskRef,
        *,
        success: CallbackSpec | None,
        error: CallbackSpec | None,
        task_identifiers: dict[str, Any] | None,
        kwargs: dict[str, Any],
    ) -> TaskSignature[Any]:
        """Store a call of ``task`` with its callbacks, in one round trip."""
        records: Records = []
        signature = self.signer.new(
            task, kwargs, task_identifiers, near=linked_to(success, error)
        )
        signature.success_callbacks = self.signer.callbacks(
            signature.id, "ok", success, records
        )
        signature.error_callbacks = self.signer.callbacks(
            signature.id, "err", error, records
        )
        records.append(Write(signature.id, encode(signature)))
        await self.store.create(records)
        return signature.bind(self)

    async def load_signature(self, signature_id: str) -> TaskSignature[Any] | None:
        """The stored signature with this id, bound, or ``None``."""
        signature = await self.store.load(signature_id)
        return None if signature is None else signature.bind(self)

    async def chain(
        self,
        tasks: Sequence[SignatureOrRef],
        *,
        name: str | None,
        success: CallbackSpec | None,
        error: CallbackSpec | None,
        kwargs: dict[str, Any],
    ) -> ChainSignature[Any]:
        """Store a chain and its steps, in one round trip."""
        records: Records = []
        chain = chains.create(
            self.signer,
            tasks,
            name=name,
            success=success,
            error=error,
            kwargs=kwargs,
            records=records,
        )
        await self.store.create(records)
        return chain.bind(self)

    async def swarm(
        self,
        tasks: Sequence[SignatureOrRef] | None,
        *,
        task_name: str | None,
        max_concurrency: int,
        stop_after_n_failures: int | None,
        max_tasks: int | None,
        success: CallbackSpec | None,
        error: CallbackSpec | None,
        kwargs: dict[str, Any],
        keep_open: bool = False,
        item_success: CallbackSpec | None = None,
        item_error: CallbackSpec | None = None,
    ) -> SwarmSignature[Any]:
        """Store a swarm, then add ``tasks`` to it, closing it with them
        unless ``keep_open`` (a swarm made without tasks, ``None``, stays
        open; one made with an empty list is closed)."""
        records: Records = []
        swarm = swarms.new(
            self.signer,
            task_name=task_name,
            max_concurrency=max_concurrency,
            stop_after_n_failures=stop_after_n_failures,
            max_tasks=max_tasks,
            success=success,
            error=error,
            kwargs=kwargs,
            records=records,
            # An empty list is a list of tasks: closed (it completes with
            # no results when started, like an empty Celery group).
            closed=tasks is not None and not tasks and not keep_open,
            item_success=item_success,
            item_error=item_error,
            near=linked_to(tasks or [], success, error),
        )
        # Items are made (and checked) before anything is stored; their own
        # callbacks are stored with the swarm, in the same round trip.
        writes = swarms.items(self.signer, swarm, tasks or [], records)
        await self.store.create(records)
        swarm.bind(self)
        if writes:
            ids, effects = await swarms.add(
                self.store, swarm, writes, close=not keep_open
            )
            await self.progress.apply(effects)
            swarm.closed = not keep_open
            swarm.size = len(ids)
        return swarm

    async def swarm_add(
        self,
        swarm: SwarmSignature[Any],
        tasks: SignatureOrRef | Sequence[SignatureOrRef],
    ) -> list[str]:
        """Add items to ``swarm``; those that fit under the cap start now."""
        callbacks: Records = []
        writes = swarms.items(self.signer, swarm, tasks, callbacks)
        if callbacks:
            # The items' own callbacks exist before the items that fire them.
            await self.store.create(callbacks)
        ids, effects = await swarms.add(self.store, swarm, writes)
        await self.progress.apply(effects)
        return ids

    async def swarm_close(self, swarm_id: str) -> None:
        """No more items; complete now if every item already finished."""
        await self.progress.apply(await swarms.close(self.store, swarm_id))

    # --- running -----------------------------------------------------------------

    async def dispatch_signature(
        self, signature: TaskSignature[Any], message: Message = None
    ) -> str:
        """Start ``signature`` with ``message``; return the run id.

        For a container there is no single run: the container's id is
        returned.
        """
        data = message_data(message, f"signature {signature.id}")
        root = current_root()
        if root is not None and signature.id != root.task_id:
            return await self._join(root, signature, data)
        # A workflow starts: what is signed next belongs to the next one.
        self.signer.next_shard()
        if signature.kind in KINDS:
            target = CallbackTarget(
                signature.id, signature.kind, signature.task_name, {}, None
            )
            # Owed until it starts, like a task's start.
            await self.store.mark_due(signature.id, dumps(data))
            await self.progress.start([(target, data)], strict=True)
            return signature.id
        request = request_for(signature.id, signature.task_name, signature.kwargs, data)
        self._check_input(signature, request)
        # Owed until it activates: a trigger the engine drops is sent again.
        await self.store.mark_due(signature.id, dumps(data))
        return await self.dispatcher.trigger(request)

    async def _join(
        self, root: RootScope, signature: TaskSignature[Any], data: dict[str, Any]
    ) -> str:
        """Start ``signature`` as a child of the root task whose body runs
        here: it joins the root's swarm, with its own message, and starts
        when the root's cap allows. Returns the signature's id."""
        if signature.kind not in KINDS:
            self._check_input(
                signature,
                request_for(signature.id, signature.task_name, signature.kwargs, data),
            )
        join = Write(signature.id, {"imsg": dumps(data)}, claim=True)
        try:
            _, effects = await swarms.add(self.store, root.swarm, [join], join=True)
        except InvalidTransitionError as exc:
            why = str(exc)
            if exc.signature_id == root.swarm_id:
                # The root's children took no more: they failed (its
                # stop_after_n_failures was reached), or it was stopped.
                why = (
                    f"the root's children have ended ({exc.status or 'closed'}), "
                    "so it takes no more."
                )
            raise InvalidTransitionError(
                f"cannot start signature {signature.id} ({signature.task_name}) "
                f"as a child of root task {root.task_id}: {why} Start it inside "
                "`with mageflow.without_root():` to run it on its own.",
                signature_id=signature.id,
                task_name=signature.task_name,
                status=exc.status,
                action="start",
            ) from exc
        await self.progress.apply(effects)
        return signature.id

    def _check_input(self, signature: TaskSignature[Any], request: RunRequest) -> None:
        """Refuse, before anything is sent, an input its task would refuse."""
        if (problems := input_problems(self.registry, request)) is not None:
            raise InputValidationError(
                f"signature {signature.id} ({signature.task_name}): "
                f"{describe_problems(problems)}. Nothing was started.",
                signature_id=signature.id,
                task_name=signature.task_name,
                errors=problems,
            )

    async def run_signature(
        self, signature: TaskSignature[Any], message: Message = None
    ) -> Any:
        """Start ``signature``, wait for it to end, return its result.

        The same for a task, a chain and a swarm, on either backend: the
        start is sent, and the end is awaited through its announcement
        (:meth:`wait`).
        """
        await self.dispatch_signature(signature, message)
        return await self.wait(signature.id)

    async def wait(self, signature_id: str, timeout: float | None = None) -> Any:
        """Wait until the signature ends; return its result, or raise.

        :raises SignatureFailedError: it failed (``.error``: its TaskError).
        :raises SignatureCanceledError: it was stopped or interrupted.
        :raises WaitTimeoutError: it did not end within ``timeout`` seconds.
        :raises SignatureNotFoundError: there is no such signature.
        """
        signature = await self.waiters.until_final(signature_id, timeout)
        if signature is None:
            raise WaitTimeoutError(
                f"signature {signature_id} did not end within {timeout}s; it "
                "goes on. Wait again, or longer.",
                signature_id=signature_id,
            )
        return await self.result_of(signature)

    async def result_of(self, signature: TaskSignature[Any]) -> Any:
        """The result of an ended signature, as its task's type; or raise
        what it ended with (see :meth:`wait`)."""
        status = signature.status
        if status is SignatureStatus.DONE:
            last = await self._result_signature(signature)
            outcome = signature.outcome
            if last.root_swarm_id is not None:
                outcome = body_result(outcome)
            return self.validate_output(last.task_name, outcome)
        if status is SignatureStatus.FAILED:
            error = signature.error
            what = (
                f"{error.error_type}: {error.message}" if error else "no error recorded"
            )
            raise SignatureFailedError(
                f"signature {signature.id} ({signature.task_name}) failed: {what}",
                signature_id=signature.id,
                task_name=signature.task_name,
                status=status.value,
                error=error,
            )
        raise SignatureCanceledError(
            f"signature {signature.id} ({signature.task_name}) has no result: it "
            f"is {status.value}.",
            signature_id=signature.id,
            task_name=signature.task_name,
            status=status.value,
        )

    async def _result_signature(
        self, signature: TaskSignature[Any]
    ) -> TaskSignature[Any]:
        """The signature whose task's type a result has: a chain's is its
        last step's."""
        if isinstance(signature, ChainSignature) and signature.steps:
            last = await self.store.load(signature.steps[-1])
            if last is not None:
                return await self._result_signature(last)
        return signature

    def validate_output(self, task_name: str, output: Any) -> Any:
        """``output`` (JSON data) as the task's declared return type, when
        the task is one of ours and declares one."""
        registered = self.registry.get(task_name)
        if registered is not None and registered.output is not None:
            return registered.output.validate_python(output)
        return output

    # --- steering ----------------------------------------------------------------

    async def pause(self, signature_id: str) -> None:
        await self.lifecycle.pause(signature_id)

    async def resume(self, signature_id: str) -> None:
        await self.lifecycle.resume(signature_id)

    async def stop(self, signature_id: str) -> None:
        await self.lifecycle.stop(signature_id)

    async def remove(self, signature_id: str) -> int:
        return await self.lifecycle.remove(signature_id)

    async def retry(self, signature_id: str) -> None:
        """Run a failed signature again; see :mod:`mageflow.engine.retrying`."""
        await self.retrier.retry(signature_id)

    # --- recovery ----------------------------------------------------------------

    async def recover(self, grace: timedelta | None = None) -> RecoveryReport:
        """One recovery pass; see :mod:`mageflow.engine.recovery`."""
        return await self.recovery.run_once(grace)

    async def settle_idle(self) -> bool:
        """What the local backend's ``drain`` runs when no run is in flight:
        a recovery pass that waits for nothing; whether it did anything."""
        return (await self.recovery.run_once(timedelta(0))).acted
