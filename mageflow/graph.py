"""A workflow tree as a picture: SVG, Mermaid or Graphviz DOT.

For a bug report (``mageflow inspect ID --format svg -o tree.svg``), for docs
(paste the Mermaid or DOT text), and for the dashboard's workflow page, which
inlines :func:`to_svg`'s output. Each renders a
:class:`~mageflow.tree.TreeNode` as read by :func:`~mageflow.tree.build_tree`.

The SVG is drawn here, on the server, rather than by a JavaScript graph
library: there is no JavaScript build to maintain, the picture is complete
without a browser (a file attached to an issue, a CI artefact), and stored
text is escaped once, in one place (:func:`_esc`). Every stored value (task
names, ids, kwargs, outcomes, problems) is untrusted: it reaches the SVG only
through :func:`_tag` or :func:`_text`, Mermaid only through
:func:`_mermaid_text`, DOT only through :func:`_dot_quote`.

Colours are presentation attributes rather than an embedded ``<style>``:
the file looks right on its own, any CSS rule on the classes (``node``,
``status-<status>``, ``kind-<kind>``, ``edge member|next|on-success|on-error``)
overrides them, and inlining the SVG leaks no global style into the page.

The SVG layout is a tidy layered tree, left to right: a node's column is its
depth and its row band follows the order of the leaves, each parent centred on
its children. Chain steps stack in order, step n pointing at step n + 1.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from mageflow.tree import TreeNode

STATUS_COLOURS: Mapping[str, str] = MappingProxyType(
    {
        "pending": "#e5e7eb",
        "active": "#cfe2ff",
        "suspended": "#fff3cd",
        "done": "#d1f2d9",
        "failed": "#f8d7da",
        "canceled": "#e2d9f3",
        "interrupted": "#ffe1c7",
        "missing": "#c4c4c4",
    }
)
"""Fill colour of a node by status (the dashboard may restyle it by class)."""

STATUS_ICONS: Mapping[str, str] = MappingProxyType(
    {
        "pending": "◌",
        "active": "●",
        "suspended": "❚❚",
        "done": "✓",
        "failed": "✗",
        "canceled": "■",
        "interrupted": "⊘",
        "missing": "?",
    }
)
"""An icon by status, always shown next to the status word: a status is
never told by colour alone."""

_UNKNOWN = "missing"
_STEP = "step "
_CALLBACK_EDGES = {
    "on success": "on-success",
    "on error": "on-error",
    "on item success": "on-success",
    "on item error": "on-error",
}

_LABEL_LIMIT = 40
_DETAIL_LIMIT = 48
_TITLE_LIMIT = 300

_NODE_WIDTH = 320
_COLUMN_GAP = 64
_ROW_GAP = 24
_MARGIN = 20
_PADDING = 6
_LINE = 18
"""One text row of a node; its baseline sits ``_BASELINE`` above its bottom."""
_BASELINE = 5
_BAR = 10
_INSET = 12

_TEXT_COLOUR = "#111827"
_MUTED_COLOUR = "#4b5563"
_BORDER_COLOUR = "#4b5563"
_ARROW_ID = "mageflow-arrow"


@dataclasses.dataclass(frozen=True)
class _EdgeStyle:
    colour: str
    label: str | None = None
    dashed: bool = False


_EDGE_STYLES: Mapping[str, _EdgeStyle] = {
    "member": _EdgeStyle("#9ca3af"),
    "next": _EdgeStyle("#374151"),
    "on-success": _EdgeStyle("#2e7d32", "ok"),
    "on-error": _EdgeStyle("#c62828", "error", dashed=True),
}


# --- what a node says, whatever the format -------------------------------------


@dataclasses.dataclass(frozen=True)
class _Card:
    """The text of one node, cleaned and truncated, not yet escaped."""

    heading: str
    status: str
    duration: str | None
    detail: str
    title: str
    progress: float | None = None
    counts: str | None = None
    window: str | None = None

    @property
    def height(self) -> float:
        rows = 3 + (self.counts is not None) + (self.window is not None)
        bar = _BAR if self.progress is not None else 0
        return 2 * _PADDING + rows * _LINE + bar


def _clean(text: str) -> str:
    """``text`` on one line, without control or invisible characters (which
    XML cannot carry and which could disguise a name)."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _clip(text: str, limit: int = _LABEL_LIMIT) -> str:
    cleaned = _clean(text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)


def _token(value: str) -> str:
    """``value`` as one safe CSS class word: a stored status or kind cannot
    add classes of its own."""
    return re.sub(r"[^a-z0-9_-]", "-", value.lower()) or _UNKNOWN


