"""Collectors fail into coverage gaps, never an empty list, a crash or a leaked secret.

Faults are injected on the wire, below the SDKs: AWS requests go through `FaultProxy`
(conftest.py) in front of moto's server, which truncates, rewrites, resets, delays or
replaces chosen operations' answers; Cloud Storage and ARM use their loopback peers'
`HttpFault`s. Each case asserts the gap (RES-S001's input) for the right scope AND that
everything else readable is still reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from residency.collectors.aws import AwsCollector, MalformedAnswerError, _check_body
from residency.collectors.interface import CollectContext
from residency.errors import CollectorError
from residency.model import Classification, ClassificationValue, CoverageGap, Inventory

boto3 = pytest.importorskip("boto3")

FaultProxy = Any  # conftest.FaultProxy, reached through the `faults` fixture
MGMT = "123456789012"  # moto's default caller: the management account

CATS = frozenset({"contact_details", "ticket_content"})
CLASSIFICATION = Classification(
    "data-classification", (("servicedesk", ClassificationValue(CATS)),)
)
REGIONS = ("eu-west-1", "us-east-1")
TABLE = f"arn:aws:dynamodb:eu-west-1:{MGMT}:table/sd-sessions"
TABLE_AU = f"arn:aws:dynamodb:ap-southeast-2:{MGMT}:table/sd-sessions"
QUEUE = f"arn:aws:sqs:eu-west-1:{MGMT}:sd-notifications"
DB_IE = f"arn:aws:rds:eu-west-1:{MGMT}:db:sd-tickets"
DB_US = f"arn:aws:rds:us-east-1:{MGMT}:db:sd-tickets-us"
BUCKETS = ("arn:aws:s3:::sd-attachments-ie", "arn:aws:s3:::sd-legacy-eu",
           "arn:aws:s3:::sd-scratch")
# everything the management account holds in REGIONS, as a clean scan reports it
EVERYTHING = {TABLE, TABLE_AU, QUEUE, DB_IE, DB_US, *BUCKETS}


def ctx() -> CollectContext:
    return CollectContext(CLASSIFICATION, workers=8)


@pytest.fixture(scope="module")
def estate(aws_seeded_module: Any) -> Any:
    return aws_seeded_module


def scan(estate: Any, proxy: FaultProxy, **kw: Any) -> Inventory:
    _, _, session = estate
    options: dict[str, Any] = {"organization": False, "regions": REGIONS, **kw}
    return AwsCollector(session, endpoint_url=proxy.url, max_attempts=1,
                        **options).collect(ctx())


def gaps(inv: Inventory) -> dict[str, str]:
    return {g.scope: g.reason for g in inv.gaps}


def ids(inv: Inventory) -> set[str]:
    return {s.id for s in inv.systems}


def flows(inv: Inventory) -> set[tuple[str, str]]:
    return {(f.source, f.target) for f in inv.flows}


def assert_one_line(inv: Inventory) -> None:
    for gap in inv.gaps:
        assert gap.provider in {"aws", "gcp", "azure"}
        assert "\n" not in gap.reason and len(gap.reason) <= 400, gap
        assert "<?xml" not in gap.reason and '{"' not in gap.reason, gap  # never a body


# --------------------------------------------------------------------------- AWS
def test_a_clean_scan_through_the_proxy(estate: Any, faults: FaultProxy) -> None:
    """The baseline every fault below is measured against."""
    inv = scan(estate, faults)
    assert inv.gaps == ()
    assert ids(inv) == EVERYTHING
    assert (TABLE, TABLE_AU) in flows(inv) and (DB_IE, DB_US) in flows(inv)


def test_describe_table_without_table_is_a_gap(estate: Any, faults: FaultProxy) -> None:
    """A well-formed answer that lacks the field the API promises is a gap, not a skip."""
    faults.add("DescribeTable", "rewrite", rewrite=lambda _: b"{}")
    inv = scan(estate, faults)
    assert gaps(inv) == {
        f"account {MGMT}/eu-west-1 dynamodb table sd-sessions":
            "answer lacks a required field (KeyError: 'Table')"}
    assert (TABLE, TABLE_AU) not in flows(inv)  # lost, and the gap says so
    assert ids(inv) >= EVERYTHING - {TABLE, TABLE_AU}
    assert (DB_IE, DB_US) in flows(inv)


@pytest.mark.parametrize("operation", ["DescribeTable", "ListTagsOfResource"])
def test_truncated_dynamodb_json_is_a_gap(
    estate: Any, faults: FaultProxy, operation: str
) -> None:
    """botocore alone parses a cut JSON body as `{'message': ...}`: an empty answer."""
    faults.add(operation, "truncate")
    inv = scan(estate, faults)
    reason = gaps(inv)[f"account {MGMT}/eu-west-1 dynamodb table sd-sessions"]
    assert reason.startswith(f"MalformedAnswerError: dynamodb {operation}: HTTP 200 answer of")
    assert "is not well-formed JSON" in reason
    assert len(inv.gaps) == 1
    assert ids(inv) >= EVERYTHING - {TABLE, TABLE_AU}
    assert_one_line(inv)


def test_truncated_tagging_json_is_a_gap_and_the_rest_stays(
    estate: Any, faults: FaultProxy
) -> None:
    """A truncated tagging answer is a gap, not silence; the queue is still found by its own
    listing (ListQueues), so nothing else is lost."""
    faults.add("GetResources", "truncate", region="eu-west-1")
    inv = scan(estate, faults)
    found = gaps(inv)
    assert set(found) == {f"account {MGMT}/eu-west-1 tagging"}
    assert "not well-formed JSON" in found[f"account {MGMT}/eu-west-1 tagging"]
    assert QUEUE in ids(inv)
    assert ids(inv) == EVERYTHING
    assert (TABLE, TABLE_AU) in flows(inv)


def test_valid_json_of_the_wrong_kind_is_a_gap(estate: Any, faults: FaultProxy) -> None:
    faults.add("ListTables", "body", body=b'["sd-sessions"]')
    inv = scan(estate, faults)
    assert "is JSON but not an object" in gaps(inv)[f"account {MGMT}/eu-west-1 dynamodb"]
    assert ids(inv) >= EVERYTHING - {TABLE, TABLE_AU}


def test_truncated_rds_xml_is_a_gap(estate: Any, faults: FaultProxy) -> None:
    faults.add("DescribeDBInstances", "truncate", region="eu-west-1")
    inv = scan(estate, faults)
    reason = gaps(inv)[f"account {MGMT}/eu-west-1 rds"]
    assert reason.startswith("MalformedAnswerError: rds DescribeDBInstances: HTTP 200")
    assert "is not well-formed XML" in reason
    assert len(inv.gaps) == 1
    assert DB_US in ids(inv)  # the other region's instance
    assert DB_IE in ids(inv)  # tagged: the tagging API still lists it
    assert ids(inv) >= EVERYTHING - {DB_IE}
    assert_one_line(inv)


def test_truncated_bucket_location_keeps_the_bucket_unlocated(
    estate: Any, faults: FaultProxy
) -> None:
    """botocore's own GetBucketLocation handler re-parses the raw XML and used to crash."""
    faults.add("GetBucketLocation", "truncate", keep=0.8)
    inv = scan(estate, faults)
    found = gaps(inv)
    for name in ("sd-attachments-ie", "sd-legacy-eu", "sd-scratch"):
        assert "not well-formed XML" in found[f"account {MGMT}/s3 bucket {name}"]
    systems = {s.id: s for s in inv.systems}
    bucket = systems["arn:aws:s3:::sd-attachments-ie"]
    assert bucket.location.regions == ()
    assert bucket.location.unknown_reason is not None
    assert bucket.location.unknown_reason.startswith("bucket location unreadable:")
    assert {DB_IE, DB_US, TABLE, QUEUE} <= set(systems)
    assert_one_line(inv)


