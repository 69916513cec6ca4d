"""The dashboard in a real headless Chromium (Debian's ``chromium``).

Playwright drives the browser the scripts install; it never downloads one.
A chain whose middle step is a 50-item swarm runs on the local backend in
this test's event loop, with its items held at a gate the test opens bit by
bit, so the page has something to watch.

Set ``MAGEFLOW_SCREENSHOT=path.png`` to keep the screenshot (that is how
``docs/img/dashboard.png`` is made).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from playwright.async_api import Browser, Page, async_playwright
from pydantic import BaseModel
from ui_server import Serve, serve

from mageflow import HatchetMageflow
from mageflow.dispatch.local import LocalDispatcher
from mageflow.ui import Access

__all__ = ["serve"]  # the fixture, imported

T = TypeVar("T")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
        reason="no chromium: ./scripts/test installs Debian's",
    ),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


class Row(BaseModel):
    n: int = 0


async def finished_of(page: Page, selector: str) -> int:
    value = await page.get_attribute(selector, "data-finished")
    assert value is not None
    return int(value)


async def eventually(
    read: Callable[[], Awaitable[T]], holds: Callable[[T], bool], timeout: float = 20
) -> T:
    """Read until ``holds(value)``, or fail after ``timeout`` seconds. (The
    page's Content-Security-Policy forbids Playwright's in-page predicates.)"""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await read()
        if holds(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still {value!r} after {timeout}s")
        await asyncio.sleep(0.05)  # ok: a condition poll with a deadline


async def test_watch_a_swarm_in_a_chain_grow_then_pause_it(
    local: HatchetMageflow, serve: Serve, tmp_path: Path
) -> None:
    gate = asyncio.Semaphore(0)

    @local.task(name="load-rows")
    async def load_rows(msg: Row) -> dict[str, int]:
        return {"rows": 50}

    @local.task(name="score-row")
    async def score_row(msg: Row) -> dict[str, int]:
        await gate.acquire()
        return {"score": msg.n * 2}

    @local.task(name="publish")
    async def publish(msg: Row) -> None:
        return None

    items = [await local.sign(score_row, n=n) for n in range(50)]
    swarm = await local.swarm(items, max_concurrency=10)
    chain = await local.chain([load_rows, swarm, publish], name="nightly-scores")
    await chain.aio_run_no_wait({})

    access = Access.for_host("127.0.0.1", allow_control=True)
    http = await serve(access)
    base = str(http.base_url).rstrip("/")
    runs = local.dispatch_backend
    assert isinstance(runs, LocalDispatcher)

    async with async_playwright() as playwright:
        browser: Browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            # The printed address: the token becomes a cookie and leaves the URL.
            await page.goto(f"{base}/?token={access.token}")
            assert "token=" not in page.url
            row = page.locator(f'tr[data-id="{chain.id}"]')
            await row.wait_for()
            assert "nightly-scores" in await row.inner_text()

            await row.locator("a").first.click()
            await page.wait_for_url(f"**/workflows/{chain.id}")
            assert await page.locator("svg g.node").count() >= 4
            swarm_bar = f'nav.items[data-swarm="{swarm.id}"] progress'
            await page.wait_for_selector(swarm_bar)
            before = await finished_of(page, swarm_bar)
            # A mark that a reload would wipe.
            await page.evaluate("window.notReloaded = true")

            for _ in range(15):
                gate.release()
            await eventually(
                lambda: finished_of(page, swarm_bar), lambda n: n >= before + 15
            )
            assert await page.evaluate("window.notReloaded === true")
            grown = await finished_of(page, swarm_bar)
            assert 15 <= grown - before < 50

            await page.click('button[data-action="pause"]')
            await eventually(
                lambda: page.text_content("#control-result"),
                lambda text: "suspended" in (text or ""),
            )
            record = await local.store.load_record(chain.id)
            assert record is not None
            assert record["status"] == "suspended"
            await page.wait_for_selector('#status[data-status="suspended"]')

            shot = Path(os.environ.get("MAGEFLOW_SCREENSHOT") or tmp_path / "page.png")
            await page.screenshot(path=str(shot), full_page=False)
            png = await asyncio.to_thread(shot.read_bytes)
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
            assert len(png) > 10_000
        finally:
            await browser.close()
    # Let the workflow end, so nothing is left running.
    for _ in range(50):
        gate.release()
    await local.stop(chain.id)
    await runs.drain()
