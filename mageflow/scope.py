"""Which client is in effect here, kept below the client that sets it.

The module-level functions (``mageflow.sign`` ...) act on "the client in
effect". That is a context variable, set

* for the duration of every task run, to the client that declared the task;
* by ``with client.use():``, for code outside tasks.

Being a context variable, it follows asyncio tasks and threads started with
``asyncio.to_thread``, and never leaks between concurrent runs. Alongside it,
:data:`live` holds every client alive in the process, weakly (it never keeps
one alive), so a task object can be traced to the client that declared it,
and a process with only one client can use it everywhere.

This module sits below the client, so it holds plain objects;
:mod:`mageflow.current` gives the typed view.
"""

from __future__ import annotations

import itertools
import weakref
from contextvars import ContextVar
from typing import Any

in_effect: ContextVar[Any] = ContextVar("mageflow_active_client", default=None)
"""The client in effect, or ``None``."""

live: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
"""Every mageflow client alive in this process, by creation order."""

_created = itertools.count()


def add_live(client: Any) -> None:
    """Record a new client; later clients sort after earlier ones."""
    live[next(_created)] = client


def live_clients() -> list[Any]:
    """The live clients, oldest first."""
    return [client for _, client in sorted(live.items(), key=lambda kv: kv[0])]
