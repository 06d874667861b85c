"""The system diagram: systems grouped by country and party, flows coloured by verdict.

Names, not ARNs, are drawn; the id is on hover (`<title>`) and in the report's tables. Flows
carry no label (a label per flow is what made 89 ARNs overlap): colour says the verdict, hover
says which flow. The layout is a grid of country groups a fixed 1,040 px wide, so text is
drawn at 11-13 px and stays that size in a 1,400 px window whatever the estate; beyond
`MAX_NODES` systems, groups of systems collapse into one box ("aws:eu-west-1 · 240 systems").

Mermaid renders on GitHub, DOT/SVG for documents (Graphviz's `dot` when on PATH and its
drawing fits the width, else the grid layout written here), GraphML and JSON carry every
system and flow, uncollapsed, for graph tools.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from html import escape
from typing import TYPE_CHECKING, Literal

from residency.model import Party, Report, ResolvedLocation, System
from residency.reports import ReportError
from residency.reports._common import (
    VERDICT_COLOURS,
    Verdict,
    country_groups,
    flow_verdicts,
    summarise_countries,
    where,
)

if TYPE_CHECKING:
    from residency.policy.pack import PolicyPack

DIAGRAM_FORMATS = ("mermaid", "dot", "svg", "graphml", "json")
MAX_NODES = 500  # boxes drawn; past this, systems of one place and party share a box
WIDTH = 1040  # px: the report's column at 1,400 px, so the drawing is never scaled down
# Graphviz text is 12 px at least: its drawing may be shrunk by 11/12 into the 1,050 px column
DOT_MAX_WIDTH = 1_140
DOT_MAX_NODES, DOT_MAX_EDGES = 120, 400  # `auto` tries Graphviz below these only
WORST = (Verdict.ERROR, Verdict.WARNING, Verdict.LAWFUL, Verdict.SAME_ENTITY, Verdict.DOMESTIC)


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    label: str
    party: str
    role: str
    countries: str
    group: str = ""  # the place it is drawn under: "DE", "EU (27)", "?" (unknown)
    group_label: str = ""  # "Germany (DE)"
    location: str = ""  # "aws:eu-central-1", as declared or collected
    access_from: tuple[str, ...] = ()
    count: int = 1  # more than 1: a collapsed box standing for that many systems


@dataclass(frozen=True, slots=True)
class Edge:
    flow: str
    source: str
    target: str
    verdict: Verdict
    data_categories: tuple[str, ...]
    count: int = 1  # flows this edge stands for (collapsed boxes, parallel flows)

    @property
    def colour(self) -> str:
        return VERDICT_COLOURS[self.verdict]


@dataclass(frozen=True, slots=True)
class Diagram:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    systems: int = 0  # systems drawn (more than len(nodes) once collapsed)


def build_diagram(
    report: Report, parties: Mapping[str, Party] | None = None,
    pack: PolicyPack | None = None,
) -> Diagram:
    """Every system and flow; `collapse` makes the drawable version of a large estate."""
    if pack is None:
        from residency.policy.pack import PolicyPack

        pack = PolicyPack.load()
    parties = parties or {}
    resolved = dict(report.resolved)
    groups = country_groups(pack)
    nodes = tuple(_node(s, resolved.get(s.id), parties, groups, pack) for s in report.systems)
    verdicts = flow_verdicts(report)
    edges = tuple(
        Edge(f.id, f.source, f.target, verdicts[f.id], tuple(sorted(f.data_categories)))
        for f in report.flows
    )
    return Diagram(nodes, edges, len(nodes))


def _node(
    s: System, r: ResolvedLocation | None, parties: Mapping[str, Party],
    groups: Mapping[str, frozenset[str]], pack: PolicyPack,
) -> Node:
    if r is None or r.unresolved:
        key, label = "?", "Location unknown"
    elif r.any_country:
        key, label = "*", "Any country"
    elif len(r.countries) == 1:
        (key,) = r.countries
        label = f"{pack.country_name(key)} ({key})"
    else:
        key = summarise_countries(r.countries, groups)
        label = f"{key} multi-region" if s.location.provider else key
    party = parties[s.party].name if s.party in parties else s.party
    loc = s.location.describe() if s.location.provider else ""
    return Node(s.id, s.name or s.id, party, s.role.value, where(s, r), key, label, loc,
                tuple(sorted(s.access_from)))


# ---------------------------------------------------------------------- collapsing
def collapse(d: Diagram, max_nodes: int = MAX_NODES) -> Diagram:
    """At most `max_nodes` boxes: systems sharing place, party and location first, then
    place and location, then place alone, share one box; flows between boxes merge."""
    if len(d.nodes) <= max_nodes:
        return d
    keys = (
        lambda n: (n.group, n.party, n.location),
        lambda n: (n.group, "", n.location),
        lambda n: (n.group, "", ""),
    )
    for key in keys:
        buckets: dict[tuple[str, str, str], list[Node]] = {}
        for n in d.nodes:
            buckets.setdefault(key(n), []).append(n)
        if len(buckets) <= max_nodes or key is keys[-1]:
            break
    box: dict[str, str] = {}
    nodes: list[Node] = []
    for (group, party, loc), members in buckets.items():
        if len(members) == 1:
            nodes.append(members[0])
            box[members[0].id] = members[0].id
            continue
        ident = f"group:{group}:{party}:{loc}"
        place = loc or members[0].group_label
        roles = sorted({m.role for m in members})
        nodes.append(Node(ident, f"{place} · {len(members):,} systems",
                          party or f"{len({m.party for m in members}):,} parties",
                          "/".join(roles), members[0].group_label, group,
                          members[0].group_label, loc,
                          tuple(sorted({a for m in members for a in m.access_from})),
                          len(members)))
        for m in members:
            box[m.id] = ident
    edges = tuple(replace(e, source=box.get(e.source, e.source),
                          target=box.get(e.target, e.target)) for e in d.edges)
    return Diagram(tuple(nodes), merge_edges(edges), d.systems)


def merge_edges(edges: Iterable[Edge]) -> tuple[Edge, ...]:
    """One edge per (source, target): the worst verdict, every flow counted."""
    rank = {v: i for i, v in enumerate(WORST)}
    merged: dict[tuple[str, str], Edge] = {}
    for e in edges:
        key = (e.source, e.target)
        old = merged.get(key)
        if old is None:
            merged[key] = e
            continue
        worst = min(old.verdict, e.verdict, key=rank.__getitem__)
        cats = tuple(sorted(set(old.data_categories) | set(e.data_categories)))
        merged[key] = Edge(old.flow, old.source, old.target, worst, cats, old.count + e.count)
    return tuple(merged.values())


def _edge_text(e: Edge, names: Mapping[str, str]) -> str:
    what = e.flow if e.count == 1 else f"{e.count:,} flows (first {e.flow})"
    cats = f"; {', '.join(e.data_categories)}" if e.data_categories else ""
    return (f"{what}: {names.get(e.source, e.source)} → {names.get(e.target, e.target)} "
            f"({e.verdict.value}{cats})")


def render_diagram(diagram: Diagram, fmt: str) -> str:
    if fmt == "mermaid":
        return to_mermaid(diagram)
    if fmt == "dot":
        return to_dot(diagram)
    if fmt == "svg":
        return to_svg(diagram)
    if fmt == "graphml":
        return to_graphml(diagram)
    if fmt == "json":
        return to_json(diagram)
    raise ValueError(f"unknown diagram format {fmt!r}")


# ---------------------------------------------------------------------- mermaid
def _mid(ident: str) -> str:
    return "n_" + "".join(c if c.isalnum() else "_" for c in ident)


def _mtext(text: str) -> str:
    return text.replace('"', "#quot;")


def to_mermaid(d: Diagram) -> str:
    """Nodes first (the output's marker), then one subgraph per place, then the flows."""
    d = collapse(d)
    lines = ["flowchart LR"]
    for n in d.nodes:
        extra = f"<br/>access from {', '.join(n.access_from)}" if n.access_from else ""
        lines.append(f'  {_mid(n.id)}["{_mtext(n.label)}<br/><small>{_mtext(n.party)} · '
                     f'{_mtext(n.location or n.group)}</small>{extra}"]')
    for k, (label, members) in enumerate(_by_group(d.nodes)):
        lines.append(f'  subgraph g{k}["{_mtext(label)}"]')
        lines.extend(f"    {_mid(n.id)}" for n in members)
        lines.append("  end")
    edges = merge_edges(d.edges)
    for i, e in enumerate(edges):
        style = "-.->" if e.verdict is Verdict.SAME_ENTITY else "-->"
        lines.append(f"  {_mid(e.source)} {style} {_mid(e.target)}")
        lines.append(f"  linkStyle {i} stroke:{e.colour},stroke-width:2px")
    lines.append("  %% edge colours: " + ", ".join(f"{v.value}={c}"
                                                     for v, c in VERDICT_COLOURS.items()))
    return "\n".join(lines) + "\n"


def _by_group(nodes: Iterable[Node]) -> list[tuple[str, list[Node]]]:
    groups: dict[str, list[Node]] = {}
    labels: dict[str, str] = {}
    for n in nodes:
        groups.setdefault(n.group, []).append(n)
        labels.setdefault(n.group, n.group_label or n.group or "unplaced")
    return [(labels[k], v) for k, v in groups.items()]


# ---------------------------------------------------------------------- dot
def _dq(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(d: Diagram) -> str:
    """Clusters per place, then per party; flows left to right, no edge labels (tooltips)."""
    d = collapse(d)
    lines = [
        "digraph residency {",
        "  rankdir=LR; newrank=true; nodesep=0.12; ranksep=0.45;",
        '  graph [fontname="Helvetica", fontsize=13, labeljust=l];',
        '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", color="#57606a", '
        'fontname="Helvetica", fontsize=12, margin="0.08,0.04"];',
        '  edge [arrowsize=0.6, penwidth=1.4];',
    ]
    for k, (label, members) in enumerate(_by_group(d.nodes)):
        lines.append(f"  subgraph cluster_{k} {{ label={_dq(label)}; style=rounded; "
                     'color="#d1d9e0"; bgcolor="#f6f8fa";')
        parties: dict[str, list[Node]] = {}
        for n in members:
            parties.setdefault(n.party, []).append(n)
        for j, (party, nodes) in enumerate(parties.items()):
            lines.append(f"    subgraph cluster_{k}_{j} {{ label={_dq(party)}; fontsize=12; "
                         'style="rounded,dashed"; color="#afb8c1"; bgcolor="#ffffff";')
            for n in nodes:
                lines.append(f"      {_dq(n.id)} [label={_html_label(n)}, "
                             f"tooltip={_dq(n.id)}];")
            lines.append("    }")
        lines.append("  }")
    names = {n.id: n.label for n in d.nodes}
    for e in merge_edges(d.edges):
        style = ', style="dashed"' if e.verdict is Verdict.SAME_ENTITY else ""
        lines.append(f"  {_dq(e.source)} -> {_dq(e.target)} [color={_dq(e.colour)}, "
                     f"tooltip={_dq(_edge_text(e, names))}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _html_label(n: Node) -> str:
    """One table row per line: Graphviz then spaces lines by more than the font's box."""
    rows = [f'<TR><TD><B>{escape(t)}</B></TD></TR>' for t in _wrap(n.label, 26)]
    detail = f"{n.role} · {n.location}" if n.location else n.role
    rows += [f'<TR><TD><FONT COLOR="#59636e">{escape(t)}</FONT></TD></TR>'
             for t in _wrap(detail, 30)]
    if n.access_from:
        text = f"remote access from {', '.join(n.access_from)}"
        rows += [f'<TR><TD><FONT COLOR="#cf222e"><B>{escape(t)}</B></FONT>'
                 "</TD></TR>" for t in _wrap(text, 30)]
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
            + "".join(rows) + "</TABLE>>")


# ---------------------------------------------------------------------- svg
SVG_OPEN = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            'viewBox="0 0 {w:.0f} {h:.0f}" width="{w:.0f}" height="{h:.0f}" role="img" '
            'aria-label="Data flow diagram" class="flow-diagram" data-engine="{engine}" '
            'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif">')


def to_svg(d: Diagram, engine: Literal["auto", "dot", "python"] = "auto") -> str:
    """An SVG document. `auto`: Graphviz when on PATH and its drawing fits `WIDTH` (else its
    text would be shrunk below 11 px), the built-in grid otherwise."""
    d = collapse(d)
    exe = shutil.which("dot") if engine != "python" else None
    if engine == "dot" and exe is None:
        raise ReportError("Graphviz `dot` is not on PATH (install graphviz or use the "
                          "built-in layout)")
    if engine == "auto" and (len(d.nodes) > DOT_MAX_NODES
                             or len(merge_edges(d.edges)) > DOT_MAX_EDGES):
        exe = None  # its drawing would not fit the width, and it takes minutes to find out
    if exe:
        svg = _graphviz_svg(exe, d)
        if engine == "dot" or _svg_width(svg) <= DOT_MAX_WIDTH:
            return svg
    return _grid_svg(d)


_VIEWBOX = re.compile(r'viewBox="([-\d.]+) ([-\d.]+) ([\d.]+) ([\d.]+)"')


def _graphviz_svg(exe: str, d: Diagram) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, DOT text on stdin
            [exe, "-Tsvg"], input=to_dot(d), capture_output=True, text=True, check=True,
            timeout=120,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ReportError(f"Graphviz `dot` failed: {exc}") from None
    body = done.stdout[done.stdout.find("<svg"):]
    head_end = body.find(">") + 1
    box = _VIEWBOX.search(body[:head_end])
    if box is None:
        raise ReportError("Graphviz `dot` wrote an SVG without a viewBox")
    # one SVG unit per CSS pixel (Graphviz writes pt): the 12-unit text is then 12 px
    w, h = float(box.group(3)), float(box.group(4))
    head = SVG_OPEN.format(w=w, h=h, engine="graphviz").replace(
        'viewBox="0 0', f'viewBox="{box.group(1)} {box.group(2)}', 1)
    return head + body[head_end:]


def _svg_width(svg: str) -> float:
    found = re.search(r'width="([\d.]+)"', svg[:600])
    return float(found.group(1)) if found else float("inf")


def _layers(d: Diagram) -> list[list[str]]:
    """Longest-path depth from the roots, linear in nodes + edges on any shape.

    A depth-first walk (roots first, then map order) sets aside the edges that close a
    cycle, so a processor sending data back to its controller is drawn as an upward
    edge; one topological pass over the rest gives each node its depth. Acyclic maps keep
    the plain longest-path layering.
    """
    ids = [n.id for n in d.nodes]
    succ: dict[str, list[str]] = {i: [] for i in ids}
    pred: dict[str, list[str]] = {i: [] for i in ids}
    for e in d.edges:
        if e.source in succ and e.target in succ:
            pred[e.target].append(e.source)
            if e.source != e.target:
                succ[e.source].append(e.target)
    forward = _drop_back_edges(ids, succ, pred)
    indegree = dict.fromkeys(ids, 0)
    for targets in forward.values():
        for t in targets:
            indegree[t] += 1
    depth = dict.fromkeys(ids, 0)
    ready = deque(i for i in ids if not indegree[i])
    while ready:
        node = ready.popleft()
        for t in forward[node]:
            depth[t] = max(depth[t], depth[node] + 1)
            indegree[t] -= 1
            if not indegree[t]:
                ready.append(t)
    layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=0) + 1)]
    for i in ids:
        layers[depth[i]].append(i)
    # order each layer by the mean position of its parents (fewer crossings)
    pos = {i: k for k, i in enumerate(layers[0])}
    for layer in layers[1:]:
        parents = {i: [pos[p] for p in pred[i] if p in pos] for i in layer}
        layer.sort(key=lambda i: sum(parents[i]) / len(parents[i]) if parents[i] else 1e9)
        pos.update({i: k for k, i in enumerate(layer)})
    return [layer for layer in layers if layer]


