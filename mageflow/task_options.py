"""The options of Hatchet's task decorators, typed once for mageflow's.

``client.task(...)`` and ``client.durable_task(...)`` take exactly what
``Hatchet.task`` and ``Hatchet.durable_task`` take and pass it through. The
``TypedDict`` s give type checkers and editors each option's type; the name
sets are read from Hatchet itself, so an unknown option fails where it is
written, as it would with Hatchet. ``input_validator`` and ``cron_input`` are
not here: the overloads type them, because they decide the task's input type.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from hatchet_sdk import Hatchet
from hatchet_sdk.runnables.eviction import EvictionPolicy
from hatchet_sdk.runnables.types import DefaultFilter
from hatchet_sdk.types.concurrency import ConcurrencyExpression
from hatchet_sdk.types.idempotency import (
    StatusBasedIdempotencyConfig,
    TTLBasedIdempotencyConfig,
)
from hatchet_sdk.types.labels import DesiredWorkerLabel
from hatchet_sdk.types.priority import Priority
from hatchet_sdk.types.rate_limit import RateLimit
from hatchet_sdk.types.sticky import StickyStrategy
from hatchet_sdk.utils.typing import JSONSerializableMapping
from typing_extensions import TypedDict


class _CommonOptions(TypedDict, total=False):
    name: str | None
    description: str | None
    on_events: list[str] | None
    on_crons: list[str] | None
    version: str | None
    sticky: StickyStrategy | None
    default_priority: int | Priority
    concurrency: int | ConcurrencyExpression | Sequence[ConcurrencyExpression] | None
    schedule_timeout: timedelta | str
    execution_timeout: timedelta | str
    retries: int
    rate_limits: list[RateLimit] | None
    desired_worker_labels: (
        dict[str, DesiredWorkerLabel] | list[DesiredWorkerLabel] | None
    )
    backoff_factor: float | None
    backoff_max_seconds: int | None
    default_filters: list[DefaultFilter] | None
    default_additional_metadata: JSONSerializableMapping | None
    idempotency: TTLBasedIdempotencyConfig | StatusBasedIdempotencyConfig | None


class TaskOptions(_CommonOptions, total=False):
    """The options of ``Hatchet.task`` (besides the input's)."""

    slot_cost: int | None


class DurableTaskOptions(_CommonOptions, total=False):
    """The options of ``Hatchet.durable_task`` (besides the input's)."""

    eviction_policy: EvictionPolicy | None


def _option_names(method: Any) -> frozenset[str]:
    return frozenset(inspect.signature(method).parameters) - {"self"}


TASK_OPTION_NAMES = _option_names(Hatchet.task)
DURABLE_TASK_OPTION_NAMES = _option_names(Hatchet.durable_task)


def check_options(
    decorator: str, options: dict[str, Any], known: frozenset[str]
) -> None:
    """Raise ``TypeError`` for options Hatchet's ``decorator`` does not take."""
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(
            f"{decorator}() got unexpected option(s) {', '.join(unknown)}; it "
            f"accepts what Hatchet's {decorator}() accepts: {', '.join(sorted(known))}."
        )
