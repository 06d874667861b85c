"""The domain model shared by every pipeline stage.

Frozen, slotted dataclasses and enums only: nothing here imports another part of
`residency`, and nothing is mutated after construction (see docs/architecture.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from dataclasses import MISSING, dataclass, field, fields
from enum import StrEnum
from operator import attrgetter
from typing import Any, TypeVar

_T = TypeVar("_T")


def _quick(cls: type[_T]) -> type[_T]:
    """Give a frozen, slotted dataclass an `__init__` about three times faster than the one
    `dataclasses` generates, which sets every field through `object.__setattr__` (a cost
    paid millions of times on a large map, for each Transfer and Finding).

    The new `__init__` has the same parameters and defaults. It switches the new instance
    to a twin class with the very same slots (CPython checks the layouts match on the
    switch), stores the fields as plain attributes and switches it back: the result is an
    ordinary frozen instance of `cls`. A subclass's instance is built the usual way. A
    field without `init`, or with a `default_factory`, is not supported (refused here, at
    import)."""
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    if getattr(cls, "__slots__", None) != names or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: not a plain frozen slotted dataclass")
    params: list[str] = []
    scope: dict[str, object] = {"_cls": cls, "_set": object.__setattr__, "_type": type,
                                "_generated": cls.__init__}  # fields may be named `type`
    for f in fields(cls):  # type: ignore[arg-type]
        if not f.init or f.default_factory is not MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: not supported by _quick")
        if f.default is MISSING:
            params.append(f.name)
        else:
            scope[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
    scope["_twin"] = twin = type(f"_{cls.__name__}Fill", (), {"__slots__": names})
    probe: Any = object.__new__(twin)
    probe.__class__ = cls  # TypeError now, at import, if the layouts ever differ
    body = "".join(f"    self.{n} = {n}\n" for n in names)
    exec(  # noqa: S102 - source built from the class's own field names, as dataclasses does
        f"def __init__(self, {', '.join(params)}):\n"
        f"    if _type(self) is not _cls:  # a subclass has a layout of its own\n"
        f"        return _generated(self, {', '.join(names)})\n"
        f"    _set(self, '__class__', _twin)\n{body}    self.__class__ = _cls\n", scope)
    init: Any = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = cls.__init__.__annotations__
    setattr(cls, "__init__", init)  # noqa: B010 - mypy refuses assigning a method
    return cls


class Role(StrEnum):
    """The role a party plays for the data a system holds (GDPR Art. 4(7)/(8))."""

    CONTROLLER = "controller"
    PROCESSOR = "processor"


class Severity(StrEnum):
    """Finding severity; ordered so thresholds can compare."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


class Origin(StrEnum):
    """Where a system or flow came from: the declared map or a collector."""

    DECLARED = "declared"
    COLLECTED = "collected"
    PLANNED = "planned"


class BasisKind(StrEnum):
    """What a transfer to one country relies on (GDPR Arts 45, 46/47, 49), or why none is
    needed: same-entity processing, or a flow the regime does not treat as a restricted
    transfer (UK: a processor returning data to its controller)."""

    ADEQUACY = "adequacy"
    SAFEGUARD = "safeguard"
    DEROGATION = "derogation"
    SAME_ENTITY = "same_entity"
    NOT_RESTRICTED = "not_restricted"
    NONE = "none"


class SafeguardType(StrEnum):
    """The `type` of a safeguard in a map: the instrument types a pack can describe (one
    definition: the pack schema and the map loader read this list)."""

    SCC = "scc"
    IDTA = "idta"
    UK_ADDENDUM = "uk_addendum"
    BCR = "bcr"
    CODE_OF_CONDUCT = "code_of_conduct"
    CERTIFICATION = "certification"
    DEROGATION = "derogation"
    ART28_CLAUSES = "art28_clauses"


class SubjectKind(StrEnum):
    """What a finding is about (`Finding.subject_kind` holds one of these values)."""

    FLOW = "flow"
    SYSTEM = "system"
    LOCATION = "location"
    SCOPE = "scope"
    PACK = "pack"


OUTSIDE_INVENTORY = "is outside the scanned inventory and the map"
"""Reason the engine gives the placeholder it creates for a flow end no source described
(history drops these when merging shards, where another shard holds the real system)."""

