from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from residency.model import Location, Party, ResolvedLocation, Role, System
from residency.policy.pack import PolicyPack
from residency.reports._common import Verdict
from residency.reports.diagram import (
    MAX_NODES,
    Diagram,
    Edge,
    Node,
    _node,
    build_diagram,
    collapse,
    merge_edges,
    render_diagram,
    to_svg,
)

from .browser import require_dot
from .support import Run

NS = {"s": "http://www.w3.org/2000/svg"}


def test_mermaid_shape(run: Run) -> None:
    d = build_diagram(run.report, run.parties, run.pack)
    text = render_diagram(d, "mermaid")
    assert text.startswith("flowchart LR\n  n_")
    pairs = len(merge_edges(d.edges))
    assert text.count("-->") + text.count("-.->") == pairs
    assert text.count("linkStyle ") == pairs
    assert "#cf222e" in text and "#1a7f37" in text  # errors and lawful flows both present
    assert "access from US" in text and "subgraph " in text


def test_dot_shape(run: Run) -> None:
    text = render_diagram(build_diagram(run.report, run.parties, run.pack), "dot")
    assert text.startswith("digraph residency {") and text.rstrip().endswith("}")
    assert '"helpdesk" -> "l2-support"' in text
    assert "subgraph cluster_" in text and "label=" in text


def test_graphml_and_json_keep_every_flow(run: Run) -> None:
    d = build_diagram(run.report, run.parties, run.pack)
    root = ET.fromstring(render_diagram(d, "graphml"))  # noqa: S314 - our own output
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    assert len(root.findall(".//g:node", ns)) == len(run.report.systems)
    assert len(root.findall(".//g:edge", ns)) == len(run.report.flows)
    data = json.loads(render_diagram(d, "json"))
    assert {n["id"] for n in data["nodes"]} == {s.id for s in run.report.systems}
    verdicts = {e["flow"]: e["verdict"] for e in data["edges"]}
    assert verdicts["portal-to-helpdesk"] == "lawful"
    assert verdicts["helpdesk-to-l2"] == "error"
    assert verdicts["legal-hold-export"] == "warning"


def test_builtin_svg_draws_names_grouped_by_country(run: Run) -> None:
    svg = to_svg(build_diagram(run.report, run.parties, run.pack), engine="python")
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    assert root.tag.endswith("svg") and root.get("width") == "1040"
    nodes = root.findall(".//s:g[@class='node']", NS)
    assert len(nodes) == len(run.report.systems)
    drawn = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    hover = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title"))
    for s in run.report.systems:
        assert s.id in hover  # the id on hover
        assert (s.name or s.id).split()[0] in drawn  # the name drawn
    assert "Germany (DE)" in drawn and "remote access from US" in drawn
    assert "…" not in drawn  # nothing is cut
    sizes = {float(t.get("font-size", "0")) for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert min(sizes) >= 11


def _estate(n: int) -> Diagram:
    nodes = tuple(Node(f"arn:s{i}", f"bucket {i}", f"party {i % 7}", "processor",
                       "IE (aws:eu-west-1)", "IE", "Ireland (IE)",
                       "aws:eu-west-1" if i % 2 else "aws:eu-west-2") for i in range(n))
    edges = tuple(Edge(f"f{i}", f"arn:s{i}", f"arn:s{(i * 7 + 1) % n}", Verdict.LAWFUL, ())
                  for i in range(n))
    return Diagram(nodes, edges, n)


def test_large_estates_collapse_into_group_boxes() -> None:
    d = _estate(2_000)
    c = collapse(d)
    assert len(c.nodes) <= MAX_NODES and c.systems == 2_000
    assert sum(n.count for n in c.nodes) == 2_000
    assert any(re.fullmatch(r"aws:eu-west-1 · [\d,]+ systems", n.label) for n in c.nodes)
    assert sum(e.count for e in c.edges) == 2_000  # every flow counted in a merged edge
    svg = to_svg(d, engine="python")
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    assert len(root.findall(".//s:g[@class='node']", NS)) == len(c.nodes)
    assert "2,000 systems drawn as" in svg


@pytest.mark.parametrize("n", [5, 60, 500])
def test_builtin_boxes_never_overlap(n: int) -> None:
    """Box geometry of the grid, from 5 to 500 systems (text inside is measured in
    Chromium): no two boxes intersect and every box lies inside the 1,040 px drawing."""
    root = ET.fromstring(to_svg(_estate(n), engine="python"))  # noqa: S314
    rects = [(float(r.get("x", 0)), float(r.get("y", 0)), float(r.get("width", 0)),
              float(r.get("height", 0))) for g in root.findall(".//s:g[@class='node']", NS)
             for r in g.findall("s:rect", NS)]
    assert len(rects) == n
    rects.sort()
    for i, (x, y, w, h) in enumerate(rects):
        assert x >= 0 and x + w <= 1040
        for x2, y2, w2, h2 in rects[i + 1:]:
            if x2 >= x + w:
                break
            assert y2 >= y + h or y >= y2 + h2, ((x, y, w, h), (x2, y2, w2, h2))


def test_graphviz_svg_is_marked_and_sized_in_px(run: Run) -> None:
    require_dot()
    svg = to_svg(build_diagram(run.report, run.parties, run.pack), engine="dot")
    assert svg.startswith("<svg ") and 'data-engine="graphviz"' in svg[:600]
    assert 'class="flow-diagram"' in svg[:600]
    w = float(re.search(r' width="([\d.]+)"', svg[:600]).group(1))  # type: ignore[union-attr]
    assert 0 < w <= 1_140


def test_unknown_location_is_its_own_group(pack: PolicyPack) -> None:
    s = System("x", "p", Role.PROCESSOR, Location(unknown_reason="region unknown until apply"))
    n = _node(s, ResolvedLocation(frozenset(), unresolved="region unknown"),
              {"p": Party("p", "P", "DE")}, {}, pack)
    assert n.group == "?" and n.group_label == "Location unknown"
