"""Which client the module-level functions (``mageflow.sign`` ...) use.

There is no global default client: a process may hold several, each with its
own Redis. The client is taken from a context variable instead, which is set

* for the duration of every task run, to the client that declared the task;
* by ``with client.use():``, for code outside tasks.

Being a context variable, it follows asyncio tasks and threads started with
``asyncio.to_thread``, and never leaks between concurrent runs.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

from mageflow.errors import NoClientError

if TYPE_CHECKING:
    from mageflow.client import HatchetMageflow

active_client: ContextVar[HatchetMageflow | None] = ContextVar(
    "mageflow_active_client", default=None
)


def current_client() -> HatchetMageflow:
    """The client in effect here, or :class:`NoClientError` saying how to set one."""
    client = active_client.get()
    if client is None:
        raise NoClientError(
            "no mageflow client is active here. Call the method on your client "
            "(`client.sign(...)`), or wrap this code in `with client.use():`. "
            "Inside a task, the client that declared it is used automatically."
        )
    return client