ANY_COUNTRY = "*"
#: A system tag a collector sets when evidence it relied on (a vendor's shipped sub-processor
#: list, ...) is older than the pack allows; its value says why. Turned into RES-S002.
EVIDENCE_STALE_TAG = "residency:evidence-stale"
"""Country-set marker for a location that may be anywhere (e.g. Azure `global`)."""


@_quick
@dataclass(frozen=True, slots=True)
class Location:
    """Where data is stored, as declared or reported.

    Either explicit `countries`, or a cloud `provider` with one or more `regions`
    (several for custom dual-regions); the policy pack resolves regions to countries.
    """

    countries: frozenset[str] = frozenset()
    provider: str | None = None
    regions: tuple[str, ...] = ()
    unknown_reason: str | None = None  # e.g. "region unknown until apply"

    def describe(self) -> str:
        if self.provider:
            return f"{self.provider}:{'+'.join(self.regions) or '?'}"
        return ",".join(sorted(self.countries)) or "?"


@_quick
@dataclass(frozen=True, slots=True)
class ResolvedLocation:
    """A location resolved to countries; `unresolved` says why it could not be."""

    countries: frozenset[str]
    any_country: bool = False
    unresolved: str | None = None

    @property
    def known(self) -> bool:
        return self.unresolved is None


@_quick
@dataclass(frozen=True, slots=True)
class Party:
    """A legal entity: controller, processor or sub-processor."""

    id: str
    name: str
    country: str
    certifications: frozenset[str] = frozenset()
    subject_to: frozenset[str] = frozenset()
    group: str | None = None
    public_authority: bool = False
    """A public authority acting in the exercise of its public powers: GDPR Art. 49(3)
    takes some derogations away from it."""


@_quick
@dataclass(frozen=True, slots=True)
class Tia:
    """A reference to a documented transfer-impact assessment."""

    ref: str
    date: dt.date | None = None


@_quick
@dataclass(frozen=True, slots=True)
class Safeguard:
    """A transfer tool a flow relies on, as written in the map.

    Kept permissive on purpose: a safeguard missing a module or date is judged
    by the engine (RES-T005), not rejected at load, so the gap is reported.
    """

    type: str  # a SafeguardType value (the loader passes the member)
    instrument: str | None = None
    module: int | None = None
    signed: dt.date | None = None
    expires: dt.date | None = None
    article: str | None = None
    ref: str | None = None
    approved_by: str | None = None
    approved: dt.date | None = None
    tia: Tia | None = None
    conditions: frozenset[str] = frozenset()
    """Conditions the exporter declares met for a derogation ground (e.g. the residual
    ground's `authority_informed`); the pack lists which each ground needs."""
    combines_eu_data: bool = False
    """SCC Module 4: the EU processor combines the controller's data with data it collected
    in the EU, which brings the Clause 14 local-laws assessment back."""

    def label(self) -> str:
        parts = [self.type]
        if self.instrument:
            parts.append(self.instrument)
        if self.module is not None:
            parts.append(f"module {self.module}")
        if self.article:
            parts.append(f"Art. {self.article}")
        if self.ref:
            parts.append(self.ref)
        return " ".join(parts)


@_quick
@dataclass(frozen=True, slots=True)
class KeyRef:
    """The key that encrypts a store's data at rest, as the store and KMS `DescribeKey`
    report it: evidence for a transfer impact assessment's supplementary measures (where
    the key material lives, who manages it, whether it leaves AWS KMS).

    Provider-neutral: `arn` is the key's full identifier (AWS KMS ARN, Azure Key Vault key
    id, Cloud KMS key name); `origin`/`key_manager` as the provider reports them.
    """

    key: str  # as the store names it: key ARN, key id or alias; "" for a service-owned key
    algorithm: str | None = None  # the store's name for it, if any (aws:kms, AES256, KMS)
    arn: str | None = None
    region: str | None = None
    account: str | None = None
    multi_region: bool = False
    primary_region: str | None = None  # multi-Region keys: the primary's region
    replica_regions: tuple[str, ...] = ()  # multi-Region keys: every replica's region
    origin: str | None = None  # AWS_KMS | EXTERNAL | AWS_CLOUDHSM | EXTERNAL_KEY_STORE
    key_manager: str | None = None  # AWS | CUSTOMER
    protection_level: str | None = None  # Cloud KMS: SOFTWARE | HSM | EXTERNAL | EXTERNAL_VPC;
    # Azure: HSM for a Managed HSM key (a vault key's kty is data-plane only)
    unknown_reason: str | None = None  # DescribeKey failed (the scan has the gap too)


