"""Transfer-impact assessment drafts, structured on the six steps of EDPB Recommendations 01/2020.

A draft states only what the map, the policy pack and the engine establish, each statement
with its source; everything that needs legal judgement is a visible blank for counsel.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from residency.graph import FlowGraph
from residency.model import (
    ANY_COUNTRY,
    Basis,
    Finding,
    Flow,
    Origin,
    Party,
    Report,
    System,
    Transfer,
)
from residency.policy.pack import PolicyPack
from residency.policy.schema import AdequacyDecision, Instrument
from residency.reports import ReportError
from residency.reports._common import Provenance, flows_by_id, slug, template_env, where

if TYPE_CHECKING:
    from pathlib import Path

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

    @property
    def filename(self) -> str:
        """`<id>.md` when the id is a safe file name. Otherwise the slug gets a digest of the
        whole id, so ids that slug alike (`a/b`, `a-b`) keep one draft each; a slug too long
        for a file name (collected flow ids hold two ARM ids or ARNs) also keeps only its head."""
        name = slug(self.id)
        if name != self.id or len(name) > MAX_STEM:
            digest = hashlib.sha256(self.id.encode()).hexdigest()[:12]
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


def build_tia(
    report: Report,
    pack: PolicyPack,
    graph: FlowGraph,
    map_source: Provenance | None = None,
    *,
    flows: Sequence[str] | None = None,
    per: Per = "transfer",
) -> list[TiaDocument]:
    """One draft per flow that is a Chapter V transfer (or per importer), in map order."""
    prov = map_source or Provenance.of(report)
    by_flow: dict[str, list[Transfer]] = {}
    for t in report.transfers:
        if not t.same_entity:
            by_flow.setdefault(t.flow, []).append(t)
    if flows:
        unknown = [f for f in flows if f not in flows_by_id(report)]
        if unknown:
            raise ReportError(f"unknown flow id(s): {', '.join(unknown)} (see the map's `flows`)")
        not_transfers = [f for f in flows if f not in by_flow]
        if not_transfers:
            raise ReportError(
                f"flow(s) {', '.join(not_transfers)} involve no Chapter V transfer; no TIA needed"
            )
    selected = [f for f in report.flows if f.id in by_flow and (not flows or f.id in flows)]
    builder = _Builder(report, pack, graph, prov)
    if per == "transfer":
        return [builder.document([f], by_flow) for f in selected]
    groups: dict[str, list[Flow]] = {}
    for f in selected:
        groups.setdefault(graph.systems[f.target].party, []).append(f)
    return [builder.document(fs, by_flow) for fs in groups.values()]


def render_markdown(doc: TiaDocument) -> str:
    text = template_env().get_template("tia.md.j2").render(doc=doc)
    return re.sub(r"\n{3,}", "\n\n", text)


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


def write_drafts(directory: Path, files: Mapping[str, str | bytes]) -> DraftsWritten:
    """Write drafts into `directory` without losing what counsel wrote there.

    `.residency-drafts.json` records the sha256 of every file residency wrote. A draft whose
    content differs from that record (edited since), or a file of the same name residency
    never wrote, is kept: the new draft goes beside it as `NAME.new.md` (`NAME.new-2.md`, …
    if that one was edited too) and is listed in `kept`. A directory holding other files is
    refused unless the run is forced (--force); those files are then left alone.
    """
    import json

    from residency._output import forcing, is_leftover_name, remove_leftovers, write_atomic
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
    if directory.is_dir() and not forcing():
        known = set(recorded) | legacy | {DRAFTS_MANIFEST, MANIFEST}
        foreign = sorted(p.name for p in directory.iterdir()
                         if p.name not in known and not is_leftover_name(p.name))
        if foreign:
            raise ReportError(
                f"{directory}: not empty and holds files residency did not write "
                f"({', '.join(foreign[:3])}{'…' if len(foreign) > 3 else ''}); choose an empty "
                "or new directory, or use --force to write beside them"
            )
    written: list[Path] = []
    kept: list[KeptDraft] = []
    for name, data in files.items():
        digest = _sha256(data.encode() if isinstance(data, str) else data)
        path = directory / name
        remove_leftovers(path)
        current = _file_digest(path)
        if current is not None and current != digest and recorded.get(name) != current:
            path_new = _beside(path, recorded, digest)
            kept.append(KeptDraft(path, path_new))
            path, current = path_new, _file_digest(path_new)
        if current != digest:
            write_atomic(path, data, ours=True)
        recorded[path.name] = digest
        written.append(path)
    recorded = {n: d for n, d in sorted(recorded.items()) if (directory / n).is_file()}
    write_atomic(directory / DRAFTS_MANIFEST, json.dumps(
        {"residency_drafts": 1, "files": recorded}, indent=2) + "\n", ours=True)
    if legacy:  # keep the names-only manifest in step, or `write_directory` refuses the folder
        write_atomic(directory / MANIFEST, json.dumps(
            {"files": sorted(legacy | set(recorded) | {DRAFTS_MANIFEST})}, indent=2) + "\n",
            ours=True)
    return DraftsWritten(tuple(written), tuple(kept))


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


class _Builder:
    def __init__(self, report: Report, pack: PolicyPack, graph: FlowGraph, prov: Provenance):
        self.report = report
        self.pack = pack
        self.graph = graph
        self.prov = prov
        self.resolved = dict(report.resolved)
        # findings by (kind, subject) with their report position: one pass over all
        # findings for the whole report, not one per draft (quadratic at 100,000 flows)
        self.findings_of: dict[tuple[str, str], list[tuple[int, Finding]]] = {}
        for n, f in enumerate(report.findings):
            self.findings_of.setdefault((f.subject_kind, f.subject), []).append((n, f))

    # ------------------------------------------------------------------ helpers
    def party(self, system: System) -> Party:
        return self.graph.party_of(system)

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

    def decisions_for(self, regime: str, country: str) -> list[AdequacyDecision]:
        return [d for d in self.pack.decisions
                if d.regime == regime and country in self.pack.expand([d.country])]

    def instrument(self, ident: str | None, type_: str, regime: str) -> Instrument | None:
        if ident:
            found = [i for i in self.pack.find_instrument(ident) if i.regime == regime]
        else:
            found = self.pack.instruments_of(type_, regime)
        return found[0] if found else None

    # ------------------------------------------------------------------ document
    def document(self, flows: list[Flow], by_flow: dict[str, list[Transfer]]) -> TiaDocument:
        target = self.graph.systems[flows[0].target]
        importer = self.party(target)
        transfers = [t for f in flows for t in by_flow[f.id]]
        tia_dates = [sg.tia.date for f in flows for sg in f.safeguards if sg.tia and sg.tia.date]
        tia_date = max(tia_dates) if tia_dates else self.report.as_of
        ids = {f.id for f in flows}
        keys = {("flow", i) for i in ids} | {("system", target.id)}
        findings = tuple(f for _, f in sorted(
            (hit for k in keys for hit in self.findings_of.get(k, ())), key=lambda h: h[0]))
        step6, reevaluate = self.step6(flows, transfers, tia_date)
        sections = (
            TiaSection(1, STEP_TITLES[0], tuple(self.step1(flows, transfers))),
            TiaSection(2, STEP_TITLES[1], tuple(self.step2(flows, transfers))),
            TiaSection(3, STEP_TITLES[2], tuple(self.step3(transfers))),
            TiaSection(4, STEP_TITLES[3], tuple(self.step4(flows, transfers))),
            TiaSection(5, STEP_TITLES[4], tuple(self.step5(flows))),
            TiaSection(6, STEP_TITLES[5], tuple(step6)),
        )
        if len(flows) == 1:
            doc_id, title = f"TIA-{flows[0].id}", f"{flows[0].id}: {importer.name}"
        else:
            doc_id, title = f"TIA-importer-{importer.id}", f"{importer.name} ({len(flows)} flows)"
        return TiaDocument(doc_id, title, self.report.as_of, tia_date, tuple(sorted(ids)),
                           importer.id, sections, findings, self.prov, reevaluate)

    # ------------------------------------------------------------------ step 1
    def step1(self, flows: list[Flow], transfers: list[Transfer]) -> Iterable[Item]:
        for flow in flows:
            src = self.graph.systems[flow.source]
            dst = self.graph.systems[flow.target]
            exp, imp = self.party(src), self.party(dst)
            fsrc = self.prov.map(f"flows[id={flow.id}]")
            yield Statement(
                f"Flow `{flow.id}`: {src.name or src.id} (`{src.id}`) → {dst.name or dst.id} "
                f"(`{dst.id}`); purpose: {flow.purpose or 'not declared'}; "
                f"{'recurring' if flow.recurring else 'one-off'}; origin: {flow.origin.value}.",
                fsrc,
            )
            yield Table(
                ("Side", "Party", "Country", "Role", "System", "Data located"),
                (
                    ("Exporter", f"{exp.name} ({exp.id})", exp.country, src.role.value, src.id,
                     where(src, self.resolved.get(src.id))),
                    ("Importer", f"{imp.name} ({imp.id})", imp.country, dst.role.value, dst.id,
                     where(dst, self.resolved.get(dst.id))),
                ),
                f"{self.prov.map(f'parties[id={exp.id}], parties[id={imp.id}]')}; "
                f"{self.sys_src(src)}; {self.sys_src(dst)}; locations resolved with "
                + self.prov.pack("regions/*.yaml"),
            )
            yield Statement(
                "Data categories: " + (", ".join(sorted(flow.data_categories)) or "none declared")
                + ".", fsrc)
            special = dict(self.report.special_categories)
            carried = set(flow.data_categories).union(
                *(t.data_categories for t in transfers if t.flow == flow.id))
            sensitive = sorted(c for c in carried if c in special)
            if sensitive:
                yield Statement(
                    "Special categories: " + ", ".join(
                        f"{c} (GDPR Art. {special[c].removeprefix('art')})" for c in sensitive)
                    + ". Chapter V applies as to any data, but the assessment of the "
                    "destination's law weighs them, and a DPIA (Art. 35(3)(b)) is likely "
                    "required.", self.prov.map("data_categories") + " / pack vocabulary.yaml")
            if not flow.purpose:
                yield Blank(f"Purpose of `{flow.id}` is not declared in the map.")
            if dst.access_from:
                yield Statement(
                    f"Remote access to `{dst.id}` from "
                    f"{', '.join(self.country(c) for c in sorted(dst.access_from))}: "
                    "making data available by remote access is a transfer even where the data "
                    "stay on EEA servers (EDPB Guidelines 05/2021).",
                    self.sys_src(dst) + " `access_from`",
                )
            for t in transfers:
                if t.flow != flow.id:
                    continue
                yield Statement(
                    f"Under {self.pack.regimes[t.regime].name}: transfer to "
                    f"{', '.join(self.country(c) for c in t.countries)}"
                    + (" — an onward transfer (data protected by this regime arrive via an "
                       "earlier hop)" if t.onward else "") + ".",
                    self.prov.engine(str(self.report.as_of)),
                )
            paths = self.graph.paths_to(flow)
            if paths:
                yield Statement(
                    "Path(s) the data take to the importer: "
                    + "; ".join(" → ".join(f"`{s}`" for s in p) for p in paths) + ".",
                    self.prov.map("flows (graph of all declared and collected flows)"),
                )
            onward = self.graph.outbound(dst.id)
            if onward:
                yield Table(
                    ("Onward flow", "To", "Party", "Located", "Categories"),
                    tuple(
                        (o.id, o.target, self.party(self.graph.systems[o.target]).name,
                         where(self.graph.systems[o.target], self.resolved.get(o.target)),
                         ", ".join(sorted(o.data_categories)))
                        for o in onward
                    ),
                    self.prov.map(f"flows[from={dst.id}]"),
                )
            else:
                yield Statement(f"No onward flows from `{dst.id}` are declared or collected.",
                                self.prov.map("flows"))
        yield Blank("Confirm the data transferred are adequate, relevant and limited to what "
                    "is necessary for the purpose (data minimisation), and that the map is "
                    "complete for this transfer (sub-processors, support access).")

    # ------------------------------------------------------------------ step 2
    def step2(self, flows: list[Flow], transfers: list[Transfer]) -> Iterable[Item]:
        rows = []
        for t in transfers:
            for country, basis in t.bases:
                rows.append((t.flow, self.pack.regimes[t.regime].name, self.country(country),
                             _basis_text(basis), basis.source or ""))
        yield Table(("Flow", "Regime", "Country", "Tool relied on", "Source"), tuple(rows),
                    self.prov.engine(str(self.report.as_of)))
        seen: set[str] = set()
        for t in transfers:
            for _country, basis in t.bases:
                if basis.kind == "adequacy" and basis.reference and basis.reference not in seen:
                    seen.add(basis.reference)
                    d = self.pack.find_decision(basis.reference)
                    if d is None:
                        continue
                    scope = self.pack.scopes[d.scope]
                    yield Statement(
                        f"Adequacy: {d.instrument}"
                        + (f" (CELEX {d.celex})" if d.celex else "")
                        + f"; adopted {d.adopted}, in force from {d.starts}"
                        + (f", valid until {d.valid_until}" if d.valid_until else "")
                        + f"; status {d.status}; scope: {scope.description}"
                        + (f" Excludes: {scope.excludes}" if scope.excludes else "")
                        + (" Human-resources data is covered only for importers qualified "
                           f"with {', '.join(scope.hr_data.requires_any)}."
                           if scope.hr_data else "")
                        + f" Source: {d.source}",
                        self.prov.pack(f"adequacy.yaml `{d.id}`"),
                    )
                    if scope.requires_any:
                        imp = self.graph.parties[t.importer_party]
                        held = sorted(set(scope.requires_any) & (imp.certifications
                                                                  | imp.subject_to))
                        yield Statement(
                            f"The importer {imp.name} declares {', '.join(held)}, which this "
                            "decision's scope requires.",
                            self.prov.map(f"parties[id={imp.id}].certifications"),
                        )
                        yield Blank(f"Verify {imp.name}'s listing/certification (e.g. on the "
                                    "official list) on the TIA date and record the check.")
        for flow in flows:
            fsrc = self.prov.map(f"flows[id={flow.id}].safeguards")
            if not flow.safeguards:
                yield Statement(f"No safeguard or derogation is recorded on `{flow.id}`.", fsrc)
            regimes = sorted({t.regime for t in transfers if t.flow == flow.id})
            for i, sg in enumerate(flow.safeguards):
                parts = [f"`{flow.id}` safeguard {i + 1}: {sg.label()}"]
                if sg.signed:
                    parts.append(f"signed {sg.signed}")
                if sg.expires:
                    parts.append(f"expires {sg.expires}")
                if sg.approved_by:
                    parts.append(f"approved by {sg.approved_by} on {sg.approved or '?'}")
                if sg.tia:
                    parts.append(f"TIA {sg.tia.ref}" + (f" dated {sg.tia.date}" if sg.tia.date
                                                        else " (undated)"))
                yield Statement("; ".join(parts) + ".", fsrc)
                for regime in regimes:
                    ins = self.instrument(sg.instrument, sg.type, regime)
                    if ins is None:
                        yield Statement(f"{self.pack.regimes[regime].name}: the pack lists no "
                                        f"{sg.type} instrument {sg.instrument or ''} for this "
                                        "regime, so it is not usable on its own here.",
                                        self.prov.pack("instruments.yaml"))
                        continue
                    mod = ""
                    if sg.module is not None and sg.module in ins.modules:
                        a, b = ins.modules[sg.module]
                        mod = f" Module {sg.module} is for {a} → {b}."
                    yield Statement(
                        f"{self.pack.regimes[regime].name}: {ins.name} (status {ins.status}"
                        + (f", usable until {ins.valid_until}" if ins.valid_until else "")
                        + ")." + mod + f" Source: {ins.source}",
                        self.prov.pack(f"instruments.yaml `{ins.id}` ({regime})"),
                    )
                if sg.type == "derogation":
                    yield Blank("Art. 49 derogation: document why the transfer is occasional "
                                "and necessary, and (for Art. 49(1) second subparagraph) the "
                                "assessment and suitable safeguards (Art. 49(6), Art. 30).")
        if any(not t.lawful for t in transfers):
            yield Statement("⚠ At least one destination has **no** valid transfer tool on the "
                            "evaluation date; see the findings above.",
                            self.prov.engine(str(self.report.as_of)))

    # ------------------------------------------------------------------ step 3
    def step3(self, transfers: list[Transfer]) -> Iterable[Item]:
        pairs = sorted({(t.regime, c) for t in transfers for c in t.countries})
        for regime, country in pairs:
            rname = self.pack.regimes[regime].name
            if country == ANY_COUNTRY:
                yield Statement(f"{rname}: the destination is unknown, so its law cannot be "
                                "assessed.", self.prov.engine(str(self.report.as_of)))
                continue
            decisions = self.decisions_for(regime, country)
            current = [d for d in decisions if d.applies_on(self.report.as_of)]
            if not decisions:
                yield Statement(f"{rname}: no adequacy decision for {self.country(country)} in "
                                "the pack.", self.prov.pack("adequacy.yaml"))
            for d in current or decisions[-1:]:  # historic decisions only if nothing is current
                state = "in force" if d in current else f"not in force ({d.status}"\
                    + (f", ended {d.ended}" if d.ended else "") + ")"
                yield Statement(
                    f"{rname}: {d.instrument} — {state}; scope: "
                    f"{self.pack.scopes[d.scope].description}"
                    + (" **Elevated risk.**" if d.risk == "elevated" else "")
                    + (f" Note: {d.note}" if d.note else "")
                    + ("" if d.verified else " (pack marks this entry unverified)"),
                    self.prov.pack(f"adequacy.yaml `{d.id}`"),
                )
        countries = sorted({c for _, c in pairs if c != ANY_COUNTRY})
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
        targets = {f.target for f in flows}
        for sid in sorted(targets):
            s = self.graph.systems[sid]
            if s.tags:
                yield Table(("Tag", "Value"), tuple((k, v) for k, v in s.tags),
                            f"tags collected on `{sid}`: {self.sys_src(s)}")
            else:
                yield Statement(f"No tags or labels are recorded for `{sid}` (no collected "
                                "evidence of encryption, key location or pseudonymisation).",
                                self.sys_src(s))
            if s.keys:
                yield Table(
                    ("Key", "Region", "Multi-Region replicas", "Origin", "Managed by"),
                    tuple((k.arn or k.key or "(service-owned)", k.region or "?",
                           ", ".join(k.replica_regions) or "none", k.origin or "?",
                           k.key_manager or "?") for k in s.keys),
                    f"encryption keys read by the scan (machine-verified): {self.sys_src(s)}")
                outside = sorted({r for k in s.keys for r in (k.region, *k.replica_regions)
                                  if r})
                if outside:
                    yield Statement(
                        f"The key material of `{sid}` is held in {', '.join(outside)}; whether "
                        "that keeps the data out of the importer's reach depends on who can "
                        "use the key there (EDPB Recommendations 01/2020, use case 1: "
                        "encryption protects only where the keys stay with the exporter or a "
                        "trusted party in the EEA or an adequate country).",
                        f"{self.sys_src(s)} keys; {EDPB}")
            if s.access_from:
                yield Statement(
                    f"`{sid}` is accessed from {', '.join(sorted(s.access_from))}: the importer "
                    "sees the data in the clear. The EDPB found no effective technical measure "
                    "for remote access to data in the clear in a problematic jurisdiction "
                    f"(use cases 6 and 7).", self.sys_src(s) + f" `access_from`; {EDPB}")
        if all(t.lawful and all(b.kind == "adequacy" for _, b in t.bases) for t in transfers):
            yield Statement("Every destination relies on adequacy: supplementary measures are "
                            "not required by step 4, but monitor the decision (step 6).",
                            self.prov.engine(str(self.report.as_of)))
        yield Blank("Technical measures in place (encryption in transit and at rest, who holds "
                    "the keys and where, pseudonymisation, split processing) and evidence.")
        yield Blank("Contractual measures (e.g. transparency obligations, challenge of access "
                    "requests, warrant canary) and organisational measures (policies, "
                    "data-access logs, staff training).")

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
        if "bcr" in types:
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
        dates: list[dt.date] = []
        recorded = [(f.id, sg.tia) for f in flows for sg in f.safeguards if sg.tia]
        for fid, tia in recorded:
            if tia is not None:
                items.append(Statement(f"Recorded TIA: {tia.ref}, dated {tia.date or 'unknown'}.",
                                       self.prov.map(f"flows[id={fid}].safeguards[].tia")))
        if not recorded:
            items.append(Statement(f"No TIA is recorded in the map; this draft is dated "
                                   f"{tia_date} (the evaluation date).",
                                   self.prov.map("flows[].safeguards[].tia")))
        for regime in sorted({t.regime for t in transfers}):
            days = self.pack.regimes[regime].tia_review_days
            due = tia_date + dt.timedelta(days=days)
            dates.append(due)
            items.append(Statement(
                f"{self.pack.regimes[regime].name}: re-assess within {days} days of {tia_date}, "
                f"i.e. by {due}.", self.prov.pack(f"regimes.yaml `{regime}.tia_review_days`")))
        seen: set[str] = set()
        for t in transfers:
            for _c, b in t.bases:
                if b.kind != "adequacy" or not b.reference or b.reference in seen:
                    continue
                seen.add(b.reference)
                d = self.pack.find_decision(b.reference)
                if d is None:
                    continue
                if d.next_review:
                    dates.append(d.next_review)
                    items.append(Statement(f"Next review of `{d.id}`: {d.next_review}.",
                                           self.prov.pack(f"adequacy.yaml `{d.id}.next_review`")))
                else:
                    years = self.pack.regimes[d.regime].adequacy_review_years
                    due = _next_anniversary(d.starts, years, self.report.as_of)
                    dates.append(due)
                    items.append(Statement(
                        f"`{d.id}` has no recorded next review; periodic review every {years} "
                        f"years from {d.starts} gives {due}.",
                        self.prov.pack(f"regimes.yaml `{d.regime}.adequacy_review_years`")))
        reevaluate = min(dates) if dates else None
        if reevaluate:
            items.append(Statement(f"**Re-evaluate by {reevaluate}** (earliest of the dates "
                                   "above), or earlier if the law, the importer or the "
                                   "transfer changes.", "computed from the dates above"))
        items.append(Blank("Who monitors developments, and the criteria for suspending or "
                           "ending the transfer if the safeguards stop being effective."))
        return items, reevaluate


def _basis_text(b: Basis) -> str:
    if b.kind == "none":
        return "**none — no valid basis**"
    text = b.kind + (f": {b.reference}" if b.reference else "")
    return text + (f" ({b.detail})" if b.detail and b.kind != "adequacy" else "")


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
