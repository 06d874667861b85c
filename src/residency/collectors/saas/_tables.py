"""The SaaS collectors' data: vendor location tables, sub-processor lists, attestations.

`policies/saas/<vendor>.yaml` maps the code a vendor reports (a data centre, a hosting
location, a realm, an instance) to the countries it stands for, each with its source, like
the cloud region tables; `policies/saas/subprocessors/<vendor>-YYYY-MM-DD.yaml` are dated
copies of a vendor's published sub-processor list (source, retrieval date, `verified`), and
`subprocessors/policy.yaml` says how old a copy may be before it is reported stale. The
pack loader does not read these files: they are loaded here from `PolicyPack.root`,
strictly validated, every country checked against the pack (ISO codes or the pack's groups
such as `EU`). A bad file is an `InputError` (exit 2)
naming the file and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from residency._io import BoundedDate, parse_json, parse_yaml, read_document, validate
from residency.errors import InputError, PolicyError
from residency.policy.pack import PolicyPack

Url = Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
VendorId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,40}$")]

SAAS_DIR = "saas"
SUBPROCESSOR_DIR = "subprocessors"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Strict):
    title: str
    url: Url


class CodeEntry(_Strict):
    """What one vendor code stands for. `verified: false` marks a mapping whose countries
    come from a source other than the vendor's own documentation (reported on the system)."""

    countries: list[str] = Field(min_length=1)
    name: str = ""
    source: Url
    verified: bool = True
    note: str = ""


class Signal(_Strict):
    """Where the collector reads the code: the call, the field, and the vendor's page."""

    call: str
    field: str
    source: Url
    note: str = ""


class VendorTable(_Strict):
    vendor: VendorId
    name: str
    retrieved: BoundedDate
    signal: Signal | None = None
    sources: list[Source] = []
    codes: dict[str, CodeEntry] = {}
    prefixes: dict[str, CodeEntry] = {}
    """Instance-name prefixes (`CHN` for `CHN12`, `CHN12S`): a prefix followed by digits and
    an optional letter."""
    note: str = ""


class Subprocessor(_Strict):
    name: Name
    countries: list[str] = Field(min_length=1)
    purpose: str = ""
    entity: str = ""
    entity_country: str | None = None


class SubprocessorList(_Strict):
    vendor: VendorId
    retrieved: BoundedDate
    source: Url
    subprocessors: list[Subprocessor]
    verified: bool = True
    """`false`: the entries were not read on the vendor's own page (reported on each system)."""
    applies_to: list[str] = []
    """The vendor location codes (as the tenant reports them) the list covers; empty: every
    tenant. Vendors publish one list per hosting region (Intercom: US, EU, AU)."""
    note: str = ""


class ShippedPolicy(_Strict):
    """`policies/saas/subprocessors/policy.yaml`: how old a shipped list may be."""

    max_age_days: int = Field(ge=1, le=3650)
    note: str = ""


SHIPPED_NAME = re.compile(r"^(?P<vendor>[a-z][a-z0-9-]{1,40})-(?P<day>\d{4}-\d{2}-\d{2})$")
DEFAULT_MAX_AGE_DAYS = 180


EvidenceKind = Literal["contract_clause", "admin_screenshot", "data_locality_addon"]


class Evidence(_Strict):
    kind: EvidenceKind
    ref: Name


class Attestation(_Strict):
    """A location nobody can read from the vendor's API, attested by a person with
    evidence, until a date."""

    vendor: VendorId
    tenant: Name
    countries: list[str] = []
    code: str | None = None
    evidence: Evidence
    attested_by: Name
    valid_until: BoundedDate
    name: str = ""


class AttestedFile(_Strict):
    attested: list[Attestation] = Field(min_length=1)


class Secret(_Strict):
    token: str = Field(min_length=1, repr=False)


class SecretsFile(_Strict):
    secrets: dict[VendorId, Secret]


@dataclass(frozen=True, slots=True)
class Resolved:
    """A vendor code resolved through its table: countries, or why not."""

    countries: frozenset[str]
    reason: str | None = None
    verified: bool = True
    table: str = ""


class Tables:
    """Every `policies/saas/<vendor>.yaml` of a pack, validated against its countries."""

    def __init__(self, pack: PolicyPack, tables: dict[str, tuple[VendorTable, Path]]) -> None:
        self.pack = pack
        self._tables = tables

    @classmethod
    def load(cls, pack: PolicyPack) -> Tables:
        folder = pack.root / SAAS_DIR
        tables: dict[str, tuple[VendorTable, Path]] = {}
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            table = validate(VendorTable, read_document(path, PolicyError), path, PolicyError)
            if path.stem != table.vendor:
                raise PolicyError(str(path), "vendor", f"{table.vendor!r} does not match the "
                                  f"file name (expected {path.stem!r})")
            for kind, entries in (("codes", table.codes), ("prefixes", table.prefixes)):
                for code, entry in entries.items():
                    check_countries(pack, entry.countries, str(path), f"{kind}.{code}.countries",
                                    PolicyError)
            tables[table.vendor] = (table, path)
        return cls(pack, tables)

    def table(self, vendor: str) -> VendorTable | None:
        found = self._tables.get(vendor)
        return found[0] if found else None

    def path(self, vendor: str) -> str:
        """The table's name as reports show it (`policies/saas/hubspot.yaml`): the same on
        every machine, unlike the absolute path."""
        return f"policies/{SAAS_DIR}/{vendor}.yaml"

    def resolve(self, vendor: str, code: str) -> Resolved:
        """The countries `code` stands for; an unknown code fails closed with the reason."""
        where = self.path(vendor)
        table = self.table(vendor)
        if table is None:
            return Resolved(frozenset(), f"no location table for {vendor} ({where})", table=where)
        key = code.strip().casefold()
        entry = next((e for c, e in table.codes.items() if c.casefold() == key), None)
        if entry is None:
            entry = next((e for p, e in sorted(table.prefixes.items(), key=lambda i: -len(i[0]))
                          if re.fullmatch(rf"{re.escape(p.casefold())}\d+[a-z]?", key)), None)
        if entry is None:
            return Resolved(frozenset(), f"{vendor} reported location {code!r}, which is not in "
                            f"{where}", table=where)
        return Resolved(self.pack.expand(entry.countries), verified=entry.verified, table=where)


