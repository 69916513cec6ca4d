"""Where signatures live: the key layout, the Lua scripts and the store."""

from mageflow.store.signatures import (
    Activation,
    CallbackTarget,
    Finish,
    SignatureStore,
    Verdict,
)

__all__ = ["Activation", "CallbackTarget", "Finish", "SignatureStore", "Verdict"]
