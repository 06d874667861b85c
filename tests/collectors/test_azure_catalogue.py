"""The Azure collector reads the gate's resource catalogue (`azapi_resource:<ARM type>`).

A local ARM peer serves each catalogued type shaped as its REST reference's sample response
(`residency.demo.fake_arm`), with the generic list leaving out `properties` as ARM's does, so
every type whose copies live in `properties` is read again with a GET by id. Each store is
found at its countries, every copy is a replication flow to the right region, a secondary
location ARM reports wins over the pack's pairing, and what cannot be read is a gap.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from residency.collectors.azure import (
    API_VERSIONS,
    TAG_COPY_LOCATION,
    AzureCollector,
    EmulatorCredential,
    loopback_bearer_policy,
)
from residency.collectors.interface import CollectContext
from residency.demo.fake_arm import (
    FakeArm,
    acr_replication,
    authorization_failed,
    container_registry,
    cosmos_account,
    encryption_protector,
    failover_group,
    flexible_server,
    generic,
    key_vault,
    managed_hsm,
    namespace_like,
    recovery_vault,
    sql_database,
    sql_server,
    storage_account,
    with_cosmos_cmk,
    with_storage_cmk,
)
from residency.demo.fake_gcs import HttpFault
from residency.model import Classification, ClassificationValue, Inventory, System
from residency.policy.catalogue import Entry, Step
from residency.policy.pack import PolicyPack

ROOT = Path(__file__).resolve().parents[2]
CLASSIFICATION = Classification(
    "data-classification", (("customer-pii", ClassificationValue(frozenset({"contact"}))),)
)
PII = {"data-classification": "customer-pii"}
SUB = "00000000-0000-4000-8000-0000000000c1"
SUB_DENIED = "00000000-0000-4000-8000-0000000000c2"

KV_CH = key_vault(SUB, "rg", "kv-ch", "switzerlandnorth")
HSM_DE = managed_hsm(SUB, "rg", "hsm-de", "germanywestcentral")
SA_REPORTED = with_storage_cmk(
    storage_account(SUB, "rg", "eureported", "westeurope", "Standard_RAGRS", PII,
                    secondary_location="northeurope"), "https://kv-ch.vault.azure.net/", "sa-key")
SA_PAIRED = storage_account(SUB, "rg", "brpaired", "brazilsouth", "Standard_GRS", PII)
SA_LOCAL = storage_account(SUB, "rg", "eulocal", "westeurope", "Standard_LRS", PII)
COSMOS = with_cosmos_cmk(cosmos_account(SUB, "rg", "crm", "West Europe",
                                        ["West Europe", "East US", "Australia East"], PII),
                         "https://hsm-de.managedhsm.azure.net/keys/cosmos/0123abcd")
SQL_EU = sql_server(SUB, "rg", "sql-eu", "westeurope", PII)
SQL_US = sql_server(SUB, "rg", "sql-us", "eastus2", PII)
DB_GEO = sql_database(SQL_EU, "tickets", "Geo", PII)
DB_LOCAL = sql_database(SQL_EU, "scratch", "Local", PII)
FOG = failover_group(SQL_EU, "tickets-fog", [SQL_US], [DB_GEO])
# the TDE protector: SQL-EU's in a vault outside the scan, SQL-US's service-managed
TDE_EU = encryption_protector(SQL_EU, "https://kv-elsewhere.vault.azure.net/keys/tde/42")
TDE_US = encryption_protector(SQL_US, None)
PG_EU = flexible_server(SUB, "rg", "PostgreSQL", "pg-eu", "germanywestcentral",
                        geo_backup=True, tags=PII)
PG_US = flexible_server(SUB, "rg", "PostgreSQL", "pg-us", "eastus", source=PG_EU)
MY_BR = flexible_server(SUB, "rg", "MySQL", "my-br", "brazilsouth", geo_backup=True, tags=PII)
VAULT_GRS = recovery_vault(SUB, "rg", "rsv-ch", "switzerlandnorth", "GeoRedundant", PII)
VAULT_LRS = recovery_vault(SUB, "rg", "rsv-lrs", "switzerlandnorth", "LocallyRedundant", PII)
ACR = container_registry(SUB, "rg", "acreu", "westeurope", PII)
ACR_HOME = acr_replication(ACR, "westeurope")
ACR_JP = acr_replication(ACR, "japaneast")
LAW = namespace_like(SUB, "rg", "Microsoft.OperationalInsights/workspaces", "law-uk", "uksouth",
                     PII)
SB = namespace_like(SUB, "rg", "Microsoft.ServiceBus/namespaces", "sb-ca", "canadacentral", PII)
EH = namespace_like(SUB, "rg", "Microsoft.EventHub/namespaces", "eh-in", "centralindia", PII)
REDIS = namespace_like(SUB, "rg", "Microsoft.Cache/redis", "redis-sg", "southeastasia", PII)
EVERY = [SA_REPORTED, SA_PAIRED, SA_LOCAL, COSMOS, SQL_EU, SQL_US, DB_GEO, DB_LOCAL, PG_EU,
         PG_US, MY_BR, VAULT_GRS, VAULT_LRS, ACR, ACR_HOME, ACR_JP, LAW, SB, EH, REDIS, KV_CH,
         HSM_DE]


def estate() -> FakeArm:
    return FakeArm(
        subscriptions=[SUB, SUB_DENIED],
        resources={SUB: EVERY},
        proxies={SUB: [FOG, TDE_EU, TDE_US]},
        errors={SUB_DENIED: authorization_failed(SUB_DENIED)},
    )


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeArm]:
    server = estate().start()
    yield server
    server.stop()


def collector(fake: FakeArm, pack: PolicyPack, paired: Any = None, **kw: Any) -> AzureCollector:
    credential = EmulatorCredential()
    return AzureCollector(
        credential, paired or (lambda region: pack.paired_region("azure", region)),
        kw.pop("subscriptions", ()), base_url=fake.url,
        client_kwargs={"authentication_policy": loopback_bearer_policy(credential),
                       "retry_total": kw.pop("retry_total", 0), "retry_backoff_factor": 0.01},
        catalogue=kw.pop("catalogue", pack.catalogue),
        resource_graph=kw.pop("graph", False),
    )


def collect(fake: FakeArm, pack: PolicyPack, **kw: Any) -> Inventory:
    classified_only = kw.pop("classified_only", False)
    return collector(fake, pack, **kw).collect(
        CollectContext(CLASSIFICATION, classified_only=classified_only, workers=4))


def by_id(inv: Inventory) -> dict[str, System]:
    return {s.id: s for s in inv.systems}


def countries(pack: PolicyPack, system: System) -> set[str]:
    resolved = pack.resolve(system.location)
    assert resolved.known, resolved.unresolved
    return set(resolved.countries)


def copies(inv: Inventory, source: dict[str, Any]) -> dict[str, str]:
    """target id -> flow purpose, for the replication flows out of `source`."""
    return {f.target: f.purpose or "" for f in inv.flows
            if f.kind == "replication" and f.source == source["id"]}


@pytest.fixture(scope="module", params=["arm-listing", "resource-graph"])
def scanned(request: pytest.FixtureRequest, fake: FakeArm, pack: PolicyPack) -> Inventory:
    """The same estate read both ways: ARM's list per subscription, and one Resource Graph
    query across subscriptions (with ARM reads for child resources and TDE protectors)."""
    before = len(fake.graph_queries)
    inv = collect(fake, pack, graph=request.param == "resource-graph")
    assert (len(fake.graph_queries) > before) == (request.param == "resource-graph")
    return inv


def test_every_catalogued_store_is_found_at_its_countries(
    scanned: Inventory, pack: PolicyPack
) -> None:
    systems = by_id(scanned)
    expected = [
        (SA_REPORTED, {"NL"}), (SA_PAIRED, {"BR"}), (COSMOS, {"NL"}), (SQL_EU, {"NL"}),
        (SQL_US, {"US"}), (DB_GEO, {"NL"}), (PG_EU, {"DE"}), (PG_US, {"US"}),
        (MY_BR, {"BR"}), (VAULT_GRS, {"CH"}), (ACR, {"NL"}), (ACR_JP, {"JP"}),
        (LAW, {"GB"}), (SB, {"CA"}), (EH, {"IN"}), (REDIS, {"SG"}),
    ]
    for res, where in expected:
        assert countries(pack, systems[res["id"]]) == where, res["id"]
        assert systems[res["id"]].account == SUB
    # a failover group is no store of its own (catalogue: store false)
    assert FOG["id"] not in systems


def test_copies_are_replication_flows_to_the_right_region(
    scanned: Inventory, pack: PolicyPack
) -> None:
    systems = by_id(scanned)

    def copy_countries(res: dict[str, Any]) -> set[str]:
        return {c for target in copies(scanned, res) for c in countries(pack, systems[target])}

    assert copy_countries(COSMOS) == {"US", "AU"}  # West Europe itself is no copy
    assert copy_countries(DB_GEO) == {"IE"}  # geo-backup to the pair of West Europe
    assert copy_countries(SQL_EU) == {"US"}  # failover group partner in East US 2
    assert copy_countries(PG_EU) == {"DE", "US"}  # geo-backup to Germany North + replica
    assert copy_countries(MY_BR) == {"US"}  # geo-backup: Brazil South pairs with S. Central US
    assert copy_countries(VAULT_GRS) == {"CH"}
    assert copy_countries(ACR) == {"JP"}  # the home replication is no transfer
    assert copies(scanned, PG_EU)[PG_US["id"]].endswith("(body.properties."
                                                        "sourceServerResourceId)")
    assert ACR_JP["id"] in copies(scanned, ACR)
    fog = copies(scanned, SQL_EU)
    assert list(fog) == [f"{FOG['id']}#copy/eastus2"]
    for target in (*copies(scanned, COSMOS), *fog, *copies(scanned, DB_GEO)):
        assert systems[target].data_categories == {"contact"}
    # no copy for what stays in one region
    for res in (SA_LOCAL, DB_LOCAL, VAULT_LRS, LAW, SB, EH, REDIS, SQL_US, PG_US):
        assert not copies(scanned, res), res["id"]


def test_the_secondary_arm_reports_beats_the_packs_pair(fake: FakeArm, pack: PolicyPack) -> None:
    # a pairing that disagrees with ARM: ARM's answer is the truth
    inv = collect(fake, pack, subscriptions=(SUB,), paired=lambda _region: "eastus")
    systems = by_id(inv)
    [target] = copies(inv, SA_REPORTED)
    assert target == f"{SA_REPORTED['id']}#copy/northeurope"
    assert countries(pack, systems[target]) == {"IE"}
    assert dict(systems[target].tags)[TAG_COPY_LOCATION] == "reported by ARM"
    assert "secondaryLocation" in copies(inv, SA_REPORTED)[target]
    # the pairing is the fallback where ARM reports no secondary, and says so
    [paired] = copies(inv, SA_PAIRED)
    assert paired == f"{SA_PAIRED['id']}#secondary"
    assert systems[paired].location.regions == ("eastus",)
    assert "policy pack" in dict(systems[paired].tags)[TAG_COPY_LOCATION]
    assert "ARM reported no copy location" in copies(inv, SA_PAIRED)[paired]


def test_properties_are_read_by_id_at_the_types_api_version(
    fake: FakeArm, pack: PolicyPack
) -> None:
    fake.requests.clear()
    collect(fake, pack, subscriptions=(SUB,))
    paths = [p for _, p, _ in fake.requests]
    for res in (SA_REPORTED, COSMOS, DB_GEO, PG_EU, MY_BR, VAULT_GRS):
        version = API_VERSIONS[res["type"].lower()]
        assert f"{res['id']}?api-version={version}" in paths, res["id"]
    # located by `location` alone, or copies named by the listing: no read
    for res in (LAW, SB, EH, REDIS, ACR, ACR_JP, SQL_EU):
        assert not any(p.startswith(f"{res['id']}?") for p in paths), res["id"]
    # failover groups are not in the generic list: listed under each server
    assert f"{SQL_EU['id']}/failoverGroups?api-version=2021-11-01" in paths
    assert all(auth for _, _, auth in fake.requests)


def test_an_unreadable_subscription_and_property_read_are_gaps(pack: PolicyPack) -> None:
    server = estate()
    denied = json.dumps(authorization_failed(SUB)[1]).encode()
    server.faults.append(HttpFault("/flexibleServers/my-br?", "status", status=403, body=denied))
    server.start()
    try:
        inv = collect(server, pack)
    finally:
        server.stop()
    gaps = {g.scope: g.reason for g in inv.gaps if not g.scope.startswith("key vault")}
    assert set(gaps) == {f"subscription {SUB_DENIED}", f"resource {MY_BR['id']} properties"}
    assert gaps[f"subscription {SUB_DENIED}"].startswith("HTTP 403 AuthorizationFailed")
    assert gaps[f"resource {MY_BR['id']} properties"].startswith("HTTP 403")
    # the server itself is still located from the listing; its copies were not read
    assert by_id(inv)[MY_BR["id"]].location.regions == ("brazilsouth",)
    assert not copies(inv, MY_BR)


def test_a_type_whose_properties_cannot_be_read_fails_closed(
    pack: PolicyPack
) -> None:
    widget = generic(SUB, "rg", "Contoso.Data/widgets", "w1", "westeurope", PII)
    extra = Entry(type="azapi_resource:Contoso.Data/widgets", provider="azure",
                  location=(Step(attr="location", as_="azure"),),
                  copies=(Step(attr="body.properties.replicaLocations[*]", as_="azure"),))
    catalogue = dataclasses.replace(pack.catalogue,
                                    entries={**pack.catalogue.entries, extra.type: extra})
    server = FakeArm(subscriptions=[SUB], resources={SUB: [widget]}).start()
    try:
        inv = collect(server, pack, catalogue=catalogue)
    finally:
        server.stop()
    systems = by_id(inv)
    assert systems[widget["id"]].location.regions == ("westeurope",)
    unknown = systems[f"{widget['id']}#copy/unknown"]
    assert pack.resolve(unknown.location).any_country
    assert "API_VERSIONS" in (unknown.location.unknown_reason or "")
    assert copies(inv, widget) == {f"{widget['id']}#copy/unknown": "its copies could not be read"}


def test_a_replica_of_a_source_outside_the_scan_is_an_unknown_source(pack: PolicyPack) -> None:
    other = "00000000-0000-4000-8000-0000000000c9"
    source = flexible_server(other, "rg", "PostgreSQL", "pg-hidden", "westeurope")
    replica = flexible_server(SUB, "rg", "PostgreSQL", "pg-copy", "eastus", source=source,
                              tags=PII)
    server = FakeArm(subscriptions=[SUB], resources={SUB: [replica]}).start()
    try:
        inv = collect(server, pack, subscriptions=(SUB,))
    finally:
        server.stop()
    systems = by_id(inv)
    [flow] = [f for f in inv.flows if f.kind == "replication"]
    assert (flow.source, flow.target) == (source["id"], replica["id"])
    assert pack.resolve(systems[source["id"]].location).any_country


def test_classified_only_keeps_the_copies_of_classified_data(
    fake: FakeArm, pack: PolicyPack
) -> None:
    inv = collect(fake, pack, subscriptions=(SUB,), classified_only=True)
    systems = by_id(inv)
    # the untagged replica and ACR replication still receive the classified data
    assert countries(pack, systems[PG_US["id"]]) == {"US"}
    assert systems[PG_US["id"]].data_categories == {"contact"}
    assert countries(pack, systems[ACR_JP["id"]]) == {"JP"}
    assert {f.target for f in inv.flows} >= {PG_US["id"], ACR_JP["id"]}


def test_the_shipped_role_grants_every_read() -> None:
    role = json.loads((ROOT / "policies" / "iam" / "azure-readonly-role.json").read_text())
    actions = set(role["Actions"])
    assert {
        "Microsoft.Resources/subscriptions/read",
        "Microsoft.Resources/subscriptions/resources/read",
    } <= actions
    # every GET by id and child list is a `<type>/read`
    for arm_type in [*API_VERSIONS, "microsoft.sql/servers/failovergroups"]:
        assert any(a.lower() == f"{arm_type}/read" for a in actions), arm_type
    assert all(a.endswith("/read") for a in actions)
    assert role["DataActions"] == [] and role["NotActions"] == []


# ---------------------------------------------------------------------- Resource Graph
def test_resource_graph_reads_every_subscription_in_one_paged_query(
    fake: FakeArm, pack: PolicyPack
) -> None:
    fake.requests.clear()
    fake.graph_queries.clear()
    inv = collect(fake, pack, graph=True)
    queries = [q for q in fake.graph_queries if q["query"].startswith("Resources")]
    # one query across both subscriptions, paged with $skipToken (3 rows a page here)
    assert all(q["subscriptions"] == [SUB, SUB_DENIED] for q in queries)
    assert len(queries) == -(-len(EVERY) // 3)
    assert [bool(q["options"].get("$skipToken")) for q in queries] == \
        [False] + [True] * (len(queries) - 1)
    assert all(q["options"]["resultFormat"] == "objectArray" for q in queries)
    paths = [p for m, p, _ in fake.requests if m == "GET"]
    # ARG's rows carry `properties`: no GET by id; child lists and TDE protectors remain
    assert not any(p.startswith(f"{r['id']}?") for r in EVERY for p in paths)
    assert f"{SQL_EU['id']}/failoverGroups?api-version=2021-11-01" in paths
    assert not any("/subscriptions/" + SUB + "/resources?" in p for p in paths)
    # a subscription ARG leaves out (the caller may not read it) is a gap, not an omission
    gaps = {g.scope: g.reason for g in inv.gaps}
    assert "Resource Graph answered no record" in gaps[f"subscription {SUB_DENIED}"]


@pytest.mark.parametrize("throttle", [2, -1])
def test_a_throttled_graph_query_is_retried_then_a_gap(pack: PolicyPack, throttle: int) -> None:
    """429 RateLimiting with Retry-After: the SDK's retry policy waits and asks again; a query
    throttled past the retries is a gap of every subscription it asked for."""
    server = estate()
    server.graph_throttle = throttle
    server.start()
    try:
        inv = collect(server, pack, graph=True, retry_total=3)
    finally:
        server.stop()
    gaps = {g.scope: g.reason for g in inv.gaps if not g.scope.startswith("key vault")}
    if throttle > 0:
        assert set(gaps) == {f"subscription {SUB_DENIED}"}
        assert COSMOS["id"] in by_id(inv)
    else:
        assert set(gaps) == {f"subscription {SUB}", f"subscription {SUB_DENIED}"}
        assert gaps[f"subscription {SUB}"].startswith("Resource Graph query failed: HTTP 429")
        assert not [s for s in inv.systems if s.account == SUB]


def test_a_truncated_graph_answer_is_a_gap(pack: PolicyPack) -> None:
    server = estate()
    server.graph_truncate = True
    server.start()
    try:
        inv = collect(server, pack, graph=True)
    finally:
        server.stop()
    gaps = {g.scope: g.reason for g in inv.gaps}
    assert "resultTruncated" in gaps[f"subscription {SUB}"]


def test_no_readable_subscription_in_the_graph_is_a_gap_each(pack: PolicyPack) -> None:
    server = FakeArm(subscriptions=[SUB_DENIED],
                     errors={SUB_DENIED: authorization_failed(SUB_DENIED)}).start()
    try:
        inv = collect(server, pack, graph=True, subscriptions=(SUB_DENIED,))
    finally:
        server.stop()
    assert [g.scope for g in inv.gaps] == [f"subscription {SUB_DENIED}"]


def test_a_cloud_without_resource_graph_falls_back_to_listing(pack: PolicyPack) -> None:
    server = estate()
    server.graph = False
    server.start()
    try:
        c = collector(server, pack, graph=True)
        inv = c.collect(CollectContext(CLASSIFICATION, workers=4))
    finally:
        server.stop()
    assert not c.graph_used
    assert countries(pack, by_id(inv)[COSMOS["id"]]) == {"NL"}
    assert any(p.startswith(f"/subscriptions/{SUB}/resources?") for _, p, _ in server.requests)


# ---------------------------------------------------------------------- keys
def test_every_key_is_located_at_its_vault(scanned: Inventory, pack: PolicyPack) -> None:
    systems = by_id(scanned)
    [sa] = systems[SA_REPORTED["id"]].keys
    assert (sa.key, sa.region, sa.origin, sa.key_manager) == (
        "https://kv-ch.vault.azure.net/", "switzerlandnorth", "AZURE_KEY_VAULT", "CUSTOMER")
    assert sa.account == SUB
    [cosmos] = systems[COSMOS["id"]].keys
    assert (cosmos.region, cosmos.origin, cosmos.protection_level) == (
        "germanywestcentral", "MANAGED_HSM", "HSM")
    # the SQL TDE protector in a vault outside the scan: unknown, and a gap
    [tde] = systems[SQL_EU["id"]].keys
    assert tde.region is None and "kv-elsewhere.vault.azure.net" in (tde.unknown_reason or "")
    assert "key vault kv-elsewhere.vault.azure.net" in {g.scope for g in scanned.gaps}
    # what names no key where its settings were read: Microsoft-managed keys
    for res in (SQL_US, SA_PAIRED, PG_EU):
        [managed] = systems[res["id"]].keys
        assert (managed.key, managed.key_manager) == ("", "MICROSOFT"), res["id"]
    # a key vault holds keys: not a data store
    assert KV_CH["id"] not in systems and HSM_DE["id"] not in systems
    assert {countries(pack, systems[r["id"]]).pop() for r in (SA_REPORTED,)} == {"NL"}
