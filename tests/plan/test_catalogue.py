"""The resource catalogue: types whose location is not in location/region/zone, copies from
attribute paths and region pairs, awscc/azapi, and failing closed on what it does not know.

Plans here are hand-made in the shape `terraform show -json` writes (planned_values +
configuration); the attribute names are the providers' documented arguments.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from residency.model import Classification, ClassificationValue, Location
from residency.plan.reader import PlanContext, read_plan
from residency.policy.pack import PolicyPack

ROOT = Path(__file__).resolve().parents[2]
CLS = Classification("data-classification", (
    ("pii", ClassificationValue(frozenset({"contact_details"}))),))


def _plan(resources: list[dict[str, Any]], providers: dict[str, Any] | None = None
          ) -> dict[str, Any]:
    conf = [{"address": r["address"], "mode": "managed", "type": r["type"], "name": r["name"],
             "provider_config_key": r["type"].split("_", 1)[0].replace("google", "google"),
             "expressions": {}} for r in resources]
    return {
        "format_version": "1.2",
        "planned_values": {"root_module": {"resources": [
            {"mode": "managed", "provider_name": "x", **r} for r in resources]}},
        "configuration": {"provider_config": providers or {
            "aws": {"name": "aws", "expressions": {"region": {"constant_value": "eu-west-1"}}},
            "awscc": {"name": "awscc", "expressions": {"region": {"constant_value":
                                                                   "eu-central-1"}}},
            "google": {"name": "google", "expressions": {"region": {"constant_value":
                                                                     "europe-west1"}}},
        }, "root_module": {"resources": conf}},
    }


def _res(type_: str, name: str, values: dict[str, Any], tagged: bool = True) -> dict[str, Any]:
    label = "labels" if type_.startswith("google_") else "tags"
    if tagged:
        values = {**values, label: {"data-classification": "pii"}}
    return {"address": f"{type_}.{name}", "type": type_, "name": name, "values": values}


def _read(pack: PolicyPack, *resources: dict[str, Any]) -> Any:
    ctx = PlanContext(CLS, pack.paired_region, pack.catalogue)
    inv = read_plan(_plan(list(resources)), ctx)
    return {s.id: s for s in inv.systems}, inv.flows


def _countries(pack: PolicyPack, loc: Location) -> frozenset[str]:
    res = pack.resolve(loc)
    return frozenset({"ANY"}) if res.any_country or res.unresolved else res.countries


def test_locations_outside_location_region_zone(pack: PolicyPack) -> None:
    systems, _ = _read(
        pack,
        _res("google_firestore_database", "db", {"name": "(default)", "location_id": "eur3"}),
        _res("google_spanner_instance", "sp", {"config": "regional-europe-west3"}),
        _res("google_bigtable_instance", "bt", {"cluster": [
            {"cluster_id": "a", "zone": "europe-west1-b"}]}),
        _res("google_app_engine_application", "app", {"location_id": "europe-west2"}),
        _res("google_pubsub_topic", "t", {"message_storage_policy": [
            {"allowed_persistence_regions": ["europe-west1", "europe-west4"]}]}),
    )
    assert systems["google_spanner_instance.sp"].location.regions == ("europe-west3",)
    assert systems["google_bigtable_instance.bt"].location.regions == ("europe-west1",)
    assert systems["google_app_engine_application.app"].location.regions == ("europe-west2",)
    assert systems["google_pubsub_topic.t"].location.regions == ("europe-west1", "europe-west4")
    assert systems["google_firestore_database.db"].location.regions == ("eur3",)


def test_spanner_configs_are_not_cloud_storage_locations(pack: PolicyPack) -> None:
    """`eur5` is Belgium + London for a bucket but London/Belgium/Netherlands for Spanner."""
    systems, _ = _read(
        pack,
        _res("google_spanner_instance", "sp", {"config": "projects/p/instanceConfigs/eur5"}),
        _res("google_storage_bucket", "b", {"location": "EUR5"}),
    )
    assert _countries(pack, systems["google_spanner_instance.sp"].location) == {"GB", "BE", "NL"}
    assert _countries(pack, systems["google_storage_bucket.b"].location) == {"BE", "GB"}


def test_pubsub_without_a_storage_policy_may_be_anywhere(pack: PolicyPack) -> None:
    systems, _ = _read(pack, _res("google_pubsub_topic", "t", {"name": "t"}))
    assert _countries(pack, systems["google_pubsub_topic.t"].location) == {"ANY"}


def test_copies_from_attribute_paths(pack: PolicyPack) -> None:
    systems, flows = _read(
        pack,
        _res("google_bigtable_instance", "bt", {"cluster": [
            {"cluster_id": "a", "zone": "europe-west1-b"},
            {"cluster_id": "b", "zone": "us-east1-c"}]}),
        _res("aws_secretsmanager_secret", "s", {"name": "s", "replica": [
            {"region": "us-west-2"}]}),
        _res("aws_backup_plan", "p", {"name": "p", "rule": [{"copy_action": [
            {"destination_vault_arn": "arn:aws:backup:ap-south-1:111122223333:backup-vault:dr"}
        ]}]}),
    )
    pairs = {(f.source, f.target) for f in flows}
    assert ("google_bigtable_instance.bt", "google_bigtable_instance.bt/replica/us-east1") in pairs
    assert systems["google_bigtable_instance.bt/replica/us-east1"].location.regions == (
        "us-east1",)
    assert ("aws_secretsmanager_secret.s", "aws_secretsmanager_secret.s/replica/us-west-2") in pairs
    assert any(t.endswith("/replica/ap-south-1") for _, t in pairs)  # the vault ARN's region


def test_cosmos_geo_locations_are_copies(pack: PolicyPack) -> None:
    providers = {"azurerm": {"name": "azurerm", "expressions": {}}}
    cosmos = _res("azurerm_cosmosdb_account", "c", {"location": "West Europe", "geo_location": [
        {"location": "westeurope", "failover_priority": 0},
        {"location": "eastus", "failover_priority": 1}]})
    ctx = PlanContext(CLS, pack.paired_region, pack.catalogue)
    inv = read_plan(_plan([cosmos], providers), ctx)
    systems = {s.id: s for s in inv.systems}
    assert systems["azurerm_cosmosdb_account.c"].location.regions == ("westeurope",)
    assert systems["azurerm_cosmosdb_account.c/replica/eastus"].location.regions == ("eastus",)
    assert "azurerm_cosmosdb_account.c/replica/westeurope" not in systems  # its own region


def test_geo_redundancy_by_the_pair(pack: PolicyPack) -> None:
    providers = {"azurerm": {"name": "azurerm", "expressions": {}}}
    pg = _res("azurerm_postgresql_flexible_server", "pg", {
        "location": "northeurope", "geo_redundant_backup_enabled": True})
    ctx = PlanContext(CLS, pack.paired_region, pack.catalogue)
    inv = read_plan(_plan([pg], providers), ctx)
    systems = {s.id: s for s in inv.systems}
    assert systems["azurerm_postgresql_flexible_server.pg/secondary"].location.regions == (
        pack.paired_region("azure", "northeurope"),)


def test_awscc_takes_its_providers_region(pack: PolicyPack) -> None:
    systems, _ = _read(pack, _res("awscc_s3_bucket", "b", {"bucket_name": "b"}))
    assert systems["awscc_s3_bucket.b"].location.regions == ("eu-central-1",)


def test_azapi_resource_by_its_arm_type(pack: PolicyPack) -> None:
    providers = {"azapi": {"name": "azapi", "expressions": {}}}
    body = ('{"properties": {"locations": [{"locationName": "westeurope"}, '
            '{"locationName": "australiaeast"}]}}')  # azapi v1: body as jsonencode() text
    res = {"address": "azapi_resource.cosmos", "type": "azapi_resource", "name": "cosmos",
           "values": {"type": "Microsoft.DocumentDB/databaseAccounts@2024-05-15",
                      "location": "westeurope", "body": body,
                      "tags": {"data-classification": "pii"}}}
    ctx = PlanContext(CLS, pack.paired_region, pack.catalogue)
    inv = read_plan(_plan([res], providers), ctx)
    systems = {s.id: s for s in inv.systems}
    assert systems["azapi_resource.cosmos"].location.regions == ("westeurope",)
    assert systems["azapi_resource.cosmos/replica/australiaeast"].location.regions == (
        "australiaeast",)


def test_a_classified_type_outside_the_catalogue_fails_closed(pack: PolicyPack) -> None:
    systems, _ = _read(pack, _res("aws_brand_new_store", "x", {"name": "x"}))
    loc = systems["aws_brand_new_store.x"].location
    assert loc.unknown_reason and "not in the resource catalogue" in loc.unknown_reason
    assert _countries(pack, loc) == {"ANY"}


def test_a_classified_store_whose_location_is_missing_fails_closed(pack: PolicyPack) -> None:
    systems, _ = _read(pack, _res("google_firestore_database", "db", {"name": "(default)"}))
    loc = systems["google_firestore_database.db"].location
    assert loc.unknown_reason and "location not found" in loc.unknown_reason


def test_known_non_stores_are_left_out_unless_classified(pack: PolicyPack) -> None:
    systems, _ = _read(pack, _res("aws_iam_role", "r", {"name": "r"}, tagged=False),
                       _res("aws_security_group", "sg", {"name": "sg"}, tagged=False),
                       _res("aws_sqs_queue", "q", {"name": "q"}, tagged=False))
    assert set(systems) == {"aws_sqs_queue.q"}  # a data store, unclassified: RES-I001


def test_a_user_adds_a_type_without_a_release(tmp_path: Path) -> None:
    pack_dir = tmp_path / "pack"
    shutil.copytree(ROOT / "policies", pack_dir)
    cat = pack_dir / "catalogue" / "aws.yaml"
    cat.write_text(cat.read_text() + "  aws_brand_new_store: {location: [{attr: home}]}\n")
    pack = PolicyPack.load(pack_dir)
    systems, _ = _read(pack, _res("aws_brand_new_store", "x", {"name": "x",
                                                              "home": "eu-north-1"}))
    assert systems["aws_brand_new_store.x"].location.regions == ("eu-north-1",)


# ---------------------------------------------------------------------- keys (issue 14)
def _gate(pack: PolicyPack, plan: dict[str, Any]) -> Any:
    import datetime as dt

    from residency.datamap import parse_map
    from residency.policy.engine import Engine, EngineOptions

    inv = read_plan(plan, PlanContext(CLS, pack.paired_region, pack.catalogue))
    datamap = parse_map({"version": 1, "parties": [{"id": "acme", "name": "Acme",
                                                    "country": "IE"}],
                         "classification": {"values": {"pii": {
                             "data_categories": ["contact_details"]}}}}, pack, Path("m.yaml"))
    return Engine(pack, EngineOptions(dt.date(2026, 11, 30))).run(datamap, [inv])


def test_the_gate_reads_keys_from_the_catalogue_paths(pack: PolicyPack) -> None:
    mrk = "arn:aws:kms:ap-southeast-2:111122223333:key/mrk-1"
    sse = [{"rule": [{"apply_server_side_encryption_by_default": [
        {"kms_master_key_id": mrk, "sse_algorithm": "aws:kms"}]}]}]
    systems, _ = _read(
        pack,
        _res("aws_s3_bucket", "tickets", {"bucket": "t", "server_side_encryption_configuration":
                                          sse}),
        _res("aws_db_instance", "db", {"identifier": "db", "kms_key_id": "alias/sd-db"}),
        _res("aws_sqs_queue", "q", {"name": "q", "kms_master_key_id": "alias/sd-q"}),
        _res("google_storage_bucket", "g", {"name": "g", "location": "EU", "encryption": [{
            "default_kms_key_name": "projects/p/locations/us-east1/keyRings/r/cryptoKeys/k"}]}))
    [bucket_key] = systems["aws_s3_bucket.tickets"].keys
    assert (bucket_key.arn, bucket_key.region, bucket_key.account) == (
        mrk, "ap-southeast-2", "111122223333")
    [db_key] = systems["aws_db_instance.db"].keys  # an alias: the resource's region
    assert (db_key.key, db_key.region, db_key.unknown_reason) == ("alias/sd-db", "eu-west-1",
                                                                  None)
    assert systems["aws_sqs_queue.q"].keys[0].key == "alias/sd-q"


def test_a_key_outside_the_area_in_a_plan_is_reported(pack: PolicyPack) -> None:
    key = "arn:aws:kms:ap-southeast-2:111122223333:key/k"
    report = _gate(pack, _plan([_res("aws_efs_file_system", "files", {
        "creation_token": "f", "kms_key_id": key})]))
    [finding] = [f for f in report.findings if f.rule == "RES-K001"]
    assert finding.subject == "aws_efs_file_system.files" and finding.countries == ("AU",)
    same = _gate(pack, _plan([_res("aws_efs_file_system", "files", {
        "creation_token": "f", "kms_key_id": "arn:aws:kms:eu-west-1:111122223333:key/k"})]))
    assert not [f for f in same.findings if f.rule == "RES-K001"]


def test_a_key_known_only_after_apply_fails_closed(pack: PolicyPack) -> None:
    plan = _plan([_res("aws_efs_file_system", "files", {"creation_token": "f"})])
    plan["resource_changes"] = [{
        "address": "aws_efs_file_system.files", "mode": "managed",
        "type": "aws_efs_file_system", "name": "files",
        "change": {"actions": ["create"], "after": {"creation_token": "f"},
                   "after_unknown": {"kms_key_id": True}}}]
    inv = read_plan(plan, PlanContext(CLS, pack.paired_region, pack.catalogue))
    [system] = [s for s in inv.systems if s.id == "aws_efs_file_system.files"]
    [key] = system.keys
    assert key.unknown_reason and "kms_key_id unknown until apply" in key.unknown_reason
    [finding] = [f for f in _gate(pack, plan).findings if f.rule == "RES-K001"]
    assert finding.countries == ("*",)
