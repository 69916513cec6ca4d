"""``python -m mageflow``: command-line tools.

``inspect <signature-id>`` prints the tree of a stored workflow (the
signature, its status, task, kwargs, outcome and callbacks, and a
container's children) from the Redis at ``REDIS_URL`` or ``--redis-url``.
It only reads, so it works whichever backend ran the workflow. ``--format``
picks text (the default), ``json`` (``--json`` for short), or a picture:
``svg``, ``mermaid`` or ``dot`` (see :mod:`mageflow.graph`); ``-o FILE``
writes it to a file instead of stdout.

``recover`` runs one recovery pass (see ``docs/reliability.md``) against the
Redis and the Hatchet engine of the environment (``HATCHET_CLIENT_*``), and
prints what it did. Workers run the same pass on their own.

``ui`` serves the dashboard (``pip install mageflow[ui]``; see
``docs/dashboard.md``) on 127.0.0.1 until Ctrl-C. Its controls are off
unless ``--allow-control``; resume and retry start runs on the engine of
``HATCHET_CLIENT_*``, and without one only pause, stop and remove work.

Exit status: 0 done, 1 not found / corrupt / Redis or engine unreachable /
output file not writable, 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from redis.exceptions import RedisClusterException, RedisError

from mageflow.client import Mageflow
from mageflow.engine.recovery import RecoveryReport
from mageflow.errors import (
    CorruptSignatureError,
    DashboardExposedError,
    SignatureNotFoundError,
)
from mageflow.graph import to_dot, to_mermaid, to_svg
from mageflow.store import RedisConnection, SignatureStore
from mageflow.store.connection import REDIS_URL_ENV
from mageflow.testing import offline_hatchet
from mageflow.tree import TreeNode, build_tree
from mageflow.ttl import TTLConfig

_UI_MISSING: ImportError | None = None
"""Why the dashboard cannot be served, when its extra is not installed."""
try:
    from mageflow.ui import Access, serve
except ImportError as exc:  # mageflow[ui] is an extra: every other command works
    _UI_MISSING = exc

UI_TOKEN_ENV = "MAGEFLOW_UI_TOKEN"

FORMATS = ("text", "json", "svg", "mermaid", "dot")
"""What ``inspect --format`` can print."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mageflow",
        description="mageflow command-line tools.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser(
        "inspect",
        help="print the tree of a stored signature, chain or swarm",
        description="Print a stored workflow as a tree: each signature's "
        "status, task, kwargs and outcome, and what it links to.",
    )
    inspect.add_argument("signature_id", help="the id of the signature to show")
    inspect.add_argument(
        "--redis-url",
        default=None,
        help=f"the Redis to read (default: ${REDIS_URL_ENV}; "
        "redis+cluster://host:port for a Redis Cluster)",
    )
    inspect.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (the default), json, or a picture: svg, mermaid or dot",
    )
    inspect.add_argument(
        "--json",
        action="store_const",
        const="json",
        dest="format",
        default=argparse.SUPPRESS,
        help="short for --format json",
    )
    inspect.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        default=None,
        help="write to FILE instead of stdout",
    )
    inspect.add_argument(
        "--no-outcomes",
        action="store_true",
        help="leave results and errors out of the text tree",
    )
    ui = commands.add_parser(
        "ui",
        help="serve the dashboard: every workflow as a live graph",
        description="A local web dashboard over the Redis the workers use "
        "(needs `pip install mageflow[ui]`). See docs/dashboard.md.",
    )
    ui.add_argument(
        "--redis-url",
        default=None,
        help=f"the Redis to show (default: ${REDIS_URL_ENV}; "
        "redis+cluster://host:port for a Redis Cluster)",
    )
    ui.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default 127.0.0.1; any other needs a token)",
    )
    ui.add_argument("--port", type=int, default=8765, help="default 8765")
    ui.add_argument(
        "--allow-control",
        action="store_true",
        help="offer pause, resume, stop, retry and remove (behind a token)",
    )
    ui.add_argument(
        "--token",
        default=os.environ.get(UI_TOKEN_ENV) or None,
        help=f"the token every request must carry (default: ${UI_TOKEN_ENV}; "
        "with --allow-control and none given, a random one)",
    )
    recover = commands.add_parser(
        "recover",
        help="drive stuck workflows to their end, once",
        description="One recovery pass: re-send owed callbacks and starts, "
        "and take over signatures whose worker is gone. Triggers go to the "
        "Hatchet engine configured by HATCHET_CLIENT_* in the environment.",
    )
    recover.add_argument(
        "--redis-url",
        default=None,
        help=f"the Redis to recover (default: ${REDIS_URL_ENV}; "
        "redis+cluster://host:port for a Redis Cluster)",
    )
    recover.add_argument(
        "--grace",
        type=float,
        default=None,
        metavar="SECONDS",
        help="act on what is this many seconds overdue (default: the "
        "configured grace and lease expiry; 0: everything now)",
    )
    return parser


