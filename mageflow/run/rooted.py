"""A run of a root task: open its children's swarm, then hand it over.

Around the body (see :mod:`mageflow.engine.root` for the whole protocol):

1. before: the run's swarm is made and named on the task
   (:meth:`~mageflow.store.SignatureStore.root_open`); the body runs with
   it in effect, so what it starts joins it;
2. the body returned: one step keeps its result, hands the task to its
   children and closes the swarm; what that step found decides the rest;
3. the body failed for the last time: the swarm is interrupted first (no
   queued child starts, the running ones are cancelled), then the task
   records the failure.
"""

from __future__ import annotations

import logging
from typing import Any

from mageflow.engine.inputs import jsonable
from mageflow.engine.kind import CONTAINER_HOLDER, Effects
from mageflow.engine.root import RootScope, root_result, swarm_of, swarm_record
from mageflow.engine.swarm import completed
from mageflow.markers import RootOptions
from mageflow.run.runtime import TaskRuntime
from mageflow.signature import SignatureStatus, TaskSignature
from mageflow.store import RootVerdict
from mageflow.store.codec import decode, dumps

logger = logging.getLogger("mageflow")


async def open_root(
    runtime: TaskRuntime, signature: TaskSignature, token: str, options: RootOptions
) -> RootScope | None:
    """The run's swarm, made (or found, on a later attempt); ``None`` when
    this run no longer holds the task."""
    swarm = swarm_of(signature, options)
    held = await runtime.engine.store.root_open(
        signature.id, token, swarm.id, swarm_record(swarm)
    )
    return RootScope(signature.id, swarm) if held else None


async def body_returned(
    runtime: TaskRuntime,
    signature: TaskSignature,
    token: str,
    scope: RootScope,
    result: Any,
) -> None:
    """The body returned ``result``: hand the task over to its children."""
    engine = runtime.engine
    body = jsonable(result)
    verdict = await engine.store.root_done(
        signature.id, token, scope.swarm_id, dumps(body)
    )
    # Committed: what follows is owed, and recovery finishes what fails here.
    try:
        if verdict is RootVerdict.COMPLETE:
            await engine.progress.apply(await completed(engine.store, scope.swarm_id))
        elif verdict is RootVerdict.REPLAY:
            record = await engine.store.load_record(scope.swarm_id)
            if record is not None:
                swarm = decode(scope.swarm_id, record)
                await engine.progress.replay(swarm, record)
        elif verdict is RootVerdict.NO_CHILDREN:
            await engine.progress.settle(
                signature, CONTAINER_HOLDER, SignatureStatus.DONE, root_result(body, [])
            )
    except Exception:
        logger.warning(
            "mageflow: root task %s was cut short after its body returned; "
            "recovery will finish it",
            signature.id,
            exc_info=True,
        )


async def interrupt_children(runtime: TaskRuntime, scope: RootScope) -> None:
    """The body failed for good: no child starts any more, and the running
    ones are cut short (the task's failure is recorded after this)."""
    await runtime.engine.progress.apply(Effects(interrupt=[scope.swarm_id]))
