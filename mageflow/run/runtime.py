"""``TaskRuntime``: what the runs of a task need from the client behind it.

Built once per client and handed to every task it declares, so the run path
is given its collaborators explicitly and never reaches for a client.
"""

from __future__ import annotations

import dataclasses
import random
from contextvars import ContextVar
from typing import Any

from mageflow.engine.workflows import WorkflowEngine
from mageflow.injection.resolve import Override


@dataclasses.dataclass(slots=True)
class TaskRuntime:
    engine: WorkflowEngine
    """Runs settle their signatures through it."""
    overrides: dict[object, Override]
    """The client's ``dependency_overrides`` (the live dict: tests change
    it). Empty in production, where the run path never looks further."""
    rng: random.Random
    """Draws ``stagger_execution`` delays; one generator per client (tests
    may replace it through ``client.rng``)."""
    scope: ContextVar[Any]
    """The variable that says which client is in effect (for
    ``mageflow.sign`` & co.); every run sets it to :attr:`owner`."""
    owner: object
    """The client whose task this is."""
