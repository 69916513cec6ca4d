"""The e2e suite's worker: ``python tests/e2e/worker.py``, run as a subprocess.

Registers every task of ``e2e_tasks`` with the engine named by the
``HATCHET_CLIENT_*`` environment and runs them until SIGTERM.
"""

from __future__ import annotations

import os

import e2e_tasks


def main() -> None:
    worker = e2e_tasks.mf.worker(
        os.environ.get("MAGEFLOW_E2E_WORKER_NAME", "mageflow-e2e"),
        slots=int(os.environ.get("MAGEFLOW_E2E_WORKER_SLOTS", "20")),
        workflows=list(e2e_tasks.ALL_TASKS),
    )
    worker.start()


if __name__ == "__main__":
    main()
