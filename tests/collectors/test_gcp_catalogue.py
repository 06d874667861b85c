"""Cloud Asset Inventory through the real google-cloud-asset client (REST transport) against a
local `searchAllResources` peer (`residency.demo.fake_cai`), matched to the gate's catalogue.

Each catalogued store type is found at its countries (zones and Spanner configurations
normalised as the catalogue says), types the catalogue marks as no store are left out, an
unknown type holding classified data fails closed, a bucket seen by both APIs keeps the
Cloud Storage answer, and an unreadable scope is a gap.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.auth.credentials import AnonymousCredentials
from google.cloud.storage import Client as StorageClient

from residency.collectors.gcp import (
    ASSET_TYPES,
    TAG_ASSET_TYPE,
    GcpCollector,
    asset_client_factory,
    bucket_id,
)
from residency.collectors.interface import CollectContext
from residency.demo.fake_cai import FakeCai, asset, permission_denied
from residency.demo.fake_gcs import FakeGcs, bucket
from residency.model import Classification, ClassificationValue, Inventory, System
from residency.policy.pack import PolicyPack

ROOT = Path(__file__).resolve().parents[2]
CLASSIFICATION = Classification(
    "data-classification", (("customer-pii", ClassificationValue(frozenset({"contact"}))),)
)
PII = {"data-classification": "customer-pii"}
P = "//{svc}.googleapis.com/projects/p1/{rest}"
EU27 = {"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
        "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"}

# asset type, full name, CAI location -> expected countries
STORES: list[tuple[str, str, str, set[str]]] = [
    ("sqladmin.googleapis.com/Instance", P.format(svc="sqladmin", rest="instances/tickets"),
     "europe-west3", {"DE"}),
    ("bigquery.googleapis.com/Dataset", P.format(svc="bigquery", rest="datasets/crm"),
     "EU", EU27),
    ("spanner.googleapis.com/Instance", P.format(svc="spanner", rest="instances/orders"),
     "regional-europe-west1", {"BE"}),
    ("compute.googleapis.com/Disk", P.format(svc="compute", rest="zones/us-central1-a/disks/d1"),
     "us-central1-a", {"US"}),
    ("redis.googleapis.com/Instance", P.format(svc="redis", rest="locations/asia-northeast1/"
                                               "instances/cache"), "asia-northeast1", {"JP"}),
    ("firestore.googleapis.com/Database", P.format(svc="firestore", rest="databases/(default)"),
     "europe-west2", {"GB"}),
    ("pubsub.googleapis.com/Topic", P.format(svc="pubsub", rest="topics/events"),
     "europe-west4", {"NL"}),
    ("storage.googleapis.com/Bucket", bucket_id("cai-only-bucket"), "australia-southeast1",
     {"AU"}),
]
NON_STORES = [
    ("compute.googleapis.com/Firewall", P.format(svc="compute", rest="global/firewalls/fw"),
     "global"),
    ("iam.googleapis.com/ServiceAccount", "//iam.googleapis.com/projects/p1/serviceAccounts/sa",
     "global"),
    ("serviceusage.googleapis.com/Service", "//serviceusage.googleapis.com/projects/"
     "123456789012/services/storage.googleapis.com", "global"),  # unknown, unclassified
]
UNKNOWN_CLASSIFIED = ("example.googleapis.com/Widget",
                      "//example.googleapis.com/projects/p1/widgets/w1", "europe-west1")
DUAL = bucket_id("custom-dual")


def cai_estate() -> FakeCai:
    results = [asset(name, t, loc, PII) for t, name, loc, _ in STORES]
    results += [asset(name, t, loc) for t, name, loc in NON_STORES]
    results.append(asset(UNKNOWN_CLASSIFIED[1], UNKNOWN_CLASSIFIED[0], UNKNOWN_CLASSIFIED[2],
                         PII))
    # CAI says `eu` for a configurable dual-region; Cloud Storage says where it stores
    results.append(asset(DUAL, "storage.googleapis.com/Bucket", "eu", PII))
    return FakeCai(
        scopes={"projects/p1": results,
                "folders/42": [asset(P.format(svc="sqladmin", rest="instances/br").replace(
                    "p1", "p9"), "sqladmin.googleapis.com/Instance",
                    "southamerica-east1", PII, project_number="999")]},
        errors={"organizations/7": permission_denied("organizations/7")},
    )


@pytest.fixture(scope="module")
def cai() -> Iterator[FakeCai]:
    server = cai_estate().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gcs() -> Iterator[FakeGcs]:
    server = FakeGcs(projects={"p1": [
        bucket("custom-dual", "EU", "dual-region", labels=PII,
               data_locations=["EUROPE-WEST1", "EUROPE-WEST4"]),
    ]}).start()
    yield server
    server.stop()


def collect(cai: FakeCai, gcs: FakeGcs | None, pack: PolicyPack, projects: list[str],
            scopes: tuple[str, ...] = (), **kw: Any) -> Inventory:
    anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]

    def factory(project: str) -> Any:
        assert gcs is not None
        return StorageClient(project=project, credentials=anonymous,
                              client_options={"api_endpoint": gcs.url})

    return GcpCollector(factory, projects if gcs is not None else [], retry=None,
                        catalogue=pack.catalogue, asset_client=asset_client_factory(cai.url),
                        asset_scopes=scopes or tuple(f"projects/{p}" for p in projects),
                        ).collect(CollectContext(CLASSIFICATION, workers=4, **kw))


def by_id(inv: Inventory) -> dict[str, System]:
    return {s.id: s for s in inv.systems}


def test_every_catalogued_store_is_found_at_its_countries(
    cai: FakeCai, gcs: FakeGcs, pack: PolicyPack
) -> None:
    inv = collect(cai, gcs, pack, ["p1"])
    systems = by_id(inv)
    for asset_type, name, _, where in STORES:
        system = systems[name]
        resolved = pack.resolve(system.location)
        assert resolved.known, (name, resolved.unresolved)
        assert set(resolved.countries) == where, name
        assert system.classified and system.data_categories == {"contact"}
        assert system.account == "p1"
        assert dict(system.tags)[TAG_ASSET_TYPE] == asset_type
    # zones and Spanner configurations are normalised as the catalogue spells them
    assert systems[STORES[3][1]].location.regions == ("us-central1",)
    assert systems[STORES[2][1]].location.regions == ("europe-west1",)
    assert inv.gaps == ()


def test_no_store_types_are_left_out_and_unknown_classified_types_fail_closed(
    cai: FakeCai, pack: PolicyPack
) -> None:
    systems = by_id(collect(cai, None, pack, [], scopes=("projects/p1",)))
    for _, name, _ in NON_STORES:
        assert name not in systems
    widget = systems[UNKNOWN_CLASSIFIED[1]]
    assert pack.resolve(widget.location).any_country
    assert "not in the resource catalogue" in (widget.location.unknown_reason or "")


def test_a_bucket_seen_by_both_apis_keeps_the_cloud_storage_answer(
    cai: FakeCai, gcs: FakeGcs, pack: PolicyPack
) -> None:
    inv = collect(cai, gcs, pack, ["p1"])
    assert [s.id for s in inv.systems].count(DUAL) == 1
    dual = by_id(inv)[DUAL]
    assert dual.location.regions == ("EUROPE-WEST1", "EUROPE-WEST4")
    assert set(pack.resolve(dual.location).countries) == {"BE", "NL"}
    assert len({f.id for f in inv.flows}) == len(inv.flows)


def test_folder_and_organization_scopes_and_an_unreadable_one_is_a_gap(
    cai: FakeCai, pack: PolicyPack
) -> None:
    inv = collect(cai, None, pack, [], scopes=("folders/42", "organizations/7"))
    [system] = inv.systems
    assert system.account == "999"  # the result's project, for a folder-wide search
    assert set(pack.resolve(system.location).countries) == {"BR"}
    [gap] = inv.gaps
    assert (gap.provider, gap.scope) == ("gcp", "asset scope organizations/7")
    assert gap.reason.startswith("permission denied (HTTP 403)")
    assert "http://" not in gap.reason  # the request line is not part of the reason


def test_every_page_is_read(cai: FakeCai, pack: PolicyPack) -> None:
    cai.requests.clear()
    inv = collect(cai, None, pack, [], scopes=("projects/p1",))
    pages = [r for r in cai.requests if r.startswith("/v1/projects/p1:searchAllResources")]
    assert len(pages) == 7  # 13 results, two per page
    assert len(inv.systems) == len(STORES) + 2


def test_a_cut_later_page_keeps_the_first(pack: PolicyPack) -> None:
    from residency.demo.fake_gcs import HttpFault

    server = cai_estate()
    server.faults.append(HttpFault("pageToken=4", "truncate"))
    server.start()
    try:
        inv = collect(server, None, pack, [], scopes=("projects/p1",))
    finally:
        server.stop()
    [gap] = inv.gaps
    assert gap.scope == "asset scope projects/p1"
    assert "4 resource(s) read before the error are kept" in gap.reason


def test_shards_own_scopes_by_project(cai: FakeCai, pack: PolicyPack) -> None:
    inv = collect(cai, None, pack, [], scopes=("projects/p1", "folders/42"),
                  scope_filter=lambda scope: scope == "folders/42")
    assert {s.account for s in inv.systems} == {"999"}


def test_every_mapped_asset_type_is_in_the_catalogue(pack: PolicyPack) -> None:
    cat = pack.catalogue
    for asset_type, tf_type in ASSET_TYPES.items():
        assert cat.entry(tf_type) is not None or cat.is_known_non_store(tf_type), asset_type


def test_the_shipped_role_grants_the_search() -> None:
    role = yaml.safe_load((ROOT / "policies" / "iam" / "gcp-readonly-role.yaml").read_text())
    assert role["includedPermissions"][:2] == ["storage.buckets.list",
                                               "cloudasset.assets.searchAllResources"]


def test_the_cli_searches_scopes_through_cloud_asset_inventory(
    cai: FakeCai, gcs: FakeGcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`scan --gcp-scope folders/42` reaches CAI; an unreadable organization is a gap."""
    import json

    from click.testing import CliRunner

    from residency.cli.main import cli

    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    result = CliRunner().invoke(cli, [
        "scan", "--gcp-scope", "folders/42", "--gcp-scope", "organizations/7",
        "--gcp-endpoint", gcs.url, "--gcp-asset-endpoint", cai.url,
        "--map", str(ROOT / "tests" / "collectors" / "data" / "cloud_map.yaml"),
        "--format", "json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    where = [s["location"] for s in doc["systems"] if s["origin"] == "collected"]
    assert any("southamerica-east1" in w for w in where), where
    assert any("organizations/7" in g["scope"] for g in doc["coverage_gaps"])
    bad = CliRunner().invoke(cli, ["scan", "--gcp-scope", "orgs/7"])
    assert bad.exit_code == 2 and "--gcp-scope" in bad.stderr