def check_countries(pack: PolicyPack, names: list[str], path: str, key: str,
                    error: type[InputError]) -> None:
    for i, name in enumerate(names):
        if name not in pack.known_places and not pack.is_group(name):
            raise error(path, f"{key}[{i}]", f"unknown country or group {name!r} (ISO 3166 "
                        f"alpha-2 codes, or one of {', '.join(pack.group_names)})")


def shipped_subprocessors(pack: PolicyPack, vendor: str) -> Path | None:
    """The newest dated copy of `vendor`'s published sub-processor list shipped with the pack
    (`policies/saas/subprocessors/<vendor>-YYYY-MM-DD.yaml`, the date it was retrieved), if
    any."""
    folder = pack.root / SAAS_DIR / SUBPROCESSOR_DIR
    found = [(m["day"], p) for p in (folder.glob(f"{vendor}-*.yaml") if folder.is_dir() else [])
             if (m := SHIPPED_NAME.match(p.stem)) and m["vendor"] == vendor]
    return max(found)[1] if found else None


def shipped_max_age(pack: PolicyPack) -> int:
    """Days a shipped list may age before it is reported stale (the pack's default)."""
    path = pack.root / SAAS_DIR / SUBPROCESSOR_DIR / "policy.yaml"
    if not path.is_file():
        return DEFAULT_MAX_AGE_DAYS
    found: ShippedPolicy = validate(ShippedPolicy, read_document(path, PolicyError), path,
                                    PolicyError)
    return found.max_age_days


def read_shipped(pack: PolicyPack, path: Path) -> SubprocessorList:
    """A shipped list: its file name's date is its `retrieved` date, and it says explicitly
    whether it was read on the vendor's own page (`verified`)."""
    doc = read_document(path, PolicyError)
    found: SubprocessorList = validate(SubprocessorList, doc, path, PolicyError)
    match = SHIPPED_NAME.match(path.stem)
    if match is None or match["day"] != found.retrieved.isoformat():
        raise PolicyError(str(path), "retrieved", f"{found.retrieved.isoformat()} does not match "
                          f"the file name (expected {found.vendor}-<retrieved>.yaml)")
    if "verified" not in found.model_fields_set:
        raise PolicyError(str(path), "verified", "a shipped list says whether it was read on "
                          "the vendor's own page (true) or not (false)")
    return _subprocessors(pack, doc, str(path), path, PolicyError)


def read_subprocessors(pack: PolicyPack, path: Path) -> SubprocessorList:
    return _subprocessors(pack, read_document(path, InputError), str(path), path)


def parse_subprocessors(pack: PolicyPack, data: bytes, where: str) -> SubprocessorList:
    """A list fetched from a URL: JSON if it parses as JSON, else YAML (safe loader)."""
    text = data.lstrip()
    doc = parse_json(data, where) if text[:1] in (b"{", b"[") else parse_yaml(data, where)
    return _subprocessors(pack, doc, where, Path(where))


def _subprocessors(pack: PolicyPack, doc: Any, where: str, path: Path,
                   error: type[InputError] = InputError) -> SubprocessorList:
    found: SubprocessorList = validate(SubprocessorList, doc, path, error)
    for i, sub in enumerate(found.subprocessors):
        check_countries(pack, sub.countries, where, f"subprocessors[{i}].countries", error)
        if sub.entity_country is not None:
            check_countries(pack, [sub.entity_country], where,
                            f"subprocessors[{i}].entity_country", error)
    return found


def read_attested(pack: PolicyPack, path: Path) -> AttestedFile:
    found: AttestedFile = validate(AttestedFile, read_document(path), path)
    for i, item in enumerate(found.attested):
        key = f"attested[{i}]"
        if bool(item.countries) == (item.code is not None):
            raise InputError(str(path), key, "give either countries or code (a vendor code "
                             "resolved through policies/saas/<vendor>.yaml), not both or neither")
        check_countries(pack, item.countries, str(path), f"{key}.countries", InputError)
    return found


def read_secrets(path: Path) -> SecretsFile:
    found: SecretsFile = validate(SecretsFile, read_document(path), path)
    return found
