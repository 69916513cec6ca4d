"""docs/testing.md runs as written, in a fresh folder, in strict mode.

Every ```` ```python ```` block of docs/testing.md is a test module, read from
the real file at test time (so the page cannot drift from what runs) and
written to a fresh pytester folder with **no configuration at all**: no
``asyncio_mode``, so pytest-asyncio runs in its default, strict, mode, which
is what a new user has. (This repository's own ``asyncio_mode = "auto"``
would hide a missing mark.) The same modules also run in auto mode. Each run
is a new pytest process, as a user's is, with ``REDIS_URL`` pointing at this
suite's Redis.

A block that is not a test module says so in the markdown, with an HTML
comment on the line right before its fence::

    <!-- not a test module: why -->

so skipping it is visible in the page's source and needs a reason. Blocks in
other languages (``text``, ``bash``...) are never run.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest
from md_fences import fences

pytest_plugins = ["pytester"]

TESTING_MD = Path(__file__).resolve().parent.parent / "docs" / "testing.md"

_NOT_A_TEST = re.compile(r"^\s*<!--\s*not a test module:\s*(?P<why>.*?)\s*-->\s*$")


@dataclasses.dataclass
class Block:
    line: int
    """1-based line of the opening fence, for messages."""
    language: str
    source: str
    skipped_because: str | None


def code_blocks(markdown: str) -> list[Block]:
    """The fenced code blocks of ``markdown``, dedented, in order."""
    blocks: list[Block] = []
    for fence in fences(markdown, "testing.md"):
        marker = _NOT_A_TEST.match(fence.before)
        blocks.append(
            Block(
                line=fence.line,
                language=fence.language,
                source=fence.source,
                skipped_because=marker["why"] if marker else None,
            )
        )
    return blocks


def runnable_blocks() -> dict[str, Block]:
    """The python blocks to run, by the module name they are written to."""
    modules: dict[str, Block] = {}
    for block in code_blocks(TESTING_MD.read_text()):
        if block.language != "python":
            continue
        if block.skipped_because is not None:
            assert block.skipped_because, (
                f"testing.md:{block.line}: say why the block is not a test module"
            )
            continue
        modules[f"test_testing_md_line_{block.line}"] = block
    return modules


def count_tests(source: str) -> int:
    """Top-level ``test_*`` functions: what pytest collects from the block."""
    return sum(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
        for node in ast.parse(source).body
    )


def test_the_extractor_reads_fences_languages_and_skip_markers() -> None:
    markdown = (
        "# t\n\n```python\nasync def test_a(): ...\n```\n\n"
        "- a list item:\n\n  ```text\n  not python\n  ```\n\n"
        "<!-- not a test module: a fragment -->\n\n```python\nx = 1\n```\n"
    )
    blocks = code_blocks(markdown)
    assert [(b.line, b.language, b.skipped_because) for b in blocks] == [
        (3, "python", None),
        (9, "text", None),
        (15, "python", "a fragment"),
    ]
    assert blocks[0].source == "async def test_a(): ...\n"
    assert blocks[1].source == "not python\n"
    assert count_tests(blocks[0].source) == 1


@pytest.fixture
def docs_folder(
    pytester: pytest.Pytester, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[pytest.Pytester, int]:
    """A fresh folder holding the page's test modules, and how many tests."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    modules = runnable_blocks()
    assert modules, f"no runnable python block found in {TESTING_MD}"
    pytester.makepyfile(**{name: block.source for name, block in modules.items()})
    total = sum(count_tests(block.source) for block in modules.values())
    assert total, "the python blocks of testing.md hold no test function"
    return pytester, total


def test_the_testing_page_runs_unchanged_in_strict_mode(
    docs_folder: tuple[pytest.Pytester, int],
) -> None:
    pytester, total = docs_folder
    # The test modules and nothing else: no ini, no conftest, no pyproject.
    assert {path.name for path in pytester.path.iterdir()} == {
        f"{name}.py" for name in runnable_blocks()
    }
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.stdout.re_match_lines([r"asyncio: mode=(Mode\.)?(strict|STRICT)\b"])
    result.assert_outcomes(passed=total)


def test_the_testing_page_runs_unchanged_in_auto_mode(
    docs_folder: tuple[pytest.Pytester, int],
) -> None:
    pytester, total = docs_folder
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-o", "asyncio_mode=auto"
    )
    result.stdout.re_match_lines([r"asyncio: mode=(Mode\.)?(auto|AUTO)\b"])
    result.assert_outcomes(passed=total)
