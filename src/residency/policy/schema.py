"""Schemas of the policy-pack files in `policies/` (validated strictly at load).

The pack is data, not code: a user can update a decision or a region table without a
release. Every legal fact carries its instrument, dates and a source URL.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from residency._io import BoundedDate
from residency.model import SafeguardType

Url = Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PackMeta(_Strict):
    name: str
    version: str
    last_checked: BoundedDate
    description: str = ""
    maintainer_note: str = ""


class CountrySource(_Strict):
    title: str
    url: Url


class IntlOrg(_Strict):
    name: str
    source: Url | None = None


class CountriesFile(_Strict):
    source: CountrySource
    countries: dict[str, str]
    international_organisations: dict[str, IntlOrg] = {}

    @field_validator("countries")
    @classmethod
    def _alpha2(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [c for c in value if len(c) != 2 or not c.isupper()]
        if bad:
            raise ValueError(f"not ISO 3166-1 alpha-2 codes: {', '.join(bad[:5])}")
        return value


class CountryGroup(_Strict):
    name: str
    countries: list[str]
    source: Url
    note: str = ""


class CountryGroupsFile(_Strict):
    groups: dict[str, CountryGroup]


class Authority(_Strict):
    """A supervisory authority whose approvals (BCRs, Art. 47) count for a regime.
    `until`: the last day its approvals had effect for the regime (the ICO for the EU
    GDPR: the end of the Brexit transition period)."""

    id: str
    name: str
    country: str
    aliases: list[str] = []
    until: BoundedDate | None = None
    note: str = ""
    verified: bool = True
    source: Url

    def names(self) -> frozenset[str]:
        return frozenset(n.casefold() for n in (self.id, self.name, *self.aliases))


class ProcessorReturn(_Strict):
    """The regime does not treat a processor handing data back to the controller it
    processes them for as a restricted transfer (UK: ICO guidance, January 2026)."""

    note: str
    verified: bool = False
    source: Url


class IncorporationLag(_Strict):
    """EEA-EFTA states where a new EU adequacy decision applies only once the EEA Joint
    Committee has incorporated it (a decision's `eea_incorporation` says when)."""

    states: list[str] = Field(min_length=1)
    note: str = ""
    verified: bool = False
    source: Url


class Regime(_Strict):
    name: str
    instrument: str
    applies_in: list[str]
    free_flow_area: list[str]
    tia_review_days: int = Field(default=365, gt=0)
    """A pack default for re-checking a TIA, not a statutory limit (messages say so)."""
    adequacy_review_years: int = 4
    authorities: list[Authority] = []
    processor_return: ProcessorReturn | None = None
    incorporation_lag: IncorporationLag | None = None
    modelled_from: BoundedDate | None = None
    """The first day this pack models the regime: an evaluation before it is RES-P001 (the
    Swiss FADP before 2023-09-01: the old FADP Art. 6 and the FDPIC's list are not in it)."""
    source: Url
    note: str = ""

    def authority(self, name: str) -> Authority | None:
        key = name.strip().casefold()
        return next((a for a in self.authorities if key in a.names()), None)


class RegimesFile(_Strict):
    regimes: dict[str, Regime]


class HrCondition(_Strict):
    """Human-resources data (about the exporter's staff, collected in the employment
    relationship) is covered only for importers holding one of these qualifications."""

    requires_any: list[str] = Field(min_length=1)
    note: str = ""
    verified: bool = False
    source: Url


class Scope(_Strict):
    """Who a decision covers: an importer must hold every `requires_all` qualification and,
    when `requires_any` is not empty, at least one of those (UK Extension: participation in
    the EU-US DPF *and* the UK Extension)."""

    description: str
    requires_any: list[str] = []
    requires_all: list[str] = []
    excludes: str = ""
    hr_data: HrCondition | None = None
    health_data: HrCondition | None = None
    """Health data (vocabulary categories with `dpv: pd:Health`) are covered for importers
    holding one of these instead (Swiss DPO Annex 1, Canada: the health acts of Ontario, New
    Brunswick, Newfoundland and Labrador and Nova Scotia also qualify)."""


class OnwardRules(_Strict):
    """An adequacy decision that relies on the country's own rules for onward transfers
    (Japan's Supplementary Rule 4, the DPF's onward-transfer principle, the UK GDPR for EU
    data at a UK importer). `regime`: a regime of this pack whose transfer tools then serve
    such onward transfers too (uk_gdpr: an IDTA)."""

    rule: str
    regime: str | None = None
    note: str = ""
    verified: bool = False
    source: Url


class EeaIncorporation(_Strict):
    """When the EEA Joint Committee incorporated the decision into the EEA Agreement."""

    status: Literal["incorporated", "pending"]
    in_force: BoundedDate | None = None
    jcd: str | None = None
    note: str = ""
    verified: bool = False
    source: Url


class AdequacyDecision(_Strict):
    id: str
    regime: str
    country: str
    instrument: str
    celex: str | None = None
    adopted: BoundedDate
    in_force: BoundedDate | None = None
    valid_until: BoundedDate | None = None
    status: Literal["in_force", "invalidated", "expired", "repealed"]
    ended: BoundedDate | None = None
    ended_by: str | None = None
    scope: str = "general"
    risk: Literal["normal", "elevated"] = "normal"
    note: str = ""
    next_review: BoundedDate | None = None
    onward_rules: OnwardRules | None = None
    eea_incorporation: EeaIncorporation | None = None
    verified: bool = True
    source: Url

    @property
    def starts(self) -> dt.date:
        return self.in_force or self.adopted

    def applies_on(self, day: dt.date) -> bool:
        """In force on `day`: started, not past its sunset, not yet ended."""
        if day < self.starts:
            return False
        if self.valid_until is not None and day > self.valid_until:
            return False
        if self.status != "in_force":
            return self.ended is not None and day < self.ended
        return True

    def incorporated_on(self, day: dt.date) -> bool:
        """In the EEA Agreement on `day`: incorporated, and in force there by then. A
        decision without a record follows the EU dates (see regimes.yaml)."""
        inc = self.eea_incorporation
        if inc is None:
            return True
        if inc.status == "pending":
            return False
        return inc.in_force is None or day >= inc.in_force


class AdequacyFile(_Strict):
    scopes: dict[str, Scope]
    decisions: list[AdequacyDecision]


RoleName = Literal["controller", "processor"]

InstrumentType = SafeguardType


SAFEGUARD_TYPES: frozenset[str] = frozenset(t.value for t in SafeguardType)
"""The `type` a safeguard in a map may have: the instrument types the pack can describe."""


TiaNeed = Literal["required", "if_combined_eu_data"]


class DerogationGround(_Strict):
    """One derogation ground with its own conditions (GDPR Art. 49(1)(a)-(g) and the
    second subparagraph; UK GDPR Art. 49; FADP Art. 17)."""

    article: str
    name: str
    recurring: Literal["allowed", "warning", "error"] = "allowed"
    """What a recurring flow on this ground is: fine, a RES-T004 warning (occasional use
    only, recital 111) or not a basis at all (RES-T005: the residual ground is for
    transfers that are not repetitive)."""
    public_authorities: bool = True
    """False: not available to public authorities exercising public powers (Art. 49(3))."""
    conditions: list[str] = []
    """What the exporter must declare met (safeguard `conditions`) for the ground to hold."""
    note: str = ""

    def key(self) -> str:
        return _article_key(self.article)


def _article_key(article: str) -> str:
    return article.replace(" ", "").casefold()


class Instrument(_Strict):
    id: str
    type: InstrumentType
    regime: str
    name: str
    adopted: BoundedDate | None = None
    valid_from: BoundedDate | None = None
    valid_until: BoundedDate | None = None
    signed_until: BoundedDate | None = None
    """The last day a contract could be concluded under it (inclusive)."""
    transfer_tool: bool = True
    requires_tia: bool = False
    modules: dict[int, tuple[RoleName, RoleName]] = {}
    roles: tuple[RoleName, RoleName] | None = None
    """A single-set instrument (the pre-2021 SCC decisions): its one exporter → importer role
    pair; no `module` is needed."""
    module_tia: dict[int, TiaNeed] = {}
    """Per module, where it differs from `requires_tia` (2021/914 Module 4: Clause 14 only if
    the EU processor combines the controller's data with data collected in the EU)."""
    attaches_to: list[str] = []
    """Instrument ids this one only works together with, on the same flow (the UK Addendum
    rides on SCC 2021/914)."""
    grounds: list[DerogationGround] = []
    not_drafted_for: list[str] = []
    """Importer qualifications the instrument was not drafted for (2021/914 Art. 1(1) and
    recital 7: not for an importer itself subject to the GDPR under Art. 3(2)); relying on it
    then is RES-T009, a warning (the transfer stays a transfer)."""
    status: Literal["in_force", "repealed", "expired"] = "in_force"
    note: str = ""
    verified: bool = True
    source: Url

    @property
    def articles(self) -> list[str]:
        return [g.article for g in self.grounds]

    def ground(self, article: str) -> DerogationGround | None:
        key = _article_key(article)
        return next((g for g in self.grounds if g.key() == key), None)

    def needs_tia(self, module: int | None, combines_eu_data: bool) -> bool:
        need = self.module_tia.get(module) if module is not None else None
        if need is None:
            return self.requires_tia
        return need == "required" or combines_eu_data

    @model_validator(mode="after")
    def _shape(self) -> Instrument:
        if self.modules and self.roles is not None:
            raise ValueError("give `modules` (a modular instrument) or `roles` (a single set), "
                             "not both")
        unknown = sorted(set(self.module_tia) - set(self.modules))
        if unknown:
            raise ValueError(f"module_tia names modules not in `modules`: {unknown}")
        if self.grounds and self.type != "derogation":
            raise ValueError("only a derogation instrument has `grounds`")
        return self


class InstrumentsFile(_Strict):
    instruments: list[Instrument]


class SourceRef(_Strict):
    title: str
    url: Url


class CategoryEntry(_Strict):
    description: str = ""
    dpv: str | None = None
    special: Literal["art9", "art10"] | None = None


class VocabularyFile(_Strict):
    """`vocabulary.yaml`: names a map may use without declaring them (optional file)."""

    retrieved: BoundedDate
    sources: list[SourceRef] = []
    data_categories: dict[str, CategoryEntry] = {}
    qualifications: dict[str, str] = {}


class RegionEntry(_Strict):
    countries: Annotated[list[str], Field(min_length=1)] | Literal["ANY"]
    name: str = ""
    kind: Literal["region", "multi-region", "dual-region", "geography", "logical"] = "region"
    partition: str | None = None
    regions: list[str] = []
    city: str | None = None
    note: str = ""
    source: Url | None = None


class RegionsFile(_Strict):
    provider: str
    retrieved: BoundedDate
    sources: list[SourceRef]
    locations: dict[str, RegionEntry]
    aliases: dict[str, str] = {}
    pairs: dict[str, str] = {}


class ProviderParty(_Strict):
    id: str
    name: str
    country: str
    certifications: list[str] = []


class ProviderEntry(_Strict):
    party: ProviderParty
    role: Literal["controller", "processor"] = "processor"
    parent: str = ""
    sources: list[SourceRef]
    note: str = ""


class ProvidersFile(_Strict):
    retrieved: BoundedDate
    providers: dict[str, ProviderEntry]


# ---------------------------------------------------------------------- resource catalogue
LocationForm = Literal["region", "zone", "self_link", "arn", "spanner_config", "azure", "lower"]


class PairIf(_Strict):
    attr: str
    in_: list[str] = Field(alias="in", min_length=1)


class StepIn(_Strict):
    """One way of finding a location (exactly one of attr, provider, fixed, pair_if,
    mechanism)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    attr: str | None = None
    ref: str | None = None  # the location of the planned resource this attribute refers to
    provider: Literal["region", "zone"] | None = None
    fixed: str | None = None
    as_: LocationForm = Field(default="region", alias="as")
    pair_if: PairIf | None = None
    mechanism: Literal["s3_replication", "dynamodb_replica_resource", "rds_replica",
                       "rds_global"] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> StepIn:
        kinds = [k for k in ("attr", "ref", "provider", "fixed", "pair_if", "mechanism")
                 if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a step has exactly one of attr, ref, provider, fixed, pair_if, "
                             f"mechanism (got {', '.join(kinds) or 'none'})")
        return self

    @field_validator("attr", "ref")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None:
            from residency.policy.catalogue import parse_path

            parse_path(value)
        return value


class CatalogueEntryIn(_Strict):
    store: bool = True
    location: list[StepIn] | None = None  # None: the provider's default steps
    copies: list[StepIn] = []
    keys: list[str] = []
    doc: Url | None = None
    note: str = ""


class CatalogueFile(_Strict):
    """`catalogue/<provider>.yaml`: where each resource type keeps its data."""

    provider: str
    retrieved: BoundedDate
    sources: list[SourceRef] = Field(min_length=1)
    doc: str  # URL template: {name} is the type without its prefix, {type} the full type
    prefixes: list[str] = Field(min_length=1)
    default_location: list[StepIn] = Field(min_length=1)
    not_stores: list[str] = []
    terraform: dict[str, CatalogueEntryIn] = {}
