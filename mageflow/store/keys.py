"""The Redis key layout, in one place.

Every key mageflow writes is built here, so the layout can be read (and
changed) at a glance, and nothing else in the package spells a key by hand.
All keys share one prefix, so ``SCAN MATCH mageflow:*`` finds all of them.

**Shards.** Every key carries a Redis Cluster hash tag, ``{...}``, naming
one of :data:`SHARDS` shards. Keys of one shard hash to one slot, so a
script may touch several of them on a cluster as on a single server. A
signature's shard is named by the first character of its id
(:func:`shard_of`); signatures made *from* another one (its callbacks given
as task names, a chain's steps, a swarm's items, what a task signs while it
runs) get ids that start with the same character, so a workflow's records,
its bookkeeping and its recovery indexes live in one slot. The tags are
chosen so the shards' slots are evenly spaced over the 16384 slots: a
cluster whose masters hold even slot ranges holds even shares of shards.

The single-server layout is the same: one layout, whatever the deployment.
"""

from __future__ import annotations

import enum
import string

PREFIX = "mageflow"

SCHEMA_VERSION = "2"
"""Written into every record as field ``v``; a record without it is not
ours. ``1`` was the layout before shards (``mageflow:sig:<id>``)."""

SHARDS = 16
"""How many shards the keys are spread over (one per hex digit)."""

TAGS = (
    "0ax", "1oy", "2cx", "3bx", "4ex", "5zz", "6yz", "7xz",
    "8wz", "9vz", "aoo", "bed", "cli", "dcd", "eko", "fad",
)  # fmt: skip
"""Shard *n*'s hash tag: it starts with *n*'s hex digit, and its slot lies
in the *n*-th sixteenth of the slot space (checked by the tests)."""

_HEX = {digit: int(digit, 16) for digit in string.hexdigits}


def shard_of(signature_id: str) -> int:
    """The shard a signature's keys live in: its id's first character (a
    hex digit names its shard; any other character is folded onto one)."""
    if not signature_id:
        return 0
    first = signature_id[0]
    shard = _HEX.get(first)
    return ord(first) % SHARDS if shard is None else shard


def placed_near(new_id: str, near: str) -> str:
    """``new_id`` moved into ``near``'s shard (its first character replaced
    by ``near``'s), so the two can change in one script on a cluster."""
    if not near or not new_id:
        return new_id
    return near[0] + new_id[1:]


def _base(shard: int) -> str:
    return f"{PREFIX}:{{{TAGS[shard]}}}:"


def signature(signature_id: str) -> str:
    """The hash holding one signature (a task, chain or swarm)."""
    return f"{_base(shard_of(signature_id))}sig:{signature_id}"


SIGNATURE_MATCH = f"{PREFIX}:{{*}}:sig:*"
"""A ``SCAN MATCH`` pattern for every signature's key, in every shard."""


def signature_id_of(key: str) -> str:
    """The signature id a signature's key holds (see :func:`signature`)."""
    return key.rpartition(":sig:")[2]


def legacy_signature(signature_id: str) -> str:
    """Where schema ``1`` kept a signature, before shards: only read, to
    tell a user that a record of the old layout is there."""
    return f"{PREFIX}:sig:{signature_id}"


def done_channel(signature_id: str) -> str:
    """The pub/sub channel a signature's end is announced on (its final
    status), for whoever waits for it. Channels are not keys: on a cluster
    a ``PUBLISH`` reaches every node."""
    return f"{PREFIX}:done:{signature_id}"


def _swarm(swarm_id: str, part: str) -> str:
    return f"{_base(shard_of(swarm_id))}swarm:{swarm_id}:{part}"


def swarm_queue(swarm_id: str) -> str:
    """The list of a swarm's items that are waiting for a free slot."""
    return _swarm(swarm_id, "queue")


def swarm_results(swarm_id: str) -> str:
    """The hash of a swarm's finished items: position -> outcome JSON."""
    return _swarm(swarm_id, "results")


def swarm_items(swarm_id: str) -> str:
    """The list of a swarm's item ids, in the order they were added."""
    return _swarm(swarm_id, "items")


def swarm_running(swarm_id: str) -> str:
    """The set of a swarm's items that hold a slot."""
    return _swarm(swarm_id, "running")


def swarm_next(swarm_id: str) -> str:
    """The hash position -> the item that position's finish started."""
    return _swarm(swarm_id, "next")


def swarm_starts(swarm_id: str) -> str:
    """The hash item id -> what starting that queued item needs (its kind,
    task, kwargs, return field, message): the swarm starts its items without
    reading their records, which may live in another shard."""
    return _swarm(swarm_id, "starts")


def swarm_positions(swarm_id: str) -> str:
    """The hash item id -> its position in the swarm (the order it was added)."""
    return _swarm(swarm_id, "pos")


def swarm_aux(swarm_id: str) -> list[str]:
    """Every key of a swarm besides its record, for scripts that expire them."""
    return [
        swarm_items(swarm_id),
        swarm_queue(swarm_id),
        swarm_running(swarm_id),
        swarm_results(swarm_id),
        swarm_next(swarm_id),
        swarm_starts(swarm_id),
        swarm_positions(swarm_id),
    ]


# --- indexes that recovery scans ----------------------------------------------
# Each shard has its own. Sorted sets of signature ids, scored by the time
# (ms since the epoch) an entry becomes overdue. Each entry is added by the
# script that creates the obligation and removed by the one that meets it, so
# the sets only ever hold what is owed right now; recovery drops entries whose
# record is gone. An entry usually names a signature of its own shard; one
# that names another shard's is a debt across slots (see mageflow.store.scripts).


class Index(enum.Enum):
    """The indexes every shard has."""

    DUE = "due"
    """Signatures that were decided to start and have not been activated yet."""

    OWED = "owed"
    """Finished signatures whose callbacks / container were not all told yet."""

    LEASES = "leases"
    """Active signatures, scored by when their holder's lease runs out."""

    ROOTS = "roots"
    """Workflows started from outside any workflow, scored by when they were
    started (µs since the epoch): what the dashboard lists. Bounded
    (:data:`ROOTS_LIMIT` per shard, oldest dropped first) and trimmed to a
    record's lifetime on every start; entries whose record expired sooner are
    skipped by the reader."""


def index(which: Index, shard: int) -> str:
    """Shard ``shard``'s index ``which``."""
    return f"{_base(shard)}idx:{which.value}"


def index_of(which: Index, signature_id: str) -> str:
    """The index ``which`` of ``signature_id``'s shard."""
    return index(which, shard_of(signature_id))


def due_messages(shard: int) -> str:
    """The hash id -> message of the starts owed in shard ``shard``'s
    :attr:`Index.DUE`: what recovery sends again."""
    return f"{_base(shard)}idx:dmsg"


ROOTS_LIMIT = 10_000
"""The most roots one shard's :attr:`Index.ROOTS` lists at once."""
