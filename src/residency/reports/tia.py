"""Transfer-impact assessment drafts, structured on the six steps of EDPB Recommendations 01/2020.

A draft states only what the map, the policy pack and the engine establish, each statement
with its source; everything that needs legal judgement is a visible blank for counsel.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from residency.graph import FlowGraph
from residency.model import (
    ANY_COUNTRY,
    Basis,
    Finding,
    Flow,
    Location,
    Origin,
    Party,
    Report,
    Safeguard,
    System,
    Transfer,
)
from residency.policy.pack import PolicyPack
from residency.policy.schema import AdequacyDecision, Instrument
from residency.reports import ReportError
from residency.reports._common import (
    COUNSEL,
    CountryPart,
    Provenance,
    country_parts,
    flows_by_id,
    md_cell,
    slug,
    template_env,
)

if TYPE_CHECKING:
    from pathlib import Path

    import jinja2

Per = Literal["transfer", "importer"]
EDPB = "EDPB Recommendations 01/2020 v2.0 (2021-06-18)"


@dataclass(frozen=True, slots=True)
class Statement:
    """A fact taken from data, with where it came from."""

    text: str
    source: str


@dataclass(frozen=True, slots=True)
class Blank:
    """Something only counsel can supply; rendered visibly, never filled in."""

    prompt: str


@dataclass(frozen=True, slots=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    source: str


Item = Statement | Blank | Table


@dataclass(frozen=True, slots=True)
class TiaSection:
    number: int
    title: str
    items: tuple[Item, ...]

MAX_STEM = 120  # well under the 255-byte file-name limit, with room for `.html`/`.tmp` suffixes


@dataclass(frozen=True, slots=True)
class TiaDocument:
    """One TIA draft: for one flow, or for every flow to one importer."""

    id: str
    title: str
    as_of: dt.date
    tia_date: dt.date
    flows: tuple[str, ...]
    importer: str
    sections: tuple[TiaSection, ...]
    findings: tuple[Finding, ...]
    provenance: Provenance
    reevaluate_by: dt.date | None
    finding_countries: tuple[str, ...] = ()
    """Each finding's countries summarised (`EU (27), US`), in `findings` order."""

    @property
    def filename(self) -> str:
        return self.name_for(self.id)

    @staticmethod
    def name_for(doc_id: str) -> str:
        """`<id>.md` when the id is a safe file name. Otherwise the slug gets a digest of the
        whole id, so ids that slug alike (`a/b`, `a-b`) keep one draft each; a slug too long
        for a file name (collected flow ids hold two ARM ids or ARNs) also keeps only its head."""
        name = slug(doc_id)
        if name != doc_id or len(name) > MAX_STEM:
            digest = hashlib.sha256(doc_id.encode()).hexdigest()[:12]
            name = f"{name[:MAX_STEM - 13]}-{digest}"
        return f"{name}.md"


STEP_TITLES = (
    "Know your transfers",
    "Identify the transfer tool relied on",
    "Law and practice of the destination",
    "Supplementary measures",
    "Procedural steps",
    "Re-evaluation",
)



# ---------------------------------------------------------------------- which transfers need one
@dataclass(frozen=True, slots=True)
class TiaNeed:
    """Whether one flow's Chapter V transfers call for a TIA, and why (for the index)."""

    flow: str
    status: Literal["due", "not needed", "no basis"]
    reasons: tuple[str, ...]  # one line per distinct reason, regimes grouped

    @property
    def due(self) -> bool:
        return self.status == "due"


@dataclass(frozen=True, slots=True)
class TiaPlan:
    """Every flow with a Chapter V transfer, whether a TIA is due, and the drafts to write.

    Cheap to build (no draft is built): `documents()` builds one draft at a time, so a map
    of 100,000 flows never holds every draft at once."""

    needs: tuple[TiaNeed, ...]  # map order, every flow with a (non same-entity) transfer
    groups: tuple[tuple[Flow, ...], ...]  # one per draft: its flows, map order
    domestic: int  # flows with no Chapter V transfer (within the free-flow area, same entity)
    builder: _Builder

    def documents(self) -> Iterator[TiaDocument]:
        for flows in self.groups:
            yield self.builder.document(list(flows))

    def filenames(self, fmt: str = "markdown") -> dict[str, str]:
        """Flow id → the file name of its draft."""
        out: dict[str, str] = {}
        for flows in self.groups:
            name = self.builder.doc_name(list(flows), fmt)
            for f in flows:
                out[f.id] = name
        return out


def plan_tia(
    report: Report,
    pack: PolicyPack,
    graph: FlowGraph,
    map_source: Provenance | None = None,
    *,
    flows: Sequence[str] | None = None,
    per: Per = "transfer",
) -> TiaPlan:
    """Which flows need a TIA: those relying on an Art. 46 tool the pack marks as needing
    one (SCCs, IDTA, UK Addendum, BCRs, codes, certification). Adequacy (Art. 45),
    derogations (Art. 49) and flows within the free-flow area get none; the index says why.
    `flows` asks for those flows only, and each must need one."""
    builder = _Builder(report, pack, graph, map_source or Provenance.of(report))
    by_flow = builder.by_flow
    if flows:
        unknown = [f for f in flows if f not in flows_by_id(report)]
        if unknown:
            raise ReportError(f"unknown flow id(s): {', '.join(unknown)} (see the map's `flows`)")
        not_transfers = [f for f in flows if f not in by_flow]
        if not_transfers:
            raise ReportError(
                f"flow(s) {', '.join(not_transfers)} involve no Chapter V transfer; no TIA needed"
            )
    wanted = set(flows or ())
    needs: list[TiaNeed] = []
    due: list[Flow] = []
    for f in report.flows:
        if f.id not in by_flow or (wanted and f.id not in wanted):
            continue
        need = builder.need(f)
        needs.append(need)
        if need.due:
            due.append(f)
        elif wanted:
            raise ReportError(f"flow {f.id} needs no TIA: {'; '.join(need.reasons)}")
    groups: tuple[tuple[Flow, ...], ...]
    if per == "transfer":
        groups = tuple((f,) for f in due)
    else:
        by_party: dict[str, list[Flow]] = {}
        for f in due:
            by_party.setdefault(graph.systems[f.target].party, []).append(f)
        groups = tuple(tuple(fs) for fs in by_party.values())
    domestic = sum(1 for f in report.flows if f.id not in by_flow)
    return TiaPlan(tuple(needs), groups, domestic, builder)


def build_tia(
    report: Report,
    pack: PolicyPack,
    graph: FlowGraph,
    map_source: Provenance | None = None,
    *,
    flows: Sequence[str] | None = None,
    per: Per = "transfer",
) -> list[TiaDocument]:
    """Every draft that is due (see `plan_tia`), in map order, one per flow or per importer."""
    return list(plan_tia(report, pack, graph, map_source, flows=flows, per=per).documents())