async def _recover(url: str, grace: float | None) -> RecoveryReport:
    client = Mageflow(redis_client=url)
    try:
        return await client.recover(None if grace is None else timedelta(seconds=grace))
    finally:
        await client.store.connection.aclose()


def _as_json(node: TreeNode) -> dict[str, Any]:
    data = dataclasses.asdict(node)
    data["duration"] = node.duration
    data["children"] = [_as_json(child) for child in node.children]
    return data


_PICTURES: dict[str, Callable[[TreeNode], str]] = {
    "svg": to_svg,
    "mermaid": to_mermaid,
    "dot": to_dot,
}


def _render(tree: TreeNode, form: str, outcomes: bool) -> str:
    """The tree in ``form`` (one of :data:`FORMATS`), ending in a newline."""
    if form == "json":
        return json.dumps(_as_json(tree), indent=2, default=str) + "\n"
    if form == "text":
        return tree.render(outcomes=outcomes) + "\n"
    return _PICTURES[form](tree).rstrip("\n") + "\n"


async def _inspect(url: str, signature_id: str) -> TreeNode:
    # Only the store: reading Redis needs no Hatchet client and no engine.
    connection = RedisConnection(url)
    try:
        return await build_tree(SignatureStore(connection, TTLConfig()), signature_id)
    finally:
        await connection.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    url = args.redis_url or os.environ.get(REDIS_URL_ENV)
    if not url:
        print(
            f"mageflow {args.command}: no Redis to use: set {REDIS_URL_ENV} or "
            "pass --redis-url (e.g. redis://localhost:6379/0, or "
            "redis+cluster://host:port of any node of a Redis Cluster).",
            file=sys.stderr,
        )
        return 2
    if args.command == "recover":
        return _run_recover(url, args.grace)
    if args.command == "ui":
        return _run_ui(url, args)
    try:
        tree = asyncio.run(_inspect(url, args.signature_id))
    except (SignatureNotFoundError, CorruptSignatureError) as exc:
        print(f"mageflow inspect: {exc}", file=sys.stderr)
        return 1
    except (RedisError, RedisClusterException, OSError, ValueError) as exc:
        print(
            f"mageflow inspect: cannot read Redis at {url}: "
            f"{type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 1
    rendered = _render(tree, args.format, outcomes=not args.no_outcomes)
    if args.output is None:
        sys.stdout.write(rendered)
        return 0
    try:
        with open(args.output, "w", encoding="utf-8") as file:
            file.write(rendered)
    except OSError as exc:
        print(f"mageflow inspect: cannot write {args.output}: {exc}", file=sys.stderr)
        return 1
    return 0


def _run_recover(url: str, grace: float | None) -> int:
    try:
        report = asyncio.run(_recover(url, grace))
    except (RedisError, RedisClusterException, OSError, ValueError) as exc:
        print(
            f"mageflow recover: cannot reach Redis at {url}: "
            f"{type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 1
    except Exception as exc:  # the engine: no token, unreachable, refused
        print(
            f"mageflow recover: the Hatchet engine failed ({type(exc).__name__}: "
            f"{exc}). Set HATCHET_CLIENT_TOKEN (and HATCHET_CLIENT_HOST_PORT) "
            "for the engine the workers use.",
            file=sys.stderr,
        )
        return 1
    print(f"mageflow recover: {report}")
    return 0


async def _ping(url: str) -> None:
    connection = RedisConnection(url)
    try:
        await connection.client.ping()
    finally:
        await connection.aclose()


def _run_ui(url: str, args: argparse.Namespace) -> int:
    if _UI_MISSING is not None:
        print(
            f"mageflow ui: the dashboard is not installed ({_UI_MISSING}): "
            "pip install 'mageflow[ui]'",
            file=sys.stderr,
        )
        return 1
    try:
        access = Access.for_host(
            args.host, token=args.token, allow_control=args.allow_control
        )
    except DashboardExposedError as exc:
        print(f"mageflow ui: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_ping(url))
    except (RedisError, RedisClusterException, OSError, ValueError) as exc:
        print(
            f"mageflow ui: cannot reach Redis at {url}: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 1
    # Resume and retry start runs: on the engine the environment names, or,
    # with none, on one that is never reached (they then say so).
    hatchet = None if os.environ.get("HATCHET_CLIENT_TOKEN") else offline_hatchet()
    client = Mageflow(hatchet, redis_client=url)
    with contextlib.suppress(KeyboardInterrupt):
        serve(client, access, host=args.host, port=args.port)
    return 0
