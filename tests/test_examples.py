"""Every program in examples/ runs, so none of them can rot."""

from __future__ import annotations

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
}


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
    )
    assert result.returncode == 0, result.stderr
    for evidence in EXPECTED[name]:
        assert evidence in result.stdout, (evidence, result.stdout)
