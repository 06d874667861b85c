"""AWS fixtures: one moto server per session over HTTP, reset between tests, and a seeded
multi-account service-desk estate. (GCP/Azure fixtures live with their own fakes.)"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

from residency.demo.estate import MotoGaps, error_response  # noqa: E402 - after the skips

CLASS_TAG = "data-classification"
SD = [{"Key": CLASS_TAG, "Value": "servicedesk"}]
MGMT = "123456789012"  # moto's default caller account: the organization's management account
POLICY = Path(__file__).resolve().parents[2] / "policies" / "iam" / "aws-readonly-policy.json"

# API operation → IAM action where the names differ (S3 only, for the calls we make)
_IAM_NAMES = {
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "GetBucketReplication"): "s3:GetReplicationConfiguration",
}
_IAM_PREFIX = {"resourcegroupstaggingapi": "tag"}


@pytest.fixture(scope="session")
def aws_server() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def aws_reset(url: str) -> None:
    """Drop every moto backend (they are process-global)."""
    req = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def aws_dummy_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An environment whose only AWS credentials are moto's dummies."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


@pytest.fixture
def aws_url(aws_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A clean moto backend, and an environment whose only credentials are dummies."""
    aws_reset(aws_server)
    aws_dummy_env(monkeypatch, tmp_path)
    return aws_server


# --------------------------------------------------------------------------- hooks
@dataclass
class AwsHooks(MotoGaps):
    """botocore event handlers the tests install on every session the collector uses.

    From `MotoGaps` (shared with the demo): `denied_roles` (AssumeRole answers AccessDenied,
    standing for a member account whose ResidencyReadOnly role is missing or does not
    trust the management account) and `ddb_replicas` (DescribeTable reports `Replicas` as
    real AWS does for a global table; moto never reports them). Added here:
    - `calls`: every `service:Operation` sent, for the least-privilege policy check.
    - `assumed`: credentials STS handed out, to prove none leaks into a report.
    """

    calls: list[tuple[str, str]] = field(default_factory=list)
    assumed: list[dict[str, str]] = field(default_factory=list)
    extra: list[tuple[str, Callable[..., Any]]] = field(default_factory=list)
    caller: str = f"arn:aws:iam::{MGMT}:user/scanner"

    def install(self, session: Any) -> Any:
        events = session.events
        events.register("before-call", self._record)
        super().install(session)
        events.register("after-call.sts.AssumeRole", self._capture)
        for name, handler in self.extra:
            events.register(name, handler)
        return session

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append((model.service_model.service_name, model.name))

    def _capture(self, parsed: dict[str, Any], **_: Any) -> None:
        creds = parsed.get("Credentials")
        if creds:
            self.assumed.append({k: str(v) for k, v in creds.items()})

    error_response = staticmethod(error_response)

    @staticmethod
    def policy_actions() -> set[str]:
        """Every action in policies/iam/aws-readonly-policy.json."""
        doc = json.loads(POLICY.read_text())
        return {a for st in doc["Statement"] for a in st["Action"]}

    def iam_actions(self) -> set[str]:
        out = set()
        for service, op in self.calls:
            out.add(_IAM_NAMES.get((service, op), f"{_IAM_PREFIX.get(service, service)}:{op}"))
        return out


@pytest.fixture
def aws_hooks() -> AwsHooks:
    return AwsHooks()


@pytest.fixture
def aws_session(aws_url: str, aws_hooks: AwsHooks) -> Any:
    """The scanner's base session (management account), with the test hooks installed."""
    return aws_hooks.install(boto3.Session(region_name="us-east-1"))


# --------------------------------------------------------------------------- estate
@dataclass
class AwsEstate:
    url: str
    mgmt: str
    eu: str  # service desk EU member (eu-central-1 exports, replicated to dr)
    dr: str  # disaster-recovery member (us-east-1)
    legacy: str  # member whose read-only role cannot be assumed
    names: dict[str, str] = field(default_factory=dict)


def _client(url: str, service: str, region: str, creds: dict[str, str] | None = None) -> Any:
    kwargs: dict[str, Any] = {}
    if creds:
        kwargs = {"aws_access_key_id": creds["AccessKeyId"],
                  "aws_secret_access_key": creds["SecretAccessKey"],
                  "aws_session_token": creds["SessionToken"]}
    return boto3.client(service, region_name=region, endpoint_url=url, **kwargs)


def _member(url: str, account: str) -> dict[str, str]:
    got = _client(url, "sts", "us-east-1").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
        RoleSessionName="seed")
    return {k: str(v) for k, v in got["Credentials"].items()}


def _bucket(s3: Any, name: str, region: str | None, tags: list[dict[str, str]] | None) -> None:
    kwargs: dict[str, Any] = {"Bucket": name}
    if region is not None:
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})