@_quick
@dataclass(frozen=True, slots=True)
class System:
    """A place personal data lives: a declared system or a collected cloud resource."""

    id: str
    party: str
    role: Role
    location: Location
    data_categories: frozenset[str] = frozenset()
    access_from: frozenset[str] = frozenset()
    regimes: frozenset[str] = frozenset()
    origin: Origin = Origin.DECLARED
    classified: bool = True
    name: str | None = None
    resource_id: str | None = None
    account: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    source_file: str | None = None
    keys: tuple[KeyRef, ...] = ()
    """The keys that encrypt its data at rest, as the collector found them (TIA step 4)."""
    pending: str | None = None
    """Why this planned resource's classification is only known at apply (RES-I005); it is
    then judged as possibly holding every classified category, its location kept."""


@_quick
@dataclass(frozen=True, slots=True)
class Flow:
    """Data moving from one system to another (declared, replicated or planned)."""

    id: str
    source: str
    target: str
    data_categories: frozenset[str] = frozenset()
    recurring: bool = True
    safeguards: tuple[Safeguard, ...] = ()
    purpose: str | None = None
    origin: Origin = Origin.DECLARED
    kind: str = "transfer"


@_quick
@dataclass(frozen=True, slots=True)
class ResidencyRule:
    """An organisation's own rule: these categories may only live in these places."""

    data_categories: frozenset[str]
    allowed: tuple[str, ...]
    include_remote_access: bool = True
    id: str | None = None


@_quick
@dataclass(frozen=True, slots=True)
class ClassificationValue:
    data_categories: frozenset[str]
    fed_by: str | None = None
    safeguards: tuple[Safeguard, ...] = ()  # for replication of resources so classified


@_quick
@dataclass(frozen=True, slots=True)
class Classification:
    """How collected resources join the map: a tag/label key and its values."""

    tag: str = "data-classification"
    values: tuple[tuple[str, ClassificationValue], ...] = ()

    def lookup(self, value: str) -> ClassificationValue | None:
        for key, item in self.values:
            if key == value:
                return item
        return None


@_quick
@dataclass(frozen=True, slots=True)
class Contact:
    """A named person or entity of an Art. 30 record, as the map gives them (never invented):
    `party` links it to a map party; `contact` is the organisation's own wording."""

    party: str | None = None
    name: str | None = None
    contact: str | None = None


@_quick
@dataclass(frozen=True, slots=True)
class ProcessingActivity:
    """One processing activity of the Art. 30 record (the map's optional `processing:`).

    `role` is the organisation's role in it: `controller` (Art. 30(1)) or `processor`
    (Art. 30(2), on behalf of `controllers`). Empty fields are gaps in the record.
    """

    id: str
    name: str
    role: Role = Role.CONTROLLER
    controller: Contact | None = None
    joint_controllers: tuple[Contact, ...] = ()
    representative: Contact | None = None
    dpo: Contact | None = None
    processor: Contact | None = None
    controllers: tuple[Contact, ...] = ()
    purposes: tuple[str, ...] = ()
    data_subjects: tuple[str, ...] = ()
    data_categories: frozenset[str] = frozenset()
    recipients: tuple[str, ...] = ()
    systems: tuple[str, ...] = ()
    retention: str | None = None
    security_measures: tuple[str, ...] = ()
    transfer_documentation: str | None = None
    """Art. 30(1)(e)/49(6): the documentation of suitable safeguards for transfers on the
    compelling-legitimate-interests ground (second subparagraph of Art. 49(1))."""


@_quick
@dataclass(frozen=True, slots=True)
class Disclosure:
    """How the organisation describes a recipient or a safeguard to data subjects
    (Art. 13(1)(f), 15(1)(c), 15(2)): its words, and where a copy can be obtained.
    Matches a party (`party`) or safeguards (`instrument`, optionally `type`/`ref`)."""

    party: str | None = None
    type: str | None = None
    instrument: str | None = None
    ref: str | None = None
    public_description: str | None = None
    copy_available_from: str | None = None