def test_truncated_assume_role_xml_is_a_gap_without_the_keys(
    aws_seeded_module: Any, faults: FaultProxy
) -> None:
    """The body of a cut AssumeRole answer holds the role's keys; no reason may quote it."""
    estate, _, session = aws_seeded_module
    planted: list[bytes] = []

    def keep(body: bytes) -> bytes:
        planted.append(body)
        return body[: len(body) - 120]

    faults.add("AssumeRole", "rewrite", rewrite=keep)
    inv = AwsCollector(session, endpoint_url=faults.url, max_attempts=1,
                       regions=REGIONS).collect(ctx())
    found = gaps(inv)
    for member in (estate.eu, estate.dr):
        assert found[f"account {member}"].startswith(
            "MalformedAnswerError: sts AssumeRole: HTTP 200 answer of"), found
    # the legacy member's AssumeRole is denied before it is sent (see MotoGaps)
    assert found[f"account {estate.legacy}"].startswith("AccessDenied")
    assert ids(inv) >= EVERYTHING  # the management account is still read
    assert planted  # moto did hand out keys, and they were cut
    text = repr(inv)
    for body in planted:
        for tag in ("AccessKeyId", "SecretAccessKey", "SessionToken"):
            value = body.split(f"<{tag}>".encode(), 1)[1].split(b"<", 1)[0].decode()
            if value:
                assert value not in text


