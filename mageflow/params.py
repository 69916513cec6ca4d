"""``AcceptParams``: the client-wide default for what unannotated parameters get."""

from __future__ import annotations

import enum


class AcceptParams(enum.Enum):
    """What a task's *unannotated* parameters receive, client-wide.

    Annotated parameters (``ctx: Context``, ``sig: TaskSignature``,
    ``Annotated[T, Depends(fn)]``) always get what they ask for; this setting
    only decides the extras, and it delivers them only to parameters that can
    take them, so one setting fits every task of a client.
    """

    NO_CTX = "no_ctx"
    """Only what annotations ask for. The default."""

    CTX_ONLY = "ctx_only"
    """Hatchet style: the second positional parameter receives the run context
    even without an annotation."""

    ALL = "all"
    """``CTX_ONLY``, plus the task's signature to an unannotated parameter named
    ``signature``."""
