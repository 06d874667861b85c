"""Load and query a policy pack: regimes, adequacy decisions, instruments, region tables.

`PolicyPack.load(dir)` validates every file and every cross-reference, so the engine can
trust what it asks. A bad pack is a `PolicyError` naming the file and the key (exit 2).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from residency._io import read_document, validate
from residency.errors import PolicyError
from residency.model import ANY_COUNTRY, Location, PackInfo, Party, ResolvedLocation
from residency.policy.catalogue import Catalogue, Entry, step_from
from residency.policy.schema import (
    AdequacyDecision,
    AdequacyFile,
    CatalogueFile,
    CountriesFile,
    CountryGroupsFile,
    Instrument,
    InstrumentsFile,
    OnwardRules,
    PackMeta,
    ProvidersFile,
    RegimesFile,
    RegionsFile,
    Scope,
    VocabularyFile,
)

VOCABULARY_FILE = "vocabulary.yaml"
PACK_FILES = (
    "pack.yaml",
    "countries.yaml",
    "country_groups.yaml",
    "regimes.yaml",
    "adequacy.yaml",
    "instruments.yaml",
    "providers.yaml",
)


def default_policies_dir() -> Path:
    """`$RESIDENCY_POLICIES`, else the pack shipped inside the package."""
    env = os.environ.get("RESIDENCY_POLICIES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "_policies"


def normalise_region(name: str) -> str:
    """Provider APIs spell regions `EUROPE-WEST3`, `West Europe`, `eu-west-1`: one key."""
    return name.strip().lower().replace(" ", "")


@dataclass(frozen=True, slots=True)
class RegionTable:
    provider: str
    locations: dict[str, frozenset[str] | None]  # None = may be anywhere
    members: dict[str, tuple[str, ...]]
    aliases: dict[str, str]
    pairs: dict[str, str]

    def canonical(self, region: str) -> str | None:
        key = normalise_region(region)
        key = self.aliases.get(key, key)
        return key if key in self.locations else None


@dataclass(frozen=True, slots=True)
class AdequacyOutcome:
    """Result of asking whether a country is adequate for an importer on a date."""

    decision: AdequacyDecision | None  # the decision that covers the importer
    out_of_scope: AdequacyDecision | None  # a decision exists but the importer is outside it


class PolicyPack:
    """A validated, queryable policy pack (immutable after load)."""

    def __init__(
        self,
        root: Path,
        meta: PackMeta,
        countries: CountriesFile,
        groups: CountryGroupsFile,
        regimes: RegimesFile,
        adequacy: AdequacyFile,
        instruments: InstrumentsFile,
        providers: ProvidersFile,
        regions: dict[str, RegionTable],
        digest: str,
        vocabulary: VocabularyFile | None = None,
    ) -> None:
        self.root = root
        self.meta = meta
        self.vocabulary = vocabulary or VocabularyFile(retrieved=meta.last_checked)
        self.catalogue = Catalogue()
        self._countries = countries
        self._groups = {k: frozenset(v.countries) for k, v in groups.groups.items()}
        self.group_names = tuple(groups.groups)
        self.regimes = regimes.regimes
        self.scopes: dict[str, Scope] = adequacy.scopes
        self.decisions: tuple[AdequacyDecision, ...] = tuple(adequacy.decisions)
        self.instruments: tuple[Instrument, ...] = tuple(instruments.instruments)
        self.providers = providers.providers
        self.regions = regions
        self.info = PackInfo(meta.name, meta.version, meta.last_checked, digest)
        self._by_country: dict[tuple[str, str], list[AdequacyDecision]] = {}
        for dec in self.decisions:
            for country in self.expand([dec.country]):
                self._by_country.setdefault((dec.regime, country), []).append(dec)
        self._area = {
            rid: self.expand(reg.free_flow_area) for rid, reg in self.regimes.items()
        }
        self._applies = {rid: self.expand(reg.applies_in) for rid, reg in self.regimes.items()}

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, root: Path | None = None) -> PolicyPack:
        root = root or default_policies_dir()
        if not root.is_dir():
            raise PolicyError(str(root), None, "policy pack directory not found")
        hasher = hashlib.sha256()
        docs: dict[str, Any] = {}
        for name in PACK_FILES:
            path = root / name
            docs[name] = read_document(path, PolicyError)
            hasher.update(name.encode() + path.read_bytes())
        meta = validate(PackMeta, docs["pack.yaml"], root / "pack.yaml", PolicyError)
        countries = validate(
            CountriesFile, docs["countries.yaml"], root / "countries.yaml", PolicyError
        )
        groups = validate(
            CountryGroupsFile,
            docs["country_groups.yaml"],
            root / "country_groups.yaml",
            PolicyError,
        )
        regimes = validate(RegimesFile, docs["regimes.yaml"], root / "regimes.yaml", PolicyError)
        adequacy = validate(
            AdequacyFile, docs["adequacy.yaml"], root / "adequacy.yaml", PolicyError
        )
        instruments = validate(
            InstrumentsFile, docs["instruments.yaml"], root / "instruments.yaml", PolicyError
        )
        providers = validate(
            ProvidersFile, docs["providers.yaml"], root / "providers.yaml", PolicyError
        )
        regions: dict[str, RegionTable] = {}
        region_dir = root / "regions"
        for path in sorted(region_dir.glob("*.yaml")) if region_dir.is_dir() else []:
            raw = read_document(path, PolicyError)
            hasher.update(path.name.encode() + path.read_bytes())
            table = validate(RegionsFile, raw, path, PolicyError)
            regions[table.provider] = _region_table(table, path)
        catalogue = _load_catalogue(root / "catalogue", hasher)
        vocabulary = VocabularyFile(retrieved=meta.last_checked)
        vocab_path = root / VOCABULARY_FILE
        if vocab_path.exists():  # optional: without it, a map declares every name it uses
            raw = read_document(vocab_path, PolicyError)
            hasher.update(vocab_path.name.encode() + vocab_path.read_bytes())
            vocabulary = validate(VocabularyFile, raw, vocab_path, PolicyError)
        pack = cls(
            root,
            meta,
            countries,
            groups,
            regimes,
            adequacy,
            instruments,
            providers,
            regions,
            hasher.hexdigest()[:16],
            vocabulary,
        )
        pack.catalogue = catalogue
        pack._check_references()
        pack._check_consistency()
        return pack

    def _check_consistency(self) -> None:
        """Facts that contradict each other fail the load: an `ended` decision that says
        it is in force would still apply; dates out of order would open or close a window
        that the instrument never had."""
        path = str(self.root / "adequacy.yaml")
        for i, dec in enumerate(self.decisions):
            key = f"decisions[{i}](id={dec.id})"
            if dec.status == "in_force" and dec.ended is not None:
                raise PolicyError(path, f"{key}.ended", f"set to {dec.ended} but status is "
                                  "in_force: set status (invalidated, expired, repealed) or "
                                  "remove ended")
            if dec.in_force is not None and dec.in_force < dec.adopted:
                raise PolicyError(path, f"{key}.in_force", f"{dec.in_force} is before "
                                  f"adopted {dec.adopted}")
            for name in ("valid_until", "ended"):
                value = getattr(dec, name)
                if value is not None and value < dec.starts:
                    raise PolicyError(path, f"{key}.{name}", f"{value} is before the decision "
                                      f"applies ({dec.starts})")
        path = str(self.root / "instruments.yaml")
        for i, ins in enumerate(self.instruments):
            key = f"instruments[{i}](id={ins.id})"
            start = ins.valid_from or ins.adopted
            for name in ("valid_until", "signed_until"):
                value = getattr(ins, name)
                if value is not None and start is not None and value < start:
                    raise PolicyError(path, f"{key}.{name}", f"{value} is before the instrument "
                                      f"applies ({start})")
            if ins.status != "in_force" and ins.valid_until is None and ins.signed_until is None:
                raise PolicyError(path, f"{key}.status", f"status {ins.status} needs "
                                  "valid_until (or signed_until)")
        for rid, reg in self.regimes.items():
            if not self.expand(reg.free_flow_area):
                raise PolicyError(str(self.root / "regimes.yaml"), f"regimes.{rid}.free_flow_area",
                                  "empty: every transfer would be judged, none free")

    @cached_property
    def known_categories(self) -> frozenset[str]:
        return frozenset(self.vocabulary.data_categories)

    @cached_property
    def known_qualifications(self) -> frozenset[str]:
        """Every certification / `subject_to` name the pack gives meaning to."""
        names = set(self.vocabulary.qualifications)
        for scope in self.scopes.values():
            names.update(scope.requires_any)
            names.update(scope.requires_all)
            for cond in (scope.hr_data, scope.health_data):
                if cond is not None:
                    names.update(cond.requires_any)
        for prov in self.providers.values():
            names.update(prov.party.certifications)
        return frozenset(names)

    def _check_references(self) -> None:
        """Cross-file consistency: every id a file uses is defined somewhere."""
        known = self.known_places
        for gid, members in self._groups.items():
            for c in members:
                if c not in known:
                    path = str(self.root / "country_groups.yaml")
                    raise PolicyError(path, f"groups.{gid}", f"unknown country {c}")
        for rid, reg in self.regimes.items():
            for c in [*reg.applies_in, *reg.free_flow_area]:
                if c not in known and c not in self._groups:
                    raise PolicyError(
                        str(self.root / "regimes.yaml"), f"regimes.{rid}", f"unknown country {c}"
                    )
            for c in reg.incorporation_lag.states if reg.incorporation_lag else ():
                if c not in known:
                    raise PolicyError(str(self.root / "regimes.yaml"),
                                      f"regimes.{rid}.incorporation_lag", f"unknown country {c}")
        seen: set[str] = set()
        for i, dec in enumerate(self.decisions):
            key = f"decisions[{i}](id={dec.id})"
            path = str(self.root / "adequacy.yaml")
            if dec.id in seen:
                raise PolicyError(path, key, "duplicate decision id")
            seen.add(dec.id)
            if dec.regime not in self.regimes:
                raise PolicyError(path, f"{key}.regime", f"unknown regime {dec.regime}")
            if dec.scope not in self.scopes:
                raise PolicyError(path, f"{key}.scope", f"unknown scope {dec.scope}")
            if dec.country not in known and dec.country not in self._groups:
                raise PolicyError(path, f"{key}.country", f"unknown country {dec.country}")
            if dec.status != "in_force" and dec.ended is None:
                raise PolicyError(path, f"{key}.ended", f"status {dec.status} needs an end date")
            onward = dec.onward_rules.regime if dec.onward_rules else None
            if onward is not None and onward not in self.regimes:
                raise PolicyError(path, f"{key}.onward_rules.regime", f"unknown regime {onward}")
        seen_i: set[tuple[str, str]] = set()
        for i, ins in enumerate(self.instruments):
            key = f"instruments[{i}](id={ins.id})"
            path = str(self.root / "instruments.yaml")
            if (ins.id, ins.regime) in seen_i:
                raise PolicyError(path, key, f"duplicate instrument id for regime {ins.regime}")
            seen_i.add((ins.id, ins.regime))
            if ins.regime not in self.regimes:
                raise PolicyError(path, f"{key}.regime", f"unknown regime {ins.regime}")
            for other in ins.attaches_to:
                if not any(i.id == other for i in self.instruments):
                    raise PolicyError(path, f"{key}.attaches_to", f"no instrument {other!r}")
        for pid, prov in self.providers.items():
            if prov.party.country not in known:
                raise PolicyError(
                    str(self.root / "providers.yaml"),
                    f"providers.{pid}.party.country",
                    f"unknown country {prov.party.country}",
                )
        for table in self.regions.values():
            path = str(self.root / "regions" / f"{table.provider}.yaml")
            for key, countries in table.locations.items():
                for c in countries or ():
                    if c not in known:
                        where = f"locations.{key}.countries"
                        raise PolicyError(path, where, f"unknown country {c}")

    # ------------------------------------------------------------------ places
    @cached_property
    def known_places(self) -> frozenset[str]:
        return frozenset(self._countries.countries) | frozenset(
            self._countries.international_organisations
        )

    def country_name(self, code: str) -> str:
        if code in self._countries.countries:
            return self._countries.countries[code]
        org = self._countries.international_organisations.get(code)
        return org.name if org else code

    def expand(self, names: Iterable[str]) -> frozenset[str]:
        """Country codes and group names (EEA, EU) → a set of country codes."""
        out: set[str] = set()
        for name in names:
            out |= self._groups.get(name, {name})
        return frozenset(out)

    def is_group(self, name: str) -> bool:
        return name in self._groups

    def free_flow_area(self, regime: str) -> frozenset[str]:
        return self._area[regime]

    def regimes_applying_in(self, countries: Iterable[str]) -> frozenset[str]:
        cs = set(countries)
        return frozenset(rid for rid, area in self._applies.items() if cs & area)

    # ------------------------------------------------------------------ locations
    def resolve(self, location: Location) -> ResolvedLocation:
        """Turn a declared or reported location into countries; never guess."""
        if location.provider is None:
            if location.unknown_reason:
                return ResolvedLocation(frozenset(), True, location.unknown_reason)
            if not location.countries:
                return ResolvedLocation(frozenset(), True, "no country or region given")
            if ANY_COUNTRY in location.countries:
                return ResolvedLocation(frozenset(), True)
            return ResolvedLocation(location.countries)
        table = self.regions.get(location.provider)
        if table is None:
            return ResolvedLocation(
                frozenset(), True, f"no region table for provider {location.provider!r}"
            )
        if location.unknown_reason or not location.regions:
            why = location.unknown_reason or "no region reported"
            return ResolvedLocation(frozenset(), True, f"{location.provider}: {why}")
        out: set[str] = set()
        for region in location.regions:
            key = table.canonical(region)
            if key is None:
                return ResolvedLocation(
                    frozenset(),
                    True,
                    f"unknown {location.provider} location {region!r} (not in regions/"
                    f"{location.provider}.yaml)",
                )
            countries = table.locations[key]
            if countries is None:
                return ResolvedLocation(frozenset(), True)
            out |= countries
        return ResolvedLocation(frozenset(out))

    def paired_region(self, provider: str, region: str) -> str | None:
        table = self.regions.get(provider)
        if table is None:
            return None
        key = table.canonical(region)
        return table.pairs.get(key) if key else None

    def provider_party(self, provider: str) -> Party | None:
        entry = self.providers.get(provider)
        if entry is None:
            return None
        p = entry.party
        return Party(p.id, p.name, p.country, frozenset(p.certifications))

    # ------------------------------------------------------------------ law
    def adequacy(
        self,
        regime: str,
        country: str,
        day: dt.date,
        importer: Party,
        assume_invalid: frozenset[str] = frozenset(),
        hr_data: bool = False,
        *,
        health_data: bool = False,
        eea_efta: bool = False,
    ) -> AdequacyOutcome:
        """Is `country` adequate for this importer under `regime` on `day`? With `hr_data`
        the transfer carries human-resources data, which some scopes cover only for
        importers qualified for it (DPF: certified for HR data)."""
        out_of_scope: AdequacyDecision | None = None
        for dec in self._by_country.get((regime, country), ()):
            if dec.id in assume_invalid or not dec.applies_on(day):
                continue
            if eea_efta and not dec.incorporated_on(day):
                continue  # the exporter's EEA-EFTA state has not taken the decision yet
            scope = self.scopes[dec.scope]
            needs = scope.requires_any
            if hr_data and scope.hr_data is not None:
                needs = scope.hr_data.requires_any
            elif health_data and scope.health_data is not None:
                needs = scope.health_data.requires_any
            held = importer.certifications | importer.subject_to
            if (not needs or set(needs) & held) and held.issuperset(scope.requires_all):
                return AdequacyOutcome(dec, None)
            out_of_scope = dec
        return AdequacyOutcome(None, out_of_scope)

    def onward_rules(self, regime: str, country: str, day: dt.date) -> OnwardRules | None:
        """The country's own onward-transfer rules, when a decision in force relies on them."""
        for dec in self._by_country.get((regime, country), ()):
            if dec.onward_rules is not None and dec.applies_on(day):
                return dec.onward_rules
        return None

    @cached_property
    def eea_efta_lag(self) -> frozenset[str]:
        """Exporter countries that take a new EU decision only once it is incorporated."""
        return frozenset(s for r in self.regimes.values() if r.incorporation_lag
                         for s in r.incorporation_lag.states)

    @cached_property
    def health_categories(self) -> frozenset[str]:
        """Vocabulary categories that are health data (`dpv: pd:Health`)."""
        return frozenset(name for name, e in self.vocabulary.data_categories.items()
                         if e.dpv == "pd:Health")

    def has_adequacy(self, regime: str, country: str, day: dt.date) -> bool:
        """Any in-force decision for the country, whatever its scope."""
        return any(d.applies_on(day) for d in self._by_country.get((regime, country), ()))

    def instruments_of(self, type_: str, regime: str) -> list[Instrument]:
        return [i for i in self.instruments if i.type == type_ and i.regime == regime]

    def find_decision(self, ident: str) -> AdequacyDecision | None:
        return next((d for d in self.decisions if d.id == ident), None)

    def find_instrument(self, ident: str) -> list[Instrument]:
        return [i for i in self.instruments if i.id == ident]

    @cached_property
    def derogation_conditions(self) -> frozenset[str]:
        """Every condition a derogation ground asks the map to declare."""
        return frozenset(c for i in self.instruments for g in i.grounds for c in g.conditions)

    def authority_regimes(self, name: str) -> list[str]:
        """The regimes for which `name` is a supervisory authority (any period)."""
        return [rid for rid, reg in self.regimes.items() if reg.authority(name) is not None]


