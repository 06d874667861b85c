"""Schema of the declared data map (`residency.yaml` / `.json`): the public contract.

Extend it, never rename a key. Validation is strict (unknown keys are errors) so a typo
cannot silently drop a safeguard.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from residency._io import BoundedDate


def _echo_date(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A date the schema cannot parse is reported with the value given, so the user sees
    which of many dates is wrong (pydantic's own message does not quote it)."""
    try:
        return handler(value)
    except ValidationError as exc:
        if any(e["type"] == "value_error" for e in exc.errors()):
            raise  # check_date's range message already names the date
        raise PydanticCustomError(
            "date_parsing", "{value} is not a date (expected YYYY-MM-DD)", {"value": repr(value)}
        ) from None


MapDate = Annotated[BoundedDate, WrapValidator(_echo_date)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PartyIn(_Strict):
    id: str = Field(min_length=1)
    name: str
    country: str
    certifications: list[str] = Field(default_factory=list)
    subject_to: list[str] = Field(default_factory=list)
    group: str | None = None
    public_authority: bool = False  # exercising public powers: GDPR Art. 49(3)


class LocationIn(_Strict):
    country: str | None = None
    countries: list[str] | None = None
    provider: str | None = None
    region: str | None = None
    regions: list[str] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> LocationIn:
        explicit = self.country is not None or self.countries is not None
        cloud = self.provider is not None or self.region is not None or self.regions is not None
        if explicit == cloud:
            raise ValueError(
                "give either country/countries or provider with region/regions"
            )
        if cloud and (self.provider is None or (self.region is None and not self.regions)):
            raise ValueError("a cloud location needs both provider and region")
        if self.country is not None and self.countries is not None:
            raise ValueError("give country or countries, not both")
        return self


class SystemIn(_Strict):
    id: str = Field(min_length=1)
    party: str
    role: Literal["controller", "processor"]
    location: LocationIn
    data_categories: list[str] = Field(default_factory=list)
    # a country (the system's own party reaches it from there), or an accessor: another
    # party reading the system from a country is a transfer to that party
    access_from: list[str | AccessIn] = Field(default_factory=list)
    regimes: list[str] = Field(default_factory=list)
    name: str | None = None
    description: str | None = None


class TiaIn(_Strict):
    ref: str
    date: MapDate | None = None


class SafeguardIn(_Strict):
    type: str
    instrument: str | None = None
    module: int | None = None
    signed: MapDate | None = None
    expires: MapDate | None = None
    article: str | None = None
    ref: str | None = None
    approved_by: str | None = None
    approved: MapDate | None = None
    tia: TiaIn | None = None
    # derogation conditions declared met (e.g. authority_informed for the residual ground)
    conditions: list[str] = Field(default_factory=list)
    # SCC Module 4: the EU processor combines the controller's data with EU-collected data
    combines_eu_data: bool = False


class AccessIn(_Strict):
    """`access_from: [{country: IN, party: deskco-india}]`: my processor's affiliate in India
    reads this system, a transfer to that affiliate, with its own safeguards."""

    country: str
    party: str
    role: Literal["controller", "processor"] = "processor"
    safeguards: list[SafeguardIn] = Field(default_factory=list)
    recurring: bool = True


class FlowIn(_Strict):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    id: str = Field(min_length=1)
    source: str = Field(alias="from")
    target: str = Field(alias="to")
    data_categories: list[str] = Field(default_factory=list)
    recurring: bool = True
    safeguards: list[SafeguardIn] = Field(default_factory=list)
    purpose: str | None = None


class ResidencyRuleIn(_Strict):
    id: str | None = None
    data_categories: list[str] = Field(min_length=1)
    allowed: list[str] = Field(min_length=1)
    include_remote_access: bool = True


class ClassificationValueIn(_Strict):
    data_categories: list[str] = Field(default_factory=list)
    fed_by: str | None = None
    safeguards: list[SafeguardIn] = Field(default_factory=list)


class ClassificationIn(_Strict):
    tag: str = "data-classification"
    values: dict[str, ClassificationValueIn] = Field(default_factory=dict)


class CategoryIn(_Strict):
    description: str | None = None
    special: Literal["art9", "art10"] | None = None


class ContactIn(_Strict):
    """A party of an Art. 30 record: a map party (`party`) and/or a name, with contact details
    in the organisation's words (Art. 30(1)(a), 30(2)(a))."""

    party: str | None = None
    name: str | None = None
    contact: str | None = None


class ProcessingIn(_Strict):
    """One processing activity of the Art. 30 record (optional; see README "Art. 30 record").
    `role`: the organisation's role in it (controller: Art. 30(1); processor: Art. 30(2))."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    role: Literal["controller", "processor"] = "controller"
    controller: ContactIn | None = None  # 30(1)(a): the controller (us, when role=controller)
    joint_controllers: list[ContactIn] = []  # 30(1)(a)
    representative: ContactIn | None = None  # 30(1)(a)/30(2)(a): Art. 27 representative
    dpo: ContactIn | None = None  # 30(1)(a)/30(2)(a): data protection officer
    processor: ContactIn | None = None  # 30(2)(a): the processor (us, when role=processor)
    controllers: list[ContactIn] = []  # 30(2)(a): each controller we act for
    purposes: list[str] = []  # 30(1)(b); for a processor, 30(2)(b) categories of processing
    data_subjects: list[str] = []  # 30(1)(c): types of data subject (customers, staff, ...)
    data_categories: list[str] = []  # 30(1)(c): from the vocabulary
    recipients: list[str] = []  # 30(1)(d): categories of recipient, in the map's words
    systems: list[str] = []  # the map's systems this activity uses (transfers derive from them)
    retention: str | None = None  # 30(1)(f): envisaged time limits for erasure
    security_measures: list[str] = []  # 30(1)(g)/30(2)(d): Art. 32(1) measures
    transfer_documentation: str | None = None  # 30(1)(e)/49(6): residual-ground safeguards


class DisclosureIn(_Strict):
    """How a recipient (`party`) or a safeguard (`instrument`, optionally `type`/`ref`) is
    described to data subjects, and where a copy of the safeguard can be obtained."""

    party: str | None = None
    type: str | None = None
    instrument: str | None = None
    ref: str | None = None
    public_description: str | None = None
    copy_available_from: str | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> DisclosureIn:
        if (self.party is None) == (self.instrument is None and self.type is None):
            raise ValueError("name either a party or a safeguard (instrument and/or type)")
        return self


class TransparencyIn(_Strict):
    recipients: list[DisclosureIn] = Field(default_factory=list)
    safeguards: list[DisclosureIn] = Field(default_factory=list)


class DataMapIn(_Strict):
    version: Literal[1]
    # The map's own vocabulary beyond the policy pack's (`policies/vocabulary.yaml`): every
    # category or qualification named anywhere must be one of these or known to the pack.
    data_categories: list[str] | dict[str, CategoryIn | None] = Field(default_factory=list)
    qualifications: list[str] | dict[str, str | None] = Field(default_factory=list)
    parties: list[PartyIn] = Field(default_factory=list)
    systems: list[SystemIn] = Field(default_factory=list)
    flows: list[FlowIn] = Field(default_factory=list)
    residency: list[ResidencyRuleIn] = Field(default_factory=list)
    classification: ClassificationIn = ClassificationIn()
    hr_data_categories: list[str] = Field(default_factory=list)
    # the Art. 30 record and subject-access answers (optional; reports only, never the engine)
    processing: list[ProcessingIn] = Field(default_factory=list)
    transparency: TransparencyIn = TransparencyIn()

    @field_validator("parties", "systems", "flows", "residency", mode="before")
    @classmethod
    def _empty_section(cls, value: object) -> object:
        """A section whose entries are all commented out reads as null: treat as empty."""
        return [] if value is None else value
