"""The e2e suite's worker: ``python tests/e2e/worker.py``, run as a subprocess.

Registers the tasks of ``e2e_tasks`` with the engine named by the
``HATCHET_CLIENT_*`` environment and runs them until SIGTERM (or SIGKILL).
``MAGEFLOW_E2E_WORKER_GROUP`` picks which: ``main`` (the default,
``ALL_TASKS``) or ``kill`` (``KILL_TASKS``, for the workers the SIGKILL test
starts and kills).
"""

from __future__ import annotations

import os
from typing import Any

import e2e_tasks

GROUPS: dict[str, list[Any]] = {
    "main": e2e_tasks.ALL_TASKS,
    "kill": e2e_tasks.KILL_TASKS,
}


def main() -> None:
    group = os.environ.get("MAGEFLOW_E2E_WORKER_GROUP", "main")
    worker = e2e_tasks.mf.worker(
        os.environ.get("MAGEFLOW_E2E_WORKER_NAME", "mageflow-e2e"),
        slots=int(os.environ.get("MAGEFLOW_E2E_WORKER_SLOTS", "20")),
        workflows=list(GROUPS[group]),
    )
    worker.start()


if __name__ == "__main__":
    main()
