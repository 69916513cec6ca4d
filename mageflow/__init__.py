"""mageflow: type-driven injection and Redis-stored workflows on top of Hatchet.

The public API is what this module exports; everything else is internal.
"""

from mageflow.client import HatchetMageflow, Mageflow
from mageflow.errors import (
    InjectionError,
    MageflowError,
    MissingSignatureError,
    RedisNotConfiguredError,
    UnresolvedAnnotationError,
)
from mageflow.params import AcceptParams
from mageflow.signature import SignatureStatus, TaskSignature

__all__ = [
    "AcceptParams",
    "HatchetMageflow",
    "InjectionError",
    "Mageflow",
    "MageflowError",
    "MissingSignatureError",
    "RedisNotConfiguredError",
    "SignatureStatus",
    "TaskSignature",
    "UnresolvedAnnotationError",
]
