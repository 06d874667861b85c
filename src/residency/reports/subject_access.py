"""The Art. 15(1)(c) and 15(2) part of a subject-access reply, for a type of data subject.

It reasons on categories only: which processing activities concern that type of data subject
(the map's `processing[].data_subjects`), which data categories they hold, where flows carrying
them lead (recipients), which third countries the engine found and on which basis. No
personal data is read. Where the map gives the organisation's words for a recipient or a
safeguard (`transparency:`) they are used; otherwise the statement is marked for completion
(the means of obtaining a copy of a safeguard is never invented).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from residency.errors import InputError
from residency.model import (
    ANY_COUNTRY,
    Basis,
    DataMap,
    Disclosure,
    Party,
    ProcessingActivity,
    Report,
    Safeguard,
    Transfer,
)
from residency.policy.pack import PolicyPack
from residency.reports._common import COUNSEL, Provenance, md_cell
from residency.reports._reach import indices
from residency.reports.ropa import Reach, Scope, party_label, safeguard_of

SUBJECT_ACCESS_FORMATS = ("markdown", "html", "json")
TITLE = "Recipients, transfers and safeguards"


@dataclass(frozen=True, slots=True)
class Recipient:
    party: str
    text: str
    in_words_of_map: bool


@dataclass(frozen=True, slots=True)
class SafeguardAnswer:
    """One distinct basis (per regime) and how a copy can be obtained."""

    regime: str
    kind: str
    description: str
    countries: tuple[str, ...]
    copy: str
    source: str


@dataclass(frozen=True, slots=True)
class SubjectAccess:
    subject: str
    categories: tuple[str, ...]
    not_held: tuple[str, ...]
    activities: tuple[str, ...]
    recipient_categories: tuple[str, ...]
    recipients: tuple[Recipient, ...]
    third_countries: tuple[tuple[str, str], ...]
    safeguards: tuple[SafeguardAnswer, ...]
    gaps: tuple[str, ...]
    provenance: Provenance
    as_of: str


def build_subject_access(report: Report, pack: PolicyPack, datamap: DataMap,
                         parties: Mapping[str, Party], subject: str,
                         categories: tuple[str, ...] = ()) -> SubjectAccess:
    """Raises InputError (exit 2) for a subject type or category the map does not know."""
    where = datamap.source or "map"
    acts = _activities(datamap, subject, where)
    held: set[str] = set()
    scope = Scope(report)
    for a in acts:
        held |= a.data_categories or frozenset().union(
            *(scope.systems[s].data_categories for s in a.systems if s in scope.systems))
    asked = _check_categories(categories, report, datamap, where)
    wanted = frozenset(asked or held) & held
    gaps: list[str] = []
    reach: dict[str, None] = {}
    transfers: list[Transfer] = []
    # activities overlap (deep chains reach most of the map from every start): each
    # exporter's transfers once per set of regimes, in the order they are first reached
    collected: dict[frozenset[str], int] = {}
    seen = 0
    reaches, _ = scope.reach_all([(a.systems, wanted) for a in acts])
    for a, reached in zip(acts, reaches, strict=True):
        # bitsets over the map's systems: only what this activity adds is walked
        reach.update(dict.fromkeys(_new(scope, reached, seen)))
        seen |= reached.bits
        regimes = scope.regimes(a.systems, pack, parties)
        done = collected.get(regimes, 0)
        collected[regimes] = done | reached.bits
        transfers += scope.transfers(_new(scope, reached, done), wanted, regimes)
        if not a.systems:
            gaps.append(f"activity {a.id} lists no systems: its recipients and transfers "
                        "cannot be derived from the map")
    ours = {c.party for a in acts for c in (a.controller, a.processor, *a.joint_controllers)
            if c and c.party}
    starts = {s for a in acts for s in a.systems}
    recipients = _recipients(reach, starts, ours, scope, parties, datamap.disclosures)
    countries = sorted({c for t in transfers for c, _ in t.bases},
                       key=lambda c: pack.country_name(c) if c != ANY_COUNTRY else "~")
    if ANY_COUNTRY in countries:
        gaps.append("a destination's location is unresolved (RES-L001): the third country "
                    "cannot be named until it is fixed")
    flows = {f.id: f for f in report.flows}
    safeguards = _safeguards(transfers, flows, pack, datamap.disclosures, gaps)
    return SubjectAccess(
        subject, tuple(sorted(wanted)), tuple(sorted(frozenset(asked) - held)),
        tuple(a.id for a in acts), tuple(dict.fromkeys(r for a in acts for r in a.recipients)),
        recipients,
        tuple((c, pack.country_name(c) if c != ANY_COUNTRY else "unresolved location")
              for c in countries),
        safeguards, tuple(gaps), Provenance.of(report), report.as_of.isoformat())


def _new(scope: Scope, reached: Reach, known: int) -> list[str]:
    """The systems `reached` has and `known` lacks, in the reach's order."""
    fresh = reached.bits & ~known
    if not fresh:
        return []
    own = [v for v in reached.starts if fresh >> v & 1]
    ids = scope.ids
    return [ids[v] for v in (*own, *indices(fresh & ~reached.start_bits))]


