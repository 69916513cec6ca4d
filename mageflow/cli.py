"""``python -m mageflow``: command-line tools.

``inspect <signature-id>`` prints the tree of a stored workflow (the
signature, its status, task, kwargs, outcome and callbacks, and a
container's children) from the Redis at ``REDIS_URL`` or ``--redis-url``.
It only reads, so it works whichever backend ran the workflow.

Exit status: 0 printed, 1 not found / corrupt / Redis unreachable, 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

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
    return parser


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
            f"mageflow inspect: no Redis to read: set {REDIS_URL_ENV} or pass "
            "--redis-url (e.g. redis://localhost:6379/0).",
            file=sys.stderr,
        )
        return 2
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
