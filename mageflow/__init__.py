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
from mageflow.functions import (
    chain,
    load_signature,
    pause,
    remove,
    resume,
    sign,
    stop,
    swarm,
)
from mageflow.params import AcceptParams
from mageflow.signature import (
    ChainSignature,
    SignatureStatus,
    SwarmSignature,
    TaskSignature,
)
from mageflow.ttl import TTLConfig

__all__ = [
    "DEFAULT_RESULT_FIELD",
    "AcceptParams",
    "ChainSignature",
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
    "SwarmSignature",
    "TTLConfig",
    "TaskError",
    "TaskSignature",
    "UnknownTaskError",
    "UnresolvedAnnotationError",
    "chain",
    "load_signature",
    "pause",
    "remove",
    "resume",
    "sign",
    "stop",
    "swarm",
]
