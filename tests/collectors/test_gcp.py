"""The Cloud Storage collector against a local JSON API peer, through the real SDK client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from residency.cli.main import cli
from residency.cli.scan_gcp import build_gcp
from residency.collectors.gcp import TAG_LOCATION_TYPE, GcpCollector, bucket_id
from residency.collectors.interface import CollectContext
from residency.demo.fake_gcs import FakeGcs, bucket, forbidden
from residency.model import Classification, ClassificationValue, Inventory, System
from residency.policy.pack import PolicyPack

MAP = Path(__file__).parent / "data" / "cloud_map.yaml"
EU27 = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
    "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
})
CLASSIFICATION = Classification(
    "data-classification", (("customer-pii", ClassificationValue(frozenset({"contact"}))),)
)


def standard_fake() -> FakeGcs:
    """P1: five buckets over three pages (EU, EUR4, custom dual-region, region, NAM4) and one
    unreachable bucket; P2: 403; P3 (not listed): 404."""
    return FakeGcs(
        projects={
            "p1": [
                bucket("eu-customers", "EU", "multi-region",
                       labels={"data-classification": "customer-pii", "team": "crm"}),
                bucket("eur4-backups", "EUR4", "dual-region",
                       labels={"data-classification": "customer-pii"}),
                bucket("custom-dual", "EU", "dual-region",
                       labels={"data-classification": "customer-pii"},
                       data_locations=["EUROPE-WEST1", "EUROPE-WEST4"]),
                bucket("frankfurt-logs", "EUROPE-WEST3", "region"),
                bucket("us-analytics", "NAM4", "dual-region",
                       labels={"data-classification": "customer-pii"}),
            ],
        },
        errors={"p2": forbidden("p2")},
        unreachable={"p1": ["offline-bucket"]},
    )


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGcs]:
    server = standard_fake().start()
    yield server
    server.stop()


def collect(fake: FakeGcs, projects: list[str], classified_only: bool = False) -> Inventory:
    anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]

    def factory(project: str) -> Any:
        return storage.Client(project=project, credentials=anonymous,
                              client_options={"api_endpoint": fake.url})

    return GcpCollector(factory, projects).collect(
        CollectContext(CLASSIFICATION, classified_only=classified_only, workers=4)
    )


def by_name(inv: Inventory) -> dict[str, System]:
    return {s.name or s.id: s for s in inv.systems}


def test_locations_are_reported_as_the_api_spells_them(fake: FakeGcs) -> None:
    systems = by_name(collect(fake, ["p1"]))
    assert systems["eu-customers"].location.regions == ("EU",)
    assert systems["eur4-backups"].location.regions == ("EUR4",)
    assert systems["frankfurt-logs"].location.regions == ("EUROPE-WEST3",)
    # a configurable dual-region says `EU` but stores only in its two data locations
    assert systems["custom-dual"].location.regions == ("EUROPE-WEST1", "EUROPE-WEST4")
    assert all(s.location.provider == "gcp" for s in systems.values())


def test_the_pack_resolves_multi_dual_and_custom_regions(fake: FakeGcs, pack: PolicyPack) -> None:
    systems = by_name(collect(fake, ["p1"]))
    resolved = {name: pack.resolve(s.location) for name, s in systems.items()}
    assert resolved["eu-customers"].countries == EU27
    assert resolved["eur4-backups"].countries == {"NL", "FI"}
    assert resolved["custom-dual"].countries == {"BE", "NL"}
    assert resolved["us-analytics"].countries == {"US"}
    assert resolved["frankfurt-logs"].countries == {"DE"}


def test_ids_labels_and_location_type(fake: FakeGcs) -> None:
    systems = by_name(collect(fake, ["p1"]))
    eu = systems["eu-customers"]
    assert eu.id == eu.resource_id == "//storage.googleapis.com/projects/_/buckets/eu-customers"
    assert eu.account == "p1"
    tags = dict(eu.tags)
    assert tags["team"] == "crm"
    assert tags[TAG_LOCATION_TYPE] == "multi-region"
    assert dict(systems["custom-dual"].tags)[TAG_LOCATION_TYPE] == "dual-region"
    assert eu.classified and eu.data_categories == {"contact"}
    assert not systems["frankfurt-logs"].classified


def test_every_page_is_read(fake: FakeGcs) -> None:
    fake.requests.clear()
    systems = by_name(collect(fake, ["p1"]))
    assert {"eu-customers", "eur4-backups", "custom-dual", "frankfurt-logs",
            "us-analytics"} <= set(systems)
    tokens = [r for r in fake.requests if "project=p1" in r]
    assert len(tokens) == 3  # five buckets, two per page
    assert any("pageToken=4" in r for r in tokens)


def test_multi_regions_are_not_replication_flows(fake: FakeGcs) -> None:
    assert collect(fake, ["p1"]).flows == ()


def test_unreachable_bucket_keeps_an_unknown_location(fake: FakeGcs, pack: PolicyPack) -> None:
    offline = by_name(collect(fake, ["p1"]))["offline-bucket"]
    assert offline.location.unknown_reason is not None
    assert "unreachable" in offline.location.unknown_reason
    assert pack.resolve(offline.location).any_country


def test_forbidden_and_missing_projects_are_gaps_and_other_projects_stay(fake: FakeGcs) -> None:
    inv = collect(fake, ["p1", "p2", "p3"])
    gaps = {g.scope: g for g in inv.gaps}
    assert set(gaps) == {"project p2", "project p3"}
    assert gaps["project p2"].provider == "gcp"
    assert gaps["project p2"].reason.startswith("permission denied (HTTP 403)")
    assert "storage.buckets.list" in gaps["project p2"].reason
    assert "http://" not in gaps["project p2"].reason  # the request line is trimmed
    assert gaps["project p3"].reason.startswith("project not found (HTTP 404)")
    assert "eu-customers" in by_name(inv)


def test_an_error_on_a_later_page_keeps_the_pages_read() -> None:
    server = FakeGcs(
        projects={"px": [bucket(f"b{i}", "US", "multi-region") for i in range(5)]},
        page_errors={"px": ("2", forbidden("px"))},
    ).start()
    try:
        inv = collect(server, ["px"])
    finally:
        server.stop()
    assert [s.name for s in inv.systems] == ["b0", "b1"]
    assert len(inv.gaps) == 1
    assert "2 bucket(s) read before the error are kept" in inv.gaps[0].reason


def test_classified_only_skips_unlabelled_buckets(fake: FakeGcs) -> None:
    names = set(by_name(collect(fake, ["p1"], classified_only=True)))
    assert "frankfurt-logs" not in names
    assert "eu-customers" in names


def test_build_gcp_honours_the_emulator_host(
    fake: FakeGcs, pack: PolicyPack, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert build_gcp(pack, aws=True, azure=False) is None
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake.url)
    collector = build_gcp(pack, gcp=("p1",), gcp_endpoint=None)
    assert collector is not None
    inv = collector.collect(CollectContext(CLASSIFICATION))
    assert bucket_id("eur4-backups") in {s.id for s in inv.systems}


def test_the_shipped_role_grants_exactly_the_calls_made() -> None:
    root = Path(__file__).resolve().parents[2]
    role = yaml.safe_load((root / "policies" / "iam" / "gcp-readonly-role.yaml").read_text())
    # buckets.list (Cloud Storage), searchAllResources (Cloud Asset Inventory) and the
    # in-depth reads (gcp_services.PERMISSIONS; each call is checked in test_gcp_services)
    from residency.collectors.gcp_services import PERMISSIONS

    assert sorted(role["includedPermissions"]) == sorted(
        {"cloudasset.assets.searchAllResources", "storage.buckets.list", *PERMISSIONS.values()})


def test_cli_scan_gcp_end_to_end(fake: FakeGcs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    result = CliRunner().invoke(cli, [
        "scan", "--gcp", "p1", "--gcp", "p2", "--gcp-endpoint", fake.url,
        "--map", str(MAP), "--format", "json", "--as-of", "2026-01-15",
    ])
    assert result.exit_code == 1, result.output  # RES-S001 is an error
    doc = json.loads(result.stdout)
    s001 = [f for f in doc["findings"] if f["rule"] == "RES-S001"]
    assert [f["subject"] for f in s001] == ["gcp:project p2"]
    systems = {s["id"]: s for s in doc["systems"]}
    assert set(systems[bucket_id("eu-customers")]["countries"]) == EU27
    assert systems[bucket_id("eur4-backups")]["countries"] == ["FI", "NL"]
    assert systems[bucket_id("custom-dual")]["countries"] == ["BE", "NL"]
    assert systems[bucket_id("custom-dual")]["location"] == "gcp:EUROPE-WEST1+EUROPE-WEST4"
    assert systems[bucket_id("offline-bucket")]["any_country"] is True
    rules = {(f["rule"], f["subject"]) for f in doc["findings"]}
    assert ("RES-I001", bucket_id("frankfurt-logs")) in rules
    assert ("RES-L001", bucket_id("offline-bucket")) in rules
    assert doc["coverage_gaps"][0]["scope"] == "project p2"


def test_shards_split_projects_and_record_history(
    fake: FakeGcs, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`scan --shard K/N` scans each project in exactly one shard; each shard's run is
    recorded and `evaluate --runs` merges them into one picture."""
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    db = f"sqlite:///{tmp_path / 'h.db'}"
    seen: list[set[str]] = []
    for k in (1, 2):
        result = CliRunner().invoke(cli, [
            "scan", "--gcp", "p1", "--gcp", "p2", "--gcp", "p3", "--gcp-endpoint", fake.url,
            "--map", str(MAP), "--format", "json", "--shard", f"{k}/2", "--db", db,
        ])
        assert result.exit_code in (0, 1), result.output
        doc = json.loads(result.stdout)
        accounts = {s["id"] for s in doc["systems"] if s["origin"] == "collected"}
        gaps = {g["scope"] for g in doc["coverage_gaps"]}
        seen.append(accounts | gaps)
    assert not seen[0] & seen[1]
    result = CliRunner().invoke(cli, ["history", "--db", db])
    assert result.exit_code == 0 and "scan:gcp#1/2" in result.output
    merged = CliRunner().invoke(cli, ["evaluate", "--runs", "1,2", "--db", db, "--map", str(MAP),
                                      "--format", "json"])
    doc = json.loads(merged.stdout)
    assert {s["id"] for s in doc["systems"] if s["origin"] == "collected"} | {
        g["scope"] for g in doc["coverage_gaps"]} == seen[0] | seen[1]


def test_fail_on_new_only_fails_on_what_is_new(
    fake: FakeGcs, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    db = f"sqlite:///{tmp_path / 'h.db'}"
    args = ["scan", "--gcp", "p1", "--gcp-endpoint", fake.url, "--map", str(MAP),
            "--db", db, "--fail-on-new"]
    # p1's unreadable bucket is RES-L001: fail-closed findings fail every night, new or not
    stuck = CliRunner().invoke(cli, args)
    assert stuck.exit_code == 1 and "RES-L001" in stuck.stderr, stuck.output
    fake.unreachable.clear()
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output  # the first run is the baseline
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output  # nothing new
    widened = CliRunner().invoke(cli, [*args[:3], "--gcp", "p2", *args[3:]])
    assert widened.exit_code == 1  # same scope, and p2's 403 is a new RES-S001 error
    no_db = CliRunner().invoke(cli, ["scan", "--gcp", "p1", "--gcp-endpoint", fake.url,
                                     "--fail-on-new"])
    assert no_db.exit_code == 2 and "--db" in no_db.stderr
