"""A process for the fault-injection suite to kill: see tests/test_faults.py.

Run as ``python fault_child.py``. It imports everything once, then for each
line ``<redis-url> <shape> [<n>]`` on stdin it forks a child that signs and
starts that workflow and works on it until it is killed; with ``<n>``, the
child dies by itself the instant its ``n``-th script call since the start
returns (each call is one atomic step, so every boundary between steps can
be hit exactly), or prints ``FINISHED`` and exits if the workflow ended
first; without, it prints ``CALLS <count>`` when the workflow is done and
stays until killed. It prints ``PID <pid>``
for each child, the child prints ``STARTED <json>`` (what it built) the
moment before it starts the workflow, and the zygote prints ``REAPED <pid>``
when the child is gone. Forking from a process that has imported but not
started anything (one thread, no event loop, no connection) makes each
child start in milliseconds instead of a second.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
from typing import Any

import fault_workflows

import mageflow
from mageflow.store import SignatureStore


def _die_after(calls: list[int], limit: int | None) -> None:
    """Count script calls from now on; at the ``limit``-th, die at once
    (no cleanup, like a kill) just after its step was applied."""
    real = SignatureStore._call

    async def counted(self: SignatureStore, *args: Any, **kwargs: Any) -> Any:
        reply = await real(self, *args, **kwargs)
        calls[0] += 1
        if calls[0] == limit:
            os._exit(0)
        return reply

    SignatureStore._call = counted  # type: ignore[method-assign]


async def _work(url: str, shape: str, limit: int | None) -> None:
    client = mageflow.Mageflow(redis_client=url, backend="local")
    fault_workflows.declare(client)
    with client.use():
        built = await fault_workflows.build(client, shape)
        print("STARTED " + json.dumps(dataclasses.asdict(built)), flush=True)
        root = await client.load_signature(built.root)
        assert root is not None
        calls = [0]
        _die_after(calls, limit)
        await root.aio_run_no_wait({})
        await client.dispatch_backend.drain(timeout=600)  # type: ignore[attr-defined]
        print(f"CALLS {calls[0]}", flush=True)
        print("FINISHED", flush=True)
        if limit is not None:
            # The run ended before its limit-th call: runs differ by a call
            # or so (concurrent items finishing together), so the last
            # boundaries of the first run may not exist in this one.
            return
        await asyncio.Event().wait()  # stay until killed


def main() -> None:
    for line in sys.stdin:
        url, shape, *limit = line.split()
        pid = os.fork()
        if pid == 0:
            try:
                asyncio.run(_work(url, shape, int(limit[0]) if limit else None))
            finally:
                os._exit(0)
        print(f"PID {pid}", flush=True)
        os.waitpid(pid, 0)
        print(f"REAPED {pid}", flush=True)


if __name__ == "__main__":
    main()