def seed_estate(url: str, hooks: AwsHooks) -> AwsEstate:
    """A service desk on AWS: an organization of a management account and three members."""
    org = _client(url, "organizations", "us-east-1")
    org.create_organization(FeatureSet="ALL")
    ids = {}
    for key, name in [("eu", "servicedesk-eu"), ("dr", "servicedesk-dr"), ("legacy", "legacy")]:
        status = org.create_account(AccountName=name, Email=f"{name}@example.com")
        ids[key] = str(status["CreateAccountStatus"]["AccountId"])
    estate = AwsEstate(url, MGMT, ids["eu"], ids["dr"], ids["legacy"])
    hooks.denied_roles.add(f"arn:aws:iam::{estate.legacy}:role/ResidencyReadOnly")

    # management account: attachments, a legacy `EU` bucket, an unclassified scratch bucket
    s3 = _client(url, "s3", "eu-west-1")
    _bucket(s3, "sd-attachments-ie", "eu-west-1", SD)
    s3_global = _client(url, "s3", "us-east-1")  # `EU` is accepted by the global endpoint only
    _bucket(s3_global, "sd-legacy-eu", "EU", SD)
    _bucket(s3_global, "sd-scratch", None, None)
    # ticket database in Ireland, cross-region read replica in N. Virginia
    rds = _client(url, "rds", "eu-west-1")
    src = rds.create_db_instance(
        DBInstanceIdentifier="sd-tickets", DBInstanceClass="db.t3.micro", Engine="postgres",
        MasterUsername="admin", MasterUserPassword="not-a-secret-1", AllocatedStorage=20,
        Tags=SD)["DBInstance"]
    _client(url, "rds", "us-east-1").create_db_instance_read_replica(
        DBInstanceIdentifier="sd-tickets-us", SourceDBInstanceIdentifier=src["DBInstanceArn"],
        DBInstanceClass="db.t3.micro", Tags=SD)
    # agent sessions: a DynamoDB global table Ireland ↔ Sydney
    ddb = _client(url, "dynamodb", "eu-west-1")
    ddb.create_table(
        TableName="sd-sessions", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], Tags=SD)
    hooks.ddb_replicas[("eu-west-1", "sd-sessions")] = ["eu-west-1", "ap-southeast-2"]
    # notifications queue: only the tagging API reports it
    _client(url, "sqs", "eu-west-1").create_queue(
        QueueName="sd-notifications", tags={CLASS_TAG: "servicedesk"})

    # EU member: exports in Frankfurt, replicated to the DR member's bucket in N. Virginia
    eu = _member(url, estate.eu)
    dr = _member(url, estate.dr)
    s3_dr = _client(url, "s3", "us-east-1", dr)
    _bucket(s3_dr, "sd-exports-dr-us", None, SD)
    s3_dr.put_bucket_versioning(Bucket="sd-exports-dr-us",
                                VersioningConfiguration={"Status": "Enabled"})
    s3_eu = _client(url, "s3", "eu-central-1", eu)
    _bucket(s3_eu, "sd-exports-fra", "eu-central-1", SD)
    s3_eu.put_bucket_versioning(Bucket="sd-exports-fra",
                                VersioningConfiguration={"Status": "Enabled"})
    s3_eu.put_bucket_replication(Bucket="sd-exports-fra", ReplicationConfiguration={
        "Role": f"arn:aws:iam::{estate.eu}:role/s3-replication",
        "Rules": [{"ID": "dr", "Status": "Enabled", "Priority": 1, "Filter": {"Prefix": ""},
                   "DeleteMarkerReplication": {"Status": "Disabled"},
                   "Destination": {"Bucket": "arn:aws:s3:::sd-exports-dr-us",
                                   "Account": estate.dr}}],
    })
    # legacy member: a bucket nobody can see without the role
    _bucket(_client(url, "s3", "eu-west-3", _member(url, estate.legacy)), "legacy-tickets",
            "eu-west-3", SD)
    return estate


@pytest.fixture
def aws_estate(aws_url: str, aws_hooks: AwsHooks) -> AwsEstate:
    return seed_estate(aws_url, aws_hooks)


@pytest.fixture(scope="module")
def aws_seeded_module(
    aws_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AwsEstate, AwsHooks, Any]]:
    """The estate seeded once for a module of read-only assertions: (estate, hooks, session)."""
    with pytest.MonkeyPatch.context() as mp:
        aws_reset(aws_server)
        aws_dummy_env(mp, tmp_path_factory.mktemp("aws"))
        hooks = AwsHooks()
        estate = seed_estate(aws_server, hooks)
        yield estate, hooks, hooks.install(boto3.Session(region_name="us-east-1"))