def _drop_back_edges(
    ids: list[str], succ: dict[str, list[str]], pred: dict[str, list[str]]
) -> dict[str, list[str]]:
    """`succ` without the edges a depth-first walk finds pointing back into its own path."""
    forward: dict[str, list[str]] = {i: [] for i in ids}
    state: dict[str, int] = {}  # 1 on the walk's path, 2 finished
    starts = [i for i in ids if not any(p != i for p in pred[i])]
    for start in (*starts, *ids):
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(succ[start]))]
        while stack:
            node, it = stack[-1]
            for t in it:
                seen = state.get(t)
                if seen == 1:
                    continue  # closes a cycle: laid out as an upward edge
                forward[node].append(t)
                if seen is None:
                    state[t] = 1
                    stack.append((t, iter(succ[t])))
                    break
            else:
                state[node] = 2
                stack.pop()
    return forward


# ---------------------------------------------------------------------- the grid layout
PAD, COLS, COL_GAP = 12, 4, 28
COL_W = (WIDTH - 2 * PAD - (COLS - 1) * COL_GAP) / COLS
BOX_PAD, LINE = 8, 15  # px inside a box; px per text line
CHAR = 0.62  # average glyph advance in em, on the wide side (DejaVu Sans, bold)
BIG = 12  # a place with more systems than this spans the whole width


