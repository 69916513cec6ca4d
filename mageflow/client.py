"""``Mageflow(...)`` and ``HatchetMageflow``: a Hatchet client that injects by type.

``HatchetMageflow`` *is* a ``Hatchet`` (a subclass sharing the wrapped
client's connection), so every Hatchet attribute and method works on it, and
code that wants a ``Hatchet`` accepts it. It overrides only what it must:
``task`` and ``durable_task`` plan injection and wrap the function, and
``worker`` adds mageflow's lifespan. All state lives on the instance, so two
clients in one process never see each other's tasks or Redis.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar, cast, overload

from hatchet_sdk import Hatchet
from hatchet_sdk.runnables.types import R, TWorkflowInput
from hatchet_sdk.runnables.workflow import BaseWorkflow, Standalone
from hatchet_sdk.utils.typing import CoroutineLike
from hatchet_sdk.worker.worker import LifespanFn, Worker
from pydantic import TypeAdapter
from redis.asyncio import Redis
from typing_extensions import Unpack

from mageflow import chains as chain_module
from mageflow import swarms as swarm_module
from mageflow.callbacks import return_field_of
from mageflow.connection import RedisConnection
from mageflow.containers import cascade
from mageflow.current import active_client
from mageflow.dispatch import Dispatcher
from mageflow.dispatch.hatchet import HatchetDispatcher
from mageflow.dispatch.local import LocalDispatcher
from mageflow.errors import InjectionError, InvalidTransitionError, UnknownTaskError
from mageflow.injection.plan import NO_RETURN_HINT, InjectionPlan, build_plan, explain
from mageflow.injection.resolve import Override
from mageflow.launch import jsonable, message_data, request_for
from mageflow.launch import start as start_targets
from mageflow.markers import F, add_mark, read_marks
from mageflow.params import AcceptParams
from mageflow.runtime import PlanCell, make_task_callable
from mageflow.signature import (
    ChainSignature,
    Message,
    SignatureStatus,
    SwarmSignature,
    TaskSignature,
)
from mageflow.signed_run import send_recorded_callbacks
from mageflow.store import CallbackTarget, SignatureStore
from mageflow.store.signatures import decode, encode, kind_of
from mageflow.task_options import (
    DURABLE_TASK_OPTION_NAMES,
    TASK_OPTION_NAMES,
    DurableTaskOptions,
    TaskOptions,
    check_options,
)
from mageflow.ttl import TTLConfig

P = ParamSpec("P")
_F = TypeVar("_F", bound=Callable[..., Any])

Backend = Literal["hatchet", "local"]
BACKEND_ENV = "MAGEFLOW_BACKEND"

TaskRef = Standalone[Any, Any] | str
"""A task, as an object declared with a mageflow client or by name."""

CallbackSpec = TaskSignature[Any] | TaskRef | Sequence[TaskSignature[Any] | TaskRef]
"""A callback: a signature, a task, a task name, or a list of them."""


@dataclass(frozen=True)
class RegisteredTask:
    """A task declared with this client: what mageflow knows about it."""

    standalone: Standalone[Any, Any]
    cell: PlanCell
    return_field: str | None
    output: TypeAdapter[Any] | None


class HatchetMageflow(Hatchet):
    """The Hatchet client, plus type-driven injection and mageflow workflows.

    Create it with :func:`Mageflow`. Bind it to the name your code already
    uses for the Hatchet client; everything Hatchet offers works unchanged.
    """

    def __init__(
        self,
        hatchet: Hatchet,
        redis: RedisConnection,
        param_config: AcceptParams = AcceptParams.NO_CTX,
        ttl: TTLConfig | None = None,
        backend: Backend = "hatchet",
    ) -> None:
        # Share the wrapped client's connection and config instead of opening
        # new ones: this object is that client, with more behaviour.
        self.__dict__.update(hatchet.__dict__)
        self._mageflow_redis = redis
        self._param_config = param_config
        self._tasks: dict[str, RegisteredTask] = {}
        # One generator per client, so stagger delays never share hidden state.
        self.rng = random.Random()
        self.store = SignatureStore(redis, ttl or TTLConfig())
        self.dependency_overrides: dict[object, Override] = {}
        """Test-time replacements for dependencies and injectables, keyed by
        the ``Depends`` function or the ``Context`` / ``TaskSignature`` type.
        Empty in production, where the run path never looks further."""
        self.backend: Backend = backend
        self.dispatch_backend: Dispatcher = (
            LocalDispatcher(self) if backend == "local" else HatchetDispatcher(self)
        )

    # --- configuration ----------------------------------------------------

    @property
    def param_config(self) -> AcceptParams:
        """The client-wide default for unannotated parameters."""
        return self._param_config

    @property
    def redis(self) -> Redis:
        """The asyncio Redis client mageflow keeps its state in.

        :raises RedisNotConfiguredError: no ``redis_client`` was given and
            ``REDIS_URL`` is not set.
        """
        return self._mageflow_redis.client

    # --- marking decorators ------------------------------------------------

    def with_ctx(self, fn: _F) -> _F:
        """Give this task the run context, as ``AcceptParams.CTX_ONLY`` would.

        The context goes to a parameter annotated ``Context`` or, failing that,
        to the second positional parameter. Strict: if the function has no
        parameter that can take it, decorating the task raises
        :class:`InjectionError`.
        """
        return add_mark(fn, "with_ctx", with_ctx=True)

    def with_signature(self, fn: _F) -> _F:
        """Give this task its own ``TaskSignature``.

        The signature goes to a parameter annotated ``TaskSignature`` or, failing
        that, to a parameter named ``signature``. Strict, like :meth:`with_ctx`.
        """
        return add_mark(fn, "with_signature", with_signature=True)

    def stagger_execution(self, wait_delta: timedelta) -> Callable[[F], F]:
        """Delay each run by a random time in ``[0, wait_delta]``.

        The run's timeout is extended by the delay first, and the delay is
        logged through ``ctx.log``. The function does not need a context
        parameter for this.
        """
        if not isinstance(wait_delta, timedelta) or wait_delta < timedelta(0):
            raise ValueError(
                f"stagger_execution(wait_delta=...) takes a non-negative "
                f"timedelta, got {wait_delta!r}."
            )

        def mark(fn: F) -> F:
            return add_mark(fn, "stagger_execution", stagger=wait_delta)

        return mark

    # --- tasks -------------------------------------------------------------

    @overload
    def task(
        self,
        *,
        input_validator: None = None,
        cron_input: None = None,
        **options: Unpack[TaskOptions],
    ) -> Callable[
        [Callable[Concatenate[TWorkflowInput, P], R | CoroutineLike[R]]],
        Standalone[TWorkflowInput, R],
    ]: ...

    @overload
    def task(
        self,
        *,
        input_validator: None = None,
        cron_input: TWorkflowInput,
        **options: Unpack[TaskOptions],
    ) -> Callable[
        [Callable[Concatenate[TWorkflowInput, P], R | CoroutineLike[R]]],
        Standalone[TWorkflowInput, R],
    ]: ...

    @overload
    def task(
        self,
        *,
        input_validator: type[TWorkflowInput],
        cron_input: TWorkflowInput | None = None,
        **options: Unpack[TaskOptions],
    ) -> Callable[
        [Callable[Concatenate[TWorkflowInput, P], R | CoroutineLike[R]]],
        Standalone[TWorkflowInput, R],
    ]: ...

    def task(self, **options: Any) -> Callable[[Callable[..., Any]], Any]:
        """Declare a task, exactly like ``Hatchet.task``, with injection by type.

        Accepts every option of ``Hatchet.task`` and returns Hatchet's own
        ``Standalone``. When ``input_validator`` is not given, it is taken from
        the first parameter's annotation if that is a pydantic model, a
        dataclass or a ``dict``.

        :raises InjectionError: when the function is decorated, if a parameter
            cannot be satisfied.
        :raises TypeError: at once, for an option Hatchet does not know.
        """
        check_options("task", options, TASK_OPTION_NAMES)

        def decorate(fn: Callable[..., Any]) -> Standalone[Any, Any]:
            return self._declare(fn, durable=False, options=options)

        return decorate

    @overload
    def durable_task(
        self,
        *,
        input_validator: None = None,
        cron_input: None = None,
        **options: Unpack[DurableTaskOptions],
    ) -> Callable[
        [Callable[Concatenate[TWorkflowInput, P], R | CoroutineLike[R]]],
        Standalone[TWorkflowInput, R],
    ]: ...

    @overload
    def durable_task(
        self,
        *,
        input_validator: None = None,
        cron_input: TWorkflowInput,
        **options: Unpack[DurableTaskOptions],
    ) -> Callable[
        [Callable[Concatenate[TWorkflowInput, P], R | CoroutineLike[R]]],
        Standalone[TWorkflowInput, R],
    ]: ...

    @overload
    def durable_task(
        self,
        *,
        input_validator: type[TWorkflowInput],
        cron_input: TWorkflowInput | None = None,
        **options: Unpack[DurableTaskOptions],
    ) -> Callable[
        [Callable[Concatenate[TWorkflowInput, P], R | CoroutineLike[R]]],
        Standalone[TWorkflowInput, R],
    ]: ...

    def durable_task(self, **options: Any) -> Callable[[Callable[..., Any]], Any]:
        """Declare a durable task, exactly like ``Hatchet.durable_task``.

        Same as :meth:`task`; in addition, parameters may ask for a
        ``DurableContext``.
        """
        check_options("durable_task", options, DURABLE_TASK_OPTION_NAMES)

        def decorate(fn: Callable[..., Any]) -> Standalone[Any, Any]:
            return self._declare(fn, durable=True, options=options)

        return decorate

    def _declare(
        self, fn: Callable[..., Any], *, durable: bool, options: dict[str, Any]
    ) -> Standalone[Any, Any]:
        if isinstance(fn, BaseWorkflow):
            raise InjectionError(
                f"{fn.name!r} is already a Hatchet task; decorate the function "
                "with @client.task(...) once."
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
            config=self._param_config,
            marks=read_marks(fn),
        )
        if options.get("input_validator") is None and plan.input_model is not None:
            options = {**options, "input_validator": plan.input_model}
        cell = PlanCell(plan)
        run_task = make_task_callable(cell, self)
        declare: Callable[..., Callable[[Callable[..., Any]], Any]] = (
            Hatchet.durable_task if durable else Hatchet.task
        )
        standalone = cast("Standalone[Any, Any]", declare(self, **options)(run_task))
        self._tasks[standalone.name] = RegisteredTask(
            standalone,
            cell,
            return_field_of(options.get("input_validator")),
            None
            if plan.return_hint is NO_RETURN_HINT
            else TypeAdapter(cast(Any, plan.return_hint)),
        )
        # Lets `mageflow.sign(task)` find the client from the task alone.
        standalone._mageflow_client = self  # type: ignore[attr-defined]
        return standalone

    def registered_task(self, name: str) -> RegisteredTask | None:
        """The task declared with this client under ``name``, if any."""
        return self._tasks.get(name)

    def explain(self, task: Standalone[Any, Any] | str) -> str:
        """A readable account of what each parameter of ``task`` receives."""
        return explain(self._plan_of(task))

    def _plan_of(self, task: Standalone[Any, Any] | str) -> InjectionPlan:
        name = task if isinstance(task, str) else task.name
        registered = self._tasks.get(name)
        if registered is None:
            raise KeyError(
                f"{name!r} was not declared with this client's @task or "
                "@durable_task, so mageflow has no plan for it."
            )
        return registered.cell.plan

    # --- signatures ----------------------------------------------------------

    @contextlib.contextmanager
    def use(self) -> Iterator[HatchetMageflow]:
        """Make this client the one ``mageflow.sign(...)`` & co. use, in a block.

        Inside a task this is automatic; use it in scripts and tests.
        """
        token = active_client.set(self)
        try:
            yield self
        finally:
            active_client.reset(token)

    @overload
    async def sign(
        self,
        task: Standalone[Any, R],
        /,
        *,
        success: CallbackSpec | None = None,
        error: CallbackSpec | None = None,
        task_identifiers: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> TaskSignature[R]: ...

    @overload
    async def sign(
        self,
        task: str,
        /,
        *,
        success: CallbackSpec | None = None,
        error: CallbackSpec | None = None,
        task_identifiers: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> TaskSignature[Any]: ...

    async def sign(
        self,
        task: TaskRef,
        /,
        *,
        success: CallbackSpec | None = None,
        error: CallbackSpec | None = None,
        task_identifiers: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> TaskSignature[Any]:
        """Store a call of ``task`` with bound ``kwargs``; return its signature.

        :param task: a task declared with a mageflow client, or a task name.
        :param success: callbacks to run with the result when the task
            succeeds: a signature, a task, a task name, or a list of them.
        :param error: callbacks to run with a :class:`mageflow.TaskError` when
            the task fails for the last time.
        :param task_identifiers: your own identifying data, kept on the
            signature (``signature.task_identifiers``).
        :param kwargs: inputs bound now; the message given when the
            signature runs is merged with them (see ``docs/signatures.md``).
        :raises UnknownTaskError: a task name that is certainly wrong.

        One Redis round trip, however many callbacks are created with it.
        """
        records: list[tuple[str, Mapping[str, str]]] = []
        signature = self._new_signature(task, kwargs, task_identifiers)
        signature.success_callbacks = self._callback_ids(success, records)
        signature.error_callbacks = self._callback_ids(error, records)
        records.append((signature.id, encode(signature)))
        await self.store.create(records)
        signature._client = self
        return signature

    def _new_signature(
        self,
        task: TaskRef,
        kwargs: dict[str, Any],
        task_identifiers: dict[str, Any] | None,
    ) -> TaskSignature[Any]:
        name, return_field = self._resolve_task(task)
        return TaskSignature(
            task_name=name,
            kwargs=jsonable(kwargs),
            task_identifiers=jsonable(task_identifiers or {}),
            return_field=return_field,
        )

    def _resolve_task(self, task: TaskRef) -> tuple[str, str | None]:
        if isinstance(task, str):
            registered = self._tasks.get(task)
            if registered is not None:
                return task, registered.return_field
            if self.backend == "local":
                raise UnknownTaskError(
                    f"no task named {task!r} is declared on this client. Known "
                    f"tasks: {', '.join(sorted(self._tasks)) or 'none'}."
                )
            return task, None
        if isinstance(task, BaseWorkflow):
            owner = getattr(task, "_mageflow_client", None)
            if owner is None:
                raise UnknownTaskError(
                    f"task {task.name!r} was declared with plain Hatchet, so it "
                    "cannot run a signature. Declare it with a mageflow client's "
                    "@client.task(...)."
                )
            registered = owner.registered_task(task.name)
            return task.name, registered.return_field if registered else None
        raise TypeError(
            f"expected a task or a task name, got {type(task).__name__}: {task!r}."
        )

    def _callback_ids(
        self,
        spec: CallbackSpec | None,
        records: list[tuple[str, Mapping[str, str]]],
    ) -> list[str]:
        if spec is None:
            return []
        items = (
            list(spec)
            if isinstance(spec, Sequence) and not isinstance(spec, str)
            else [spec]
        )
        ids: list[str] = []
        for item in items:
            if isinstance(item, TaskSignature):
                ids.append(item.id)
                continue
            callback = self._new_signature(item, {}, None)
            records.append((callback.id, encode(callback)))
            ids.append(callback.id)
        return ids

    async def load_signature(self, signature_id: str) -> TaskSignature[Any] | None:
        """The stored signature with this id, or ``None``.

        :raises CorruptSignatureError: the key holds something else.
        """
        signature = await self.store.load(signature_id)
        if signature is not None:
            signature._client = self
        return signature

    async def dispatch_signature(
        self, signature: TaskSignature[Any], message: Message = None
    ) -> str:
        """Start ``signature`` with ``message``; return the run id.

        For a chain or a swarm there is no single run: the container's id is
        returned.
        """
        if isinstance(signature, ChainSignature | SwarmSignature):
            target = CallbackTarget(
                signature.id, kind_of(signature), signature.task_name, {}, None
            )
            data = message_data(message, f"signature {signature.id}")
            await start_targets(self, [(target, data)])
            return signature.id
        request = request_for(
            signature.id,
            signature.task_name,
            signature.kwargs,
            message_data(message, f"signature {signature.id}"),
        )
        return await self.dispatch_backend.trigger(request)

    async def run_signature(
        self, signature: TaskSignature[Any], message: Message = None
    ) -> Any:
        """Start ``signature``, wait for it, and return its validated result."""
        request = request_for(
            signature.id,
            signature.task_name,
            signature.kwargs,
            message_data(message, f"signature {signature.id}"),
        )
        output = await self.dispatch_backend.run(request)
        if output is None:
            after = await self.store.load(signature.id)
            if after is None or after.status is not SignatureStatus.DONE:
                state = "gone" if after is None else after.status.value
                raise InvalidTransitionError(
                    f"signature {signature.id} ({signature.task_name}) did not "
                    f"run: it is {state}. Resume it, or sign the task again."
                )
        registered = self._tasks.get(signature.task_name)
        if registered is not None and registered.output is not None:
            return registered.output.validate_python(output)
        return output

    async def pause(self, signature_id: str) -> None:
        """Pause: no new execution of the signature starts until it is resumed.

        A delivery that arrives while paused is recorded and ends without
        running; a run already executing finishes, and its callbacks wait for
        :meth:`resume`.

        :raises InvalidTransitionError: it is done, failed, canceled or
            interrupted.
        """
        if (await self.store.pause(signature_id)).kind != "task":
            await cascade(self, signature_id, "pause")

    async def resume(self, signature_id: str) -> None:
        """Resume a paused signature.

        Re-dispatches exactly the message recorded while it was paused, or
        fires the callbacks of a run that finished meanwhile.

        :raises InvalidTransitionError: it is not paused.
        """
        resumption = await self.store.resume(signature_id)
        if resumption.verdict == "redispatch":
            (target,) = await self.store.targets([signature_id])
            # The recorded message is the input as it was delivered, bound
            # kwargs included: re-send it exactly, merging nothing again.
            exact = dataclasses.replace(target, kwargs={})
            await start_targets(self, [(exact, {**resumption.message})])
        elif resumption.verdict == "fire":
            signature = decode(signature_id, resumption.record)
            await send_recorded_callbacks(self, signature, resumption.record)
        if resumption.kind != "task":
            await cascade(self, signature_id, "resume")
        if resumption.verdict == "running" and resumption.kind == "swarm":
            await swarm_module.refill(self, signature_id)

    async def stop(self, signature_id: str) -> None:
        """Cancel the signature: it never runs, and fires no callback.

        A run already executing finishes, but its outcome is discarded.

        :raises InvalidTransitionError: it is already done or failed.
        """
        stopped = await self.store.stop(signature_id, SignatureStatus.CANCELED)
        if stopped.kind != "task":
            await cascade(self, signature_id, "stop")

    async def chain(
        self,
        tasks: Sequence[TaskSignature[Any] | TaskRef],
        name: str | None = None,
        success: CallbackSpec | None = None,
        error: CallbackSpec | None = None,
        **kwargs: Any,
    ) -> ChainSignature[Any]:
        """Store a chain: ``tasks`` run in order, each given the last result.

        :param tasks: at least two signatures, tasks or task names; chains
            and swarms may be steps.
        :param kwargs: bound into every step (a conflict with a step's own
            bound value raises :class:`InputConflictError`).
        See ``docs/chain.md``.
        """
        return await chain_module.create(
            self, tasks, name=name, success=success, error=error, kwargs=kwargs
        )

    async def swarm(
        self,
        tasks: Sequence[TaskSignature[Any] | TaskRef] | None = None,
        task_name: str | None = None,
        max_concurrency: int = 30,
        stop_after_n_failures: int | None = None,
        max_tasks: int | None = None,
        success: CallbackSpec | None = None,
        error: CallbackSpec | None = None,
        **kwargs: Any,
    ) -> SwarmSignature[Any]:
        """Store a swarm: items run in parallel, ``max_concurrency`` at most.

        Its success callbacks get the results in the order the items were
        added. See ``docs/swarm.md``.
        """
        return await swarm_module.create(
            self,
            tasks,
            task_name=task_name,
            max_concurrency=max_concurrency,
            stop_after_n_failures=stop_after_n_failures,
            max_tasks=max_tasks,
            success=success,
            error=error,
            kwargs=kwargs,
        )

    async def swarm_add(
        self,
        swarm: SwarmSignature[Any],
        tasks: TaskSignature[Any] | TaskRef | Sequence[TaskSignature[Any] | TaskRef],
    ) -> list[str]:
        """Add items to ``swarm``; see :meth:`SwarmSignature.add`."""
        return await swarm_module.add(self, swarm, tasks)

    async def swarm_close(self, swarm_id: str) -> None:
        """Close a swarm; see :meth:`SwarmSignature.close`."""
        await swarm_module.close(self, swarm_id)

    async def remove(self, signature_id: str) -> int:
        """Delete the signature with its callbacks; return how many keys went."""
        return await self.store.remove(signature_id)

    # --- workers -----------------------------------------------------------

    def worker(
        self,
        name: str,
        slots: int | None = None,
        durable_slots: int | None = None,
        labels: dict[str, str | int] | None = None,
        workflows: Sequence[BaseWorkflow[Any]] | None = None,
        lifespan: LifespanFn | None = None,
    ) -> Worker:
        """Create a Hatchet worker, exactly like ``Hatchet.worker``.

        Adds mageflow's own tasks to ``workflows`` (``None`` is fine) and wraps
        ``lifespan`` so mageflow's Redis connection is closed when the worker
        stops; the worker's tasks still see the value your lifespan yields.
        """
        return super().worker(
            name,
            slots=slots,
            durable_slots=durable_slots,
            labels=labels,
            workflows=[*(workflows or []), *self._internal_workflows()],
            lifespan=self._compose_lifespan(lifespan),
        )

    def _internal_workflows(self) -> list[BaseWorkflow[Any]]:
        """mageflow's own tasks, which every worker must run. None yet."""
        return []

    def _compose_lifespan(self, user: LifespanFn | None) -> LifespanFn:
        connection = self._mageflow_redis

        async def lifespan() -> AsyncGenerator[Any, Any]:
            async with AsyncExitStack() as stack:
                stack.push_async_callback(connection.aclose)
                if user is None:
                    yield None
                    return
                generator = user()
                value = await generator.__anext__()
                try:
                    yield value
                finally:
                    try:
                        await generator.__anext__()
                    except StopAsyncIteration:
                        pass
                    else:
                        raise RuntimeError("a worker lifespan must yield exactly once")

        return lifespan


