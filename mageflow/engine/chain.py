"""Chains: steps that run in order, each given the previous step's result.

A chain is wired from ordinary signatures. Step *i*'s success callbacks end
with step *i+1*, so the next step starts through the same exactly-once
callback path as any callback, with the result placed by its
``ReturnValue`` field. The chain itself is a container: when its last step
succeeds it is ``done`` and its success callbacks get the last result; when
any step fails finally, the remaining steps never start (they were only ever
success callbacks), the step's own error callbacks fire, and the chain is
``failed`` with its error callbacks given the step's
:class:`~mageflow.TaskError`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from mageflow.engine.inputs import jsonable, merge_input
from mageflow.engine.kind import CONTAINER_HOLDER, NOTHING, Effects, Settle
from mageflow.engine.signing import Records, Signer, child_id, linked_to, new_id
from mageflow.signature import (
    CallbackSpec,
    ChainSignature,
    SignatureOrRef,
    SignatureStatus,
    TaskSignature,
)
from mageflow.store import ActivationVerdict, SignatureStore, SwarmStep
from mageflow.store.codec import Write, dumps, encode

logger = logging.getLogger("mageflow")

STEP = "step"
"""A chain step with a step after it: its last success callback is the next step."""
LAST = "last"
"""The chain's last step: its outcome is the chain's."""


class ChainKind:
    """The chain container kind (see the module docstring)."""

    name = ChainSignature.kind
    roles = frozenset({STEP, LAST})

    async def start(
        self, store: SignatureStore, container_id: str, message: Mapping[str, Any]
    ) -> Effects:
        """The first step runs with ``message``.

        Starting an already started chain changes nothing: the chain's own
        activation admits the container holder again, and the first step
        admits one attempt, so a repeated start is a duplicate there.
        """
        stored = await store.load(container_id)
        if not isinstance(stored, ChainSignature) or not stored.steps:
            return NOTHING
        # One step: the chain is active and its first step owed its start.
        activation = await store.activate(
            container_id,
            CONTAINER_HOLDER,
            dumps(message),
            kind=ChainSignature.kind,
            lease=False,
            first_step=stored.steps[0],
        )
        if activation.verdict is not ActivationVerdict.RUN:
            logger.info(
                "mageflow: chain %s not started, it is %s",
                container_id,
                activation.status,
            )
            return NOTHING
        first, _ = await store.targets(stored.steps[:1])
        return Effects(start=[(target, message) for target in first])

    async def child_finished(
        self,
        store: SignatureStore,
        container_id: str,
        child: TaskSignature,
        status: SignatureStatus,
        outcome: Any,
    ) -> Effects:
        """The chain ends when its last step succeeds or any step fails.

        A middle step that succeeded needs nothing: the next step was its
        success callback. Otherwise the chain record is read; a failed step
        interrupts the steps after it (they never run, and end), and the
        chain takes the step's outcome.
        """
        if not self.needs_word(child, status):
            return NOTHING
        chain = await store.load(container_id)
        if not isinstance(chain, ChainSignature):
            return NOTHING
        later: list[str] = []
        if status is not SignatureStatus.DONE and child.id in chain.steps:
            later = chain.steps[chain.steps.index(child.id) + 1 :]
        return Effects(interrupt=later, settle=Settle(chain, status, outcome))

    told_with_finish = False

    def needs_word(self, child: TaskSignature, status: SignatureStatus) -> bool:
        # A middle step that succeeded started the next one: nothing to say.
        return not (child.container_role == STEP and status is SignatureStatus.DONE)

    async def after_finish(
        self, store: SignatureStore, container_id: str, step: SwarmStep, outcome: Any
    ) -> Effects:
        return NOTHING  # never called: a chain is told by child_finished

    async def resumed(self, store: SignatureStore, container_id: str) -> Effects:
        return NOTHING  # the steps themselves carry what was paused

    async def children(
        self, store: SignatureStore, container: TaskSignature
    ) -> list[tuple[str, str]]:
        assert isinstance(container, ChainSignature)
        return [(f"step {n}", step) for n, step in enumerate(container.steps, 1)]


CHAIN = ChainKind()


def create(
    signer: Signer,
    tasks: Sequence[SignatureOrRef],
    *,
    name: str | None,
    success: CallbackSpec | None,
    error: CallbackSpec | None,
    kwargs: Mapping[str, Any],
    records: Records,
) -> ChainSignature[Any]:
    """A new chain of ``tasks``; its records (and its steps') go to ``records``.

    A step given as a signature was stored earlier: only what the chain
    changes in it is written (its kwargs, container and next step), and only
    if it is still pending and in no other container.
    """
    if isinstance(tasks, str) or len(tasks) < 2:
        raise ValueError(
            "a chain needs at least two steps (signatures, tasks or task "
            f"names); got {tasks!r}. For one step, sign the task directly."
        )
    bound = jsonable(dict(kwargs))
    label = name or "chain"
    given = [
        task.id if isinstance(task, TaskSignature) else str(task) for task in tasks
    ]
    chain: ChainSignature[Any] = ChainSignature(
        id=new_id(
            label, [given, bound], linked_to(tasks, success, error), signer.anchor
        ),
        task_name=label,
    )
    steps: list[tuple[TaskSignature[Any], bool]] = [
        (task, False)
        if isinstance(task, TaskSignature)
        else (signer.new(task, {}, signature_id=child_id(chain.id, STEP, n)), True)
        for n, task in enumerate(tasks)
    ]
    signer.check_shared(
        f"chain {label!r}", [step.task_name for step, _ in steps], bound
    )
    for index, (step, fresh) in enumerate(steps):
        has_next = index + 1 < len(steps)
        step.kwargs = merge_input(
            step.kwargs,
            bound,
            f"chain {chain.id}, step {index} ({step.task_name})",
            signature_id=step.id,
            task_name=step.task_name,
        )
        step.container_id = chain.id
        step.container_role = STEP if has_next else LAST
        if has_next:
            step.success_callbacks = [*step.success_callbacks, steps[index + 1][0].id]
        if fresh:
            records.append(Write(step.id, encode(step)))
        else:
            changed = {
                "kwargs": dumps(step.kwargs),
                "container": chain.id,
                "crole": step.container_role,
                "ok": dumps(step.success_callbacks),
            }
            records.append(Write(step.id, changed, claim=True))
    chain.steps = [step.id for step, _ in steps]
    chain.kwargs = bound
    chain.return_field = steps[0][0].return_field
    chain.success_callbacks = signer.callbacks(chain.id, "ok", success, records)
    chain.error_callbacks = signer.callbacks(chain.id, "err", error, records)
    records.append(Write(chain.id, encode(chain)))
    return chain