def _region_table(table: RegionsFile, path: Path) -> RegionTable:
    locations: dict[str, frozenset[str] | None] = {}
    members: dict[str, tuple[str, ...]] = {}
    for key, entry in table.locations.items():
        norm = normalise_region(key)
        locations[norm] = None if entry.countries == "ANY" else frozenset(entry.countries)
        members[norm] = tuple(normalise_region(r) for r in entry.regions)
    aliases = {normalise_region(k): normalise_region(v) for k, v in table.aliases.items()}
    pairs = {normalise_region(k): normalise_region(v) for k, v in table.pairs.items()}
    for name, target in [*aliases.items(), *pairs.items()]:
        if target not in locations:
            raise PolicyError(str(path), name, f"refers to unknown location {target!r}")
    return RegionTable(table.provider, locations, members, aliases, pairs)


def _load_catalogue(directory: Path, hasher: Any) -> Catalogue:
    """`catalogue/*.yaml` → one `Catalogue` (an absent folder: nothing is known, so every
    classified resource fails closed as "not in the catalogue")."""
    entries: dict[str, Entry] = {}
    prefixes: list[tuple[str, str]] = []
    defaults: dict[str, tuple[Any, ...]] = {}
    not_stores: list[tuple[str, str]] = []
    sources: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        raw = read_document(path, PolicyError)
        hasher.update(path.name.encode() + path.read_bytes())
        cat = validate(CatalogueFile, raw, path, PolicyError)
        sources[cat.provider] = str(path)
        prefixes.extend((prefix, cat.provider) for prefix in cat.prefixes)
        defaults[cat.provider] = tuple(step_from(st.model_dump(by_alias=True, exclude_none=True))
                                       for st in cat.default_location)
        not_stores.extend((prefix, cat.provider) for prefix in cat.not_stores)
        for type_, e in cat.terraform.items():
            if type_ in entries:
                raise PolicyError(str(path), f"terraform.{type_}", "type listed twice")
            if not any(type_.startswith(p) for p in cat.prefixes):
                raise PolicyError(str(path), f"terraform.{type_}", "does not start with one of "
                                  f"this file's prefixes ({', '.join(cat.prefixes)})")
            name = type_.split("_", 1)[1] if "_" in type_ else type_
            location = cat.default_location if e.location is None else e.location
            entries[type_] = Entry(
                type=type_, provider=cat.provider, store=e.store,
                location=tuple(step_from(st.model_dump(by_alias=True, exclude_none=True))
                               for st in location),
                copies=tuple(step_from(st.model_dump(by_alias=True, exclude_none=True))
                             for st in e.copies),
                keys=tuple(e.keys),
                doc=str(e.doc) if e.doc else cat.doc.format(name=name, type=type_,
                                                            tf=type_.split("_", 1)[0]),
            )
    prefixes.sort(key=lambda item: -len(item[0]))
    return Catalogue(entries, tuple(prefixes), defaults, tuple(not_stores), sources)
