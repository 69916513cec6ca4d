"""The docs' python blocks run, so they cannot drift from the code.

Every ```` ```python ```` block of README.md and of each docs/*.md page
(found by glob, so a new page is picked up with no change here) is read from
the real file at test time and run on the local backend, against a real
Redis (the suite's embedded ``redis-server``). docs/testing.md is left out:
its blocks are test modules, run as such by tests/test_pytest_plugin_docs.py.

The rules:

1. **One page, one namespace, one test.** A page's blocks run in order, in
   one module namespace, so a block may use what an earlier one defined, as
   a reader does. There is one test case per page, not per block: a block
   depends on those before it, so it means nothing alone, and after a
   failure the rest of the page would only fail in its wake. A failure names
   the page and the line, and tracebacks point into the markdown. A block
   that starts with ``from __future__ import ...`` is a module of its own
   (that import must open a module): it runs in a fresh namespace.
2. **The environment a reader would have.** ``REDIS_URL`` names the suite's
   Redis (flushed before each page), ``MAGEFLOW_BACKEND=local``, and
   ``HATCHET_CLIENT_TOKEN`` is an offline token (``mageflow.testing``), so a
   bare ``Hatchet()`` builds and nothing can reach an engine. The namespace
   starts with ``hatchet = mageflow.Mageflow()``, made from that
   environment: the client the pages call ``hatchet``, in effect for the
   whole page, as inside a task or a ``with hatchet.use():`` block. A page
   may make clients of its own.
3. **Top-level ``await``**, as in a notebook or ``python -m asyncio``: each
   top-level statement is compiled with ``ast.PyCF_ALLOW_TOP_LEVEL_AWAIT``.
   One that awaits runs on the page's event loop; any other runs as in a
   script, with no loop running (so ``asyncio.run(...)`` works in it).
4. **An opt-out says why.** A block that cannot run as it is (a signature
   sketch, say) has, on the line right before its fence,
   ``<!-- not run: why -->``. A marker without a reason fails, and so does
   one on a block that is not python (those never run). Keep them few: give
   a block the set-up it needs instead (a page may hold it in a
   ``<details>`` block, which is run like any other).
5. **What a page shows is checked, and an error only where it is shown.**

   - Comment lines right below a top-level ``print(...)`` are what it
     prints.
   - A ```` ```text ```` block right after a python block (only blank lines
     between) is what that block prints.
   - A statement may raise only where the page shows the error: in the
     comment lines right below it (``# ErrorType: message``, wrapped over
     as many lines as needed), or, for the block's last statement, in the
     text block after the block. The block goes on after a shown error.
     Any other exception fails the test with the page's line.

   The lines shown must appear whole and in a row in what was printed (a
   wrapped error is compared as one line); ``...`` stands for anything
   within a line, and so does a word that ends with it (``3f2c...``: an id
   cut short).
6. **The workflows end well.** After the last block, the runs on
   ``hatchet`` are drained (``drain()``, which times out; nothing sleeps),
   and a signature in the page's Redis that ended ``failed``, or is still
   ``active`` (started and never ended), fails the test: a callback, a
   chain step or a swarm item that breaks in the background would
   otherwise go unseen. A failed *run* is fine when the page made good on
   it (a retry that then succeeded, say); what counts is how the page's
   workflows end.
7. **The blocks are formatted** (one ``ruff format --check`` over them all,
   with the project's settings).
"""

from __future__ import annotations
import __future__

import ast
import asyncio
import contextlib
import dataclasses
import inspect
import io
import itertools
import re
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from md_fences import fences

import mageflow
from mageflow.dispatch.local import LocalDispatcher
from mageflow.signature import SignatureStatus
from mageflow.store import keys
from mageflow.store.connection import close_client
from mageflow.testing import offline_token

ROOT = Path(__file__).resolve().parent.parent

TESTED_ELSEWHERE = {
    "docs/testing.md": "tests/test_pytest_plugin_docs.py",
}

_NOT_RUN = re.compile(r"^\s*<!--\s*not run\b:?(?P<why>.*?)-->\s*$")


@dataclasses.dataclass
class Block:
    line: int
    """1-based line of the opening fence."""
    language: str
    source: str
    """The body, dedented by the fence's own indent."""
    not_run: str | None = None
    """The reason given by ``<!-- not run: ... -->``, if any (may be empty)."""
    shows: str | None = None
    """The ``text`` block right after it: what it prints."""
    end: int = 0
    """1-based line of the closing fence."""


