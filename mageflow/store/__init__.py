"""Where signatures live: the key layout, the Lua scripts, the codec and the store.

:class:`SignatureStore` is the only way in: one method, one round trip, and
replies as the typed values of :mod:`mageflow.store.replies`.
"""

from mageflow.store.connection import RedisConnection
from mageflow.store.replies import (
    Activation,
    ActivationVerdict,
    BadTarget,
    CallbackTarget,
    Finish,
    FinishVerdict,
    Handover,
    HandoverVerdict,
    Requeue,
    Reset,
    ResumeVerdict,
    Resumption,
    RootVerdict,
    SwarmStep,
    SwarmVerdict,
    Transition,
)
from mageflow.store.signatures import SignatureStore

__all__ = [
    "Activation",
    "ActivationVerdict",
    "BadTarget",
    "CallbackTarget",
    "Finish",
    "FinishVerdict",
    "Handover",
    "HandoverVerdict",
    "RedisConnection",
    "Requeue",
    "Reset",
    "ResumeVerdict",
    "Resumption",
    "RootVerdict",
    "SignatureStore",
    "SwarmStep",
    "SwarmVerdict",
    "Transition",
]
