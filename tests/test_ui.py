"""The dashboard's routes, served by uvicorn on loopback over a real Redis.

Each test starts the app the way ``mageflow ui`` does (uvicorn, a real TCP
port), in the test's own event loop, and talks to it with httpx: the list,
a workflow page, the live stream, the controls and their safety rules.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from ui_server import Serve, serve

from mageflow import Continue, HatchetMageflow
from mageflow.cli import main
from mageflow.dispatch.local import LocalDispatcher
from mageflow.errors import DashboardExposedError
from mageflow.store import keys
from mageflow.ui import Access
from mageflow.ui.control import is_loopback

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

__all__ = ["serve"]  # the fixture, imported


class Note(BaseModel):
    note: str = ""


def declare(local: HatchetMageflow) -> dict[str, Any]:
    @local.task(name="echo")
    async def echo(msg: Note) -> dict[str, str]:
        return {"echo": msg.note}

    @local.task(name="boom")
    async def boom(msg: Note) -> None:
        raise ValueError(f"cannot {msg.note}")

    return {"echo": echo, "boom": boom}


async def drain(local: HatchetMageflow) -> None:
    assert isinstance(local.dispatch_backend, LocalDispatcher)
    await local.dispatch_backend.drain()


# --- the list ---------------------------------------------------------------------


async def test_the_list_shows_started_workflows_newest_first_and_filters(
    local: HatchetMageflow, serve: Serve
) -> None:
    tasks = declare(local)
    first = await local.sign(tasks["echo"], note="one")
    chain = await local.chain([tasks["echo"], tasks["echo"]], name="two-steps")
    failing = await local.sign(tasks["boom"], note="fly")
    never = await local.sign(tasks["echo"])  # signed, never started: not listed
    paused = await local.sign(tasks["echo"], note="held")
    await local.pause(paused.id)
    for signature in (first, chain, failing, paused):
        await signature.aio_run_no_wait({})
    await drain(local)

    http = await serve()
    page = (await http.get("/")).text
    listed = re.findall(r'<tr data-id="([^"]+)"', page)
    # Newest first; a chain's steps are part of it, not workflows of their
    # own; a start that waits for a resume is listed too.
    assert listed == [paused.id, failing.id, chain.id, first.id]
    assert 'class="status-suspended"' in page
    assert never.id not in page
    row = page[page.index(f'data-id="{chain.id}"') :].split("</tr>")[0]
    assert "two-steps" in row
    assert ">chain<" in row
    assert "done" in row
    assert 'max="2" value="2"' in row
    assert "2/2" in row

    failed = (await http.get("/", params={"status": "failed"})).text
    assert re.findall(r'<tr data-id="([^"]+)"', failed) == [failing.id]
    by_task = (await http.get("/", params={"task": "two"})).text
    assert re.findall(r'<tr data-id="([^"]+)"', by_task) == [chain.id]
    none = (await http.get("/", params={"task": "zzz"})).text
    assert "No workflows match these filters" in none

    found = await http.get("/find", params={"id": first.id})
    assert found.status_code == 303
    assert found.headers["location"].endswith(f"/workflows/{first.id}")


async def test_the_index_is_bounded_expires_and_forgets_removed_workflows(
    local: HatchetMageflow, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = declare(local)
    monkeypatch.setattr(keys, "ROOTS_LIMIT", 3)
    # Signed before any starts, so all five share a shard: the limit holds
    # per shard.
    signed = [await local.sign(tasks["echo"], note=str(n)) for n in range(5)]
    assert len({keys.shard_of(s.id) for s in signed}) == 1
    started = []
    for signature in signed:
        await signature.aio_run_no_wait({})
        started.append(signature.id)
    await drain(local)
    listed = [m for m, _ in await local.store.roots(0, 10)]
    assert listed == started[:1:-1]  # the three newest
    ttl_ms = await local.redis.pttl(keys.index_of(keys.Index.ROOTS, started[-1]))
    assert 0 < ttl_ms <= local.store.ttl.active_ms

    await local.remove(started[-1])
    assert [m for m, _ in await local.store.roots(0, 10)] == started[-2:1:-1]
    # A record gone before its entry (expired) is left out of the list.
    await local.redis.delete(keys.signature(started[-2]))
    http = await serve()
    page = (await http.get("/")).text
    assert re.findall(r'<tr data-id="([^"]+)"', page) == [started[2]]


async def test_the_list_pages_through_older_workflows(
    local: HatchetMageflow, serve: Serve
) -> None:
    tasks = declare(local)
    ids = []
    for n in range(7):
        signature = await local.sign(tasks["echo"], note=str(n))
        await signature.aio_run_no_wait({})
        ids.append(signature.id)
    await drain(local)
    http = await serve(page_size=3)
    seen = []
    url: str | None = "/"
    while url is not None:
        page = (await http.get(url)).text
        seen.extend(re.findall(r'<tr data-id="([^"]+)"', page))
        older = re.search(r'<a href="([^"]+)">older', page)
        url = "/" + older.group(1).replace("&amp;", "&") if older else None
    assert seen == ids[::-1]


# --- one workflow -----------------------------------------------------------------


async def test_stored_values_are_escaped_everywhere(
    local: HatchetMageflow, serve: Serve
) -> None:
    tasks = declare(local)
    hostile = "<script>alert('x')</script>"
    signature = await local.sign(tasks["echo"], note=hostile)
    failing = await local.sign(tasks["boom"], note=hostile)
    for sig in (signature, failing):
        await sig.aio_run_no_wait({})
    await drain(local)
    http = await serve()
    for url in (
        "/",
        f"/workflows/{signature.id}",
        f"/workflows/{signature.id}/live",
        f"/workflows/{failing.id}",
        f"/workflows/{signature.id}/graph.svg",
    ):
        response = await http.get(url)
        assert response.status_code == 200, url
        assert "<script>alert" not in response.text, url
    page = (await http.get(f"/workflows/{signature.id}")).text
    # Shown as text, in the kwargs and in the outcome.
    assert page.count("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") >= 2
    # No inline script may run even if something slipped through.
    headers = (await http.get("/")).headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"


async def test_a_failure_shows_its_task_error(
    local: HatchetMageflow, serve: Serve
) -> None:
    tasks = declare(local)
    failing = await local.sign(tasks["boom"], note="fly")
    await failing.aio_run_no_wait({})
    await drain(local)
    page = (await (await serve()).get(f"/workflows/{failing.id}")).text
    assert "exception: ValueError" in page
    assert "cannot fly" in page
    assert "<summary>traceback</summary>" in page
    assert "raise ValueError" in page
    assert 'data-status="failed"' in page


async def test_root_children_continuations_and_item_callbacks_are_shown(
    local: HatchetMageflow, serve: Serve
) -> None:
    tasks = declare(local)

    @local.task(name="hands-on")
    async def hands_on(msg: Note) -> Continue[dict[str, str]]:
        return Continue(await local.sign(tasks["echo"], note="later"))

    @local.task(name="rooted")
    @local.root_task(max_concurrency=2)
    async def rooted(msg: Note) -> dict[str, str]:
        await (await local.sign(hands_on)).aio_run_no_wait()
        swarm = await local.swarm([tasks["echo"]], item_success=tasks["echo"])
        await swarm.aio_run_no_wait()
        return {"body": "ran"}

    root = await local.sign(rooted)
    await root.aio_run_no_wait({})
    await drain(local)
    page = (await (await serve()).get(f"/workflows/{root.id}")).text
    for role in ("children", "continued by", "on item success"):
        assert role in page, role


async def test_a_large_swarm_collapses_to_counts_and_pages_its_items(
    local: HatchetMageflow, serve: Serve
) -> None:
    tasks = declare(local)
    items = [await local.sign(tasks["echo"], note=str(n)) for n in range(12)]
    swarm = await local.swarm(items, max_concurrency=4)
    await swarm.aio_run_no_wait({})
    await drain(local)
    http = await serve(collapse_over=5, page_size=5)
    page = (await http.get(f"/workflows/{swarm.id}")).text
    assert "collapsed" in page
    assert not any(f'id="node-{item.id}"' in page for item in items)
    assert 'data-finished="12" data-total="12"' in page

    second = (
        await http.get(f"/workflows/{swarm.id}", params={"expand": swarm.id, "page": 1})
    ).text
    shown = [item.id for item in items if f'id="node-{item.id}"' in second]
    assert shown == [item.id for item in items[5:10]]
    assert "showing 6\u201310" in second  # an en dash
    assert "previous" in second
    assert "next" in second


async def test_unknown_and_corrupt_workflows_are_clear_pages(
    local: HatchetMageflow, serve: Serve
) -> None:
    await local.redis.hset(keys.signature("alien"), mapping={"v": "99"})
    await local.redis.zadd(keys.index_of(keys.Index.ROOTS, "alien"), {"alien": 1e25})
    http = await serve()
    missing = await http.get("/workflows/nope")
    assert missing.status_code == 404
    assert "no signature nope" in missing.text
    corrupt = await http.get("/workflows/alien")
    assert corrupt.status_code == 422
    assert "not a mageflow signature record" in corrupt.text
    listing = (await http.get("/")).text
    assert "unreadable" in listing
    # Nothing was changed by reading it.
    assert await local.redis.hgetall(keys.signature("alien")) == {"v": "99"}


# --- live -------------------------------------------------------------------------


async def next_event(lines: AsyncIterator[str]) -> tuple[str, Any]:
    event = ""
    async for line in lines:
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event:
            return event, json.loads(line.removeprefix("data: "))
    raise AssertionError("the stream ended")


async def test_the_stream_tells_a_page_when_what_it_shows_ends(
    local: HatchetMageflow, serve: Serve
) -> None:
    release = asyncio.Event()

    @local.task(name="slow")
    async def slow(msg: Note) -> dict[str, str]:
        await release.wait()
        return {"note": msg.note}

    items = [await local.sign(slow, note=str(n)) for n in range(30)]
    swarm = await local.swarm(items, max_concurrency=30)
    other = await local.sign(slow, note="elsewhere")
    http = await serve(collapse_over=5)
    await swarm.aio_run_no_wait({})
    await other.aio_run_no_wait({})
    async with http.stream("GET", "/events", params={"workflow": swarm.id}) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        # The first event comes at once: the stream is watching from then on.
        assert await asyncio.wait_for(next_event(lines), 10) == ("change", {})
        release.set()
        ended: dict[str, str] = {}

        async def hear_all() -> None:
            while len(ended) < 31:  # every item, and the swarm itself
                event, data = await next_event(lines)
                assert event == "change"
                ended.update(data)

        await asyncio.wait_for(hear_all(), 20)
    # Items of a collapsed swarm count; a signature of another workflow not.
    assert set(ended) == {item.id for item in items} | {swarm.id}
    assert set(ended.values()) == {"done"}
    await drain(local)
    live = (await http.get(f"/workflows/{swarm.id}/live")).text
    assert 'data-finished="30" data-total="30"' in live


# --- control ----------------------------------------------------------------------


async def paused_workflow(local: HatchetMageflow) -> Any:
    tasks = declare(local)
    signature = await local.sign(tasks["echo"], note="later")
    return signature


async def test_controls_are_off_unless_allowed(
    local: HatchetMageflow, serve: Serve
) -> None:
    signature = await paused_workflow(local)
    http = await serve(Access())
    page = (await http.get(f"/workflows/{signature.id}")).text
    assert 'data-action="pause"' not in page
    refused = await http.post(f"/workflows/{signature.id}/pause")
    assert refused.status_code == 403
    assert "start the dashboard with --allow-control" in refused.json()["message"]
    assert (await local.store.load_record(signature.id) or {})["status"] == "pending"


async def test_a_control_needs_the_token_and_the_same_origin(
    local: HatchetMageflow, serve: Serve
) -> None:
    signature = await paused_workflow(local)
    access = Access.for_host("127.0.0.1", allow_control=True)
    assert access.token
    http = await serve(access)
    url = f"/workflows/{signature.id}/pause"
    origin = str(http.base_url).rstrip("/")
    token = {"x-mageflow-token": access.token}
    refusals = [
        await http.post(url, cookies={"mageflow_token": access.token}),  # no header
        await http.post(url, headers={"x-mageflow-token": "wrong", "origin": origin}),
        await http.post(url, headers={**token, "origin": "https://evil.example"}),
        await http.post(url, headers={**token, "sec-fetch-site": "cross-site"}),
    ]
    # A wrong token is not let in at all; the rest are let in, not to act.
    assert [r.status_code for r in refusals[1:]] == [401, 403, 403]
    # The cookie alone (what a forged cross-site form would carry) lets in
    # to look, but never to act.
    assert refusals[0].status_code == 403
    assert "X-Mageflow-Token header" in refusals[0].json()["message"]
    assert (await local.store.load_record(signature.id) or {})["status"] == "pending"

    done = await http.post(url, headers={**token, "origin": origin})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "suspended"
    assert (await local.store.load_record(signature.id) or {})["status"] == "suspended"

    again = await http.post(f"/workflows/{signature.id}/retry", headers=token)
    assert again.status_code == 409  # only a failed signature is retried
    assert "retry" in again.json()["message"]


async def test_remove_deletes_and_sends_the_page_back_to_the_list(
    local: HatchetMageflow, serve: Serve
) -> None:
    signature = await paused_workflow(local)
    await signature.aio_run_no_wait({})
    await drain(local)
    access = Access.for_host("127.0.0.1", allow_control=True)
    http = await serve(access)
    assert access.token
    page = (
        await http.get(
            f"/workflows/{signature.id}", cookies={"mageflow_token": access.token}
        )
    ).text
    # Destructive controls ask first; the token is on the page for its script.
    assert 'data-action="remove" data-confirm=' in page
    assert f'<meta name="mageflow-token" content="{access.token}">' in page
    gone = await http.post(
        f"/workflows/{signature.id}/remove", headers={"x-mageflow-token": access.token}
    )
    assert gone.status_code == 200
    assert gone.json()["gone"].endswith("/")
    assert await local.store.load_record(signature.id) is None
    assert (
        signature.id
        not in (await http.get("/", cookies={"mageflow_token": access.token})).text
    )


async def test_with_a_token_every_page_needs_it(
    local: HatchetMageflow, serve: Serve
) -> None:
    access = Access.for_host("0.0.0.0", token="s3cret")
    http = await serve(access)
    assert (await http.get("/")).status_code == 401
    assert (await http.get("/events")).status_code == 401
    entry = await http.get("/", params={"token": "s3cret", "status": "done"})
    assert entry.status_code == 303
    assert entry.headers["location"] == "/?status=done"  # the token leaves the address
    cookie = entry.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert (
        await http.get("/", cookies={"mageflow_token": "s3cret"})
    ).status_code == 200
    assert (
        await http.get("/", headers={"x-mageflow-token": "s3cret"})
    ).status_code == 200
    assert (await http.get("/", cookies={"mageflow_token": "guess"})).status_code == 401


def test_a_public_address_needs_a_token() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("192.168.1.4")
    with pytest.raises(
        DashboardExposedError, match=r"refuses to listen on 0\.0\.0\.0"
    ) as e:
        Access.for_host("0.0.0.0")
    assert e.value.host == "0.0.0.0"
    assert Access.for_host("0.0.0.0", token="t").token == "t"
    assert Access.for_host("127.0.0.1").token is None
    generated = Access.for_host("127.0.0.1", allow_control=True).token
    assert generated
    assert len(generated) >= 24


# --- the command line -------------------------------------------------------------


def test_mageflow_ui_refuses_a_public_address_without_a_token(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ui", "--redis-url", redis_url, "--host", "0.0.0.0"]) == 2
    assert "refuses to listen on 0.0.0.0 without a token" in capsys.readouterr().err
    assert main(["ui", "--redis-url", "redis://127.0.0.1:9/0"]) == 1
    assert "cannot reach Redis at redis://127.0.0.1:9/0" in capsys.readouterr().err


def test_mageflow_ui_serves_until_interrupted(redis_url: str) -> None:
    with socket.socket() as probe:  # a free port, for the child to take
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "HATCHET_CLIENT_TOKEN"}
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "mageflow", "ui", "--redis-url", redis_url),
            *("--port", str(port), "--allow-control"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith(f"mageflow ui: http://127.0.0.1:{port}/?token="), line
        with httpx.Client(follow_redirects=True, timeout=10) as http:
            deadline = time.monotonic() + 15
            while True:  # printed just before uvicorn binds
                try:
                    page = http.get(line.removeprefix("mageflow ui: ").strip())
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline, "the dashboard never answered"
                    time.sleep(0.05)  # ok: a condition poll with a deadline
            assert page.status_code == 200
            assert "controls on" in page.text
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=20) == 0
