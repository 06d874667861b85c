"""What the AWS collector lists, as data: one `Listing` per data-store type (the botocore
operation that lists a region's stores and where its answer names each one's ARN, name, tags
and key), and `ARN_TYPES`, which matches any ARN (the tagging API's included) to the
Terraform type whose `policies/catalogue/aws.yaml` entry says whether it is a data store.

One mechanism (`AwsCollector`'s `_scan_listing`) runs every listing, so an untagged store of
any listed type is in the inventory (RES-I001), and a new type ships as a line here. Types the
collector reads in depth (S3, RDS/Aurora/DocumentDB/Neptune through the RDS API, DynamoDB,
Secrets Manager, Amazon Connect) have their own readers in `aws.py`.
Field names are the services' API references (botocore's service models).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Listing:
    """One paged List/Describe call per account and region naming every store of `tf`."""

    tf: str  # the catalogue entry (Terraform type) its stores are
    service: str  # botocore service name
    operation: str  # snake-case operation (paginated when botocore can)
    items: str  # the answer's list of stores
    arn: str | None = None  # the item's ARN field; else `arn_template`
    arn_template: str | None = None  # {partition} {region} {account} {name}
    name: str | None = None  # the item's name field (None: the item is the name or URL)
    tags: str | None = None  # inline tags ([{Key, Value}] or {k: v}); None: tagging API's
    key: str | None = None  # catalogue-style path of the KMS key the item names
    skip_if: str | None = None  # an item carrying this field is part of another store
    params: tuple[tuple[str, object], ...] = field(default=())

    @property
    def label(self) -> str:
        return f"{self.service} {self.items}"


LISTINGS: tuple[Listing, ...] = (
    Listing("aws_efs_file_system", "efs", "describe_file_systems", "FileSystems",
            arn="FileSystemArn", name="FileSystemId", tags="Tags", key="KmsKeyId"),
    Listing("aws_elasticache_replication_group", "elasticache", "describe_replication_groups",
            "ReplicationGroups", arn="ARN", name="ReplicationGroupId", key="KmsKeyId"),
    # the nodes of a replication group are listed there; memcached clusters stand alone
    Listing("aws_elasticache_cluster", "elasticache", "describe_cache_clusters",
            "CacheClusters", arn="ARN", name="CacheClusterId", skip_if="ReplicationGroupId"),
    Listing("aws_memorydb_cluster", "memorydb", "describe_clusters", "Clusters", arn="ARN",
            name="Name", key="KmsKeyId"),
    Listing("aws_ecr_repository", "ecr", "describe_repositories", "repositories",
            arn="repositoryArn", name="repositoryName", key="encryptionConfiguration.kmsKey"),
    Listing("aws_backup_vault", "backup", "list_backup_vaults", "BackupVaultList",
            arn="BackupVaultArn", name="BackupVaultName", key="EncryptionKeyArn"),
    Listing("aws_glacier_vault", "glacier", "list_vaults", "VaultList", arn="VaultARN",
            name="VaultName"),
    # the `es` API lists OpenSearch and Elasticsearch domains alike (EngineType)
    Listing("aws_opensearch_domain", "es", "list_domain_names", "DomainNames",
            arn_template="arn:{partition}:es:{region}:{account}:domain/{name}",
            name="DomainName"),
    Listing("aws_redshift_cluster", "redshift", "describe_clusters", "Clusters",
            arn_template="arn:{partition}:redshift:{region}:{account}:cluster:{name}",
            name="ClusterIdentifier", tags="Tags", key="KmsKeyId"),
    Listing("aws_dax_cluster", "dax", "describe_clusters", "Clusters", arn="ClusterArn",
            name="ClusterName"),
    Listing("aws_fsx_lustre_file_system", "fsx", "describe_file_systems", "FileSystems",
            arn="ResourceARN", name="FileSystemId", tags="Tags", key="KmsKeyId"),
    Listing("aws_kinesis_stream", "kinesis", "list_streams", "StreamSummaries",
            arn="StreamARN", name="StreamName"),
    Listing("aws_kinesis_firehose_delivery_stream", "firehose", "list_delivery_streams",
            "DeliveryStreamNames",
            arn_template="arn:{partition}:firehose:{region}:{account}:deliverystream/{name}"),
    Listing("aws_msk_cluster", "kafka", "list_clusters_v2", "ClusterInfoList",
            arn="ClusterArn", name="ClusterName", tags="Tags"),
    Listing("aws_mq_broker", "mq", "list_brokers", "BrokerSummaries", arn="BrokerArn",
            name="BrokerName"),
    # ListQueues answers queue URLs: https://sqs.{region}.amazonaws.com/{account}/{name}
    Listing("aws_sqs_queue", "sqs", "list_queues", "QueueUrls",
            arn_template="arn:{partition}:sqs:{region}:{account}:{name}"),
    Listing("aws_sns_topic", "sns", "list_topics", "Topics", arn="TopicArn"),
    Listing("aws_cloudwatch_log_group", "logs", "describe_log_groups", "logGroups",
            arn_template="arn:{partition}:logs:{region}:{account}:log-group:{name}",
            name="logGroupName", key="kmsKeyId"),
)

#: (ARN service, resource type) → Terraform type, for ARNs any answer names (the tagging
#: API lists every tagged resource, stores or not). The resource type is the resource
#: part up to its first `/` or `:` ("" for S3, SQS and SNS, whose ARNs have none).
ARN_TYPES: dict[tuple[str, str], str] = {
    ("s3", ""): "aws_s3_bucket",
    ("rds", "db"): "aws_db_instance",
    ("rds", "cluster"): "aws_rds_cluster",
    ("rds", "global-cluster"): "aws_rds_global_cluster",
    ("rds", "snapshot"): "aws_db_snapshot",
    ("rds", "subgrp"): "aws_db_subnet_group",
    ("rds", "pg"): "aws_db_parameter_group",
    ("rds", "og"): "aws_db_option_group",
    ("dynamodb", "table"): "aws_dynamodb_table",
    ("secretsmanager", "secret"): "aws_secretsmanager_secret",
    ("connect", "instance"): "aws_connect_instance",
    ("elasticfilesystem", "file-system"): "aws_efs_file_system",
    ("elasticache", "replicationgroup"): "aws_elasticache_replication_group",
    ("elasticache", "cluster"): "aws_elasticache_cluster",
    ("elasticache", "subnetgroup"): "aws_elasticache_subnet_group",
    ("elasticache", "parametergroup"): "aws_elasticache_parameter_group",
    ("memorydb", "cluster"): "aws_memorydb_cluster",
    ("ecr", "repository"): "aws_ecr_repository",
    ("backup", "backup-vault"): "aws_backup_vault",
    ("backup", "backup-plan"): "aws_backup_plan",
    ("glacier", "vaults"): "aws_glacier_vault",
    ("es", "domain"): "aws_opensearch_domain",
    ("aoss", "collection"): "aws_opensearchserverless_collection",
    ("redshift", "cluster"): "aws_redshift_cluster",
    ("redshift-serverless", "namespace"): "aws_redshiftserverless_namespace",
    ("dax", "cache"): "aws_dax_cluster",
    ("fsx", "file-system"): "aws_fsx_lustre_file_system",
    ("kinesis", "stream"): "aws_kinesis_stream",
    ("kinesisvideo", "stream"): "aws_kinesis_video_stream",
    ("firehose", "deliverystream"): "aws_kinesis_firehose_delivery_stream",
    ("kafka", "cluster"): "aws_msk_cluster",
    ("kafka", "serverless-cluster"): "aws_msk_serverless_cluster",
    ("mq", "broker"): "aws_mq_broker",
    ("sqs", ""): "aws_sqs_queue",
    ("sns", ""): "aws_sns_topic",
    ("logs", "log-group"): "aws_cloudwatch_log_group",
    ("kms", "key"): "aws_kms_key",
    ("kms", "alias"): "aws_kms_alias",
    ("lambda", "function"): "aws_lambda_function",
    ("iam", "role"): "aws_iam_role",
    ("iam", "user"): "aws_iam_user",
    ("iam", "policy"): "aws_iam_policy",
    ("ec2", "instance"): "aws_instance",
    ("ec2", "volume"): "aws_ebs_volume",
    ("ec2", "snapshot"): "aws_ebs_snapshot",
    ("ec2", "vpc"): "aws_vpc",
    ("ec2", "subnet"): "aws_subnet",
    ("ec2", "security-group"): "aws_security_group",
    ("ec2", "internet-gateway"): "aws_internet_gateway",
    ("ec2", "natgateway"): "aws_nat_gateway",
    ("ec2", "route-table"): "aws_route_table",
    ("ec2", "network-interface"): "aws_network_interface",
    ("ec2", "elastic-ip"): "aws_eip",
    ("ec2", "key-pair"): "aws_key_pair",
    ("ec2", "launch-template"): "aws_launch_template",
    ("elasticloadbalancing", "loadbalancer"): "aws_lb",
    ("acm", "certificate"): "aws_acm_certificate",
    ("cloudtrail", "trail"): "aws_cloudtrail",
    ("ssm", "parameter"): "aws_ssm_parameter",
}


def arn_type(arn: str) -> str | None:
    """The Terraform type of the resource an ARN names, if `ARN_TYPES` knows it."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return None
    rest = parts[5]
    cut = min((i for i in (rest.find("/"), rest.find(":")) if i >= 0), default=-1)
    return ARN_TYPES.get((parts[2], rest[:cut] if cut >= 0 else ""))


__all__ = ["ARN_TYPES", "LISTINGS", "Listing", "arn_type"]
