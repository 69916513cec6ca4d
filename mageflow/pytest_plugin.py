"""The mageflow pytest plugin: test workflows in-process, on a real Redis.

Installed with mageflow and loaded by pytest through the ``pytest11`` entry
point; nothing to configure. It needs ``pytest-asyncio``. Fixtures:

``mageflow_runner``
    A :class:`MageflowRunner`: ``.client`` is a mageflow client on the local
    backend (tasks run in this process through hatchet-sdk's
    ``aio_mock_run``), over a freshly flushed real Redis, and made the
    active client for ``mageflow.sign(...)`` & co. It records every
    dispatch for assertions, and ``await runner.drain()`` waits for every
    run, callback and container step to finish.
``mageflow_client``
    The client the runner uses. Override this fixture to test your own
    client: build it with ``backend="local"`` and
    ``redis_client=mageflow_redis_url``.
``mageflow_redis_url``
    A real Redis for the session: ``REDIS_URL`` when set (its database is
    flushed before each test!), otherwise a private ``redis-server`` started
    for the session (:mod:`mageflow.embedded`). Never a fake.

See ``docs/testing.md``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import inspect
from collections.abc import AsyncIterator, Generator, Iterator, Mapping
from typing import Any

import pytest
from hatchet_sdk import Context, Depends
from hatchet_sdk.runnables.workflow import BaseWorkflow

from mageflow._hatchet import dependency_function
from mageflow.client import HatchetMageflow, Mageflow
from mageflow.dispatch.local import LocalDispatcher, LocalRun
from mageflow.embedded import ensure_redis
from mageflow.injection.resolve import Override
from mageflow.signature import TaskSignature
from mageflow.store.connection import close_client, flush_all
from mageflow.tree import TreeNode, build_tree

_HAS_PYTEST_ASYNCIO = importlib.util.find_spec("pytest_asyncio") is not None


def _name_of(task: BaseWorkflow[Any] | str) -> str:
    if isinstance(task, str):
        return task
    if isinstance(task, BaseWorkflow):
        return task.name
    raise TypeError(f"expected a task or a task name, got {task!r}")


def _contains(actual: Any, expected: Any) -> bool:
    """``expected`` is a subset of ``actual``: dicts recursively, else equal."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and _contains(actual[key], value)
            for key, value in expected.items()
        )
    return bool(actual == expected)


def _describe(run: LocalRun) -> str:
    text = f"input={run.input!r} [{run.state.value}"
    if run.attempts > 1:
        text += f", {run.attempts} attempts"
    if run.error is not None:
        text += f", {type(run.error).__name__}: {run.error}"
    text += "]"
    if run.signature_id:
        text += f" signature={run.signature_id}"
    return text


