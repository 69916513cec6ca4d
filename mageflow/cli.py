"""``python -m mageflow``: command-line tools.

``inspect <signature-id>`` prints the tree of a stored workflow (the
signature, its status, task, kwargs, outcome and callbacks, and a
container's children) from the Redis at ``REDIS_URL`` or ``--redis-url``.
It only reads, so it works whichever backend ran the workflow.

``recover`` runs one recovery pass (see ``docs/reliability.md``) against the
Redis and the Hatchet engine of the environment (``HATCHET_CLIENT_*``), and
prints what it did. Workers run the same pass on their own.

Exit status: 0 done, 1 not found / corrupt / Redis or engine unreachable,
2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from redis.exceptions import RedisError

from mageflow.client import Mageflow
from mageflow.engine.recovery import RecoveryReport
from mageflow.errors import CorruptSignatureError, SignatureNotFoundError
from mageflow.store import RedisConnection, SignatureStore
from mageflow.store.connection import REDIS_URL_ENV
from mageflow.tree import TreeNode, build_tree
from mageflow.ttl import TTLConfig


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
        help=f"the Redis to read (default: ${REDIS_URL_ENV})",
    )
    inspect.add_argument(
        "--json", action="store_true", help="print the tree as JSON instead"
    )
    inspect.add_argument(
        "--no-outcomes",
        action="store_true",
        help="leave results and errors out of the text tree",
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
        help=f"the Redis to recover (default: ${REDIS_URL_ENV})",
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
            "pass --redis-url (e.g. redis://localhost:6379/0).",
            file=sys.stderr,
        )
        return 2
    if args.command == "recover":
        return _run_recover(url, args.grace)
    try:
        tree = asyncio.run(_inspect(url, args.signature_id))
    except (SignatureNotFoundError, CorruptSignatureError) as exc:
        print(f"mageflow inspect: {exc}", file=sys.stderr)
        return 1
    except (RedisError, OSError, ValueError) as exc:
        print(
            f"mageflow inspect: cannot read Redis at {url}: "
            f"{type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps(_as_json(tree), indent=2, default=str))
    else:
        print(tree.render(outcomes=not args.no_outcomes))
    return 0


def _run_recover(url: str, grace: float | None) -> int:
    try:
        report = asyncio.run(_recover(url, grace))
    except (RedisError, OSError, ValueError) as exc:
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
