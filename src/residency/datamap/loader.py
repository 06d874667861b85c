"""Build a `DataMap` from a YAML/JSON document, checking every reference.

Structural errors come from the pydantic schema; reference errors (unknown party,
country, system, regime) are checked here. Both name the file and the key (exit 2).
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from sys import intern
from typing import Any, NamedTuple

from pydantic import TypeAdapter

from residency._io import (
    MAX_DATE,
    MIN_DATE,
    parse_document,
    paused_gc,
    read_bytes,
    validate,
    validate_many,
)
from residency.errors import InputError
from residency.model import (
    ANY_COUNTRY,
    Classification,
    ClassificationValue,
    DataMap,
    Flow,
    Location,
    Party,
    ResidencyRule,
    Role,
    Safeguard,
    System,
    Tia,
)
from residency.policy.pack import PolicyPack
from residency.policy.schema import SAFEGUARD_TYPES

from .activities import build_activities
from .schema import AccessIn, DataMapIn, FlowIn, LocationIn, SafeguardIn

RESIDENCY_KEYWORDS = frozenset({"ADEQUATE"})


_FLOWS = TypeAdapter(list[FlowIn])
_CHUNK = 20_000


def load_map(path: Path, pack: PolicyPack) -> DataMap:
    """Read and validate the map at `path` (its digest is of the bytes that were parsed)."""
    with paused_gc():
        data = read_bytes(path)
        digest = hashlib.sha256(data).hexdigest()[:16]
        return _parse(parse_document(data, path), pack, path, digest, owned=True)


def parse_map(raw: Any, pack: PolicyPack, path: Path, digest: str | None = None) -> DataMap:
    """Validate a parsed document (left as it was: the caller's data is not consumed)."""
    return _parse(raw, pack, path, digest, owned=False)


def _parse(raw: Any, pack: PolicyPack, path: Path, digest: str | None, *, owned: bool) -> DataMap:
    """Flows are validated and converted in chunks; when we own the parsed document the raw
    records are released as we go, so a million-flow map never exists twice in memory."""
    if not isinstance(raw, dict):
        raise InputError(str(path), None, "a data map must be a mapping with a `version` key")
    if not owned:
        raw = dict(raw)
    raw_flows = raw.pop("flows", None)
    if raw_flows is None:
        raw_flows = []
    if not isinstance(raw_flows, list):
        raise InputError(str(path), "flows", "must be a list of flows")
    if not owned:
        raw_flows = list(raw_flows)  # we blank our copy as we go, never the caller's list
    doc: DataMapIn = validate(DataMapIn, raw, path)
    builder = _Builder(pack, path)
    head = builder.build(doc, digest)
    flows: list[Flow] = []
    # each system's id as one string object: the flows' ends become that object, not
    # copies parsed from the file, so every later lookup by them is an identity hit
    # (a million-flow map had two million such copies)
    ids = {s.id: s.id for s in head.systems}
    seen: set[str] = set()
    for start in range(0, len(raw_flows), _CHUNK):
        chunk = raw_flows[start : start + _CHUNK]
        raw_flows[start : start + _CHUNK] = [None] * len(chunk)
        fast = [_fast_flow(d) for d in chunk]
        models: Sequence[_FastFlow | FlowIn]
        if all(f is not None for f in fast):
            models = [f for f in fast if f is not None]
        else:  # the schema is the authority: it accepts more spellings and names the key
            models = validate_many(_FLOWS, chunk, start, ("flows",), path)
        del chunk
        for offset, f in enumerate(models):
            flows.append(builder.flow(f, start + offset, ids, seen))
    _check_hr_categories(head, flows, builder)
    for extra in builder.extra_flows:  # remote access by other parties, as flows
        if extra.id in seen:
            raise builder.fail("flows", f"flow id {extra.id!r} is also a remote-access flow")
        flows.append(extra)
    return replace(head, flows=tuple(flows))


def _check_hr_categories(head: DataMap, flows: list[Flow], builder: _Builder) -> None:
    """A misspelt HR category would silently drop the HR conditions of adequacy scopes:
    every one listed must be held, classified or sent somewhere in the map."""
    if not head.hr_data_categories:
        return
    used: set[str] = set()
    for s in head.systems:
        used |= s.data_categories
    for _, value in head.classification.values:
        used |= value.data_categories
    for cat in sorted(head.hr_data_categories - used):
        if not any(cat in f.data_categories for f in flows):
            raise builder.fail("hr_data_categories", f"category {cat!r} is not used by any "
                               f"system, flow or classification value")


_FLOW_KEYS = frozenset({"id", "from", "to", "data_categories", "recurring", "safeguards",
                        "purpose"})
_SG_KEYS = frozenset(SafeguardIn.model_fields)
_NONE: frozenset[str] = frozenset()
"""The one empty set the loader hands out: CPython has no empty-frozenset singleton, and
a million safeguards or systems each holding their own empty set cost 200 bytes apiece."""
_NOT_A_DATE = object()


_DAYS: dict[str, dt.date] = {}
"""Each valid date string read, as one date object (at most 110,000 days in 1900-2199):
a million safeguards share a few thousand dates."""


def _iso_date(value: object) -> Any:
    """A `YYYY-MM-DD` string as a date, None for None, _NOT_A_DATE for anything else."""
    if value is None:
        return None
    if type(value) is str:
        day = _DAYS.get(value)
        if day is not None:
            return day
        if len(value) == 10 and value[4] == "-" and value[7] == "-":
            try:
                day = dt.date.fromisoformat(value)
            except ValueError:
                return _NOT_A_DATE
            if MIN_DATE <= day <= MAX_DATE:
                _DAYS[value] = day
                return day
    return _NOT_A_DATE


def _text(value: object) -> bool:
    return value is None or type(value) is str


def _fast_safeguard(d: object) -> Safeguard | None:
    if type(d) is not dict or not d.keys() <= _SG_KEYS:
        return None
    get = d.get
    kind, module, raw_tia = get("type"), get("module"), get("tia")
    signed, expires, approved = _iso_date(get("signed")), _iso_date(get("expires")), _iso_date(
        get("approved"))
    if (type(kind) is not str or (module is not None and type(module) is not int)
            or signed is _NOT_A_DATE or expires is _NOT_A_DATE or approved is _NOT_A_DATE
            or not (_text(get("instrument")) and _text(get("article")) and _text(get("ref"))
                    and _text(get("approved_by")))):
        return None
    tia = None
    if raw_tia is not None:
        if type(raw_tia) is not dict or not raw_tia.keys() <= {"ref", "date"}:
            return None
        ref, tia_date = raw_tia.get("ref"), _iso_date(raw_tia.get("date"))
        if type(ref) is not str or tia_date is _NOT_A_DATE:
            return None
        tia = Tia(ref, tia_date)
    conditions, combines = get("conditions", ()), get("combines_eu_data", False)
    if (type(combines) is not bool or type(conditions) not in (list, tuple)
            or not all(type(c) is str for c in conditions)):
        return None
    return Safeguard(intern(kind), get("instrument"), module, signed, expires, get("article"),
                     get("ref"), get("approved_by"), approved, tia,
                     frozenset(conditions) if conditions else _NONE,
                     combines)


class _FastFlow(NamedTuple):
    id: str
    source: str
    target: str
    data_categories: list[str]
    recurring: bool
    safeguards: tuple[Safeguard, ...]
    purpose: str | None


def _fast_flow(d: object) -> _FastFlow | None:
    """The common, plainly-typed flow record without building a pydantic model (a big map
    has a million of them). Anything unusual returns None and the chunk goes through the
    schema, so this only ever accepts a subset of what the schema accepts."""
    if type(d) is not dict or not d.keys() <= _FLOW_KEYS:
        return None
    fid, source, target = d.get("id"), d.get("from"), d.get("to")
    if type(fid) is not str or not fid or type(source) is not str or type(target) is not str:
        return None
    cats = d.get("data_categories", [])
    if type(cats) is not list:
        return None
    for c in cats:
        if type(c) is not str:
            return None
    recurring = d.get("recurring", True)
    purpose = d.get("purpose")
    if type(recurring) is not bool or (purpose is not None and type(purpose) is not str):
        return None
    raw_sgs = d.get("safeguards", [])
    if type(raw_sgs) is not list:
        return None
    sgs = []
    for raw in raw_sgs:
        sg = _fast_safeguard(raw)
        if sg is None:
            return None
        sgs.append(sg)
    return _FastFlow(fid, source, target, cats, recurring, tuple(sgs), purpose)


class _Builder:
    def __init__(self, pack: PolicyPack, path: Path) -> None:
        self.pack = pack
        self.path = str(path)
        self.places = pack.known_places
        self._cat_cache: dict[tuple[str, ...], frozenset[str]] = {}
        self._sg_ok: set[tuple[str, str | None]] = set()
        self._sets: dict[frozenset[str], frozenset[str]] = {_NONE: _NONE}
        self.extra_flows: list[Flow] = []
        self.categories: frozenset[str] = pack.known_categories
        self.qualifications: frozenset[str] = pack.known_qualifications
        self.today = dt.date.today()  # a TIA dated after it is a typo, not an old TIA

    def fail(self, key: str, problem: str) -> InputError:
        return InputError(self.path, key, problem)

    def accessor(self, system: System, a: AccessIn, parties: dict[str, Party],
                 systems: dict[str, System], key: str) -> None:
        """Remote access by another party: a system standing for that party's reach into
        `system` from its country, and the flow that carries the data there."""
        if a.party not in parties:
            provider_party = self.pack.provider_party(a.party)
            if provider_party is None:
                raise self.fail(f"{key}.party", f"unknown party {a.party!r}")
            parties[a.party] = provider_party
        country = self.country(a.country, f"{key}.country")
        ident = f"{system.id}@{a.party}/{country}"
        if ident in systems:
            raise self.fail(key, "duplicate accessor (same party and country)")
        sgs = tuple(_safeguard(sg) for sg in a.safeguards)
        for j, sg in enumerate(sgs):
            self.check_safeguard(sg, f"{key}.safeguards[{j}]")
        systems[ident] = System(
            id=ident, party=a.party, role=Role(a.role),
            location=Location(countries=frozenset({country})),
            name=f"{parties[a.party].name} reading {system.name or system.id} from {country}",
            source_file=self.path,
        )
        self.extra_flows.append(Flow(
            id=f"access:{system.id}->{ident}", source=system.id, target=ident,
            recurring=a.recurring, safeguards=sgs, kind="remote_access",
        ))

    # ------------------------------------------------------------------ vocabulary
    def vocabulary(self, doc: DataMapIn) -> None:
        """One vocabulary: the pack's names plus those the map declares. A name used
        anywhere else must be in it, so a typo fails the load instead of matching nothing."""
        declared = list(doc.data_categories)
        for i, name in enumerate(declared):
            if name in self.pack.known_categories:
                continue
            close = _close(name, self.pack.known_categories)
            if close and close != name:
                raise self.fail(f"data_categories[{i}]", f"{name!r} is declared but the pack "
                                f"already knows {close!r}: did you mean {close!r}? (declare "
                                "a new name only if it is a different category)")
        self.categories = self.pack.known_categories | frozenset(declared)
        self.qualifications = self.pack.known_qualifications | frozenset(doc.qualifications)

    def special(self, doc: DataMapIn) -> tuple[tuple[str, str], ...]:
        """Art. 9/10 categories: the pack's vocabulary, then the map's own declarations."""
        out = {name: e.special for name, e in self.pack.vocabulary.data_categories.items()
               if e.special}
        if isinstance(doc.data_categories, dict):
            for name, decl in doc.data_categories.items():
                if decl is not None and decl.special:
                    out[name] = decl.special
        return tuple(sorted(out.items()))

    def share(self, value: frozenset[str]) -> frozenset[str]:
        """One object per distinct set of names (systems repeat a few sets many times)."""
        return self._sets.setdefault(value, value)

    def categories_of(self, names: Iterable[str], key: str) -> frozenset[str]:
        out = self.share(frozenset(names))
        for name in out - self.categories:
            raise self.fail(key, _unknown("data category", name, self.categories,
                                          "declare it under the map's `data_categories:`"))
        return out

    def qualifications_of(self, names: Iterable[str], key: str) -> frozenset[str]:
        out = frozenset(names)
        for name in out - self.qualifications:
            raise self.fail(key, _unknown("qualification", name, self.qualifications,
                                          "declare it under the map's `qualifications:`"))
        return out

    def check_safeguard(self, sg: Safeguard, key: str) -> None:
        """Input errors do not depend on whether the flow turns out to be a transfer."""
        if sg.tia is not None and sg.tia.date is not None and sg.tia.date > self.today:
            raise self.fail(f"{key}.tia.date", f"{sg.tia.date} is in the future (today is "
                            f"{self.today}): record the date the assessment was completed")
        for name in sorted(sg.conditions - self.pack.derogation_conditions):
            known = self.pack.derogation_conditions
            raise self.fail(f"{key}.conditions", _unknown(
                "derogation condition", name, known,
                f"the pack's grounds use {', '.join(sorted(known)) or 'none'}"))
        if (sg.type, sg.instrument) in self._sg_ok:
            return
        if sg.type not in SAFEGUARD_TYPES:
            raise self.fail(f"{key}.type", _unknown("safeguard type", sg.type, SAFEGUARD_TYPES))
        if sg.instrument is not None and not self.pack.find_instrument(sg.instrument):
            ids = {i.id for i in self.pack.instruments}
            raise self.fail(f"{key}.instrument",
                            _unknown("instrument", sg.instrument, ids,
                                     "`residency policies list` shows the pack's ids"))
        self._sg_ok.add((sg.type, sg.instrument))

    def country(self, code: str, key: str) -> str:
        if code not in self.places:
            raise self.fail(key, f"unknown country code {code!r} (ISO 3166-1 alpha-2 expected)")
        return code

    def build(self, doc: DataMapIn, digest: str | None) -> DataMap:
        self.vocabulary(doc)
        parties: dict[str, Party] = {}
        for i, p in enumerate(doc.parties):
            key = f"parties[{i}](id={p.id})"
            if p.id in parties:
                raise self.fail(key, "duplicate party id")
            parties[p.id] = Party(
                p.id,
                p.name,
                self.country(p.country, f"{key}.country"),
                self.qualifications_of(p.certifications, f"{key}.certifications"),
                self.qualifications_of(p.subject_to, f"{key}.subject_to"),
                p.group,
                p.public_authority,
            )
        systems: dict[str, System] = {}
        for i, s in enumerate(doc.systems):
            key = f"systems[{i}](id={s.id})"
            if s.id in systems:
                raise self.fail(key, "duplicate system id")
            if s.party not in parties:
                provider_party = self.pack.provider_party(s.party)
                if provider_party is None:
                    raise self.fail(f"{key}.party", f"unknown party {s.party!r}")
                parties[s.party] = provider_party
            for r in s.regimes:
                if r not in self.pack.regimes:
                    raise self.fail(f"{key}.regimes", f"unknown regime {r!r}")
            systems[s.id] = System(
                id=s.id,
                party=s.party,
                role=Role(s.role),
                location=self.location(s.location, f"{key}.location"),
                data_categories=self.categories_of(s.data_categories, f"{key}.data_categories"),
                access_from=self.share(frozenset(
                    self.country(c, f"{key}.access_from[{j}]")
                    for j, c in enumerate(s.access_from) if isinstance(c, str)
                )),
                regimes=self.share(frozenset(s.regimes)),
                name=s.name,
                source_file=self.path,
            )
        for i, s in enumerate(doc.systems):
            for j, a in enumerate(s.access_from):
                if not isinstance(a, str):
                    self.accessor(systems[s.id], a, parties, systems,
                                  f"systems[{i}](id={s.id}).access_from[{j}]")
        rules = []
        for i, rule in enumerate(doc.residency):
            for a in rule.allowed:
                if a in self.places or self.pack.is_group(a) or a in RESIDENCY_KEYWORDS:
                    continue
                raise self.fail(
                    f"residency[{i}].allowed",
                    f"unknown country or group {a!r} (use ISO codes, "
                    f"{', '.join(self.pack.group_names)} or ADEQUATE)",
                )
            rules.append(
                ResidencyRule(
                    self.categories_of(rule.data_categories, f"residency[{i}].data_categories"),
                    tuple(rule.allowed),
                    rule.include_remote_access,
                    rule.id,
                )
            )
        values = []
        for name, v in doc.classification.values.items():
            vkey = f"classification.values.{name}"
            if v.fed_by is not None and v.fed_by not in systems:
                raise self.fail(f"{vkey}.fed_by", f"unknown system {v.fed_by!r}")
            sgs = tuple(_safeguard(s) for s in v.safeguards)
            for j, sg in enumerate(sgs):
                self.check_safeguard(sg, f"{vkey}.safeguards[{j}]")
            values.append((name, ClassificationValue(
                self.categories_of(v.data_categories, f"{vkey}.data_categories"), v.fed_by, sgs
            )))
        activities, disclosures = build_activities(doc, self, parties, systems)
        return DataMap(
            parties=tuple(parties.values()),
            systems=tuple(systems.values()),
            flows=(),
            residency=tuple(rules),
            classification=Classification(doc.classification.tag, tuple(values)),
            source=self.path,
            digest=digest,
            hr_data_categories=self.categories_of(doc.hr_data_categories, "hr_data_categories"),
            special_categories=self.special(doc),
            activities=activities,
            disclosures=disclosures,
        )

    def flow(
        self, f: FlowIn | _FastFlow, i: int, ids: dict[str, str], seen: set[str]
    ) -> Flow:
        """`ids`: each system's id, as the system's own string object."""
        if f.id in seen:
            raise self.fail(f"flows[{i}](id={f.id})", "duplicate flow id")
        seen.add(f.id)
        source, target = ids.get(f.source), ids.get(f.target)
        if source is None or target is None:
            end, sid = ("from", f.source) if source is None else ("to", f.target)
            raise self.fail(f"flows[{i}](id={f.id}).{end}", f"unknown system {sid!r}")
        if isinstance(f, _FastFlow):
            safeguards = f.safeguards
        else:
            safeguards = tuple(_safeguard(s) for s in f.safeguards) if f.safeguards else ()
        for j, sg in enumerate(safeguards):
            self.check_safeguard(sg, f"flows[{i}](id={f.id}).safeguards[{j}]")
        return Flow(
            id=f.id,
            source=source,
            target=target,
            # no categories = everything the source holds, incl. what flows into it
            data_categories=self.flow_categories(tuple(f.data_categories), i, f.id),
            recurring=f.recurring,
            safeguards=safeguards,
            purpose=f.purpose,
        )

    def flow_categories(self, names: tuple[str, ...], i: int, fid: str) -> frozenset[str]:
        """Share one frozenset per distinct category list (a big map repeats a few); each
        distinct list is checked against the vocabulary once."""
        hit = self._cat_cache.get(names)
        if hit is None:
            hit = self._cat_cache[names] = self.categories_of(
                names, f"flows[{i}](id={fid}).data_categories")
        return hit

    def location(self, loc: LocationIn, key: str) -> Location:
        if loc.provider is not None:
            regions = tuple(loc.regions or ()) + ((loc.region,) if loc.region else ())
            return Location(provider=loc.provider, regions=regions)
        codes = loc.countries if loc.countries is not None else [loc.country or ""]
        out = set()
        for c in codes:
            if c in (ANY_COUNTRY, "ANY"):
                out.add(ANY_COUNTRY)
            elif self.pack.is_group(c):
                out |= self.pack.expand([c])
            else:
                out.add(self.country(c, key))
        return Location(countries=self.share(frozenset(out)))


def _safeguard(s: SafeguardIn) -> Safeguard:
    return Safeguard(
        type=s.type,
        instrument=s.instrument,
        module=s.module,
        signed=s.signed,
        expires=s.expires,
        article=s.article,
        ref=s.ref,
        approved_by=s.approved_by,
        approved=s.approved,
        tia=Tia(s.tia.ref, s.tia.date) if s.tia else None,
        conditions=frozenset(s.conditions) if s.conditions else _NONE,
        combines_eu_data=s.combines_eu_data,
    )


def _close(name: str, known: Iterable[str]) -> str | None:
    hits = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
    if not hits:  # case and spacing slips: `Contact_Details `
        folded = {k.casefold().strip(): k for k in known}
        return folded.get(name.casefold().strip())
    return hits[0]


def _unknown(what: str, name: str, known: Iterable[str], how: str = "") -> str:
    close = _close(name, known)
    hint = f"; did you mean {close!r}?" if close else ""
    tail = f" ({how})" if how else ""
    return f"unknown {what} {name!r}{hint}{tail}"
