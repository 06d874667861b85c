"""AWS collector against moto in server mode, over HTTP, with a seeded service-desk estate.

Where moto falls short of AWS the gap is filled at the protocol boundary by botocore event
handlers (see `Any` in conftest.py): AssumeRole denied for one member account, and the
`Replicas` field DescribeTable returns for a DynamoDB global table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from residency.collectors.aws import AwsCollector
from residency.collectors.interface import CollectContext
from residency.errors import CollectorError
from residency.model import Classification, ClassificationValue, Inventory, System

boto3 = pytest.importorskip("boto3")

MGMT = "123456789012"  # moto's default caller: the organization's management account

DATA = Path(__file__).parent / "data"
CATS = frozenset({"contact_details", "ticket_content"})
CLASSIFICATION = Classification(
    "data-classification", (("servicedesk", ClassificationValue(CATS)),)
)
# the regions the estate uses; scanning all ~20 costs moto several seconds per account
REGIONS = ("eu-west-1", "eu-central-1", "eu-west-3", "us-east-1", "ap-southeast-2")


def ctx(**kw: Any) -> CollectContext:
    return CollectContext(CLASSIFICATION, **{"workers": 8, **kw})


def collector(session: Any, url: str, **kw: Any) -> AwsCollector:
    return AwsCollector(session, endpoint_url=url, max_attempts=1,
                        **{"regions": REGIONS, **kw})


def by_id(inv: Inventory) -> dict[str, System]:
    return {s.id: s for s in inv.systems}


@pytest.fixture(scope="module")
def aws_scanned(aws_seeded_module: Any) -> tuple[Any, Any, Inventory]:
    """The whole estate scanned once (organization mode) for the read-only assertions."""
    estate, hooks, session = aws_seeded_module
    return estate, hooks, collector(session, estate.url).collect(ctx())


# --------------------------------------------------------------------------- inventory
def test_systems_have_their_regions_and_categories(aws_scanned: Any) -> None:
    estate, _, inv = aws_scanned
    systems = by_id(inv)
    expect = {
        "arn:aws:s3:::sd-attachments-ie": ("eu-west-1", estate.mgmt),
        "arn:aws:s3:::sd-legacy-eu": ("eu-west-1", estate.mgmt),  # LocationConstraint `EU`
        "arn:aws:s3:::sd-exports-fra": ("eu-central-1", estate.eu),
        "arn:aws:s3:::sd-exports-dr-us": ("us-east-1", estate.dr),  # LocationConstraint null
        f"arn:aws:rds:eu-west-1:{MGMT}:db:sd-tickets": ("eu-west-1", estate.mgmt),
        # moto reports the replica's AZ as the source's; the ARN is authoritative
        f"arn:aws:rds:us-east-1:{MGMT}:db:sd-tickets-us": ("us-east-1", estate.mgmt),
        f"arn:aws:dynamodb:eu-west-1:{MGMT}:table/sd-sessions": ("eu-west-1", estate.mgmt),
        # found only through the Resource Groups Tagging API
        f"arn:aws:sqs:eu-west-1:{MGMT}:sd-notifications": ("eu-west-1", estate.mgmt),
    }
    for arn, (region, account) in expect.items():
        s = systems[arn]
        assert s.location.provider == "aws" and s.location.regions == (region,), arn
        assert s.account == account and s.party == "aws", arn
        assert s.classified and s.data_categories == CATS, arn
        assert dict(s.tags)["data-classification"] == "servicedesk"
    scratch = systems["arn:aws:s3:::sd-scratch"]
    assert not scratch.classified and scratch.data_categories == frozenset()
    assert scratch.location.regions == ("us-east-1",)
    assert not any("legacy-tickets" in s for s in systems)  # that account was not entered


def test_buckets_are_deduplicated_across_regions(aws_scanned: Any) -> None:
    """moto's tagging API lists every tagged bucket in every region's answer."""
    _, hooks, inv = aws_scanned
    ids = [s.id for s in inv.systems]
    assert len(ids) == len(set(ids))
    assert ("resourcegroupstaggingapi", "GetResources") in hooks.calls
    buckets = [i for i in ids if i.startswith("arn:aws:s3:::")]
    assert sorted(buckets) == [f"arn:aws:s3:::{b}" for b in (
        "sd-attachments-ie", "sd-exports-dr-us", "sd-exports-fra", "sd-legacy-eu", "sd-scratch")]


def test_replication_flows(aws_scanned: Any) -> None:
    _, _, inv = aws_scanned
    systems = by_id(inv)
    flows = {(f.source, f.target): f for f in inv.flows}
    s3 = flows[("arn:aws:s3:::sd-exports-fra", "arn:aws:s3:::sd-exports-dr-us")]
    rds = flows[(f"arn:aws:rds:eu-west-1:{MGMT}:db:sd-tickets",
                 f"arn:aws:rds:us-east-1:{MGMT}:db:sd-tickets-us")]
    ddb_src = f"arn:aws:dynamodb:eu-west-1:{MGMT}:table/sd-sessions"
    ddb_dst = f"arn:aws:dynamodb:ap-southeast-2:{MGMT}:table/sd-sessions"
    ddb = flows[(ddb_src, ddb_dst)]
    for flow in (s3, rds, ddb):
        assert flow.kind == "replication" and flow.data_categories == CATS
    assert len(flows) == 3  # the table's own region in Replicas is not a flow
    # the Sydney replica is outside what moto holds: a placeholder with its region
    assert systems[ddb_dst].location.regions == ("ap-southeast-2",)
    assert systems[ddb_dst].data_categories == CATS
    for f in inv.flows:
        assert f.source in systems and f.target in systems


def test_unassumable_account_is_a_coverage_gap(aws_scanned: Any) -> None:
    estate, _, inv = aws_scanned
    [gap] = inv.gaps
    assert gap.provider == "aws" and gap.scope == f"account {estate.legacy}"
    assert gap.reason.startswith("AccessDenied:") and "sts:AssumeRole" in gap.reason


def test_policy_lists_exactly_the_calls_made(aws_scanned: Any) -> None:
    _, hooks, _ = aws_scanned
    made = hooks.iam_actions()
    assert made == hooks.policy_actions()
    for action in made:
        verb = action.split(":")[1]
        assert verb.startswith(("List", "Describe", "Get")) or action == "sts:AssumeRole"


def test_accounts_share_clients_and_sign_with_their_own_keys(
    aws_estate: Any, aws_session: Any, aws_hooks: Any
) -> None:
    """One client per (service, region) for the whole organization, not per account; each
    request still carries the key of the account it reads (moto files resources by key)."""
    created: list[str] = []
    signed: dict[tuple[str, str], set[str]] = {}

    def on_create(**_: Any) -> None:
        created.append("client")

    def on_send(request: Any, **_: Any) -> None:
        auth = request.headers["Authorization"].decode()
        key, _date, region, service, _ = auth.split("Credential=")[1].split(",")[0].split("/")
        signed.setdefault((service, region), set()).add(key)

    aws_session.events.register("creating-client-class", on_create)
    aws_session.events.register("before-send", on_send)
    inv = collector(aws_session, aws_estate.url).collect(ctx())
    assert len(inv.gaps) == 1  # the member whose role cannot be assumed
    member_keys = {c["AccessKeyId"] for c in aws_hooks.assumed}
    assert len(member_keys) == 2
    for region in REGIONS:
        assert len(signed[("rds", region)]) == 3  # management + the two members entered
        assert member_keys < signed[("dynamodb", region)]
    # every (service, region) client built exactly once; sts serves the caller only
    assert len(created) == len(signed)
    assert signed[("sts", "us-east-1")] == {"testing"}


def test_assumed_role_keys_are_refreshed_before_they_expire(
    aws_estate: Any, aws_session: Any, aws_hooks: Any
) -> None:
    """A 15-minute role session is always inside botocore's refresh window, so the role is
    assumed again as the scan goes on; the member is still read in full, with no gap."""
    inv = collector(aws_session, aws_estate.url, accounts=[aws_estate.eu],
                    role_duration=900).collect(ctx())
    assert len({c["AccessKeyId"] for c in aws_hooks.assumed}) > 1
    assert inv.gaps == ()
    assert "arn:aws:s3:::sd-exports-fra" in by_id(inv)


class _Body:
    """The raw stream of an HTTP response botocore reads (`AWSResponse.raw`)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        return iter([self._data])


