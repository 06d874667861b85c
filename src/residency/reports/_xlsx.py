"""A streaming XLSX writer: rows go straight into the zip as SpreadsheetML, one sheet at a time.

Why not openpyxl or XlsxWriter: both build an object (or a dict of attributes) per cell and
cost about 5 µs a cell even in their streaming modes (openpyxl `write_only`, XlsxWriter
`constant_memory`): 3.0 s and 2.7 s for 560,000 cells against 0.18 s for this writer, measured
side by side. A register at 100,000 transfers is millions of cells, and the product's target is
a report within 3× of the check that produced it. The format written is the small, stable part
of ECMA-376 every spreadsheet reads: inline strings (so a value starting with `=` is text, never
a formula), numbers, one bold header row frozen at the top, column widths, and a new sheet
("Transfers (2)", ...) each time a sheet reaches Excel's row limit.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zipfile
from collections.abc import Iterable, Sequence
from typing import IO
from xml.sax.saxutils import escape, quoteattr

#: Excel's rows per sheet (ECMA-376 / Excel specifications and limits), header included.
MAX_ROWS = 1_048_576
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
# Characters XML 1.0 cannot hold at all (a control character in a resource name would make
# the file unreadable): replaced by U+FFFD, as every other format shows them.
_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_CHUNK = 2000  # rows per write into the deflate stream
Cell = str | int | float | bool | dt.date | None


class Sheet:
    """One table: a title, a header, and its rows (any iterable: streamed, never held)."""

    def __init__(self, title: str, header: Sequence[str], rows: Iterable[Sequence[Cell]],
                 widths: Sequence[int] = ()) -> None:
        self.title = title
        self.header = tuple(header)
        self.rows = rows
        self.widths = tuple(widths)


def write_xlsx(out: IO[bytes], sheets: Iterable[Sheet], *, max_rows: int = MAX_ROWS) -> list[str]:
    """Write the workbook to `out` (a binary file); returns the sheet names written. A sheet
    past `max_rows` (header included) continues on "<title> (2)", "<title> (3)", ..."""
    names: list[str] = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for sheet in sheets:
            _write_sheet(z, sheet, names, max_rows)
        _write_package(z, names)
    return names


def _write_sheet(z: zipfile.ZipFile, sheet: Sheet, names: list[str], max_rows: int) -> None:
    rows = iter(sheet.rows)
    part = 1
    while True:
        title = sheet.title if part == 1 else f"{sheet.title} ({part})"
        names.append(_sheet_name(title, names))
        full = _write_part(z, len(names), sheet, rows, max_rows - 1)
        if not full:
            return
        part += 1


def _write_part(z: zipfile.ZipFile, index: int, sheet: Sheet, rows: Iterable[Sequence[Cell]],
                limit: int) -> bool:
    """One worksheet part holding at most `limit` data rows; True when it filled up and
    rows may remain (the next part then starts; an empty next part is still written, which
    keeps the header visible and says the data ended exactly at the limit)."""
    with z.open(f"xl/worksheets/sheet{index}.xml", "w") as fh:
        fh.write(_sheet_head(sheet).encode())
        buf = [_row(1, sheet.header, bold=True)]
        n = 0
        for n, row in enumerate(rows, start=1):
            buf.append(_row(n + 1, row))
            if len(buf) >= _CHUNK:
                fh.write("".join(buf).encode())
                buf.clear()
            if n >= limit:
                break
        fh.write(("".join(buf) + "</sheetData></worksheet>").encode())
    return n >= limit


def _sheet_head(sheet: Sheet) -> str:
    cols = "".join(f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>'
                   for i, w in enumerate(sheet.widths, start=1) if w)
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{_MAIN}">'
            '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
            'activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
            f'{"<cols>" + cols + "</cols>" if cols else ""}<sheetData>')


def _row(number: int, values: Sequence[Cell], bold: bool = False) -> str:
    style = ' s="1"' if bold else ""
    return f'<row r="{number}">{"".join(_cell(v, style) for v in values)}</row>'


def _cell(value: Cell, style: str) -> str:
    if value is None or value == "":
        return "<c/>"
    if isinstance(value, bool):
        return f'<c t="b"{style}><v>{int(value)}</v></c>'
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return f'<c{style}><v>{value!r}</v></c>'
    text = value.isoformat() if isinstance(value, dt.date) else str(value)
    text = escape(_BAD_XML.sub("\ufffd", text), {"\r": "&#13;"})
    return f'<c t="inlineStr"{style}><is><t xml:space="preserve">{text}</t></is></c>'


def _sheet_name(title: str, taken: list[str]) -> str:
    """Excel's sheet-name rules: at most 31 characters, none of []:*?/\\, unique."""
    name = re.sub(r"[\[\]:*?/\\]", "_", title)[:31] or "Sheet"
    base, k = name, 2
    while name.lower() in (t.lower() for t in taken):
        suffix = f" ({k})"
        name, k = base[:31 - len(suffix)] + suffix, k + 1
    return name


def _write_package(z: zipfile.ZipFile, names: list[str]) -> None:
    n = len(names)
    z.writestr("[Content_Types].xml", (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.styles+xml"/>'
        + "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
                  'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                  for i in range(1, n + 1))
        + "</Types>"))
    z.writestr("_rels/.rels", (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"))
    sheets = "".join(f'<sheet name={quoteattr(name)} sheetId="{i}" r:id="rId{i}"/>'
                     for i, name in enumerate(names, start=1))
    z.writestr("xl/workbook.xml", (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>{sheets}</sheets></workbook>'))
    rels = "".join(f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" '
                   f'Target="worksheets/sheet{i}.xml"/>' for i in range(1, n + 1))
    z.writestr("xl/_rels/workbook.xml.rels", (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'{rels}<Relationship Id="rId{n + 1}" Type="{_REL}/styles" Target="styles.xml"/>'
        "</Relationships>"))
    z.writestr("xl/styles.xml", (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<styleSheet xmlns="{_MAIN}">'
        '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
        '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
        '</cellStyleXfs><cellXfs count="2">'
        '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
        '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
        '</cellStyles></styleSheet>'))
