"""Reports on cyclic maps: bounded path queries, a linear layout, every report on 10,000 flows.

A processor sending data back to its controller made `paths_to` enumerate every simple path
(exponential) and the built-in SVG layout relax longest paths once per node (quadratic).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import openpyxl
import pytest

from residency.datamap import load_map
from residency.graph import FlowGraph
from residency.model import Flow, Location, Party, Role, System
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack
from residency.reports._common import Verdict, collect_parties, graph_of
from residency.reports.diagram import (
    DIAGRAM_FORMATS,
    Diagram,
    Edge,
    Node,
    _layers,
    build_diagram,
    render_diagram,
    to_svg,
)
from residency.reports.html import render_html
from residency.reports.impact import build_impact, render_impact
from residency.reports.register import build_register, render_register
from residency.reports.tia import plan_tia, render_markdown

from .support import ROOT

AS_OF = dt.date(2026, 11, 30)
FLOWS = 10_000
BOUND = 60.0  # seconds per report on a 2-core machine; each took well under half of it


def _generator() -> ModuleType:
    path = ROOT / "benchmarks" / "deep_generate.py"
    spec = importlib.util.spec_from_file_location("deep_generate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _graph(edges: list[tuple[str, str]], data: tuple[str, ...] = ()) -> FlowGraph:
    ids = sorted({n for e in edges for n in e})
    systems = [System(i, "p", Role.CONTROLLER if i in data else Role.PROCESSOR,
                      Location(frozenset({"DE"})),
                      data_categories=frozenset({"contact_details"}) if i in data else frozenset())
               for i in ids]
    flows = [Flow(f"{a}-{b}", a, b) for a, b in edges]
    return FlowGraph([Party("p", "P", "DE")], systems, flows)


def _flow(g: FlowGraph, fid: str) -> Flow:
    return next(f for f in g.flows if f.id == fid)


# ---------------------------------------------------------------------- small shapes
def test_three_node_cycle_paths() -> None:
    """c → p1 → p2 → c: the controller (it declares the data) is where every path starts."""
    g = _graph([("c", "p1"), ("p1", "p2"), ("p2", "c")], data=("c",))
    assert g.paths_to(_flow(g, "c-p1")) == [["c", "p1"]]
    assert g.paths_to(_flow(g, "p1-p2")) == [["c", "p1", "p2"]]
    assert g.paths_to(_flow(g, "p2-c")) == [["c", "p1", "p2", "c"]]  # the round trip
    assert g.upstream("p1") == {"c", "p2"} and g.downstream("c") == {"p1", "p2"}


def test_cycle_fed_from_outside_starts_at_the_feeder() -> None:
    g = _graph([("portal", "c"), ("c", "p1"), ("p1", "p2"), ("p2", "c")], data=("c",))
    assert g.paths_to(_flow(g, "p1-p2")) == [["portal", "c", "p1", "p2"]]
    assert g.paths_to(_flow(g, "p2-c")) == [["portal", "c", "p1", "p2", "c"]]


def test_acyclic_order_and_duplicates() -> None:
    """Roots by id, then depth-first order along each system's flows; parallel flows once."""
    g = _graph([("b", "x"), ("a", "y"), ("a", "x"), ("x", "s"), ("y", "s"), ("x", "s"),
                ("s", "t")])
    assert g.paths_to(_flow(g, "s-t")) == [
        ["a", "y", "s", "t"], ["a", "x", "s", "t"], ["b", "x", "s", "t"]]
    every = g.paths_to(_flow(g, "s-t"))
    first_two = g.paths_to(_flow(g, "s-t"), limit=2)  # which two: the backward search's
    assert len(first_two) == 2 and first_two == [p for p in every if p in first_two]


def test_dense_cycles_are_bounded() -> None:
    """A complete digraph of 14 processors fed by one root has ~10^10 simple paths."""
    inner = [f"p{i:02d}" for i in range(14)]
    edges = [("root", inner[0])] + [(a, b) for a in inner for b in inner if a != b]
    g = _graph(edges, data=("root",))
    start = time.perf_counter()
    for f in g.flows:
        paths = g.paths_to(f, limit=5, max_hops=8)
        assert 1 <= len(paths) <= 5
        for p in paths:
            assert p[0] == "root" and p[-2:] == [f.source, f.target]
            assert len(p) - 2 <= 8 and len(set(p[:-1])) == len(p) - 1
    assert time.perf_counter() - start < 5


