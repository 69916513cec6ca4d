"""The dashboard over the data of workflows run on a real Hatchet engine.

The same app ``mageflow ui`` serves, over the suite's Redis, with the e2e
client (the Hatchet backend) as its controls: the list and the page show a
chain the engine ran, and *retry* pressed on the page makes the engine run
its failed step again.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import AsyncIterator
from types import ModuleType

import httpx
import pytest
import pytest_asyncio
from e2e_helpers import key, status, within

import mageflow
from mageflow import SignatureStatus, ui
from mageflow.ui import Access

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture(autouse=True)
def _worker_alive(worker: subprocess.Popen[bytes]) -> None:
    assert worker.poll() is None, "the e2e worker has exited"


@pytest_asyncio.fixture(loop_scope="session")  # the tests' loop: it serves
async def dashboard(tasks: ModuleType) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    access = Access.for_host("127.0.0.1", allow_control=True)
    assert access.token is not None
    server = ui.server(tasks.mf, access)
    sock = ui.bind("127.0.0.1", 0)
    serving = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    port = sock.getsockname()[1]
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        cookies={"mageflow_token": access.token},
        timeout=10,
    ) as http:
        yield http, access.token
    server.should_exit = True
    await asyncio.wait_for(serving, 10)


async def test_the_page_shows_an_engine_run_and_retry_runs_it_again(
    tasks: ModuleType, dashboard: tuple[httpx.AsyncClient, str]
) -> None:
    http, token = dashboard
    mf = tasks.mf
    chain = await mf.chain(
        [
            await mf.sign(tasks.add, x=2, plus=3),
            await mf.sign(tasks.fails_once, key=key()),
        ]
    )
    with pytest.raises(mageflow.SignatureFailedError):
        await within(chain.aio_run())

    listing = (await http.get("/", params={"status": "failed"})).text
    assert chain.id in re.findall(r'<tr data-id="([^"]+)"', listing)
    page = (await http.get(f"/workflows/{chain.id}")).text
    assert 'data-status="failed"' in page
    assert "the first call fails" in page  # the TaskError, from the engine's run
    assert f'data-id="{chain.steps[0]}"' in page

    retried = await http.post(
        f"/workflows/{chain.id}/retry", headers={"x-mageflow-token": token}
    )
    assert retried.status_code == 200, retried.text
    assert await within(mf.wait(chain.id, timeout=60)) == {
        "calls": 2,
        "got": {"v": 5},
    }
    assert await status(mf, chain.id) is SignatureStatus.DONE
    page = (await http.get(f"/workflows/{chain.id}")).text
    assert 'id="status" class="badge status-done"' in page