def code_blocks(markdown: str, name: str = "<markdown>") -> list[Block]:
    """The fenced code blocks of ``markdown``, in order."""
    lines = markdown.splitlines()
    blocks: list[Block] = []
    for fence in fences(markdown, name):
        marker = _NOT_RUN.match(fence.before)
        blocks.append(
            Block(
                line=fence.line,
                language=fence.language,
                source=fence.source,
                not_run=marker["why"].strip() if marker else None,
                end=fence.end,
            )
        )
    for block, after in itertools.pairwise(blocks):
        between = lines[block.end : after.line - 1]
        if after.language == "text" and not any(line.strip() for line in between):
            block.shows = after.source
    return blocks


def shown_in(printed: str, shown: str) -> bool:
    """Whether the lines of ``shown`` appear whole and in a row in
    ``printed``; ``...`` matches anything within a line, and so does a word
    that ends with it (``3f2c...``, an id cut short)."""
    lines = [line.rstrip() for line in shown.strip("\n").splitlines()]
    pattern = "\n".join(
        ".*?".join(map(re.escape, re.split(r"\w*\.\.\.", line))) for line in lines
    )
    text = "\n".join(line.rstrip() for line in printed.splitlines())
    return re.search(f"(?m)^{pattern}$", text) is not None


def pages() -> list[Path]:
    """README.md and docs/*.md, less the pages tested elsewhere."""
    found = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [p for p in found if p.relative_to(ROOT).as_posix() not in TESTED_ELSEWHERE]


def python_blocks(page: Path) -> list[Block]:
    return [
        block
        for block in code_blocks(page.read_text(), page.name)
        if block.language == "python"
    ]


def _rel(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


PAGES_WITH_CODE = [page for page in pages() if python_blocks(page)]


# --- running a page ------------------------------------------------------------


def _future_flags(statement: ast.stmt) -> int:
    if isinstance(statement, ast.ImportFrom) and statement.module == "__future__":
        return sum(
            getattr(__future__, alias.name).compiler_flag for alias in statement.names
        )
    return 0


def _is_print(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Call)
        and isinstance(statement.value.func, ast.Name)
        and statement.value.func.id == "print"
    )


def _comments_below(statement: ast.stmt, block: Block) -> str | None:
    """The comment lines right below a top-level statement, if any."""
    assert statement.end_lineno is not None
    comments: list[str] = []
    for line in block.source.splitlines()[statement.end_lineno - block.line :]:
        if not line.lstrip().startswith("#"):
            break
        comments.append(re.sub(r"^#\s?", "", line.strip()))
    return "\n".join(comments) if comments else None


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclasses.dataclass
class PageRun:
    page: Path
    loop: asyncio.AbstractEventLoop
    namespace: dict[str, Any]

    def execute(self, code: types.CodeType, namespace: dict[str, Any]) -> str:
        """Run one statement; return what it printed (echoed to stdout)."""
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                result = eval(code, namespace)  # a statement of the page
                if code.co_flags & inspect.CO_COROUTINE:
                    self.loop.run_until_complete(result)
        finally:
            sys.stdout.write(out.getvalue())
        return out.getvalue()

    def run_block(self, block: Block) -> None:
        where = f"{_rel(self.page)}:{block.line}"
        try:
            tree = ast.parse(block.source)
        except SyntaxError as exc:
            at = block.line + (exc.lineno or 1)
            raise AssertionError(
                f"{_rel(self.page)}:{at}: the block is not valid Python "
                f"({exc.msg}); fix it, or mark it `<!-- not run: why -->`"
            ) from exc
        ast.increment_lineno(tree, block.line)
        own_module = bool(tree.body) and _future_flags(tree.body[0]) != 0
        namespace = self.fresh_namespace(block) if own_module else self.namespace
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        printed = ""
        for index, statement in enumerate(tree.body):
            flags |= _future_flags(statement)
            line = f"{_rel(self.page)}:{statement.lineno}"
            module = ast.Module(body=[statement], type_ignores=[])
            code = compile(module, str(self.page), "exec", flags, dont_inherit=True)
            below = _comments_below(statement, block)
            try:
                output = self.execute(code, namespace)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                if below is not None and shown_in(_one_line(error), _one_line(below)):
                    continue  # the page shows this error right below it
                if index == len(tree.body) - 1 and block.shows is not None:
                    printed += error + "\n"  # the text block should show it
                    break
                raise AssertionError(f"{line}: {error}") from exc
            printed += output
            shown = below if _is_print(statement) else None
            if shown is not None and not shown_in(output, shown):
                raise AssertionError(
                    f"{line}: the page shows this print giving\n{shown}\n"
                    f"but it printed\n{output}"
                )
        if block.shows is not None and not shown_in(printed, block.shows):
            raise AssertionError(
                f"{where}: the text block after this one shows\n{block.shows}"
                f"but the block printed\n{printed}"
            )

    def fresh_namespace(self, block: Block) -> dict[str, Any]:
        name = f"{self.namespace['__name__']}_line_{block.line}"
        module = types.ModuleType(name)
        sys.modules[name] = module
        return module.__dict__


