"""AWS collector, the copies services make and where a contact centre keeps its data (issue
14): Secrets Manager replicas, AWS Backup copy rules, EFS, ECR and ElastiCache global
datastore replication, Amazon Connect storage configs, and the KMS keys of classified stores.

moto in server mode, over HTTP. What moto 5.2.5 lacks is answered at the protocol boundary
by `MotoServiceGaps` (conftest.py), as the real services document: EFS
DescribeReplicationConfigurations and ElastiCache DescribeGlobalReplicationGroups (moto: HTTP
500), Connect ListInstanceStorageConfigs (moto: 404), the ReplicaKeys of a multi-Region KMS
key (moto's ReplicateKey fails) and ECR repositories in the tagging API.
"""

from __future__ import annotations

from typing import Any

import pytest

from residency.collectors.aws import AwsCollector, KeyFacts
from residency.model import Classification, ClassificationValue, Inventory, System

boto3 = pytest.importorskip("boto3")

CLASS_TAG = "data-classification"
SD = [{"Key": CLASS_TAG, "Value": "servicedesk"}]
MGMT = "123456789012"  # moto's default caller account
CATS = frozenset({"contact_details", "ticket_content"})
CLASSIFICATION = Classification(CLASS_TAG, (("servicedesk", ClassificationValue(CATS)),))
REGIONS = ("eu-central-1", "eu-west-1", "us-east-1")  # Connect is offered in two of them
FRA = "eu-central-1"
OTHER = "999999999999"  # an account outside the scan
NEW_ACTIONS = {
    "backup:GetBackupPlan", "backup:ListBackupPlans", "connect:ListInstanceStorageConfigs",
    "connect:ListInstances", "ecr:DescribeRegistry", "ecr:DescribeRepositories",
    "elasticache:DescribeGlobalReplicationGroups",
    "elasticfilesystem:DescribeReplicationConfigurations", "kms:DescribeKey",
    "s3:GetEncryptionConfiguration", "secretsmanager:DescribeSecret",
    "secretsmanager:ListSecrets",
}


def ctx(**kw: Any) -> Any:
    from residency.collectors.interface import CollectContext

    return CollectContext(CLASSIFICATION, **{"workers": 8, **kw})


def client(url: str, service: str, region: str = FRA) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=url)


def arn(service: str, region: str, rest: str, account: str = MGMT) -> str:
    return f"arn:aws:{service}:{region}:{account}:{rest}"


def scan(session: Any, url: str, **kw: Any) -> tuple[Inventory, AwsCollector]:
    collector = AwsCollector(session, endpoint_url=url, max_attempts=1, organization=False,
                             regions=REGIONS)
    return collector.collect(ctx(**kw)), collector


def by_id(inv: Inventory) -> dict[str, System]:
    return {s.id: s for s in inv.systems}


def flows(inv: Inventory) -> dict[tuple[str, str], Any]:
    return {(f.source, f.target): f for f in inv.flows}


