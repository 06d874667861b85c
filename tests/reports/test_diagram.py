from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from residency.reports.diagram import build_diagram, render_diagram, to_svg

from .support import Run


def test_mermaid_shape(run: Run) -> None:
    text = render_diagram(build_diagram(run.report, run.parties), "mermaid")
    assert text.startswith("flowchart LR\n")
    assert text.count("-->") + text.count("-.->") == len(run.report.flows)
    assert text.count("linkStyle ") == len(run.report.flows)
    assert "#cf222e" in text and "#1a7f37" in text  # errors and lawful flows both present
    assert "access from US" in text


def test_dot_shape(run: Run) -> None:
    text = render_diagram(build_diagram(run.report, run.parties), "dot")
    assert text.startswith("digraph residency {") and text.rstrip().endswith("}")
    assert text.count(" -> ") == len(run.report.flows)
    assert '"helpdesk" -> "l2-support"' in text


def test_graphml_and_json(run: Run) -> None:
    d = build_diagram(run.report, run.parties)
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


def test_builtin_svg_is_wellformed(run: Run) -> None:
    svg = to_svg(build_diagram(run.report, run.parties), engine="python")
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    assert root.tag.endswith("svg")
    ns = {"s": "http://www.w3.org/2000/svg"}
    assert len(root.findall(".//s:g[@class='node']", ns)) == len(run.report.systems)
    assert len(root.findall("./s:g", ns)) == len(run.report.systems) + len(run.report.flows)
