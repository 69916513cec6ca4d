"""Every program in examples/ runs, so none of them can rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# What each example must print: one line of evidence per thing it shows.
EXPECTED: dict[str, list[str]] = {
    "demo.py": [
        "paused: the first step is suspended, not run",
        "swarm [##############################] 5/5 done",
        "chain invoice-order [done]",
        "step 2: swarm swarm [done]",
        "item 5: price-line [done]",
        '"amount":5.4,"item":"milk"',
        "step 3: sum-invoice [done]",
        '{"lines":5,"total":34.15}',
        "on success: email-invoice [done]",
        "on error: page-someone [pending]",
        "chain done in",
    ],
    "injection.py": [
        "Receipt(total=7.5, note='')",
        "note='attempt 1 of 1'",
        "note='context is a Context'",
        "note='signature: None'",
        "Receipt(total=7.5, note='priced')",
        "note='computed in a worker thread'",
        "note='durable context: DurableContext'",
    ],
    "with_ctx.py": [
        "ctx  <- the run context [@with_ctx: second parameter]",
        "'is_task_run_id': True",
        "=> {'processed': 'x'}",
        "without with_ctx: InjectionError: task 'forgot-with-ctx'",
    ],
    "with_signature.py": [
        "running task: self-aware-task with identifiers: "
        "{'tenant': 'acme', 'order': 17}",
        "injected the signature it ran from: True",
        "full-access-task => {'context': 'Context', 'task_name': 'full-access-task', "
        "'task_identifiers': {'tenant': 'acme', 'order': 17}}",
    ],
    "backpropagation.py": [
        "via a signature => {'sent': 'hi', 'ctx': 'Context'}",
        "via a signature => {'ctx': 'Context', 'signature': 'audit-notification'}",
        "audit-notification via plain Hatchet => {'ctx': 'Context', 'signature': None}",
    ],
    "stagger.py": [
        "all delays within the 300 ms window: True",
    ],
    "durable_task.py": [
        "run  <- the run context [annotated DurableContext]",
        "Report(completed=True, context='DurableContext', attempt=1)",
        "on a regular task: InjectionError: task 'not-durable'",
    ],
    "worker_setup.py": [
        "worker 'my-worker' will register: process-data, send-notification, "
        "critical-process",
        "worker 'empty-worker' with workflows=None registers: 0 workflows",
    ],
    "chain.py": [
        "step 2 got Priced(item='tea', total=10.0)",
        "step 3 got Priced(item='tea', total=12.0)",
        "success callback got Invoice(text='tea: 12.00 EUR')",
        "chain invoice-order: done",
    ],
    "swarm.py": [
        "added 2 items while the swarm was active",
        "success callback got: [1000, 1001, 1004, 1009, 1016, 1025,",
        "results in add order: True",
        "peak concurrency: 4 (cap 4)",
        "swarm done",
    ],
    "root_task.py": [
        "body returned; children finished so far: 0",
        "audit ran on its own, for 8 rows",
        "success callback got result=Summary(started=8)",
        "children in start order: [0, 10, 20, 30, 40, 'ValueError', 60, 70]",
        "aio_run returned Summary(started=8), once 8 of 8 had finished",
        "peak concurrency: 3 (cap 3)",
        "root done; children: swarm ",
        "error callback got SwarmFailed",
        "strict root failed; children failed, rows started: [4, 5]",
    ],
    "continuation.py": [
        "next step got Shipped(carrier='freight', weight=30)",
        "chain returned {'label': 'freight, 30 kg'}",
        "route done, continued by ship-freight",
        "collatz(7) reached 1 in 16 continuations: Walked(steps=16)",
        "each round ran once: True",
        "collatz(27) failed with ContinuationError: "
        "continuation number 11, over the limit of 10",
        "error callback got kind='continuation'",
        "rounds of collatz(27) run: 11",
    ],
    "item_callbacks.py": [
        "stored on the swarm: ['store-row']",
        "swarm success callback got 7 outcomes: ['Parsed', 'Parsed', 'TaskError', "
        "'Parsed', 'Parsed', 'TaskError', 'Parsed']",
        "item_success fired for: ['rows:1', 'rows:2', 'rows:4', 'rows:5', 'rows:7']",
        "item_error fired for: ['bad row 3', 'bad row 6']",
        "items added later got them too: True",
        "the template itself stays pending",
        "swarm done",
        "a chain as item_success: TypeError: item_success callbacks must be tasks",
    ],
    "error_callbacks.py": [
        "attempt 3 of 3: failing",
        "error callback via sms got a TaskError:",
        '"error_type":"ValueError","message":"out of tea"',
        '"task_name":"reserve-stock","original_message":{"item":"tea","quantity":4}',
        "reserve-stock: failed after 3 attempts",
        "error callback ran 1 time(s)",
        "signature status: failed",
    ],
}


def _private_env() -> dict[str, str]:
    """The environment without REDIS_URL: each example starts its own
    private Redis, as on a fresh machine, and shares no data with the
    others (a shared database would show one example's workflows in the
    next one's dashboard, and keep its drain waiting)."""
    return {k: v for k, v in os.environ.items() if k != "REDIS_URL"}


def test_every_example_has_expectations() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_private_env(),
    )
    assert result.returncode == 0, result.stderr
    for evidence in EXPECTED[name]:
        assert evidence in result.stdout, (evidence, result.stdout)


def test_the_demo_leaves_its_workflow_open_in_the_dashboard() -> None:
    """``./scripts/demo --ui``: the printed address opens the demo's workflow
    page, whose graph shows the chain done."""
    import httpx

    demo = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "demo.py"), "--ui", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_private_env(),
    )
    try:
        assert demo.stdout is not None
        address = None
        for line in demo.stdout:  # ends if the demo dies: then the assert says so
            if line.startswith("mageflow ui: "):
                address = line.removeprefix("mageflow ui: ").strip()
                break
        assert address is not None, "the demo printed no dashboard address"
        chain_id = address.split("/workflows/")[1].split("?")[0]
        with httpx.Client(follow_redirects=True, timeout=10) as http:
            page = http.get(address)
            assert page.status_code == 200
            assert "token=" not in str(page.url)  # kept in a cookie instead
            assert f'data-id="{chain_id}"' in page.text
            assert 'id="status" class="badge status-done"' in page.text
            assert 'data-action="retry"' in page.text  # controls are on
            listing = http.get(address.split("/workflows/")[0] + "/").text
            assert listing.count("invoice-order") == 2  # and the failed one
            assert "status-failed" in listing
    finally:
        demo.terminate()
        demo.wait(timeout=20)
