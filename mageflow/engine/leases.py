"""Holding signatures while they run: the lease keeper of one process.

An attempt that activates a signature holds it under a token, with a lease
(``TTLConfig.lease``) recorded next to it in Redis. While the attempt runs,
this keeper renews the leases of every signature the process holds, all in
one round trip every third of the lease. A process that dies, or freezes,
stops renewing: its leases run out, and another attempt (Hatchet's
re-delivery, or recovery) may take the signature over. The token makes the
old holder harmless when it wakes up: only the current holder may record an
outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid

from mageflow.store import SignatureStore

logger = logging.getLogger("mageflow")


_PROCESS = f"{socket.gethostname()}:{os.getpid()}"


def new_token() -> str:
    """A holder token: unique for each attempt, and naming the process
    (host and pid) that runs it, for whoever reads the record."""
    pid = os.getpid()  # a forked child is another holder
    process = (
        _PROCESS if _PROCESS.endswith(f":{pid}") else f"{socket.gethostname()}:{pid}"
    )
    return f"{process}:{uuid.uuid4().hex}"


class LeaseKeeper:
    """Renews the leases this process holds, in the background."""

    def __init__(self, store: SignatureStore) -> None:
        self._store = store
        self._held: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._renewed_at = 0.0

    def _since_renewal(self) -> float:
        return asyncio.get_running_loop().time() - self._renewed_at

    def holds(self, signature_id: str) -> bool:
        """Whether an attempt in this process holds ``signature_id`` now."""
        return signature_id in self._held

    def hold(self, signature_id: str, token: str) -> None:
        """Keep renewing ``signature_id``'s lease for ``token``."""
        self._held[signature_id] = token
        task = self._task
        if task is None or task.done():
            self._wake = asyncio.Event()
            # The hold was just taken (with a fresh lease): renew a full
            # interval from now.
            self._renewed_at = asyncio.get_running_loop().time()
            self._task = asyncio.get_running_loop().create_task(
                self._renew_while_held(), name="mageflow-lease-keeper"
            )

    def drop(self, signature_id: str, token: str) -> None:
        """The attempt ended: stop renewing its lease."""
        if self._held.get(signature_id) == token:
            del self._held[signature_id]
        if not self._held:
            self._wake.set()

    async def aclose(self) -> None:
        """Stop renewing (the process is shutting down)."""
        self._held.clear()
        self._wake.set()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _renew_while_held(self) -> None:
        interval = self._store.ttl.lease.total_seconds() / 3
        while self._held:
            with contextlib.suppress(asyncio.TimeoutError):
                wait = max(0.0, interval - self._since_renewal())
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()
            if not self._held:
                return
            if self._since_renewal() < interval:
                continue  # woken early by a drop: wait out the rest
            held = list(self._held.items())
            self._renewed_at = asyncio.get_running_loop().time()
            try:
                still = await self._store.renew(held)
            except Exception:  # Redis away: the next round tries again
                logger.warning("mageflow: could not renew leases", exc_info=True)
                continue
            for signature_id, token in held:
                if signature_id not in still:
                    # Taken over (or finished): this attempt no longer holds it.
                    self.drop(signature_id, token)
