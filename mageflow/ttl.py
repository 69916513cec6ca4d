"""``TTLConfig``: how long mageflow's Redis keys live.

Every key mageflow writes expires, so an abandoned workflow never leaks
memory. A finished signature is only kept long enough to be inspected and to
absorb late duplicate deliveries, so its expiry is shortened when it ends.
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
    """

    active: timedelta = timedelta(hours=24)
    done: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        for name in ("active", "done"):
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
