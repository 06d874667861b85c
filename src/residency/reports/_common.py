"""Shared pieces of the report builders: provenance, parties, flow verdicts, templates, writing."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from residency._io import write_atomic
from residency.graph import FlowGraph
from residency.model import (
    Basis,
    BasisKind,
    DataMap,
    Flow,
    Party,
    Report,
    ResolvedLocation,
    Severity,
    System,
)
from residency.reports import ReportError

if TYPE_CHECKING:
    import jinja2

    from residency.policy.pack import PolicyPack

COUNSEL = "✎ TO BE COMPLETED BY COUNSEL"
MANIFEST = ".residency-manifest.json"


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where every statement in a report comes from: pack, map file and (if any) scan run."""

    pack_name: str
    pack_version: str
    pack_digest: str
    map_file: str | None
    map_digest: str | None
    scan_run: str | None = None

    @classmethod
    def of(cls, report: Report, scan_run: str | None = None) -> Provenance:
        return cls(report.pack.name, report.pack.version, report.pack.digest,
                   report.map_source, report.map_digest, scan_run)

    def pack(self, where: str) -> str:
        return f"policy pack {self.pack_name} {self.pack_version}: {where}"

    def map(self, where: str) -> str:
        name = self.map_file or "map"
        return f"map {name}: {where}"

    def engine(self, as_of: str) -> str:
        return (f"residency engine as of {as_of} (pack {self.pack_name} {self.pack_version}, "
                f"map digest {self.map_digest or '?'})")

    def lines(self) -> list[str]:
        return [
            f"Policy pack: {self.pack_name} {self.pack_version} (digest {self.pack_digest})",
            f"Data map: {self.map_file or '(none)'} (sha256 {self.map_digest or '?'}…)",
            f"Scan run: {self.scan_run or 'none (declared map only)'}",
        ]


def collect_parties(
    report: Report, pack: PolicyPack, datamap: DataMap | None = None
) -> dict[str, Party]:
    """The map's parties plus pack-known providers; placeholders for anything unknown."""
    parties = {p.id: p for p in (datamap.parties if datamap else ())}
    for s in report.systems:
        if s.party not in parties:
            parties[s.party] = pack.provider_party(s.party) or Party(s.party, s.party, "ZZ")
    return parties


def graph_of(report: Report, parties: Mapping[str, Party]) -> FlowGraph:
    return FlowGraph(parties.values(), report.systems, report.flows)


class Verdict(StrEnum):
    """How a flow is drawn and summarised."""

    LAWFUL = "lawful"
    WARNING = "warning"
    ERROR = "error"
    SAME_ENTITY = "same-entity"
    DOMESTIC = "no-transfer"


VERDICT_COLOURS: dict[Verdict, str] = {
    Verdict.LAWFUL: "#1a7f37",
    Verdict.WARNING: "#b35900",
    Verdict.ERROR: "#cf222e",
    Verdict.SAME_ENTITY: "#0969da",
    Verdict.DOMESTIC: "#6e7781",
}


def flow_verdicts(report: Report) -> dict[str, Verdict]:
    """One verdict per flow: the worst of its transfers and its (unwaived) findings."""
    worst: dict[str, Severity] = {}
    for f in report.findings:
        if f.subject_kind == "flow" and not f.waived:
            old = worst.get(f.subject)
            if old is None or f.severity.rank > old.rank:
                worst[f.subject] = f.severity
    out: dict[str, Verdict] = {}
    by_flow: dict[str, list[bool]] = {}
    same: dict[str, bool] = {}
    for t in report.transfers:
        by_flow.setdefault(t.flow, []).append(t.lawful)
        same[t.flow] = same.get(t.flow, True) and t.same_entity
    for flow in report.flows:
        sev = worst.get(flow.id)
        lawful = by_flow.get(flow.id)
        if (lawful is not None and not all(lawful)) or sev is Severity.ERROR:
            out[flow.id] = Verdict.ERROR
        elif sev is Severity.WARNING:
            out[flow.id] = Verdict.WARNING
        elif lawful is None:
            out[flow.id] = Verdict.DOMESTIC
        elif same.get(flow.id):
            out[flow.id] = Verdict.SAME_ENTITY
        else:
            out[flow.id] = Verdict.LAWFUL
    return out


