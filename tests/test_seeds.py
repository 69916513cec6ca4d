"""The seed documents run as written: every ```python block of ``setup.md``
and ``client-api.md``, on the local backend, over a real Redis.

The documents live in ``/work/shared/seeds`` next to the repository, which a
CI checkout elsewhere does not have; the repository's ``seeds/`` holds
verbatim copies, and :func:`test_the_copies_are_the_seeds` checks them byte
for byte whenever the originals are there. The copies are what runs, so
this never skips.

How a document runs (:data:`SEEDS` says it for each):

* ``setup.md`` is one program told in steps: later blocks use the
  ``asyncio``, ``redis_client`` and ``hatchet`` of the first, rebind
  ``hatchet`` (``mageflow.Mageflow(hatchet, ...)``, twice), and the worker
  block lists the tasks of the earlier ones. Its blocks run in order, in one
  namespace.
* ``client-api.md`` shows one method per block, each against the ``client``
  of its Initialization section. Its blocks are independent: each runs in a
  fresh namespace, all against one client.

The code is changed only where a placeholder cannot run (a token, a URL, a
model the reader is to write, an import the page leaves out): each change is
in :data:`SEEDS` with its reason, and must still match the document. The
backend is chosen by the environment (``MAGEFLOW_BACKEND=local``), not by
editing the code. Then every task the document declared runs once, through a
signature, and must return what the seed's code returns. Warnings are
recorded throughout; only those listed (with a reason) may appear, and each
listed one must appear, so the list cannot go stale.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import re
import warnings
from pathlib import Path
from typing import Any

import pytest

from mageflow import HatchetMageflow
from mageflow.client import BACKEND_ENV
from mageflow.dispatch.local import LocalDispatcher
from mageflow.store.connection import RedisConnection, flush_all, is_cluster_url

COPIES = Path(__file__).resolve().parents[1] / "seeds"
ORIGINALS = Path(__file__).resolve().parents[2] / "shared" / "seeds"

RUN_TIMEOUT = 60.0
"""Seconds for all of a document's tasks together; the slowest seed task
sleeps 5 s (``critical-process``) or staggers up to 10 s."""

MESSAGE = {"data": "seed"}
"""The input every seed task is run with (the models of the preludes)."""


@dataclasses.dataclass(frozen=True)
class Substitution:
    """``old`` becomes ``new`` in the document's code, exactly once."""

    old: str
    new: str
    reason: str

    def __post_init__(self) -> None:
        assert self.old, self
        assert self.reason.strip(), self


@dataclasses.dataclass(frozen=True)
class Provided:
    """Code run before the document's blocks: names it uses, never defines."""

    code: str
    reason: str

    def __post_init__(self) -> None:
        assert self.reason.strip(), self


@dataclasses.dataclass(frozen=True)
class ExpectedWarning:
    """A warning the seed's code raises as written."""

    category: type[Warning]
    message: str
    """A part of the warning's message."""
    reason: str

    def __post_init__(self) -> None:
        assert self.message, self
        assert self.reason.strip(), self


class AnyText:
    """Equal to any non-empty string: a value the seed reads from the run."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)

    def __repr__(self) -> str:
        return "<any non-empty str>"


@dataclasses.dataclass(frozen=True)
class Seed:
    file: str
    shared_namespace: bool
    why_this_namespace: str
    provided: tuple[Provided, ...]
    substitutions: tuple[Substitution, ...]
    skipped: dict[str, str]
    """Section heading -> why its block is not run. Such a block must not
    compile, so a skip is revisited when the page makes it code."""
    results: dict[str, dict[str, Any]]
    """Every task the document declares -> what its run returns."""
    printed: tuple[str, ...]
    """Lines the seed's tasks print when they run."""
    expected_warnings: tuple[ExpectedWarning, ...]

    def __post_init__(self) -> None:
        assert self.why_this_namespace.strip(), self.file
        assert all(reason.strip() for reason in self.skipped.values()), self.file


MODELS = Provided(
    "from pydantic import BaseModel\n"
    "\n"
    "class YourModelA(BaseModel):\n"
    "    data: str\n"
    "\n"
    "YourModelB = YourModel = MyModel = YourModelA\n",
    "the page's models are the reader's to write (`YourModelA`, `YourModelB`, "
    "`YourModel`, `MyModel`); the tasks read `msg.data`, so one model with a "
    "`data: str` field stands for each",
)
CONTEXT_IMPORT = Provided(
    "from hatchet_sdk import Context\n",
    "the page annotates `ctx: Context` but never imports `Context`",
)
STEP_RUN_ID_DEPRECATED = ExpectedWarning(
    DeprecationWarning,
    "The step_run_id property is deprecated",
    "the seed reads `ctx.step_run_id`, which hatchet-sdk deprecates in favour "
    "of `ctx.task_run_id`; the code is left as written",
)