def test_truncated_caller_identity_is_one_error_line(estate: Any, faults: FaultProxy) -> None:
    faults.add("GetCallerIdentity", "truncate")
    with pytest.raises(CollectorError) as err:
        scan(estate, faults)
    message = str(err.value)
    assert "MalformedAnswerError: sts GetCallerIdentity" in message
    assert "\n" not in message and "<" not in message


@pytest.mark.parametrize("kind", ["reset", "delay"])
def test_connection_errors_without_a_response_are_gaps(
    estate: Any, faults: FaultProxy, kind: str
) -> None:
    """ConnectionClosedError and ReadTimeoutError carry `response=None`."""
    faults.add("DescribeDBInstances", kind, region="eu-west-1", delay=6)
    inv = scan(estate, faults, read_timeout=3)
    reason = gaps(inv)[f"account {MGMT}/eu-west-1 rds"]
    expect = "ConnectionClosedError" if kind == "reset" else "ReadTimeoutError"
    assert reason.startswith(expect), reason
    assert len(inv.gaps) == 1
    assert DB_US in ids(inv) and ids(inv) >= EVERYTHING - {DB_IE}


@pytest.mark.parametrize(("status", "code"), [(500, "500"), (503, "503"), (429, "429")])
def test_error_statuses_with_a_gateway_page_are_gaps(
    estate: Any, faults: FaultProxy, status: int, code: str
) -> None:
    faults.add("ListTables", "status", status=status)
    faults.add("DescribeDBInstances", "status", status=status, region="us-east-1")
    inv = scan(estate, faults)
    found = gaps(inv)
    assert set(found) == {f"account {MGMT}/eu-west-1 dynamodb",
                          f"account {MGMT}/us-east-1 dynamodb",
                          f"account {MGMT}/us-east-1 rds"}
    for reason in found.values():
        assert code in reason
    assert DB_IE in ids(inv) and QUEUE in ids(inv)
    assert_one_line(inv)


def test_regions_unreadable_is_a_gap_unless_regions_are_given(
    estate: Any, faults: FaultProxy
) -> None:
    faults.add("DescribeRegions", "truncate")
    inv = scan(estate, faults, regions=())
    assert "not well-formed XML" in gaps(inv)[f"account {MGMT} regions"]
    assert set(BUCKETS) <= ids(inv)  # S3 is global: still read
    given = scan(estate, faults)  # the operator's list is trusted; calls will tell
    assert given.gaps == () and ids(given) == EVERYTHING


