"""The whole report as one self-contained HTML file (inline CSS and SVG, no network).

First the estate at a glance (regime → destination → basis), then the system diagram, then
tables a reader scans: names first, ids below in small type, country sets summarised
("EU (27)") and expandable. Readable on a phone (tables stack) and in print (`@media print`:
headers repeat, rows do not split). Written as a stream (`write_html`): past `TABLE_ROWS`
rows a table shows the worst rows and says where the rest is (the register, `check`), and
past `TIA_DRAFTS` drafts the rest are listed by name, so 100,000 flows stay a document.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from residency.model import Basis, Finding, Party, Report, Severity, System, Transfer
from residency.reports._common import (
    Provenance,
    basis_label,
    country_groups,
    flow_verdicts,
    summarise_countries,
    template_env,
)
from residency.reports.diagram import build_diagram, to_svg
from residency.reports.estate import build_estate, estate_svg
from residency.reports.tia import TiaDocument

if TYPE_CHECKING:
    from residency.policy.pack import PolicyPack

TABLE_ROWS = 2_000  # rows per table; the register and `check` carry every one
TIA_DRAFTS = 200  # drafts rendered in full; `report tia --all` writes every one
_VERDICT = {"error": "no basis", "warning": "warning", "lawful": "lawful",
            "same-entity": "same entity", "no-transfer": "no transfer"}


@dataclass(frozen=True, slots=True)
class Places:
    """A country set as a reader scans it: `EU (27)`, and the full list behind it."""

    summary: str
    full: str

    @property
    def folded(self) -> bool:
        return self.summary != self.full


@dataclass(frozen=True, slots=True)
class BasisLine:
    places: Places
    label: str
    source: str | None
    kind: str


@dataclass(frozen=True, slots=True)
class TransferRow:
    name: str  # "Customer support portal → DeskCo helpdesk (EU instance)"
    flow: str
    regime: str
    exporter: str
    importer: str
    onward: bool
    where: str  # the importing system's declared or collected location
    places: Places
    bases: tuple[BasisLine, ...]
    verdict: str  # css class: error | warning | lawful | same-entity | no-transfer
    verdict_text: str


@dataclass(frozen=True, slots=True)
class FindingRow:
    finding: Finding
    name: str
    places: Places


@dataclass(frozen=True, slots=True)
class Table:
    """The rows shown, and how many the estate has."""

    rows: Sequence[Any]
    total: int

    @property
    def cut(self) -> int:
        return self.total - len(self.rows)


class _Labels:
    """Names, country sets and bases as the tables show them."""

    def __init__(self, report: Report, parties: Mapping[str, Party], pack: PolicyPack):
        self.systems: dict[str, System] = {s.id: s for s in report.systems}
        self.flows = {f.id: f for f in report.flows}
        self.parties = parties
        self.groups = country_groups(pack)
        self.regimes = {rid: r.name for rid, r in pack.regimes.items()}

    def system(self, ident: str) -> str:
        s = self.systems.get(ident)
        return (s.name or s.id) if s else ident

    def party(self, ident: str) -> str:
        p = self.parties.get(ident)
        return p.name if p else ident

    def flow(self, ident: str) -> str:
        f = self.flows.get(ident)
        return f"{self.system(f.source)} → {self.system(f.target)}" if f else ident

    def places(self, codes: Iterable[str]) -> Places:
        cs = sorted(set(codes))
        return Places(summarise_countries(cs, self.groups), ", ".join(cs))

    def bases(self, t: Transfer) -> tuple[BasisLine, ...]:
        """One line per distinct basis, its countries summarised (27 countries, one line)."""
        by: dict[tuple[str, str, str | None], list[str]] = {}
        for country, b in t.bases:
            kind = "same_entity" if t.same_entity else b.kind
            label = basis_label(Basis(kind, b.reference)) if t.same_entity else basis_label(b)
            by.setdefault((kind, label, b.source), []).append(country)
        return tuple(BasisLine(self.places(cs), label, src, kind)
                     for (kind, label, src), cs in by.items())

    def transfer(self, t: Transfer, verdict: str) -> TransferRow:
        target = self.systems.get(t.importer)
        where = target.location.describe() if target and target.location.provider else ""
        return TransferRow(self.flow(t.flow), t.flow, self.regimes.get(t.regime, t.regime),
                           self.party(t.exporter_party), self.party(t.importer_party),
                           t.onward, where, self.places(t.countries), self.bases(t),
                           verdict, _VERDICT.get(verdict, verdict))

    def finding(self, f: Finding) -> FindingRow:
        name = self.flow(f.subject) if f.subject_kind == "flow" else self.system(f.subject)
        return FindingRow(f, name, self.places(f.countries))


def _worst_first(items: Sequence[Any], rank: Any, limit: int) -> list[Any]:
    if len(items) <= limit:
        return list(items)
    order = sorted(range(len(items)), key=lambda i: (rank(items[i]), i))[:limit]
    return [items[i] for i in sorted(order)]


_SEV = {Severity.ERROR: 0, Severity.WARNING: 1}


def _context(
    report: Report, parties: Mapping[str, Party], tias: Iterable[TiaDocument],
    provenance: Provenance | None, svg: str | None, pack: PolicyPack | None,
    tia_total: int | None,
) -> dict[str, Any]:
    from markupsafe import Markup

    if pack is None:
        from residency.policy.pack import PolicyPack

        pack = PolicyPack.load()
    labels = _Labels(report, parties, pack)
    verdicts = flow_verdicts(report)
    diagram = svg if svg is not None else to_svg(build_diagram(report, parties, pack),
                                                 engine="python")
    findings = _worst_first(report.findings, lambda f: (f.waived, _SEV.get(f.severity, 2)),
                            TABLE_ROWS)
    transfers = _worst_first(report.transfers, lambda t: (t.lawful, t.same_entity), TABLE_ROWS)
    docs = list(islice(tias, TIA_DRAFTS))  # a plan's drafts are built as they are taken
    if tia_total is None:
        tia_total = len(tias) if isinstance(tias, Sequence) else len(docs)
    return {
        "report": report, "counts": report.counts(), "prov": provenance or Provenance.of(report),
        "estate": Markup(estate_svg(build_estate(report, pack))),  # noqa: S704 - escaped
        "svg": Markup(diagram),  # noqa: S704 - generated by residency from escaped values
        "findings": Table([labels.finding(f) for f in findings], len(report.findings)),
        "transfers": Table([labels.transfer(t, verdicts[t.flow].value) for t in transfers],
                           len(report.transfers)),
        "tias": docs, "tia_total": tia_total,
    }


def render_html(
    report: Report,
    parties: Mapping[str, Party],
    tias: Iterable[TiaDocument],
    provenance: Provenance | None = None,
    svg: str | None = None,
    pack: PolicyPack | None = None,
    tia_total: int | None = None,
) -> str:
    """`svg` defaults to the built-in layout so the output does not depend on Graphviz;
    `pack` (for country groups and regime names) defaults to the shipped pack."""
    return "".join(_generate(report, parties, tias, provenance, svg, pack, tia_total))


def write_html(
    path: Path,
    report: Report,
    parties: Mapping[str, Party],
    tias: Iterable[TiaDocument],
    provenance: Provenance | None = None,
    svg: str | None = None,
    pack: PolicyPack | None = None,
    tia_total: int | None = None,
) -> None:
    """`render_html` streamed into `path` (atomically): the page is never held whole."""
    from residency._io import atomic_output

    with atomic_output(path) as fh:
        for chunk in _generate(report, parties, tias, provenance, svg, pack, tia_total):
            fh.write(chunk)


def _generate(
    report: Report, parties: Mapping[str, Party], tias: Iterable[TiaDocument],
    provenance: Provenance | None, svg: str | None, pack: PolicyPack | None,
    tia_total: int | None,
) -> Iterator[str]:
    ctx = _context(report, parties, tias, provenance, svg, pack, tia_total)
    return template_env().get_template("report.html.j2").generate(**ctx)