@dataclass(frozen=True, slots=True)
class _Text:
    x: float
    y: float
    text: str
    size: int
    fill: str
    bold: bool = False


@dataclass(frozen=True, slots=True)
class _Box:
    node: Node
    x: float
    y: float
    w: float
    lines: tuple[tuple[str, int, str, bool], ...]  # text, px, colour, bold

    @property
    def h(self) -> float:
        return 2 * BOX_PAD + LINE * len(self.lines) - 3


def _wrap(text: str, width: int) -> list[str]:
    """Words onto lines of at most `width` characters; a longer word is cut, never hidden."""
    out: list[str] = []
    line = ""
    for whole in text.split():
        word = whole
        while len(word) > width:
            if line:
                out.append(line)
                line = ""
            out.append(word[:width])
            word = word[width:]
        if not line:
            line = word
        elif len(line) + 1 + len(word) <= width:
            line += " " + word
        else:
            out.append(line)
            line = word
    if line:
        out.append(line)
    return out or [""]


def _chars(width: float, size: int) -> int:
    return max(8, int(width / (size * CHAR)))


def _box_lines(n: Node, w: float) -> tuple[tuple[str, int, str, bool], ...]:
    inner = w - 2 * BOX_PAD
    lines = [(t, 12, "#1f2328", True) for t in _wrap(n.label, _chars(inner, 12))]
    detail = f"{n.role} · {n.location}" if n.location else n.role
    lines += [(t, 11, "#59636e", False) for t in _wrap(detail, _chars(inner, 11))]
    if n.access_from:
        text = f"remote access from {', '.join(n.access_from)}"
        lines += [(t, 11, "#cf222e", True) for t in _wrap(text, _chars(inner, 11))]
    return tuple(lines)


