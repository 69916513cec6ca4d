"""Which client the module-level functions (``mageflow.sign`` ...) use.

A process may hold several clients, each with its own Redis, so the choice is
made in this order:

* the client in effect (see :mod:`mageflow.scope`): inside a task run, the
  client that declared the task; inside ``with client.use():``, that client;
* otherwise, the process's only client. Clients made by re-wrapping one
  (``Mageflow(client, ...)``) share its tasks and Redis, so they count as
  one, and the newest of them is used;
* otherwise :class:`NoClientError`, naming the candidates.

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


def _describe(client: HatchetMageflow) -> str:
    namespace = f", namespace {client.namespace!r}" if client.namespace else ""
    tasks = ", ".join(client.registry.names()) or "no tasks"
    return f"{client.backend} client{namespace} ({tasks})"


def current_client() -> HatchetMageflow:
    """The client in effect here, else the only one; or :class:`NoClientError`
    saying how to choose."""
    client = active_client()
    if client is not None:
        return client
    # Newest last: within one family (clients sharing an engine) the newest
    # wins, so `client = Mageflow(client, ...)` behaves like a rebinding.
    newest: dict[int, HatchetMageflow] = {}
    for candidate in scope.live_clients():
        if isinstance(candidate, HatchetMageflow):
            newest[id(candidate.engine)] = candidate
    if len(newest) == 1:
        return next(iter(newest.values()))
    if not newest:
        raise NoClientError(
            "no mageflow client exists in this process. Create one with "
            "`client = mageflow.Mageflow(...)`, then call `client.sign(...)` "
            "or the module-level functions."
        )
    described = [_describe(candidate) for candidate in newest.values()]
    raise NoClientError(
        f"{len(newest)} mageflow clients exist and none is active here: "
        + "; ".join(described)
        + ". Call the method on the one you mean (`client.sign(...)`), or "
        "wrap this code in `with client.use():`.",
        clients=described,
    )


def client_for(task: TaskRef) -> HatchetMageflow:
    """The client to sign ``task`` with: the one in effect, else the one that
    declared the task object, else the only one."""
    if (client := active_client()) is not None:
        return client
    if isinstance(task, Standalone) and (owner := owner_of(task)) is not None:
        return owner
    return current_client()
