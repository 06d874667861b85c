"""Generate a `terraform show -json` plan with N resources across AWS, Google Cloud and Azure.

The shape follows real plans (hashicorp/terraform show-json testdata): `planned_values` with
nested `child_modules`, one `resource_changes` entry per resource with `before`/`after`/
`after_unknown`, `configuration` with provider aliases and module calls, `prior_state` for
resources that already exist. AWS resources carry a provider-v6 `region` argument so that
per-resource tools (Checkov) can judge the location too. About 2.3 kB per resource, like
real plans (23 MB for 10,000).

    python benchmarks/gate_generate.py 10000 benchmarks/out/plan-10000.json
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

REG = {
    "aws": "registry.terraform.io/hashicorp/aws",
    "google": "registry.terraform.io/hashicorp/google",
    "azurerm": "registry.terraform.io/hashicorp/azurerm",
}
AWS_REGIONS = ["eu-central-1", "eu-west-1", "eu-west-3", "eu-north-1", "us-east-1",
               "ap-southeast-2"]
GCP_LOCATIONS = ["EUROPE-WEST3", "EUROPE-WEST1", "EU", "EUR4", "US", "ASIA-NORTHEAST1"]
AZ_LOCATIONS = ["westeurope", "northeurope", "germanywestcentral", "brazilsouth", "eastus"]
CLASSES = ["customer-pii", "hr", "public", None, None]
MODULES = 20


def _aws_bucket(i: int, rnd: random.Random) -> tuple[str, dict[str, Any], dict[str, Any]]:
    cls = rnd.choice(CLASSES)
    tags = {"owner": f"team-{i % 17}"}
    if cls:
        tags["data-classification"] = cls
    values = {
        "bucket": f"acme-data-{i:06d}", "bucket_prefix": None, "force_destroy": False,
        "object_lock_enabled": False, "region": rnd.choice(AWS_REGIONS), "tags": tags,
        "tags_all": dict(tags, **{"managed-by": "terraform", "cost-center": "cc-4711"}),
        "timeouts": None, "acceleration_status": "", "request_payer": "BucketOwner",
        "grant": [{"id": "d5e5f4b1c1a3c9", "permissions": ["FULL_CONTROL"], "type": "CanonicalUser",
                   "uri": ""}],
        "server_side_encryption_configuration": [{"rule": [{
            "apply_server_side_encryption_by_default": [{"kms_master_key_id": "",
                                                         "sse_algorithm": "AES256"}],
            "bucket_key_enabled": False}]}],
        "versioning": [{"enabled": True, "mfa_delete": False}],
        "cors_rule": [], "lifecycle_rule": [], "logging": [], "website": [],
        "object_lock_configuration": [], "replication_configuration": [],
    }
    unknown = {"arn": True, "bucket_domain_name": True, "bucket_regional_domain_name": True,
               "hosted_zone_id": True, "id": True, "policy": True, "website_domain": True,
               "website_endpoint": True, "acl": True, "tags": {}, "tags_all": {},
               "grant": [{"permissions": [False]}], "versioning": [{}],
               "server_side_encryption_configuration": [{"rule": [{
                   "apply_server_side_encryption_by_default": [{}]}]}]}
    return "aws_s3_bucket", values, unknown


def _aws_table(i: int, rnd: random.Random) -> tuple[str, dict[str, Any], dict[str, Any]]:
    cls = rnd.choice(CLASSES)
    tags = {"data-classification": cls} if cls else {}
    replicas = [{"region_name": r, "kms_key_arn": None, "point_in_time_recovery": False,
                 "propagate_tags": True} for r in rnd.sample(AWS_REGIONS, rnd.choice([0, 0, 1]))]
    values = {
        "name": f"table-{i:06d}", "billing_mode": "PAY_PER_REQUEST", "hash_key": "pk",
        "range_key": "sk", "region": rnd.choice(AWS_REGIONS),
        "attribute": [{"name": "pk", "type": "S"}, {"name": "sk", "type": "S"}],
        "deletion_protection_enabled": True, "stream_enabled": bool(replicas),
        "stream_view_type": "NEW_AND_OLD_IMAGES" if replicas else None, "replica": replicas,
        "point_in_time_recovery": [{"enabled": True}], "server_side_encryption": [],
        "ttl": [{"attribute_name": "expires", "enabled": True}], "global_secondary_index": [],
        "local_secondary_index": [], "import_table": [], "read_capacity": None,
        "write_capacity": None, "table_class": "STANDARD", "tags": tags,
        "tags_all": dict(tags, **{"managed-by": "terraform"}), "timeouts": None,
    }
    unknown = {"arn": True, "id": True, "stream_arn": True, "stream_label": True, "tags": {},
               "tags_all": {}, "replica": [{"arn": True, "stream_arn": True} for _ in replicas],
               "attribute": [{}, {}], "point_in_time_recovery": [{}], "ttl": [{}]}
    return "aws_dynamodb_table", values, unknown


def _aws_role(i: int, rnd: random.Random) -> tuple[str, dict[str, Any], dict[str, Any]]:
    values = {"name": f"role-{i:06d}", "path": "/", "description": "workload role",
              "assume_role_policy": json.dumps({"Version": "2012-10-17", "Statement": [{
                  "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                  "Action": "sts:AssumeRole"}]}),
              "force_detach_policies": False, "max_session_duration": 3600,
              "permissions_boundary": None, "tags": {"owner": f"team-{i % 17}"},
              "tags_all": {"owner": f"team-{i % 17}", "managed-by": "terraform"}}
    unknown = {"arn": True, "create_date": True, "id": True, "inline_policy": True,
               "managed_policy_arns": True, "unique_id": True, "tags": {}, "tags_all": {}}
    return "aws_iam_role", values, unknown


def _gcs(i: int, rnd: random.Random) -> tuple[str, dict[str, Any], dict[str, Any]]:
    cls = rnd.choice(CLASSES)
    labels = {"data-classification": cls} if cls else {}
    location = rnd.choice(GCP_LOCATIONS)
    values = {
        "name": f"acme-gcs-{i:06d}", "location": location, "storage_class": "STANDARD",
        "force_destroy": False, "labels": labels,
        "effective_labels": dict(labels, **{"goog-terraform-provisioned": "true"}),
        "terraform_labels": dict(labels, **{"goog-terraform-provisioned": "true"}),
        "uniform_bucket_level_access": True, "public_access_prevention": "enforced",
        "custom_placement_config": [], "versioning": [{"enabled": True}], "autoclass": [],
        "cors": [], "lifecycle_rule": [{"action": [{"type": "Delete", "storage_class": ""}],
                                        "condition": [{"age": 365, "with_state": "ANY"}]}],
        "logging": [], "retention_policy": [], "website": [], "encryption": [],
        "default_event_based_hold": None, "requester_pays": None, "timeouts": None,
    }
    unknown = {"id": True, "project": True, "project_number": True, "self_link": True,
               "url": True, "rpo": True, "soft_delete_policy": True, "labels": {},
               "effective_labels": {}, "terraform_labels": {}, "versioning": [{}],
               "lifecycle_rule": [{"action": [{}], "condition": [{"matches_prefix": True}]}]}
    return "google_storage_bucket", values, unknown


def _gce_disk(i: int, rnd: random.Random) -> tuple[str, dict[str, Any], dict[str, Any]]:
    cls = rnd.choice(CLASSES)
    labels = {"data-classification": cls} if cls else {}
    zone = rnd.choice(["europe-west3-b", "europe-west1-c", "us-central1-a", "europe-north1-a"])
    values = {"name": f"disk-{i:06d}", "zone": zone, "size": 200, "type": "pd-balanced",
              "labels": labels, "effective_labels": labels, "terraform_labels": labels,
              "physical_block_size_bytes": 4096, "snapshot": None, "image": None,
              "description": "data disk", "disk_encryption_key": [], "timeouts": None}
    unknown = {"id": True, "self_link": True, "users": True, "label_fingerprint": True,
               "provisioned_iops": True, "labels": {}, "effective_labels": {},
               "terraform_labels": {}}
    return "google_compute_disk", values, unknown


def _az_storage(i: int, rnd: random.Random) -> tuple[str, dict[str, Any], dict[str, Any]]:
    cls = rnd.choice(CLASSES)
    tags = {"data-classification": cls} if cls else {}
    values = {
        "name": f"acmest{i:06d}", "location": rnd.choice(AZ_LOCATIONS),
        "resource_group_name": f"rg-data-{i % 50}", "account_tier": "Standard",
        "account_kind": "StorageV2", "account_replication_type": rnd.choice(["LRS", "ZRS", "GRS"]),
        "access_tier": "Hot", "https_traffic_only_enabled": True, "min_tls_version": "TLS1_2",
        "allow_nested_items_to_be_public": False, "shared_access_key_enabled": True,
        "public_network_access_enabled": False, "infrastructure_encryption_enabled": True,
        "is_hns_enabled": False, "nfsv3_enabled": False, "sftp_enabled": False, "tags": tags,
        "network_rules": [], "identity": [], "blob_properties": [], "timeouts": None,
    }
    unknown = {"id": True, "primary_access_key": True, "primary_blob_endpoint": True,
               "primary_location": True, "secondary_location": True,
               "secondary_access_key": True, "primary_connection_string": True,
               "queue_properties": True, "share_properties": True, "tags": {}}
    return "azurerm_storage_account", values, unknown


KINDS = [(_aws_bucket, 4), (_aws_table, 1), (_aws_role, 2), (_gcs, 2), (_gce_disk, 1),
         (_az_storage, 2)]


def generate(n: int, seed: int = 1) -> dict[str, Any]:
    rnd = random.Random(seed)
    weights = [w for _, w in KINDS]
    root: dict[str, Any] = {"resources": []}
    children: dict[str, dict[str, Any]] = {}
    changes: list[dict[str, Any]] = []
    prior: list[dict[str, Any]] = []
    conf_root: dict[str, Any] = {"resources": []}
    conf_mods: dict[str, list[dict[str, Any]]] = {}
    for i in range(n):
        make = rnd.choices([k for k, _ in KINDS], weights)[0]
        type_, values, unknown = make(i, rnd)
        prov = type_.split("_", 1)[0]
        mod = f"module.svc{i % MODULES:02d}" if i % 3 else ""
        name = f"r{i:06d}"
        address = f"{mod}.{type_}.{name}" if mod else f"{type_}.{name}"
        existing = i % 4 == 0
        entry = {"address": address, "mode": "managed", "type": type_, "name": name,
                 "provider_name": REG[prov], "schema_version": 0, "values": values,
                 "sensitive_values": {"tags": {}, "tags_all": {}}}
        (children.setdefault(mod, {"resources": [], "address": mod})["resources"]
         if mod else root["resources"]).append(entry)
        rc: dict[str, Any] = {"address": address}
        if mod:
            rc["module_address"] = mod
        rc.update({"mode": "managed", "type": type_, "name": name, "provider_name": REG[prov],
                   "change": {"actions": ["no-op"] if existing else ["create"],
                              "before": values if existing else None, "after": values,
                              "after_unknown": {} if existing else unknown,
                              "before_sensitive": {} if existing else False,
                              "after_sensitive": {"tags": {}, "tags_all": {}}}})
        changes.append(rc)
        if existing:
            prior.append(entry)
        pkey = {"aws": "aws" if i % 5 else "aws.us", "google": "google",
                "azurerm": "azurerm"}[prov]
        conf = {"address": f"{type_}.{name}", "mode": "managed", "type": type_, "name": name,
                "provider_config_key": pkey, "schema_version": 0,
                "expressions": {k: {"constant_value": v} for k, v in values.items()
                                if isinstance(v, str | int | bool) and k not in ("region",)}}
        if mod:
            conf_mods.setdefault(mod, []).append(conf)
        else:
            conf_root["resources"].append(conf)
    planned: dict[str, Any] = dict(root)
    planned["child_modules"] = list(children.values())
    conf_root["module_calls"] = {
        mod.split(".", 1)[1]: {"source": "./modules/service", "module": {"resources": res},
                               "providers": {"aws": "aws"}}
        for mod, res in conf_mods.items()
    }
    conf_root["variables"] = {"region": {"default": "eu-central-1"}}
    return {
        "format_version": "1.2",
        "terraform_version": "1.9.8",
        "variables": {"region": {"value": "eu-central-1"}},
        "planned_values": {"root_module": planned},
        "resource_changes": changes,
        "prior_state": {"format_version": "1.0", "terraform_version": "1.9.8",
                        "values": {"root_module": {"resources": prior}}},
        "configuration": {
            "provider_config": {
                "aws": {"name": "aws", "full_name": REG["aws"], "version_constraint": "~> 6.0",
                        "expressions": {"region": {"references": ["var.region"]}}},
                "aws.us": {"name": "aws", "full_name": REG["aws"], "alias": "us",
                           "expressions": {"region": {"constant_value": "us-east-1"}}},
                "google": {"name": "google", "full_name": REG["google"],
                           "expressions": {"project": {"constant_value": "acme-prod"},
                                           "region": {"constant_value": "europe-west3"}}},
                "azurerm": {"name": "azurerm", "full_name": REG["azurerm"],
                            "expressions": {"features": [{}]}},
            },
            "root_module": conf_root,
        },
        "timestamp": "2026-11-30T10:00:00Z",
        "applyable": True,
        "complete": True,
        "errored": False,
    }


def main() -> None:
    n = int(sys.argv[1])
    out = Path(sys.argv[2])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(generate(n), separators=(",", ":")))  # terraform writes compact JSON
    print(f"{out}: {n} resources, {out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