def _status(node: TreeNode) -> str:
    icon = STATUS_ICONS.get(node.status, STATUS_ICONS[_UNKNOWN])
    return _clip(f"{icon} {node.status}")


def _colour(node: TreeNode) -> str:
    return STATUS_COLOURS.get(node.status, STATUS_COLOURS[_UNKNOWN])


def _classes(node: TreeNode) -> str:
    return f"status-{_token(node.status)} kind-{_token(node.kind)}"


def _name(node: TreeNode) -> str:
    """The task, or a container's kind and name (once when they are equal)."""
    if node.kind == "task" or node.task_name == node.kind:
        return node.task_name
    return f"{node.kind} {node.task_name}"


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes:.0f}m {rest:02.0f}s"


def _counts(counts: Mapping[str, int]) -> str:
    return (
        f"{counts.get('finished', 0)}/{counts.get('total', 0)} done · "
        f"{counts.get('failed', 0)} failed · {counts.get('running', 0)} running"
    )


def _progress(counts: Mapping[str, int]) -> float:
    total = counts.get("total", 0)
    return min(counts.get("finished", 0) / total, 1.0) if total > 0 else 0.0


def _window(node: TreeNode, shown: tuple[int, int]) -> str:
    """Which of a large swarm's items the tree holds."""
    total = node.total if node.total is not None else node.counts.get("total", 0)
    start, end = shown
    if end > start:
        return f"items {start + 1}\u2013{end} of {total}"  # an en dash
    if start == 0:
        return f"{total} items (collapsed)"
    return f"no items past the last of {total}"


def _title(node: TreeNode) -> str:
    """Everything stored about the node, for a tooltip."""
    lines = [
        f"id: {node.id}",
        f"task: {node.task_name}",
        f"status: {node.status}",
        f"role: {node.role}",
    ]
    if node.kwargs:
        lines.append(f"kwargs: {_compact(node.kwargs)}")
    if node.outcome is not None:
        label = "error" if node.status == "failed" else "result"
        lines.append(f"{label}: {_compact(node.outcome)}")
    if node.problem is not None:
        lines.append(f"problem: {node.problem}")
    return "\n".join(_clip(line, _TITLE_LIMIT) for line in lines)


def _card(node: TreeNode) -> _Card:
    title = _title(node)
    if node.problem is not None:
        return _Card(
            "missing/corrupt",
            _status(node),
            None,
            _clip(node.problem, _DETAIL_LIMIT),
            title,
        )
    detail = node.role if not node.kwargs else f"{node.role} · {_compact(node.kwargs)}"
    duration = node.duration
    return _Card(
        _clip(_name(node)),
        _status(node),
        None if duration is None else _duration(duration),
        _clip(detail, _DETAIL_LIMIT),
        title,
        _progress(node.counts) if node.counts else None,
        _counts(node.counts) if node.counts else None,
        None if node.shown is None else _window(node, node.shown),
    )


# --- layout and edges ----------------------------------------------------------


@dataclasses.dataclass
class _Box:
    """A node placed on the page: its column, and the band its subtree uses."""

    node: TreeNode
    card: _Card
    depth: int
    children: list[_Box]
    below: float
    """The height its children's bands take, stacked."""
    extent: float
    """The height of its band: the larger of its own and its children's."""
    top: float = 0.0

    @property
    def x(self) -> float:
        return _MARGIN + self.depth * (_NODE_WIDTH + _COLUMN_GAP)

    @property
    def centre(self) -> float:
        return self.top + self.card.height / 2

    @property
    def bottom(self) -> float:
        return self.top + self.card.height


class _Edge(NamedTuple):
    source: _Box
    target: _Box
    kind: str


def _measure(node: TreeNode, depth: int = 0) -> _Box:
    """Bottom up: each subtree's band height."""
    card = _card(node)
    children = [_measure(child, depth + 1) for child in node.children]
    below = sum(c.extent for c in children) + _ROW_GAP * max(len(children) - 1, 0)
    return _Box(node, card, depth, children, below, max(card.height, below))


def _position(box: _Box, band_top: float) -> None:
    """Top down: stack the children's bands, centre the parent on them."""
    cursor = band_top + (box.extent - box.below) / 2
    for child in box.children:
        _position(child, cursor)
        cursor += child.extent + _ROW_GAP
    half = box.card.height / 2
    if box.children:
        centre = (box.children[0].centre + box.children[-1].centre) / 2
    else:
        centre = band_top + box.extent / 2
    # Inside its own band, so it overlaps no other subtree in its column.
    centre = min(max(centre, band_top + half), band_top + box.extent - half)
    box.top = centre - half


