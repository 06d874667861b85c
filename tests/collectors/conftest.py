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
    with urllib.request.urlopen(req, timeout=60) as resp:
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


# --------------------------------------------------------------------------- fault injection
@dataclass
class AwsFault:
    """How the proxy answers one AWS operation (optionally only in one region):

    - `truncate`: moto's answer cut to `keep` of its bytes with a matching Content-Length,
      status 200 (a proxy or load balancer that dropped the rest);
    - `rewrite`: moto's 2xx body through `rewrite` (an answer that lacks a promised field);
    - `body`: `body` with status 200 instead of moto's answer;
    - `status`: `status` with `body` (a gateway's 5xx page, a 429);
    - `reset`: the connection reset (TCP RST) before any answer;
    - `delay`: moto's answer after `delay` seconds (past the client's read timeout).
    """

    operation: str
    kind: str
    region: str | None = None
    status: int = 503
    body: bytes = b"<html><body><h1>503 Service Unavailable</h1></body></html>"
    keep: float = 0.5
    delay: float = 0.0
    rewrite: Callable[[bytes], bytes] | None = None


@dataclass
class FaultProxy:
    """A loopback HTTP proxy between the scanner and moto that breaks chosen operations on
    the wire, below botocore: the collector sees exactly what a faulty network would give."""

    upstream: str
    faults: list[AwsFault] = field(default_factory=list)
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # service, region, op
    url: str = ""
    _server: Any = None
    _thread: Any = None

    def start(self) -> FaultProxy:
        import threading
        from http.server import ThreadingHTTPServer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="residency-fault-proxy", daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None

    def add(self, operation: str, kind: str, **options: Any) -> AwsFault:
        """Break `operation` from now on (see `AwsFault` for the kinds and options)."""
        fault = AwsFault(operation, kind, **options)
        self.faults.append(fault)
        return fault

    def fault_for(self, region: str, operation: str) -> AwsFault | None:
        return next((f for f in self.faults if f.operation == operation
                     and f.region in (None, region)), None)

    def _handler(self) -> Any:
        import http.client
        import re
        import socket
        import struct
        import time
        from http.server import BaseHTTPRequestHandler
        from urllib.parse import parse_qs, urlsplit

        proxy = self
        up = urlsplit(self.upstream)
        scope = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/")

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _operation(self, body: bytes) -> tuple[str, str, str]:
                match = scope.search(self.headers.get("Authorization", ""))
                region, service = match.groups() if match else ("", "")
                target = self.headers.get("X-Amz-Target")
                if target:
                    return service, region, target.rsplit(".", 1)[-1]
                parts = urlsplit(self.path)
                form = parse_qs(parts.query, keep_blank_values=True)
                if self.headers.get("Content-Type", "").startswith(
                        "application/x-www-form-urlencoded"):
                    form.update(parse_qs(body.decode(), keep_blank_values=True))
                if "Action" in form:
                    return service, region, form["Action"][0]
                if service == "s3":  # rest-xml: the sub-resource names the operation
                    for sub, op in (("location", "GetBucketLocation"),
                                    ("tagging", "GetBucketTagging"),
                                    ("replication", "GetBucketReplication")):
                        if sub in form:
                            return service, region, op
                    return service, region, "ListBuckets" if parts.path in ("", "/") else "?"
                return service, region, "?"

            def _proxy(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                service, region, op = self._operation(body)
                proxy.seen.append((service, region, op))
                fault = proxy.fault_for(region, op)
                if fault is not None and fault.kind == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=30)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                status, data = resp.status, resp.read()
                out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in
                               ("content-length", "transfer-encoding", "connection",
                                "date", "server")]
                conn.close()
                if fault is not None:
                    if fault.kind == "delay":
                        time.sleep(fault.delay)
                    elif fault.kind == "truncate" and 200 <= status < 300:
                        data = data[: int(len(data) * fault.keep)]
                    elif fault.kind == "rewrite" and 200 <= status < 300 and fault.rewrite:
                        data = fault.rewrite(data)
                    elif fault.kind == "body":
                        status, data = 200, fault.body
                    elif fault.kind == "status":
                        status, data = fault.status, fault.body
                        out_headers = [("Content-Type", "text/html")]
                try:
                    self.send_response(status)
                    for k, v in out_headers:
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                except OSError:  # the client gave up first (a delay past its read timeout)
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _proxy  # noqa: N815

        return Handler