@dataclass(frozen=True, slots=True)
class DataMap:
    """The declared data map: parties, systems, flows and the organisation's rules."""

    parties: tuple[Party, ...]
    systems: tuple[System, ...]
    flows: tuple[Flow, ...]
    residency: tuple[ResidencyRule, ...] = ()
    classification: Classification = field(default_factory=Classification)
    source: str | None = None
    digest: str | None = None
    special_categories: tuple[tuple[str, str], ...] = ()
    """(category, art9 | art10): GDPR Art. 9 / Art. 10 data, from the pack's vocabulary
    and the map's own `data_categories` declarations."""
    hr_data_categories: frozenset[str] = frozenset()
    """Categories that are human-resources data (about the organisation's staff, collected in
    the employment relationship); some adequacy scopes (DPF) treat them separately."""
    activities: tuple[ProcessingActivity, ...] = ()
    """The map's optional Art. 30 processing activities (`processing:`)."""
    disclosures: tuple[Disclosure, ...] = ()
    """The map's optional `transparency:` wording for recipients and safeguards."""


@_quick
@dataclass(frozen=True, slots=True)
class CoverageGap:
    """A scope a collector could not read: reported, and turned into RES-S001."""

    provider: str
    scope: str
    reason: str


@_quick
@dataclass(frozen=True, slots=True)
class Inventory:
    """What a collector or plan reader found: systems, flows between them, gaps."""

    systems: tuple[System, ...] = ()
    flows: tuple[Flow, ...] = ()
    gaps: tuple[CoverageGap, ...] = ()


@_quick
@dataclass(frozen=True, slots=True)
class Basis:
    """What a transfer to one country relies on."""

    kind: str  # a BasisKind value
    reference: str | None = None
    source: str | None = None
    detail: str | None = None


@_quick
@dataclass(frozen=True, slots=True)
class Transfer:
    """A Chapter V transfer (or same-entity processing) found on one flow for one regime."""

    flow: str
    regime: str
    exporter: str
    importer: str
    exporter_party: str
    importer_party: str
    countries: tuple[str, ...]
    bases: tuple[tuple[str, Basis], ...]
    data_categories: tuple[str, ...]
    onward: bool
    recurring: bool
    same_entity: bool = False
    special_categories: tuple[str, ...] = ()
    """The flow's Art. 9 / Art. 10 categories (a subset of `data_categories`): they change
    no Chapter V basis but belong in the register, the TIA and the DPIA prompts."""

    @property
    def lawful(self) -> bool:
        return self.same_entity or all(b.kind != BasisKind.NONE for _, b in self.bases)


@_quick
@dataclass(frozen=True, slots=True)
class Finding:
    """One rule outcome, naming what, where, under which regime and what to do."""

    rule: str
    severity: Severity
    message: str
    subject: str
    subject_kind: str  # a SubjectKind value
    regime: str | None = None
    countries: tuple[str, ...] = ()
    instrument: str | None = None
    hint: str | None = None
    waived: bool = False
    waiver_reason: str | None = None

    @property
    def fingerprint(self) -> str:
        """Stable identity across runs and orderings (for baselines and diffs)."""
        parts = [self.rule, self.subject_kind, self.subject, self.regime or ""]
        key = "|".join([*parts, ",".join(self.countries)])
        return hashlib.sha256(key.encode()).hexdigest()[:16]


@_quick
@dataclass(frozen=True, slots=True)
class PackInfo:
    name: str
    version: str
    last_checked: dt.date
    digest: str


@_quick
@dataclass(frozen=True, slots=True)
class Report:
    """The finished result every formatter renders; nothing downstream sees the engine."""

    as_of: dt.date
    pack: PackInfo
    systems: tuple[System, ...]
    resolved: tuple[tuple[str, ResolvedLocation], ...]
    flows: tuple[Flow, ...]
    transfers: tuple[Transfer, ...]
    findings: tuple[Finding, ...]
    gaps: tuple[CoverageGap, ...] = ()
    assumed_invalid: tuple[str, ...] = ()
    map_source: str | None = None
    map_digest: str | None = None
    special_categories: tuple[tuple[str, str], ...] = ()
    """(category, art9 | art10) for the special categories the map's data include."""

    def max_severity(self, include_waived: bool = False) -> Severity | None:
        tally = self._tally(include_waived)
        return max(tally, key=lambda s: s.rank) if tally else None

    def counts(self) -> dict[str, int]:
        tally = self._tally(False)
        return {s.value: tally.get(s, 0) for s in Severity}

    def _tally(self, include_waived: bool) -> Counter[Severity]:
        """Findings per severity, counted at C speed (a severity's `.value` looked up per
        finding cost 0.18 s on 300,000 findings, ahead of every JSON report)."""
        if include_waived:
            return Counter(map(attrgetter("severity"), self.findings))
        return Counter(f.severity for f in self.findings if not f.waived)