@dataclass
class _Grid:
    """Where everything goes: place groups in columns, big places across the width."""

    texts: list[_Text]
    boxes: dict[str, _Box]
    panels: list[tuple[float, float, float, float]]  # x, y, w, h of each place
    heights: list[float]

    def place(self, label: str, members: Sequence[Node]) -> None:
        if len(members) > BIG:
            self._wide(label, members)
            return
        col = min(range(len(self.heights)), key=self.heights.__getitem__)
        x, y = PAD + col * (COL_W + COL_GAP), self.heights[col]
        end = self._column(label, members, x, y, COL_W)
        self.panels.append((x, y, COL_W, end - y))
        self.heights[col] = end + 14

    def _header(self, label: str, x: float, y: float, w: float) -> float:
        for line in _wrap(label, _chars(w - 16, 13)):
            self.texts.append(_Text(x + 8, y + 17, line, 13, "#1f2328", True))
            y += 17
        return y + 8

    def _column(self, label: str, members: Sequence[Node], x: float, y: float,
                w: float) -> float:
        y = self._header(label, x, y, w)
        for party, nodes in _parties(members):
            y = self._party(party, x, y, w)
            for n in nodes:
                box = _Box(n, x + 8, y, w - 16, _box_lines(n, w - 16))
                self.boxes[n.id] = box
                y += box.h + 6
        return y + 4

    def _party(self, party: str, x: float, y: float, w: float) -> float:
        for line in _wrap(party, _chars(w - 16, 11)):
            self.texts.append(_Text(x + 8, y + 12, line, 11, "#59636e"))
            y += 14
        return y + 3

    def _wide(self, label: str, members: Sequence[Node]) -> None:
        y = max(self.heights)
        top = y
        w = WIDTH - 2 * PAD
        y = self._header(label, PAD, y, w)
        cell = (w - 16 - (COLS - 1) * 8) / COLS
        for party, nodes in _parties(members):
            y = self._party(party, PAD, y, w)
            for start in range(0, len(nodes), COLS):
                row = [_Box(n, PAD + 8 + k * (cell + 8), y, cell, _box_lines(n, cell))
                       for k, n in enumerate(nodes[start:start + COLS])]
                for box in row:
                    self.boxes[box.node.id] = box
                y += max(b.h for b in row) + 6
        self.panels.append((PAD, top, w, y + 4 - top))
        self.heights = [y + 18] * len(self.heights)


