"""The register and every transfer as W3C Data Privacy Vocabulary (DPV 2.x) JSON-LD.

Which DPV concept stands for which instrument, ground or decision is data
(`policies/dpv.yaml`, each concept checked against the DPV 2.3 release); this module only
assembles nodes. One node per transfer × destination (as the Art. 30 register has rows),
streamed, so a 100,000-flow map is written without building the whole graph in memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import quote

import orjson
from pydantic import BaseModel, ConfigDict

from residency._io import read_document, validate
from residency.errors import PolicyError
from residency.model import (
    ANY_COUNTRY,
    Basis,
    DataMap,
    Flow,
    Party,
    ProcessingActivity,
    Report,
    Transfer,
)
from residency.policy.pack import PolicyPack
from residency.reports._reach import Condensed, condense
from residency.reports.ropa import Scope, activities_of, safeguard_of

DPV_FILE = "dpv.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _RegimeMap(_Strict):
    law: str | None
    jurisdiction: str
    adequacy: str


class _InstrumentMap(_Strict):
    regime: str
    id: str
    basis: str | None
    measure: str | None


class _GroundMap(_Strict):
    regime: str
    article: str
    basis: str


class _Source(_Strict):
    title: str
    url: str


class DpvFile(_Strict):
    """`policies/dpv.yaml`: the pack's bases as DPV concepts (see the file's header)."""

    version: str
    retrieved: Any
    verified: bool
    sources: list[_Source]
    namespaces: dict[str, str]
    concepts: dict[str, str]
    regimes: dict[str, _RegimeMap]
    instruments: list[_InstrumentMap]
    grounds: list[_GroundMap]
    decisions: dict[str, str]
    data_subjects: dict[str, str]


@dataclass(frozen=True, slots=True)
class DpvMap:
    doc: DpvFile
    instruments: Mapping[tuple[str, str], _InstrumentMap]
    grounds: Mapping[tuple[str, str], str]

    def basis_concepts(self, regime: str, basis: Basis, instrument: str | None,
                       article: str | None, decision: str | None) -> list[str]:
        """The DPV legal-basis concepts of one basis (empty for no basis)."""
        if basis.kind == "adequacy":
            out = [self.doc.regimes[regime].adequacy]
            if decision and decision in self.doc.decisions:
                out.append(self.doc.decisions[decision])
            return out
        if basis.kind == "derogation" and article:
            hit = self.grounds.get((regime, _article_key(article)))
            return [hit] if hit else ["dpv:DataTransferLegalBasis"]
        if basis.kind == "safeguard":
            inst = self.instruments.get((regime, instrument or ""))
            return [inst.basis] if inst and inst.basis else ["dpv:DataTransferLegalBasis"]
        return []


def _article_key(article: str) -> str:
    return article.replace(" ", "").casefold()


def load_dpv_map(pack: PolicyPack) -> DpvMap:
    """Read and check `dpv.yaml` next to the pack: every concept it uses is listed."""
    path = pack.root / DPV_FILE
    doc = validate(DpvFile, read_document(path, PolicyError), path, PolicyError)
    used = [r.adequacy for r in doc.regimes.values()] + [r.law for r in doc.regimes.values()
                                                         if r.law]
    used += [x for i in doc.instruments for x in (i.basis, i.measure) if x]
    used += [g.basis for g in doc.grounds] + list(doc.decisions.values())
    used += list(doc.data_subjects.values())
    for c in used:
        if c not in doc.concepts:
            raise PolicyError(str(path), "concepts", f"{c!r} is used but not listed (and "
                              "checked against DPV) under `concepts:`")
    return DpvMap(doc, {(i.regime, i.id): i for i in doc.instruments},
                  {(g.regime, _article_key(g.article)): g.basis for g in doc.grounds})


# ---------------------------------------------------------------------- nodes
def _json(node: Any) -> str:
    """A node's JSON (compact, UTF-8 as it is: `ensure_ascii=False`)."""
    return orjson.dumps(node).decode()


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")  # what `quote` leaves as it is