def _throttle(region: str, first: int) -> tuple[Any, list[int]]:
    """A `before-send` handler answering the first `first` DescribeDBInstances requests for
    `region` the way RDS does when its rate is exceeded (HTTP 400, query-protocol
    `Throttling`); other requests go through to moto. The answer enters botocore where a
    real one would, so parsing and the retry handler treat it as AWS's own."""
    from botocore.awsrequest import AWSResponse

    body = (b'<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error>'
            b"<Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
            b"</Error><RequestId>5f3a</RequestId></ErrorResponse>")
    sent = [0]

    def handler(request: Any, **_: Any) -> Any:
        if f"/{region}/rds/" not in request.headers["Authorization"].decode():
            return None
        sent[0] += 1
        if sent[0] <= first:
            return AWSResponse(request.url, 400, {"Content-Type": "text/xml"}, _Body(body))
        return None

    return handler, sent


def _scan_throttled(aws_estate: Any, aws_session: Any, first: int, attempts: int) -> Any:
    handler, sent = _throttle("eu-west-1", first)
    aws_session.events.register("before-send.rds.DescribeDBInstances", handler)
    inv = AwsCollector(aws_session, endpoint_url=aws_estate.url, max_attempts=attempts,
                       regions=REGIONS, organization=False).collect(ctx())
    return inv, sent[0]


