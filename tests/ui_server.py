"""The dashboard served the way ``mageflow ui`` serves it, for tests.

uvicorn on a free loopback port, in the test's own event loop, so the app,
the local backend's runs and the test share one loop and one Redis client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import uvicorn

from mageflow import HatchetMageflow, ui
from mageflow.ui import Access

Serve = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def serve(local: HatchetMageflow) -> AsyncIterator[Serve]:
    """``await serve(access, **options)``: the dashboard on a free loopback
    port, and an httpx client pointed at it."""
    running: list[tuple[uvicorn.Server, asyncio.Task[None], httpx.AsyncClient]] = []

    async def start(access: Access | None = None, **options: Any) -> httpx.AsyncClient:
        server = ui.server(local, access or Access(), **options)
        sock = ui.bind("127.0.0.1", 0)  # listening already: no wait for uvicorn
        task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        port = sock.getsockname()[1]
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
        running.append((server, task, http))
        return http

    yield start
    for server, task, http in running:
        await http.aclose()
        server.should_exit = True
        await asyncio.wait_for(task, 10)
