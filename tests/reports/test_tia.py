from __future__ import annotations

import pytest

from residency.reports import ReportError
from residency.reports._common import COUNSEL
from residency.reports.tia import (
    Blank,
    Statement,
    Table,
    build_tia,
    plan_tia,
    render_index,
    render_markdown,
)

from .support import Run, check_golden


def test_one_draft_per_flow_that_needs_one(run: Run) -> None:
    plan = plan_tia(run.report, run.pack, run.graph)
    docs = list(plan.documents())
    flows = [f for d in docs for f in d.flows]
    assert len(flows) == len(set(flows)) == sum(n.due for n in plan.needs) > 0
    assert len(plan.needs) == 10  # every flow with a transfer is in the index
    for d in docs:
        assert [s.number for s in d.sections] == [1, 2, 3, 4, 5, 6]


def test_golden_markdown(run: Run) -> None:
    docs = build_tia(run.report, run.pack, run.graph,
                     flows=["helpdesk-to-email", "helpdesk-to-analytics", "ch-crm-to-helpdesk"])
    check_golden("tia.md", "\n---\n\n".join(render_markdown(d) for d in docs))


def test_golden_index(run: Run) -> None:
    check_golden("tia-index.md", render_index(plan_tia(run.report, run.pack, run.graph)))


def test_every_statement_has_a_source_and_blanks_are_marked(run: Run) -> None:
    for d in build_tia(run.report, run.pack, run.graph):
        for s in d.sections:
            for item in s.items:
                if isinstance(item, Statement | Table):
                    assert item.source.strip()
        text = render_markdown(d)
        blanks = sum(isinstance(i, Blank) for s in d.sections for i in s.items)
        assert text.count(f"> {COUNSEL}") == blanks + 1  # + sign-off
        assert "map examples/servicedesk/residency.yaml" in text
        assert run.report.pack.version in text


def test_facts_for_an_scc_transfer_to_the_us(run: Run) -> None:
    (doc,) = build_tia(run.report, run.pack, run.graph, flows=["helpdesk-to-email"])
    text = render_markdown(doc)
    step3 = text.split("## Step 3.")[1].split("## Step 4.")[0]
    assert "C-703/25 P" in step3  # the pack's note on pending litigation reaches step 3
    assert "access from US" in text
    assert "2021/914" in text and "Module 3 is for processor → processor" in text


def test_recorded_tia_dates_the_draft(run: Run) -> None:
    (doc,) = build_tia(run.report, run.pack, run.graph, flows=["helpdesk-to-analytics"])
    text = render_markdown(doc)
    assert "TIA-19" in text and doc.tia_date.isoformat() == "2026-01-20"
    assert doc.reevaluate_by is not None and doc.reevaluate_by.isoformat() == "2027-01-20"


def test_adequacy_transfer_needs_no_draft_and_the_index_says_why(run: Run) -> None:
    with pytest.raises(ReportError, match="needs no TIA: EU GDPR → US: adequacy decision "
                       "eu-us-dpf-2023-1795 covers it; no TIA needed; the pack marks"):
        build_tia(run.report, run.pack, run.graph, flows=["portal-to-helpdesk"])
    index = render_index(plan_tia(run.report, run.pack, run.graph))
    row = next(line for line in index.splitlines() if line.startswith("| legal-hold-export"))
    assert "| not needed |" in row and "derogation Art. 49(1)(e) (necessary for" in row
    assert "derogation derogation" not in index


def test_per_importer_groups_flows(run: Run) -> None:
    docs = build_tia(run.report, run.pack, run.graph, per="importer")
    deskco = next(d for d in docs if d.importer == "deskco")
    assert deskco.flows == ("ch-crm-to-helpdesk",)  # its other flows rest on adequacy
    by_flow = {f: d for d in build_tia(run.report, run.pack, run.graph) for f in d.flows}
    assert {f for d in docs for f in d.flows} == set(by_flow)


def test_unknown_flow_is_an_error(run: Run) -> None:
    with pytest.raises(ReportError, match="unknown flow"):
        build_tia(run.report, run.pack, run.graph, flows=["nope"])