@pytest.fixture(scope="module")
def fault_proxy(aws_server: str) -> Iterator[FaultProxy]:
    """A proxy in front of the session's moto server; faults are cleared for every test."""
    proxy = FaultProxy(aws_server).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def faults(fault_proxy: FaultProxy) -> Iterator[FaultProxy]:
    fault_proxy.faults.clear()
    fault_proxy.seen.clear()
    yield fault_proxy
    fault_proxy.faults.clear()


# --------------------------------------------------------------------------- services moto lacks
# (appended for issue 14: the collector now reads EFS, ElastiCache, Connect storage and KMS
# keys, so every AWS test's session needs these; fold into `AwsHooks.install` and the demo's
# `MotoGaps` when those are next edited)
_IAM_NAMES[("s3", "GetBucketEncryption")] = "s3:GetEncryptionConfiguration"
_IAM_PREFIX["efs"] = "elasticfilesystem"

from residency.demo.moto_services import MotoServiceGaps  # noqa: E402 - with its section


def moto_services(hooks: AwsHooks) -> MotoServiceGaps:
    """The service gap-fillers that `hooks.install` puts on a session (one set per hooks)."""
    found = hooks.__dict__.get("_moto_services")
    if found is None:
        found = hooks.__dict__["_moto_services"] = MotoServiceGaps()
    return found


_install_without_services = AwsHooks.install


def _install_with_services(self: AwsHooks, session: Any) -> Any:
    _install_without_services(self, session)
    return moto_services(self).install(session)


AwsHooks.install = _install_with_services  # type: ignore[method-assign]


def _seed_quiet_services(url: str) -> None:
    """Management-account resources that make the estate scan call every read the collector
    has (for the least-privilege check) without adding a copy: an unclassified secret with
    a customer key, a backup plan without copy rules, an ECR replication rule no repository
    matches, an untagged Connect instance without storage configs (Frankfurt: Connect is not
    offered in Ireland). Flows are asserted in tests/collectors/test_aws_services.py."""
    key = _client(url, "kms", "eu-central-1").create_key(Description="sd-relay")
    _client(url, "secretsmanager", "eu-central-1").create_secret(
        Name="sd-smtp-relay", SecretString="not-a-secret", KmsKeyId=key["KeyMetadata"]["Arn"])
    backup = _client(url, "backup", "eu-central-1")
    backup.create_backup_vault(BackupVaultName="sd-local")
    backup.create_backup_plan(BackupPlan={"BackupPlanName": "sd-daily", "Rules": [
        {"RuleName": "daily", "TargetBackupVaultName": "sd-local"}]})
    _client(url, "ecr", "eu-central-1").put_replication_configuration(
        replicationConfiguration={"rules": [{
            "destinations": [{"region": "us-west-2", "registryId": MGMT}],
            "repositoryFilters": [{"filter": "sd-mirror/", "filterType": "PREFIX_MATCH"}]}]})
    _client(url, "connect", "eu-central-1").create_instance(
        IdentityManagementType="CONNECT_MANAGED", InstanceAlias="sd-quiet",
        InboundCallsEnabled=True, OutboundCallsEnabled=False)


_seed_estate_without_services = seed_estate


def _seed_estate_with_services(url: str, hooks: AwsHooks) -> AwsEstate:
    estate = _seed_estate_without_services(url, hooks)
    _seed_quiet_services(url)
    return estate


seed_estate = _seed_estate_with_services


@pytest.fixture
def aws_services(aws_hooks: AwsHooks) -> MotoServiceGaps:
    """The service gap-fillers of `aws_hooks` (installed with it on `aws_session`)."""
    return moto_services(aws_hooks)


@pytest.fixture(scope="module")
def aws_bare_module(
    aws_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, AwsHooks, MotoServiceGaps]]:
    """A clean moto backend and fresh hooks for a module that seeds its own estate once:
    (url, hooks, the hooks' service gap-fillers)."""
    with pytest.MonkeyPatch.context() as mp:
        aws_reset(aws_server)
        aws_dummy_env(mp, tmp_path_factory.mktemp("aws-bare"))
        hooks = AwsHooks()
        yield aws_server, hooks, moto_services(hooks)