def test_throttling_is_retried_until_the_call_succeeds(
    aws_estate: Any, aws_session: Any
) -> None:
    inv, sent = _scan_throttled(aws_estate, aws_session, first=2, attempts=3)
    assert sent == 3 and inv.gaps == ()
    assert f"arn:aws:rds:eu-west-1:{MGMT}:db:sd-tickets" in by_id(inv)


def test_throttling_past_the_retry_budget_is_a_gap(aws_estate: Any, aws_session: Any) -> None:
    inv, sent = _scan_throttled(aws_estate, aws_session, first=99, attempts=3)
    assert sent == 3  # max_attempts counts every attempt, the first included
    [gap] = inv.gaps
    assert gap.scope == f"account {MGMT}/eu-west-1 rds"
    assert gap.reason == "Throttling: Rate exceeded"
    systems = by_id(inv)
    assert f"arn:aws:dynamodb:eu-west-1:{MGMT}:table/sd-sessions" in systems  # the rest
    # the tagged instance is still listed, by the tagging API (the gap says RDS was not read)
    assert f"arn:aws:rds:eu-west-1:{MGMT}:db:sd-tickets" in systems


def test_a_request_outside_an_account_task_is_refused() -> None:
    from residency.collectors.aws import _sign_as_acting

    with pytest.raises(RuntimeError, match="outside an account"):
        _sign_as_acting(request=object())


# --------------------------------------------------------------------------- options
def test_classified_only_skips_unclassified(aws_estate: Any, aws_session: Any) -> None:
    inv = collector(aws_session, aws_estate.url).collect(ctx(classified_only=True))
    ids = {s.id for s in inv.systems}
    assert "arn:aws:s3:::sd-scratch" not in ids
    assert "arn:aws:s3:::sd-attachments-ie" in ids
    assert all(s.classified for s in inv.systems)
    assert len(inv.flows) == 3


def test_accounts_by_id_with_destination_outside_scope(
    aws_estate: Any, aws_session: Any
) -> None:
    """Only the EU member: its replication target lives in an account not scanned."""
    inv = collector(aws_session, aws_estate.url, accounts=[aws_estate.eu]).collect(ctx())
    systems = by_id(inv)
    dest = systems.pop("arn:aws:s3:::sd-exports-dr-us")  # placeholder, not a scanned bucket
    assert {s.account for s in systems.values()} == {aws_estate.eu}
    assert dest.name == "sd-exports-dr-us" and dest.data_categories == CATS
    assert dest.account == aws_estate.dr  # from the rule's Destination.Account
    # moto answers GetBucketLocation across accounts; real AWS may deny it (then unknown)
    assert dest.location.regions == ("us-east-1",) or dest.location.unknown_reason
    assert [f.target for f in inv.flows] == ["arn:aws:s3:::sd-exports-dr-us"]
    assert inv.gaps == ()


def test_default_regions_are_the_enabled_ones(aws_url: str, aws_session: Any) -> None:
    labels: list[str] = []
    inv = AwsCollector(aws_session, organization=False, endpoint_url=aws_url,
                       max_attempts=1).collect(ctx(progress=lambda label, _n: labels.append(
                           label)))
    regions = {lbl.split("/")[1].split()[0] for lbl in labels if lbl.endswith(" rds")}
    assert {"eu-west-1", "eu-central-1", "us-east-1", "ap-southeast-2"} <= regions
    # moto lists GovCloud, China and not-opted-in regions too: none may be called
    assert not regions & {"us-gov-west-1", "cn-north-1", "ap-east-1", "me-south-1"}
    assert inv.gaps == ()


def test_region_not_enabled_is_a_gap(aws_url: str, aws_session: Any) -> None:
    inv = collector(aws_session, aws_url, organization=False,
                    regions=["eu-west-1", "ap-east-1"]).collect(ctx())
    [gap] = inv.gaps
    assert gap.scope == f"account {MGMT}/ap-east-1" and "not enabled" in gap.reason