def Mageflow(
    hatchet_client: Hatchet | None = None,
    redis_client: Redis | str | None = None,
    param_config: AcceptParams = AcceptParams.NO_CTX,
    *,
    ttl: TTLConfig | None = None,
    backend: Backend | None = None,
) -> HatchetMageflow:
    """Wrap a Hatchet client with mageflow.

    :param hatchet_client: the client to wrap; ``None`` builds ``Hatchet()``
        from the ``HATCHET_CLIENT_*`` environment.
    :param redis_client: an asyncio Redis client or a URL; ``None`` reads
        ``REDIS_URL``. Nothing connects until an operation needs Redis.
    :param param_config: what unannotated parameters receive by default.
    :param ttl: how long stored signatures live (:class:`TTLConfig`).
    :param backend: ``"hatchet"`` (production, the default) or ``"local"``
        (in-process, for development and tests); ``None`` reads
        ``MAGEFLOW_BACKEND``.
    """
    if not isinstance(param_config, AcceptParams):
        raise TypeError(
            f"param_config must be an AcceptParams member, got {param_config!r}."
        )
    chosen = backend or os.environ.get(BACKEND_ENV) or "hatchet"
    if chosen not in ("hatchet", "local"):
        raise ValueError(
            f"backend must be 'hatchet' or 'local', got {chosen!r} "
            f"(from {'backend=' if backend else BACKEND_ENV})."
        )
    if hatchet_client is None:
        if chosen == "local":
            from mageflow.testing import offline_hatchet

            hatchet_client = offline_hatchet()
        else:
            hatchet_client = Hatchet()
    return HatchetMageflow(
        hatchet_client,
        RedisConnection(redis_client),
        param_config,
        ttl=ttl,
        backend=cast(Backend, chosen),
    )
