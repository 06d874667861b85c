from __future__ import annotations

import io
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from residency.reports import register as reg
from residency.reports.register import (
    COLUMNS,
    build_register,
    render_register,
    write_register,
)

from .support import Run, check_golden


def _rows(run: Run) -> list[tuple[str, ...]]:
    return list(build_register(run.report, run.pack, run.parties))


def test_one_row_per_flow_regime_country(run: Run) -> None:
    frame = build_register(run.report, run.pack, run.parties).frame()
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


def test_rows_are_generated_not_held(run: Run) -> None:
    """Iterating the register twice gives the same rows; nothing is kept between."""
    register = build_register(run.report, run.pack, run.parties)
    first = iter(register)
    assert next(first) == next(iter(register))
    assert list(register) == list(register)


def test_golden_csv(run: Run) -> None:
    data = render_register(build_register(run.report, run.pack, run.parties), "csv")
    check_golden("register.csv", data.decode("utf-8"))


def test_csv_streamed_equals_pandas_reading(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with path.open("wb") as fh:
        count = write_register(build_register(run.report, run.pack, run.parties), "csv", fh)
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert count == len(back) and list(back.itertuples(index=False, name=None)) == _rows(run)


def test_xlsx_reads_back(run: Run) -> None:
    register = build_register(run.report, run.pack, run.parties)
    data = render_register(register, "xlsx")
    back = pd.read_excel(io.BytesIO(data), sheet_name="Transfers", dtype=str).fillna("")
    assert list(back.columns) == list(COLUMNS)
    assert back.equals(register.frame())
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book["Transfers"]
    assert sheet.freeze_panes == "A2" and sheet["A1"].font.b and not sheet["A2"].font.b
    assert sheet.column_dimensions["D"].width >= len("destination_name")


def test_xlsx_escapes_and_marks_what_xml_cannot_hold(tmp_path: Path) -> None:
    row = ("a<b & \"c\"", "ctl\x01\x0bchar", "x" * 40_000, "✎ ü", *([""] * (len(COLUMNS) - 4)))
    buf = io.BytesIO()
    write_register([row], "xlsx", buf)
    (back,) = openpyxl.load_workbook(buf, read_only=True)["Transfers"].iter_rows(
        min_row=2, values_only=True)
    assert back[0] == "a<b & \"c\"" and back[1] == "ctl\ufffd\ufffdchar" and back[3] == "✎ ü"
    assert len(back[2]) == 32_767  # Excel's cell limit, truncated with an ellipsis


def test_xlsx_splits_past_the_sheet_row_limit(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Excel holds 1,048,576 rows a sheet; the limit is patched down to 4 (header + 3 rows)
    so the real example register (more than 9 rows) must spread over several sheets."""
    monkeypatch.setattr(reg, "XLSX_MAX_ROWS", 4)
    rows = _rows(run)
    assert len(rows) > 9
    data = render_register(build_register(run.report, run.pack, run.parties), "xlsx")
    sheets = pd.read_excel(io.BytesIO(data), sheet_name=None, dtype=str)
    expected = ["Transfers", *(f"Transfers ({i})" for i in range(2, -(-len(rows) // 3) + 1))]
    assert list(sheets) == expected
    assert all(list(s.columns) == list(COLUMNS) and 1 <= len(s) <= 3 for s in sheets.values())
    joined = pd.concat(sheets.values()).fillna("")
    assert list(joined.itertuples(index=False, name=None)) == rows


@pytest.mark.parametrize("count", [3, 6])
def test_xlsx_exactly_full_sheets_add_no_empty_sheet(
    monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    monkeypatch.setattr(reg, "XLSX_MAX_ROWS", 4)  # header + 3 rows a sheet, patched down
    rows = [(str(i), *([""] * (len(COLUMNS) - 1))) for i in range(count)]
    buf = io.BytesIO()
    assert write_register(rows, "xlsx", buf) == count
    names = zipfile.ZipFile(buf).namelist()
    assert sum(n.startswith("xl/worksheets/") for n in names) == count // 3
    book = openpyxl.load_workbook(buf, read_only=True)
    assert [c for s in book for (c, *_) in s.iter_rows(min_row=2, values_only=True)] == \
        [r[0] for r in rows]


def test_empty_register(tmp_path: Path) -> None:
    for fmt in ("csv", "xlsx", "markdown"):
        data = render_register([], fmt)
        if fmt == "xlsx":
            assert pd.read_excel(io.BytesIO(data), dtype=str).columns.tolist() == list(COLUMNS)
        else:
            assert "regime" in data.decode()


def test_markdown_table(run: Run) -> None:
    text = render_register(build_register(run.report, run.pack, run.parties),
                           "markdown").decode()
    assert text.startswith("# Art. 30 transfer register\n")
    assert text.count("\n| ") == len(_rows(run)) + 1
    assert text.count("\n|---") == 1


def test_cli_register_formats(tmp_path: Path) -> None:
    """The command writes each format; an xlsx of ours is replaced on a second run."""
    from click.testing import CliRunner

    from residency.cli.main import cli

    from .support import AS_OF, MAP, ROOT

    out = tmp_path / "r.xlsx"
    for _ in range(2):
        res = CliRunner().invoke(cli, ["report", "register", "--map", str(ROOT / MAP),
                                       "--as-of", AS_OF.isoformat(), "--format", "xlsx",
                                       "--output", str(out)])
        assert res.exit_code == 0, res.output
    assert pd.read_excel(out, dtype=str).columns.tolist() == list(COLUMNS)