def test_denied_and_timed_out_scopes_keep_partial_results(
    aws_estate: Any, aws_hooks: Any, aws_url: str
) -> None:
    from botocore.exceptions import ConnectTimeoutError

    def deny_rds(context: dict[str, Any], **_: Any) -> Any:
        if context.get("client_region") == "eu-west-1":
            return aws_hooks.error_response(403, "AccessDenied", "not authorized to perform: "
                                  "rds:DescribeDBInstances")
        return None

    def timeout_tagging(context: dict[str, Any], **_: Any) -> None:
        if context.get("client_region") == "eu-central-1":
            raise ConnectTimeoutError(endpoint_url="https://tagging.eu-central-1.amazonaws.com")

    aws_hooks.extra += [("before-call.rds.DescribeDBInstances", deny_rds),
                        ("before-call.resource-groups-tagging-api.GetResources",
                         timeout_tagging)]
    session = aws_hooks.install(boto3.Session(region_name="us-east-1"))
    inv = collector(session, aws_url).collect(ctx())
    scopes = {g.scope: g.reason for g in inv.gaps}
    assert scopes[f"account {MGMT}/eu-west-1 rds"].startswith("AccessDenied")
    for acct in (aws_estate.mgmt, aws_estate.eu, aws_estate.dr):
        assert "timeout" in scopes[f"account {acct}/eu-central-1 tagging"].lower()
    ids = {s.id for s in inv.systems}
    assert f"arn:aws:rds:us-east-1:{MGMT}:db:sd-tickets-us" in ids  # other regions kept
    assert "arn:aws:s3:::sd-attachments-ie" in ids


def test_no_credentials_is_a_collector_error(aws_url: str, monkeypatch: Any) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    session = boto3.Session(region_name="us-east-1")
    with pytest.raises(CollectorError, match="no credentials"):
        AwsCollector(session, endpoint_url=aws_url, max_attempts=1).collect(ctx())


def test_credentials_never_reach_a_gap(
    aws_estate: Any, aws_hooks: Any, aws_url: str
) -> None:
    """An error message that echoes the assumed-role keys is redacted before it is kept."""

    def leaky(**_: Any) -> Any:
        creds = aws_hooks.assumed[-1]
        return aws_hooks.error_response(403, "AccessDenied", f"key {creds['AccessKeyId']} secret "
                              f"{creds['SecretAccessKey']} token {creds['SessionToken']}")

    aws_hooks.extra.append(("before-call.dynamodb.ListTables", leaky))
    session = aws_hooks.install(boto3.Session(region_name="us-east-1"))
    inv = collector(session, aws_url, accounts=[aws_estate.eu], regions=["eu-west-1"]).collect(
        ctx())
    [gap] = inv.gaps
    assert "[redacted]" in gap.reason
    text = repr(inv)
    for creds in aws_hooks.assumed:
        for key in ("AccessKeyId", "SecretAccessKey", "SessionToken"):
            assert creds[key] not in text


# --------------------------------------------------------------------------- CLI
@pytest.fixture
def aws_cli_session(monkeypatch: Any, aws_hooks: Any) -> None:
    """`scan --aws` builds its own boto3.Session(); give it the test hooks."""
    real = boto3.Session

    def session(*args: Any, **kwargs: Any) -> Any:
        return aws_hooks.install(real(*args, **kwargs))

    monkeypatch.setattr(boto3, "Session", session)


def run_cli(url: str, map_name: str) -> tuple[int, dict[str, Any], str]:
    from click.testing import CliRunner

    from residency.cli.main import cli

    regions = [arg for r in REGIONS for arg in ("--aws-region", r)]
    result = CliRunner().invoke(cli, ["scan", "--aws", "--aws-endpoint", url, *regions,
                                      "--map", str(DATA / map_name), "--format", "json"])
    return result.exit_code, json.loads(result.stdout), result.output


@pytest.mark.usefixtures("aws_cli_session")
def test_cli_scan_end_to_end(aws_estate: Any, aws_hooks: Any) -> None:
    code, report, raw = run_cli(aws_estate.url, "aws_map.yaml")
    assert code == 1
    rules = {(f["rule"], f["subject"]) for f in report["findings"]}
    assert ("RES-S001", f"aws:account {aws_estate.legacy}") in rules
    assert ("RES-I001", "arn:aws:s3:::sd-scratch") in rules
    # AWS EMEA SARL (LU) contracts, but a US region is run by the provider's US affiliate:
    # the replica is a transfer to another entity, not same-entity processing, and with no
    # safeguard declared for the classification it has no basis
    replica = (f"replication:arn:aws:rds:eu-west-1:{MGMT}:db:sd-tickets->"
               f"arn:aws:rds:us-east-1:{MGMT}:db:sd-tickets-us")
    s3 = "replication:arn:aws:s3:::sd-exports-fra->arn:aws:s3:::sd-exports-dr-us"
    by_subject = {f["subject"]: f for f in report["findings"] if f["rule"].startswith("RES-T")}
    assert by_subject[replica]["countries"] == ["US"] and by_subject[s3]["countries"] == ["US"]
    assert "operating US" in by_subject[replica]["message"]
    assert not any(rule == "RES-I002" for rule, _ in rules)
    for creds in aws_hooks.assumed:  # no assumed-role secret in the report
        assert creds["SecretAccessKey"] not in raw and creds["SessionToken"] not in raw


