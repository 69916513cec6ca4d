"""``Mageflow(...)`` and ``HatchetMageflow``: a Hatchet client that injects by type.

``HatchetMageflow`` *is* a ``Hatchet`` (a subclass sharing the wrapped
client's connection), so every Hatchet attribute and method works on it, and
code that wants a ``Hatchet`` accepts it. It overrides only what it must:
``task`` and ``durable_task`` plan injection and wrap the function, and
``worker`` adds mageflow's lifespan. Its workflow methods are one line into
its :class:`~mageflow.engine.workflows.WorkflowEngine`. All state lives on
the instance, so two clients in one process never see each other's tasks or
Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar, cast, overload

from hatchet_sdk import Hatchet
from hatchet_sdk.runnables.types import R, TWorkflowInput
from hatchet_sdk.runnables.workflow import BaseWorkflow, Standalone
from hatchet_sdk.utils.typing import CoroutineLike
from hatchet_sdk.worker.worker import LifespanFn, Worker
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from typing_extensions import Unpack

from mageflow import scope
from mageflow._hatchet import share_client_state
from mageflow.continuation import Continue
from mageflow.declaration import declare
from mageflow.dispatch import Dispatcher
from mageflow.dispatch.hatchet import HatchetDispatcher
from mageflow.dispatch.local import LocalDispatcher
from mageflow.engine.recovery import RecoveryReport, keep_recovering
from mageflow.engine.signing import Signer
from mageflow.engine.workflows import CONTINUATIONS_CEILING, WorkflowEngine
from mageflow.errors import ClientConfigError
from mageflow.injection.plan import explain
from mageflow.injection.resolve import Override
from mageflow.markers import F, add_mark, root_mark, stagger_mark
from mageflow.params import AcceptParams
from mageflow.registry import RegisteredTask, TaskRegistry
from mageflow.run.runtime import TaskRuntime
from mageflow.signature import (
    CallbackSpec,
    ChainSignature,
    SignatureOrRef,
    SwarmSignature,
    TaskRef,
    TaskSignature,
)
from mageflow.store import RedisConnection, SignatureStore
from mageflow.store.connection import RedisClient
from mageflow.task_options import (
    DURABLE_TASK_OPTION_NAMES,
    TASK_OPTION_NAMES,
    DurableTaskOptions,
    TaskOptions,
    check_options,
)
from mageflow.testing import offline_hatchet
from mageflow.ttl import TTLConfig

P = ParamSpec("P")
_F = TypeVar("_F", bound=Callable[..., Any])

Backend = Literal["hatchet", "local"]
BACKEND_ENV = "MAGEFLOW_BACKEND"


def owner_of(task: Standalone[Any, Any]) -> HatchetMageflow | None:
    """The live client that declared this task object (the newest, when
    re-wrapped clients share it), if any."""
    for client in reversed(scope.live_clients()):
        if isinstance(client, HatchetMageflow) and client.registry.owns(task):
            return client
    return None


def _find_task(task: Standalone[Any, Any]) -> RegisteredTask | None:
    owner = owner_of(task)
    return None if owner is None else owner.registry.get(task.name)


def _engine(
    client: HatchetMageflow, redis: RedisConnection, ttl: TTLConfig, backend: Backend
) -> WorkflowEngine:
    """The workflow engine of ``client``, on the chosen backend."""
    local = backend == "local"
    dispatcher: LocalDispatcher | HatchetDispatcher = (
        LocalDispatcher(client.registry) if local else HatchetDispatcher(client)
    )
    signer = Signer(client.registry, strict_names=local, find_task=_find_task)
    engine = WorkflowEngine(
        SignatureStore(redis, ttl), dispatcher, client.registry, signer
    )
    if isinstance(dispatcher, LocalDispatcher):
        # drain() waits until nothing is owed, not only until runs are idle.
        dispatcher.on_idle = engine.settle_idle
    return engine


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
        share_client_state(self, hatchet)
        self._param_config = param_config
        if isinstance(hatchet, HatchetMageflow):
            # Re-wrapping: one set of tasks, one Redis, one engine; only the
            # default for tasks declared from now on differs.
            self._adopt(hatchet)
        else:
            self._mageflow_redis = redis
            self.backend: Backend = backend
            self.registry = TaskRegistry(self.namespace or "")
            self.dependency_overrides: dict[object, Override] = {}
            """Test-time replacements for dependencies and injectables, keyed
            by the ``Depends`` function or the ``Context`` / ``TaskSignature``
            type. Empty in production, where the run path never looks further."""
            self.engine = _engine(self, redis, ttl or TTLConfig(), backend)
            self.recovery_interval: timedelta | None = timedelta(seconds=10)
            """How often a worker of this client runs a recovery pass in the
            background; ``None`` turns it off (run ``client.recover()`` or
            ``mageflow recover`` yourself then)."""
            # One generator per client, so stagger delays never share hidden
            # state.
            self._runtime = TaskRuntime(
                self.engine,
                self.dependency_overrides,
                random.Random(),
                scope.in_effect,
                self,
            )
        scope.add_live(self)

    def _adopt(self, existing: HatchetMageflow) -> None:
        """Share everything stateful of ``existing``."""
        self._mageflow_redis = existing._mageflow_redis
        self.backend = existing.backend
        self.registry = existing.registry
        self.dependency_overrides = existing.dependency_overrides
        self.engine = existing.engine
        self.recovery_interval = existing.recovery_interval
        self._runtime = existing._runtime

    # --- configuration ----------------------------------------------------

    @property
    def param_config(self) -> AcceptParams:
        """The client-wide default for unannotated parameters."""
        return self._param_config

    @property
    def redis(self) -> RedisClient:
        """The asyncio Redis client mageflow keeps its state in (a
        ``RedisCluster`` when it was given one, or a cluster URL).

        :raises RedisNotConfiguredError: no ``redis_client`` was given and
            ``REDIS_URL`` is not set.
        """
        return self._mageflow_redis.client

    @property
    def store(self) -> SignatureStore:
        """Where this client's signatures live (one round trip per call)."""
        return self.engine.store

    @property
    def dispatch_backend(self) -> Dispatcher:
        """What starts runs: Hatchet, or the local backend's in-process runner."""
        return self.engine.dispatcher

    @property
    def rng(self) -> random.Random:
        """The generator ``stagger_execution`` draws delays from."""
        return self._runtime.rng

    @rng.setter
    def rng(self, value: random.Random) -> None:
        self._runtime.rng = value

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
        return stagger_mark(wait_delta)

    def root_task(
        self, max_concurrency: int = 30, stop_after_n_failures: int | None = None
    ) -> Callable[[F], F]:
        """Make this task a root: what its body starts becomes its children.

        Put it below ``@client.task(...)``. Inside the body, every signature,
        chain or swarm started through mageflow joins the run's children (at
        most ``max_concurrency`` run at once; ``stop_after_n_failures``
        failures fail the root and interrupt the rest), except in a
        ``with mageflow.without_root():`` block. The root ends when its body
        has returned and every child has finished; its success callbacks
        receive a :class:`mageflow.RootResult` (the body's result and the
        children's outcomes, in start order). See ``docs/root_tasks.md``.
        """
        return root_mark(max_concurrency, stop_after_n_failures)

    @property
    def max_continuations(self) -> int:
        """How deep continuations may nest (a task returning
        ``mageflow.Continue``, whose work continues again ...) before the
        next one fails with :class:`ContinuationError`. Default 100."""
        return self.engine.max_continuations

    @max_continuations.setter
    def max_continuations(self, limit: int) -> None:
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 0 <= limit <= CONTINUATIONS_CEILING
        ):
            raise ValueError(
                f"max_continuations must be an int from 0 to "
                f"{CONTINUATIONS_CEILING}, got {limit!r}: the end of a chain of "
                "continuations settles each level in turn, in one call stack. "
                "For longer loops, continue with a chain or swarm of the "
                "remaining work instead of one level per round."
            )
        self.engine.max_continuations = limit

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
        return lambda fn: self._declare(fn, durable=False, options=options)

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
        return lambda fn: self._declare(fn, durable=True, options=options)

    def _declare(
        self, fn: Callable[..., Any], *, durable: bool, options: dict[str, Any]
    ) -> Standalone[Any, Any]:
        return declare(
            self,
            fn,
            durable=durable,
            options=options,
            config=self._param_config,
            runtime=self._runtime,
            registry=self.registry,
        )

    def registered_task(self, name: str) -> RegisteredTask | None:
        """The task declared with this client under ``name``, if any."""
        return self.registry.get(name)

    def explain(self, task: Standalone[Any, Any] | str) -> str:
        """A readable account of what each parameter of ``task`` receives.

        :raises UnknownTaskError: ``task`` was not declared with this client.
        """
        return explain(
            self.registry.plan_of(task if isinstance(task, str) else task.name)
        )

    @contextlib.contextmanager
    def use(self) -> Iterator[HatchetMageflow]:
        """Make this the client ``mageflow.sign(...)`` & co. use, in a block."""
        token = scope.in_effect.set(self)
        try:
            yield self
        finally:
            scope.in_effect.reset(token)

    # --- workflows: one line each into the engine ----------------------------

    @overload
    async def sign(
        self,
        task: Standalone[Any, Continue[R]],
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
        task: Standalone[Any, R | Continue[R]],
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
        return await self.engine.sign(
            task,
            success=success,
            error=error,
            task_identifiers=task_identifiers,
            kwargs=kwargs,
        )

    async def load_signature(self, signature_id: str) -> TaskSignature[Any] | None:
        """The stored signature with this id, or ``None``.

        :raises CorruptSignatureError: the key holds something else.
        """
        return await self.engine.load_signature(signature_id)

    async def pause(self, signature_id: str) -> None:
        """Pause: no new execution of the signature starts until it is resumed.

        A delivery that arrives while paused is recorded and ends without
        running; a run already executing finishes, and its callbacks wait for
        :meth:`resume`. A chain's or swarm's children are paused too.

        :raises InvalidTransitionError: it is done, failed, canceled or
            interrupted.
        """
        await self.engine.pause(signature_id)

    async def resume(self, signature_id: str) -> None:
        """Resume a paused signature.

        Re-dispatches exactly the message recorded while it was paused, or
        fires the callbacks of a run that finished meanwhile.

        :raises InvalidTransitionError: it is not paused.
        """
        await self.engine.resume(signature_id)

    async def stop(self, signature_id: str) -> None:
        """Cancel the signature: it never runs, and fires no callback.

        A run already executing finishes, but its outcome is discarded. A
        chain's or swarm's children that have not finished are canceled too.

        :raises InvalidTransitionError: it is already done or failed.
        """
        await self.engine.stop(signature_id)

    async def remove(self, signature_id: str) -> int:
        """Delete the signature with its callbacks; return how many keys went."""
        return await self.engine.remove(signature_id)

    async def retry(self, signature_id: str) -> None:
        """Run a failed signature again, from where it failed.

        A task runs again with the message it failed with; a chain continues
        from its failed step; a swarm re-runs only its items that did not
        succeed. Its callbacks are kept, and its outcome is replaced when it
        ends again. See ``docs/results.md``.

        :raises InvalidTransitionError: it is not failed (or interrupted), or
            it is part of a chain or swarm (retry that instead).
        """
        await self.engine.retry(signature_id)

    async def wait(self, signature_id: str, timeout: float | None = None) -> Any:
        """Wait until the signature ends; return its result, or raise.

        Works for any task, chain or swarm, started by anyone. It listens
        for the end on Redis (pub/sub), never polls.

        :raises SignatureFailedError: it failed; ``.error`` is its TaskError.
        :raises SignatureCanceledError: it was stopped or interrupted.
        :raises WaitTimeoutError: it did not end within ``timeout`` seconds.
        :raises SignatureNotFoundError: there is no such signature.
        """
        return await self.engine.wait(signature_id, timeout)

    async def recover(self, grace: timedelta | None = None) -> RecoveryReport:
        """Drive what is stuck to its end, once; return what was done.

        Re-sends owed callbacks and starts, and takes over signatures whose
        worker is gone. Workers run it on their own every
        :attr:`recovery_interval`. ``grace=timedelta(0)`` acts on everything
        at once (for tests and operators). See ``docs/reliability.md``.
        """
        return await self.engine.recover(grace)

    async def chain(
        self,
        tasks: Sequence[SignatureOrRef],
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
        return await self.engine.chain(
            tasks, name=name, success=success, error=error, kwargs=kwargs
        )

    async def swarm(
        self,
        tasks: Sequence[SignatureOrRef] | None = None,
        task_name: str | None = None,
        max_concurrency: int = 30,
        stop_after_n_failures: int | None = None,
        max_tasks: int | None = None,
        success: CallbackSpec | None = None,
        error: CallbackSpec | None = None,
        open: bool = False,
        item_success: CallbackSpec | None = None,
        item_error: CallbackSpec | None = None,
        **kwargs: Any,
    ) -> SwarmSignature[Any]:
        """Store a swarm: items run in parallel, ``max_concurrency`` at most.

        Its success callbacks get the results in the order the items were
        added. A swarm made with ``tasks`` is closed: it completes when they
        have run, like a Celery group. Pass ``open=True`` to keep adding
        items (then ``close()`` it); a swarm made without tasks is open. See
        ``docs/swarm.md``.

        ``item_success`` / ``item_error`` are fired once per item, with that
        item's result or ``TaskError``, in addition to the swarm's own
        callbacks (which do not wait for them). Each item gets its own copy
        of each: a task, a task name, or a task's signature without
        callbacks of its own.
        """
        return await self.engine.swarm(
            tasks,
            task_name=task_name,
            max_concurrency=max_concurrency,
            stop_after_n_failures=stop_after_n_failures,
            max_tasks=max_tasks,
            success=success,
            error=error,
            kwargs=kwargs,
            keep_open=open,
            item_success=item_success,
            item_error=item_error,
        )

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

        Wraps ``lifespan`` so that, while the worker runs, a recovery pass
        runs every :attr:`recovery_interval` (see ``docs/reliability.md``),
        and when it stops mageflow's Redis connection is closed; the worker's
        tasks still see the value your lifespan yields.
        """
        return super().worker(
            name,
            slots=slots,
            durable_slots=durable_slots,
            labels=labels,
            workflows=list(workflows or []),
            lifespan=_worker_lifespan(self, lifespan),
        )


def _worker_lifespan(client: HatchetMageflow, user: LifespanFn | None) -> LifespanFn:
    """``user``'s lifespan (if any), around mageflow's own: recovery passes
    in the background while the worker runs, then the lease keeper stopped
    and mageflow's Redis connection closed."""

    async def lifespan() -> AsyncGenerator[Any, Any]:
        engine = client.engine
        every = client.recovery_interval
        recovering = (
            None
            if every is None
            else asyncio.get_running_loop().create_task(
                keep_recovering(engine.recovery, every), name="mageflow-recovery"
            )
        )
        try:
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
        finally:
            if recovering is not None:
                recovering.cancel()
                await asyncio.gather(recovering, return_exceptions=True)
            await engine.leases.aclose()
            await client._mageflow_redis.aclose()

    return lifespan


def Mageflow(
    hatchet_client: Hatchet | None = None,
    redis_client: Redis | RedisCluster | str | None = None,
    param_config: AcceptParams = AcceptParams.NO_CTX,
    *,
    ttl: TTLConfig | None = None,
    backend: Backend | None = None,
) -> HatchetMageflow:
    """Wrap a Hatchet client with mageflow.

    :param hatchet_client: the client to wrap; ``None`` builds ``Hatchet()``
        from the ``HATCHET_CLIENT_*`` environment.
    :param redis_client: an asyncio ``Redis`` or ``RedisCluster`` client, or
        a URL (``redis+cluster://host:port``, any one node, for a cluster);
        ``None`` reads ``REDIS_URL``. Nothing connects until an operation
        needs Redis.
    :param param_config: what unannotated parameters receive by default.
    :param ttl: how long stored signatures live (:class:`TTLConfig`).
    :param backend: ``"hatchet"`` (production, the default) or ``"local"``
        (in-process, for development and tests); ``None`` reads
        ``MAGEFLOW_BACKEND``.

    Wrapping a mageflow client again gives a client that shares its tasks,
    Redis and workflows; the new ``param_config`` applies to the tasks
    declared with the new client. The other settings must be left out or
    equal to the existing client's (:class:`ClientConfigError` otherwise).
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
    if isinstance(hatchet_client, HatchetMageflow):
        _check_rewrap(hatchet_client, redis_client, ttl, backend)
        return HatchetMageflow(
            hatchet_client, hatchet_client._mageflow_redis, param_config
        )
    if hatchet_client is None:
        hatchet_client = offline_hatchet() if chosen == "local" else Hatchet()
    return HatchetMageflow(
        hatchet_client,
        RedisConnection(redis_client),
        param_config,
        ttl=ttl,
        backend=cast(Backend, chosen),
    )


def _check_rewrap(
    existing: HatchetMageflow,
    redis_client: Redis | RedisCluster | str | None,
    ttl: TTLConfig | None,
    backend: Backend | None,
) -> None:
    """Refuse settings a re-wrapped client cannot share with ``existing``."""
    if redis_client is not None and not existing._mageflow_redis.holds(redis_client):
        raise ClientConfigError(
            "this client already keeps its workflows in another Redis; a "
            "re-wrapped client shares its Redis. Pass the same redis_client "
            "(or none), or wrap a plain Hatchet client for a second Redis.",
            setting="redis_client",
        )
    if ttl is not None and ttl != existing.engine.store.ttl:
        raise ClientConfigError(
            "a re-wrapped client shares the TTLs of the client it wraps. Leave "
            "ttl out, or set it on the first Mageflow(...) call.",
            setting="ttl",
        )
    if backend is not None and backend != existing.backend:
        raise ClientConfigError(
            f"this client runs on the {existing.backend!r} backend; a re-wrapped "
            "client shares it. Leave backend out, or wrap a plain Hatchet client.",
            setting="backend",
        )
