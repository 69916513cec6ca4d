"""``mageflow.graph``: stored workflows drawn as SVG, Mermaid and DOT, on real
Redis, and ``mageflow inspect --format``."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from mageflow import HatchetMageflow
from mageflow.cli import main
from mageflow.dispatch.local import LocalDispatcher
from mageflow.graph import STATUS_COLOURS, STATUS_ICONS, to_dot, to_mermaid, to_svg
from mageflow.store import keys
from mageflow.tree import TreeNode, build_tree

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x\\y")</script>'
"""A task name with markup, quotes and a backslash."""
HOSTILE_NOTE = '"><script>steal()</script>'


class Step(BaseModel):
    result: Any = None
    x: int = 0


class Noted(BaseModel):
    result: Any = None
    note: str = ""


@pytest.fixture
def tasks(local: HatchetMageflow) -> None:
    @local.task(name="inc")
    async def inc(msg: Step) -> dict[str, int]:
        return {"v": msg.x + 1}

    @local.task(name="boom")
    async def boom(msg: Step) -> None:
        raise RuntimeError(f"boom {msg.x}")

    @local.task(name="collect")
    async def collect(msg: Step) -> None:
        return None

    @local.task(name="on-error")
    async def on_error(msg: Step) -> None:
        return None

    @local.task(name=HOSTILE)
    async def hostile(msg: Noted) -> None:
        return None


async def drain(local: HatchetMageflow) -> None:
    assert isinstance(local.dispatch_backend, LocalDispatcher)
    await local.dispatch_backend.drain()


async def failed_chain(local: HatchetMageflow) -> TreeNode:
    """A chain run to its end: step 2 a swarm with a failing item (and its
    error callback), step 3 a hostile task name and kwarg, step 4 fails, so
    step 5 is interrupted, the chain fails and its error callback runs."""
    items = [await local.sign("inc", x=i) for i in range(3)]
    items.append(await local.sign("boom", x=9, error="on-error"))
    swarm = await local.swarm(items)
    await swarm.close()
    hostile = await local.sign(HOSTILE, note=HOSTILE_NOTE)
    chain = await local.chain(
        ["inc", swarm, hostile, "boom", "collect"], success="collect", error="on-error"
    )
    await chain.aio_run_no_wait({"x": 1})
    await drain(local)
    return await build_tree(local, chain.id)


def walk(node: TreeNode) -> Iterator[TreeNode]:
    yield node
    for child in node.children:
        yield from walk(child)


def svg_nodes(svg: ET.Element) -> list[ET.Element]:
    return [g for g in svg.iter(f"{SVG}g") if "node" in g.get("class", "").split()]


def svg_edges(svg: ET.Element, kind: str) -> list[ET.Element]:
    return [g for g in svg.iter(f"{SVG}g") if g.get("class") == f"edge {kind}"]


def texts(group: ET.Element, cls: str) -> list[str]:
    return [t.text or "" for t in group.iter(f"{SVG}text") if t.get("class") == cls]


def box(group: ET.Element) -> tuple[float, float, float, float]:
    (rect,) = (r for r in group.iter(f"{SVG}rect") if r.get("class") == "box")
    return (
        float(rect.get("x", "nan")),
        float(rect.get("y", "nan")),
        float(rect.get("width", "nan")),
        float(rect.get("height", "nan")),
    )


def by_id(svg: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-id", ""): g for g in svg_nodes(svg)}


# --- SVG ---------------------------------------------------------------------


@pytest.mark.usefixtures("tasks")
async def test_svg_draws_every_node_with_its_status_in_words_and_icon(
    local: HatchetMageflow,
) -> None:
    tree = await failed_chain(local)
    svg = ET.fromstring(to_svg(tree))
    assert svg.tag == f"{SVG}svg"
    assert svg.get("viewBox") == f"0 0 {svg.get('width')} {svg.get('height')}"
    nodes = svg_nodes(svg)
    assert len(nodes) == len(list(walk(tree))) == 13
    statuses = [g.get("class", "").split()[1] for g in nodes]
    assert statuses == [f"status-{n.status}" for n in walk(tree)]
    assert statuses.count("status-failed") == 3  # the chain, its step, an item
    assert statuses.count("status-interrupted") == 1
    assert statuses.count("status-pending") == 1  # the chain's success callback
    kinds = [g.get("class", "").split()[2] for g in nodes]
    assert kinds.count("kind-chain") == 1
    assert kinds.count("kind-swarm") == 1
    for group, node in zip(nodes, walk(tree), strict=True):
        assert texts(group, "status") == [f"{STATUS_ICONS[node.status]} {node.status}"]
        title = group.find(f"{SVG}title")
        assert title is not None
        assert title.text is not None
        for fact in (node.id, node.task_name, node.status, node.role):
            assert fact in title.text
        (rect,) = (r for r in group.iter(f"{SVG}rect") if r.get("class") == "box")
        assert rect.get("fill") == STATUS_COLOURS[node.status]
    chain = nodes[0]
    assert texts(chain, "name") == ["chain"]
    assert texts(chain, "duration")[0].endswith("ms")


@pytest.mark.usefixtures("tasks")
async def test_svg_edges_show_membership_order_and_callbacks(
    local: HatchetMageflow,
) -> None:
    tree = await failed_chain(local)
    svg = ET.fromstring(to_svg(tree))
    steps = [c.id for c in tree.children if c.role.startswith("step ")]
    swarm = tree.children[1]
    assert len(steps) == 5
    assert swarm.kind == "swarm"

    def ends(kind: str) -> list[tuple[str | None, str | None]]:
        return [(g.get("data-from"), g.get("data-to")) for g in svg_edges(svg, kind)]

    # The chain points at its first step, each step at the next, in order.
    assert ends("next") == list(itertools.pairwise(steps))
    assert ends("member") == [(tree.id, steps[0])] + [
        (swarm.id, item.id) for item in swarm.children
    ]
    on_success = [c for c in tree.children if c.role == "on success"]
    assert ends("on-success") == [(tree.id, on_success[0].id)]
    failing_item = swarm.children[3]
    assert [target for _, target in ends("on-error")] == [
        failing_item.children[0].id,
        tree.children[-1].id,
    ]
    every = [g for g in svg.iter(f"{SVG}g") if "edge" in g.get("class", "").split()]
    assert len(every) == len(list(walk(tree))) - 1  # one edge into each node

    for group in svg_edges(svg, "next"):
        path = group.find(f"{SVG}path")
        assert path is not None
        assert path.get("marker-end") == "url(#mageflow-arrow)"
    assert svg.find(f".//{SVG}marker[@id='mageflow-arrow']") is not None
    for group in svg_edges(svg, "on-error"):
        path = group.find(f"{SVG}path")
        assert path is not None
        assert path.get("stroke-dasharray") == "6 4"
        assert texts(group, "label") == ["error"]
    (ok,) = svg_edges(svg, "on-success")
    assert texts(ok, "label") == ["ok"]
    (member, *_) = svg_edges(svg, "member")
    assert texts(member, "label") == []


@pytest.mark.usefixtures("tasks")
async def test_svg_layout_is_layered_by_depth_with_parents_centred(
    local: HatchetMageflow,
) -> None:
    tree = await failed_chain(local)
    svg = ET.fromstring(to_svg(tree))
    groups = by_id(svg)
    width, height = float(svg.get("width", "0")), float(svg.get("height", "0"))

    def depths(node: TreeNode, depth: int = 0) -> Iterator[tuple[TreeNode, int]]:
        yield node, depth
        for child in node.children:
            yield from depths(child, depth + 1)

    column: dict[int, float] = {}
    placed = []
    for node, depth in depths(tree):
        x, y, w, h = box(groups[node.id])
        assert column.setdefault(depth, x) == x  # one column per depth
        assert x >= 0
        assert y >= 0
        assert x + w <= width
        assert y + h <= height
        placed.append((x, y, w, h))
    assert sorted(column) == [0, 1, 2, 3]
    assert [column[d] for d in range(4)] == sorted(column.values())
    for n, (x, y, w, h) in enumerate(placed):
        for x2, y2, w2, h2 in placed[n + 1 :]:
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y
    # A parent is centred on its children; steps go down in order.
    x, y, w, h = box(groups[tree.id])
    first, last = box(groups[tree.children[0].id]), box(groups[tree.children[-1].id])
    mid = (first[1] + first[3] / 2 + last[1] + last[3] / 2) / 2
    assert y + h / 2 == pytest.approx(mid, abs=0.1)
    tops = [box(groups[c.id])[1] for c in tree.children]
    assert tops == sorted(tops)


@pytest.mark.usefixtures("tasks")
async def test_swarm_progress_counts_and_a_failed_item(local: HatchetMageflow) -> None:
    tree = await failed_chain(local)
    swarm = tree.children[1]
    group = by_id(ET.fromstring(to_svg(tree)))[swarm.id]
    assert texts(group, "name") == ["swarm"]
    assert texts(group, "counts") == ["4/4 done · 1 failed · 0 running"]
    assert texts(group, "window") == []  # read whole: no window
    rects = {r.get("class"): r for r in group.iter(f"{SVG}rect")}
    assert rects["done"].get("width") == rects["track"].get("width")
    chain = by_id(ET.fromstring(to_svg(tree)))[tree.id]
    # Every step ended: one failed, the one after it was interrupted.
    assert texts(chain, "counts") == ["5/5 done · 1 failed · 0 running"]


@pytest.mark.usefixtures("tasks")
async def test_collapsed_and_paged_swarms_say_which_items_they_show(
    local: HatchetMageflow,
) -> None:
    swarm = await local.swarm(
        [await local.sign("inc", x=i) for i in range(12)], success="collect"
    )
    await swarm.close()
    collapsed = await build_tree(local, swarm.id, collapse_over=5)
    assert collapsed.shown == (0, 0)
    svg = ET.fromstring(to_svg(collapsed))
    nodes = svg_nodes(svg)
    assert len(nodes) == 2  # the swarm and its callback, no item
    assert texts(nodes[0], "window") == ["12 items (collapsed)"]
    assert texts(nodes[0], "counts") == ["0/12 done · 0 failed · 0 running"]
    rects = {r.get("class"): r for r in nodes[0].iter(f"{SVG}rect")}
    assert rects["done"].get("width") == "0"
    assert svg_edges(svg, "member") == []
    assert "12 items (collapsed)" in to_dot(collapsed)

    paged = await build_tree(
        local, swarm.id, collapse_over=5, pages={swarm.id: 1}, page_size=5
    )
    nodes = svg_nodes(ET.fromstring(to_svg(paged)))
    assert texts(nodes[0], "window") == ["items 6\u201310 of 12"]
    assert len(nodes) == 7
    details = [texts(g, "detail")[0] for g in nodes[1:6]]
    assert [d.split(" · ")[0] for d in details] == [f"item {n}" for n in range(6, 11)]


@pytest.mark.usefixtures("tasks")
async def test_stored_text_is_escaped_in_text_titles_and_attributes(
    local: HatchetMageflow,
) -> None:
    tree = await failed_chain(local)
    hostile = tree.children[2]
    assert hostile.task_name == HOSTILE
    link = '/w/"><script>evil()</script>'
    raw = to_svg(tree, href=lambda node: link)
    assert "<script" not in raw
    assert "&lt;script&gt;alert(&quot;x\\y&quot;)&lt;/script&gt;" in raw
    assert "&quot;&gt;&lt;script&gt;steal()" in raw  # the kwarg
    assert 'href="/w/&quot;&gt;&lt;script&gt;evil()' in raw
    svg = ET.fromstring(raw)
    # Escaped once: parsed back, the text is exactly what was stored.
    group = by_id(svg)[hostile.id]
    assert texts(group, "name") == [HOSTILE]
    title = group.find(f"{SVG}title")
    assert title is not None
    assert title.text is not None
    assert f"task: {HOSTILE}" in title.text
    assert f'kwargs: {{"note":{json.dumps(HOSTILE_NOTE)}}}' in title.text
    links = list(svg.iter(f"{SVG}a"))
    assert len(links) == 13
    assert {a.get("href") for a in links} == {link}


@pytest.mark.usefixtures("tasks")
async def test_href_links_only_the_nodes_it_names(local: HatchetMageflow) -> None:
    tree = await failed_chain(local)
    svg = ET.fromstring(
        to_svg(tree, href=lambda n: f"/w/{n.id}" if n.kind != "task" else None)
    )
    linked = {
        a.get("href"): [g.get("data-id") for g in svg_nodes(a)]
        for a in svg.iter(f"{SVG}a")
    }
    assert linked == {
        f"/w/{tree.id}": [tree.id],
        f"/w/{tree.children[1].id}": [tree.children[1].id],
    }
    assert len(svg_nodes(svg)) == 13


@pytest.mark.usefixtures("tasks")
async def test_a_missing_node_is_a_grey_box_with_its_problem(
    local: HatchetMageflow,
) -> None:
    sig = await local.sign("inc", success="collect")
    hostile_id = 'gone"><script>alert(1)</script>' + "x" * 60
    await local.redis.hset(keys.signature(sig.id), "ok", json.dumps([hostile_id]))
    tree = await build_tree(local, sig.id)
    (missing,) = tree.children
    assert missing.problem is not None
    raw = to_svg(tree)
    assert "<script" not in raw
    group = by_id(ET.fromstring(raw))[hostile_id]
    assert group.get("class") == "node status-missing kind-task"
    assert texts(group, "name") == ["missing/corrupt"]
    (detail,) = texts(group, "detail")
    assert detail.endswith("…")
    assert len(detail) == 48
    assert missing.problem.startswith(detail[:-1])
    (rect,) = (r for r in group.iter(f"{SVG}rect") if r.get("class") == "box")
    assert rect.get("fill") == STATUS_COLOURS["missing"]
    assert rect.get("stroke-dasharray") == "4 3"
    assert "<script" not in to_mermaid(tree)
    assert hostile_id not in to_dot(tree)  # only in its escaped tooltip


# --- Mermaid -----------------------------------------------------------------


@pytest.mark.usefixtures("tasks")
async def test_mermaid_flowchart_with_safe_names_labels_and_colours(
    local: HatchetMageflow,
) -> None:
    tree = await failed_chain(local)
    text = to_mermaid(tree)
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert "<" not in text
    nodes = [re.fullmatch(r' {4}(n\d+)\["([^"]*)"\]', line) for line in lines]
    declared = [m.group(1) for m in nodes if m is not None]
    assert declared == [f"n{n}" for n in range(13)]
    for node in walk(tree):
        assert node.id not in text
    labels = [m.group(2) for m in nodes if m is not None]
    assert labels[0] == "chain [failed]"
    assert labels[2] == "swarm [done]"
    assert labels[8] == "#lt;script#gt;alert(#quot;x\\y#quot;)#lt;/script#gt; [done]"
    edges = [
        re.fullmatch(r" {4}(n\d+) (-->|-->\|ok\||-\.->\|error\|) (n\d+)", line)
        for line in lines
    ]
    found = [(m.group(1), m.group(2), m.group(3)) for m in edges if m is not None]
    assert len(found) == 12
    assert {a for a, _, _ in found} | {b for _, _, b in found} <= set(declared)
    assert [arrow for _, arrow, _ in found].count("-->|ok|") == 1
    assert [arrow for _, arrow, _ in found].count("-.->|error|") == 2
    assert ("n1", "-->", "n2") in found  # step 1 to step 2
    failed = STATUS_COLOURS["failed"]
    assert f"    classDef status_failed fill:{failed}," in text
    assert re.search(r"^ {4}class n0,.* status_failed$", text, re.MULTILINE)


# --- DOT -----------------------------------------------------------------------


def dot_statements(text: str) -> list[str]:
    """The lines of ``text`` with every quoted string but a node name
    blanked, after checking that each string ends and each brace outside
    them closes."""
    out: list[str] = []
    string: list[str] | None = None
    depth, escaped = 0, False
    for char in text:
        if string is None:
            if char == '"':
                string = []
            else:
                depth += {"{": 1, "}": -1}.get(char, 0)
                assert depth >= 0
                out.append(char)
        elif escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            content = "".join(string)
            out.append(f'"{content}"' if re.fullmatch(r"n\d+", content) else '""')
            string = None
        else:
            string.append(char)
    assert string is None
    assert depth == 0
    return "".join(out).splitlines()


@pytest.mark.usefixtures("tasks")
async def test_dot_is_a_well_formed_digraph_styled_like_the_svg(
    local: HatchetMageflow,
) -> None:
    tree = await failed_chain(local)
    text = to_dot(tree)
    lines = text.splitlines()
    assert lines[:2] == ["digraph mageflow {", "    rankdir=LR;"]
    assert lines[-1] == "}"
    statements = dot_statements(text)
    declared = [
        m.group(1)
        for s in statements
        if (m := re.fullmatch(r' {4}"(n\d+)" \[.*\];', s)) is not None
    ]
    edges = [
        (m.group(1), m.group(2))
        for s in statements
        if (m := re.fullmatch(r' {4}"(n\d+)" -> "(n\d+)" \[.*\];', s)) is not None
    ]
    assert declared == [f"n{n}" for n in range(13)]
    assert len(edges) == 12
    assert {end for edge in edges for end in edge} <= set(declared)
    # Quotes and backslashes in stored text are escaped inside the strings.
    assert '"<script>alert(\\"x\\\\y\\")</script>\\n' in text
    node_lines = {
        m.group(1): line for line in lines if (m := re.match(r' {4}"(n\d+)" \[', line))
    }
    assert f'fillcolor="{STATUS_COLOURS["failed"]}"' in node_lines["n0"]
    assert 'class="status-failed kind-chain"' in node_lines["n0"]
    errors = [line for line in lines if 'class="on-error"' in line]
    assert len(errors) == 2
    for line in errors:
        assert 'style="dashed"' in line
        assert 'label="error"' in line
        assert 'color="#c62828"' in line
    (ok,) = [line for line in lines if 'class="on-success"' in line]
    assert 'label="ok"' in ok
    assert 'color="#2e7d32"' in ok


# --- the command line ------------------------------------------------------------


async def inspect(*argv: str) -> int:
    # main() runs its own event loop, so it runs in a thread here.
    return await asyncio.to_thread(main, ["inspect", *argv])


@pytest.mark.usefixtures("tasks")
async def test_inspect_writes_an_svg_file(
    local: HatchetMageflow,
    redis_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tree = await failed_chain(local)
    path = tmp_path / "tree.svg"
    args = ["--redis-url", redis_url, "--format", "svg", "-o", str(path)]
    assert await inspect(tree.id, *args) == 0
    assert capsys.readouterr().out == ""
    svg = ET.fromstring(path.read_text(encoding="utf-8"))
    assert [g.get("data-id") for g in svg_nodes(svg)] == [n.id for n in walk(tree)]


@pytest.mark.usefixtures("tasks")
async def test_inspect_prints_mermaid_and_dot(
    local: HatchetMageflow, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = await failed_chain(local)
    assert await inspect(tree.id, "--redis-url", redis_url, "--format", "mermaid") == 0
    assert capsys.readouterr().out == to_mermaid(tree)
    assert await inspect(tree.id, "--redis-url", redis_url, "--format", "dot") == 0
    assert capsys.readouterr().out == to_dot(tree)


@pytest.mark.usefixtures("tasks")
async def test_inspect_json_flag_is_format_json(
    local: HatchetMageflow, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = await failed_chain(local)
    assert await inspect(tree.id, "--redis-url", redis_url, "--json") == 0
    short = capsys.readouterr().out
    assert await inspect(tree.id, "--redis-url", redis_url, "--format", "json") == 0
    assert capsys.readouterr().out == short
    assert json.loads(short)["status"] == "failed"


@pytest.mark.usefixtures("tasks")
async def test_inspect_unwritable_output_and_unknown_format(
    local: HatchetMageflow,
    redis_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tree = await failed_chain(local)
    target = tmp_path / "no-such-dir" / "tree.svg"
    args = ["--redis-url", redis_url, "--format", "svg", "-o", str(target)]
    assert await inspect(tree.id, *args) == 1
    assert f"mageflow inspect: cannot write {target}" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        await inspect(tree.id, "--redis-url", redis_url, "--format", "png")
    assert usage.value.code == 2
    assert "invalid choice: 'png'" in capsys.readouterr().err


@pytest.mark.usefixtures("tasks")
async def test_control_characters_never_break_a_line_or_the_xml(
    local: HatchetMageflow,
) -> None:
    name = "two\nlines\u202e\x07"

    @local.task(name=name)
    async def odd(msg: Step) -> None:
        return None

    sig = await local.sign(odd, success="collect")
    gone = "gone\x00\n"
    await local.redis.hset(keys.signature(sig.id), "ok", json.dumps([gone]))
    tree = await build_tree(local, sig.id)
    svg = ET.fromstring(to_svg(tree))
    groups = by_id(svg)
    assert texts(groups[sig.id], "name") == ["two lines"]
    # Attributes keep the id, but for what XML cannot carry.
    (problem,) = texts(groups["gone\ufffd\n"], "detail")
    assert problem.startswith("no signature gone in this Redis")
    mermaid = to_mermaid(tree).splitlines()
    assert mermaid[1] == '    n0["two lines [pending]"]'
    # The header, 2 nodes, 1 edge, 2 statuses of 2 lines, 1 edge style.
    assert len(mermaid) == 9
    dot = dot_statements(to_dot(tree))
    assert all(line.endswith(("{", ";", "}")) for line in dot)