def _quoted(ident: str) -> str:
    return ident if _UNRESERVED.fullmatch(ident) else quote(ident, safe="")


def _iri(kind: str, ident: str) -> str:
    return f"urn:residency:{kind}:{_quoted(ident)}"


def _transfer_iri(t: Transfer, country: str) -> str:
    """`_iri("transfer", "flow/regime/country")`, each part quoted on its own (the same)."""
    return (f"urn:residency:transfer:{_quoted(t.flow)}%2F{_quoted(t.regime)}"
            f"%2F{_quoted(country)}")


def _ref(curie: str) -> dict[str, str]:
    return {"@id": curie}


def _country(pack: PolicyPack, code: str) -> dict[str, Any]:
    if code == ANY_COUNTRY:
        return {"@id": _iri("location", "unresolved"), "dct:description":
                "location unresolved (RES-L001): may be any country"}
    if len(code) == 2:
        return _ref(f"loc:{code}")
    return {"@id": _iri("international-organisation", code),
            "@type": "dpv:InternationalOrganisation", "dpv:hasName": pack.country_name(code)}


def _categories(pack: PolicyPack, names: Any) -> list[dict[str, str]]:
    vocab = pack.vocabulary.data_categories
    out = []
    for n in sorted(names):
        entry = vocab.get(n)
        out.append(_ref(entry.dpv) if entry and entry.dpv else
                   {"@id": _iri("category", n), "rdfs:label": n})
    return out


def _party(p: Party) -> dict[str, Any]:
    node: dict[str, Any] = {"@id": _iri("party", p.id), "@type": "dpv:LegalEntity",
                            "dpv:hasName": p.name, "dpv:hasIdentifier": p.id}
    if p.country and len(p.country) == 2 and p.country != "ZZ":
        node["dpv:hasCountry"] = _ref(f"loc:{p.country}")
    return node


def _transfer_nodes(t: Transfer, flow: Flow | None, pack: PolicyPack,
                    m: DpvMap) -> Iterator[dict[str, Any]]:
    reg = m.doc.regimes.get(t.regime)
    for country, basis in t.bases:
        sg = safeguard_of(flow, basis)
        node: dict[str, Any] = {
            "@id": _transfer_iri(t, country),
            "@type": "dpv:PersonalDataHandling",
            "dct:identifier": t.flow,
            "dpv:hasProcessing": _ref("dpv:Transfer"),
            "dpv:hasDataExporter": _ref(_iri("party", t.exporter_party)),
            "dpv:hasDataImporter": _ref(_iri("party", t.importer_party)),
            "dpv:hasPersonalData": _categories(pack, t.data_categories),
            "dpv:hasLawfulness": _ref("dpv:Lawful" if basis.kind != "none"
                                      else "dpv:Unlawful"),
        }
        dest = _country(pack, country)
        node["dpv:hasThirdCountry" if dest.get("@id", "").startswith("loc:")
             else "dpv:hasLocation"] = dest
        concepts = m.basis_concepts(t.regime, basis, sg.instrument if sg else None,
                                    sg.article if sg else None, basis.reference)
        if concepts:
            node["dpv:hasLegalBasis"] = [_ref(c) for c in concepts]
        if reg is not None:
            node["dpv:hasJurisdiction"] = _ref(f"loc:{reg.jurisdiction}")
            if reg.law:
                node["dpv:hasApplicableLaw"] = _ref(reg.law)
        inst = m.instruments.get((t.regime, sg.instrument or "")) if sg else None
        if inst and inst.measure:
            node["dpv:hasTechnicalOrganisationalMeasure"] = {
                "@type": inst.measure, "dct:description": sg.label() if sg else ""}
        tia = sg.tia if sg else None
        if tia is not None:
            node["dpv:hasImpactAssessment"] = {
                "@type": "dpv:DataTransferImpactAssessment", "dct:identifier": tia.ref,
                **({"dct:date": tia.date.isoformat()} if tia.date else {})}
        if flow is not None and flow.purpose:
            node["dpv:hasPurpose"] = {"@type": "dpv:Purpose", "dct:description": flow.purpose}
        if basis.source:
            node["dct:source"] = basis.source
        yield node


