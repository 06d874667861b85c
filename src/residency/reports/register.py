"""The Art. 30 transfer register: one row per transfer (flow × regime × destination).

Columns cover what Art. 30(1)(e) and 30(2)(c) require (destination country or international
organisation, and for Art. 49(1) second-subparagraph transfers the documentation of the
safeguards) plus the evidence good practice expects (mechanism, SCC module, TIA, review).

Rows are streamed: `register_rows` yields tuples of strings and `write_register` writes them
as they come (CSV by the csv module, Markdown line by line, XLSX as SpreadsheetML into the
zip entry), so a 100,000-flow register never exists as a table of Python objects.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING
from xml.sax.saxutils import escape

from residency.model import ANY_COUNTRY, Basis, Flow, Party, Report, Safeguard, Tia, Transfer
from residency.policy.pack import PolicyPack
from residency.reports._common import COUNSEL, md_cell

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = (
    "regime",
    "flow",
    "destination",
    "destination_name",
    "destination_type",
    "access",
    "exporter",
    "exporter_country",
    "exporter_role",
    "importer",
    "importer_country",
    "importer_role",
    "data_categories",
    "purpose",
    "recurring",
    "onward",
    "mechanism",
    "mechanism_reference",
    "mechanism_instrument",
    "mechanism_source",
    "scc_module",
    "scc_signed",
    "tia_ref",
    "tia_date",
    "derogation_article",
    "derogation_documentation",
    "next_review",
    "status",
    "findings",
)

REGISTER_FORMATS = ("csv", "xlsx", "markdown")
Row = tuple[str, ...]

XLSX_MAX_ROWS = 1_048_576
"""Rows in one Excel worksheet, header included; a longer register continues on
`Transfers (2)`, `Transfers (3)`, … each with the header again."""
SHEET = "Transfers"


# ---------------------------------------------------------------------- rows
class _Rows:
    """Per-register caches: the same party, country or basis is rendered once, not per row."""

    def __init__(self, report: Report, pack: PolicyPack, parties: Mapping[str, Party]) -> None:
        self.report, self.pack, self.parties = report, pack, parties
        self.flows = {f.id: f for f in report.flows}
        self.systems = {s.id: s for s in report.systems}
        self.resolved = dict(report.resolved)
        rules: dict[tuple[str, str | None], set[str]] = {}
        for f in report.findings:
            if f.subject_kind == "flow" and not f.waived:
                rules.setdefault((f.subject, f.regime), set()).add(f.rule)
        self.rules = {k: ", ".join(sorted(v)) for k, v in rules.items()}
        self.dest: dict[str, tuple[str, str]] = {}
        self.party: dict[str, tuple[str, str]] = {}

    def transfer(self, t: Transfer) -> Iterator[Row]:
        flow = self.flows[t.flow]
        dst = self.systems[t.importer]
        res = self.resolved.get(t.importer)
        stored = res.countries if res is not None else frozenset()
        middle = (*self._party(t.exporter_party), self.systems[t.exporter].role.value,
                  *self._party(t.importer_party), dst.role.value,
                  ", ".join(t.data_categories), flow.purpose or "",
                  "yes" if t.recurring else "no", "yes" if t.onward else "no")
        findings = self.rules.get((t.flow, t.regime), "")
        tails: dict[Basis, Row] = {}  # countries of one transfer often share a basis
        for country, basis in t.bases:
            dest = self.dest.get(country)
            if dest is None:
                dest = self.dest[country] = (_dest_name(self.pack, country),
                                             _dest_type(country))
            if country in stored:
                access = "storage + remote access" if country in dst.access_from else "storage"
            elif country in dst.access_from:
                access = "remote access"
            else:
                access = "unknown" if country == ANY_COUNTRY else ""
            tail = tails.get(basis)
            if tail is None:
                tail = tails[basis] = self._tail(flow, t, basis)
            yield (t.regime, t.flow, country, *dest, access, *middle, *tail, findings)

    def _party(self, pid: str) -> tuple[str, str]:
        got = self.party.get(pid)
        if got is None:
            p = self.parties.get(pid)
            got = self.party[pid] = (f"{p.name} ({pid})", p.country) if p else (pid, "")
        return got

    def _tail(self, flow: Flow, t: Transfer, basis: Basis) -> Row:
        """mechanism … status: everything the basis (and the flow's safeguards) decide."""
        sg = _safeguard_for(flow, basis)
        tia: Tia | None = sg.tia if sg and sg.tia else next(
            (s.tia for s in flow.safeguards if s.tia), None)
        derogation = basis.kind == "derogation"
        return (
            _mechanism(basis),
            basis.reference or "",
            _instrument_name(self.pack, basis),
            basis.source or "",
            str(sg.module) if sg and sg.module is not None else "",
            sg.signed.isoformat() if sg and sg.signed else "",
            tia.ref if tia else "",
            tia.date.isoformat() if tia and tia.date else "",
            (sg.article or "") if derogation and sg else "",
            COUNSEL if derogation else "",
            _next_review(self.pack, t, basis, tia.date if tia else None, self.report.as_of),
            "lawful" if basis.kind != "none" else "NO BASIS",
        )


def register_rows(
    report: Report, pack: PolicyPack, parties: Mapping[str, Party] | None = None
) -> Iterator[Row]:
    """The register's rows (`COLUMNS`, all strings), in report order, same-entity excluded."""
    rows = _Rows(report, pack, parties or {})
    for t in report.transfers:
        if not t.same_entity:
            yield from rows.transfer(t)


@dataclass(frozen=True, slots=True)
class Register:
    """The register of one report, not yet rendered: iterating it yields its rows afresh."""

    report: Report
    pack: PolicyPack
    parties: Mapping[str, Party]

    def __iter__(self) -> Iterator[Row]:
        return register_rows(self.report, self.pack, self.parties)

    def frame(self) -> pd.DataFrame:
        """As a DataFrame of strings with `COLUMNS` (for library callers and tests)."""
        import pandas as pd

        return pd.DataFrame(list(self), columns=list(COLUMNS), dtype=str)


def build_register(
    report: Report, pack: PolicyPack, parties: Mapping[str, Party] | None = None
) -> Register:
    return Register(report, pack, parties or {})


# ---------------------------------------------------------------------- writing
def write_register(rows: Iterable[Row], fmt: str, out: IO[bytes]) -> int:
    """Write `rows` as csv, xlsx or markdown (UTF-8) to a binary stream; returns the row count.

    csv and markdown need no seeking (a pipe will do); xlsx is a zip archive and needs
    `out` to be seekable unless it is a file the zip module may append to.
    """
    if fmt == "xlsx":
        return _write_xlsx(rows, out)
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
    try:
        if fmt == "csv":
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(COLUMNS)
            count = _count_into(rows, writer.writerows)
        elif fmt == "markdown":
            text.write("# Art. 30 transfer register\n\n| " + " | ".join(COLUMNS) + " |\n|"
                       + "---|" * len(COLUMNS) + "\n")
            count = _count_into(rows, lambda rs: text.writelines(
                "| " + " | ".join(map(md_cell, r)) + " |\n" for r in rs))
        else:
            raise ValueError(f"unknown register format {fmt!r}")
        text.flush()
    finally:
        text.detach()
    return count


def _count_into(rows: Iterable[Row], sink: Callable[[Iterable[Row]], object]) -> int:
    count = 0

    def counted() -> Iterator[Row]:
        nonlocal count
        for row in rows:
            count += 1
            yield row

    sink(counted())
    return count


def render_register(rows: Iterable[Row], fmt: str) -> bytes:
    """The whole register in memory as UTF-8 bytes (xlsx: the archive).

    Bytes, not text: a str of a large register costs two to four bytes a character, and
    the file is written as bytes anyway. Prefer `write_register` into the output file.
    """
    buf = io.BytesIO()
    write_register(rows, fmt, buf)
    return buf.getvalue()


# ---------------------------------------------------------------------- xlsx
_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # not allowed in XML 1.0
_MAX_CELL = 32_767  # characters Excel keeps in one cell
_WIDTH_SAMPLE = 200  # rows the column widths are sized on


class _Strings(dict[str, bytes]):
    """The shared-strings table: each distinct value is escaped once and becomes the cell
    `<c t="s"><v>N</v></c>`; rows are then joined from these (cells carry no `r`, which
    SpreadsheetML makes optional, so they follow one another from column A)."""

    def __missing__(self, value: str) -> bytes:
        cell = self[value] = b'<c t="s"><v>%d</v></c>' % len(self)
        return cell

    def xml(self, out: IO[bytes], count: int) -> None:
        out.write(f'{_XML}<sst xmlns="{_NS}" count="{count}" uniqueCount="{len(self)}">'
                  .encode())
        for value in self:
            out.write(b'<si><t xml:space="preserve">' + _xml_text(value) + b"</t></si>")
        out.write(b"</sst>")


def _xml_text(value: str) -> bytes:
    if len(value) > _MAX_CELL:
        value = value[: _MAX_CELL - 1] + "…"
    return escape(_ILLEGAL.sub("", value)).encode("utf-8")


def _write_xlsx(rows: Iterable[Row], out: IO[bytes]) -> int:
    """SpreadsheetML written as the rows come: a bold frozen header, columns sized to their
    first 200 values, `XLSX_MAX_ROWS` rows a sheet.

    Written by hand, not by openpyxl (even write-only it built a cell object per value:
    25 s for a 50,000-row register); the archive reads back with openpyxl and pandas.
    """
    strings = _Strings()
    it = iter(rows)
    first = [r for _, r in zip(range(_WIDTH_SAMPLE), it, strict=False)]
    widths = [min(max(max([len(c), *(len(r[i]) for r in first)]) + 2, 8), 60)
              for i, c in enumerate(COLUMNS)]
    pending: Iterator[Row] = _chain(first, it)
    per_sheet = XLSX_MAX_ROWS - 1
    count, sheets = 0, 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        while True:
            sheets += 1
            with z.open(f"xl/worksheets/sheet{sheets}.xml", "w") as sheet:
                written = _write_sheet(sheet, pending, strings, widths, per_sheet)
            count += written
            if written < per_sheet:
                break
            peek = next(pending, None)  # exactly full: another sheet only if rows remain
            if peek is None:
                break
            pending = _chain([peek], pending)
        big = sum(len(v) for v in strings) * 4 + 40 * len(strings) > 2**31  # zip64 only then:
        with z.open("xl/sharedStrings.xml", "w", force_zip64=big) as sst:  # Excel warns on it
            strings.xml(sst, count * len(COLUMNS))
        for name, data in _package(sheets).items():
            z.writestr(name, data)
    return count


def _chain(head: list[Row], tail: Iterator[Row]) -> Iterator[Row]:
    yield from head
    yield from tail


def _write_sheet(
    sheet: IO[bytes], rows: Iterator[Row], strings: _Strings, widths: list[int], limit: int
) -> int:
    cols = "".join(f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>'
                   for i, w in enumerate(widths, start=1))
    header = "".join(f'<c r="{_col_letter(i)}1" t="inlineStr" s="1"><is><t>{c}</t></is></c>'
                     for i, c in enumerate(COLUMNS, start=1))
    sheet.write(
        f'{_XML}<worksheet xmlns="{_NS}"><sheetViews><sheetView workbookViewId="0">'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
        f'<sheetFormatPr defaultRowHeight="15"/><cols>{cols}</cols><sheetData>'
        f'<row r="1">{header}</row>'.encode())
    cell = strings.__getitem__
    n = 1
    batch: list[bytes] = []
    for row in rows:
        n += 1
        batch.append(b'<row r="%d">%s</row>' % (n, b"".join(map(cell, row))))
        if len(batch) == 4096:
            sheet.write(b"".join(batch))
            batch.clear()
        if n > limit:
            break
    sheet.write(b"".join(batch) + b"</sheetData></worksheet>")
    return n - 1


def _package(sheets: int) -> dict[str, str]:
    """Workbook, relationships, content types and a style sheet with one bold font."""
    names = [SHEET if i == 1 else f"{SHEET} ({i})" for i in range(1, sheets + 1)]
    book = "".join(f'<sheet name="{n}" sheetId="{i}" r:id="rId{i}"/>'
                   for i, n in enumerate(names, start=1))
    rels = "".join(f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" '
                   f'Target="worksheets/sheet{i}.xml"/>' for i in range(1, sheets + 1))
    overrides = "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
                        f'ContentType="{_CT}.worksheet+xml"/>' for i in range(1, sheets + 1))
    return {
        "[Content_Types].xml": (
            f'{_XML}<Types xmlns="{_PKG}/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{_CT}.styles+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_CT}.sharedStrings+xml"/>'
            f"{overrides}</Types>"),
        "_rels/.rels": (
            f'{_XML}<Relationships xmlns="{_PKG}/relationships">'
            f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"),
        "xl/workbook.xml": (
            f'{_XML}<workbook xmlns="{_NS}" xmlns:r="{_REL}"><sheets>{book}</sheets>'
            "</workbook>"),
        "xl/_rels/workbook.xml.rels": (
            f'{_XML}<Relationships xmlns="{_PKG}/relationships">{rels}'
            f'<Relationship Id="rIdS" Type="{_REL}/styles" Target="styles.xml"/>'
            f'<Relationship Id="rIdT" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>"),
        "xl/styles.xml": (
            f'{_XML}<styleSheet xmlns="{_NS}">'
            '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
            '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
            '<fills count="2"><fill><patternFill patternType="none"/></fill>'
            '<fill><patternFill patternType="gray125"/></fill></fills>'
            '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border>'
            '</borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" '
            'borderId="0"/></cellStyleXfs><cellXfs count="2">'
            '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
            '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
            '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" '
            'builtinId="0"/></cellStyles></styleSheet>'),
    }


def _col_letter(n: int) -> str:
    out = ""
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


# ---------------------------------------------------------------------- cells
def _safeguard_for(flow: Flow, basis: Basis) -> Safeguard | None:
    if basis.kind not in ("safeguard", "derogation"):
        return None
    return next((s for s in flow.safeguards if s.label() == basis.reference), None)


def _mechanism(basis: Basis) -> str:
    return {
        "adequacy": "adequacy decision (Art. 45)",
        "safeguard": "appropriate safeguard (Art. 46/47)",
        "derogation": "derogation (Art. 49)",
        "none": "none",
    }.get(basis.kind, basis.kind)


def _instrument_name(pack: PolicyPack, basis: Basis) -> str:
    if basis.kind == "adequacy" and basis.reference:
        d = pack.find_decision(basis.reference)
        return d.instrument if d else ""
    return basis.detail or ""


def _next_review(
    pack: PolicyPack, t: Transfer, basis: Basis, tia_date: dt.date | None, as_of: dt.date
) -> str:
    dates: list[dt.date] = []
    if basis.kind == "adequacy" and basis.reference:
        d = pack.find_decision(basis.reference)
        if d and d.next_review:
            dates.append(d.next_review)
    if basis.kind == "safeguard":
        dates.append((tia_date or as_of)
                     + dt.timedelta(days=pack.regimes[t.regime].tia_review_days))
    return min(dates).isoformat() if dates else ""


def _dest_name(pack: PolicyPack, code: str) -> str:
    return "unknown (any country)" if code == ANY_COUNTRY else pack.country_name(code)


def _dest_type(code: str) -> str:
    if code == ANY_COUNTRY:
        return "unknown"
    return "international organisation" if len(code) != 2 else "third country"
