"""Which client the module-level functions (``mageflow.sign`` ...) use.

There is no global default client: a process may hold several, each with its
own Redis. The client is the one in effect (see :mod:`mageflow.scope`):

* inside a task run, the client that declared the task;
* inside ``with client.use():``, that client.

``sign`` also finds the client from a task object declared with one.
"""

from __future__ import annotations

from hatchet_sdk.runnables.workflow import Standalone

from mageflow import scope
from mageflow.client import HatchetMageflow, owner_of
from mageflow.errors import NoClientError
from mageflow.signature import TaskRef


def active_client() -> HatchetMageflow | None:
    """The client in effect here, or ``None``."""
    client = scope.in_effect.get()
    return client if isinstance(client, HatchetMageflow) else None


def current_client() -> HatchetMageflow:
    """The client in effect here, or :class:`NoClientError` saying how to set one."""
    client = active_client()
    if client is None:
        raise NoClientError(
            "no mageflow client is active here. Call the method on your client "
            "(`client.sign(...)`), or wrap this code in `with client.use():`. "
            "Inside a task, the client that declared it is used automatically."
        )
    return client


def client_for(task: TaskRef) -> HatchetMageflow:
    """The client to sign ``task`` with: the one in effect, else the one that
    declared the task object."""
    if (client := active_client()) is not None:
        return client
    if isinstance(task, Standalone) and (owner := owner_of(task)) is not None:
        return owner
    return current_client()