def _activity_node(a: ProcessingActivity, pack: PolicyPack, m: DpvMap) -> dict[str, Any]:
    """The activity's own node; its handling nodes (`_Handling`) are added by `write_dpv`."""
    node: dict[str, Any] = {"@id": _iri("activity", a.id), "@type": "dpv:PersonalDataHandling",
                            "dct:title": a.name}
    if a.purposes:
        node["dpv:hasPurpose"] = [{"@type": "dpv:Purpose", "dct:description": p}
                                  for p in a.purposes]
    if a.data_subjects:
        node["dpv:hasDataSubject"] = [
            _ref(m.doc.data_subjects[s]) if s in m.doc.data_subjects
            else {"@type": "dpv:DataSubject", "rdfs:label": s} for s in a.data_subjects]
    if a.data_categories:
        node["dpv:hasPersonalData"] = _categories(pack, a.data_categories)
    role_prop = {"controller": "dpv:hasDataController", "processor": "dpv:hasDataProcessor"}
    for key, c in (("controller", a.controller), ("processor", a.processor)):
        if c is not None and c.party:
            node[role_prop[key]] = _ref(_iri("party", c.party))
    if a.controllers:
        node["dpv:hasDataController"] = [_ref(_iri("party", c.party)) if c.party
                                         else {"dpv:hasName": c.name} for c in a.controllers]
    for prop, c in (("dpv:hasRepresentative", a.representative),
                    ("dpv:hasDataProtectionOfficer", a.dpo)):
        if c is not None:
            node[prop] = {"dpv:hasName": c.name or c.party or "",
                          **({"dpv:hasContact": c.contact} if c.contact else {})}
    if a.recipients:
        node["dpv:hasRecipient"] = [{"@type": "dpv:Recipient", "dct:description": r}
                                    for r in a.recipients]
    if a.retention:
        node["dpv:hasStorageCondition"] = {"@type": "dpv:StorageDuration",
                                           "dct:description": a.retention}
    if a.security_measures:
        node["dpv:hasTechnicalOrganisationalMeasure"] = [
            {"@type": "dpv:TechnicalOrganisationalMeasure", "dct:description": s}
            for s in a.security_measures]
    return node