def test_the_body_check_lets_empty_and_error_bodies_through() -> None:
    """Empty 2xx bodies and error answers stay botocore's to parse."""
    import botocore.session

    core = botocore.session.get_session()
    models = {
        svc: core.get_service_model(svc)
        for svc in ("dynamodb", "s3", "rds", "sts")
    }
    describe = models["dynamodb"].operation_model("DescribeTable")
    location = models["s3"].operation_model("GetBucketLocation")
    for op in (describe, location, models["rds"].operation_model("DescribeDBInstances")):
        _check_body(operation_model=op, response_dict={"status_code": 200, "body": b""})
        _check_body(operation_model=op, response_dict={"status_code": 503, "body": b"<html"})
    _check_body(operation_model=describe, response_dict={"status_code": 200, "body": b"{}"})
    with pytest.raises(MalformedAnswerError, match="not well-formed JSON"):
        _check_body(operation_model=describe,
                    response_dict={"status_code": 200, "body": b'{"Table": {"TableN'})
    with pytest.raises(MalformedAnswerError, match="not well-formed XML"):
        _check_body(operation_model=location,
                    response_dict={"status_code": 200, "body": b"<LocationConstraint>eu-"})


def test_the_policy_still_lists_exactly_the_calls_made(estate: Any, faults: FaultProxy) -> None:
    """Failing into gaps adds no API call (the collector stays read-only)."""
    _, hooks, _ = estate
    hooks.calls.clear()
    faults.add("DescribeTable", "truncate")
    scan(estate, faults)
    assert hooks.iam_actions() <= hooks.policy_actions()


# --------------------------------------------------------------------------- GCP
GCP_FAULT_CASES = {
    "truncated JSON": ("truncate", b"", "JSONDecodeError"),
    "not JSON": ("body", b"<html>oops</html>", "JSONDecodeError"),
    "wrong shape": ("body", b'{"kind": "storage#buckets", "items": [7]}', "documented shape"),
    "5xx": ("status", b"<html>503</html>", "HTTP 503"),
    "reset": ("reset", b"", "ConnectionError"),
}


@pytest.fixture
def gcs() -> Iterator[Any]:
    from residency.demo.fake_gcs import FakeGcs, bucket

    fake = FakeGcs(projects={
        "p-ok": [bucket("ok-eu", "EU", "multi-region", {"data-classification": "servicedesk"})],
        "p-bad": [bucket(f"bad-{i}", "US", "multi-region") for i in range(3)],
    }).start()
    yield fake
    fake.stop()


def gcp_scan(fake: Any) -> Inventory:
    from residency.collectors.gcp import GcpCollector, emulator_client_factory

    return GcpCollector(emulator_client_factory(fake.url), ["p-ok", "p-bad"],
                        retry=None, timeout=2).collect(ctx())


@pytest.mark.parametrize("case", sorted(GCP_FAULT_CASES))
def test_gcp_faults_are_project_gaps(gcs: Any, case: str) -> None:
    from residency.demo.fake_gcs import HttpFault

    kind, body, expect = GCP_FAULT_CASES[case]
    gcs.faults.append(HttpFault("project=p-bad", kind, body=body))
    inv = gcp_scan(gcs)
    [gap] = inv.gaps
    assert gap == CoverageGap("gcp", "project p-bad", gap.reason)
    assert expect in gap.reason, gap.reason
    assert [s.name for s in inv.systems] == ["ok-eu"]
    assert_one_line(inv)


def test_gcp_a_later_page_cut_keeps_the_first(gcs: Any) -> None:
    from residency.demo.fake_gcs import HttpFault

    gcs.faults.append(HttpFault("pageToken=2", "truncate"))
    inv = gcp_scan(gcs)
    [gap] = inv.gaps
    assert gap.scope == "project p-bad" and "2 bucket(s) read before the error" in gap.reason
    assert sorted(s.name for s in inv.systems) == ["bad-0", "bad-1", "ok-eu"]