# ---------------------------------------------------------------------- rendering
def render_markdown(doc: TiaDocument) -> str:
    """The draft as Markdown. Sections are written here, not by a template per item:
    100,000 flows make tens of thousands of drafts, and items repeat across them (the law
    of a country, the blanks), so each distinct item is formatted once per process. Each
    source is written once, under "Sources", and cited by number."""
    sources: dict[str, int] = {}
    out: list[str] = []
    for section in doc.sections:
        out.append(f"## Step {section.number}. {section.title}\n\n")
        after_line = False
        for item in section.items:
            n = sources.setdefault(item.source, len(sources) + 1) \
                if not isinstance(item, Blank) else 0
            if isinstance(item, Statement):
                out.append(f"- {item.text} [{n}]\n")
                after_line = True
                continue
            if after_line:
                out.append("\n")
            out.append(_md_block(item) + (f"*Source: [{n}]*\n\n" if n else ""))
            after_line = False
        if after_line:
            out.append("\n")
    cited = "".join(f"{n}. {src}\n" for src, n in sources.items())
    findings = _md_findings(doc.findings, doc.finding_countries)
    return _skeleton().render(doc=doc, body="".join(out), findings=findings, sources=cited)


def render_draft_html(doc: TiaDocument) -> str:
    """The draft alone as a small self-contained HTML page, in the HTML report's style
    (the `<style>` of `report.html.j2`, read once, so the two never drift apart)."""
    from markupsafe import Markup

    style = Markup(_report_style())  # noqa: S704 - our own template's stylesheet
    return _html_page().render(doc=doc, style=style)


@functools.cache
def _html_page() -> jinja2.Template:
    return template_env().get_template("tia.html.j2")


@functools.cache
def _report_style() -> str:
    env = template_env()
    assert env.loader is not None  # template_env always sets its loader
    source = env.loader.get_source(env, "report.html.j2")[0]
    start, end = source.find("<style>"), source.find("</style>")
    if start < 0 or end < start:
        raise ReportError("report.html.j2 holds no <style> block for the TIA pages")
    return source[start + len("<style>"):end].strip("\n")


@functools.cache
def _skeleton() -> jinja2.Template:
    return template_env().get_template("tia.md.j2")


@functools.lru_cache(maxsize=100_000)
def _md_block(item: Blank | Table) -> str:
    if isinstance(item, Blank):
        return f"> {COUNSEL}: {item.prompt}\n\n"
    rows = "".join(f"| {' | '.join(map(md_cell, r))} |\n" for r in item.rows)
    return (f"| {' | '.join(map(md_cell, item.headers))} |\n|{'---|' * len(item.headers)}\n"
            f"{rows}\n")


def _md_findings(findings: Sequence[Finding], countries: Sequence[str]) -> str:
    if not findings:
        return "None on the evaluation date."
    lines = ["| Severity | Rule | Regime | Countries | Message |", "|---|---|---|---|---|"]
    lines.extend(
        f"| {f.severity.value}{' (waived)' if f.waived else ''} | {f.rule} | {f.regime or ''} "
        f"| {md_cell(where)} | {md_cell(f.message)} |"
        for f, where in zip(findings, countries, strict=True))
    return "\n".join(lines)


# ---------------------------------------------------------------------- the index
INDEX_NAME = "index.md"


def render_index(plan: TiaPlan, fmt: str = "markdown") -> str:
    """Every Chapter V transfer, with its draft or why none is needed (Markdown)."""
    names = plan.filenames(fmt)
    b = plan.builder
    due = sum(1 for n in plan.needs if n.due)
    parts = [
        "# TIA index — which transfers need a transfer impact assessment\n\n",
        f"**Evaluated as of:** {b.report.as_of} · **Flows with a Chapter V transfer:** "
        f"{len(plan.needs)} · **TIA due:** {due} ({len(plan.groups)} draft(s)) · "
        f"**Flows with no Chapter V transfer:** {plan.domestic}\n\n",
        "A TIA is due where a transfer relies on an Art. 46 tool the policy pack marks as "
        "needing one (standard clauses, IDTA, UK Addendum, BCRs, codes, certification). "
        "Adequacy (Art. 45), derogations (Art. 49) and flows within a regime's free-flow "
        "area need none. Generated from recorded data; not legal advice.\n\n",
        *(f"- {line}\n" for line in b.prov.lines()),
        "\n| Flow | From → to | Importer | TIA | Why |\n|---|---|---|---|---|\n",
    ]
    for need in plan.needs:
        flow = b.flows[need.flow]
        imp = b.party(b.graph.systems[flow.target])
        name = names.get(need.flow)
        draft = f"[{md_cell(name)}]({md_cell(name)})" if name else _STATUS[need.status]
        parts.append(f"| {md_cell(flow.id)} | {md_cell(flow.source)} → {md_cell(flow.target)} "
                     f"| {md_cell(imp.name)} | {draft} | {md_cell('; '.join(need.reasons))} |\n")
    return "".join(parts)


_STATUS = {"due": "due", "not needed": "not needed", "no basis": "**none: no valid basis**"}
# ---------------------------------------------------------------------- writing drafts
DRAFTS_MANIFEST = ".residency-drafts.json"


@dataclass(frozen=True, slots=True)
class KeptDraft:
    """A draft changed since residency wrote it: left as it is, the new one written beside."""

    draft: Path
    new: Path


@dataclass(frozen=True, slots=True)
class DraftsWritten:
    written: tuple[Path, ...]  # the files now holding this run's drafts
    kept: tuple[KeptDraft, ...]


@dataclass(frozen=True, slots=True)
class StoredDraft:
    """A new draft a helper process has already written into the drafts directory (with
    `write_new`, so it replaced nothing), given to `write_drafts` instead of its text."""

    digest: str
    device: int
    inode: int

    def encode(self) -> bytes:
        return f"{self.digest}:{self.device}:{self.inode}".encode()

    @classmethod
    def decode(cls, data: bytes) -> StoredDraft:
        digest, device, inode = data.decode().split(":")
        return cls(digest, int(device), int(inode))


def store_new_draft(directory: Path, name: str, raw: bytes) -> StoredDraft | None:
    """Write a draft where nothing is yet, for a helper process (`report tia`'s second
    core), once `write_drafts` has checked `directory`; None (nothing written) if a file
    is there: `write_drafts` then deals with that name itself."""
    from residency._output import write_new

    made = write_new(directory / name, raw)
    return None if made is None else StoredDraft(_sha256(raw), *made)


