"""Reading the fenced code blocks of a markdown page, for the tests that run
them (tests/test_docs_blocks.py, tests/test_pytest_plugin_docs.py).

Each test reads its own opt-out marker from :attr:`Fence.before`, the last
non-blank line above the fence, so the two marker vocabularies stay theirs.
"""

from __future__ import annotations

import dataclasses
import re

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,})(?P<info>.*)$")


@dataclasses.dataclass(frozen=True)
class Fence:
    line: int
    """1-based line of the opening fence."""
    end: int
    """1-based line of the closing fence."""
    language: str
    source: str
    """The body, dedented by the fence's own indent (a fence in a list item)."""
    before: str
    """The last non-blank line above the fence ('' at the top of the page)."""


def fences(markdown: str, name: str = "<markdown>") -> list[Fence]:
    """The fenced code blocks of ``markdown``, in order.

    :raises AssertionError: a fence is never closed (naming ``name`` and the
        line), which would otherwise swallow the rest of the page silently.
    """
    lines = markdown.splitlines()
    found: list[Fence] = []
    n = 0
    while n < len(lines):
        opening = _FENCE.match(lines[n])
        if opening is None:
            n += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        before = next((lines[k] for k in range(n - 1, -1, -1) if lines[k].strip()), "")
        close = n + 1
        while close < len(lines) and lines[close].strip() != fence:
            close += 1
        assert close < len(lines), f"{name}:{n + 1}: unclosed code fence"
        body = [line[len(indent) :] for line in lines[n + 1 : close]]
        found.append(
            Fence(
                line=n + 1,
                end=close + 1,
                language=opening["info"].strip().split(" ")[0],
                source="\n".join(body) + "\n",
                before=before,
            )
        )
        n = close + 1
    return found
