"""The dashboard's HTML, from Jinja templates with escaping always on.

Everything a page shows from Redis (task names, ids, kwargs, outcomes,
tracebacks) is untrusted: a ``<script>`` in a task's input must render as
text. So autoescaping is on for every template, no template marks stored
text ``|safe``, and the only markup inserted unescaped is the graph, which
:func:`mageflow.graph.to_svg` builds with every stored value escaped. The
app adds a Content-Security-Policy that allows no inline script on top.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from mageflow.graph import STATUS_ICONS
from mageflow.tree import FINAL

STATUSES = (
    "pending",
    "active",
    "suspended",
    "done",
    "failed",
    "canceled",
    "interrupted",
)
"""The statuses the list can be filtered by, in lifecycle order."""


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def _age(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return ""
    now = now or datetime.now(timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    seconds = max(0.0, (now - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def _took(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _error(outcome: Any) -> dict[str, Any] | None:
    """The ``TaskError`` fields of a failed node's outcome, if it is one."""
    if isinstance(outcome, dict) and "error_type" in outcome and "message" in outcome:
        return outcome
    return None


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("mageflow.ui", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pretty"] = _pretty
    env.filters["age"] = _age
    env.filters["took"] = _took
    env.globals.update(
        statuses=STATUSES,
        final=FINAL,
        icons=STATUS_ICONS,
        task_error=_error,
    )
    return env


def trusted_svg(svg: str) -> Markup:
    """The graph, marked as markup: :mod:`mageflow.graph` escaped every
    stored value in it already."""
    return Markup(svg)