@pytest.fixture
def page_env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The environment a reader's program runs in (rule 2)."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("MAGEFLOW_BACKEND", "local")
    monkeypatch.setenv("HATCHET_CLIENT_TOKEN", offline_token())
    before = set(sys.modules)
    yield redis_url
    for name in set(sys.modules) - before:
        if name.startswith("mageflow_docs_"):
            del sys.modules[name]


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """What a page left running, cancelled as ``asyncio.run`` would."""
    left = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in left:
        task.cancel()

    async def ended() -> None:
        await asyncio.gather(*left, return_exceptions=True)
        await loop.shutdown_asyncgens()

    loop.run_until_complete(ended())


async def _close(client: mageflow.HatchetMageflow) -> None:
    backend = client.dispatch_backend
    assert isinstance(backend, LocalDispatcher)
    await backend.close()
    await close_client(client.redis)


async def _unfinished(client: mageflow.HatchetMageflow) -> list[str]:
    """The signatures in the page's Redis that failed, or that started and
    never ended."""
    found: list[str] = []
    async for key in client.redis.scan_iter(match=keys.SIGNATURE_MATCH):
        name = key.decode() if isinstance(key, bytes) else key
        signature = await client.load_signature(keys.signature_id_of(name))
        if signature is None:
            continue  # removed meanwhile
        if signature.status in (SignatureStatus.FAILED, SignatureStatus.ACTIVE):
            error = signature.error
            why = f": {error.error_type}: {error.message}" if error else ""
            found.append(
                f"{signature.task_name} {signature.id} {signature.status.value}{why}"
            )
    return found


def run_page(page: Path) -> int:
    """Run the page's blocks (rules 1 to 6); return how many ran."""
    name = "mageflow_docs_" + re.sub(r"\W", "_", _rel(page))
    module = types.ModuleType(name)
    sys.modules[name] = module
    loop = asyncio.new_event_loop()
    hatchet = mageflow.Mageflow()
    module.__dict__["hatchet"] = hatchet
    run = PageRun(page, loop, module.__dict__)
    backend = hatchet.dispatch_backend
    assert isinstance(backend, LocalDispatcher)
    ran = 0
    try:
        loop.run_until_complete(hatchet.redis.flushdb())
        with hatchet.use():
            for block in python_blocks(page):
                if block.not_run is None:
                    run.run_block(block)
                    ran += 1
            loop.run_until_complete(backend.drain(timeout=30))
        unfinished = loop.run_until_complete(_unfinished(hatchet))
        assert not unfinished, (
            f"{_rel(page)}: signatures failed or never ended: " + "; ".join(unfinished)
        )
    finally:
        try:
            loop.run_until_complete(_close(hatchet))
        finally:
            _cancel_leftovers(loop)
            loop.close()
    return ran


# --- the tests -------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=_rel)
def test_the_page_runs(page: Path, page_env: str) -> None:
    assert run_page(page) == sum(b.not_run is None for b in python_blocks(page))


def test_the_pages_are_found() -> None:
    found = {_rel(page) for page in pages()}
    assert {"README.md", "docs/swarm.md", "docs/injection.md"} <= found
    assert not found & set(TESTED_ELSEWHERE)
    assert all((ROOT / test).is_file() for test in TESTED_ELSEWHERE.values())


def test_every_opt_out_says_why() -> None:
    problems = [
        f"{_rel(page)}:{block.line}: "
        + ("a ```" + block.language + " block never runs; drop the marker")
        for page in pages()
        for block in code_blocks(page.read_text(), page.name)
        if block.not_run is not None and block.language != "python"
    ]
    problems += [
        f"{_rel(page)}:{block.line}: say why the block is not run"
        for page in pages()
        for block in python_blocks(page)
        if block.not_run == ""
    ]
    assert not problems, "\n".join(problems)


