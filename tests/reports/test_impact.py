from __future__ import annotations

import json

from residency.reports.impact import build_impact, render_impact

from .support import AS_OF, Run


def test_dpf_invalid(run: Run) -> None:
    impact = build_impact(run.pack, run.datamap, AS_OF, ("eu-us-dpf-2023-1795",))
    importers = {g.importer for g in impact.groups}
    assert importers == {"deskco", "chatbrain"}
    lost = {(i.flow, i.regime) for i in impact.lost}
    assert lost == {("helpdesk-to-ai", "eu_gdpr")}
    (ai,) = impact.lost
    assert ai.needs == "SCC 2021/914 module 3 + TIA"  # processor → processor
    changed = {(i.flow, i.after.kind) for i in impact.changed}
    assert ("portal-to-helpdesk", "safeguard") in changed  # falls back on its SCCs
    assert any(f.rule == "RES-T001" and f.subject == "helpdesk-to-ai"
               for f in impact.new_findings)
    data = json.loads(render_impact(impact, "json"))
    assert data["assume_invalid"] == ["eu-us-dpf-2023-1795"]
    md = render_impact(impact, "markdown")
    assert "ChatBrain Technologies Inc." in md and "DeskCo Inc." in md
    assert "loses its basis" in render_impact(impact, "text")


def test_date_only_compares_dates(run: Run) -> None:
    impact = build_impact(run.pack, run.datamap, AS_OF, (), baseline_as_of=AS_OF)
    assert not impact.lost and not impact.changed and not impact.new_findings
