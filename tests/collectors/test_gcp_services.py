"""Google Cloud in depth: projects found under an organisation (Resource Manager v3), Cloud
SQL replicas, Spanner configurations and Bigtable clusters as copies, and Cloud KMS keys.

Each API is a local peer speaking its REST JSON (`residency.demo.fake_gcp_apis`), with
paging, Google's error documents, and the states the references document (DELETE_REQUESTED
projects, SERVICE_DISABLED APIs, REGION_UNREACHABLE warnings).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import requests
import yaml

from residency.collectors.gcp import GcpCollector, bucket_id, emulator_client_factory
from residency.collectors.gcp_services import PERMISSIONS, GcpRest
from residency.collectors.interface import CollectContext
from residency.demo.fake_gcp_apis import (
    FakeBigtable,
    FakeKms,
    FakeResourceManager,
    FakeSpanner,
    FakeSqlAdmin,
    bigtable_instance,
    crypto_key,
    denied,
    disabled,
    rm_folder,
    rm_project,
    spanner_config,
    spanner_instance,
    sql_instance,
)
from residency.demo.fake_gcs import FakeGcs, bucket
from residency.model import Classification, ClassificationValue, Inventory, System
from residency.policy.pack import PolicyPack

ROOT = Path(__file__).resolve().parents[2]
CLASSIFICATION = Classification(
    "data-classification", (("customer-pii", ClassificationValue(frozenset({"contact"}))),))
PII = {"data-classification": "customer-pii"}
ORG = "organizations/555"
KEY_SQL = "projects/kms-p/locations/europe-west3/keyRings/r/cryptoKeys/sql"
KEY_BT = "projects/kms-p/locations/europe-west1/keyRings/r/cryptoKeys/bt"
KEY_GCS = "projects/kms-p/locations/europe-west3/keyRings/r/cryptoKeys/gcs"
KEY_DENIED = "projects/kms-x/locations/us/keyRings/r/cryptoKeys/hidden"
SQL = "//sqladmin.googleapis.com/projects/p-eu/instances/"
SPANNER = "//spanner.googleapis.com/projects/p-eu/instances/"
BT = "//bigtableadmin.googleapis.com/projects/p-eu/instances/"

BT_INST, BT_CLUSTERS = bigtable_instance("p-eu", "bt", [("c1", "europe-west1-b"),
                                                        ("c2", "us-east1-c")], PII, KEY_BT)


class Peers:
    def __init__(self) -> None:
        self.rm = FakeResourceManager(
            projects=[rm_project("p-eu", "1", "folders/10"),
                      rm_project("p-old", "2", "folders/11", "DELETE_REQUESTED"),
                      rm_project("p-denied", "3", "folders/11")],
            folders=[rm_folder("10", ORG), rm_folder("11", "folders/10"),
                     rm_folder("12", ORG), rm_folder("13", ORG, "DELETE_REQUESTED")],
            denied_parents={"folders/12"})
        self.sql = FakeSqlAdmin(projects={"p-eu": [
            sql_instance("p-eu", "crm-eu", "europe-west3", labels=PII, replicas=["crm-us"],
                         kms_key=KEY_SQL),
            sql_instance("p-eu", "crm-us", "us-central1", master="p-eu:crm-eu"),
            sql_instance("p-eu", "tickets-ch", "europe-west6", labels=PII,
                         backup_location="eu", kms_key=KEY_DENIED),
            sql_instance("p-eu", "orphan", "asia-south1", labels=PII, master="p-gone:primary"),
        ]}, unreachable={"p-eu": ["me-central2"]})
        self.spanner = FakeSpanner(projects={"p-eu": [
            spanner_instance("p-eu", "sp-eur", "eur6", PII),
            spanner_instance("p-eu", "sp-custom", "custom-eur6-asia", PII),
            spanner_instance("p-eu", "sp-regional", "regional-europe-west1", PII),
        ]}, configs={"projects/p-eu/instanceConfigs/custom-eur6-asia": spanner_config(
            "p-eu", "custom-eur6-asia", "eur6",
            [("europe-west4", "READ_WRITE"), ("europe-west3", "READ_WRITE"),
             ("europe-west6", "WITNESS"), ("asia-northeast1", "READ_ONLY")])},
            errors={"/v1/projects/p-denied/": disabled("spanner.googleapis.com", "p-denied")})
        self.bigtable = FakeBigtable(instances={"p-eu": [BT_INST]},
                                     clusters={"p-eu": BT_CLUSTERS},
                                     errors={"/v2/projects/p-denied/": disabled(
                                         "bigtableadmin.googleapis.com", "p-denied")})
        self.kms = FakeKms(keys={KEY_SQL: crypto_key(KEY_SQL, "HSM"),
                                 KEY_BT: crypto_key(KEY_BT, "EXTERNAL_VPC"),
                                 KEY_GCS: crypto_key(KEY_GCS, "EXTERNAL")})
        gcs_bucket = bucket("eu-cmek", "EUROPE-WEST3", "region", PII)
        gcs_bucket["encryption"] = {"defaultKmsKeyName": KEY_GCS}
        self.gcs = FakeGcs(projects={"p-eu": [gcs_bucket,
                                              bucket("eu-plain", "EU", "multi-region", PII)],
                                     "p-denied": []})
        self.all = (self.rm, self.sql, self.spanner, self.bigtable, self.kms, self.gcs)

    def __enter__(self) -> Peers:
        for p in self.all:
            p.start()
        return self

    def __exit__(self, *_: Any) -> None:
        for p in self.all:
            p.stop()

    def collector(self, **kw: Any) -> GcpCollector:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import resourcemanager_v3

        anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
        options = ClientOptions(api_endpoint=self.rm.url)

        def rm() -> tuple[Any, Any]:
            return (resourcemanager_v3.ProjectsClient(credentials=anonymous, transport="rest",
                                                      client_options=options),
                    resourcemanager_v3.FoldersClient(credentials=anonymous, transport="rest",
                                                     client_options=options))

        rest = GcpRest(requests.Session(), {"sqladmin": self.sql.url,
                                            "spanner": self.spanner.url,
                                            "bigtableadmin": self.bigtable.url,
                                            "cloudkms": self.kms.url}, retries=0)
        return GcpCollector(emulator_client_factory(self.gcs.url), kw.pop("projects", ()),
                            rest=rest, resource_manager=rm, discover=kw.pop("discover", (ORG,)),
                            **kw)


@pytest.fixture(scope="module")
def peers() -> Iterator[Peers]:
    with Peers() as p:
        yield p


@pytest.fixture(scope="module")
def scanned(peers: Peers) -> Inventory:
    return peers.collector().collect(CollectContext(CLASSIFICATION, workers=4))


def by_id(inv: Inventory) -> dict[str, System]:
    return {s.id: s for s in inv.systems}


def countries(pack: PolicyPack, system: System) -> set[str]:
    resolved = pack.resolve(system.location)
    assert resolved.known, (system.id, resolved.unresolved)
    return set(resolved.countries)


def copies(inv: Inventory, source: str) -> dict[str, str]:
    return {f.target: f.purpose or "" for f in inv.flows
            if f.kind == "replication" and f.source == source}


def test_projects_are_found_under_the_organisation(scanned: Inventory) -> None:
    gaps = {g.scope: g.reason for g in scanned.gaps}
    assert {s.account for s in scanned.systems if s.account} == {"p-eu"}
    # folders are followed recursively (folders/10 → folders/11 → p-denied, p-old)
    assert "project p-denied sqladmin" in gaps
    assert gaps["project p-denied sqladmin"].startswith("permission denied (HTTP 403 PERMISSION_DENIED)")
    # a project pending deletion is said, not silently left out; a refused folder is a gap
    assert "DELETE_REQUESTED" in gaps["project p-old"]
    assert gaps["projects under folders/12"].startswith("permission denied (HTTP 403)")
    # an API not enabled in a project holds nothing there: no gap
    assert not [s for s in gaps if s.startswith("project p-denied spanner")
                or s.startswith("project p-denied bigtable")]
    assert "project p-eu cloudsql region me-central2" in gaps


def test_every_store_is_found_at_its_countries(scanned: Inventory, pack: PolicyPack) -> None:
    systems = by_id(scanned)
    expected = {
        f"{SQL}crm-eu": {"DE"}, f"{SQL}crm-us": {"US"}, f"{SQL}tickets-ch": {"CH"},
        f"{SQL}orphan": {"IN"}, f"{SPANNER}sp-eur": {"NL", "DE", "CH"},
        f"{SPANNER}sp-custom": {"NL", "DE", "CH"}, f"{SPANNER}sp-regional": {"BE"},
        f"{BT}bt": {"BE"}, bucket_id("eu-cmek"): {"DE"},
    }
    for sid, where in expected.items():
        assert countries(pack, systems[sid]) == where, sid


def test_every_copy_is_a_flow_to_the_right_country(scanned: Inventory, pack: PolicyPack) -> None:
    systems = by_id(scanned)

    def to(source: str) -> set[str]:
        return {c for t in copies(scanned, source) for c in countries(pack, systems[t])}

    assert to(f"{SQL}crm-eu") == {"US"}  # the read replica (masterInstanceName)
    assert "masterInstanceName" in copies(scanned, f"{SQL}crm-eu")[f"{SQL}crm-us"]
    assert systems[f"{SQL}crm-us"].data_categories == {"contact"} or \
        systems[f"{SQL}crm-us"].classified is False
    assert len(to(f"{SQL}tickets-ch")) == 27  # backups in the EU multi-region
    assert to(f"{SPANNER}sp-custom") == {"JP"}  # a read-only replica of a custom config
    assert not copies(scanned, f"{SPANNER}sp-eur")  # a base config is one location
    assert to(f"{BT}bt") == {"US"}  # the second cluster
    # a replica whose primary is in a project not read: the source is unknown
    [orphan] = [f for f in scanned.flows if f.target == f"{SQL}orphan"]
    assert pack.resolve(systems[orphan.source].location).any_country


def test_every_key_is_located_with_its_protection_level(scanned: Inventory) -> None:
    systems = by_id(scanned)
    [sql] = systems[f"{SQL}crm-eu"].keys
    assert (sql.region, sql.protection_level, sql.account) == ("europe-west3", "HSM", "kms-p")
    [bt] = systems[f"{BT}bt"].keys
    assert (bt.region, bt.protection_level, bt.origin) == ("europe-west1", "EXTERNAL_VPC",
                                                           "EXTERNAL_KEY_MANAGER")
    assert (sql.origin, bt.key_manager) == ("CLOUD_KMS", "CUSTOMER")
    [gcs] = systems[bucket_id("eu-cmek")].keys
    assert (gcs.region, gcs.protection_level) == ("europe-west3", "EXTERNAL")
    [plain] = systems[bucket_id("eu-plain")].keys
    assert (plain.key, plain.key_manager) == ("", "GOOGLE")
    [managed] = systems[f"{SQL}crm-us"].keys
    assert managed.key_manager == "GOOGLE"
    # a key that cannot be described keeps its location from its name, and is a gap
    [hidden] = systems[f"{SQL}tickets-ch"].keys
    assert hidden.region == "us" and hidden.unknown_reason
    assert f"kms key {KEY_DENIED}" in {g.scope for g in scanned.gaps}


def test_classified_only_keeps_the_replica_of_classified_data(peers: Peers) -> None:
    inv = peers.collector().collect(CollectContext(CLASSIFICATION, classified_only=True))
    systems = by_id(inv)
    assert f"{SQL}crm-us" in systems or any(f.target == f"{SQL}crm-us" for f in inv.flows)


def test_the_role_grants_exactly_the_permissions_the_calls_need(peers: Peers) -> None:
    for p in peers.all:
        p.requests.clear()
    peers.collector().collect(CollectContext(CLASSIFICATION, workers=4))
    made: set[str] = set()
    for api, peer in (("sqladmin", peers.sql), ("spanner", peers.spanner),
                      ("bigtableadmin", peers.bigtable), ("cloudkms", peers.kms),
                      ("cloudresourcemanager", peers.rm)):
        for raw in peer.requests:
            made.add(PERMISSIONS[f"{api} {_method(api, unquote(urlsplit(raw).path))}"])
    assert set(PERMISSIONS.values()) == made  # every listed permission is used
    role = yaml.safe_load((ROOT / "policies" / "iam" / "gcp-readonly-role.yaml").read_text())
    assert set(role["includedPermissions"]) == made | {
        "storage.buckets.list", "cloudasset.assets.searchAllResources"}


def _method(api: str, path: str) -> str:
    segs = [s for s in path.split("/") if s]
    if api == "cloudresourcemanager":
        return f"{segs[1]}.list"
    if api == "cloudkms":
        return "cryptoKeys.get"
    if api == "spanner" and "instanceConfigs" in segs:
        return "instanceConfigs.get"
    return "clusters.list" if segs[-1] == "clusters" else "instances.list"


def test_denied_answers_are_googles_error_document() -> None:
    status, body = denied("cloudsql.instances.list", "projects/p")
    assert status == 403 and body["error"]["status"] == "PERMISSION_DENIED"


def test_cli_discovers_and_reads_in_depth(peers: Peers, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from click.testing import CliRunner

    from residency.cli.main import cli

    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    result = CliRunner().invoke(cli, [
        "scan", "--gcp-discover", ORG, "--gcp-in-depth", "--gcp-endpoint", peers.gcs.url,
        "--gcp-api-endpoint", f"cloudresourcemanager={peers.rm.url}",
        "--gcp-api-endpoint", f"sqladmin={peers.sql.url}",
        "--gcp-api-endpoint", f"spanner={peers.spanner.url}",
        "--gcp-api-endpoint", f"bigtableadmin={peers.bigtable.url}",
        "--gcp-api-endpoint", f"cloudkms={peers.kms.url}",
        "--map", str(ROOT / "tests" / "collectors" / "data" / "cloud_map.yaml"),
        "--format", "json"])
    assert result.exit_code == 1, result.output  # the gaps are RES-S001
    doc = json.loads(result.stdout)
    systems = {s["id"]: s for s in doc["systems"]}
    assert systems[f"{SQL}crm-us"]["countries"] == ["US"]
    assert systems[f"{SPANNER}sp-custom#replica/asia-northeast1"]["countries"] == ["JP"]
    assert any("project p-old" in g["scope"] for g in doc["coverage_gaps"])
    bad = CliRunner().invoke(cli, ["scan", "--gcp-discover", "projects/1"])
    assert bad.exit_code == 2 and "--gcp-discover" in bad.stderr
    bad = CliRunner().invoke(cli, ["scan", "--gcp", "p", "--gcp-api-endpoint", "nope=x"])
    assert bad.exit_code == 2 and "--gcp-api-endpoint" in bad.stderr