def _layout(tree: TreeNode) -> _Box:
    root = _measure(tree)
    _position(root, _MARGIN)
    return root


def _walk(box: _Box) -> Iterator[_Box]:
    yield box
    for child in box.children:
        yield from _walk(child)


def _edges(box: _Box) -> Iterator[_Edge]:
    """Container to member, callbacks, and chain steps in order: the chain
    points at its first step and each step at the next, so every node but
    the root has one incoming edge and the order reads as a path."""
    step: _Box | None = None
    for child in box.children:
        role = child.node.role
        source, kind = box, _CALLBACK_EDGES.get(role, "member")
        if role.startswith(_STEP):
            if step is not None:
                source, kind = step, "next"
            step = child
        yield _Edge(source, child, kind)
        yield from _edges(child)


# --- SVG -----------------------------------------------------------------------


_XML_INVALID = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_BREAKS = str.maketrans({"\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})


def _esc(value: str) -> str:
    """``value`` as XML text or attribute: markup escaped, characters XML
    cannot carry replaced by U+FFFD, line breaks kept as references (an
    attribute would read them back as spaces)."""
    valid = _XML_INVALID.sub("\ufffd", value)
    return html.escape(valid, quote=True).translate(_XML_BREAKS)


def _number(value: str | float) -> str:
    return value if isinstance(value, str) else f"{value:.1f}".removesuffix(".0")


def _tag(name: str, attrs: Mapping[str, str | float], content: str = "") -> str:
    """An SVG element. Attribute values are escaped here; ``content`` is
    markup already (built by this function or :func:`_text`)."""
    rendered = "".join(f' {k}="{_esc(_number(v))}"' for k, v in attrs.items())
    if not content:
        return f"<{name}{rendered}/>"
    return f"<{name}{rendered}>{content}</{name}>"


def _text(attrs: Mapping[str, str | float], value: str) -> str:
    """A ``<text>`` element whose content is ``value``, escaped."""
    return _tag("text", attrs, _esc(value))


_NAME_STYLE: Mapping[str, str | float] = {"font-weight": "bold", "font-size": 13}
_DETAIL_STYLE: Mapping[str, str | float] = {"font-size": 11, "fill": _MUTED_COLOUR}
_WINDOW_STYLE: Mapping[str, str | float] = {
    "font-style": "italic",
    "fill": _MUTED_COLOUR,
}
_END: Mapping[str, str | float] = {"text-anchor": "end"}


_PLAIN: Mapping[str, str | float] = MappingProxyType({})


def _row(
    cls: str, value: str, x: float, y: float, style: Mapping[str, str | float] = _PLAIN
) -> str:
    return _text({"class": cls, "x": x, "y": y, "fill": _TEXT_COLOUR, **style}, value)


def _svg_card(box: _Box) -> list[str]:
    """The rows of a node's box, top to bottom (see :attr:`_Card.height`)."""
    card = box.card
    left, right = box.x + _INSET, box.x + _NODE_WIDTH - _INSET
    baseline = box.top + _PADDING + _LINE - _BASELINE
    parts = [_row("name", card.heading, left, baseline, _NAME_STYLE)]
    baseline += _LINE
    parts.append(_row("status", card.status, left, baseline))
    if card.duration is not None:
        parts.append(_row("duration", card.duration, right, baseline, _END))
    baseline += _LINE
    parts.append(_row("detail", card.detail, left, baseline, _DETAIL_STYLE))
    if card.progress is not None:
        top = baseline + _BASELINE + 2
        parts.append(_progress_bar(left, top, right - left, card.progress))
        baseline += _BAR
    if card.counts is not None:
        baseline += _LINE
        parts.append(_row("counts", card.counts, left, baseline))
    if card.window is not None:
        baseline += _LINE
        parts.append(_row("window", card.window, left, baseline, _WINDOW_STYLE))
    return parts


def _svg_node(box: _Box, href: str | None) -> str:
    node = box.node
    frame = _tag(
        "rect",
        {
            "class": "box",
            "x": box.x,
            "y": box.top,
            "width": _NODE_WIDTH,
            "height": box.card.height,
            "rx": 8,
            "fill": _colour(node),
            "stroke": _BORDER_COLOUR,
            "stroke-dasharray": "4 3" if node.problem is not None else "none",
        },
    )
    title = _tag("title", {}, _esc(box.card.title))
    content = title + frame + "".join(_svg_card(box))
    group = _tag("g", {"class": f"node {_classes(node)}", "data-id": node.id}, content)
    return group if href is None else _tag("a", {"href": href}, group)


def _progress_bar(x: float, y: float, width: float, done: float) -> str:
    track = _tag(
        "rect",
        {
            "class": "track",
            "x": x,
            "y": y,
            "width": width,
            "height": 6,
            "rx": 3,
            "fill": "#ffffff",
            "stroke": "#9ca3af",
        },
    )
    bar = _tag(
        "rect",
        {
            "class": "done",
            "x": x,
            "y": y,
            "width": width * done,
            "height": 6,
            "rx": 3,
            "fill": "#2e7d32",
        },
    )
    return _tag("g", {"class": "progress"}, track + bar)


def _route(source: _Box, target: _Box, kind: str) -> tuple[str, float, float]:
    """An edge's path, and where its label ends: just before the target,
    where edges leaving one parent have drawn apart."""
    if kind == "next":
        # Steps share a column: straight down from one to the next.
        x = source.x + _NODE_WIDTH / 2
        path = f"M{_number(x)},{_number(source.bottom)} V{_number(target.top)}"
        return path, x, (source.bottom + target.top) / 2
    x1, y1 = source.x + _NODE_WIDTH, source.centre
    x2, y2 = target.x, target.centre
    mid = _number((x1 + x2) / 2)
    start, end = f"{_number(x1)},{_number(y1)}", f"{_number(x2)},{_number(y2)}"
    path = f"M{start} C{mid},{_number(y1)} {mid},{_number(y2)} {end}"
    return path, x2 - 4, y2 - 4


def _svg_edge(edge: _Edge) -> str:
    source, target, kind = edge
    style = _EDGE_STYLES[kind]
    path, x, y = _route(source, target, kind)
    attrs: dict[str, str | float] = {
        "d": path,
        "fill": "none",
        "stroke": style.colour,
        "stroke-width": 1.5,
    }
    if kind == "next":
        attrs["marker-end"] = f"url(#{_ARROW_ID})"
    if style.dashed:
        attrs["stroke-dasharray"] = "6 4"
    parts = [_tag("path", attrs)]
    if style.label is not None:
        parts.append(_edge_label(style.label, style.colour, x, y))
    ends = {"data-from": source.node.id, "data-to": target.node.id}
    return _tag("g", {"class": f"edge {kind}", **ends}, "".join(parts))


def _edge_label(label: str, colour: str, x: float, y: float) -> str:
    attrs: dict[str, str | float] = {
        "class": "label",
        "x": x,
        "y": y,
        "text-anchor": "end",
        "font-size": 10,
        "fill": colour,
        "stroke": "#ffffff",
        "stroke-width": 3,
        "paint-order": "stroke",
    }
    return _text(attrs, label)


def _arrow_marker() -> str:
    head = _tag(
        "path", {"d": "M0,0 L10,5 L0,10 z", "fill": _EDGE_STYLES["next"].colour}
    )
    marker = _tag(
        "marker",
        {
            "id": _ARROW_ID,
            "viewBox": "0 0 10 10",
            "refX": 10,
            "refY": 5,
            "markerWidth": 7,
            "markerHeight": 7,
            "orient": "auto",
        },
        head,
    )
    return _tag("defs", {}, marker)


def to_svg(
    tree: TreeNode, *, href: Callable[[TreeNode], str | None] | None = None
) -> str:
    """The tree as one standalone ``<svg>`` element (no XML prolog).

    ``href``, when given, names the link of a node (``None``: no link); the
    dashboard links each node to its own page.
    """
    root = _layout(tree)
    boxes = list(_walk(root))
    columns = max(box.depth for box in boxes) + 1
    width = 2 * _MARGIN + columns * _NODE_WIDTH + (columns - 1) * _COLUMN_GAP
    height = 2 * _MARGIN + root.extent
    edges = "".join(_svg_edge(edge) for edge in _edges(root))
    nodes = "".join(
        _svg_node(box, None if href is None else href(box.node)) for box in boxes
    )
    background = _tag(
        "rect",
        {"class": "background", "width": "100%", "height": "100%", "fill": "#ffffff"},
    )
    return _tag(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "class": "mageflow-graph",
            "viewBox": f"0 0 {_number(width)} {_number(height)}",
            "width": width,
            "height": height,
            "font-family": "system-ui, -apple-system, 'Segoe UI', sans-serif",
            "font-size": 12,
            "role": "img",
            "aria-label": _clip(f"mageflow workflow {tree.id}", _TITLE_LIMIT),
        },
        _arrow_marker() + background + edges + nodes,
    )


# --- Mermaid -------------------------------------------------------------------

_MERMAID_ESCAPES = str.maketrans(
    {
        "#": "#35;",
        '"': "#quot;",
        "&": "#amp;",
        "<": "#lt;",
        ">": "#gt;",
        "`": "#96;",
    }
)


def _mermaid_text(value: str) -> str:
    """``value`` for inside a quoted Mermaid label, as entity codes: no
    quote can end the label and no ``<`` can open a tag."""
    return _clean(value).translate(_MERMAID_ESCAPES)


def to_mermaid(tree: TreeNode) -> str:
    """The tree as a Mermaid ``flowchart LR``, for docs and markdown issues.

    Nodes are named ``n0``, ``n1``... in depth-first order, never by their
    stored id.
    """
    root = _measure(tree)
    names = {id(box): f"n{n}" for n, box in enumerate(_walk(root))}
    lines = ["flowchart LR"]
    by_status: dict[str, list[str]] = {}
    for box in _walk(root):
        name = names[id(box)]
        label = _mermaid_text(f"{box.card.heading} [{box.node.status}]")
        lines.append(f'    {name}["{label}"]')
        by_status.setdefault(_token(box.node.status), []).append(name)
    links = []
    for n, (source, target, kind) in enumerate(_edges(root)):
        style = _EDGE_STYLES[kind]
        arrow = "-.->" if style.dashed else "-->"
        label = "" if style.label is None else f"|{style.label}|"
        lines.append(f"    {names[id(source)]} {arrow}{label} {names[id(target)]}")
        links.append(f"    linkStyle {n} stroke:{style.colour}")
    for status, members in by_status.items():
        fill = STATUS_COLOURS.get(status, STATUS_COLOURS[_UNKNOWN])
        cls = "status_" + status.replace("-", "_")
        colours = f"fill:{fill},stroke:{_BORDER_COLOUR},color:{_TEXT_COLOUR}"
        lines.append(f"    classDef {cls} {colours}")
        lines.append(f"    class {','.join(members)} {cls}")
    return "\n".join(lines + links) + "\n"


# --- DOT -----------------------------------------------------------------------


def _dot_quote(value: str) -> str:
    """``value`` as a quoted DOT string; ``\\n`` in it stays a line break."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n") + '"'


def _dot_label(card: _Card) -> str:
    status = (
        card.status if card.duration is None else f"{card.status} · {card.duration}"
    )
    lines = [card.heading, status, card.detail, card.counts, card.window]
    return "\n".join(line for line in lines if line is not None)


def to_dot(tree: TreeNode) -> str:
    """The tree as Graphviz DOT (``dot -Tpng``), for docs and other tools.

    Nodes are named ``"n0"``, ``"n1"``... in depth-first order, so a
    signature that appears twice (``already shown above``) stays two nodes.
    """
    root = _measure(tree)
    names = {id(box): f"n{n}" for n, box in enumerate(_walk(root))}
    lines = [
        "digraph mageflow {",
        "    rankdir=LR;",
        '    node [shape=box, style="rounded,filled", fontname="Helvetica", '
        f'fontsize=11, color="{_BORDER_COLOUR}", fontcolor="{_TEXT_COLOUR}"];',
        '    edge [fontname="Helvetica", fontsize=10];',
    ]
    lines.extend(_dot_node(box, names[id(box)]) for box in _walk(root))
    for source, target, kind in _edges(root):
        lines.append(_dot_edge(names[id(source)], names[id(target)], kind))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_attrs(attrs: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={_dot_quote(value)}" for key, value in attrs.items())


def _dot_node(box: _Box, name: str) -> str:
    attrs = {
        "label": _dot_label(box.card),
        "tooltip": box.card.title,
        "fillcolor": _colour(box.node),
        "class": _classes(box.node),
    }
    if box.node.problem is not None:
        attrs["style"] = "rounded,filled,dashed"
    return f'    "{name}" [{_dot_attrs(attrs)}];'


def _dot_edge(source: str, target: str, kind: str) -> str:
    style = _EDGE_STYLES[kind]
    attrs = {"color": style.colour, "class": kind}
    if style.label is not None:
        attrs |= {"label": style.label, "fontcolor": style.colour}
    if style.dashed:
        attrs["style"] = "dashed"
    return f'    "{source}" -> "{target}" [{_dot_attrs(attrs)}];'