def _as_override(value_or_factory: Any) -> Override:
    """A function (``def``, ``async def``, lambda, method, partial) is a
    factory; anything else, mocks and other callable objects included, is
    the value itself."""
    factory = (
        inspect.isfunction(value_or_factory)
        or inspect.ismethod(value_or_factory)
        or isinstance(value_or_factory, functools.partial)
    )
    if not factory:
        return Override(value=value_or_factory)
    params = list(inspect.signature(value_or_factory).parameters.values())
    positional = [
        p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    variadic = any(p.kind is p.VAR_POSITIONAL for p in params)
    required = [p for p in positional if p.default is p.empty]
    if not required and not variadic and len(positional) < 2:
        return Override(factory=value_or_factory, takes_args=False)
    if len(positional) >= 2 or variadic:
        return Override(factory=value_or_factory, takes_args=True)
    raise TypeError(
        f"an override factory is called like a dependency, with (input, ctx), "
        f"or with nothing; {value_or_factory!r} takes {len(required)} required "
        "argument(s). To inject a function as the value itself, wrap it: "
        "`lambda: my_function`."
    )


def _override_key(target: Any) -> object:
    if isinstance(target, Depends):
        return dependency_function(target)
    if isinstance(target, type):
        if issubclass(target, Context | TaskSignature):
            return target
        raise TypeError(
            f"{target.__name__} is not injected by mageflow; override a "
            "Depends function, Context (or DurableContext) or TaskSignature."
        )
    if callable(target):
        return target
    raise TypeError(
        f"cannot override {target!r}: pass a Depends function (or the Depends "
        "object), Context, or TaskSignature."
    )


class MageflowRunner:
    """The ``mageflow_runner`` fixture: a local client and what it dispatched."""

    def __init__(self, client: HatchetMageflow) -> None:
        if not isinstance(client.dispatch_backend, LocalDispatcher):
            raise TypeError(
                "mageflow_runner needs a client on the local backend: build it "
                "with Mageflow(..., backend='local')."
            )
        self.client = client
        self.dispatcher: LocalDispatcher = client.dispatch_backend
        # A client that outlives the test (an overridden mageflow_client)
        # keeps the runs of earlier tests: they are not this test's.
        self._first_run = len(self.dispatcher.runs)

    @property
    def runs(self) -> list[LocalRun]:
        """Every run dispatched since the runner was made, in order (retries
        are one run)."""
        return self.dispatcher.runs[self._first_run :]

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until every run, callback and container step has finished."""
        await self.dispatcher.drain(timeout)

    def dispatched(self, task: BaseWorkflow[Any] | str | None = None) -> list[LocalRun]:
        """The runs of ``task`` (every run when ``None``)."""
        if task is None:
            return self.runs
        name = _name_of(task)
        return [run for run in self.runs if run.task_name == name]

    def assert_dispatched(
        self,
        task: BaseWorkflow[Any] | str,
        input_subset: Mapping[str, Any] | None = None,
        *,
        times: int | None = None,
    ) -> LocalRun:
        """Assert ``task`` was dispatched, with an input containing
        ``input_subset`` (nested dicts are compared as subsets too), ``times``
        times if given. Returns the first matching run."""
        __tracebackhide__ = True
        name = _name_of(task)
        runs = self.dispatched(name)
        matching = [
            run
            for run in runs
            if input_subset is None or _contains(run.input, input_subset)
        ]
        if matching and (times is None or len(matching) == times):
            return matching[0]
        wanted = f"{name!r}" + (
            f" with input containing {dict(input_subset)!r}" if input_subset else ""
        )
        if times is not None and matching:
            problem = f"expected {times} run(s) of {wanted}, found {len(matching)}"
        else:
            problem = f"expected a run of {wanted}, found none"
        raise AssertionError(f"{problem}.\n{self._summary(name)}")

    def assert_not_dispatched(self, task: BaseWorkflow[Any] | str) -> None:
        """Assert ``task`` was never dispatched."""
        __tracebackhide__ = True
        name = _name_of(task)
        if self.dispatched(name):
            raise AssertionError(
                f"expected no run of {name!r}, found "
                f"{len(self.dispatched(name))}.\n{self._summary(name)}"
            )

    def _summary(self, name: str) -> str:
        runs = self.dispatched(name)
        lines = [f"Runs of {name!r}: {len(runs) or 'none'}"]
        lines += [f"  #{n} {_describe(run)}" for n, run in enumerate(runs, 1)]
        others: dict[str, int] = {}
        for run in self.runs:
            if run.task_name != name:
                others[run.task_name] = others.get(run.task_name, 0) + 1
        if others:
            listed = ", ".join(f"{task} x{count}" for task, count in others.items())
            lines.append(f"Other tasks dispatched: {listed}")
        else:
            lines.append("No other task was dispatched.")
        return "\n".join(lines)

    async def tree(self, signature: TaskSignature[Any] | str) -> TreeNode:
        """The stored tree under ``signature``; ``str()`` of it is readable."""
        signature_id = signature if isinstance(signature, str) else signature.id
        return await build_tree(self.client, signature_id)

    @contextlib.contextmanager
    def override(self, target: Any, value_or_factory: Any) -> Iterator[None]:
        """Replace a dependency or an injectable for this client, in a block.

        ``target``: a ``Depends`` function (or the ``Depends`` object), or
        ``Context`` / ``TaskSignature``. ``value_or_factory``: a function
        is called like the dependency, with ``(input, ctx)`` or with
        nothing, and may be async; any other object is injected as it is.
        """
        key = _override_key(target)
        entry = _as_override(value_or_factory)
        table = self.client.dependency_overrides
        before = table.get(key)
        table[key] = entry
        try:
            yield
        finally:
            if before is None:
                table.pop(key, None)
            else:
                table[key] = before

    async def _close(self) -> None:
        self.client.dependency_overrides.clear()
        await self.dispatcher.close()


@pytest.fixture(scope="session")
def mageflow_redis_url() -> Iterator[str]:
    """A real Redis for the session: ``REDIS_URL``, else a private server."""
    with ensure_redis(probe=None) as url:
        yield url


@pytest.fixture
def mageflow_client(mageflow_redis_url: str) -> HatchetMageflow:
    """The local-backend client ``mageflow_runner`` drives; override to
    use your own."""
    return Mageflow(redis_client=mageflow_redis_url, backend="local")


_RUNNER = "mageflow_runner"


def _marks_for_pytest_asyncio(
    collected: pytest.Item | pytest.Collector | list[pytest.Item | pytest.Collector],
) -> None:
    """Mark the async tests that use ``mageflow_runner`` with ``asyncio``.

    pytest-asyncio runs an async test only when it carries the ``asyncio``
    mark, and in strict mode (its default) nothing adds that mark. It turns
    a marked test into the item it runs while the test is collected, in its
    own ``pytest_pycollect_makeitem`` wrapper: a mark added later, in
    ``pytest_collection_modifyitems``, is seen too late and the test fails
    with "async def functions are not natively supported"
    (pytest-dev/pytest-asyncio#810). So the mark goes on in the same hook,
    inside that wrapper. A test that already has an ``asyncio`` mark (its
    own, its class's or module's, or auto mode's) keeps it, loop scope and
    all; a sync test is left alone, as is an async test without the runner.
    """
    items = collected if isinstance(collected, list) else [collected]
    for item in items:
        if (
            isinstance(item, pytest.Function)
            and _RUNNER in item.fixturenames
            and inspect.iscoroutinefunction(item.obj)
            and item.get_closest_marker("asyncio") is None
        ):
            item.add_marker(pytest.mark.asyncio)


if _HAS_PYTEST_ASYNCIO:
    import pytest_asyncio
    import pytest_asyncio.plugin

    # trylast: the innermost hook wrapper, so this runs on the new items
    # before pytest-asyncio's own wrapper converts the marked ones, whatever
    # order the two plugins were loaded in.
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_pycollect_makeitem(
        collector: pytest.Module | pytest.Class,
    ) -> Generator[None, Any, Any]:
        collected = yield
        # Only while pytest-asyncio runs (not under `-p no:asyncio`): the mark
        # means nothing to pytest without it, and is not even registered.
        loaded = collector.config.pluginmanager.is_registered(pytest_asyncio.plugin)
        if collected is not None and loaded:
            _marks_for_pytest_asyncio(collected)
        return collected

    @pytest_asyncio.fixture
    async def mageflow_runner(
        mageflow_client: HatchetMageflow,
    ) -> AsyncIterator[MageflowRunner]:
        """A local-backend client over a clean real Redis, with assertions."""
        runner = MageflowRunner(mageflow_client)
        redis = mageflow_client.redis
        await flush_all(redis)  # every primary, on a Redis Cluster
        try:
            with mageflow_client.use():
                yield runner
        finally:
            await runner._close()
            await close_client(redis)  # a single server's pool, or every node's

else:  # pragma: no cover

    @pytest.fixture
    def mageflow_runner() -> None:
        pytest.fail(
            "the mageflow_runner fixture needs pytest-asyncio: "
            "pip install 'mageflow[test]' (or pytest-asyncio)."
        )