def write_drafts(directory: Path,
                 files: Mapping[str, str | bytes | StoredDraft]) -> DraftsWritten:
    """Write drafts into `directory` without losing what counsel wrote there.

    `.residency-drafts.json` records the sha256 of every file residency wrote. A draft whose
    content differs from that record (edited since), or a file of the same name residency
    never wrote, is kept: the new draft goes beside it as `NAME.new.md` (`NAME.new-2.md`, …
    if that one was edited too) and is listed in `kept`. A directory holding other files is
    refused unless the run is forced (--force); those files are then left alone.
    `files` may offer `store_drafts_in(directory)`, called once the directory has passed
    these checks, and give a `StoredDraft` for a draft its helper then wrote itself.
    """
    import json

    from residency._output import (
        note_written,
        remove_leftovers,
        run_inputs,
        write_atomic,
        write_new,
    )
    from residency.reports._common import MANIFEST

    if directory.exists() and not directory.is_dir():
        raise ReportError(f"{directory}: exists and is not a directory")
    folded: dict[str, str] = {}
    for name in files:
        other = folded.setdefault(name.casefold(), name)
        if other != name:
            raise ReportError(f"drafts {other} and {name} differ only in case; they would "
                              "overwrite each other on some file systems")
    recorded = _recorded_drafts(directory / DRAFTS_MANIFEST)
    legacy = _legacy_names(directory / MANIFEST)  # names `write_directory` (the demo) wrote
    present = _listing(directory)  # name → is a file (links followed); one listing
    _refuse_foreign(directory, present, set(recorded) | legacy | {DRAFTS_MANIFEST, MANIFEST})
    written: list[Path] = []
    kept: list[KeptDraft] = []
    _make_directory(directory)
    remove_leftovers(directory / DRAFTS_MANIFEST)  # once: every draft is in this directory
    # a name nothing holds yet is written without the checks an existing file needs, unless
    # it is an input of this run (refused by `write_atomic`, whatever is there)
    inputs = {p.name for p in run_inputs() if p.parent == directory.resolve()}
    store_in = getattr(files, "store_drafts_in", None)
    if store_in is not None:
        store_in(directory)  # checked: a helper process may write new drafts here now
    for name, data in files.items():
        if isinstance(data, StoredDraft):
            note_written(data.device, data.inode)
            recorded[name] = data.digest
            written.append(directory / name)
            continue
        raw = data.encode() if isinstance(data, str) else data
        digest = _sha256(raw)
        path = directory / name
        if name not in present and name not in inputs and write_new(path, raw):
            recorded[name] = digest
            written.append(path)
            continue
        current = _file_digest(path)
        if current is not None and current != digest and recorded.get(name) != current:
            path_new = _beside(path, recorded, digest)
            kept.append(KeptDraft(path, path_new))
            path, current = path_new, _file_digest(path_new)
        if current != digest:
            write_atomic(path, data, ours=True)
        recorded[path.name] = digest
        written.append(path)
    on_disk = {n for n, is_file in present.items() if is_file} | {p.name for p in written}
    recorded = {n: d for n, d in sorted(recorded.items()) if n in on_disk}
    write_atomic(directory / DRAFTS_MANIFEST, json.dumps(
        {"residency_drafts": 1, "files": recorded}, indent=2) + "\n", ours=True)
    if legacy:  # keep the names-only manifest in step, or `write_directory` refuses the folder
        write_atomic(directory / MANIFEST, json.dumps(
            {"files": sorted(legacy | set(recorded) | {DRAFTS_MANIFEST})}, indent=2) + "\n",
            ours=True)
    return DraftsWritten(tuple(written), tuple(kept))


def _refuse_foreign(directory: Path, present: Mapping[str, bool], known: set[str]) -> None:
    from residency._output import forcing, is_leftover_name

    if not present or forcing():
        return
    foreign = sorted(n for n in present if n not in known and not is_leftover_name(n))
    if foreign:
        raise ReportError(
            f"{directory}: not empty and holds files residency did not write "
            f"({', '.join(foreign[:3])}{'…' if len(foreign) > 3 else ''}); choose an empty "
            "or new directory, or use --force to write beside them"
        )


def _beside(path: Path, recorded: Mapping[str, str], digest: str) -> Path:
    """The first `NAME.new[-N].EXT` that is free, unchanged since residency wrote it, or
    already holds this draft."""
    stem, dot, ext = path.name.rpartition(".")
    if not dot:
        stem, ext = path.name, ""
    for i in range(1, 1000):
        candidate = path.with_name(f"{stem}.new{'' if i == 1 else f'-{i}'}{dot}{ext}")
        current = _file_digest(candidate)
        if current is None or current == digest or recorded.get(candidate.name) == current:
            return candidate
    raise ReportError(f"{path}: too many edited copies beside it; tidy the directory")


def _listing(directory: Path) -> dict[str, bool]:
    """The directory's entries, each with whether it is a file (links followed); empty if
    there is no directory yet."""
    import os

    try:
        with os.scandir(directory) as entries:
            return {e.name: e.is_file() for e in entries}
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as exc:
        raise ReportError(f"{directory}: cannot read: {exc.strerror}") from None


def _make_directory(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"{directory}: cannot create: {exc.strerror}") from None


def _recorded_drafts(manifest: Path) -> dict[str, str]:
    import json

    try:
        doc = json.loads(manifest.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}  # unreadable: every existing draft counts as edited, so nothing is lost
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, dict):
        return {}
    return {n: d for n, d in files.items() if isinstance(n, str) and isinstance(d, str)}


def _legacy_names(manifest: Path) -> set[str]:
    import json

    try:
        files = json.loads(manifest.read_bytes()).get("files", [])
    except (OSError, ValueError, AttributeError):
        return set()
    return {n for n in files if isinstance(n, str)} if isinstance(files, list) else set()


def _file_digest(path: Path) -> str | None:
    try:
        return _sha256(path.read_bytes())
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ReportError(f"{path}: is a directory where a draft goes") from None
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror}") from None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()




