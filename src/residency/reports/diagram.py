"""The flow diagram: systems as boxes labelled with their countries, flows coloured by verdict.

Mermaid renders on GitHub, DOT/SVG for documents (Graphviz's `dot` when on PATH, else a small
layered layout written here), GraphML for graph tools and JSON for anything else.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Literal

from residency.model import Party, Report
from residency.reports import ReportError
from residency.reports._common import VERDICT_COLOURS, Verdict, flow_verdicts, where

DIAGRAM_FORMATS = ("mermaid", "dot", "svg", "graphml", "json")


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    label: str
    party: str
    role: str
    countries: str


@dataclass(frozen=True, slots=True)
class Edge:
    flow: str
    source: str
    target: str
    verdict: Verdict
    data_categories: tuple[str, ...]

    @property
    def colour(self) -> str:
        return VERDICT_COLOURS[self.verdict]


@dataclass(frozen=True, slots=True)
class Diagram:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


def build_diagram(report: Report, parties: Mapping[str, Party] | None = None) -> Diagram:
    parties = parties or {}
    resolved = dict(report.resolved)
    nodes = tuple(
        Node(
            s.id,
            s.name or s.id,
            parties[s.party].name if s.party in parties else s.party,
            s.role.value,
            where(s, resolved.get(s.id)),
        )
        for s in report.systems
    )
    verdicts = flow_verdicts(report)
    edges = tuple(
        Edge(f.id, f.source, f.target, verdicts[f.id], tuple(sorted(f.data_categories)))
        for f in report.flows
    )
    return Diagram(nodes, edges)


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
    lines = ["flowchart LR"]
    for n in d.nodes:
        lines.append(f'  {_mid(n.id)}["{_mtext(n.label)}<br/><small>{_mtext(n.party)}'
                     f'</small><br/>{_mtext(n.countries)}"]')
    for i, e in enumerate(d.edges):
        style = "-.->" if e.verdict is Verdict.SAME_ENTITY else "-->"
        lines.append(f'  {_mid(e.source)} {style}|"{_mtext(e.flow)}"| {_mid(e.target)}')
        lines.append(f"  linkStyle {i} stroke:{e.colour},stroke-width:2px")
    lines.append("  %% edge colours: " + ", ".join(f"{v.value}={c}"
                                                     for v, c in VERDICT_COLOURS.items()))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- dot
def _dq(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(d: Diagram) -> str:
    lines = [
        "digraph residency {",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded", fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for n in d.nodes:
        label = "\n".join((n.label, n.party, n.countries))
        lines.append(f"  {_dq(n.id)} [label={_dq(label)}];")
    for e in d.edges:
        style = ', style="dashed"' if e.verdict is Verdict.SAME_ENTITY else ""
        lines.append(
            f"  {_dq(e.source)} -> {_dq(e.target)} [label={_dq(e.flow)}, color={_dq(e.colour)}, "
            f"fontcolor={_dq(e.colour)}, tooltip={_dq(e.verdict.value)}{style}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- svg
def to_svg(d: Diagram, engine: Literal["auto", "dot", "python"] = "auto") -> str:
    """An SVG document; `dot` when available (unless `engine="python"`)."""
    exe = shutil.which("dot") if engine != "python" else None
    if engine == "dot" and exe is None:
        raise ReportError("Graphviz `dot` is not on PATH (install graphviz or use the "
                          "built-in layout)")
    if exe:
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv, DOT text on stdin
                [exe, "-Tsvg"], input=to_dot(d), capture_output=True, text=True, check=True,
                timeout=60,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise ReportError(f"Graphviz `dot` failed: {exc}") from None
        return done.stdout[done.stdout.find("<svg"):]
    return _layered_svg(d)


BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 190, 58, 24, 80, 16
LABEL_T = 0.62  # where along an edge its label sits: nearer the target spreads fan-outs


def _qb(a: float, m: float, b: float, t: float) -> float:
    """A point on the quadratic Bézier a-m-b at parameter t."""
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * m + t * t * b


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


def _layered_svg(d: Diagram) -> str:
    layers = _layers(d)
    widest = max((len(layer) for layer in layers), default=1)
    width = PAD * 2 + widest * BOX_W + (widest - 1) * GAP_X
    legend_h = 24
    height = PAD * 2 + len(layers) * BOX_H + (len(layers) - 1) * GAP_Y + legend_h
    centre: dict[str, tuple[float, float]] = {}
    for row, layer in enumerate(layers):
        row_w = len(layer) * BOX_W + (len(layer) - 1) * GAP_X
        x0 = (width - row_w) / 2
        y = PAD + legend_h + row * (BOX_H + GAP_Y)
        for k, ident in enumerate(layer):
            centre[ident] = (x0 + k * (BOX_W + GAP_X) + BOX_W / 2, y + BOX_H / 2)
    nodes = {n.id: n for n in d.nodes}
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" role="img" '
        'aria-label="Data flow diagram" class="flow-diagram" '
        'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif">',
        "<defs>",
    ]
    for v, colour in VERDICT_COLOURS.items():
        out.append(f'<marker id="arrow-{v.value}" viewBox="0 0 10 10" refX="10" refY="5" '
                   'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
                   f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>')
    out.append("</defs>")
    x = PAD
    for v, colour in VERDICT_COLOURS.items():
        out.append(f'<rect x="{x}" y="{PAD - 4}" width="14" height="4" fill="{colour}"/>'
                   f'<text x="{x + 18}" y="{PAD}" font-size="11" fill="#24292f">'
                   f"{escape(v.value)}</text>")
        x += 26 + 7 * len(v.value)
    seen_pairs: dict[tuple[str, str], int] = {}
    for e in d.edges:
        if e.source not in centre or e.target not in centre:
            continue
        (sx, sy), (tx, ty) = centre[e.source], centre[e.target]
        repeat = seen_pairs.get((e.source, e.target), 0)
        seen_pairs[(e.source, e.target)] = repeat + 1
        bend = 30 * repeat
        if ty > sy:  # downward: bottom edge of source to top edge of target
            y1, y2 = sy + BOX_H / 2, ty - BOX_H / 2
        elif ty < sy:
            y1, y2 = sy - BOX_H / 2, ty + BOX_H / 2
        else:  # same layer: arc below
            y1 = y2 = sy + BOX_H / 2
            bend += 40
        mx, my = (sx + tx) / 2 + bend, (y1 + y2) / 2 + (bend if ty == sy else 0)
        dash = ' stroke-dasharray="5,4"' if e.verdict is Verdict.SAME_ENTITY else ""
        title = (f"{e.flow}: {e.source} → {e.target} ({e.verdict.value}; "
                 f"{', '.join(e.data_categories)})")
        out.append(
            f'<g class="edge {e.verdict.value}"><title>{escape(title)}</title>'
            f'<path d="M{sx:.1f},{y1:.1f} Q{mx:.1f},{my:.1f} {tx:.1f},{y2:.1f}" fill="none" '
            f'stroke="{e.colour}" stroke-width="2"{dash} '
            f'marker-end="url(#arrow-{e.verdict.value})"/>'
            f'<text x="{_qb(sx, mx, tx, LABEL_T):.1f}" y="{_qb(y1, my, y2, LABEL_T) - 3:.1f}" '
            f'font-size="10" text-anchor="middle" fill="{e.colour}" '
            f'paint-order="stroke" stroke="#ffffff" stroke-width="3">{escape(e.flow)}</text></g>'
        )
    for ident, (cx, cy) in centre.items():
        n = nodes[ident]
        x0, y0 = cx - BOX_W / 2, cy - BOX_H / 2
        out.append(
            f'<g class="node"><title>{escape(f"{n.id} ({n.role}) — {n.party}")}</title>'
            f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{BOX_W}" height="{BOX_H}" rx="6" '
            'fill="#f6f8fa" stroke="#57606a"/>'
            f'<text x="{cx:.1f}" y="{y0 + 17:.1f}" font-size="11" font-weight="600" '
            f'text-anchor="middle" fill="#24292f">{escape(_fit(n.label, 29))}</text>'
            f'<text x="{cx:.1f}" y="{y0 + 32:.1f}" font-size="10" text-anchor="middle" '
            f'fill="#57606a">{escape(_fit(n.party, 33))}</text>'
            f'<text x="{cx:.1f}" y="{y0 + 47:.1f}" font-size="10" text-anchor="middle" '
            f'fill="#0b4f8a">{escape(_fit(n.countries, 33))}</text></g>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------- graphml / json
def to_graphml(d: Diagram) -> str:
    import networkx as nx

    g = nx.MultiDiGraph()
    for n in d.nodes:
        g.add_node(n.id, label=n.label, party=n.party, role=n.role, countries=n.countries)
    for e in d.edges:
        g.add_edge(e.source, e.target, key=e.flow, flow=e.flow, verdict=e.verdict.value,
                   color=e.colour, data_categories=",".join(e.data_categories))
    return "\n".join(nx.generate_graphml(g)) + "\n"


def to_json(d: Diagram) -> str:
    data = {
        "nodes": [{"id": n.id, "label": n.label, "party": n.party, "role": n.role,
                   "countries": n.countries} for n in d.nodes],
        "edges": [{"flow": e.flow, "source": e.source, "target": e.target,
                   "verdict": e.verdict.value, "color": e.colour,
                   "data_categories": list(e.data_categories)} for e in d.edges],
        "legend": {v.value: c for v, c in VERDICT_COLOURS.items()},
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
