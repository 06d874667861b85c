"""Small synthetic reports for history tests (the store and diff never look at the law)."""

from __future__ import annotations

import datetime as dt

from residency.model import (
    Basis,
    CoverageGap,
    Finding,
    Flow,
    KeyRef,
    Location,
    Origin,
    PackInfo,
    Report,
    ResolvedLocation,
    Role,
    Safeguard,
    Severity,
    System,
    Tia,
    Transfer,
)

KEY = KeyRef("alias/crm", "aws:kms", "arn:aws:kms:us-east-1:111:key/mrk-1", "us-east-1", "111",
             multi_region=True, primary_region="us-east-1", replica_regions=("eu-west-1",),
             origin="AWS_KMS", key_manager="CUSTOMER")
PACK = PackInfo("test-pack", "2025.1", dt.date(2025, 1, 1), "abc123")


def transfer(flow: str, country: str, cats: tuple[str, ...] = ("contact_details",),
             basis: str = "adequacy", ref: str | None = "dec-1", regime: str = "eu_gdpr",
             exporter: str = "app", importer: str = "db") -> Transfer:
    return Transfer(flow, regime, exporter, importer, "acme", "vendor", (country,),
                    ((country, Basis(basis, ref, "https://example.org", "detail")),),
                    cats, onward=False, recurring=True)


def finding(rule: str, subject: str, severity: Severity = Severity.ERROR,
            countries: tuple[str, ...] = ("US",)) -> Finding:
    return Finding(rule, severity, f"{subject}: {rule}", subject, "flow", "eu_gdpr", countries)


def make_report(
    transfers: tuple[Transfer, ...] = (),
    findings: tuple[Finding, ...] = (),
    n_transfers: int = 0,
) -> Report:
    app = System("app", "acme", Role.CONTROLLER, Location(frozenset({"IE"})),
                 frozenset({"contact_details"}), source_file="map.yaml")
    db = System("db", "vendor", Role.PROCESSOR, Location(provider="aws", regions=("us-east-1",)),
                frozenset({"contact_details", "billing"}), access_from=frozenset({"IN"}),
                origin=Origin.COLLECTED, resource_id="arn:aws:s3:::db", account="111",
                tags=(("data-classification", "crm"),), regimes=frozenset({"eu_gdpr"}),
                keys=(KEY,))
    odd = System("odd", "vendor", Role.PROCESSOR, Location(unknown_reason="region unknown"),
                 classified=False, origin=Origin.PLANNED, name="Odd one")
    sg = Safeguard("scc", "2021/914", 2, dt.date(2024, 1, 10), None, None, "ref-1", None, None,
                   Tia("TIA-1", dt.date(2024, 1, 5)))
    flow = Flow("app-db", "app", "db", frozenset({"contact_details"}), True, (sg,), "support")
    many = tuple(transfer(f"bulk-{i}", "US") for i in range(n_transfers))
    return Report(
        as_of=dt.date(2025, 6, 1), pack=PACK, systems=(app, db, odd),
        resolved=(("app", ResolvedLocation(frozenset({"IE"}))),
                  ("db", ResolvedLocation(frozenset({"US"}))),
                  ("odd", ResolvedLocation(frozenset(), True, "region unknown"))),
        flows=(flow,), transfers=transfers + many, findings=findings,
        gaps=(CoverageGap("aws", "account 222", "AccessDenied"),),
        assumed_invalid=("eu-us-dpf-2023-1795",), map_source="map.yaml", map_digest="d1",
    )