# ---------------------------------------------------------------------- building drafts
class _Builder:
    """Builds drafts one at a time. What many drafts share (a country's decisions, a
    regime's instruments, a country set's summary) is looked up once per process."""

    def __init__(self, report: Report, pack: PolicyPack, graph: FlowGraph, prov: Provenance):
        self.report = report
        self.pack = pack
        self.graph = graph
        self.prov = prov
        self.engine_src = prov.engine(str(report.as_of))
        self.resolved = dict(report.resolved)
        self.special = dict(report.special_categories)
        self.flows = flows_by_id(report)
        self.by_flow: dict[str, list[Transfer]] = {}
        # each distinct `bases` numbered, hashed once per object (the engine shares most)
        self._bases_no: dict[int, int] = {}
        numbers: dict[tuple[tuple[str, Basis], ...], int] = {}
        for t in report.transfers:
            if not t.same_entity:
                self.by_flow.setdefault(t.flow, []).append(t)
                if id(t.bases) not in self._bases_no:
                    self._bases_no[id(t.bases)] = numbers.setdefault(t.bases, len(numbers))
        # findings by (kind, subject) with their report position: one pass over all
        # findings for the whole report, not one per draft (quadratic at 100,000 flows)
        self.findings_of: dict[tuple[str, str], list[tuple[int, Finding]]] = {}
        for n, f in enumerate(report.findings):
            self.findings_of.setdefault((f.subject_kind, f.subject), []).append((n, f))
        self._decisions: dict[tuple[str, str], list[AdequacyDecision]] = {}
        self._instruments: dict[tuple[str | None, str, str], Instrument | None] = {}
        self._summaries: dict[frozenset[str], tuple[CountryPart, ...]] = {}
        self._key_countries: dict[tuple[str | None, str], str] = {}
        # Parts of drafts that depend on shared facts only, built once per process: most
        # drafts share their importer's system, their bases (the engine interns each
        # distinct `bases` tuple) and their review dates with many others.
        self._memo: dict[tuple[object, ...], tuple[Item, ...]] = {}
        self._located: dict[str, str] = {}
        self._adequacy_texts: dict[str, str] = {}
        self._sections: dict[tuple[object, ...], TiaSection] = {}
        self._needs: dict[tuple[object, ...], tuple[
            Literal["due", "not needed", "no basis"], tuple[str, ...]]] = {}
        self._dates: dict[tuple[object, ...], tuple[tuple[Item, ...], tuple[dt.date, ...]]] = {}

    def memo(self, key: tuple[object, ...], make: Callable[[], Iterable[Item]]) -> tuple[Item, ...]:
        """The items `make` yields, built once per `key` (a tag, then what they depend on)."""
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = tuple(make())
        return hit

    def bases_key(self, transfers: Iterable[Transfer]) -> tuple[object, ...]:
        """What the transfers' legal statements depend on: each one's regime and bases (by
        number; looked up by the tuple's identity, which the report holds for the builder's
        life, so an id is never reused)."""
        no = self._bases_no
        return tuple((t.regime, no[id(t.bases)]) for t in transfers)

    # ------------------------------------------------------------------ lookups
    def party(self, system: System) -> Party:
        return self.graph.party_of(system)

    def regime(self, regime: str) -> str:
        return self.pack.regimes[regime].name

    def sys_src(self, system: System) -> str:
        if system.origin is not Origin.DECLARED:
            what = system.resource_id or system.id
            return f"{system.origin.value}: {what}" + (
                f" ({system.account})" if system.account else "") + (
                f", scan run {self.prov.scan_run}" if self.prov.scan_run else "")
        return self.prov.map(f"systems[id={system.id}]")

    def country(self, code: str) -> str:
        if code == ANY_COUNTRY:
            return "any country (location unknown)"
        return f"{self.pack.country_name(code)} ({code})"

    def summary(self, codes: Iterable[str]) -> tuple[CountryPart, ...]:
        key = frozenset(codes)
        hit = self._summaries.get(key)
        if hit is None:
            hit = self._summaries[key] = country_parts(key - {ANY_COUNTRY}, self.pack) \
                + ((CountryPart(ANY_COUNTRY, (ANY_COUNTRY,)),) if ANY_COUNTRY in key else ())
        return hit

    def short(self, codes: Iterable[str]) -> str:
        """`EU (27), US`: for tables."""
        return ", ".join(p.label for p in self.summary(codes))

    def named(self, codes: Iterable[str]) -> str:
        """`EU (27: AT, BE, …), United States (US)`: for statements, once per draft."""
        return ", ".join(f"{p.label[:-1]}: {', '.join(p.countries)})" if p.group
                         else self.country(p.label) for p in self.summary(codes))

    def located(self, system: System) -> str:
        hit = self._located.get(system.id)
        if hit is None:
            hit = self._located[system.id] = self._locate(system)
        return hit

    def _locate(self, system: System) -> str:
        resolved = self.resolved.get(system.id)
        if resolved is None or resolved.unresolved:
            text = f"unknown ({resolved.unresolved if resolved else 'not resolved'})"
        else:
            text = "any country" if resolved.any_country else self.short(resolved.countries)
        if system.location.provider:
            text += f" ({system.location.describe()})"
        if system.access_from:
            text += f"; access from {', '.join(sorted(system.access_from))}"
        return text

    def decisions_for(self, regime: str, country: str) -> list[AdequacyDecision]:
        key = (regime, country)
        hit = self._decisions.get(key)
        if hit is None:
            hit = self._decisions[key] = [
                d for d in self.pack.decisions
                if d.regime == regime and country in self.pack.expand([d.country])]
        return hit

    def instrument(self, ident: str | None, type_: str, regime: str) -> Instrument | None:
        key = (ident, type_, regime)
        if key not in self._instruments:
            found = ([i for i in self.pack.find_instrument(ident) if i.regime == regime]
                     if ident else self.pack.instruments_of(type_, regime))
            self._instruments[key] = found[0] if found else None
        return self._instruments[key]

    def key_places(self, system: System, region: str) -> str:
        """`us-east-1 (US)`: a key's region with its country where the pack knows it."""
        key = (system.location.provider, region)
        hit = self._key_countries.get(key)
        if hit is None:
            hit = region
            if system.location.provider:
                loc = self.pack.resolve(Location(provider=system.location.provider,
                                                 regions=(region,)))
                if not loc.unresolved and loc.countries:
                    hit = f"{region} ({', '.join(sorted(loc.countries))})"
            self._key_countries[key] = hit
        return hit

    # ------------------------------------------------------------------ is a TIA due?
    def need(self, flow: Flow) -> TiaNeed:
        """Due where any destination rests on an Art. 46 tool needing a TIA, or has no basis
        though the flow declares such a tool for that regime (expired, wrong module: the
        draft's findings say why); otherwise the reasons none is, one line per distinct
        reason (regimes sharing it grouped). What it says depends only on what identifies
        the flow's safeguards (not their dates: the bases already say what those decided)
        and its transfers' bases: worked out once for each of those."""
        transfers = self.by_flow[flow.id]
        key = (tuple((sg.type, sg.instrument, sg.module, sg.article, sg.ref,
                      sg.combines_eu_data) for sg in flow.safeguards),
               *self.bases_key(transfers))
        hit = self._needs.get(key)
        if hit is None:
            hit = self._needs[key] = self._need(flow, transfers)
        return TiaNeed(flow.id, *hit)

    def _need(
        self, flow: Flow, transfers: list[Transfer]
    ) -> tuple[Literal["due", "not needed", "no basis"], tuple[str, ...]]:
        reasons: dict[str, list[str]] = {}
        due = no_basis = False
        for t in transfers:
            for basis, countries in _bases_by_kind(t):
                why, tia = self.basis_reason(flow, t.regime, basis)
                due |= tia
                no_basis |= basis.kind == "none" and not tia
                reasons.setdefault(f"{self.short(countries)}: {why}", []).append(t.regime)
        lines = tuple(f"{_and([self.regime(r) for r in regimes])} → {why}"
                      for why, regimes in reasons.items())
        return ("due" if due else "no basis" if no_basis else "not needed"), lines

    def basis_reason(self, flow: Flow, regime: str, basis: Basis) -> tuple[str, bool]:
        if basis.kind == "adequacy":
            d = self.pack.find_decision(basis.reference) if basis.reference else None
            risk = "; the pack marks the decision elevated risk" if d and d.risk == "elevated" \
                else ""
            return f"adequacy decision {basis.reference} covers it; no TIA needed{risk}", False
        if basis.kind == "none":
            declared = self.art46_declared(flow, regime)
            if declared is not None:
                return (f"{declared.label()} is declared but not a valid basis on the date "
                        "(see the findings); TIA due", True)
            return "**no valid basis**: no TIA can cure that; see the findings", False
        sg = next((s for s in flow.safeguards if s.label() == basis.reference), None)
        ins = self.instrument(sg.instrument, sg.type, regime) if sg else None
        if basis.kind == "derogation":
            return _derogation_reason(basis.reference or "derogation", sg, ins), False
        if sg is not None and ins is not None and not ins.needs_tia(sg.module,
                                                                    sg.combines_eu_data):
            return (f"{basis.reference}: the pack marks no TIA as needed for it "
                    f"(`{ins.id}`)"), False
        return f"{basis.reference}: Art. 46 tool, TIA due", True  # unknown: due (fail closed)

    def art46_declared(self, flow: Flow, regime: str) -> Safeguard | None:
        """The first safeguard on `flow` that is an Art. 46 tool of `regime` needing a TIA."""
        for sg in flow.safeguards:
            ins = self.instrument(sg.instrument, sg.type, regime)
            if (ins is not None and ins.transfer_tool and ins.type != "derogation"
                    and ins.needs_tia(sg.module, sg.combines_eu_data)):
                return sg
        return None

    # ------------------------------------------------------------------ document
    def doc_name(self, flows: list[Flow], fmt: str = "markdown") -> str:
        name = TiaDocument.name_for(self.doc_id(flows))
        return f"{name[:-3]}.html" if fmt == "html" else name

    def doc_id(self, flows: list[Flow]) -> str:
        if len(flows) == 1:
            return f"TIA-{flows[0].id}"
        return f"TIA-importer-{self.party(self.graph.systems[flows[0].target]).id}"

    def document(self, flows: list[Flow]) -> TiaDocument:
        target = self.graph.systems[flows[0].target]
        importer = self.party(target)
        transfers = [t for f in flows for t in self.by_flow[f.id]]
        tia_dates = [sg.tia.date for f in flows for sg in f.safeguards if sg.tia and sg.tia.date]
        tia_date = max(tia_dates) if tia_dates else self.report.as_of
        ids = {f.id for f in flows}
        keys = {("flow", i) for i in ids} | {("system", f.target) for f in flows}
        findings = tuple(f for _, f in sorted(
            (hit for k in keys for hit in self.findings_of.get(k, ())), key=lambda h: h[0]))
        step6, reevaluate = self.step6(flows, transfers, tia_date)
        key = self.bases_key(transfers)
        sections = (
            self.section(1, self.step1(flows, transfers)),
            self.section(2, self.step2(flows, transfers)),
            self.shared_section(3, key, lambda: self.step3(transfers)),
            self.shared_section(4, (*sorted({f.target for f in flows}), self.adequate(transfers)),
                                lambda: self.step4(flows, transfers)),
            self.section(5, self.step5(flows)),
            self.section(6, step6))
        title = (f"{flows[0].id}: {importer.name}" if len(flows) == 1
                 else f"{importer.name} ({len(flows)} flows)")
        return TiaDocument(self.doc_id(flows), title, self.report.as_of, tia_date,
                           tuple(sorted(ids)), importer.id, sections, findings, self.prov,
                           reevaluate, tuple(self.short(f.countries) for f in findings))

    @staticmethod
    def section(number: int, items: Iterable[Item]) -> TiaSection:
        return TiaSection(number, STEP_TITLES[number - 1], _distinct(items))

    def shared_section(
        self, number: int, key: tuple[object, ...], make: Callable[[], Iterable[Item]]
    ) -> TiaSection:
        """A section whose items depend only on `key`: one object for every draft sharing it."""
        hit = self._sections.get((number, *key))
        if hit is None:
            hit = self._sections[(number, *key)] = self.section(number, make())
        return hit

    # ------------------------------------------------------------------ step 1
    def step1(self, flows: list[Flow], transfers: list[Transfer]) -> Iterable[Item]:
        for flow in flows:
            yield from self.step1_flow(flow, [t for t in transfers if t.flow == flow.id],
                                       len(flows) > 1)
        yield Blank("Confirm the data transferred are adequate, relevant and limited to what "
                    "is necessary for the purpose (data minimisation), and that the map is "
                    "complete for this transfer (sub-processors, support access).")

    def step1_flow(self, flow: Flow, transfers: list[Transfer], many: bool) -> Iterable[Item]:
        src, dst = self.graph.systems[flow.source], self.graph.systems[flow.target]
        fsrc = self.prov.map(f"flows[id={flow.id}]")
        yield Statement(
            f"Flow `{flow.id}`: {src.name or src.id} (`{src.id}`) → {dst.name or dst.id} "
            f"(`{dst.id}`); purpose: {flow.purpose or 'not declared'}; "
            f"{'recurring' if flow.recurring else 'one-off'}; origin: {flow.origin.value}.", fsrc)
        yield from self.sides(src, dst)  # the pair is nearly always the flow's own
        lead = f"`{flow.id}`: " if many else ""
        yield Statement(f"{lead}Data categories: "
                        + (", ".join(sorted(flow.data_categories)) or "none declared") + ".", fsrc)
        yield from self.special_categories(flow, transfers, lead)
        if not flow.purpose:
            yield Blank(f"Purpose of `{flow.id}` is not declared in the map.")
        if dst.access_from:
            yield from self.memo(("remote", dst.id), lambda: self.remote_access(dst))
        yield from self.destinations(transfers, lead)
        yield from self.paths_and_onward(flow, dst)

    def sides(self, src: System, dst: System) -> Iterable[Item]:
        exp, imp = self.party(src), self.party(dst)
        yield Table(
            ("Side", "Party", "Country", "Role", "System", "Data located"),
            (("Exporter", f"{exp.name} ({exp.id})", exp.country, src.role.value, src.id,
              self.located(src)),
             ("Importer", f"{imp.name} ({imp.id})", imp.country, dst.role.value, dst.id,
              self.located(dst))),
            f"{self.prov.map(f'parties[id={exp.id}], parties[id={imp.id}]')}; "
            f"{self.sys_src(src)}; {self.sys_src(dst)}; locations resolved with "
            + self.prov.pack("regions/*.yaml"))

    def remote_access(self, dst: System) -> Iterable[Item]:
        yield Statement(
            f"Remote access to `{dst.id}` from {self.named(dst.access_from)}: making data "
            "available by remote access is a transfer even where the data stay on EEA "
            "servers (EDPB Guidelines 05/2021).", self.sys_src(dst) + " `access_from`")

    def special_categories(
        self, flow: Flow, transfers: list[Transfer], lead: str
    ) -> Iterable[Item]:
        carried = set(flow.data_categories).union(*(t.data_categories for t in transfers))
        sensitive = sorted(c for c in carried if c in self.special)
        if sensitive:
            yield Statement(
                f"{lead}Special categories: " + ", ".join(
                    f"{c} (GDPR Art. {self.special[c].removeprefix('art')})" for c in sensitive)
                + ". Chapter V applies as to any data, but the assessment of the "
                "destination's law weighs them, and a DPIA (Art. 35(3)(b)) is likely "
                "required.", self.prov.map("data_categories") + " / pack vocabulary.yaml")

    def destinations(self, transfers: list[Transfer], lead: str) -> Iterable[Item]:
        """Where the data go under each regime, as one statement (regimes sharing a
        destination set grouped); onward hops said once."""
        key = ("destinations", lead, *((t.regime, t.countries, t.onward) for t in transfers))
        return self.memo(key, lambda: self._destinations(transfers, lead))

    def _destinations(self, transfers: list[Transfer], lead: str) -> Iterable[Item]:
        shared: dict[tuple[str, ...], list[str]] = {}
        for t in transfers:
            shared.setdefault(t.countries, []).append(self.regime(t.regime))
        onward = sorted({self.regime(t.regime) for t in transfers if t.onward})
        places = "; ".join(f"under {_and(regimes)} to {self.named(countries)}"
                           for countries, regimes in shared.items())
        yield Statement(
            f"{lead}Transfer {places}."
            + (f" Under {_and(onward)} it is an onward transfer (the data arrive via an "
               "earlier hop)." if onward else ""), self.engine_src)

    def paths_and_onward(self, flow: Flow, dst: System) -> Iterable[Item]:
        yield from self.paths(flow)  # the flow's own ends; `paths_to` caches the search
        yield from self.memo(("onward", dst.id), lambda: self.onward(dst))

    def paths(self, flow: Flow) -> Iterable[Item]:
        """The paths depend only on the flow's ends: flows sharing them share the statement."""
        paths = self.graph.paths_to(flow)
        if paths:
            yield Statement(
                "Path(s) the data take to the importer: "
                + "; ".join("`" + "` → `".join(p) + "`" for p in paths) + ".",
                self.prov.map("flows (graph of all declared and collected flows)"))

    def onward(self, dst: System) -> Iterable[Item]:
        onward = self.graph.outbound(dst.id)
        if not onward:
            yield Statement(f"No onward flows from `{dst.id}` are declared or collected.",
                            self.prov.map("flows"))
            return
        yield Table(
            ("Onward flow", "To", "Party", "Located", "Categories"),
            tuple((o.id, o.target, self.party(self.graph.systems[o.target]).name,
                   self.located(self.graph.systems[o.target]),
                   ", ".join(sorted(o.data_categories))) for o in onward),
            self.prov.map(f"flows[from={dst.id}]"))

    # ------------------------------------------------------------------ step 2
    def step2(self, flows: list[Flow], transfers: list[Transfer]) -> Iterable[Item]:
        many = len(flows) > 1
        key = self.bases_key(transfers)
        flows_key = tuple(t.flow for t in transfers) if many else ()
        yield from self.memo(("tools", flows_key, *key), lambda: self.tools(transfers, many))
        yield from self.adequacy_relied_on(transfers)  # names the importer: per draft
        for flow in flows:
            yield from self.safeguards(flow, sorted({t.regime for t in transfers
                                                     if t.flow == flow.id}))
        yield from self.memo(("unlawful", *key), lambda: self.unlawful(transfers))

    def tools(self, transfers: list[Transfer], many: bool) -> Iterable[Item]:
        rows = []
        for t in transfers:
            for basis, countries in _bases_by_kind(t):
                row = (self.regime(t.regime), self.short(countries), _basis_text(basis),
                       basis.source or "")
                rows.append((t.flow, *row) if many else row)
        headers = ("Regime", "Countries", "Tool relied on", "Source")
        yield Table(("Flow", *headers) if many else headers, tuple(rows), self.engine_src)

    def unlawful(self, transfers: list[Transfer]) -> Iterable[Item]:
        unlawful: dict[str, set[str]] = {}
        for t in transfers:
            for c, b in t.bases:
                if b.kind == "none":
                    unlawful.setdefault(self.regime(t.regime), set()).add(c)
        shared: dict[frozenset[str], list[str]] = {}
        for regime, lacking in unlawful.items():
            shared.setdefault(frozenset(lacking), []).append(regime)
        for places, regimes in shared.items():
            yield Statement(f"⚠ {_and(regimes)}: **no** valid transfer tool for "
                            f"{self.named(places)} on the evaluation date; see the "
                            "findings above.", self.engine_src)

    def adequacy_relied_on(self, transfers: list[Transfer]) -> Iterable[Item]:
        """Each decision relied on, once; pack entries that read alike (the FADP lists
        each EEA state as its own Annex 1 entry) are one statement with their countries."""
        relied: dict[str, tuple[AdequacyDecision, Transfer, set[str]]] = {}
        for t in transfers:
            for country, basis in t.bases:
                if basis.kind != "adequacy" or not basis.reference:
                    continue
                hit = relied.get(basis.reference)
                if hit is None:
                    d = self.pack.find_decision(basis.reference)
                    if d is None:
                        continue
                    hit = relied[basis.reference] = (d, t, set())
                hit[2].add(country)
        alike: dict[str, tuple[list[str], set[str]]] = {}
        for d, t, countries in relied.values():
            text = self.adequacy_text(d)
            ids, where = alike.setdefault(text, ([], set()))
            ids.append(d.id)
            where.update(countries)
            yield from self.adequacy_scope(d, t)
        for text, (ids, where) in alike.items():
            yield Statement(f"{text} Relied on for {self.short(where)}.",
                            self.prov.pack(f"adequacy.yaml `{'`, `'.join(ids)}`"))

    def adequacy_text(self, d: AdequacyDecision) -> str:
        hit = self._adequacy_texts.get(d.id)
        if hit is None:
            hit = self._adequacy_texts[d.id] = self._adequacy_text(d)
        return hit

    def _adequacy_text(self, d: AdequacyDecision) -> str:
        scope = self.pack.scopes[d.scope]
        return (f"Adequacy: {d.instrument}" + (f" (CELEX {d.celex})" if d.celex else "")
                + f"; adopted {d.adopted}, in force from {d.starts}"
                + (f", valid until {d.valid_until}" if d.valid_until else "")
                + f"; status {d.status}; scope: {scope.description}"
                + (f" Excludes: {scope.excludes}" if scope.excludes else "")
                + (" Human-resources data is covered only for importers qualified "
                   f"with {', '.join(scope.hr_data.requires_any)}." if scope.hr_data else "")
                + f" Source: {d.source}")

    def adequacy_scope(self, d: AdequacyDecision, t: Transfer) -> Iterable[Item]:
        scope = self.pack.scopes[d.scope]
        if scope.requires_any:
            imp = self.graph.parties[t.importer_party]
            held = sorted(set(scope.requires_any) & (imp.certifications | imp.subject_to))
            yield Statement(f"The importer {imp.name} declares {', '.join(held)}, which "
                            f"`{d.id}`'s scope requires.",
                            self.prov.map(f"parties[id={imp.id}].certifications"))
            yield Blank(f"Verify {imp.name}'s listing/certification (e.g. on the official "
                        "list) on the TIA date and record the check.")

    def safeguards(self, flow: Flow, regimes: list[str]) -> Iterable[Item]:
        fsrc = self.prov.map(f"flows[id={flow.id}].safeguards")
        if not flow.safeguards:
            yield Statement(f"No safeguard or derogation is recorded on `{flow.id}`.", fsrc)
        for i, sg in enumerate(flow.safeguards):
            yield Statement(f"`{flow.id}` safeguard {i + 1}: {_safeguard_text(sg)}.", fsrc)
            # what the facts read of the safeguard: its type, instrument and module
            yield from self.memo(("instrument", sg.type, sg.instrument, sg.module, *regimes),
                                 functools.partial(self.instrument_facts, sg, regimes))

    def instrument_facts(self, sg: Safeguard, regimes: list[str]) -> Iterable[Item]:
        facts: dict[tuple[str, str], list[str]] = {}  # (text, source) → regimes
        for regime in regimes:
            text, src = self.instrument_fact(sg, regime)
            facts.setdefault((text, src), []).append(self.regime(regime))
        for (text, src), names in facts.items():
            yield Statement(f"{_and(names)}: {text}", src)
        if sg.type == "derogation":
            yield Blank("Art. 49 derogation: document why the transfer is occasional "
                        "and necessary, and (for Art. 49(1) second subparagraph) the "
                        "assessment and suitable safeguards (Art. 49(6), Art. 30).")

    def instrument_fact(self, sg: Safeguard, regime: str) -> tuple[str, str]:
        ins = self.instrument(sg.instrument, sg.type, regime)
        if ins is None:
            return (f"the pack lists no {sg.type} instrument {sg.instrument or ''} for this "
                    "regime, so it is not usable on its own here.".replace("  ", " "),
                    self.prov.pack("instruments.yaml"))
        mod = ""
        if sg.module is not None and sg.module in ins.modules:
            a, b = ins.modules[sg.module]
            mod = f" Module {sg.module} is for {a} → {b}."
        return (f"{ins.name} (status {ins.status}"
                + (f", usable until {ins.valid_until}" if ins.valid_until else "")
                + ")." + mod + f" Source: {ins.source}",
                self.prov.pack(f"instruments.yaml `{ins.id}`"))

    # ------------------------------------------------------------------ step 3
    def step3(self, transfers: list[Transfer]) -> Iterable[Item]:
        """The law of the destinations a TIA is about: those not covered by adequacy.
        Decisions are stated once each, with the countries they cover."""
        assessed: set[str] = set()
        facts: dict[tuple[str, str, str], set[str]] = {}  # (regime, text, source) → countries
        unknown = False
        for t in transfers:
            for c, b in t.bases:
                if c == ANY_COUNTRY:
                    unknown = True
                    continue
                if b.kind != "adequacy":
                    assessed.add(c)
                for text, src in self.law_facts(t.regime, c):
                    facts.setdefault((self.regime(t.regime), text, src), set()).add(c)
        if unknown:
            yield Statement("A destination is unknown, so its law cannot be assessed.",
                            self.engine_src)
        shared: dict[tuple[str, str, frozenset[str]], list[str]] = {}  # → regimes
        for (regime, text, src), countries in facts.items():
            shared.setdefault((text, src, frozenset(countries)), []).append(regime)
        for (text, src, places), regimes in shared.items():
            yield Statement(f"{_and(regimes)}: {text} Countries: {self.short(places)}.", src)
        covered = {c for t in transfers for c, b in t.bases if b.kind == "adequacy"} - assessed
        if covered:
            yield Statement(f"Adequacy covers {self.short(covered)} under every regime "
                            "concerned: its law is not assessed here.", self.engine_src)
        yield from self.law_blanks(sorted(assessed))

    def law_facts(self, regime: str, country: str) -> list[tuple[str, str]]:
        decisions = self.decisions_for(regime, country)
        if not decisions:
            return [("no adequacy decision in the pack.",
                     self.prov.pack("adequacy.yaml"))]
        current = [d for d in decisions if d.applies_on(self.report.as_of)]
        out = []
        for d in current or decisions[-1:]:  # historic decisions only if nothing is current
            state = "in force" if d in current else f"not in force ({d.status}" + (
                f", ended {d.ended}" if d.ended else "") + ")"
            out.append((
                f"{d.instrument} — {state}; scope: "
                f"{self.pack.scopes[d.scope].description}"
                + (" **Elevated risk.**" if d.risk == "elevated" else "")
                + (f" Note: {d.note}" if d.note else "")
                + ("" if d.verified else " (pack marks this entry unverified)"),
                self.prov.pack(f"adequacy.yaml `{d.id}`")))
        return out

    def law_blanks(self, countries: list[str]) -> Iterable[Item]:
        for c in countries:
            yield Blank(f"{self.country(c)}: laws and practice on access by public authorities "
                        "relevant to these data and this importer (surveillance powers, "
                        "oversight, redress; European Essential Guarantees, EDPB "
                        "Recommendations 02/2020), with sources consulted.")
        yield Blank("Has the importer received access requests from public authorities? "
                    "Importer's transparency reports and answers to the TIA questionnaire.")
        yield Blank("Conclusion: does the law or practice impinge on the effectiveness of the "
                    "tool relied on in step 2?")

    # ------------------------------------------------------------------ step 4
    def step4(self, flows: list[Flow], transfers: list[Transfer]) -> Iterable[Item]:
        for sid in sorted({f.target for f in flows}):
            yield from self.memo(("measures", sid),
                                 functools.partial(self.target_measures, self.graph.systems[sid]))
        if self.adequate(transfers):
            yield Statement("Every destination relies on adequacy: supplementary measures are "
                            "not required by step 4, but monitor the decision (step 6).",
                            self.engine_src)
        yield Blank("Technical measures in place (encryption in transit and at rest, who holds "
                    "the keys and where, pseudonymisation, split processing) and evidence.")
        yield Blank("Contractual measures (e.g. transparency obligations, challenge of access "
                    "requests, warrant canary) and organisational measures (policies, "
                    "data-access logs, staff training).")

    @staticmethod
    def adequate(transfers: list[Transfer]) -> bool:
        return all(t.lawful and all(b.kind == "adequacy" for _, b in t.bases)
                   for t in transfers)

    def target_measures(self, s: System) -> Iterable[Item]:
        if s.tags:
            yield Table(("Tag", "Value"), tuple((k, v) for k, v in s.tags),
                        f"tags collected on `{s.id}`: {self.sys_src(s)}")
        else:
            yield Statement(f"No tags or labels are recorded for `{s.id}` (no collected "
                            "evidence of encryption, key location or pseudonymisation).",
                            self.sys_src(s))
        if s.keys:
            yield Table(
                ("Key", "Region", "Multi-Region replicas", "Origin", "Managed by"),
                tuple((k.arn or k.key or "(service-owned)", k.region or "?",
                       ", ".join(k.replica_regions) or "none", k.origin or "?",
                       k.key_manager or "?") for k in s.keys),
                f"encryption keys read by the scan (machine-verified): {self.sys_src(s)}")
            held = sorted({r for k in s.keys for r in (k.region, *k.replica_regions) if r})
            if held:
                yield Statement(
                    f"The key material of `{s.id}` is held in "
                    f"{', '.join(self.key_places(s, r) for r in held)}; whether that keeps the "
                    "data out of the importer's reach depends on who can use the key there "
                    "(EDPB Recommendations 01/2020, use case 1: encryption protects only where "
                    "the keys stay with the exporter or a trusted party in the EEA or an "
                    "adequate country).", f"{self.sys_src(s)} keys; {EDPB}")
        if s.access_from:
            yield Statement(
                f"`{s.id}` is accessed from {', '.join(sorted(s.access_from))}: the importer "
                "sees the data in the clear. The EDPB found no effective technical measure "
                "for remote access to data in the clear in a problematic jurisdiction "
                "(use cases 6 and 7).", self.sys_src(s) + f" `access_from`; {EDPB}")

    # ------------------------------------------------------------------ step 5
    def step5(self, flows: list[Flow]) -> Iterable[Item]:
        types = {sg.type for f in flows for sg in f.safeguards}
        if types & {"scc", "idta", "uk_addendum"}:
            yield Statement("Standard clauses are relied on: adding measures that do not "
                            "contradict them needs no authorisation; modifying the clauses in "
                            "substance makes them ad hoc clauses needing authorisation by the "
                            "competent supervisory authority.", EDPB + ", step 5")
            yield Blank("Confirm the clauses were used unmodified, or give the authorisation "
                        "reference.")
        for f in flows:
            for sg in f.safeguards:
                if sg.type == "bcr":
                    yield Statement(f"BCRs approved by {sg.approved_by or '?'} on "
                                    f"{sg.approved or '?'}.",
                                    self.prov.map(f"flows[id={f.id}].safeguards"))
        yield Blank("Any other procedural steps taken (supervisory authority consultation, "
                    "records updated, data subjects informed).")

    # ------------------------------------------------------------------ step 6
    def step6(
        self, flows: list[Flow], transfers: list[Transfer], tia_date: dt.date
    ) -> tuple[list[Item], dt.date | None]:
        items: list[Item] = []
        recorded = [(f.id, sg.tia) for f in flows for sg in f.safeguards if sg.tia]
        for fid, tia in recorded:
            items.append(Statement(f"Recorded TIA: {tia.ref}, dated {tia.date or 'unknown'}.",
                                   self.prov.map(f"flows[id={fid}].safeguards[].tia")))
        if not recorded:
            items.append(Statement(f"No TIA is recorded in the map; this draft is dated "
                                   f"{tia_date} (the evaluation date).",
                                   self.prov.map("flows[].safeguards[].tia")))
        key = (tia_date, *self.bases_key(transfers))
        hit = self._dates.get(key)
        if hit is None:
            made: list[Item] = []
            found = self.review_dates(transfers, tia_date, made)
            hit = self._dates[key] = (tuple(made), tuple(found))
        items.extend(hit[0])
        dates = hit[1]
        reevaluate = min(dates) if dates else None
        if reevaluate:
            items.append(Statement(f"**Re-evaluate by {reevaluate}** (earliest of the dates "
                                   "above), or earlier if the law, the importer or the "
                                   "transfer changes.", "computed from the dates above"))
        items.append(Blank("Who monitors developments, and the criteria for suspending or "
                           "ending the transfer if the safeguards stop being effective."))
        return items, reevaluate

    def review_dates(
        self, transfers: list[Transfer], tia_date: dt.date, items: list[Item]
    ) -> list[dt.date]:
        dates: list[dt.date] = []
        by_days: dict[int, list[str]] = {}
        for regime in sorted({t.regime for t in transfers}):
            by_days.setdefault(self.pack.regimes[regime].tia_review_days, []).append(regime)
        for days, regimes in by_days.items():
            due = tia_date + dt.timedelta(days=days)
            dates.append(due)
            items.append(Statement(
                f"{_and([self.regime(r) for r in regimes])}: re-assess within {days} days of "
                f"{tia_date}, i.e. by {due}.", self.prov.pack(
                    f"regimes.yaml `{'`, `'.join(f'{r}.tia_review_days' for r in regimes)}`")))
        refs = {b.reference for t in transfers for _, b in t.bases
                if b.kind == "adequacy" and b.reference}
        for ref in sorted(refs):
            d = self.pack.find_decision(ref)
            if d is None:
                continue
            if d.next_review:
                dates.append(d.next_review)
                items.append(Statement(f"Next review of `{d.id}`: {d.next_review}.",
                                       self.prov.pack(f"adequacy.yaml `{d.id}.next_review`")))
                continue
            years = self.pack.regimes[d.regime].adequacy_review_years
            due = _next_anniversary(d.starts, years, self.report.as_of)
            dates.append(due)
            items.append(Statement(
                f"`{d.id}` has no recorded next review; periodic review every {years} years "
                f"from {d.starts} gives {due}.",
                self.prov.pack(f"regimes.yaml `{d.regime}.adequacy_review_years`")))
        return dates