def test_layers_of_a_cycle() -> None:
    nodes = tuple(Node(i, i, "p", "processor", "DE") for i in ("c", "p1", "p2"))
    edges = tuple(Edge(f"{a}-{b}", a, b, Verdict.LAWFUL, ())
                  for a, b in (("c", "p1"), ("p1", "p2"), ("p2", "c"), ("p2", "p2")))
    assert _layers(Diagram(nodes, edges)) == [["c"], ["p1"], ["p2"]]


# ---------------------------------------------------------------------- 10,000 flows
@pytest.fixture(scope="module")
def deep(tmp_path_factory: pytest.TempPathFactory, pack: PolicyPack) -> Iterator[Any]:
    path: Path = tmp_path_factory.mktemp("deep") / "deep-10k.json"
    path.write_text(json.dumps(_generator().generate(FLOWS)), encoding="utf-8")
    datamap = load_map(path, pack)
    report = Engine(pack, EngineOptions(AS_OF)).run(datamap)
    parties = collect_parties(report, pack, datamap)
    yield path, datamap, report, parties


def _timed(what: str, fn: Callable[[], Any], before: float = 0.0) -> Any:
    start = time.perf_counter()
    out = fn()
    took = before + time.perf_counter() - start
    assert took < BOUND, f"{what} took {took:.1f} s on {FLOWS} cyclic flows"
    return out


def test_deep_map_has_cycles_and_long_chains(deep: Any) -> None:
    _, _, report, parties = deep
    assert len(report.flows) == FLOWS
    g = graph_of(report, parties)
    feeds_controller = [f for f in report.flows
                        if g.systems[f.target].role is Role.CONTROLLER
                        and g.systems[f.source].role is Role.PROCESSOR]
    assert feeds_controller  # the cycle that used to hang the reports
    layers = _layers(build_diagram(report, parties))
    assert len(layers) > 10  # chains of 10+ onward hops


def test_tia_and_html_on_cyclic_map(deep: Any, pack: PolicyPack) -> None:
    """`report tia --all` builds and renders every draft; `report html` builds the same
    drafts and renders them with everything else (timed as build + render)."""
    _, _, report, parties = deep
    start = time.perf_counter()
    plan = plan_tia(report, pack, graph_of(report, parties))
    drafts = list(plan.documents())
    built = time.perf_counter() - start
    texts = _timed("report tia --all", lambda: [render_markdown(d) for d in drafts], built)
    # one draft per flow relying on an Art. 46 tool, none for the others (lean drafts)
    assert len(texts) == sum(1 for n in plan.needs if n.due) > FLOWS // 4
    assert all(t.startswith("# ") for t in texts)
    assert any("→ `" in t and "Path(s) the data take" in t for t in texts)
    html = _timed("report html", lambda: render_html(report, parties, drafts), built)
    # systems past the diagram's limit are collapsed into groups that still count them all
    assert "<html" in html[:500] and 0 < html.count('class="node"') <= 500 < len(report.systems)


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "markdown"])
def test_register_on_cyclic_map(deep: Any, pack: PolicyPack, fmt: str) -> None:
    _, _, report, parties = deep
    data = _timed(f"report register --format {fmt}",
                  lambda: render_register(build_register(report, pack, parties), fmt))
    rows = sum(1 for _ in build_register(report, pack, parties))
    assert rows > FLOWS
    if fmt == "csv":
        assert data.count(b"\n") == rows + 1
    elif fmt == "markdown":
        assert data.count(b"\n| ") == rows + 1
    else:
        assert data[:2] == b"PK"
        back = openpyxl.load_workbook(io.BytesIO(data), read_only=True)["Transfers"]
        assert sum(1 for _ in back.iter_rows(min_row=2, values_only=True)) == rows


def test_impact_on_cyclic_map(deep: Any, pack: PolicyPack) -> None:
    _, datamap, _, _ = deep
    text = _timed("report impact", lambda: render_impact(
        build_impact(pack, datamap, AS_OF, ("eu-us-dpf-2023-1795",)), "text"))
    assert text.startswith("What-if")


@pytest.mark.parametrize("fmt", DIAGRAM_FORMATS)
def test_graph_on_cyclic_map(deep: Any, fmt: str) -> None:
    _, _, report, parties = deep
    def draw() -> str:  # svg as `graph --format svg` draws it without Graphviz on PATH
        d = build_diagram(report, parties)
        return to_svg(d, engine="python") if fmt == "svg" else render_diagram(d, fmt)

    text = _timed(f"graph --format {fmt}", draw)
    if fmt in ("svg", "graphml"):
        ET.fromstring(text)  # noqa: S314 - our own output
    if fmt == "json":
        assert len(json.loads(text)["edges"]) == FLOWS
