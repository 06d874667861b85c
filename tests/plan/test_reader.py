"""The plan reader: locations as Terraform decides them, copies as flows, unknowns fail closed."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from residency.errors import InputError
from residency.model import Inventory, Origin
from residency.plan import PlanContext, load_plan, read_plan
from residency.plan.config import strip_instance_keys

from .conftest import FIXTURES


def _read(name: str, ctx: PlanContext) -> Inventory:
    return load_plan(FIXTURES / name, ctx)


def _systems(inv: Inventory) -> dict[str, object]:
    return {s.id: s for s in inv.systems}


def test_aws_regions_from_variables_aliases_and_modules(ctx: PlanContext) -> None:
    s = {x.id: x for x in _read("aws_modules.json", ctx).systems}
    # default provider: region from var.region in the plan's variables
    assert s["aws_s3_bucket.customers"].location.regions == ("eu-central-1",)
    # module given `providers = { aws = aws.us }`: its `module.replica:aws` key maps to aws.us
    assert s["module.replica.aws_s3_bucket.this[0]"].location.regions == ("us-east-1",)
    # a module's own provider block, region from a module variable set by the caller
    assert s["module.archive.aws_s3_bucket.logs"].location.regions == ("eu-west-1",)
    # an aliased provider on a root resource
    assert s["aws_db_instance.reporting"].location.regions == ("us-east-1",)
    # the provider-v6 resource-level `region` argument wins over the provider
    assert s["aws_s3_bucket.tokyo"].location.regions == ("ap-northeast-1",)


def test_actions_and_modes(ctx: PlanContext) -> None:
    s = _systems(_read("aws_modules.json", ctx))
    assert "aws_s3_bucket.invoices" in s  # no-op: existing infrastructure stays
    assert "aws_s3_bucket.legacy" not in s  # delete: leaves
    assert not any(k.startswith("data.") for k in s)
    assert "aws_iam_role.ci" not in s  # global service, unclassified
    assert all(x.origin is Origin.PLANNED for x in _read("aws_modules.json", ctx).systems)


def test_classification_from_tags_and_default_tags(ctx: PlanContext) -> None:
    s = {x.id: x for x in _read("aws_modules.json", ctx).systems}
    bucket = s["aws_s3_bucket.customers"]
    assert bucket.classified and bucket.data_categories == {"contact", "customer"}
    assert ("team", "payments") in bucket.tags  # from the provider's default_tags
    assert not s["module.archive.aws_s3_bucket.logs"].classified


def test_aws_copies_become_flows(ctx: PlanContext) -> None:
    inv = _read("aws_modules.json", ctx)
    flows = {(f.source, f.target) for f in inv.flows if f.kind == "replication"}
    assert ("aws_s3_bucket.customers", "module.replica.aws_s3_bucket.this[0]") in flows
    assert ("aws_dynamodb_table.sessions", "aws_dynamodb_table.sessions/replica/ap-southeast-2") \
        in flows
    src = "arn:aws:rds:eu-central-1:111122223333:db:orders"
    assert (src, "aws_db_instance.reporting") in flows
    s = {x.id: x for x in inv.systems}
    assert s[src].location.regions == ("eu-central-1",)  # region from the source ARN
    fed = {(f.source, f.target) for f in inv.flows if f.kind == "storage"}
    assert ("crm", "aws_s3_bucket.customers") in fed


def test_google_dual_region_zone_and_labels(ctx: PlanContext) -> None:
    s = {x.id: x for x in _read("google.json", ctx).systems}
    assert s["google_storage_bucket.eu_dual"].location.regions == ("europe-west1", "europe-west4")
    assert s["google_storage_bucket.eur4"].location.regions == ("eur4",)
    assert s["google_compute_disk.hr"].location.regions == ("europe-west3",)
    assert s["google_compute_disk.hr"].data_categories == {"employee"}
    # region computed by the provider from its own `region` setting
    assert s["google_sql_database_instance.main"].location.regions == ("europe-west3",)
    assert "google_project_iam_member.ci" not in s  # no location: not a place data lives


def test_azure_grs_copies_to_the_paired_region(ctx: PlanContext) -> None:
    inv = _read("azure_grs.json", ctx)
    s = {x.id: x for x in inv.systems}
    assert s["azurerm_storage_account.brgrs/secondary"].location.regions == ("southcentralus",)
    assert s["azurerm_storage_account.weu"].location.regions == ("westeurope",)
    assert "azurerm_storage_account.weu/secondary" not in s  # LRS stays put
    assert "azurerm_storage_container.docs" not in s
    assert any(f.target == "azurerm_storage_account.brgrs/secondary" for f in inv.flows)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("aws_s3_bucket.dr", "provider aws.dr region (var.dr_region) has no value in the plan"),
        ("aws_s3_bucket.v6", "aws_s3_bucket.v6: region unknown until apply"),
        ("azurerm_storage_account.later",
         "azurerm_storage_account.later: location unknown until apply"),
    ],
)
def test_unknown_values_fail_closed(ctx: PlanContext, address: str, reason: str) -> None:
    s = {x.id: x for x in _read("unknowns.json", ctx).systems}
    why = s[address].location.unknown_reason
    assert why is not None
    assert reason in why
    assert why.startswith(address)


def test_classification_unknown_until_apply_keeps_the_location(ctx: PlanContext) -> None:
    s = {x.id: x for x in _read("unknowns.json", ctx).systems}["aws_s3_bucket.tagged_later"]
    assert s.location.unknown_reason is None and s.location.regions == ("eu-central-1",)
    assert s.pending and "data-classification unknown until apply" in s.pending
    assert s.classified and s.data_categories  # judged as possibly classified


def test_state_json_is_read(ctx: PlanContext) -> None:
    s = {x.id: x for x in _read("state.json", ctx).systems}
    assert s["aws_s3_bucket.customers"].location.regions == ("eu-central-1",)


@pytest.mark.parametrize(
    ("doc", "key", "text"),
    [
        ([], None, "expected a JSON object"),
        ({"planned_values": {}}, "format_version", "missing"),
        ({"format_version": "2.0", "planned_values": {}}, "format_version", "'2.0'"),
        ({"format_version": "0.3", "planned_values": {}}, "format_version", "'0.3'"),
        ({"format_version": "2.0", "planned_values": {}}, "format_version", "unsupported"),
        ({"format_version": 1, "planned_values": {}}, "format_version", "unsupported"),
        ({"format_version": "1.2"}, "planned_values", "missing"),
        ({"format_version": "1.2", "planned_values": []}, "planned_values", "object"),
    ],
)
def test_bad_documents(ctx: PlanContext, doc: object, key: str | None, text: str) -> None:
    with pytest.raises(InputError) as err:
        read_plan(doc, ctx, "plan.json")
    assert err.value.key == key
    assert text in str(err.value)
    assert "\n" not in str(err.value)


def test_malformed_json_names_file_and_line(ctx: PlanContext) -> None:
    with pytest.raises(InputError) as err:
        _read("malformed.json", ctx)
    assert "malformed.json" in str(err.value) and "line" in str(err.value)


def test_binary_plan_file(ctx: PlanContext, tmp_path: Path) -> None:
    path = tmp_path / "tfplan"
    path.write_bytes(b"PK\x03\x04\xff\xfe binary plan")
    with pytest.raises(InputError):
        load_plan(path, ctx)


def test_reordering_keeps_ids(ctx: PlanContext) -> None:
    doc = json.loads((FIXTURES / "aws_modules.json").read_text())
    first = read_plan(doc, ctx)
    random.Random(3).shuffle(doc["resource_changes"])  # noqa: S311
    doc["planned_values"]["root_module"]["resources"].reverse()
    second = read_plan(doc, ctx)
    assert {s.id for s in first.systems} == {s.id for s in second.systems}
    assert {f.id for f in first.flows} == {f.id for f in second.flows}


def test_strip_instance_keys() -> None:
    assert strip_instance_keys('module.a[0].module.b["x.y"]') == "module.a.module.b"
    assert strip_instance_keys("module.a") == "module.a"