def _derogation_reason(ref: str, sg: Safeguard | None, ins: Instrument | None) -> str:
    ground = ins.ground(sg.article) if ins and sg and sg.article else None
    if ground is None:
        return f"{ref}: no TIA, but document why the ground applies"
    what = ["why the ground applies"]
    if ground.conditions:
        what.append(f"its conditions ({', '.join(ground.conditions)})")
    if ground.recurring != "allowed":
        what.append("that the transfer is occasional")
    return f"{ref} ({ground.name}): no TIA, but document {_and(what)}"


def _bases_by_kind(t: Transfer) -> list[tuple[Basis, tuple[str, ...]]]:
    """A transfer's bases grouped: each basis with the countries resting on it."""
    grouped: dict[Basis, list[str]] = {}
    for country, b in t.bases:
        grouped.setdefault(b, []).append(country)
    return [(b, tuple(cs)) for b, cs in grouped.items()]


def _distinct(items: Iterable[Item]) -> tuple[Item, ...]:
    """Each item once: a fact two flows or regimes share is stated once."""
    return tuple(dict.fromkeys(items))


def _and(names: Sequence[str]) -> str:
    names = list(dict.fromkeys(names))
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _safeguard_text(sg: Safeguard) -> str:
    parts = [sg.label()]
    if sg.signed:
        parts.append(f"signed {sg.signed}")
    if sg.expires:
        parts.append(f"expires {sg.expires}")
    if sg.approved_by:
        parts.append(f"approved by {sg.approved_by} on {sg.approved or '?'}")
    if sg.tia:
        parts.append(f"TIA {sg.tia.ref}" + (f" dated {sg.tia.date}" if sg.tia.date
                                            else " (undated)"))
    return "; ".join(parts)

def _basis_text(b: Basis) -> str:
    """`adequacy: eu-us-dpf-2023-1795`, `scc 2021/914 module 2 (…)`: a safeguard's label
    already names its type (`derogation Art. 49(1)(e)`), so the kind is not repeated."""
    if b.kind == "none":
        return "**none — no valid basis**"
    if b.kind == "adequacy" or not b.reference:
        return b.kind + (f": {b.reference}" if b.reference else "")
    return b.reference + (f" ({b.detail})" if b.detail else "")


def _next_anniversary(start: dt.date, years: int, after: dt.date) -> dt.date:
    k = 1
    while True:
        try:
            due = start.replace(year=start.year + k * years)
        except ValueError:  # 29 February
            due = start.replace(year=start.year + k * years, day=28)
        if due > after:
            return due
        k += 1
