"""The Redis key layout, in one place.

Every key mageflow writes is built here, so the layout can be read (and
changed) at a glance, and nothing else in the package spells a key by hand.
All keys share one prefix, so ``SCAN MATCH mageflow:*`` finds all of them.
"""

from __future__ import annotations

PREFIX = "mageflow"

SCHEMA_VERSION = "1"
"""Written into every record as field ``v``; a record without it is not ours."""


def signature(signature_id: str) -> str:
    """The hash holding one signature (a task, chain or swarm)."""
    return f"{PREFIX}:sig:{signature_id}"


def done_channel(signature_id: str) -> str:
    """The pub/sub channel a signature's end is announced on (its final
    status), for whoever waits for it."""
    return f"{PREFIX}:done:{signature_id}"


def swarm_queue(swarm_id: str) -> str:
    """The list of a swarm's items that are waiting for a free slot."""
    return f"{PREFIX}:swarm:{swarm_id}:queue"


def swarm_results(swarm_id: str) -> str:
    """The hash of a swarm's finished items: position -> outcome JSON."""
    return f"{PREFIX}:swarm:{swarm_id}:results"


def swarm_items(swarm_id: str) -> str:
    """The list of a swarm's item ids, in the order they were added."""
    return f"{PREFIX}:swarm:{swarm_id}:items"


def swarm_running(swarm_id: str) -> str:
    """The set of a swarm's items that hold a slot."""
    return f"{PREFIX}:swarm:{swarm_id}:running"


def swarm_next(swarm_id: str) -> str:
    """The hash position -> the item that position's finish started."""
    return f"{PREFIX}:swarm:{swarm_id}:next"


def swarm_aux(swarm_id: str) -> list[str]:
    """Every key of a swarm besides its record, for scripts that expire them."""
    return [
        swarm_items(swarm_id),
        swarm_queue(swarm_id),
        swarm_running(swarm_id),
        swarm_results(swarm_id),
        swarm_next(swarm_id),
    ]


# --- indexes that recovery scans ----------------------------------------------
# Sorted sets of signature ids, scored by the time (ms since the epoch) an
# entry becomes overdue. Each entry is added by the script that creates the
# obligation and removed by the one that meets it, so the sets only ever hold
# what is owed right now; recovery drops entries whose record is gone.

DUE = f"{PREFIX}:idx:due"
"""Signatures that were decided to start and have not been activated yet."""

OWED = f"{PREFIX}:idx:owed"
"""Finished signatures whose callbacks / container were not all told yet."""

LEASES = f"{PREFIX}:idx:leases"
"""Active signatures, scored by when their holder's lease runs out."""

ROOTS = f"{PREFIX}:idx:roots"
"""Workflows started from outside any workflow, scored by when they were
started (µs since the epoch): what the dashboard lists. Bounded
(:data:`ROOTS_LIMIT`, oldest dropped first) and trimmed to a record's
lifetime on every start; entries whose record expired sooner are skipped by
the reader."""

ROOTS_LIMIT = 10_000
"""The most roots :data:`ROOTS` lists at once."""
