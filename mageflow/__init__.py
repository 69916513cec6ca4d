"""mageflow: type-driven injection and Redis-stored workflows on top of Hatchet.

The public API is what this module exports; everything else is internal.
"""

from mageflow.callbacks import DEFAULT_RESULT_FIELD, ReturnValue, RootResult, TaskError
from mageflow.client import HatchetMageflow, Mageflow
from mageflow.continuation import Continue
from mageflow.engine.recovery import RecoveryReport
from mageflow.engine.root import without_root
from mageflow.errors import (
    ClientConfigError,
    ContinuationError,
    CorruptSignatureError,
    InjectionError,
    InputConflictError,
    InputValidationError,
    InvalidTransitionError,
    MageflowError,
    MissingSignatureError,
    NoClientError,
    RedisNotConfiguredError,
    SignatureCanceledError,
    SignatureFailedError,
    SignatureNotBoundError,
    SignatureNotFoundError,
    UnknownTaskError,
    UnresolvedAnnotationError,
    WaitTimeoutError,
)
from mageflow.functions import (
    chain,
    load_signature,
    pause,
    remove,
    resume,
    retry,
    sign,
    stop,
    swarm,
    wait,
)
from mageflow.params import AcceptParams
from mageflow.signature import (
    CallbackTemplate,
    ChainSignature,
    SignatureStatus,
    SwarmSignature,
    TaskSignature,
)
from mageflow.ttl import TTLConfig

__all__ = [
    "DEFAULT_RESULT_FIELD",
    "AcceptParams",
    "CallbackTemplate",
    "ChainSignature",
    "ClientConfigError",
    "ContinuationError",
    "Continue",
    "CorruptSignatureError",
    "HatchetMageflow",
    "InjectionError",
    "InputConflictError",
    "InputValidationError",
    "InvalidTransitionError",
    "Mageflow",
    "MageflowError",
    "MissingSignatureError",
    "NoClientError",
    "RecoveryReport",
    "RedisNotConfiguredError",
    "ReturnValue",
    "RootResult",
    "SignatureCanceledError",
    "SignatureFailedError",
    "SignatureNotBoundError",
    "SignatureNotFoundError",
    "SignatureStatus",
    "SwarmSignature",
    "TTLConfig",
    "TaskError",
    "TaskSignature",
    "UnknownTaskError",
    "UnresolvedAnnotationError",
    "WaitTimeoutError",
    "chain",
    "load_signature",
    "pause",
    "remove",
    "resume",
    "retry",
    "sign",
    "stop",
    "swarm",
    "wait",
    "without_root",
]