def test_the_blocks_are_formatted(tmp_path: Path) -> None:
    names: dict[str, str] = {}
    for page in pages():
        for block in python_blocks(page):
            if block.not_run is None:
                name = re.sub(r"\W", "_", _rel(page)) + f"_line_{block.line}.py"
                (tmp_path / name).write_text(block.source)
                names[name] = f"{_rel(page)}:{block.line}"
    assert names
    config = str(ROOT / "pyproject.toml")
    command = ["ruff", "format", "--check", "--diff", "--config", config]
    result = subprocess.run(
        [sys.executable, "-m", *command, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = result.stdout + result.stderr
    for name, where in names.items():
        report = report.replace(str(tmp_path / name), where)
    assert result.returncode == 0, report


def test_the_extractor_reads_markers_and_outputs() -> None:
    markdown = (
        "# t\n\n```python\nprint(1)\n# 1\n```\n\n```text\n1\n```\n\n"
        "- item:\n\n  ```python\n  x = 1\n  ```\n\n"
        "<!-- not run: a sketch -->\n```python\nf(*, a)\n```\n"
        "<!-- not run -->\n\n```python\ny\n```\n\nprose\n\n```text\nno\n```\n"
    )
    blocks = code_blocks(markdown)
    assert [(b.line, b.language, b.not_run, b.shows) for b in blocks] == [
        (3, "python", None, "1\n"),
        (8, "text", None, None),
        (14, "python", None, None),
        (19, "python", "a sketch", None),
        (24, "python", "", None),
        (30, "text", None, None),
    ]
    assert blocks[2].source == "x = 1\n"


def test_shown_lines_match_whole_lines_with_ellipses() -> None:
    printed = "a\nsignature 3f2c01 (price) failed  \nb\n"
    assert shown_in(printed, "signature ... (price) failed\nb\n")
    assert shown_in(printed, "signature 9e... (price) ...\n")
    assert shown_in(printed, "a\n")
    assert not shown_in(printed, "signature\n")  # a whole line, not a part
    assert not shown_in(printed, "a\nb\n")  # in a row
    assert not shown_in(printed, "c\n")


_TASK = """\
```python
import mageflow


@hatchet.task(name="add")
async def add(msg: dict[str, int]) -> dict[str, int]:
    return {"sum": msg["a"] + msg["b"]}
```
"""

# Each page: _TASK (lines 1 to 8), then a block whose fence is on line 10.
DRIFTS = {
    "a print that shows the wrong value": (
        "print(await (await mageflow.sign(add)).aio_run({'a': 1, 'b': 2}))\n"
        "# {'sum': 4}\n",
        r"^docs/drift.md:11: the page shows this print giving\n\{'sum': 4\}",
    ),
    "an error the page does not show": (
        "await mageflow.sign(add, a='x')\nprint('never')\n",
        r"^docs/drift.md:11: InputValidationError: cannot sign 'add'",
    ),
    "an error shown, but not this one": (
        "await mageflow.sign(add, a='x')\n# InputConflictError: ...\n",
        r"^docs/drift.md:11: InputValidationError",
    ),
    "a text block that shows something else": (
        "print('total=1')\n```\n\n```text\ntotal=2\n",
        r"^docs/drift.md:10: the text block after this one shows\ntotal=2",
    ),
    "a failure in the background": (  # an item its task refuses
        "await (await mageflow.swarm(['add'])).aio_run_no_wait({'a': 'x'})\n",
        r"^docs/drift.md: signatures failed or never ended: add \w+ failed",
    ),
}


@pytest.mark.parametrize("drift", sorted(DRIFTS))
def test_a_page_that_drifts_fails_with_its_line(
    drift: str, tmp_path: Path, page_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    block, message = DRIFTS[drift]
    page = tmp_path / "docs" / "drift.md"
    page.parent.mkdir()
    page.write_text(f"{_TASK}\n```python\n{block}```\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    with pytest.raises(AssertionError, match=message):
        run_page(page)


def test_a_page_that_shows_what_happens_passes(
    tmp_path: Path, page_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = tmp_path / "docs" / "fine.md"
    page.parent.mkdir()
    page.write_text(
        f"{_TASK}\n```python\n"
        "print(await (await mageflow.sign(add)).aio_run({'a': 1, 'b': 2}))\n"
        "# {'sum': 3}\n"
        "await mageflow.sign(add, a='x')\n"
        "# InputValidationError: cannot sign 'add': field 'a' is bound to 'x',\n"
        "# which dict[str, int] refuses: ...\n"
        "print((await mageflow.sign(add, a=2)).kwargs)\n"
        "```\n\n```text\n{'a': 2}\n```\n\n"
        "<!-- not run: a sketch -->\n```python\nsign(task, *, ...)\n```\n"
        "\n```python\nfrom __future__ import annotations\n\nprint(add)\n```\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    # _TASK, the checked block, the module of its own (which has no `add`):
    with pytest.raises(AssertionError, match=r"fine.md:\d+: NameError: name 'add'"):
        run_page(page)
    page.write_text(page.read_text().replace("print(add)", "print(1)\n# 1"))
    assert run_page(page) == 3