@pytest.mark.usefixtures("aws_cli_session")
def test_cli_scan_controller_feeding_us_bucket_is_a_transfer(aws_estate: Any) -> None:
    """With `fed_by`, the controller's own flow into a US-located resource is Chapter V.

    The engine answers RES-T002 (not T001): an EU-U.S. DPF decision exists, but the pack's
    AWS party (AWS EMEA SARL, no DPF certification) is outside its scope, and the map names
    no SCCs; either way the transfer has no basis.
    """
    code, report, _ = run_cli(aws_estate.url, "aws_map_fed.yaml")
    assert code == 1
    unlawful = {t["flow"] for t in report["transfers"] if not t["lawful"]}
    fed = {"helpdesk->arn:aws:s3:::sd-exports-dr-us",
           f"helpdesk->arn:aws:rds:us-east-1:{MGMT}:db:sd-tickets-us"}
    replicas = {f for f in unlawful if f.startswith("replication:")}
    assert unlawful == fed | replicas and len(replicas) == 3  # S3, RDS, DynamoDB (to AU)
    t002 = {f["subject"] for f in report["findings"] if f["rule"] == "RES-T002"}
    assert fed <= t002


@pytest.mark.usefixtures("aws_cli_session")
def test_cli_scan_classification_safeguards_cover_replicas(
    aws_estate: Any, tmp_path: Path
) -> None:
    """The provider's DPA (SCC module 3) declared on the classification value is the basis
    for copies of resources so classified; the TIA still has to be current."""
    doc = yaml.safe_load((DATA / "aws_map.yaml").read_text())
    doc["classification"]["values"]["servicedesk"]["safeguards"] = [
        {"type": "scc", "instrument": "2021/914", "module": 3, "signed": "2024-02-01",
         "tia": {"ref": "TIA-AWS", "date": "2026-09-01"}}]
    path = tmp_path / "map.yaml"
    path.write_text(yaml.safe_dump(doc))
    regions = [arg for r in REGIONS for arg in ("--aws-region", r)]
    from click.testing import CliRunner

    from residency.cli.main import cli

    result = CliRunner().invoke(cli, ["scan", "--aws", "--aws-endpoint", aws_estate.url,
                                      *regions, "--map", str(path), "--format", "json",
                                      "--as-of", "2026-11-30"])
    report = json.loads(result.stdout)
    replicas = [t for t in report["transfers"] if t["flow"].startswith("replication:")]
    assert replicas and all(t["lawful"] for t in replicas)
    assert {b["kind"] for t in replicas for b in t["bases"]} == {"safeguard"}



def test_a_govcloud_account_is_scanned_in_its_own_partition(
    aws_url: str, aws_hooks: Any
) -> None:
    """The partition comes from the caller's ARN, never assumed commercial: a GovCloud
    caller's regions are GovCloud's, its buckets `arn:aws-us-gov:s3:::…`."""
    s3 = boto3.client("s3", region_name="us-gov-west-1", endpoint_url=aws_url)
    s3.create_bucket(Bucket="gov-tickets",
                     CreateBucketConfiguration={"LocationConstraint": "us-gov-west-1"})
    s3.put_bucket_tagging(Bucket="gov-tickets", Tagging={"TagSet": [
        {"Key": "data-classification", "Value": "servicedesk"}]})
    session = aws_hooks.install(boto3.Session(region_name="us-gov-west-1"))
    labels: list[str] = []
    inv = AwsCollector(session, organization=False, endpoint_url=aws_url,
                       max_attempts=1).collect(ctx(progress=lambda label, _n: labels.append(
                           label)))
    regions = {lbl.split("/")[1].split()[0] for lbl in labels if lbl.endswith(" rds")}
    assert regions and regions <= {"us-gov-west-1", "us-gov-east-1"}, regions
    ids = {s.id for s in inv.systems}
    assert "arn:aws-us-gov:s3:::gov-tickets" in ids, ids
    assert not any(i.startswith("arn:aws:s3:::gov-tickets") for i in ids)