SEEDS: dict[str, Seed] = {
    "setup.md": Seed(
        file="setup.md",
        shared_namespace=True,
        why_this_namespace="one program in steps: the blocks build on the first "
        "block's `hatchet` and `redis_client`, and the worker block lists the "
        "earlier blocks' tasks",
        provided=(
            MODELS,
            CONTEXT_IMPORT,
            Provided(
                "from mageflow import AcceptParams\n",
                "the page passes `AcceptParams.ALL` / `.NO_CTX` but never imports "
                "`AcceptParams`",
            ),
            Provided(
                "from mageflow.testing import offline_token\n",
                "for the token substitution below",
            ),
        ),
        substitutions=(
            Substitution(
                "from dynaconf import Dynaconf\n",
                "",
                "dynaconf is not a dependency of mageflow (nor installed), and "
                "the block never uses `Dynaconf`",
            ),
            Substitution(
                'ClientConfig(token="your-hatchet-token")',
                "ClientConfig(token=offline_token())",
                'a placeholder: ClientConfig refuses "your-hatchet-token" (not a '
                "JWT); the offline token names a tenant and an engine address "
                "nothing listens on",
            ),
            Substitution(
                '"redis-url",',
                "SEED_REDIS_URL,",
                "a placeholder: the test's private redis-server",
            ),
        ),
        skipped={},
        results={
            "process-data": {"processed": "seed"},
            "send-notification": {"status": "sent"},
            "critical-process": {"completed": True},
            "context-aware-task": {"processed": True},
            "regular-task": {"processed": True},
            "self-aware-task": {"task_name": "self-aware-task"},
            "full-access-task": {"step_id": AnyText(), "task_name": "full-access-task"},
        },
        printed=(
            "Notification sent for: seed",
            "Running in step: ",
            "Running task: self-aware-task with ID: {}",
        ),
        expected_warnings=(
            ExpectedWarning(
                DeprecationWarning,
                "The `debug` parameter is deprecated",
                "the seed calls `Hatchet(debug=True, ...)`, which hatchet-sdk "
                "deprecates in favour of HATCHET_CLIENT_DEBUG; left as written",
            ),
            STEP_RUN_ID_DEPRECATED,
        ),
    ),
    "client-api.md": Seed(
        file="client-api.md",
        shared_namespace=False,
        why_this_namespace="one method per block, each against the `client` of "
        "the Initialization section; no block uses another's names",
        provided=(
            MODELS,
            CONTEXT_IMPORT,
            Provided(
                "import mageflow\n"
                "from mageflow.testing import offline_hatchet\n"
                "\n"
                "client = mageflow.Mageflow(offline_hatchet(), "
                "redis_client=SEED_REDIS_URL)\n",
                "the page's `client` comes from its Initialization block, which "
                "is skipped (below); this is that call with real arguments",
            ),
        ),
        substitutions=(),
        skipped={
            "Initialization": "a signature sketch, not code: it writes the call "
            "with parameter annotations (`hatchet_client: Hatchet,`), a "
            "SyntaxError",
        },
        results={
            "context-task": {"status": "completed"},
            "signature-aware-task": {"task_name": "signature-aware-task"},
            "resource-intensive-task": {"status": "completed"},
        },
        printed=(),
        expected_warnings=(),
    ),
}


@dataclasses.dataclass(frozen=True)
class Block:
    heading: str
    line: int
    code: str


_FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
_HEADING = re.compile(r"^#+\s+(.*)$", re.M)


def python_blocks(text: str) -> list[Block]:
    """Every ```python block, with the heading of its section and its line."""
    blocks = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()]
        headings = _HEADING.findall(before)
        blocks.append(
            Block(
                heading=headings[-1].strip() if headings else "",
                line=before.count("\n") + 2,
                code=match.group(1),
            )
        )
    return blocks


def substituted(seed: Seed, blocks: list[Block]) -> list[Block]:
    """The blocks with the seed's substitutions made; each must match once."""
    codes = [block.code for block in blocks]
    for substitution in seed.substitutions:
        found = sum(code.count(substitution.old) for code in codes)
        assert found == 1, (
            f"{seed.file}: the substitution of {substitution.old!r} matches "
            f"{found} times; the document changed, revisit it"
        )
        codes = [code.replace(substitution.old, substitution.new) for code in codes]
    return [
        dataclasses.replace(block, code=code)
        for block, code in zip(blocks, codes, strict=True)
    ]


def prelude_namespace(seed: Seed, redis_url: str) -> dict[str, Any]:
    """The names the document assumes, made once per document."""
    # Imported, not run as a script: the worker block's `if __name__ ==
    # "__main__": main()` stays off, since worker.start() would dial the
    # engine and block.
    namespace: dict[str, Any] = {
        "__name__": f"seeds.{Path(seed.file).stem}",
        "SEED_REDIS_URL": redis_url,
    }
    for provided in seed.provided:
        exec(compile(provided.code, f"<prelude of {seed.file}>", "exec"), namespace)
    return namespace