class _Downstream:
    """For activities of one set of regimes and categories, one `dpv:PersonalDataHandling`
    node per strongly connected component of the flow graph (as the categories filter it)
    that leads to any transfer: it links to its systems' transfers under those regimes and
    to the nodes of the components its data go to next (DPV's nested processes, example
    E0006). An activity links to the nodes of its own systems, and reaches through them
    exactly the transfers its Art. 30 record lists: the file grows with the graph, not with
    activities × systems reached, which on an estate where every activity reaches most of
    it is quadratic."""

    def __init__(self, scope: Scope, regimes: frozenset[str], categories: frozenset[str],
                 parts: dict[tuple[str, frozenset[str]], dict[str, str]],
                 graphs: dict[frozenset[str], Condensed]) -> None:
        links: dict[str, list[str]] = {}
        for g in sorted(regimes):
            piece = parts.get((g, categories))
            if piece is None:
                # an IRI is quoted ASCII without quotes or backslashes: JSON as it is
                piece = parts[(g, categories)] = {
                    sid: ",".join(f'{{"@id":"{_transfer_iri(t, c)}"}}'
                                  for t in ts for c, _ in t.bases)
                    for sid, ts in scope.under(g, categories)}
            for sid, text in piece.items():
                if text:
                    links.setdefault(sid, []).append(text)
        graph = graphs.get(categories)
        if graph is None:
            graph = graphs[categories] = condense(scope.successors(categories))
        self.comps, self.csucc, self.comp_of = graph
        self.scope, self.links = scope, links
        self.suffix = "+".join(sorted(regimes)) + ("/" + "+".join(sorted(categories))
                                                   if categories else "")
        ids = scope.ids
        live = [False] * len(self.comps)
        for c, members in enumerate(self.comps):  # sinks first: successors are decided
            live[c] = (any(ids[v] in links for v in members)
                       or any(live[d] for d in self.csucc[c]))
        self.live = live
        self.written = [False] * len(self.comps)

    def ref(self, c: int) -> str:
        sid = self.scope.ids[min(self.comps[c])]
        return f'{{"@id":"{_iri("handling", f"{sid}/{self.suffix}")}"}}'

    def heads(self, starts: Sequence[int]) -> list[int]:
        """The live components of an activity's own systems, in its order."""
        return [c for c in dict.fromkeys(self.comp_of[v] for v in starts) if self.live[c]]

    def nodes(self, heads: Sequence[int]) -> Iterator[str]:
        """The nodes these components lead to, each once per run (not yet written ones)."""
        stack = [c for c in reversed(heads) if not self.written[c]]
        ids = self.scope.ids
        while stack:
            c = stack.pop()
            if self.written[c]:
                continue
            self.written[c] = True
            members = sorted(self.comps[c])
            sid = ids[members[0]]
            next_ = sorted((d for d in self.csucc[c] if self.live[d]),
                           key=lambda d: min(self.comps[d]))
            more = len(members) - 1
            node = _json({
                "@id": _iri("handling", f"{sid}/{self.suffix}"),
                "@type": "dpv:PersonalDataHandling",
                "dct:description": f"transfers of the data at {sid}"
                + (f" and {more} system(s) in a cycle with it" if more else "")
                + f" ({self.suffix}), and the handling where the data go next"})
            out = [x for v in members for x in self.links.get(ids[v], ())]
            out += [self.ref(d) for d in next_]
            yield node[:-1] + ',"dpv:hasPersonalDataHandling":[' + ",".join(out) + "]}"
            stack.extend(d for d in reversed(next_) if not self.written[d])


def context(m: DpvMap) -> dict[str, str]:
    return {**m.doc.namespaces, "dct": "http://purl.org/dc/terms/",
            "rdfs": "http://www.w3.org/2000/01/rdf-schema#"}


def write_dpv(report: Report, pack: PolicyPack, datamap: DataMap,
              parties: Mapping[str, Party], m: DpvMap, fh: IO[str]) -> None:
    """Stream the JSON-LD document: parties, processing activities, then transfers."""
    fh.write('{\n  "@context": ' + json.dumps(context(m)) + ',\n  "@graph": [\n')
    first = True

    def emit(node: dict[str, Any] | str) -> None:
        nonlocal first
        text = node if isinstance(node, str) else _json(node)
        fh.write("    " if first else ",\n    ")
        fh.write(text)  # not joined first: an activity's node can be megabytes
        first = False

    used = {t.exporter_party for t in report.transfers} | {t.importer_party
                                                          for t in report.transfers}
    for pid in sorted(set(parties) | used):
        if pid in parties:
            emit(_party(parties[pid]))
    scope = Scope(report)
    parts: dict[tuple[str, frozenset[str]], dict[str, str]] = {}
    graphs: dict[frozenset[str], Condensed] = {}
    tables: dict[tuple[frozenset[str], frozenset[str]], _Downstream] = {}
    for a, _derived in activities_of(datamap, report, parties):
        key = (scope.regimes(a.systems, pack, parties), a.data_categories)
        table = tables.get(key)
        if table is None:
            table = tables[key] = _Downstream(scope, *key, parts, graphs)
        heads = table.heads([scope.index[s] for s in a.systems if s in scope.index])
        text = _json(_activity_node(a, pack, m))
        if heads:
            text = (text[:-1] + ',"dpv:hasPersonalDataHandling":['
                    + ",".join(table.ref(c) for c in heads) + "]}")
        emit(text)
        for handling in table.nodes(heads):
            emit(handling)
    flows = {f.id: f for f in report.flows}
    for t in report.transfers:
        if not t.same_entity:
            for node in _transfer_nodes(t, flows.get(t.flow), pack, m):
                emit(node)
    fh.write("\n  ]\n}\n")
