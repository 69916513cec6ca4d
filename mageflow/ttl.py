"""``TTLConfig``: how long mageflow's Redis keys and promises live.

Every key mageflow writes expires, so an abandoned workflow never leaks
memory. A finished signature is only kept long enough to be inspected and to
absorb late duplicate deliveries, so its expiry is shortened when it ends.

Two shorter durations drive recovery (see ``docs/reliability.md``): how long
a running attempt's hold on its signature lasts without being renewed, and
how long a start or a completion that was decided may take before recovery
sends it again.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta


@dataclasses.dataclass(frozen=True)
class TTLConfig:
    """Expiry of stored signatures.

    :param active: how long a signature lives from creation (24 h by default).
        A workflow that has not finished by then is dropped.
    :param done: how long a signature is kept once it is done, failed,
        canceled or interrupted (1 h by default).
    :param lease: how long a running attempt holds its signature without
        renewing the hold (15 s by default; the holder renews it three times
        in that window). After that another attempt may take it over. Keep
        it below Hatchet's own 30 s worker heartbeat timeout, so a run the
        engine re-delivers from a dead worker finds the hold gone.
    :param grace: how long a decided start (a callback, a chain step, a
        swarm item) may take to begin, and a finished run to fire its
        callbacks, before recovery sends them again (30 s by default).
    """

    active: timedelta = timedelta(hours=24)
    done: timedelta = timedelta(hours=1)
    lease: timedelta = timedelta(seconds=15)
    grace: timedelta = timedelta(seconds=30)

    def __post_init__(self) -> None:
        for name in ("active", "done", "lease", "grace"):
            value = getattr(self, name)
            if not isinstance(value, timedelta) or value <= timedelta(0):
                raise ValueError(
                    f"TTLConfig({name}=...) takes a positive timedelta, got {value!r}."
                )

    @property
    def active_ms(self) -> int:
        return max(1, int(self.active.total_seconds() * 1000))

    @property
    def done_ms(self) -> int:
        return max(1, int(self.done.total_seconds() * 1000))

    @property
    def lease_ms(self) -> int:
        return max(1, int(self.lease.total_seconds() * 1000))

    @property
    def grace_ms(self) -> int:
        return max(0, int(self.grace.total_seconds() * 1000))
