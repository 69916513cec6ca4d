"""Which client is in effect here, kept below the client that sets it.

The module-level functions (``mageflow.sign`` ...) act on "the client in
effect". That is a context variable, set

* for the duration of every task run, to the client that declared the task;
* by ``with client.use():``, for code outside tasks.

Being a context variable, it follows asyncio tasks and threads started with
``asyncio.to_thread``, and never leaks between concurrent runs. Alongside it,
:data:`live` holds every client alive in the process, weakly (it never keeps
one alive), so a task object can be traced to the client that declared it.

This module sits below the client, so it holds plain objects;
:mod:`mageflow.current` gives the typed view.
"""

from __future__ import annotations

import weakref
from contextvars import ContextVar
from typing import Any

in_effect: ContextVar[Any] = ContextVar("mageflow_active_client", default=None)
"""The client in effect, or ``None``."""

live: weakref.WeakSet[Any] = weakref.WeakSet()
"""Every mageflow client alive in this process."""