def where(system: System, resolved: ResolvedLocation | None) -> str:
    """`DE (aws:eu-central-1); access from US` — countries first, then the declared location."""
    if resolved is None or resolved.unresolved:
        text = f"unknown ({resolved.unresolved if resolved else 'not resolved'})"
    elif resolved.any_country:
        text = "any country"
    else:
        text = ", ".join(sorted(resolved.countries))
    if system.location.provider:
        text += f" ({system.location.describe()})"
    if system.access_from:
        text += f"; access from {', '.join(sorted(system.access_from))}"
    return text


def flows_by_id(report: Report) -> dict[str, Flow]:
    return {f.id: f for f in report.flows}


# ---------------------------------------------------------------------- country sets
@dataclass(frozen=True, slots=True)
class CountryPart:
    """One piece of a summarised country set: a pack group (`EU (27)`) or one country."""

    label: str  # "EU (27)" for a group part, the country code otherwise
    countries: tuple[str, ...]  # the members it stands for, sorted (for expanding)
    group: str | None = None  # the pack's group id (`EU`, `EEA`), None for one country


def cover_countries(
    codes: Iterable[str], groups: Mapping[str, frozenset[str]], *, min_group: int,
    max_groups: int | None = None,
) -> tuple[list[tuple[str, frozenset[str]]], list[str]]:
    """The one way a country set is summarised: greedily, the group covering most of what
    is left (on a tie the first in `groups`' order: `country_groups` puts the smaller group
    first, EU before EEA), while it covers at least `min_group` codes, at most `max_groups`
    groups. Returns each group taken with the codes it stands for, and the rest, sorted."""
    left = set(codes)
    candidates = list(groups.items())
    taken: list[tuple[str, frozenset[str]]] = []
    while candidates and (max_groups is None or len(taken) < max_groups):
        best = max(range(len(candidates)), key=lambda i: (len(left & candidates[i][1]), -i))
        name, members = candidates.pop(best)
        hit = frozenset(left & members)
        if len(hit) < min_group:
            break
        taken.append((name, hit))
        left -= hit
    return taken, sorted(left)


def country_parts(
    codes: Iterable[str], pack: PolicyPack, *, min_group: int = 5
) -> tuple[CountryPart, ...]:
    """A country set as the pack's groups (`country_groups.yaml`) plus the rest, so an EU
    multi-region store reads `EU (27)` rather than 27 codes (`cover_countries`, every group
    covering at least `min_group`); the counts say how many of the group's members are in
    the set."""
    taken, rest = cover_countries(codes, country_groups(pack), min_group=min_group)
    return (*(CountryPart(f"{g} ({len(hit)})", tuple(sorted(hit)), g) for g, hit in taken),
            *(CountryPart(c, (c,)) for c in rest))


