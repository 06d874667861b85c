"""An AWS estate spanning the commercial and GovCloud partitions, scanned once (issue 14).

moto in server mode, over HTTP. The commercial organization is moto's Organizations: a
management account, an EU member and a member whose read-only role cannot be assumed. The
GovCloud account is a separate identity reached through its own profile, in its own
partition (moto derives the partition of every ARN, STS identity included, from the region,
as AWS does). Every data-store type the collector lists (`LISTINGS`) has one untagged store.

What moto 5.2.5 lacks is answered at the protocol boundary (conftest's `MotoServiceGaps` and
`AwsHooks`), standing for real behaviour:
- EFS DescribeReplicationConfigurations (moto: HTTP 500) answers the replication AWS reports;
- KMS DescribeKey of a multi-Region primary lists its ReplicaKeys (moto's ReplicateKey fails);
- DynamoDB DescribeTable reports `Replicas` of a 2019.11.21 global table (moto drops them);
- AssumeRole answers AccessDenied for the legacy member (a role missing or not trusting
  the management account);
- ECR repositories are not in moto's tagging API (AWS lists them there once tagged);
- an AccessDenied on `es:ListDomainNames` in us-gov-east-1 (a permission boundary there).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from residency.collectors._aws_stores import LISTINGS, arn_type
from residency.collectors.aws import AwsCollector
from residency.collectors.interface import CollectContext
from residency.datamap import parse_map
from residency.model import Classification, ClassificationValue, Inventory, Report, System
from residency.policy.engine import Engine, EngineOptions
from residency.policy.pack import PolicyPack

boto3 = pytest.importorskip("boto3")

CLASS_TAG = "data-classification"
SD = [{"Key": CLASS_TAG, "Value": "servicedesk"}]
SD_MAP = {CLASS_TAG: "servicedesk"}
MGMT = "123456789012"
GOV = "210987654321"
FRA, IE, NVA = "eu-central-1", "eu-west-1", "us-east-1"
GW, GE = "us-gov-west-1", "us-gov-east-1"
REGIONS = (FRA, IE, NVA, GW, GE)  # one list for the estate; each account takes its part
CATS = frozenset({"contact_details", "ticket_content"})
SUBNET = "subnet-0123456789abcdef0"
MAP = {
    "version": 1,
    "parties": [{"id": "acme", "name": "Acme Service Desk", "country": "IE"}],
    "classification": {"tag": CLASS_TAG, "values": {
        "servicedesk": {"data_categories": sorted(CATS)}}},
}


def _creds(url: str, account: str, region: str) -> dict[str, str]:
    partition = "aws-us-gov" if region.startswith("us-gov-") else "aws"
    got = boto3.client("sts", region_name=region, endpoint_url=url).assume_role(
        RoleArn=f"arn:{partition}:iam::{account}:role/OrganizationAccountAccessRole",
        RoleSessionName="seed")["Credentials"]
    return {"aws_access_key_id": got["AccessKeyId"],
            "aws_secret_access_key": got["SecretAccessKey"],
            "aws_session_token": got["SessionToken"]}


def _untagged_stores(url: str) -> dict[str, str]:
    """One untagged store of every listed type, in Frankfurt: listing tf → ARN."""
    def c(service: str) -> Any:
        return boto3.client(service, region_name=FRA, endpoint_url=url)

    def at(service: str, rest: str) -> str:
        return f"arn:aws:{service}:{FRA}:{MGMT}:{rest}"

    out: dict[str, str] = {}
    out["aws_efs_file_system"] = str(c("efs").create_file_system(
        CreationToken="loose-files")["FileSystemArn"])
    c("elasticache").create_replication_group(
        ReplicationGroupId="loose-cache", ReplicationGroupDescription="d", Engine="redis",
        CacheNodeType="cache.t3.micro")
    out["aws_elasticache_replication_group"] = at("elasticache", "replicationgroup:loose-cache")
    out["aws_elasticache_cluster"] = str(c("elasticache").create_cache_cluster(
        CacheClusterId="loose-memcached", Engine="memcached", CacheNodeType="cache.t3.micro",
        NumCacheNodes=1)["CacheCluster"]["ARN"])
    out["aws_memorydb_cluster"] = str(c("memorydb").create_cluster(
        ClusterName="loose-mdb", NodeType="db.t4g.small", ACLName="open-access")["Cluster"]["ARN"])
    out["aws_ecr_repository"] = str(c("ecr").create_repository(
        repositoryName="loose/images")["repository"]["repositoryArn"])
    out["aws_backup_vault"] = str(c("backup").create_backup_vault(
        BackupVaultName="loose-vault")["BackupVaultArn"])
    c("glacier").create_vault(vaultName="loose-archive")
    out["aws_glacier_vault"] = at("glacier", "vaults/loose-archive")
    out["aws_opensearch_domain"] = str(c("opensearch").create_domain(
        DomainName="loose-search")["DomainStatus"]["ARN"])
    c("redshift").create_cluster(ClusterIdentifier="loose-dw", NodeType="dc2.large",
                                 MasterUsername="admin", MasterUserPassword="Abcdefgh1",
                                 ClusterType="single-node")
    out["aws_redshift_cluster"] = at("redshift", "cluster:loose-dw")
    out["aws_dax_cluster"] = str(c("dax").create_cluster(
        ClusterName="loose-dax", NodeType="dax.t3.small", ReplicationFactor=1,
        IamRoleArn=f"arn:aws:iam::{MGMT}:role/dax")["Cluster"]["ClusterArn"])
    out["aws_fsx_lustre_file_system"] = str(c("fsx").create_file_system(
        FileSystemType="LUSTRE", StorageCapacity=1200, SubnetIds=[SUBNET])["FileSystem"][
        "ResourceARN"])
    c("kinesis").create_stream(StreamName="loose-events", ShardCount=1)
    out["aws_kinesis_stream"] = at("kinesis", "stream/loose-events")
    out["aws_kinesis_firehose_delivery_stream"] = str(c("firehose").create_delivery_stream(
        DeliveryStreamName="loose-firehose", ExtendedS3DestinationConfiguration={
            "RoleARN": f"arn:aws:iam::{MGMT}:role/f", "BucketARN": "arn:aws:s3:::x"})[
        "DeliveryStreamARN"])
    out["aws_msk_cluster"] = str(c("kafka").create_cluster_v2(
        ClusterName="loose-msk", Serverless={"VpcConfigs": [{"SubnetIds": [SUBNET]}]})[
        "ClusterArn"])
    out["aws_mq_broker"] = str(c("mq").create_broker(
        BrokerName="loose-mq", DeploymentMode="SINGLE_INSTANCE", EngineType="ACTIVEMQ",
        EngineVersion="5.17.6", HostInstanceType="mq.t3.micro", PubliclyAccessible=False,
        AutoMinorVersionUpgrade=True, Users=[{"Username": "u", "Password": "not-a-secret-1"}])[
        "BrokerArn"])
    c("sqs").create_queue(QueueName="loose-queue")
    out["aws_sqs_queue"] = at("sqs", "loose-queue")
    out["aws_sns_topic"] = str(c("sns").create_topic(Name="loose-topic")["TopicArn"])
    c("logs").create_log_group(logGroupName="loose-logs")
    out["aws_cloudwatch_log_group"] = at("logs", "log-group:loose-logs")
    return out


def _seed_commercial(url: str, hooks: Any, fills: Any) -> dict[str, str]:
    ids: dict[str, str] = {}
    org = boto3.client("organizations", region_name=NVA, endpoint_url=url)
    org.create_organization(FeatureSet="ALL")
    for key, name in (("eu", "servicedesk-eu"), ("legacy", "legacy")):
        status = org.create_account(AccountName=name, Email=f"{name}@example.com")
        ids[key] = str(status["CreateAccountStatus"]["AccountId"])
    hooks.denied_roles.add(f"arn:aws:iam::{ids['legacy']}:role/ResidencyReadOnly")

    # management account, Frankfurt: attachments on EFS under a multi-Region key with a
    # replica in Sydney, replicated to Ireland; a secret under the AWS managed key
    kms = boto3.client("kms", region_name=FRA, endpoint_url=url)
    ids["mrk"] = str(kms.create_key(MultiRegion=True, Description="sd")["KeyMetadata"]["Arn"])
    fills.kms_replicas[ids["mrk"]] = ["ap-southeast-2"]
    efs = boto3.client("efs", region_name=FRA, endpoint_url=url)
    fs = efs.create_file_system(CreationToken="sd-attachments", Encrypted=True,
                                KmsKeyId=ids["mrk"], Tags=SD)
    ids["efs"] = str(fs["FileSystemArn"])
    ids["efs_ie"] = f"arn:aws:elasticfilesystem:{IE}:{MGMT}:file-system/fs-0ie"
    fills.efs_replications[FRA] = [{
        "SourceFileSystemId": fs["FileSystemId"], "SourceFileSystemRegion": FRA,
        "SourceFileSystemArn": ids["efs"], "OriginalSourceFileSystemArn": ids["efs"],
        "CreationTime": 1_700_000_000, "SourceFileSystemOwnerId": MGMT,
        "Destinations": [{"Status": "ENABLED", "FileSystemId": "fs-0ie", "Region": IE}]}]
    ids["secret"] = str(boto3.client("secretsmanager", region_name=FRA, endpoint_url=url)
                        .create_secret(Name="sd-mailbox", SecretString="x", Tags=SD)["ARN"])
    # a tagged network resource: not a data store, never an unclassified store
    ec2 = boto3.client("ec2", region_name=FRA, endpoint_url=url)
    ids["sg"] = str(ec2.create_security_group(
        GroupName="sd-web", Description="web", TagSpecifications=[{
            "ResourceType": "security-group", "Tags": [{"Key": "Name", "Value": "sd"}]}])[
        "GroupId"])

    # EU member, Ireland: the ticket table, a global table with a replica in N. Virginia
    ddb = boto3.client("dynamodb", region_name=IE, endpoint_url=url,
                       **_creds(url, ids["eu"], NVA))
    table = ddb.create_table(
        TableName="sd-tickets", BillingMode="PAY_PER_REQUEST", Tags=SD,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    ids["table"] = str(table["TableDescription"]["TableArn"])
    hooks.ddb_replicas[(IE, "sd-tickets")] = [IE, NVA]
    return ids


def _seed_govcloud(url: str, hooks: Any) -> dict[str, str]:
    """A GovCloud account: its own identity, partition aws-us-gov."""
    creds = _creds(url, GOV, GW)
    ids: dict[str, str] = {}

    def c(service: str, region: str = GW) -> Any:
        return boto3.client(service, region_name=region, endpoint_url=url, **creds)

    ids["gov_key"] = str(c("kms").create_key(Description="gov")["KeyMetadata"]["Arn"])
    table = c("dynamodb").create_table(
        TableName="gov-cases", BillingMode="PAY_PER_REQUEST", Tags=SD,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": ids["gov_key"]})
    ids["gov_table"] = str(table["TableDescription"]["TableArn"])
    hooks.ddb_replicas[(GW, "gov-cases")] = [GW, GE]
    s3 = c("s3")
    s3.create_bucket(Bucket="gov-attachments", CreateBucketConfiguration={
        "LocationConstraint": GW})
    s3.put_bucket_tagging(Bucket="gov-attachments", Tagging={"TagSet": SD})
    s3.put_bucket_encryption(Bucket="gov-attachments", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": ids["gov_key"]}}]})
    c("sqs").create_queue(QueueName="gov-intake")
    ids["gov_queue"] = f"arn:aws-us-gov:sqs:{GW}:{GOV}:gov-intake"
    for name, value in creds.items():
        ids[name] = value
    return ids


def _deny_es_in_gov_east(hooks: Any) -> Any:
    def deny(context: dict[str, Any], **_: Any) -> Any:
        if context.get("client_region") == GE:
            return hooks.error_response(403, "AccessDeniedException", "User is not "
                                        "authorized to perform: es:ListDomainNames")
        return None
    return deny


@pytest.fixture(scope="module")
def estate(aws_bare_module: Any) -> Iterator[tuple[dict[str, Any], Any, Inventory, Report]]:
    url, hooks, fills = aws_bare_module
    hooks.extra.append(("before-call.elasticsearch-service.ListDomainNames",
                        _deny_es_in_gov_east(hooks)))
    ids: dict[str, Any] = {**_seed_commercial(url, hooks, fills), **_seed_govcloud(url, hooks)}
    ids["untagged"] = _untagged_stores(url)
    fills.tagged[ids["untagged"]["aws_ecr_repository"]] = {}
    gov = {k: ids[k] for k in ("aws_access_key_id", "aws_secret_access_key",
                               "aws_session_token")}

    def profile(name: str | None) -> Any:
        assert name == "govcloud", name
        return hooks.install(boto3.Session(region_name=GW, **gov))

    base = hooks.install(boto3.Session(region_name=NVA))
    pack = PolicyPack.load()
    collector = AwsCollector(base, profiles=("govcloud",), session_factory=profile,
                             regions=REGIONS, endpoint_url=url, max_attempts=1,
                             catalogue=pack.catalogue)
    inv = collector.collect(CollectContext(
        Classification(CLASS_TAG, (("servicedesk", ClassificationValue(CATS)),)), workers=8))
    datamap = parse_map(MAP, pack, Path("estate.yaml"))
    report = Engine(pack, EngineOptions(dt.date(2026, 11, 30))).run(datamap, [inv])
    yield ids, hooks, inv, report


def _systems(inv: Inventory) -> dict[str, System]:
    return {s.id: s for s in inv.systems}


def _countries(report: Report) -> dict[str, frozenset[str]]:
    return {sid: loc.countries for sid, loc in report.resolved}


def _findings(report: Report, rule: str) -> dict[str, Any]:
    return {f.subject: f for f in report.findings if f.rule == rule}


# --------------------------------------------------------------------------- where
def test_every_store_is_found_at_its_countries(estate: Any) -> None:
    ids, _, inv, report = estate
    systems, countries = _systems(inv), _countries(report)
    expect = {
        ids["efs"]: (FRA, MGMT, "DE"), ids["secret"]: (FRA, MGMT, "DE"),
        ids["table"]: (IE, ids["eu"], "IE"),
        ids["gov_table"]: (GW, GOV, "US"), "arn:aws-us-gov:s3:::gov-attachments": (GW, GOV, "US"),
        ids["gov_queue"]: (GW, GOV, "US"),
    }
    for sid, (region, account, country) in expect.items():
        assert systems[sid].location.regions == (region,), sid
        assert systems[sid].account == account, sid
        assert countries[sid] == {country}, sid
    for tf, arn in ids["untagged"].items():
        assert systems[arn].location.regions == (FRA,), tf
        assert countries[arn] == {"DE"}, tf


def test_the_govcloud_account_is_read_in_its_own_partition(estate: Any) -> None:
    _, _, inv, _ = estate
    gov = [s for s in inv.systems if s.account == GOV]
    assert gov and all(s.id.startswith("arn:aws-us-gov:") for s in gov), [s.id for s in gov]
    assert all(r.startswith("us-gov-") for s in gov for r in s.location.regions)
    # and no commercial account was read in a GovCloud region, nor the other way round
    commercial = [s for s in inv.systems if s.account != GOV and s.location.regions]
    assert not [s.id for s in commercial if s.location.regions[0].startswith("us-gov-")]
    assert not [g for g in inv.gaps if "regions" in g.scope], inv.gaps


# --------------------------------------------------------------------------- copies
def test_every_copy_is_a_flow_to_the_right_country(estate: Any) -> None:
    ids, _, inv, report = estate
    countries = _countries(report)
    flows = {(f.source, f.target): f for f in inv.flows}
    expect = {
        (ids["efs"], ids["efs_ie"]): "IE",
        (ids["table"], ids["table"].replace(f":{IE}:", f":{NVA}:")): "US",
        (ids["gov_table"], ids["gov_table"].replace(f":{GW}:", f":{GE}:")): "US",
    }
    for (source, target), country in expect.items():
        flow = flows[(source, target)]
        assert flow.kind == "replication" and flow.data_categories == CATS, source
        assert countries[target] == {country}, target
    # the EU table's copy to N. Virginia is a transfer the engine judged
    judged = {t.flow for t in report.transfers if t.regime == "eu_gdpr"}
    assert f"replication:{ids['table']}->{ids['table'].replace(f':{IE}:', f':{NVA}:')}" in judged


# --------------------------------------------------------------------------- keys
def test_every_key_is_located(estate: Any) -> None:
    ids, _, inv, _ = estate
    systems = _systems(inv)
    [efs_key] = systems[ids["efs"]].keys
    assert (efs_key.arn, efs_key.region, efs_key.replica_regions, efs_key.key_manager) == (
        ids["mrk"], FRA, ("ap-southeast-2",), "CUSTOMER")
    for sid in (ids["gov_table"], "arn:aws-us-gov:s3:::gov-attachments"):
        [key] = systems[sid].keys
        assert key.arn == ids["gov_key"] and key.region == GW and key.account == GOV, sid
        assert key.arn.startswith("arn:aws-us-gov:kms:")
    [secret_key] = systems[ids["secret"]].keys
    assert (secret_key.key, secret_key.key_manager) == ("alias/aws/secretsmanager", "AWS")
    assert not [s.id for s in inv.systems if s.classified and any(
        k.unknown_reason for k in s.keys)]


def test_key_rules_judge_where_keys_are_held_and_who_manages_them(estate: Any) -> None:
    ids, _, _, report = estate
    outside = _findings(report, "RES-K001")
    # the Sydney replica of the EFS key; the GovCloud stores' key in the US (the Irish
    # controller's data: the encryption is no measure against US authorities either)
    gov_bucket = "arn:aws-us-gov:s3:::gov-attachments"
    assert set(outside) == {ids["efs"], ids["gov_table"], gov_bucket}, outside
    assert outside[ids["efs"]].countries == ("AU",)
    assert outside[ids["efs"]].regime == "eu_gdpr"
    assert "replica in ap-southeast-2" in outside[ids["efs"]].message
    assert outside[ids["gov_table"]].countries == outside[gov_bucket].countries == ("US",)
    # the EFS key's own region (Frankfurt) is in the area: not named as a place outside it
    assert "key in eu-central-1" not in outside[ids["efs"]].message
    provider_only = _findings(report, "RES-K002")
    assert ids["secret"] in provider_only  # AWS managed key only
    assert ids["efs"] not in provider_only and ids["gov_table"] not in provider_only


# --------------------------------------------------------------------------- unclassified
def test_every_untagged_store_is_reported(estate: Any) -> None:
    ids, _, inv, report = estate
    untagged = set(ids["untagged"].values()) | {ids["gov_queue"]}
    reported = set(_findings(report, "RES-I001"))
    assert untagged <= reported, untagged - reported
    # nothing else: the tagged security group is no data store (the catalogue says)
    assert reported == untagged, reported - untagged
    assert not [s for s in inv.systems if ids["sg"] in s.id]


def test_every_listing_is_a_catalogue_store_and_has_a_case_here(estate: Any) -> None:
    ids, _, _, _ = estate
    catalogue = PolicyPack.load().catalogue
    for listing in LISTINGS:
        entry = catalogue.entry(listing.tf)
        assert entry is not None and entry.store, listing.tf
    assert set(ids["untagged"]) == {listing.tf for listing in LISTINGS}
    for tf, arn in ids["untagged"].items():  # an ARN any answer names finds its entry
        found = arn_type(arn)
        assert found is not None and catalogue.entry(found) is not None, (tf, arn)


# --------------------------------------------------------------------------- gaps
def test_every_unreadable_scope_is_a_gap(estate: Any) -> None:
    ids, _, inv, report = estate
    scopes = {g.scope: g.reason for g in inv.gaps}
    assert set(scopes) == {f"account {ids['legacy']}", f"account {GOV}/{GE} es DomainNames"}, \
        scopes
    assert scopes[f"account {GOV}/{GE} es DomainNames"].startswith("AccessDeniedException")
    assert {f.subject for f in report.findings if f.rule == "RES-S001"} == {
        f"aws:{s}" for s in scopes}


def test_least_privilege_covers_every_listing(estate: Any) -> None:
    _, hooks, _, _ = estate
    made = hooks.iam_actions()
    assert made <= hooks.policy_actions(), made - hooks.policy_actions()
    for listing in LISTINGS:
        model = boto3.client(listing.service, region_name=FRA).meta
        op = model.method_to_api_mapping[listing.operation]
        assert (model.service_model.service_name, op) in hooks.calls, listing


# --------------------------------------------------------------------------- outputs
def test_keys_are_in_the_json_report_and_match_its_schema(estate: Any) -> None:
    import json

    import jsonschema

    from residency.formats.jsonfmt import JsonFormatter

    ids, _, _, report = estate
    doc = json.loads(JsonFormatter().render(report))
    schema_path = Path(__file__).parents[2] / "src/residency/formats/report.schema.json"
    jsonschema.validate(doc, json.loads(schema_path.read_text()))
    systems = {s["id"]: s for s in doc["systems"]}
    [efs_key] = systems[ids["efs"]]["keys"]
    assert efs_key["arn"] == ids["mrk"] and efs_key["replica_regions"] == ["ap-southeast-2"]
    assert efs_key["key_manager"] == "CUSTOMER" and efs_key["multi_region"] is True
    assert systems[ids["untagged"]["aws_sqs_queue"]]["keys"] == []
