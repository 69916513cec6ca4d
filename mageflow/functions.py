"""The module-level API: ``mageflow.sign(...)``, ``mageflow.pause(...)`` ...

Each is the method of the same name on the client in effect (see
:mod:`mageflow.current`): inside a task, the client that declared it; in a
``with client.use():`` block, that client; elsewhere, the process's only
client. ``sign`` also finds the client from a task object declared with one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

from hatchet_sdk.runnables.types import R
from hatchet_sdk.runnables.workflow import Standalone

from mageflow.continuation import Continue
from mageflow.current import client_for, current_client
from mageflow.signature import (
    CallbackSpec,
    ChainSignature,
    SignatureOrRef,
    SwarmSignature,
    TaskRef,
    TaskSignature,
)


@overload
async def sign(
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
    task: str,
    /,
    *,
    success: CallbackSpec | None = None,
    error: CallbackSpec | None = None,
    task_identifiers: dict[str, Any] | None = None,
    **kwargs: Any,
) -> TaskSignature[Any]: ...


async def sign(
    task: TaskRef,
    /,
    *,
    success: CallbackSpec | None = None,
    error: CallbackSpec | None = None,
    task_identifiers: dict[str, Any] | None = None,
    **kwargs: Any,
) -> TaskSignature[Any]:
    """Store a call of ``task``; see :meth:`HatchetMageflow.sign`."""
    return await client_for(task).sign(
        task,
        success=success,
        error=error,
        task_identifiers=task_identifiers,
        **kwargs,
    )


async def load_signature(signature_id: str) -> TaskSignature[Any] | None:
    """The stored signature, or ``None``; see :meth:`HatchetMageflow.load_signature`."""
    return await current_client().load_signature(signature_id)


async def pause(signature_id: str) -> None:
    """See :meth:`HatchetMageflow.pause`."""
    await current_client().pause(signature_id)


async def resume(signature_id: str) -> None:
    """See :meth:`HatchetMageflow.resume`."""
    await current_client().resume(signature_id)


async def stop(signature_id: str) -> None:
    """See :meth:`HatchetMageflow.stop`."""
    await current_client().stop(signature_id)


async def remove(signature_id: str) -> int:
    """See :meth:`HatchetMageflow.remove`."""
    return await current_client().remove(signature_id)


async def retry(signature_id: str) -> None:
    """See :meth:`HatchetMageflow.retry`."""
    await current_client().retry(signature_id)


async def wait(signature_id: str, timeout: float | None = None) -> Any:
    """See :meth:`HatchetMageflow.wait`."""
    return await current_client().wait(signature_id, timeout)


async def chain(
    tasks: Sequence[SignatureOrRef],
    name: str | None = None,
    success: CallbackSpec | None = None,
    error: CallbackSpec | None = None,
    **kwargs: Any,
) -> ChainSignature[Any]:
    """See :meth:`HatchetMageflow.chain`."""
    return await current_client().chain(
        tasks, name=name, success=success, error=error, **kwargs
    )


async def swarm(
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
    """See :meth:`HatchetMageflow.swarm`."""
    return await current_client().swarm(
        tasks,
        task_name=task_name,
        max_concurrency=max_concurrency,
        stop_after_n_failures=stop_after_n_failures,
        max_tasks=max_tasks,
        success=success,
        error=error,
        open=open,
        item_success=item_success,
        item_error=item_error,
        **kwargs,
    )
