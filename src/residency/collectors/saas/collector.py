"""`SaasCollector`: helpdesk tenants → systems located where the vendor says, plus the
vendor's sub-processors as onward flows.

Units of work, each failing into its own `CoverageGap` (never into an empty result):
one per observed tenant (an API call), one per sub-processor list fetched from a URL.
A tenant's system is `saas:<vendor>:<tenant>` (`:<workspace>` for Atlassian), party the
vendor id (declare a party with that id in the map to give its country and certifications),
located at explicit countries resolved through `policies/saas/<vendor>.yaml`; a code the
table does not know is an unknown location with the reason (RES-L001, fail closed).

Attested locations (vendors whose API gives none: Zendesk, ServiceNow) come from a file and
are tagged `residency:location-source=attested`, never observed. An attestation past its
`valid_until` keeps its system but with an unknown location naming the expiry, so RES-L001
fails the scan closed (a gap would drop the tenant and its sub-processors from the graph).

Each sub-processor is a system `saas:<vendor>:subprocessor:<slug>` (stable across runs, so
`residency diff` shows one that appears), party the same id, located at the list's
countries, fed by a `subprocessor` flow from every tenant of that vendor the list covers
(`applies_to`: a list published for one hosting region). Without a list from the map, the
pack's newest dated copy is used; one older than `subprocessors/policy.yaml` allows is
tagged `residency:evidence-stale` (the engine's RES-S002 warning), and a list not read on
the vendor's own page `saas:subprocessor-list-verified=false`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from residency.collectors import _faults
from residency.collectors.interface import CollectContext, Collector, replication_flow
from residency.collectors.saas._http import HttpClient, HttpError
from residency.collectors.saas._tables import (
    Attestation,
    Resolved,
    Subprocessor,
    SubprocessorList,
    Tables,
    parse_subprocessors,
    read_shipped,
    read_subprocessors,
    shipped_max_age,
    shipped_subprocessors,
)
from residency.collectors.saas._vendor import Observation, Vendor
from residency.errors import InputError
from residency.model import (
    EVIDENCE_STALE_TAG,
    CoverageGap,
    Flow,
    Inventory,
    Location,
    Origin,
    Role,
    System,
)
from residency.policy.pack import PolicyPack
from residency.redact import MASK

TAG_SOURCE = "residency:location-source"
TAG_VENDOR = "saas:vendor"
TAG_CODE = "saas:location-code"
TAG_TABLE = "saas:location-table"
TAG_SIGNAL = "saas:signal"
TAG_VERIFIED = "saas:location-verified"
TAG_EVIDENCE = "saas:evidence"
TAG_ATTESTED_BY = "saas:attested-by"
TAG_VALID_UNTIL = "saas:valid-until"
TAG_LIST = "saas:subprocessor-list"
TAG_LIST_VERIFIED = "saas:subprocessor-list-verified"
TAG_LIST_STALE = EVIDENCE_STALE_TAG  # the engine reports it (RES-S002)
OBSERVED, ATTESTED = "observed", "attested"


@dataclass(frozen=True, slots=True)
class Tenant:
    vendor: str
    tenant: str


@dataclass(frozen=True, slots=True)
class SubprocessorSource:
    """Where one vendor's sub-processor list comes from: a file, a URL or the shipped copy."""

    vendor: str
    ref: str  # a path or an http(s) URL
    shipped: bool = False  # the pack's dated copy (checked for age)

    @property
    def is_url(self) -> bool:
        return self.ref.startswith(("https://", "http://"))


def slug(name: str) -> str:
    """`Amazon Web Services, Inc.` → `amazon-web-services-inc`: a stable id part."""
    return re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-") or "unnamed"


def system_id(vendor: str, tenant: str, key: str = "") -> str:
    base = f"saas:{vendor}:{tenant.strip().casefold()}"
    return f"{base}:{key}" if key else base


def subprocessor_id(vendor: str, name: str) -> str:
    return f"saas:{vendor}:subprocessor:{slug(name)}"


Parts = tuple[list[System], list[Flow], list[CoverageGap]]


