from __future__ import annotations

import pytest

from residency.reports import ReportError
from residency.reports._common import COUNSEL
from residency.reports.tia import Blank, Statement, Table, build_tia, render_markdown

from .support import Run, check_golden


def test_one_draft_per_transfer_flow(run: Run) -> None:
    docs = build_tia(run.report, run.pack, run.graph)
    flows = [f for d in docs for f in d.flows]
    assert len(flows) == len(set(flows)) == 10
    for d in docs:
        assert [s.number for s in d.sections] == [1, 2, 3, 4, 5, 6]


def test_golden_markdown(run: Run) -> None:
    docs = build_tia(run.report, run.pack, run.graph,
                     flows=["portal-to-helpdesk", "helpdesk-to-email", "legal-hold-export"])
    check_golden("tia.md", "\n---\n\n".join(render_markdown(d) for d in docs))


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


def test_facts_for_the_dpf_transfer(run: Run) -> None:
    (doc,) = build_tia(run.report, run.pack, run.graph, flows=["portal-to-helpdesk"])
    text = render_markdown(doc)
    assert "eu-us-dpf-2023-1795" in text
    assert "C-703/25 P" in text  # the pack's note on pending litigation reaches step 3
    assert "access from US" in text
    assert "TIA-12" in text and doc.tia_date.isoformat() == "2026-02-10"
    assert doc.reevaluate_by is not None and doc.reevaluate_by.isoformat() == "2027-02-10"


def test_per_importer_groups_flows(run: Run) -> None:
    docs = build_tia(run.report, run.pack, run.graph, per="importer")
    deskco = next(d for d in docs if d.importer == "deskco")
    assert set(deskco.flows) == {"portal-to-helpdesk", "uk-portal-to-helpdesk",
                                 "ch-crm-to-helpdesk"}


def test_unknown_flow_is_an_error(run: Run) -> None:
    with pytest.raises(ReportError, match="unknown flow"):
        build_tia(run.report, run.pack, run.graph, flows=["nope"])