def _activities(datamap: DataMap, subject: str, where: str) -> list[ProcessingActivity]:
    if not datamap.activities:
        raise InputError(where, "processing", "the map has no processing activities: "
                         "subject-access needs `processing:` entries with `data_subjects` "
                         "(see README, Art. 30 record)")
    acts = [a for a in datamap.activities if subject in a.data_subjects]
    if not acts:
        known = sorted({s for a in datamap.activities for s in a.data_subjects})
        close = difflib.get_close_matches(subject, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InputError(where, "processing[].data_subjects",
                         f"no processing activity concerns data subjects {subject!r}{hint} "
                         f"(the map names: {', '.join(known) or 'none'})")
    return acts


def _check_categories(categories: tuple[str, ...], report: Report, datamap: DataMap,
                      where: str) -> tuple[str, ...]:
    known = set(datamap.hr_data_categories)
    for s in report.systems:
        known |= s.data_categories
    for f in report.flows:
        known |= f.data_categories
    for a in datamap.activities:
        known |= a.data_categories
    for c in categories:
        if c not in known:
            close = difflib.get_close_matches(c, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InputError(where, "--categories", f"unknown data category {c!r}{hint}")
    return categories


def _recipients(reach: Mapping[str, None], starts: set[str], ours: set[str],
                scope: Scope, parties: Mapping[str, Party],
                disclosures: tuple[Disclosure, ...]) -> tuple[Recipient, ...]:
    words = {d.party: d.public_description for d in disclosures
             if d.party and d.public_description}
    out: dict[str, Recipient] = {}
    for sid in reach:
        s = scope.systems[sid]
        if sid in starts or s.party in ours or s.party in out:
            continue
        text = words.get(s.party)
        out[s.party] = Recipient(s.party, text or f"{party_label(parties, s.party)}, "
                                 f"{s.role.value}", text is not None)
    return tuple(out.values())


def _match(sg: Safeguard | None, basis: Basis, disclosures: tuple[Disclosure, ...]
           ) -> Disclosure | None:
    best: tuple[int, Disclosure] | None = None
    for d in disclosures:
        if d.party is not None:
            continue
        if sg is None:
            continue
        if (d.instrument and d.instrument != sg.instrument) or (d.type and d.type != sg.type) \
                or (d.ref and d.ref != sg.ref):
            continue
        score = sum(x is not None for x in (d.instrument, d.type, d.ref))
        if best is None or score > best[0]:
            best = (score, d)
    return best[1] if best else None


def _safeguards(transfers: list[Transfer], flows: Mapping[str, object], pack: PolicyPack,
                disclosures: tuple[Disclosure, ...], gaps: list[str]
                ) -> tuple[SafeguardAnswer, ...]:
    """One answer per distinct (regime, basis), its countries gathered: never one per
    country or per flow."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    info: dict[tuple[str, str, str], tuple[Basis, Safeguard | None]] = {}
    for t in transfers:
        for country, basis in t.bases:
            sg = safeguard_of(flows.get(t.flow), basis)  # type: ignore[arg-type]
            key = (t.regime, basis.kind, (sg.instrument or sg.type) if sg and basis.kind ==
                   "safeguard" else basis.reference or basis.detail or "")
            groups.setdefault(key, []).append(country)
            seen = info.get(key)
            # the answer quotes one of its bases: the first by reference, whatever order
            # the activities reached them in (an SCC answer covers every module)
            if seen is None or (basis.reference or "") < (seen[0].reference or ""):
                info[key] = (basis, sg)
    out = []
    for key, countries in groups.items():
        basis, sg = info[key]
        names = tuple(sorted({pack.country_name(c) if c != ANY_COUNTRY else "unresolved"
                              for c in countries}))
        out.append(_answer(key[0], basis, sg, names, pack, disclosures, gaps))
    return tuple(sorted(out, key=lambda a: (a.regime, a.kind, a.description)))


def _answer(regime: str, basis: Basis, sg: Safeguard | None, names: tuple[str, ...],
            pack: PolicyPack, disclosures: tuple[Disclosure, ...], gaps: list[str]
            ) -> SafeguardAnswer:
    law = pack.regimes[regime].name if regime in pack.regimes else regime
    if basis.kind == "adequacy":
        d = pack.find_decision(basis.reference or "")
        desc = f"adequacy decision: {d.instrument if d else basis.reference}"
        return SafeguardAnswer(law, basis.kind, desc, names, "published: " + (basis.source or ""),
                               basis.source or "")
    if basis.kind == "none":
        gaps.append(f"no legal basis for transfers to {', '.join(names)} under {law}: the "
                    "transfer must be fixed (RES-T001) before this answer is sent")
        return SafeguardAnswer(law, basis.kind, "NO BASIS (to be fixed before replying)",
                               names, COUNSEL, "")
    found = _match(sg, basis, disclosures)
    if found and found.public_description:
        desc = found.public_description
    elif basis.kind == "derogation" and sg and sg.article:
        desc = f"derogation: {_ground_name(pack, regime, sg.article)} (Art. {sg.article})"
    else:
        desc = basis.detail or basis.reference or basis.kind
    if basis.kind == "derogation":
        copy = found.copy_available_from if found and found.copy_available_from else \
            "not applicable (a derogation is not a safeguard of Art. 46)"
    elif found and found.copy_available_from:
        copy = found.copy_available_from
    else:
        copy = COUNSEL
        gaps.append(f"how to obtain a copy of {basis.reference} ({law}): give "
                    "`transparency.safeguards[].copy_available_from` in the map")
    return SafeguardAnswer(law, basis.kind, desc, names, copy, basis.source or "")


def _ground_name(pack: PolicyPack, regime: str, article: str) -> str:
    key = article.replace(" ", "").casefold()
    for inst in pack.instruments_of("derogation", regime):
        for g in inst.grounds:
            if g.key() == key:
                return g.name
    return "ground not in the policy pack"


# ---------------------------------------------------------------------- rendering
def render_subject_access(answer: SubjectAccess, fmt: str) -> str:
    if fmt == "json":
        return _json(answer)
    if fmt == "markdown":
        return _markdown(answer)
    if fmt == "html":
        return _html(answer)
    raise ValueError(f"unknown subject-access format {fmt!r}")


def _json(a: SubjectAccess) -> str:
    doc = {
        "residency_subject_access": 1,
        "as_of": a.as_of,
        "subject": a.subject,
        "categories": list(a.categories),
        "categories_not_held": list(a.not_held),
        "activities": list(a.activities),
        "recipient_categories": list(a.recipient_categories),
        "recipients": [{"party": r.party, "text": r.text, "organisation_wording":
                        r.in_words_of_map} for r in a.recipients],
        "third_countries": [{"code": c, "name": n} for c, n in a.third_countries],
        "safeguards": [{"law": s.regime, "kind": s.kind, "description": s.description,
                        "countries": list(s.countries), "copy": s.copy, "source": s.source}
                       for s in a.safeguards],
        "gaps": list(a.gaps),
        "provenance": a.provenance.lines(),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _lines(a: SubjectAccess) -> list[tuple[str, list[str]]]:
    """The answer's sections as (heading, paragraphs), shared by Markdown and HTML."""
    held = ", ".join(a.categories) or "none of the categories asked for"
    sections = [("Personal data concerned", [
        f"About {a.subject}, the categories considered are: {held}."
        + (f" We hold no {', '.join(a.not_held)} about {a.subject}." if a.not_held else "")])]
    rec = [f"{r.text}" for r in a.recipients]
    if a.recipient_categories:
        rec = [f"Categories of recipient: {', '.join(a.recipient_categories)}.", *rec]
    sections.append(("Recipients (Art. 15(1)(c))", rec or ["No recipient outside the "
                                                             "organisation."]))
    sections.append(("Third countries", [", ".join(n for _, n in a.third_countries)
                                         or "None: the data are not transferred outside "
                                         "the regimes' free-flow areas."]))
    sections.append(("Safeguards and how to obtain a copy (Art. 15(2))", [
        f"{s.regime}: {s.description}, for {', '.join(s.countries)}. Copy: {s.copy}"
        for s in a.safeguards] or ["No transfer, so no safeguard."]))
    return sections


def _markdown(a: SubjectAccess) -> str:
    out = [f"# {TITLE}: {md_cell(a.subject)}", "", f"Draft generated by residency as of "
           f"{a.as_of} from the data map's categories; no personal data was read.", ""]
    for head, paras in _lines(a):
        out += [f"## {head}", "", *(f"- {md_cell(p)}" for p in paras), ""]
    if a.gaps:
        out += ["## To complete before sending", "", *(f"- {md_cell(g)}" for g in a.gaps), ""]
    out += ["---", "", *(f"- {p}" for p in a.provenance.lines()), ""]
    return "\n".join(out)


def _html(a: SubjectAccess) -> str:
    from markupsafe import escape as e

    body = [f"<h1>{e(TITLE)}: {e(a.subject)}</h1>", f"<p>Draft generated by residency as of "
            f"{e(a.as_of)} from the data map's categories; no personal data was read.</p>"]
    for head, paras in _lines(a):
        body += [f"<h2>{e(head)}</h2>", "<ul>", *(f"<li>{e(p)}</li>" for p in paras), "</ul>"]
    if a.gaps:
        body += ["<h2>To complete before sending</h2>", "<ul>",
                 *(f"<li>{e(g)}</li>" for g in a.gaps), "</ul>"]
    body += ["<hr>", "<ul>", *(f"<li>{e(p)}</li>" for p in a.provenance.lines()), "</ul>"]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>residency: {e(TITLE)} — {e(a.subject)}</title>\n<style>body{{font:15px/1.5 "
            "system-ui,sans-serif;margin:2rem;max-width:50rem}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")
