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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from residency.model import ANY_COUNTRY, Basis, Flow, Party, Report, Safeguard, Tia, Transfer
from residency.policy.pack import PolicyPack
from residency.reports._common import BASIS_WORDS, COUNSEL, md_cell

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
def _write_xlsx(rows: Iterable[Row], out: IO[bytes]) -> int:
    """The register as one sheet (continued on "Transfers (2)", ... past `XLSX_MAX_ROWS`),
    through the shared streaming writer."""
    from residency.reports._xlsx import Sheet, write_xlsx

    return write_xlsx(out, [Sheet(SHEET, COLUMNS, rows)], max_rows=XLSX_MAX_ROWS)


# ---------------------------------------------------------------------- cells
def _safeguard_for(flow: Flow, basis: Basis) -> Safeguard | None:
    if basis.kind not in ("safeguard", "derogation"):
        return None
    return next((s for s in flow.safeguards if s.label() == basis.reference), None)


def _mechanism(basis: Basis) -> str:
    return BASIS_WORDS[basis.kind].mechanism


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
