"""A process for the fault-injection suite to kill: see tests/test_faults.py.

Run as ``python fault_child.py``. It imports everything once, then for each
line ``<redis-url> <shape>`` on stdin it forks a child that signs and starts
that workflow and works on it until it is killed. It prints ``PID <pid>``
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

import fault_workflows

import mageflow


async def _work(url: str, shape: str) -> None:
    client = mageflow.Mageflow(redis_client=url, backend="local")
    fault_workflows.declare(client)
    with client.use():
        built = await fault_workflows.build(client, shape)
        print("STARTED " + json.dumps(dataclasses.asdict(built)), flush=True)
        root = await client.load_signature(built.root)
        assert root is not None
        await root.aio_run_no_wait({})
        await client.dispatch_backend.drain(timeout=600)  # type: ignore[attr-defined]
        print("FINISHED", flush=True)
        await asyncio.Event().wait()  # stay until killed


def main() -> None:
    for line in sys.stdin:
        url, shape = line.split()
        pid = os.fork()
        if pid == 0:
            try:
                asyncio.run(_work(url, shape))
            finally:
                os._exit(0)
        print(f"PID {pid}", flush=True)
        os.waitpid(pid, 0)
        print(f"REAPED {pid}", flush=True)


if __name__ == "__main__":
    main()