def test_gcp_a_nameless_bucket_is_its_own_gap(gcs: Any) -> None:
    from residency.demo.fake_gcs import HttpFault, bucket

    nameless = bucket("x", "EU", "multi-region")
    del nameless["name"]
    answer = {"kind": "storage#buckets", "items": [nameless, bucket("named", "EU", "region")]}
    gcs.faults.append(HttpFault("project=p-bad", "body", body=json.dumps(answer).encode()))
    inv = gcp_scan(gcs)
    [gap] = inv.gaps
    assert gap.scope == "project p-bad bucket #0 of a page"
    assert gap.reason == "answer lacks a required field (KeyError: 'name')"
    assert sorted(s.name for s in inv.systems) == ["named", "ok-eu"]


# --------------------------------------------------------------------------- Azure
SUB_OK = "00000000-0000-4000-8000-00000000000a"
SUB_BAD = "00000000-0000-4000-8000-00000000000b"
AZ_FAULT_CASES = {
    "truncated JSON": ("truncate", b"", "JSON is invalid"),
    "not JSON": ("body", b"<html>oops</html>", "JSON is invalid"),
    "wrong shape": ("body", b'{"value": 7}', "documented shape"),
    "5xx": ("status", b"<html>503</html>", "HTTP 503"),
    "reset": ("reset", b"", "Connection reset"),
}


@pytest.fixture
def arm() -> Iterator[Any]:
    from residency.demo.fake_arm import FakeArm, generic, storage_account

    pii = {"data-classification": "servicedesk"}
    fake = FakeArm(subscriptions=[SUB_OK, SUB_BAD], resources={
        SUB_OK: [storage_account(SUB_OK, "rg", "okeu", "westeurope", "Standard_GRS", pii)],
        SUB_BAD: [generic(SUB_BAD, "rg", "Microsoft.Web/sites", f"app{i}", "westeurope", pii)
                  for i in range(3)],
    }).start()
    yield fake
    fake.stop()


def azure_scan(fake: Any, subscriptions: tuple[str, ...] = ()) -> Inventory:
    from residency.collectors.azure import (
        AzureCollector,
        EmulatorCredential,
        loopback_bearer_policy,
    )

    credential = EmulatorCredential()
    return AzureCollector(credential, lambda region: "northeurope", subscriptions, fake.url,
                          {"authentication_policy": loopback_bearer_policy(credential),
                           "retry_total": 0, "read_timeout": 2}).collect(ctx())


@pytest.mark.parametrize("case", sorted(AZ_FAULT_CASES))
def test_azure_faults_are_subscription_gaps(arm: Any, case: str) -> None:
    from residency.demo.fake_arm import HttpFault

    kind, body, expect = AZ_FAULT_CASES[case]
    arm.faults.append(HttpFault(f"{SUB_BAD}/resources", kind, body=body))
    inv = azure_scan(arm)
    [gap] = inv.gaps
    assert gap.provider == "azure" and gap.scope == f"subscription {SUB_BAD}"
    assert expect in gap.reason, gap.reason
    assert {s.name for s in inv.systems} == {"okeu", "okeu (geo-secondary, Standard_GRS)"}
    assert_one_line(inv)


@pytest.mark.parametrize("case", ["truncated JSON", "5xx", "reset"])
def test_azure_subscription_listing_faults_are_a_gap(arm: Any, case: str) -> None:
    from residency.demo.fake_arm import HttpFault

    kind, body, _ = AZ_FAULT_CASES[case]
    arm.faults.append(HttpFault("/subscriptions?", kind, body=body))
    inv = azure_scan(arm)
    [gap] = inv.gaps
    assert gap.scope == "subscriptions"
    given = azure_scan(arm, (SUB_OK,))  # given subscriptions skip the listing
    assert given.gaps == () and len(given.systems) == 2


def test_azure_a_later_page_cut_keeps_the_first(arm: Any) -> None:
    from residency.demo.fake_arm import HttpFault

    arm.faults.append(HttpFault("skiptoken=2", "truncate"))
    inv = azure_scan(arm, (SUB_BAD,))
    [gap] = inv.gaps
    assert "2 resource(s) read before the error are kept" in gap.reason
    assert sorted(s.name for s in inv.systems) == ["app0", "app1"]