# --------------------------------------------------------------------------- the estate
def seed(url: str, fills: Any) -> dict[str, str]:
    """One account's service desk in Frankfurt; what each service copies where (`fills`:
    conftest's `MotoServiceGaps`, told what the services moto lacks hold)."""
    ids: dict[str, str] = {}
    # a multi-Region customer key (replica in N. Virginia) and a key held outside AWS
    kms = client(url, "kms")
    ids["mrk"] = kms.create_key(MultiRegion=True, Description="sd")["KeyMetadata"]["Arn"]
    fills.kms_replicas[ids["mrk"]] = ["us-east-1"]
    ids["xks"] = kms.create_key(Origin="EXTERNAL", Description="sd-byok")["KeyMetadata"]["Arn"]

    # Secrets Manager: replicated to N. Virginia (scanned) and Sydney (not scanned)
    sm = client(url, "secretsmanager")
    ids["secret"] = sm.create_secret(
        Name="sd-agent-db", SecretString="not-a-secret", KmsKeyId=ids["mrk"], Tags=SD,
        AddReplicaRegions=[{"Region": "us-east-1"}, {"Region": "ap-southeast-2"}])["ARN"]

    # AWS Backup: the rule's vault copies to a DR vault in N. Virginia and to another account
    backup = client(url, "backup")
    backup.create_backup_vault(BackupVaultName="sd-vault",
                               BackupVaultTags={CLASS_TAG: "servicedesk"})
    ids["vault"] = arn("backup", FRA, "backup-vault:sd-vault")
    ids["vault_dr"] = arn("backup", "us-east-1", "backup-vault:sd-dr")
    ids["vault_other"] = arn("backup", "ap-southeast-2", "backup-vault:central", OTHER)
    backup.create_backup_plan(BackupPlan={"BackupPlanName": "sd-nightly", "Rules": [
        {"RuleName": "nightly", "TargetBackupVaultName": "sd-vault", "CopyActions": [
            {"DestinationBackupVaultArn": ids["vault_dr"]},
            {"DestinationBackupVaultArn": ids["vault_other"]}]}]})

    # EFS: the attachments file system replicates to N. Virginia
    fs = client(url, "efs").create_file_system(CreationToken="sd-files", Tags=SD)
    ids["efs"] = str(fs["FileSystemArn"])
    ids["efs_dr"] = arn("elasticfilesystem", "us-east-1", "file-system/fs-0dr")
    fills.efs_replications[FRA] = [{
        "SourceFileSystemId": fs["FileSystemId"], "SourceFileSystemRegion": FRA,
        "SourceFileSystemArn": ids["efs"], "OriginalSourceFileSystemArn": ids["efs"],
        "CreationTime": 1_700_000_000, "SourceFileSystemOwnerId": MGMT,
        "Destinations": [{"Status": "ENABLED", "FileSystemId": "fs-0dr",
                          "Region": "us-east-1"}]}]

    # ECR: registry replication of `sd/` repositories to Oregon; `tools/` stays
    ecr = client(url, "ecr")
    repo = ecr.create_repository(repositoryName="sd/widget", encryptionConfiguration={
        "encryptionType": "KMS", "kmsKey": ids["mrk"]})["repository"]
    ids["repo"] = str(repo["repositoryArn"])
    ids["repo_tools"] = str(ecr.create_repository(repositoryName="tools/ci")["repository"][
        "repositoryArn"])
    fills.tagged[ids["repo"]] = {CLASS_TAG: "servicedesk"}
    ecr.put_replication_configuration(replicationConfiguration={"rules": [{
        "destinations": [{"region": "us-west-2", "registryId": MGMT}],
        "repositoryFilters": [{"filter": "sd/", "filterType": "PREFIX_MATCH"}]}]})

    # ElastiCache: the session cache is the primary of a global datastore with a US member
    client(url, "elasticache").create_replication_group(
        ReplicationGroupId="sd-cache", ReplicationGroupDescription="agent sessions",
        Engine="redis", CacheNodeType="cache.t3.micro", Tags=SD)
    ids["cache"] = arn("elasticache", FRA, "replicationgroup:sd-cache")
    ids["cache_us"] = arn("elasticache", "us-east-1", "replicationgroup:sd-cache-us")
    fills.cache_globals[FRA] = [{"id": "ldgnf-sd-cache", "members": [
        {"ReplicationGroupId": "sd-cache", "ReplicationGroupRegion": FRA, "Role": "PRIMARY"},
        {"ReplicationGroupId": "sd-cache-us", "ReplicationGroupRegion": "us-east-1",
         "Role": "SECONDARY"}]}]

    # buckets: recordings in Frankfurt (the multi-Region key), transcripts in N. Virginia
    # (S3-managed keys), both unclassified themselves
    s3 = client(url, "s3")
    s3.create_bucket(Bucket="sd-recordings-fra",
                     CreateBucketConfiguration={"LocationConstraint": FRA})
    s3.put_bucket_tagging(Bucket="sd-recordings-fra", Tagging={"TagSet": SD})
    s3.put_bucket_encryption(Bucket="sd-recordings-fra", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": ids["mrk"]}}]})
    client(url, "s3", "us-east-1").create_bucket(Bucket="sd-transcripts-us")

    # Amazon Connect: the contact centre and where each kind of contact data goes
    connect = client(url, "connect")
    inst = connect.create_instance(IdentityManagementType="CONNECT_MANAGED",
                                   InstanceAlias="sd-contact", InboundCallsEnabled=True,
                                   OutboundCallsEnabled=True)
    ids["connect"], inst_id = str(inst["Arn"]), str(inst["Id"])
    connect.tag_resource(resourceArn=ids["connect"], tags={CLASS_TAG: "servicedesk"})
    ids["stream"] = arn("kinesis", FRA, "stream/sd-ctr")
    ids["video"] = arn("kinesisvideo", FRA, "stream/sd-live-connect-sd-contact-contact-*")
    kms_fra = {"EncryptionType": "KMS", "KeyId": ids["xks"]}
    fills.connect_storage.update({
        (inst_id, "CALL_RECORDINGS"): [{"AssociationId": "a1", "StorageType": "S3",
            "S3Config": {"BucketName": "sd-recordings-fra", "BucketPrefix": "calls",
                         "EncryptionConfig": {"EncryptionType": "KMS", "KeyId": ids["mrk"]}}}],
        (inst_id, "CHAT_TRANSCRIPTS"): [{"AssociationId": "a2", "StorageType": "S3",
            "S3Config": {"BucketName": "sd-transcripts-us", "BucketPrefix": "chats"}}],
        (inst_id, "MEDIA_STREAMS"): [{"AssociationId": "a3", "StorageType":
            "KINESIS_VIDEO_STREAM", "KinesisVideoStreamConfig": {
                "Prefix": "sd-live", "RetentionPeriodHours": 24, "EncryptionConfig": kms_fra}}],
        (inst_id, "CONTACT_TRACE_RECORDS"): [{"AssociationId": "a4", "StorageType":
            "KINESIS_STREAM", "KinesisStreamConfig": {"StreamArn": ids["stream"]}}],
    })
    ids["connect_id"] = inst_id
    return ids


@pytest.fixture(scope="module")
def services(aws_bare_module: Any) -> Any:
    """The estate seeded and scanned once: (ids, hooks, inventory, keys)."""
    url, hooks, fills = aws_bare_module
    session = hooks.install(boto3.Session(region_name="us-east-1"))
    ids = seed(url, fills)
    inv, collector = scan(session, url)
    return ids, hooks, inv, collector.last_keys


# --------------------------------------------------------------------------- copies
def test_secret_replicas_are_flows_to_their_regions(services: Any) -> None:
    ids, _, inv, _ = services
    systems, found = by_id(inv), flows(inv)
    us = ids["secret"].replace(f":{FRA}:", ":us-east-1:")
    au = ids["secret"].replace(f":{FRA}:", ":ap-southeast-2:")
    for target, region in ((us, "us-east-1"), (au, "ap-southeast-2")):
        flow = found[(ids["secret"], target)]
        assert flow.kind == "replication" and flow.data_categories == CATS
        assert systems[target].location.regions == (region,)
    assert systems[us].account == MGMT and systems[us].classified  # read in its own region
    assert systems[au].data_categories == CATS  # a placeholder holds what its source holds


def test_backup_copy_rules_are_flows_between_vaults(services: Any) -> None:
    ids, _, inv, _ = services
    systems, found = by_id(inv), flows(inv)
    vault = systems[ids["vault"]]
    assert vault.classified and vault.data_categories == CATS  # tags from the tagging API
    assert vault.location.regions == (FRA,)
    for target, region, account in ((ids["vault_dr"], "us-east-1", MGMT),
                                    (ids["vault_other"], "ap-southeast-2", OTHER)):
        flow = found[(ids["vault"], target)]
        assert flow.kind == "backup-copy" and flow.data_categories == CATS
        assert systems[target].location.regions == (region,)
        assert systems[target].account == account
    # the quiet plan of conftest's estate is not seeded here: no other backup flow
    assert not [f for f in inv.flows if f.kind == "backup-copy" and f.source != ids["vault"]]


def test_efs_ecr_and_elasticache_replication(services: Any) -> None:
    ids, _, inv, _ = services
    systems, found = by_id(inv), flows(inv)
    repo_us = ids["repo"].replace(f":{FRA}:", ":us-west-2:")
    for source, target, region in ((ids["efs"], ids["efs_dr"], "us-east-1"),
                                   (ids["repo"], repo_us, "us-west-2"),
                                   (ids["cache"], ids["cache_us"], "us-east-1")):
        flow = found[(source, target)]
        assert flow.kind == "replication" and flow.data_categories == CATS, source
        assert systems[source].location.regions == (FRA,) and systems[source].classified
        assert systems[target].location.regions == (region,), target
    # the ECR rule's filter does not match tools/ci: it is not copied
    assert not [f for f in inv.flows if f.source == ids["repo_tools"]]


def test_connect_storage_configs_are_flows_to_their_stores(services: Any) -> None:
    ids, _, inv, _ = services
    systems, found = by_id(inv), flows(inv)
    centre = systems[ids["connect"]]
    assert centre.classified and centre.location.regions == (FRA,)
    expect = {
        "arn:aws:s3:::sd-recordings-fra": FRA,
        "arn:aws:s3:::sd-transcripts-us": "us-east-1",  # from GetBucketLocation
        ids["video"]: FRA,  # Connect's per-contact streams, in the instance's region
        ids["stream"]: FRA,
    }
    for target, region in expect.items():
        flow = found[(ids["connect"], target)]
        assert flow.kind == "storage" and flow.data_categories == CATS, target
        assert systems[target].location.regions == (region,), target
    # the unclassified transcripts bucket is still a system of its own; the flow carries
    # the contact centre's categories into it
    assert not systems["arn:aws:s3:::sd-transcripts-us"].classified
    assert inv.gaps == ()


# --------------------------------------------------------------------------- keys
def test_a_keys_region_and_multi_region_replicas_are_found(services: Any) -> None:
    ids, _, _, keys = services
    # the bucket's default encryption and Connect's recordings config name the same key
    bucket_key, connect_key = keys["arn:aws:s3:::sd-recordings-fra"]
    assert connect_key == KeyFacts(
        key=ids["mrk"], algorithm="aws:kms", arn=ids["mrk"], region=FRA, account=MGMT,
        multi_region=True, primary_region=FRA, replica_regions=("us-east-1",),
        origin="AWS_KMS", key_manager="CUSTOMER")
    assert bucket_key.algorithm == "KMS" and bucket_key.replica_regions == ("us-east-1",)
    [secret_key] = keys[ids["secret"]]
    assert secret_key.replica_regions == ("us-east-1",) and secret_key.region == FRA
    # the replicas name no key of their own: Secrets Manager's AWS managed key there
    au = keys[ids["secret"].replace(f":{FRA}:", ":ap-southeast-2:")]
    assert [(k.key, k.region, k.key_manager) for k in au] == [
        ("alias/aws/secretsmanager", "ap-southeast-2", "AWS")]
    [repo_key] = keys[ids["repo"]]
    assert repo_key.algorithm == "KMS" and repo_key.multi_region
    # Connect's media streams: a key whose material was imported (origin EXTERNAL)
    [video_key] = keys[ids["video"]]
    assert video_key.origin == "EXTERNAL" and not video_key.multi_region
    # a key named by two stores is described once
    _, hooks, _, _ = services
    assert hooks.calls.count(("kms", "DescribeKey")) == 2


def test_every_new_call_is_in_the_policy_and_read_only(services: Any) -> None:
    _, hooks, _, _ = services
    made = hooks.iam_actions()
    assert made <= hooks.policy_actions(), made - hooks.policy_actions()
    assert made >= NEW_ACTIONS, NEW_ACTIONS - made
    for action in made:
        assert action.split(":")[1].startswith(("List", "Describe", "Get")), action


def test_connect_is_called_only_where_it_is_offered(services: Any) -> None:
    """Connect has no Ireland endpoint (botocore's endpoint data): not called there."""
    _, hooks, inv, _ = services
    assert ("connect", "ListInstances") in hooks.calls
    assert not [g for g in inv.gaps if "eu-west-1 connect" in g.scope]


# --------------------------------------------------------------------------- fail closed
@pytest.fixture
def seeded(aws_url: str, aws_services: Any, aws_session: Any) -> dict[str, str]:
    return seed(aws_url, aws_services)


def test_a_denied_call_is_a_gap_and_the_rest_is_kept(
    seeded: dict[str, str], aws_url: str, aws_hooks: Any, aws_session: Any
) -> None:
    def deny(**_: Any) -> Any:
        return aws_hooks.error_response(
            400, "AccessDeniedException", "User is not authorized to perform: "
            "secretsmanager:DescribeSecret")

    aws_session.events.register("before-call.secrets-manager.DescribeSecret", deny)
    inv, _ = scan(aws_session, aws_url)
    [gap] = inv.gaps
    assert gap.scope == f"account {MGMT}/{FRA} secretsmanager secret sd-agent-db"
    assert gap.reason.startswith("AccessDeniedException:")
    systems, found = by_id(inv), flows(inv)
    assert seeded["secret"] in systems  # listed, its copies unknown (and said so)
    assert not [f for f in inv.flows if f.source == seeded["secret"]]
    assert (seeded["vault"], seeded["vault_dr"]) in found
    assert (seeded["efs"], seeded["efs_dr"]) in found


def test_a_service_moto_lacks_is_a_gap_not_an_empty_list(
    seeded: dict[str, str], aws_url: str, aws_services: Any, aws_session: Any
) -> None:
    """Without the filler, moto answers EFS's call with HTTP 500: the region's EFS is a gap
    (fail closed), never "no replication"; every other service is still read."""
    aws_session.events.unregister("before-send.efs.DescribeReplicationConfigurations",
                                  aws_services._efs)
    inv, _ = scan(aws_session, aws_url)
    efs = [g for g in inv.gaps if g.scope.endswith(" efs")]
    assert {g.scope for g in efs} == {f"account {MGMT}/{r} efs" for r in REGIONS}
    assert all(g.reason.startswith("500") for g in efs), efs  # the status, no error code
    assert len(inv.gaps) == len(efs)
    assert not [f for f in inv.flows if f.source == seeded["efs"]]
    assert (seeded["cache"], seeded["cache_us"]) in flows(inv)


def test_a_failed_storage_config_call_is_a_gap_for_that_type(
    seeded: dict[str, str], aws_url: str, aws_hooks: Any, aws_session: Any
) -> None:
    def throttle(params: dict[str, Any], **_: Any) -> Any:
        if "CHAT_TRANSCRIPTS" in str(params.get("query_string")):
            return aws_hooks.error_response(429, "ThrottlingException", "Rate exceeded")
        return None

    aws_session.events.register("before-call.connect.ListInstanceStorageConfigs", throttle)
    inv, _ = scan(aws_session, aws_url)
    [gap] = inv.gaps
    assert gap.scope == f"account {MGMT}/{FRA} connect instance sd-contact CHAT_TRANSCRIPTS"
    found = flows(inv)
    assert (seeded["connect"], "arn:aws:s3:::sd-recordings-fra") in found
    assert (seeded["connect"], "arn:aws:s3:::sd-transcripts-us") not in found


def test_an_undescribable_key_is_kept_with_its_reason(
    seeded: dict[str, str], aws_url: str, aws_hooks: Any, aws_session: Any
) -> None:
    def deny(params: dict[str, Any], **_: Any) -> Any:
        if seeded["xks"] in str(params.get("body")):
            return aws_hooks.error_response(400, "AccessDeniedException",
                                            "not authorized to perform: kms:DescribeKey")
        return None

    aws_session.events.register("before-call.kms.DescribeKey", deny)
    inv, collector = scan(aws_session, aws_url)
    [gap] = inv.gaps
    assert gap.scope == f"account {MGMT}/{FRA} kms key {seeded['xks']}"
    [video_key] = collector.last_keys[seeded["video"]]
    assert video_key.unknown_reason and video_key.unknown_reason.startswith("AccessDenied")
    assert video_key.origin is None
    assert collector.last_keys["arn:aws:s3:::sd-recordings-fra"][0].multi_region
    assert (seeded["connect"], seeded["video"]) in flows(inv)


def test_classified_only_keeps_the_copies_of_classified_stores(
    seeded: dict[str, str], aws_url: str, aws_session: Any
) -> None:
    inv, collector = scan(aws_session, aws_url)
    full = {f.id for f in inv.flows}
    inv, collector = scan(aws_session, aws_url, classified_only=True)
    assert {f.id for f in inv.flows} == full  # every source here is classified
    assert "arn:aws:s3:::sd-transcripts-us" in by_id(inv)  # a target, as a placeholder
    assert set(collector.last_keys) <= set(by_id(inv))