class SaasCollector(Collector):
    """Observed tenants, attested tenants and sub-processor lists → one inventory."""

    provider = "saas"

    def __init__(
        self,
        pack: PolicyPack,
        vendors: Mapping[str, Vendor],
        tenants: Iterable[Tenant] = (),
        *,
        tokens: Mapping[str, str] | None = None,
        endpoints: Mapping[str, str] | None = None,
        attested: Iterable[Attestation] = (),
        attested_source: str = "",
        subprocessors: Iterable[SubprocessorSource] = (),
        classification: str | None = None,
        http: HttpClient | None = None,
        today: Callable[[], dt.date] = dt.date.today,
    ) -> None:
        self._pack = pack
        self._tables = Tables.load(pack)
        self._vendors = dict(vendors)
        self._tenants = tuple(dict.fromkeys(tenants))
        self._tokens = dict(tokens or {})
        self._endpoints = dict(endpoints or {})
        self._attested = tuple(attested)
        self._attested_source = attested_source
        self._lists = {s.vendor: s for s in subprocessors}
        self._classification = classification
        self._http = http or HttpClient()
        self._today = today
        for t in self._tenants:
            if t.vendor not in self._vendors:
                raise InputError(None, "--saas", f"unknown vendor {t.vendor!r}; vendors whose "
                                 f"API reports a location: {', '.join(sorted(self._vendors))} "
                                 "(others: --saas-attested)")

    # ------------------------------------------------------------------ entry
    def collect(self, ctx: CollectContext) -> Inventory:
        tenants = [t for t in self._tenants if ctx.wants(system_id(t.vendor, t.tenant))]
        attested = [a for a in self._attested if ctx.wants(system_id(a.vendor, a.tenant))]
        workers = max(1, min(ctx.workers, len(tenants) or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(lambda t: self._tenant(t, ctx), tenants))
        systems = [s for p in parts for s in p[0]]
        flows = [f for p in parts for f in p[1]]
        gaps = [g for p in parts for g in p[2]]
        for item in attested:
            system, fed = self._attestation(item, ctx)
            systems.append(system)
            flows.extend(fed)
        by_vendor: dict[str, list[System]] = {}
        for s in systems:
            by_vendor.setdefault(dict(s.tags)[TAG_VENDOR], []).append(s)
        for vendor, held in sorted(by_vendor.items()):
            sub_systems, sub_flows, sub_gaps = self._subprocessors(vendor, held)
            systems.extend(sub_systems)
            flows.extend(sub_flows)
            gaps.extend(sub_gaps)
        return Inventory(tuple(systems), tuple(flows), tuple(gaps))

    # ------------------------------------------------------------------ observed
    def _tenant(self, t: Tenant, ctx: CollectContext) -> Parts:
        vendor = self._vendors[t.vendor]
        token = self._tokens.get(t.vendor, "")
        systems: list[System] = []
        flows: list[Flow] = []
        gaps: list[CoverageGap] = []
        try:
            found = vendor.observe(self._http, t.tenant, token, self._endpoints.get(t.vendor))
            for obs in found:
                system, fed = self._observed(vendor, t, obs, ctx)
                systems.append(system)
                flows.extend(fed)
        except Exception as exc:
            gaps.append(CoverageGap(t.vendor, f"tenant {t.tenant}",
                                    _faults.reason(exc, _describe, _scrubber(token))))
        if ctx.progress is not None:
            ctx.progress(f"{t.vendor} {t.tenant}", 1)
        return systems, flows, gaps

    def _observed(self, vendor: Vendor, t: Tenant, obs: Observation,
                  ctx: CollectContext) -> tuple[System, list[Flow]]:
        resolved = self._tables.resolve(t.vendor, obs.code) if obs.code else \
            Resolved(frozenset(), obs.unknown or "no location reported")
        reason = obs.unknown or resolved.reason
        tags = {TAG_SOURCE: OBSERVED, TAG_VENDOR: t.vendor, TAG_SIGNAL: vendor.signal,
                TAG_CODE: obs.code, TAG_TABLE: resolved.table,
                **{k: v for k, v in obs.tags if v}}
        if not resolved.verified:
            tags[TAG_VERIFIED] = "false"
        where = f" ({obs.code})" if obs.code else ""
        return self._system(
            system_id(t.vendor, t.tenant, obs.key), t.vendor,
            f"{vendor.title} {obs.name}{where}", obs.account or t.tenant,
            resolved.countries, f"{t.vendor} {t.tenant}: {reason}" if reason else None,
            tags, ctx)

    # ------------------------------------------------------------------ attested
    def _attestation(self, a: Attestation, ctx: CollectContext) -> tuple[System, list[Flow]]:
        where = self._attested_source or "--saas-attested"
        if a.code is not None:
            resolved = self._tables.resolve(a.vendor, a.code)
        else:
            resolved = Resolved(self._pack.expand(a.countries))
        reason = f"{a.vendor} {a.tenant}: {resolved.reason}" if resolved.reason else None
        if a.valid_until < self._today():
            reason = (f"attested location of {a.vendor} {a.tenant} expired on "
                      f"{a.valid_until.isoformat()} ({a.evidence.kind} {a.evidence.ref}, "
                      f"attested by {a.attested_by}, {where}): re-attest it")
        tags = {TAG_SOURCE: ATTESTED, TAG_VENDOR: a.vendor,
                TAG_EVIDENCE: f"{a.evidence.kind}: {a.evidence.ref}",
                TAG_ATTESTED_BY: a.attested_by, TAG_VALID_UNTIL: a.valid_until.isoformat(),
                TAG_CODE: a.code or ",".join(a.countries)}
        if a.code is not None:
            tags[TAG_TABLE] = resolved.table
        return self._system(
            system_id(a.vendor, a.tenant), a.vendor,
            a.name or f"{a.vendor} {a.tenant} (attested)", a.tenant, resolved.countries,
            reason, tags, ctx)

    # ------------------------------------------------------------------ shared
    def _system(self, sid: str, vendor: str, name: str, account: str,
                countries: frozenset[str], unknown: str | None, tags: dict[str, str],
                ctx: CollectContext) -> tuple[System, list[Flow]]:
        value = self._classification
        cls = ctx.classification.lookup(value) if value is not None else None
        if value is not None:
            tags = {ctx.classification.tag: value, **tags}
        location = Location(unknown_reason=_faults.shorten(unknown)) if unknown else \
            Location(countries=countries)
        system = System(
            id=sid, party=vendor, role=Role.PROCESSOR, location=location,
            data_categories=cls.data_categories if cls else frozenset(),
            origin=Origin.COLLECTED, classified=value is not None, name=name,
            resource_id=sid, account=account, tags=tuple(sorted(tags.items())),
        )
        flows: list[Flow] = []
        if cls is not None and cls.fed_by:
            flows.append(Flow(id=f"{cls.fed_by}->{sid}", source=cls.fed_by, target=sid,
                              data_categories=cls.data_categories, origin=Origin.COLLECTED,
                              kind="storage"))
        return system, flows

    # ------------------------------------------------------------------ sub-processors
    def _subprocessors(self, vendor: str, tenants: list[System]) -> Parts:
        source = self._lists.get(vendor)
        if source is None:
            shipped = shipped_subprocessors(self._pack, vendor)
            if shipped is None:
                return [], [], []
            source = SubprocessorSource(vendor, str(shipped), shipped=True)
        try:
            found = self._read_list(source)
        except InputError:
            raise  # a user's file that is not a list is exit 2, not a finding
        except Exception as exc:
            return [], [], [CoverageGap(vendor, f"sub-processor list {source.ref}",
                                        _faults.reason(exc, _describe))]
        if found.vendor != vendor:
            raise InputError(source.ref, "vendor", f"is {found.vendor!r}, but the list was "
                             f"given for {vendor!r}")
        covered = [t for t in tenants if _covers(found, t)]
        if not covered:
            return [], [], []
        tags = self._list_tags(found, source)
        systems: list[System] = []
        flows: list[Flow] = []
        seen: set[str] = set()
        for sub in found.subprocessors:
            sid = subprocessor_id(vendor, sub.name)
            if sid in seen:
                continue
            seen.add(sid)
            systems.append(self._subprocessor(vendor, sid, sub, tags))
            flows.extend(replication_flow(t, sid, kind="subprocessor") for t in covered)
        return systems, flows, []

    def _list_tags(self, found: SubprocessorList, source: SubprocessorSource) -> dict[str, str]:
        """What every system of the list carries: where the list came from, whether it was
        read on the vendor's page, and (a shipped copy) whether it is older than the pack
        allows: the vendor may have added sub-processors since."""
        tags = {TAG_SOURCE: "published-list", TAG_VENDOR: found.vendor,
                TAG_LIST: f"{found.source} (retrieved {found.retrieved.isoformat()})"}
        if not found.verified:
            tags[TAG_LIST_VERIFIED] = "false"
        if source.shipped:
            age = (self._today() - found.retrieved).days
            limit = shipped_max_age(self._pack)
            if age > limit:
                tags[TAG_LIST_STALE] = (f"the shipped list was retrieved "
                                        f"{found.retrieved.isoformat()}, {age} days ago (more "
                                        f"than {limit}): compare it with {found.source}")
        return tags

    def _subprocessor(self, vendor: str, sid: str, sub: Subprocessor,
                      list_tags: dict[str, str]) -> System:
        tags = dict(list_tags)
        if sub.purpose:
            tags["saas:purpose"] = sub.purpose
        if sub.entity_country:
            tags["saas:entity-country"] = sub.entity_country
        return System(
            id=sid, party=sid, role=Role.PROCESSOR,
            location=Location(countries=self._pack.expand(sub.countries)),
            origin=Origin.COLLECTED, classified=True,
            name=f"{sub.name} (sub-processor of {vendor}"
                 f"{': ' + sub.purpose if sub.purpose else ''})",
            resource_id=sid, account=sub.entity or sub.name,
            tags=tuple(sorted(tags.items())),
        )

    def _read_list(self, source: SubprocessorSource) -> SubprocessorList:
        if source.shipped:
            return read_shipped(self._pack, Path(source.ref))
        if source.is_url:
            return parse_subprocessors(self._pack, self._http.get_bytes(source.ref),
                                       source.ref)
        return read_subprocessors(self._pack, Path(source.ref))


def _covers(found: SubprocessorList, tenant: System) -> bool:
    """A list naming the location codes it applies to covers only tenants reported there."""
    if not found.applies_to:
        return True
    code = dict(tenant.tags).get(TAG_CODE, "").casefold()
    return code in {c.casefold() for c in found.applies_to}


def _scrubber(secret: str) -> Callable[[str], str]:
    """Removes the tenant's own token (and a long slice of it) from a reason: a vendor or a
    proxy may echo what it was sent, in a shape `redact` cannot recognise."""

    def scrub(text: str) -> str:
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
            if len(secret) >= 16:
                for i in range(0, len(secret) - 8, 4):
                    text = text.replace(secret[i:i + 8], MASK)
        return text

    return scrub


def _describe(exc: BaseException) -> str | None:
    """The vendor's own words for an HTTP refusal; None lets the generic wording speak."""
    if not isinstance(exc, HttpError):
        if isinstance(exc, TimeoutError):
            return f"no answer in time (timed out): {_faults.first_line(exc) or 'timeout'}"
        return None
    why = {401: "credentials refused", 403: "permission denied", 404: "tenant not found",
           429: "rate limited"}.get(exc.status, "vendor error" if exc.status >= 500 else
                                    "refused")
    if "REQUEST_LIMIT_EXCEEDED" in exc.message:  # Salesforce's API limit is a 403
        why = "rate limited"
    after = f", Retry-After {round(exc.retry_after, 1):g} s" if exc.retry_after is not None else ""
    return f"{why} (HTTP {exc.status}{after})" + (f": {exc.message}" if exc.message else "")
