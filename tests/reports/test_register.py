from __future__ import annotations

import io

import pandas as pd

from residency.reports.register import COLUMNS, build_register, render_register

from .support import Run, check_golden


def test_one_row_per_flow_regime_country(run: Run) -> None:
    frame = build_register(run.report, run.pack, run.parties)
    assert list(frame.columns) == list(COLUMNS)
    expected = sum(len(t.bases) for t in run.report.transfers if not t.same_entity)
    assert len(frame) == expected
    assert not frame.duplicated(["flow", "regime", "destination"]).any()
    row = frame[(frame.flow == "helpdesk-to-email") & (frame.regime == "eu_gdpr")].iloc[0]
    assert (row.scc_module, row.scc_signed, row.importer) == ("3", "2024-09-01",
                                                               "MailRelay Inc. (mailrelay)")
    derog = frame[frame.flow == "legal-hold-export"].iloc[0]
    assert derog.derogation_article == "49(1)(e)"
    assert "TO BE COMPLETED" in derog.derogation_documentation


def test_golden_csv(run: Run) -> None:
    text = render_register(build_register(run.report, run.pack, run.parties), "csv")
    assert isinstance(text, str)
    check_golden("register.csv", text)


def test_xlsx_reads_back(run: Run) -> None:
    frame = build_register(run.report, run.pack, run.parties)
    data = render_register(frame, "xlsx")
    assert isinstance(data, bytes)
    back = pd.read_excel(io.BytesIO(data), sheet_name="Transfers", dtype=str).fillna("")
    assert list(back.columns) == list(COLUMNS)
    assert back.equals(frame.replace("nan", ""))


def test_markdown_table(run: Run) -> None:
    text = render_register(build_register(run.report, run.pack, run.parties), "markdown")
    assert isinstance(text, str)
    assert text.count("\n| ") == len(build_register(run.report, run.pack)) + 1