def _parties(members: Sequence[Node]) -> list[tuple[str, list[Node]]]:
    out: dict[str, list[Node]] = {}
    for n in members:
        out.setdefault(n.party, []).append(n)
    return list(out.items())


def _ordered_groups(d: Diagram) -> list[tuple[str, list[Node]]]:
    """Places in the order data reaches them: by the shallowest depth of their systems."""
    depth = {i: k for k, layer in enumerate(_layers(d)) for i in layer}
    groups = _by_group(d.nodes)
    first = {id(g): k for k, g in enumerate(groups)}
    return sorted(groups, key=lambda g: (min(depth.get(n.id, 0) for n in g[1]), first[id(g)]))


def _legend(d: Diagram, y: float) -> tuple[list[str], float]:
    out: list[str] = []
    x = float(PAD)
    for v, colour in VERDICT_COLOURS.items():
        out.append(f'<rect x="{x:.0f}" y="{y - 8:.0f}" width="16" height="4" fill="{colour}"/>'
                   f'<text x="{x + 20:.0f}" y="{y:.0f}" font-size="12" fill="#1f2328">'
                   f"{escape(v.value)}</text>")
        x += 34 + 12 * CHAR * len(v.value)
    if d.systems > len(d.nodes):
        y += 18
        out.append(f'<text x="{PAD}" y="{y:.0f}" font-size="12" fill="#59636e">'
                   f"{d.systems:,} systems drawn as {len(d.nodes):,} boxes: systems of one "
                   "place and party share a box; every system is in the tables.</text>")
    return out, y + 14


