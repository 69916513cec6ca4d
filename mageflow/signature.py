"""``TaskSignature``: one stored, resumable task call.

This module holds the model only. Storing, loading and running signatures
builds on it; until a run is started from a signature, its tasks see ``None``
where they ask for ``TaskSignature | None``.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SignatureStatus(str, enum.Enum):
    """Where a signature is in its life. It only ever moves forward."""

    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    INTERRUPTED = "interrupted"
    CANCELED = "canceled"
    DONE = "done"
    FAILED = "failed"


def _new_id() -> str:
    return uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(timezone.utc)


class TaskSignature(BaseModel):
    """A task call with bound inputs, callbacks and a status.

    Only JSON and a task name are stored: nothing in a signature is ever
    imported or executed when it is read back.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=_new_id)
    task_name: str
    kwargs: dict[str, Any] = Field(default_factory=dict)
    task_identifiers: dict[str, Any] = Field(default_factory=dict)
    success_callbacks: list[str] = Field(default_factory=list)
    error_callbacks: list[str] = Field(default_factory=list)
    status: SignatureStatus = SignatureStatus.PENDING
    created_at: datetime = Field(default_factory=_now)
    container_id: str | None = None
