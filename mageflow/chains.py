"""Chains: steps that run in order, each given the previous step's result.

A chain is wired from ordinary signatures. Step *i*'s success callbacks end
with step *i+1*, so the next step starts through the same exactly-once
callback path as any callback, with the result placed by its
``ReturnValue`` field. The chain itself is a container signature: when its
last step succeeds it is ``done`` and its success callbacks get the last
result; when any step fails finally, the remaining steps never start (they
were only ever success callbacks), the step's own error callbacks fire, and
the chain is ``failed`` with its error callbacks given the step's
:class:`~mageflow.TaskError`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mageflow.containers import CONTAINER_LEASE
from mageflow.launch import jsonable, merge_input
from mageflow.launch import start as start_targets
from mageflow.signature import ChainSignature, SignatureStatus, TaskSignature
from mageflow.store import Verdict
from mageflow.store.signatures import dumps, encode

if TYPE_CHECKING:
    from mageflow.client import CallbackSpec, HatchetMageflow, TaskRef

logger = logging.getLogger("mageflow")


async def create(
    client: HatchetMageflow,
    tasks: Sequence[TaskSignature[Any] | TaskRef],
    *,
    name: str | None,
    success: CallbackSpec | None,
    error: CallbackSpec | None,
    kwargs: Mapping[str, Any],
) -> ChainSignature[Any]:
    """Store a chain of ``tasks`` (see :meth:`HatchetMageflow.chain`)."""
    if isinstance(tasks, str) or len(tasks) < 2:
        raise ValueError(
            "a chain needs at least two steps (signatures, tasks or task "
            f"names); got {tasks!r}. For one step, sign the task directly."
        )
    bound = jsonable(dict(kwargs))
    chain: ChainSignature[Any] = ChainSignature(task_name=name or "chain")
    records: list[tuple[str, Mapping[str, str]]] = []
    steps: list[TaskSignature[Any]] = []
    fresh: list[bool] = []
    for task in tasks:
        if isinstance(task, TaskSignature):
            steps.append(task)
            fresh.append(False)
        else:
            steps.append(client._new_signature(task, {}, None))
            fresh.append(True)
    for index, step in enumerate(steps):
        where = f"chain {chain.id}, step {index} ({step.task_name})"
        step.kwargs = merge_input(step.kwargs, bound, where)
        step.container_id = chain.id
        step.container_role = "step" if index + 1 < len(steps) else "last"
        if index + 1 < len(steps):
            step.success_callbacks = [*step.success_callbacks, steps[index + 1].id]
        if fresh[index]:
            records.append((step.id, encode(step)))
        else:
            # A signature stored earlier: only what the chain changes.
            records.append(
                (
                    step.id,
                    {
                        "kwargs": dumps(step.kwargs),
                        "container": chain.id,
                        "crole": step.container_role,
                        "ok": dumps(step.success_callbacks),
                    },
                )
            )
    chain.steps = [step.id for step in steps]
    chain.kwargs = bound
    chain.return_field = steps[0].return_field
    chain.success_callbacks = client._callback_ids(success, records)
    chain.error_callbacks = client._callback_ids(error, records)
    records.append((chain.id, encode(chain)))
    await client.store.create(records)
    chain._client = client
    return chain


async def start(
    client: HatchetMageflow, chain_id: str, message: Mapping[str, Any]
) -> None:
    """Start the chain: its first step runs with ``message``.

    Starting an already started chain is a no-op in effect: the first step
    admits one dispatch, so a repeated start is a duplicate there.
    """
    activation = await client.store.activate(chain_id, CONTAINER_LEASE, dumps(message))
    if activation.verdict is not Verdict.RUN:
        logger.info(
            "mageflow: chain %s not started, it is %s", chain_id, activation.status
        )
        return
    chain = activation.signature
    assert isinstance(chain, ChainSignature)
    (first,) = await client.store.targets(chain.steps[:1])
    await start_targets(client, [(first, message)])


async def step_finished(
    client: HatchetMageflow,
    chain: ChainSignature[Any],
    step: TaskSignature[Any],
    status: SignatureStatus,
    value: Any,
) -> None:
    """Settle the chain: its last step succeeded, or a step failed."""
    from mageflow.signed_run import settle

    await settle(client, chain, CONTAINER_LEASE, status, value)
