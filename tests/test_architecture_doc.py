"""docs/architecture.md is the map of the package: it must stay true.

Every module of the package has its row (``| `path.py` | its job |``), and
every row names a module that exists.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mageflow"
ROW = re.compile(r"^\| `(?P<path>[\w/]+\.py)` \|", re.MULTILINE)


def documented() -> set[str]:
    return set(ROW.findall((ROOT / "docs" / "architecture.md").read_text()))


def defines_something(path: Path) -> bool:
    """A subpackage's ``__init__`` that only re-exports needs no row."""
    return re.search(r"^(class|def|async def) ", path.read_text(), re.M) is not None


def modules() -> set[str]:
    return {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py"
        or path.parent == PACKAGE
        or defines_something(path)
    }


def test_every_module_has_a_row() -> None:
    assert sorted(modules() - documented()) == []


def test_every_row_is_a_module() -> None:
    assert sorted(documented() - modules()) == []
