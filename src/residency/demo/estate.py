"""The demo estate (`estate.yaml`): its schema, and seeding it into the local peers.

AWS resources are created through moto's own API with boto3, as a user would create them;
the Cloud Storage and ARM peers are handed the resources as their APIs return them. Where
moto answers differently from AWS, `MotoGaps` fills the gap at the protocol boundary with
botocore event handlers on the scanner's session (the collector itself is never patched).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from residency._io import read_document, validate
from residency.demo.fake_arm import FakeArm, authorization_failed, storage_account
from residency.demo.fake_gcs import FakeGcs, bucket, forbidden
from residency.demo.fake_saas import (
    FakeSaas,
    atlassian_workspace,
    freshdesk_account,
    hubspot_details,
    intercom_me,
    salesforce_org,
)

CALLER_ACCOUNT = "123456789012"  # moto's account for credentials it did not issue
SEED_ROLE = "OrganizationAccountAccessRole"
DUMMY_KEYS = {"aws_access_key_id": "demo", "aws_secret_access_key": "demo"}


# ---------------------------------------------------------------------- schema
class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class S3BucketIn(_Strict):
    name: str = Field(min_length=3)
    region: str = "us-east-1"
    tags: dict[str, str] = {}
    replicate_to: str | None = None  # another bucket of the estate (any account)


class DynamoTableIn(_Strict):
    name: str = Field(min_length=3)
    region: str
    replicas: list[str] = []  # regions besides `region` (a global table)
    tags: dict[str, str] = {}


class AwsAccountIn(_Strict):
    id: str = Field(pattern=r"^\d{12}$")
    name: str
    readable: bool = True
    buckets: list[S3BucketIn] = []
    tables: list[DynamoTableIn] = []


class AwsIn(_Strict):
    regions: list[str] = Field(min_length=1)
    accounts: list[AwsAccountIn] = Field(min_length=1)

    @model_validator(mode="after")
    def _caller_first(self) -> AwsIn:
        if self.accounts[0].id != CALLER_ACCOUNT or not self.accounts[0].readable:
            raise ValueError(f"the first account is the caller: id {CALLER_ACCOUNT}, readable")
        buckets = {b.name for a in self.accounts for b in a.buckets}
        for b in (b for a in self.accounts for b in a.buckets if b.replicate_to):
            if b.replicate_to not in buckets:
                raise ValueError(f"bucket {b.name}: replicate_to {b.replicate_to} is not in "
                                 "the estate")
        return self


class GcsBucketIn(_Strict):
    name: str = Field(min_length=3)
    location: str
    location_type: Literal["region", "dual-region", "multi-region"]
    labels: dict[str, str] = {}
    data_locations: list[str] = []


class GcpProjectIn(_Strict):
    id: str = Field(min_length=1)
    readable: bool = True
    buckets: list[GcsBucketIn] = []


class GcpIn(_Strict):
    projects: list[GcpProjectIn] = []


class StorageAccountIn(_Strict):
    name: str = Field(pattern=r"^[a-z0-9]{3,24}$")
    resource_group: str
    location: str
    sku: str
    tags: dict[str, str] = {}


class SubscriptionIn(_Strict):
    id: str = Field(min_length=1)
    name: str = ""
    readable: bool = True
    storage_accounts: list[StorageAccountIn] = []


class AzureIn(_Strict):
    subscriptions: list[SubscriptionIn] = []


SaasVendor = Literal["freshdesk", "hubspot", "intercom", "salesforce", "atlassian"]


class SaasTenantIn(_Strict):
    vendor: SaasVendor
    tenant: str = Field(min_length=1)
    location: str = Field(min_length=1)  # the code the vendor's API reports for the tenant
    name: str = "Acme Support"
    readable: bool = True  # false: the token was revoked, the vendor answers 401

    @model_validator(mode="after")
    def _portal_id(self) -> SaasTenantIn:
        if self.vendor == "hubspot" and not self.tenant.isdigit():
            raise ValueError("a HubSpot tenant is its portal id (digits)")
        return self


class SaasListIn(_Strict):
    vendor: str
    file: str = Field(pattern=r"^[A-Za-z0-9._-]+\.ya?ml$")  # next to estate.yaml, served by URL


class SaasIn(_Strict):
    classification: str | None = None
    tenants: list[SaasTenantIn] = []
    attested: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]+\.ya?ml$")
    subprocessors: list[SaasListIn] = []


class EstateIn(_Strict):
    version: Literal[1]
    aws: AwsIn
    gcp: GcpIn = GcpIn()
    azure: AzureIn = AzureIn()
    saas: SaasIn = SaasIn()


def load_estate(path: Path) -> EstateIn:
    """Read and validate `estate.yaml`; errors name the file and the key (InputError)."""
    estate: EstateIn = validate(EstateIn, read_document(path), path)
    return estate


# ---------------------------------------------------------------------- AWS
@dataclass
class MotoGaps:
    """botocore handlers that make moto answer as AWS would for this estate.

    - `denied_roles`: AssumeRole answers 403 AccessDenied, as AWS does when a member
      account's read-only role is missing or does not trust the caller (moto lets anyone
      assume anything).
    - `ddb_replicas`: DescribeTable reports `Replicas` for a global table (version
      2019.11.21); moto accepts replicas but never reports them.
    """

    denied_roles: set[str] = field(default_factory=set)
    ddb_replicas: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    caller: str = f"arn:aws:iam::{CALLER_ACCOUNT}:user/residency-demo"

    def install(self, session: Any) -> Any:
        events = session.events
        events.register("before-call.sts.AssumeRole", self._deny)
        events.register("after-call.dynamodb.DescribeTable", self._replicas)
        return session

    def _deny(self, params: Any, **_: Any) -> Any:
        body = str(params.get("body", ""))
        for arn in self.denied_roles:
            if arn in body or arn.replace(":", "%3A").replace("/", "%2F") in body:
                return error_response(
                    403, "AccessDenied",
                    f"User: {self.caller} is not authorized to perform: sts:AssumeRole on "
                    f"resource: {arn}",
                )
        return None

    def _replicas(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        table = parsed.get("Table", {})
        key = (str(context.get("client_region")), str(table.get("TableName")))
        if key in self.ddb_replicas:
            table["Replicas"] = [
                {"RegionName": r, "ReplicaStatus": "ACTIVE"} for r in self.ddb_replicas[key]
            ]


def error_response(status: int, code: str, message: str) -> tuple[Any, dict[str, Any]]:
    """A short-circuit answer for a `before-call` handler, as botocore would parse it."""
    from botocore.awsrequest import AWSResponse

    parsed = {"Error": {"Code": code, "Message": message},
              "ResponseMetadata": {"HTTPStatusCode": status}}
    return AWSResponse("https://example.invalid", status, {}, None), parsed


def isolated_session(keys: dict[str, str] | None = None, region: str = "us-east-1") -> Any:
    """A boto3 session with the given (default: the demo's dummy) keys that reads nothing from
    the user's AWS configuration (profile, config and credential files), so it reaches moto
    only, and the environment is never touched."""
    import os

    import boto3
    import botocore.session

    # (name in config, env vars, default, converter): no env lookup, no files
    core = botocore.session.Session(session_vars={
        "profile": (None, None, None, None),
        "config_file": (None, None, os.devnull, None),
        "credentials_file": (None, None, os.devnull, None),
    })
    return boto3.Session(botocore_session=core, region_name=region, **(keys or DUMMY_KEYS))


def seed_aws(spec: AwsIn, url: str, role_name: str) -> MotoGaps:
    """Create the estate's accounts' resources in moto; return the gaps to install on the
    scanner's session (`role_name` is the role the scanner assumes in member accounts)."""
    base = isolated_session()
    sts = base.client("sts", endpoint_url=url)
    gaps = MotoGaps()
    sessions: dict[str, Any] = {CALLER_ACCOUNT: base}
    for acct in spec.accounts[1:]:
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{acct.id}:role/{SEED_ROLE}",
                                RoleSessionName="residency-demo-seed")["Credentials"]
        sessions[acct.id] = isolated_session({
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        })
        if not acct.readable:
            gaps.denied_roles.add(f"arn:aws:iam::{acct.id}:role/{role_name}")
    owner: dict[str, str] = {}
    for acct in spec.accounts:
        session = sessions[acct.id]
        for b in acct.buckets:
            owner[b.name] = acct.id
            _create_bucket(session.client("s3", region_name=b.region, endpoint_url=url), b)
        for t in acct.tables:
            _create_table(session.client("dynamodb", region_name=t.region, endpoint_url=url), t)
            if t.replicas:
                gaps.ddb_replicas[(t.region, t.name)] = [t.region, *t.replicas]
    for acct in spec.accounts:
        for b in acct.buckets:
            if b.replicate_to:
                s3 = sessions[acct.id].client("s3", region_name=b.region, endpoint_url=url)
                _replicate(s3, acct.id, b.name, b.replicate_to, owner[b.replicate_to])
    return gaps


