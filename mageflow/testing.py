"""Helpers for running mageflow tasks in-process, without a Hatchet engine.

Hatchet's ``aio_mock_run`` builds a real ``Context`` and calls a task in the
current process, but it still needs a ``Hatchet`` client, and a client needs a
token. :func:`offline_hatchet` makes one whose token points at a closed
loopback port: everything in-process works, and anything that would reach an
engine fails at once instead of hanging. For development and tests only;
production runs on a real Hatchet engine.
"""

from __future__ import annotations

import base64
import json

from hatchet_sdk import ClientConfig, Hatchet

_OFFLINE_ADDRESS = "127.0.0.1:9"  # the discard port: nothing listens there


def offline_token(tenant_id: str = "00000000-0000-0000-0000-000000000000") -> str:
    """A JWT-shaped token that names a tenant and an unreachable engine."""

    def part(data: dict[str, str]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    claims = {
        "sub": tenant_id,
        "server_url": f"http://{_OFFLINE_ADDRESS}",
        "grpc_broadcast_address": _OFFLINE_ADDRESS,
    }
    return f"{part({'alg': 'none'})}.{part(claims)}.offline"


def offline_hatchet() -> Hatchet:
    """A real ``Hatchet`` client that never reaches an engine."""
    return Hatchet(
        config=ClientConfig(
            token=offline_token(),
            server_url=f"http://{_OFFLINE_ADDRESS}",
            host_port=_OFFLINE_ADDRESS,
        )
    )
