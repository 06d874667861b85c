"""Build a `DataMap` from a YAML/JSON document, checking every reference.

Structural errors come from the pydantic schema; reference errors (unknown party,
country, system, regime) are checked here. Both name the file and the key (exit 2).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from residency._io import paused_gc, read_document, validate, validate_many
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

from .schema import DataMapIn, FlowIn, LocationIn, SafeguardIn

RESIDENCY_KEYWORDS = frozenset({"ADEQUATE"})


_FLOWS = TypeAdapter(list[FlowIn])
_CHUNK = 20_000


def load_map(path: Path, pack: PolicyPack) -> DataMap:
    """Read and validate the map at `path`."""
    with paused_gc():
        raw = read_document(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        return parse_map(raw, pack, path, digest)


def parse_map(raw: Any, pack: PolicyPack, path: Path, digest: str | None = None) -> DataMap:
    """Validate a parsed document. Flows are validated and converted in chunks, dropping
    the raw dicts as they go, so a million-flow map never exists three times in memory."""
    if not isinstance(raw, dict):
        raise InputError(str(path), None, "a data map must be a mapping with a `version` key")
    raw = dict(raw)
    raw_flows = raw.pop("flows", None)
    if raw_flows is None:
        raw_flows = []
    if not isinstance(raw_flows, list):
        raise InputError(str(path), "flows", "must be a list of flows")
    raw_flows = list(raw_flows)  # we blank our copy as we go, never the caller's list
    doc: DataMapIn = validate(DataMapIn, raw, path)
    builder = _Builder(pack, path)
    head = builder.build(doc, digest)
    flows: list[Flow] = []
    systems = {s.id: s for s in head.systems}
    seen: set[str] = set()
    for start in range(0, len(raw_flows), _CHUNK):
        chunk = raw_flows[start : start + _CHUNK]
        raw_flows[start : start + _CHUNK] = [None] * len(chunk)
        parsed = validate_many(_FLOWS, chunk, start, ("flows",), path)
        del chunk
        for offset, f in enumerate(parsed):
            flows.append(builder.flow(f, start + offset, systems, seen))
    return replace(head, flows=tuple(flows))


class _Builder:
    def __init__(self, pack: PolicyPack, path: Path) -> None:
        self.pack = pack
        self.path = str(path)
        self.places = pack.known_places
        self._cat_cache: dict[tuple[str, ...], frozenset[str]] = {}

    def fail(self, key: str, problem: str) -> InputError:
        return InputError(self.path, key, problem)

    def country(self, code: str, key: str) -> str:
        if code not in self.places:
            raise self.fail(key, f"unknown country code {code!r} (ISO 3166-1 alpha-2 expected)")
        return code

    def build(self, doc: DataMapIn, digest: str | None) -> DataMap:
        parties: dict[str, Party] = {}
        for i, p in enumerate(doc.parties):
            key = f"parties[{i}](id={p.id})"
            if p.id in parties:
                raise self.fail(key, "duplicate party id")
            parties[p.id] = Party(
                p.id,
                p.name,
                self.country(p.country, f"{key}.country"),
                frozenset(p.certifications),
                frozenset(p.subject_to),
                p.group,
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
                data_categories=frozenset(s.data_categories),
                access_from=frozenset(
                    self.country(c, f"{key}.access_from") for c in s.access_from
                ),
                regimes=frozenset(s.regimes),
                name=s.name,
                source_file=self.path,
            )
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
                    frozenset(rule.data_categories),
                    tuple(rule.allowed),
                    rule.include_remote_access,
                    rule.id,
                )
            )
        values = []
        for name, v in doc.classification.values.items():
            if v.fed_by is not None and v.fed_by not in systems:
                raise self.fail(
                    f"classification.values.{name}.fed_by", f"unknown system {v.fed_by!r}"
                )
            values.append((name, ClassificationValue(frozenset(v.data_categories), v.fed_by)))
        return DataMap(
            parties=tuple(parties.values()),
            systems=tuple(systems.values()),
            flows=(),
            residency=tuple(rules),
            classification=Classification(doc.classification.tag, tuple(values)),
            source=self.path,
            digest=digest,
        )

    def flow(self, f: FlowIn, i: int, systems: dict[str, System], seen: set[str]) -> Flow:
        key = f"flows[{i}](id={f.id})"
        if f.id in seen:
            raise self.fail(key, "duplicate flow id")
        seen.add(f.id)
        for end, sid in (("from", f.source), ("to", f.target)):
            if sid not in systems:
                raise self.fail(f"{key}.{end}", f"unknown system {sid!r}")
        safeguards = tuple(_safeguard(s) for s in f.safeguards) if f.safeguards else ()
        return Flow(
            id=f.id,
            source=f.source,
            target=f.target,
            # no categories = everything the source holds, incl. what flows into it
            data_categories=self._cats(f.data_categories),
            recurring=f.recurring,
            safeguards=safeguards,
            purpose=f.purpose,
        )

    def _cats(self, names: list[str]) -> frozenset[str]:
        """Share one frozenset per distinct category list (a big map repeats a few)."""
        key = tuple(names)
        hit = self._cat_cache.get(key)
        if hit is None:
            hit = self._cat_cache[key] = frozenset(names)
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
        return Location(countries=frozenset(out))


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
    )
