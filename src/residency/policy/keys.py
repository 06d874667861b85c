"""Key rules: where the keys that encrypt a store's personal data are held (RES-K001) and
who manages them (RES-K002).

Encryption at rest is a supplementary measure only while the key stays out of reach of the
destination's authorities: EDPB Recommendations 01/2020 (v2.0), step 4 and Annex 2 Use Case
1, want the keys "retained solely under the control of the data exporter, or by an entity
trusted by the exporter in the EEA or a third country ... adequate". So a key (or one of its
multi-Region replicas) held in a country outside the regime's free-flow area and without an
adequacy decision covering the key's holder is reported, and so is a store of classified data
whose only keys are the provider's own. The facts are the collectors' (`System.keys`,
provider-neutral `KeyRef`); nothing here branches on the cloud.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from residency.graph import FlowGraph
from residency.model import ANY_COUNTRY, Finding, KeyRef, Location, System
from residency.policy.pack import PolicyPack
from residency.policy.rules import RULES

#: `KeyRef.origin` values meaning the key material never sits in the provider's KMS region:
#: AWS KMS external key stores (the material stays in the customer's external key manager)
#: and external key managers of other clouds (a collector records Cloud EKM as
#: `EXTERNAL_KEY_MANAGER`, never as AWS's `EXTERNAL`, which is imported material held by KMS).
HELD_OUTSIDE_PROVIDER = frozenset({"EXTERNAL_KEY_STORE", "EXTERNAL_KEY_MANAGER"})
#: Origins held in a single-tenant HSM (AWS CloudHSM key stores, Azure Managed HSM): stronger
#: than a multi-tenant KMS key, still held in the region the key names.
HSM_ORIGINS = frozenset({"AWS_CLOUDHSM", "MANAGED_HSM"})
CUSTOMER = "CUSTOMER"


def key_findings(
    pack: PolicyPack,
    as_of: dt.date,
    graph: FlowGraph,
    base: Mapping[str, frozenset[str]],
    special: Iterable[tuple[str, str]] = (),
    assume_invalid: frozenset[str] = frozenset(),
) -> list[Finding]:
    """RES-K001 and RES-K002 for every store holding personal data whose keys are known."""
    art9 = {cat for cat, _ in special}
    out: list[Finding] = []
    for s in graph:
        held = graph.categories_held(s.id)
        if not s.keys or not held:
            continue
        regimes = base.get(s.id, frozenset()) | graph.carried_regimes(s.id, held)
        for regime in sorted(regimes):
            out.extend(_outside(pack, as_of, graph, s, regime, assume_invalid))
        finding = _provider_only(s, held & art9)
        if finding is not None:
            out.append(finding)
    return out


def key_regions(key: KeyRef) -> tuple[tuple[str, str], ...]:
    """(region, role) for every place the key's material is held: the key's own region, the
    primary of a multi-Region replica, and every replica."""
    found: dict[str, str] = {}
    if key.region:
        found[key.region] = "key"
    if key.primary_region:
        found.setdefault(key.primary_region, "primary")
    for region in key.replica_regions:
        found.setdefault(region, "replica")
    return tuple(found.items())


def _outside(pack: PolicyPack, as_of: dt.date, graph: FlowGraph, s: System, regime: str,
             assume_invalid: frozenset[str]) -> list[Finding]:
    """One RES-K001 per store and regime, naming every key place outside the area."""
    area = pack.free_flow_area(regime)
    holder = graph.party_of(s)  # the provider (or its affiliate) runs the key service
    bad: dict[str, list[str]] = {}
    for key in s.keys:
        label = key.arn or key.key
        if (key.origin or "") in HSM_ORIGINS:
            label += f" [{key.origin}]"
        if not key.key or (key.origin or "") in HELD_OUTSIDE_PROVIDER:
            continue  # the service's own key in the store's region, or held outside it
        places = key_regions(key)
        if not places:
            bad.setdefault(ANY_COUNTRY, []).append(
                f"{label}: location unknown ({key.unknown_reason or 'no region reported'})")
            continue
        for region, role in places:
            loc = pack.resolve(Location(provider=s.location.provider, regions=(region,)))
            if not loc.known or loc.any_country:
                bad.setdefault(ANY_COUNTRY, []).append(f"{label} ({role} in {region}: "
                                                       f"{loc.unresolved or 'any country'})")
                continue
            for country in sorted(loc.countries - area):
                decision = pack.adequacy(regime, country, as_of, holder, assume_invalid)
                if decision.decision is None:
                    bad.setdefault(country, []).append(f"{label} ({role} in {region})")
    if not bad:
        return []
    countries = tuple(sorted(c for c in bad if c != ANY_COUNTRY)) + (
        (ANY_COUNTRY,) if ANY_COUNTRY in bad else ())
    where = "; ".join(f"{c}: {', '.join(dict.fromkeys(bad[c]))}" for c in countries)
    return [_finding("RES-K001", s, f"{s.id} is encrypted with a key held outside the "
                     f"{regime} area without adequacy: {where}; the encryption is no "
                     "supplementary measure against that country's authorities",
                     regime=regime, countries=countries)]


def _provider_only(s: System, art9: frozenset[str] | set[str]) -> Finding | None:
    """RES-K002: every key the store names is managed by the provider (AWS managed or
    owned, Microsoft- or Google-managed): the provider can decrypt on its own."""
    managers = {(k.key_manager or "").upper() for k in s.keys}
    if "" in managers or CUSTOMER in managers:
        return None  # a customer-managed key, or one whose manager is unknown
    special = (f"; it holds special-category data ({', '.join(sorted(art9))})"
               if art9 else "")
    names = ", ".join(sorted({k.arn or k.key or (k.algorithm or "service-owned key")
                              for k in s.keys}))
    return _finding("RES-K002", s, f"{s.id} is encrypted only with provider-managed keys "
                    f"({names}){special}; a TIA that relies on encryption needs a "
                    "customer-managed key, ideally in an HSM or external key store")


def _finding(rule_id: str, s: System, message: str, *, regime: str | None = None,
             countries: tuple[str, ...] = ()) -> Finding:
    r = RULES[rule_id]
    return Finding(rule=rule_id, severity=r.severity, message=message, subject=s.id,
                   subject_kind="system", regime=regime, countries=countries,
                   hint=r.remediation)


__all__ = ["HELD_OUTSIDE_PROVIDER", "HSM_ORIGINS", "key_findings", "key_regions"]
