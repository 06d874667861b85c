"""The streaming XLSX writer: what it writes is read back by openpyxl (an independent reader),
values keep their types, text is never a formula, and a sheet past the row limit continues on
a numbered sheet that residency still recognises as its own output."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from residency._output import looks_like_ours
from residency.reports._xlsx import Sheet, write_xlsx


def _read(data: bytes) -> dict[str, list[tuple[object, ...]]]:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    return {ws.title: [tuple(r) for r in ws.iter_rows(values_only=True)] for ws in book}


def _write(*sheets: Sheet, max_rows: int = 1_048_576) -> bytes:
    buf = io.BytesIO()
    write_xlsx(buf, sheets, max_rows=max_rows)
    return buf.getvalue()


def test_values_round_trip_with_their_types() -> None:
    rows = [("a", 1, 2.5, True, dt.date(2026, 12, 1), None),
            ("=HYPERLINK(\"x\")", -3, 0.0, False, dt.date(1999, 1, 2), "")]
    got = _read(_write(Sheet("Transfers", ("s", "i", "f", "b", "d", "n"), rows)))
    assert got["Transfers"][0] == ("s", "i", "f", "b", "d", "n")
    assert got["Transfers"][1] == ("a", 1, 2.5, True, "2026-12-01", None)
    # a value that looks like a formula stays text (inline string): no formula injection
    assert got["Transfers"][2][0] == '=HYPERLINK("x")'


def test_control_characters_cannot_corrupt_the_file() -> None:
    got = _read(_write(Sheet("T", ("v",), [("bad\x00name\x1b",), ("tab\tok",)])))
    assert got["T"][1:] == [("bad\ufffdname\ufffd",), ("tab\tok",)]


def test_a_sheet_past_the_row_limit_continues_on_numbered_sheets(tmp_path: Path) -> None:
    # max_rows stands in for Excel's 1,048,576 (header included), so the split is exercised
    header = ("regime", "flow", "destination", "destination_name", "destination_type")
    rows = [("gdpr", f"flow-{i}", "US", "United States", "third country") for i in range(10)]
    data = _write(Sheet("Transfers", header, rows), max_rows=4)
    got = _read(data)
    assert list(got) == ["Transfers", "Transfers (2)", "Transfers (3)", "Transfers (4)"]
    assert all(sheet[0] == header for sheet in got.values())
    assert [r for sheet in got.values() for r in sheet[1:]] == rows
    assert all(len(sheet) <= 4 for sheet in got.values())
    out = tmp_path / "register.xlsx"
    out.write_bytes(data)
    assert looks_like_ours(out)  # a re-run may overwrite its own split register


def test_sheet_names_follow_excels_rules() -> None:
    long = "Transfers of personal data: EU/UK [draft]"
    got = _read(_write(Sheet(long, ("a",), []), Sheet(long, ("a",), [])))
    names = list(got)
    assert len({n.lower() for n in names}) == 2 and all(len(n) <= 31 for n in names)
    assert not any(c in n for n in names for c in "[]:*?/\\")


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=30), st.integers(-10**15, 10**15)), max_size=30),
       st.integers(min_value=2, max_value=7))
def test_any_text_and_any_limit_round_trip(rows: list[tuple[str, int]], limit: int) -> None:
    got = _read(_write(Sheet("T", ("text", "n"), rows), max_rows=limit))
    back = [r for sheet in got.values() for r in sheet[1:]]
    expect = [(_xml_safe(t) or None, n) for t, n in rows]
    assert back == expect


def _xml_safe(text: str) -> str:
    import re
    return re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", "\ufffd", text)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_numbers_are_text(value: float) -> None:
    got = _read(_write(Sheet("T", ("v",), [(value,)])))
    assert got["T"][1] == (str(value),)


def test_the_same_rows_are_the_same_bytes_whatever_the_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No part of the zip carries the time it was written: a register written twice from
    the same map is the same file (diffable, cacheable)."""
    import time
    import zipfile

    def workbook() -> bytes:
        buf = io.BytesIO()
        write_xlsx(buf, [Sheet("Transfers", ("flow", "country"), [("f1", "US"), ("f2", "IN")])])
        return buf.getvalue()

    first = workbook()
    later = time.time() + 86_400 * 400
    monkeypatch.setattr(time, "time", lambda: later)
    monkeypatch.setattr(time, "localtime", lambda *_: time.gmtime(later))
    assert workbook() == first
    with zipfile.ZipFile(io.BytesIO(first)) as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}