def _create_bucket(s3: Any, b: S3BucketIn) -> None:
    kwargs: dict[str, Any] = {"Bucket": b.name}
    if b.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": b.region}
    s3.create_bucket(**kwargs)
    # replication needs versioning on both ends; enabling it everywhere is harmless here
    s3.put_bucket_versioning(Bucket=b.name, VersioningConfiguration={"Status": "Enabled"})
    if b.tags:
        s3.put_bucket_tagging(Bucket=b.name, Tagging={
            "TagSet": [{"Key": k, "Value": v} for k, v in sorted(b.tags.items())]})


def _create_table(ddb: Any, t: DynamoTableIn) -> None:
    ddb.create_table(
        TableName=t.name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        Tags=[{"Key": k, "Value": v} for k, v in sorted(t.tags.items())],
    )


def _replicate(s3: Any, account: str, source: str, target: str, target_account: str) -> None:
    s3.put_bucket_replication(Bucket=source, ReplicationConfiguration={
        "Role": f"arn:aws:iam::{account}:role/s3-replication",
        "Rules": [{"ID": "dr", "Status": "Enabled", "Priority": 1, "Filter": {"Prefix": ""},
                   "DeleteMarkerReplication": {"Status": "Disabled"},
                   "Destination": {"Bucket": f"arn:aws:s3:::{target}",
                                   "Account": target_account}}],
    })