# ---------------------------------------------------------------------- templates
@functools.cache
def template_env() -> jinja2.Environment:
    """Templates ship as package data; HTML is autoescaped, Markdown escapes by filter.

    One environment per process: jinja2 caches compiled templates per environment, and
    compiling `tia.md.j2` again for each of 10,000 drafts cost more than rendering them.
    """
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("residency.reports", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2")),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["cell"] = md_cell
    env.filters["inline"] = inline_md
    env.globals["COUNSEL"] = COUNSEL
    env.globals["kind"] = lambda item: type(item).__name__.lower()
    return env


_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def inline_md(text: object) -> Any:
    """HTML-escape, then render the two Markdown marks statements use: `code` and **bold**."""
    from markupsafe import Markup, escape

    html = str(escape(str(text)))
    if "`" in html:
        html = _CODE.sub(r"<code>\1</code>", html)
    if "**" in html:
        html = _BOLD.sub(r"<b>\1</b>", html)
    return Markup(html)  # noqa: S704 - built from escaped text


def md_cell(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


# ---------------------------------------------------------------------- writing
def write_directory(directory: Path, files: Mapping[str, str | bytes]) -> list[Path]:
    """Write `files` into `directory`, refusing if it holds anything residency did not write.

    A manifest records what residency wrote, so re-running into the same directory works
    while a user's own files are never overwritten or mixed with generated ones.
    """
    manifest = directory / MANIFEST
    if directory.exists() and not directory.is_dir():
        raise ReportError(f"{directory}: exists and is not a directory")
    ours: set[str] = set()
    if manifest.is_file():
        try:
            ours = set(json.loads(manifest.read_text(encoding="utf-8")).get("files", []))
        except (OSError, ValueError, AttributeError):
            ours = set()
    if directory.is_dir():
        foreign = sorted(
            p.name for p in directory.iterdir() if p.name != MANIFEST and p.name not in ours
        )
        if foreign:
            raise ReportError(
                f"{directory}: not empty and holds files residency did not write "
                f"({', '.join(foreign[:3])}{'…' if len(foreign) > 3 else ''}); choose an empty "
                "or new directory"
            )
    written = []
    for name, data in files.items():
        path = directory / name
        write_atomic(path, data)
        written.append(path)
    write_atomic(manifest, json.dumps({"files": sorted(ours | set(files))}, indent=2) + "\n")
    return written


def slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)


def join(items: Iterable[str], sep: str = ", ") -> str:
    return sep.join(items)


def as_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------- labels readers scan
@dataclass(frozen=True, slots=True)
class KindWords:
    """The words reports use for one basis kind."""

    title: str  # a legend or column heading: "Adequacy (Art. 45)"
    mechanism: str  # a register cell: "adequacy decision (Art. 45)"
    short: str | None = None  # a table line when the basis has no reference of its own


#: Every `BasisKind`, once: a kind added to the model without words here fails
#: `tests/reports/test_basis_words.py`, not a report at run time (a KeyError did, on the
#: UK processor-return kind).
BASIS_WORDS: dict[str, KindWords] = {
    BasisKind.ADEQUACY: KindWords("Adequacy (Art. 45)", "adequacy decision (Art. 45)"),
    BasisKind.SAFEGUARD: KindWords("Safeguard (Art. 46)",
                                   "appropriate safeguard (Art. 46/47)"),
    BasisKind.DEROGATION: KindWords("Derogation (Art. 49)", "derogation (Art. 49)"),
    BasisKind.SAME_ENTITY: KindWords("Same entity", "same entity (no transfer)",
                                     "same entity"),
    BasisKind.NOT_RESTRICTED: KindWords(
        "Not a restricted transfer", "not a restricted transfer (processor returning data "
        "to its controller)", "not a restricted transfer"),
    BasisKind.NONE: KindWords("No valid basis", "none", "no basis"),
}
_BASIS_WORDS = {k: w.short for k, w in BASIS_WORDS.items() if w.short}


def basis_label(basis: Basis) -> str:
    """`adequacy eu-gb-2021-1772`, `scc 2021/914 module 3`, `derogation Art. 49(1)(e)`.

    A safeguard's reference already begins with its type (`derogation Art. 49(1)(e)`), so the
    kind is written only when the reference does not start with it: never the word twice.
    """
    if basis.kind in _BASIS_WORDS:
        return _BASIS_WORDS[basis.kind]
    ref = (basis.reference or "").strip()
    if not ref:
        return basis.kind
    if ref.split(" ", 1)[0].lower() == basis.kind.lower():
        return ref
    return f"{basis.kind} {ref}"


def country_groups(pack: PolicyPack) -> dict[str, frozenset[str]]:
    """The pack's named country groups (EU, EEA, …), smallest first."""
    groups = {name: pack.expand([name]) for name in pack.group_names}
    return dict(sorted(groups.items(), key=lambda kv: (len(kv[1]), kv[0])))


def summarise_countries(
    codes: Iterable[str], groups: Mapping[str, frozenset[str]], limit: int = 3
) -> str:
    """`DE, US` for a few countries; `EU (27)` or `EEA (30) + US` for many, so a multi-region
    bucket reads as one place, not 27 lines: `cover_countries` with one group, which must
    cover more than `limit`. `groups` comes from `country_groups`."""
    cs = sorted(set(codes))
    if len(cs) <= limit:
        return ", ".join(cs)
    taken, rest = cover_countries(cs, groups, min_group=limit + 1, max_groups=1)
    if not taken:
        return f"{len(cs)} countries"
    name, inside = taken[0]
    text = f"{name} ({len(inside)})"
    if not rest:
        return text
    if len(rest) <= limit:
        return f"{text} + {', '.join(rest)}"
    return f"{text} + {len(rest)} more"
