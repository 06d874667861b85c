"""Lean TIA drafts: one statement per distinct fact, drafts only where a TIA is due (an
Art. 46 tool relied on), every other transfer in the index with why none is needed.

Checked on the servicedesk example, the demo's scanned estate (an EU multi-region bucket
among its 21 systems) and generated estates of both benchmark shapes."""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from residency.datamap import parse_map
from residency.model import Party, Report
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack
from residency.reports._common import collect_parties, country_parts, graph_of
from residency.reports.tia import Statement, TiaPlan, plan_tia, render_index, render_markdown

from .support import ROOT, Run

AS_OF = dt.date(2026, 11, 30)
ART46 = {"scc", "idta", "uk_addendum", "bcr", "code_of_conduct", "certification"}
EU27 = ["AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
        "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"]


def _plan(report: Report, pack: PolicyPack, parties: dict[str, Party]) -> TiaPlan:
    return plan_tia(report, pack, graph_of(report, parties))


def _country_free(text: str, pack: PolicyPack) -> str:
    """The statement with every country code and name blanked: two statements equal after
    this differ only by country, so they should have been one statement."""
    for regime in pack.regimes.values():  # `EU GDPR`, `UK GDPR` are not countries
        text = text.replace(regime.name, "<R>")
    text = re.sub(r"[A-Z][\w .'-]*? \(([A-Z]{2})\)", "<C>", text)  # `United States (US)`
    return re.sub(r"\b[A-Z]{2}\b", "<C>", text)


def assert_lean(report: Report, pack: PolicyPack, parties: dict[str, Party]) -> int:
    plan = _plan(report, pack, parties)
    drafts = 0
    for doc in plan.documents():
        drafts += 1
        statements = [i.text for s in doc.sections for i in s.items if isinstance(i, Statement)]
        repeated = [t for t, n in Counter(statements).items() if n > 1]
        assert not repeated, f"{doc.id}: repeated {repeated[:1]}"
        by_country = Counter(_country_free(t, pack) for t in statements)
        per_country = [t for t, n in by_country.items() if n > 1]
        assert not per_country, f"{doc.id}: one statement per country: {per_country[:1]}"
        lines = [ln for ln in render_markdown(doc).splitlines() if ln.startswith(("- ", "> "))]
        twice = [ln for ln, n in Counter(lines).items() if n > 1]
        assert not twice, f"{doc.id}: line repeated: {twice[:1]}"
    assert drafts == len(plan.groups)
    assert_due_only(report, plan)
    return drafts


def assert_due_only(report: Report, plan: TiaPlan) -> None:
    """Independently of how `plan_tia` decides: adequacy-only, derogation-only and
    intra-area flows get no draft; a flow relying on an Art. 46 tool gets one; the index
    lists every flow with a Chapter V transfer once."""
    drafted = set(plan.filenames())
    kinds: dict[str, set[str]] = {}
    relied: dict[str, set[str]] = {}
    for t in report.transfers:
        if t.same_entity:
            continue
        kinds.setdefault(t.flow, set()).update(b.kind for _, b in t.bases)
        relied.setdefault(t.flow, set()).update(
            b.reference or "" for _, b in t.bases if b.kind == "safeguard")
    flows = {f.id: f for f in report.flows}
    assert [n.flow for n in plan.needs] == [f.id for f in report.flows if f.id in kinds]
    for fid, k in kinds.items():
        if k <= {"adequacy", "derogation"}:
            assert fid not in drafted, f"{fid}: draft for a transfer resting on {k}"
        tools = [sg for sg in flows[fid].safeguards
                 if sg.type in ART46 and sg.label() in relied[fid]
                 and not (sg.module == 4 and not sg.combines_eu_data)]
        if tools:
            assert fid in drafted, f"{fid}: relies on {tools[0].label()} but has no draft"
    assert not drafted & (set(flows) - set(kinds)), "a draft for a flow with no transfer"
    index = render_index(plan)
    for need in plan.needs:
        assert index.count(f"| {need.flow} |") == 1


# ---------------------------------------------------------------------- the estates
def test_servicedesk_example(run: Run) -> None:
    assert assert_lean(run.report, run.pack, run.parties) > 0


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, PolicyPack, Any]]:
    pytest.importorskip("moto.server")
    from residency.demo.runner import EXAMPLE, _load_map, run_demo

    result = run_demo(tmp_path_factory.mktemp("demo") / "out", AS_OF)
    pack = PolicyPack.load()
    datamap = _load_map(EXAMPLE / "residency.yaml", pack)
    yield result, pack, collect_parties(result.report, pack, datamap)


def test_demo_estate(demo: tuple[Any, PolicyPack, Any]) -> None:
    result, pack, parties = demo
    assert assert_lean(result.report, pack, parties) > 0
    drafts = {p.name for p in result.tias}
    assert not [n for n in drafts if "acme-sd-reports-eu" in n]  # EU multi-region: adequacy


def test_demo_eu_multi_region_bucket_is_one_index_line(demo: tuple[Any, PolicyPack, Any]) -> None:
    result, pack, parties = demo
    plan = _plan(result.report, pack, parties)
    (need,) = [n for n in plan.needs if n.flow.endswith("acme-sd-reports-eu")]
    assert need.status == "not needed"
    assert any("EU (27): adequacy decision" in r for r in need.reasons), need.reasons
    assert len(need.reasons) == 2  # Swiss FADP and UK GDPR: one line each, not 27


def _generated(name: str, flows: int) -> dict[str, Any]:
    path = ROOT / "benchmarks" / name
    spec = importlib.util.spec_from_file_location(name[:-3], path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    doc: dict[str, Any] = module.generate(flows)
    return doc


@pytest.mark.parametrize("generator", ["deep_generate.py", "check_generate.py"])
def test_generated_estate(generator: str, pack: PolicyPack) -> None:
    datamap = parse_map(_generated(generator, 1500), pack, Path("generated.json"))
    report = Engine(pack, EngineOptions(AS_OF)).run(datamap)
    drafts = assert_lean(report, pack, collect_parties(report, pack, datamap))
    assert 0 < drafts < len(report.flows)


# ---------------------------------------------------------------------- country sets
def test_country_parts_summarise_a_set(pack: PolicyPack) -> None:
    (eu,) = country_parts(EU27, pack)
    assert (eu.label, eu.group, eu.countries) == ("EU (27)", "EU", tuple(sorted(EU27)))
    parts = country_parts([*EU27, "NO", "US", "CH"], pack)
    assert [p.label for p in parts] == ["EEA (28)", "CH", "US"]
    assert [p.label for p in country_parts(["DE", "FR", "US"], pack)] == ["DE", "FR", "US"]