# ---------------------------------------------------------------------- Google Cloud, Azure
def gcs_peer(spec: GcpIn) -> FakeGcs:
    """A Cloud Storage peer serving the estate's projects (unreadable ones answer 403)."""
    return FakeGcs(
        projects={
            p.id: [bucket(b.name, b.location.upper(), b.location_type, dict(b.labels),
                          list(b.data_locations) or None) for b in p.buckets]
            for p in spec.projects if p.readable
        },
        errors={p.id: forbidden(p.id) for p in spec.projects if not p.readable},
    )


def arm_peer(spec: AzureIn) -> FakeArm:
    """An ARM peer listing the estate's subscriptions (unreadable ones answer 403)."""
    return FakeArm(
        subscriptions=[s.id for s in spec.subscriptions],
        resources={
            s.id: [storage_account(s.id, a.resource_group, a.name, a.location, a.sku,
                                   dict(a.tags)) for a in s.storage_accounts]
            for s in spec.subscriptions if s.readable
        },
        errors={s.id: authorization_failed(s.id) for s in spec.subscriptions if not s.readable},
    )


# ---------------------------------------------------------------------- SaaS helpdesks
def saas_peer(spec: SaasIn, folder: Path) -> tuple[FakeSaas, dict[str, str]]:
    """A peer answering each tenant's vendor API with the estate's location code, serving the
    estate's sub-processor lists under `/lists/<file>`; and the token of each vendor (one
    tenant per vendor). A tenant that is not readable is refused with the vendor's 401."""
    fake = FakeSaas(lists={item.file: (folder / item.file).read_bytes()
                           for item in spec.subprocessors})
    tokens: dict[str, str] = {}
    for i, t in enumerate(spec.tenants, start=1):
        token = f"demo-{t.vendor}-token-{i}"
        tokens[t.vendor] = token
        if t.readable:
            _seed_tenant(fake, t, token, i)
    return fake, tokens


def _seed_tenant(fake: FakeSaas, t: SaasTenantIn, token: str, i: int) -> None:
    """The vendor's documented answer for this tenant, at the token that reads it."""
    if t.vendor == "freshdesk":
        fake.freshdesk[token] = freshdesk_account(1840500 + i, t.tenant, t.location, t.name)
    elif t.vendor == "hubspot":
        fake.hubspot[token] = hubspot_details(int(t.tenant), t.location)
    elif t.vendor == "intercom":
        fake.intercom[token] = (t.location.upper(), intercom_me(t.tenant, t.location, t.name))
    elif t.vendor == "salesforce":
        fake.salesforce[token] = salesforce_org(f"00D{i:012d}", t.location)
    else:
        fake.atlassian[(token, t.tenant)] = [atlassian_workspace(
            "w1", t.name, t.location, f"{t.tenant}.atlassian.net")]
