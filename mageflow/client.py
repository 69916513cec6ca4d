"""``Mageflow(...)`` and ``HatchetMageflow``: a Hatchet client that injects by type.

``HatchetMageflow`` *is* a ``Hatchet`` (a subclass sharing the wrapped
client's connection), so every Hatchet attribute and method works on it, and
code that wants a ``Hatchet`` accepts it. It overrides only what it must:
``task`` and ``durable_task`` plan injection and wrap the function, and
``worker`` adds mageflow's lifespan. All state lives on the instance, so two
clients in one process never see each other's tasks or Redis.
"""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar, cast, overload

from hatchet_sdk import Hatchet
from hatchet_sdk.runnables.types import R, TWorkflowInput
from hatchet_sdk.runnables.workflow import BaseWorkflow, Standalone
from hatchet_sdk.utils.typing import CoroutineLike
from hatchet_sdk.worker.worker import LifespanFn, Worker
from redis.asyncio import Redis
from typing_extensions import Unpack

from mageflow.connection import RedisConnection
from mageflow.errors import InjectionError
from mageflow.injection.plan import InjectionPlan, build_plan, explain
from mageflow.markers import F, add_mark, read_marks
from mageflow.params import AcceptParams
from mageflow.runtime import PlanCell, make_task_callable
from mageflow.task_options import (
    DURABLE_TASK_OPTION_NAMES,
    TASK_OPTION_NAMES,
    DurableTaskOptions,
    TaskOptions,
    check_options,
)

P = ParamSpec("P")
_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class _RegisteredTask:
    standalone: Standalone[Any, Any]
    cell: PlanCell


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
    ) -> None:
        # Share the wrapped client's connection and config instead of opening
        # new ones: this object is that client, with more behaviour.
        self.__dict__.update(hatchet.__dict__)
        self._mageflow_redis = redis
        self._param_config = param_config
        self._tasks: dict[str, _RegisteredTask] = {}
        # One generator per client, so stagger delays never share hidden state.
        self._rng = random.Random()

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
        run_task = make_task_callable(cell, self._rng)
        declare: Callable[..., Callable[[Callable[..., Any]], Any]] = (
            Hatchet.durable_task if durable else Hatchet.task
        )
        standalone = cast("Standalone[Any, Any]", declare(self, **options)(run_task))
        self._tasks[standalone.name] = _RegisteredTask(standalone, cell)
        return standalone

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

    # --- workers -----------------------------------------------------------

    def worker(
        self,
        name: str,
        slots: int | None = None,
        durable_slots: int | None = None,
        labels: dict[str, str | int] | None = None,
        workflows: list[BaseWorkflow[Any]] | None = None,
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
) -> HatchetMageflow:
    """Wrap a Hatchet client with mageflow.

    :param hatchet_client: the client to wrap; ``None`` builds ``Hatchet()``
        from the ``HATCHET_CLIENT_*`` environment.
    :param redis_client: an asyncio Redis client or a URL; ``None`` reads
        ``REDIS_URL``. Nothing connects until an operation needs Redis.
    :param param_config: what unannotated parameters receive by default.
    """
    if not isinstance(param_config, AcceptParams):
        raise TypeError(
            f"param_config must be an AcceptParams member, got {param_config!r}."
        )
    return HatchetMageflow(
        hatchet_client if hatchet_client is not None else Hatchet(),
        RedisConnection(redis_client),
        param_config,
    )