def run_blocks(seed: Seed, redis_url: str) -> list[dict[str, Any]]:
    """Run the document's blocks; return the namespaces they ran in: one for
    a shared namespace, else one per block, each a copy of the prelude's (so
    the blocks share its client and models, and nothing else)."""
    blocks = python_blocks((COPIES / seed.file).read_text(encoding="utf-8"))
    assert blocks, f"{seed.file} has no python blocks"
    assert {b.heading for b in blocks} >= set(seed.skipped), seed.skipped
    prelude = prelude_namespace(seed, redis_url)
    namespaces: list[dict[str, Any]] = [prelude] if seed.shared_namespace else []
    for block in substituted(seed, blocks):
        where = f"{seed.file} ({block.heading})"
        if block.heading in seed.skipped:
            with pytest.raises(SyntaxError):
                compile(block.code, where, "exec")
            continue
        if not seed.shared_namespace:
            namespaces.append(dict(prelude))
        # Line numbers in tracebacks are the document's.
        code = compile("\n" * (block.line - 1) + block.code, where, "exec")
        exec(code, namespaces[-1])
    return namespaces


def client_of(seed: Seed, namespaces: list[dict[str, Any]]) -> HatchetMageflow:
    """The one client the document's tasks were declared with: ``hatchet``
    as last bound (setup.md), or the prelude's ``client`` (client-api.md)."""
    name = "hatchet" if seed.shared_namespace else "client"
    [client] = {id(ns[name]): ns[name] for ns in namespaces}.values()
    assert isinstance(client, HatchetMageflow), type(client)
    return client


async def run_every_task(client: HatchetMageflow, seed: Seed) -> dict[str, Any]:
    async def one(name: str) -> tuple[str, Any]:
        signature = await client.sign(name)
        return name, await signature.aio_run(MESSAGE)

    results = await asyncio.wait_for(
        asyncio.gather(*(one(name) for name in client.registry.names())),
        RUN_TIMEOUT,
    )
    backend = client.dispatch_backend
    assert isinstance(backend, LocalDispatcher), type(backend)
    await backend.drain(RUN_TIMEOUT)
    return dict(results)


def unexpected(
    caught: list[warnings.WarningMessage], seed: Seed
) -> tuple[list[str], list[ExpectedWarning]]:
    """Warnings not listed for the seed, and listed ones that did not occur."""

    def listed(w: warnings.WarningMessage, e: ExpectedWarning) -> bool:
        return issubclass(w.category, e.category) and e.message in str(w.message)

    extra = [
        f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})"
        for w in caught
        if not any(listed(w, e) for e in seed.expected_warnings)
    ]
    missing = [
        e for e in seed.expected_warnings if not any(listed(w, e) for w in caught)
    ]
    return extra, missing


@pytest.fixture
async def flushed(redis_url: str) -> str:
    connection = RedisConnection(redis_url)  # one server or a cluster
    try:
        await flush_all(connection.client)
    finally:
        await connection.aclose()
    return redis_url


@pytest.mark.parametrize("file", sorted(SEEDS))
async def test_seed_runs(
    file: str,
    flushed: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed = SEEDS[file]
    if is_cluster_url(flushed) and file == "setup.md":
        pytest.skip("setup.md builds a plain redis.asyncio client from the URL")
    # The seeds construct production clients; the environment, not an edit,
    # puts them on the local backend.
    monkeypatch.setenv(BACKEND_ENV, "local")
    # Earlier tests' garbage (an unclosed connection warns when collected)
    # is collected now, so what is recorded below is the seed's own.
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        namespaces = run_blocks(seed, flushed)
        client = client_of(seed, namespaces)
        try:
            assert client.backend == "local"
            assert client.registry.names() == sorted(seed.results)
            results = await run_every_task(client, seed)
        finally:
            await client.redis.aclose()
    assert results == seed.results
    out = capsys.readouterr().out
    for line in seed.printed:
        assert line in out, (line, out)
    extra, missing = unexpected(caught, seed)
    assert extra == [], "the seed's code raised unlisted warnings"
    assert missing == [], "listed warnings did not occur; drop them from SEEDS"


def test_every_seed_is_listed() -> None:
    assert sorted(p.name for p in COPIES.glob("*.md")) == sorted(SEEDS)


def test_the_copies_are_the_seeds() -> None:
    if not ORIGINALS.is_dir():
        pytest.skip(
            f"{ORIGINALS} is not here (a checkout without the shared seeds); "
            "the copies in seeds/ run regardless"
        )
    originals = sorted(p.name for p in ORIGINALS.glob("*.md"))
    assert originals == sorted(SEEDS), "a seed document was added or removed"
    for name in originals:
        assert (COPIES / name).read_bytes() == (ORIGINALS / name).read_bytes(), name
