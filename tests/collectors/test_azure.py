"""The Azure collector against a local ARM peer, through the real SDK clients.

ARM's default bearer policy refuses http, so the clients get `loopback_bearer_policy` (http only
to 127.0.0.1) and `EmulatorCredential`, exactly what `--azure-endpoint http://127.0.0.1:...`
uses; `retry_total=0` keeps error paths fast.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from azure.core.exceptions import ServiceRequestError
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.transport import HttpRequest
from click.testing import CliRunner

from residency.cli.main import cli
from residency.cli.scan_azure import build_azure
from residency.collectors.azure import (
    AzureCollector,
    EmulatorCredential,
    is_loopback,
    loopback_bearer_policy,
)
from residency.collectors.interface import CollectContext
from residency.demo.fake_arm import (
    FakeArm,
    authorization_failed,
    generic,
    storage_account,
)
from residency.model import Classification, ClassificationValue, Inventory, System
from residency.policy.pack import PolicyPack

ROOT = Path(__file__).resolve().parents[2]
MAP = Path(__file__).parent / "data" / "cloud_map.yaml"
CLASSIFICATION = Classification(
    "data-classification", (("customer-pii", ClassificationValue(frozenset({"contact"}))),)
)
SUB_OK = "00000000-0000-4000-8000-000000000001"
SUB_DENIED = "00000000-0000-4000-8000-000000000002"
LEGACY_ID = (f"/subscriptions/{SUB_OK}/resourceGroups/rg-eu/providers/"
             "Microsoft.Storage/storageAccounts/legacyeu")
BR = (f"/subscriptions/{SUB_OK}/resourceGroups/rg-br/providers/"
      "Microsoft.Storage/storageAccounts/brcustomers")
EU = (f"/subscriptions/{SUB_OK}/resourceGroups/rg-eu/providers/"
      "Microsoft.Storage/storageAccounts/eucustomers")


def standard_fake() -> FakeArm:
    """SUB_OK: six resources over three pages; SUB_DENIED: 403 AuthorizationFailed."""
    pii = {"data-classification": "customer-pii"}
    legacy = storage_account(SUB_OK, "rg-eu", "legacyeu", "westeurope", None)
    legacy_full = {**legacy, "sku": {"name": "Standard_LRS", "tier": "Standard"},
                   "properties": {"primaryLocation": "westeurope",
                                  "statusOfPrimary": "available"}}
    return FakeArm(
        subscriptions=[SUB_OK, SUB_DENIED],
        resources={
            SUB_OK: [
                storage_account(SUB_OK, "rg-br", "brcustomers", "brazilsouth", "Standard_RAGRS",
                                pii),
                storage_account(SUB_OK, "rg-eu", "eucustomers", "westeurope", "Standard_GRS",
                                pii),
                generic(SUB_OK, "rg-dns", "Microsoft.Network/dnszones", "example.com", "global",
                        {}),
                generic(SUB_OK, "rg-eu", "Microsoft.Web/sites", "legacy-app", "West Europe",
                        pii),
                legacy,
                storage_account(SUB_OK, "rg-eu", "eulocal", "westeurope", "Standard_ZRS", pii),
            ],
        },
        errors={SUB_DENIED: authorization_failed(SUB_DENIED)},
        full={LEGACY_ID.lower(): legacy_full},
    )


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeArm]:
    server = standard_fake().start()
    yield server
    server.stop()


def collector(fake: FakeArm, pack: PolicyPack, subscriptions: tuple[str, ...] = (),
              paired: Any = None) -> AzureCollector:
    credential = EmulatorCredential()
    return AzureCollector(
        credential,
        paired or (lambda region: pack.paired_region("azure", region)),
        subscriptions,
        base_url=fake.url,
        client_kwargs={"authentication_policy": loopback_bearer_policy(credential),
                       "retry_total": 0},
    )


def collect(fake: FakeArm, pack: PolicyPack, **kw: Any) -> Inventory:
    classified_only = kw.pop("classified_only", False)
    return collector(fake, pack, **kw).collect(
        CollectContext(CLASSIFICATION, classified_only=classified_only, workers=4)
    )


def by_id(inv: Inventory) -> dict[str, System]:
    return {s.id: s for s in inv.systems}


def test_subscriptions_are_listed_and_a_denied_one_is_a_gap(
    fake: FakeArm, pack: PolicyPack
) -> None:
    inv = collect(fake, pack)
    assert [(g.provider, g.scope) for g in inv.gaps] == [("azure", f"subscription {SUB_DENIED}")]
    assert inv.gaps[0].reason.startswith("HTTP 403 AuthorizationFailed: ")
    assert {s.account for s in inv.systems} == {SUB_OK}


def test_every_page_is_read_with_a_bearer_token(fake: FakeArm, pack: PolicyPack) -> None:
    fake.requests.clear()
    inv = collect(fake, pack)
    pages = [p for _, p, _ in fake.requests if p.startswith(f"/subscriptions/{SUB_OK}/resources")]
    assert len(pages) == 3  # six resources, two per page, following nextLink
    assert all(auth for _, _, auth in fake.requests)
    assert len([s for s in inv.systems if not s.id.endswith("#secondary")]) == 6


def test_geo_redundant_storage_gets_a_secondary_in_the_paired_region(
    fake: FakeArm, pack: PolicyPack
) -> None:
    inv = collect(fake, pack)
    systems = by_id(inv)
    br2 = systems[f"{BR}#secondary"]
    assert br2.location.regions == ("southcentralus",)
    assert pack.resolve(br2.location).countries == {"US"}
    assert br2.party == "azure" and br2.data_categories == {"contact"}
    assert systems[f"{EU}#secondary"].location.regions == ("northeurope",)
    flows = {(f.source, f.target, f.kind) for f in inv.flows}
    assert flows == {(BR, f"{BR}#secondary", "replication"),
                     (EU, f"{EU}#secondary", "replication")}
    # ZRS and LRS (the latter known only through the GET fallback) stay in one region
    assert not any("eulocal#" in s or "legacyeu#" in s for s in systems)


def test_sku_missing_from_the_list_is_read_with_a_get(fake: FakeArm, pack: PolicyPack) -> None:
    fake.requests.clear()
    collect(fake, pack, subscriptions=(SUB_OK,))
    gets = [p for _, p, _ in fake.requests if p.lower().startswith(LEGACY_ID.lower())]
    assert gets == [f"{LEGACY_ID}?api-version=2023-05-01"]


def test_global_and_display_name_locations(fake: FakeArm, pack: PolicyPack) -> None:
    systems = {s.name: s for s in collect(fake, pack).systems}
    dns = pack.resolve(systems["example.com"].location)
    assert systems["example.com"].location.regions == ("global",)
    assert dns.any_country and dns.known
    assert systems["legacy-app"].location.regions == ("West Europe",)
    assert pack.resolve(systems["legacy-app"].location).countries == {"NL"}


def test_an_unknown_pair_is_an_unknown_location(fake: FakeArm, pack: PolicyPack) -> None:
    inv = collect(fake, pack, subscriptions=(SUB_OK,), paired=lambda _region: None)
    br2 = by_id(inv)[f"{BR}#secondary"]
    assert br2.location.provider == "azure"
    assert br2.location.unknown_reason is not None
    assert "Standard_RAGRS" in br2.location.unknown_reason
    assert pack.resolve(br2.location).any_country


def test_given_subscriptions_skip_the_listing(fake: FakeArm, pack: PolicyPack) -> None:
    fake.requests.clear()
    inv = collect(fake, pack, subscriptions=(SUB_OK,))
    assert not any(p.startswith("/subscriptions?") for _, p, _ in fake.requests)
    assert inv.gaps == ()


def test_classified_only(fake: FakeArm, pack: PolicyPack) -> None:
    names = {s.name for s in collect(fake, pack, classified_only=True).systems}
    assert "example.com" not in names and "legacyeu" not in names
    assert "brcustomers" in names


def test_an_unreachable_endpoint_is_a_gap(pack: PolicyPack) -> None:
    dead = FakeArm().start()
    dead.stop()  # the port is now closed
    inv = collect(dead, pack)
    assert [g.scope for g in inv.gaps] == ["subscriptions"]
    assert inv.systems == ()


def test_bearer_policy_allows_http_only_on_loopback() -> None:
    assert is_loopback("http://127.0.0.1:8080") and is_loopback("http://localhost/")
    assert is_loopback("http://[::1]:1")
    assert not is_loopback("http://management.example.com")
    policy = loopback_bearer_policy(EmulatorCredential())
    with pytest.raises(ServiceRequestError):
        policy.on_request(PipelineRequest(HttpRequest("GET", "http://10.0.0.1/x"), None))  # type: ignore[arg-type]


def test_build_azure(fake: FakeArm, pack: PolicyPack) -> None:
    assert build_azure(pack, gcp=("p",)) is None
    assert build_azure(pack, azure=True, azure_endpoint=fake.url) is not None


def test_the_shipped_role_grants_exactly_the_calls_made() -> None:
    from residency.collectors.azure import API_VERSIONS, CHILD_LISTS, CHILD_READS

    role = json.loads((ROOT / "policies" / "iam" / "azure-readonly-role.json").read_text())
    # subscriptions.list and resources.list, then one GET by id per type the catalogue
    # needs properties of (API_VERSIONS), and the child lists (CHILD_LISTS)
    wanted = {"Microsoft.Resources/subscriptions/read",
              "Microsoft.Resources/subscriptions/resources/read"}
    wanted |= {f"{t}/read" for t in API_VERSIONS}
    wanted |= {f"{t}/{child}/read" for t, kids in CHILD_LISTS.items() for child, _ in kids}
    # the SQL TDE protector (CHILD_READS: `encryptionProtector/current`), and the Resource
    # Graph query (`POST /providers/Microsoft.ResourceGraph/resources`)
    wanted |= {f"{t}/{path.split('/')[0]}/read" for t, reads in CHILD_READS.items()
               for path, _, _ in reads}
    wanted.add("Microsoft.ResourceGraph/resources/read")
    assert {a.lower() for a in role["Actions"]} == {a.lower() for a in wanted}
    assert all(a.endswith("/read") for a in role["Actions"])  # read-only, nothing else
    assert role["DataActions"] == [] and role["NotActions"] == []


def test_cli_scan_azure_end_to_end(fake: FakeArm, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.parquet"
    result = CliRunner().invoke(cli, [
        "scan", "--azure", "--azure-endpoint", fake.url,
        "--map", str(MAP), "--format", "json", "--as-of", "2026-01-15",
        "--inventory-out", str(inventory),
    ])
    assert result.exit_code == 1, result.output  # RES-S001 is an error
    doc = json.loads(result.stdout)
    findings = {(f["rule"], f["subject"]): f for f in doc["findings"]}
    assert ("RES-S001", f"azure:subscription {SUB_DENIED}") in findings
    br_flow = f"replication:{BR}->{BR}#secondary"
    # Microsoft Ireland contracts (eu_gdpr follows the data), but the Brazilian and US
    # copies are held by Microsoft's affiliates there: a transfer between two entities,
    # lawful here through Microsoft's DPF certification in the policy pack
    transfers = [t for t in doc["transfers"] if t["flow"] == br_flow]
    assert [(t["regime"], t["countries"], t["same_entity"], t["lawful"]) for t in transfers] == [
        ("eu_gdpr", ["US"], False, True)
    ]
    assert transfers[0]["importer_party"] == "azure@US"
    assert transfers[0]["bases"][0]["reference"] == "eu-us-dpf-2023-1795"
    # West Europe → North Europe (NL → IE) stays in the EEA: no transfer at all
    assert not [t for t in doc["transfers"] if t["flow"].startswith(f"replication:{EU}")]
    systems = {s["id"]: s for s in doc["systems"]}
    assert systems[f"{BR}#secondary"]["countries"] == ["US"]
    assert systems[f"{EU}#secondary"]["countries"] == ["IE"]
    dns = next(s for s in doc["systems"] if s["id"].endswith("/example.com"))
    assert dns["any_country"] is True
    rows = pd.read_parquet(inventory).set_index("id")
    assert rows.loc[f"{BR}#secondary", "countries"] == "US"
    assert rows.loc[f"{BR}#secondary", "account"] == SUB_OK