def _grid_svg(d: Diagram) -> str:
    legend, top = _legend(d, PAD + 12.0)
    grid = _Grid([], {}, [], [top] * min(COLS, max(1, len(_by_group(d.nodes)))))
    for label, members in _ordered_groups(d):
        grid.place(label, members)
    height = max(grid.heights) + PAD
    width = WIDTH if len(grid.heights) == COLS or (grid.panels and any(
        p[2] > COL_W for p in grid.panels)) else (
        2 * PAD + len(grid.heights) * COL_W + (len(grid.heights) - 1) * COL_GAP)
    out = [SVG_OPEN.format(w=width, h=height, engine="builtin"), "<defs>"]
    for v, colour in VERDICT_COLOURS.items():
        out.append(f'<marker id="arrow-{v.value}" viewBox="0 0 10 10" refX="10" refY="5" '
                   'markerWidth="6" markerHeight="6" orient="auto-start-reverse">'
                   f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>')
    out.append("</defs>")
    out.extend(legend)
    for x, y, w, h in grid.panels:
        out.append(f'<rect class="place" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
                   f'height="{h:.1f}" rx="8" fill="#f6f8fa" stroke="#d1d9e0"/>')
    names = {n.id: n.label for n in d.nodes}
    out.extend(_edge_svg(e, grid.boxes, names) for e in merge_edges(d.edges)
               if e.source in grid.boxes and e.target in grid.boxes)
    out.extend(_box_svg(b) for b in grid.boxes.values())
    out.extend(_text_svg(t) for t in grid.texts)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _edge_svg(e: Edge, boxes: Mapping[str, _Box], names: Mapping[str, str]) -> str:
    a, b = boxes[e.source], boxes[e.target]
    ay, by = a.y + a.h / 2, b.y + b.h / 2
    if b.x > a.x + a.w / 2:
        x1, x2, c1, c2 = a.x + a.w, b.x, 60.0, -60.0
    elif b.x + b.w < a.x + a.w / 2:
        x1, x2, c1, c2 = a.x, b.x + b.w, -60.0, 60.0
    else:  # same column: out of the right side and back in
        x1, x2, c1, c2 = a.x + a.w, b.x + b.w, 24.0, 24.0
    dash = ' stroke-dasharray="5,4"' if e.verdict is Verdict.SAME_ENTITY else ""
    width = 1.4 + min(e.count - 1, 4) * 0.6
    return (f'<g class="edge {e.verdict.value}"><title>{escape(_edge_text(e, names))}</title>'
            f'<path d="M{x1:.1f},{ay:.1f} C{x1 + c1:.1f},{ay:.1f} {x2 + c2:.1f},{by:.1f} '
            f'{x2:.1f},{by:.1f}" fill="none" stroke="{e.colour}" stroke-width="{width:.1f}" '
            f'stroke-opacity="0.75"{dash} marker-end="url(#arrow-{e.verdict.value})"/></g>')


def _box_svg(b: _Box) -> str:
    n = b.node
    hover = n.id if n.count == 1 else f"{n.count:,} systems in {n.group_label}"
    hover += f" ({n.role}) — {n.party}; {n.countries}"
    stroke = "#cf222e" if n.access_from else "#57606a"
    parts = [f'<g class="node"><title>{escape(hover)}</title>'
             f'<rect x="{b.x:.1f}" y="{b.y:.1f}" width="{b.w:.1f}" height="{b.h:.1f}" rx="5" '
             f'fill="#ffffff" stroke="{stroke}"/>']
    y = b.y + BOX_PAD + 10
    for text, size, fill, bold in b.lines:
        weight = ' font-weight="600"' if bold else ""
        parts.append(f'<text x="{b.x + BOX_PAD:.1f}" y="{y:.1f}" font-size="{size}"{weight} '
                     f'fill="{fill}">{escape(text)}</text>')
        y += LINE
    parts.append("</g>")
    return "".join(parts)


def _text_svg(t: _Text) -> str:
    weight = ' font-weight="600"' if t.bold else ""
    return (f'<text class="label" x="{t.x:.1f}" y="{t.y:.1f}" font-size="{t.size}"{weight} '
            f'fill="{t.fill}">{escape(t.text)}</text>')


# ---------------------------------------------------------------------- graphml / json
def to_graphml(d: Diagram) -> str:
    import networkx as nx

    g = nx.MultiDiGraph()
    for n in d.nodes:
        g.add_node(n.id, label=n.label, party=n.party, role=n.role, countries=n.countries,
                   group=n.group_label)
    for e in d.edges:
        g.add_edge(e.source, e.target, key=e.flow, flow=e.flow, verdict=e.verdict.value,
                   color=e.colour, data_categories=",".join(e.data_categories))
    return "\n".join(nx.generate_graphml(g)) + "\n"


def to_json(d: Diagram) -> str:
    data = {
        "nodes": [{"id": n.id, "label": n.label, "party": n.party, "role": n.role,
                   "countries": n.countries, "group": n.group_label} for n in d.nodes],
        "edges": [{"flow": e.flow, "source": e.source, "target": e.target,
                   "verdict": e.verdict.value, "color": e.colour,
                   "data_categories": list(e.data_categories)} for e in d.edges],
        "legend": {v.value: c for v, c in VERDICT_COLOURS.items()},
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
