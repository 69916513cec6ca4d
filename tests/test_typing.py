"""The type tests that must fail do fail, with the error they are there for.

``typings/`` holds files that mypy checks (part of the normal mypy run) to pin
the types users see. ``typings/fail/`` is excluded from that run: each file
there must be rejected. Passing a file on the command line checks it even
though the config excludes its directory, so this runs mypy on it directly.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAIL_FILE = Path("typings", "fail", "with_ctx_changes_nothing.py")
MARKER = "# EXPECTED ERROR"
EXPECTED = (
    'error: No overload variant of "aio_run" of "Standalone" matches argument '
    'type "Other"  [call-overload]'
)


def _marked_line(path: Path) -> int:
    lines = path.read_text().splitlines()
    marked = [number for number, line in enumerate(lines, 1) if MARKER in line]
    assert len(marked) == 1, f"{path} must mark exactly one line with {MARKER!r}"
    return marked[0]


def _rejected(fail_file: Path, expected: str) -> None:
    line = _marked_line(ROOT / fail_file)

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--config-file",
            "pyproject.toml",
            str(fail_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"{fail_file}:{line}: {expected}" in output, output
    assert "Found 1 error in 1 file (checked 1 source file)" in output, output


def test_with_ctx_keeps_the_task_type_so_a_wrong_input_is_rejected() -> None:
    _rejected(FAIL_FILE, EXPECTED)


def test_a_continuation_of_the_wrong_result_type_is_rejected() -> None:
    _rejected(
        Path("typings", "fail", "continue_keeps_the_result_type.py"),
        'error: Argument 1 to "Continue" has incompatible type',
    )
