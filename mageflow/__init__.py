"""mageflow: type-driven injection and Redis-stored workflows on top of Hatchet.

The public API is what this module exports; everything else is internal.
"""

from mageflow.callbacks import DEFAULT_RESULT_FIELD, ReturnValue, TaskError
from mageflow.client import HatchetMageflow, Mageflow
from mageflow.errors import (
    CorruptSignatureError,
    InjectionError,
    InputConflictError,
    InvalidTransitionError,
    MageflowError,
    MissingSignatureError,
    NoClientError,
    RedisNotConfiguredError,
    SignatureNotBoundError,
    SignatureNotFoundError,
    UnknownTaskError,
    UnresolvedAnnotationError,
)
from mageflow.functions import load_signature, pause, remove, resume, sign, stop
from mageflow.params import AcceptParams
from mageflow.signature import SignatureStatus, TaskSignature
from mageflow.ttl import TTLConfig

__all__ = [
    "DEFAULT_RESULT_FIELD",
    "AcceptParams",
    "CorruptSignatureError",
    "HatchetMageflow",
    "InjectionError",
    "InputConflictError",
    "InvalidTransitionError",
    "Mageflow",
    "MageflowError",
    "MissingSignatureError",
    "NoClientError",
    "RedisNotConfiguredError",
    "ReturnValue",
    "SignatureNotBoundError",
    "SignatureNotFoundError",
    "SignatureStatus",
    "TTLConfig",
    "TaskError",
    "TaskSignature",
    "UnknownTaskError",
    "UnresolvedAnnotationError",
    "load_signature",
    "pause",
    "remove",
    "resume",
    "sign",
    "stop",
]
