"""Optional replication of the data-lake bucket into a replica bucket (``data_lake.replica``), possibly in
another account and region.

Replication of SSE-KMS objects is opt-in and needs the replica's key by ARN, in the replica's region
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-config-for-kms-objects.html: "By default,
Amazon S3 doesn't replicate objects that are stored at rest using server-side encryption with customer managed
keys stored in AWS KMS", "The KMS key must have been created in the same AWS Region as the destination
buckets"; an alias would be resolved in the requester's account,
https://docs.aws.amazon.com/AmazonS3/latest/API/API_EncryptionConfiguration.html). S3 does not check the key
when the configuration is written ("If you use an invalid KMS key, you will receive the 200 OK status code in
response, but replication fails"), so the region is checked here.

The replication role reads the source (``s3:GetReplicationConfiguration``, ``s3:ListBucket``,
``s3:GetObjectVersionForReplication``, ``s3:GetObjectVersionAcl``, ``s3:GetObjectVersionTagging``), writes
the replica (``s3:ReplicateObject``, ``s3:ReplicateDelete``, ``s3:ReplicateTags``), decrypts with the lake key
and encrypts with the replica key, each only via S3. With Bucket Keys on, S3 uses the bucket ARN as the
encryption context, otherwise the object ARN, so both are allowed.

In another account the replicas are made the replica owner's
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-change-owner.html): the rule sets
``AccessControlTranslation`` (owner: Destination) and the role holds ``s3:ObjectOwnerOverrideToBucketOwner``.
The replica account must, outside this stack: version its bucket; allow this role (its name is fixed, see
``role_name``) ``s3:ReplicateObject``, ``s3:ReplicateDelete``, ``s3:ReplicateTags`` and
``s3:ObjectOwnerOverrideToBucketOwner`` on the bucket's objects in the bucket policy (unless its Object Ownership
is "bucket owner enforced", which makes the override unnecessary); and allow this account ``kms:Encrypt`` and
``kms:GenerateDataKey`` on the replica key in the key policy ("If the KMS keys are owned by another AWS
account, the KMS key owner must grant these permissions to the AWS account that owns the IAM role").

Delete markers are not replicated: deleting an object in the lake leaves the replica's copy.

With Object Lock on the lake (``data_lake.object_lock_retention_days``), the replica bucket must have Object Lock
enabled as well; the role then also reads each version's retention and legal hold (``OBJECT_LOCK_SOURCE_ACTIONS``).
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from shared import naming
from shared.config import AppConfig, ConfigError, ReplicaConfig
from shared.nag import REGULATORY, acknowledge, acknowledge_rule, in_packs

RULE_ID = "replicate-everything"
SOURCE_BUCKET_ACTIONS = ("s3:GetReplicationConfiguration", "s3:ListBucket")
SOURCE_OBJECT_ACTIONS = (
    "s3:GetObjectVersionForReplication",
    "s3:GetObjectVersionAcl",
    "s3:GetObjectVersionTagging",
)
REPLICA_OBJECT_ACTIONS = ("s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags")
# With Object Lock on the lake (data_lake.object_lock_retention_days), S3 replicates each version's retention and
# legal hold, which the role must read; the replica bucket must have Object Lock too, or replication fails with
# DstBucketObjectLockConfigMissing (https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-failure-codes.html,
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html#object-lock-managing-replication).
OBJECT_LOCK_SOURCE_ACTIONS = ("s3:GetObjectRetention", "s3:GetObjectLegalHold")
OWNER_OVERRIDE = "s3:ObjectOwnerOverrideToBucketOwner"


QUERY_RESULTS = (
    "The Athena workgroup's query-results bucket: every object is the output of one query, written once under a "
    "key of its own (the query id) and expiring after athena.results_expiration_days; the query can be run again "
    "over the lake, which is versioned and optionally replicated. A second copy or prior versions would only keep "
    "copies of lake data outside the lake for longer. It is encrypted with the lake key, TLS-only, private and "
    "access-logged."
)


def derived_bucket(bucket: s3.IBucket, reason: str) -> None:
    """A bucket of data derived from the lake, re-creatable from it: no replica, and no versions when
    unversioned. Called by the stack after the bucket's construct is complete, so it acknowledges versioning
    only while the bucket really has none."""
    ids = list(in_packs("S3BucketReplicationEnabled", *REGULATORY))
    cfn = bucket.node.default_child
    assert isinstance(cfn, s3.CfnBucket), bucket.node.path
    versioning = Stack.of(bucket).resolve(cfn.versioning_configuration) or {}
    if versioning.get("status") != "Enabled":
        ids += in_packs("S3BucketVersioningEnabled", *REGULATORY)
    acknowledge_rule(bucket, reason, *ids)


def role_name(cfg: AppConfig) -> str:
    """Fixed, so the replica account can name the role in its bucket and key policies before it exists."""
    return f"{cfg.prefix}-datalake-replication-{cfg.consumer.region}"


def replica_problems(cfg: AppConfig) -> list[str]:
    replica = cfg.data_lake.replica
    if replica is None:
        return []
    key_region = replica.key_arn.split(":")[3]
    if key_region != replica.region:
        return [
            f"datalake.data_lake.replica.key_arn = {replica.key_arn!r}: must be a key in the replica bucket's region "
            f"({replica.region!r}, datalake.data_lake.replica.region); S3 accepts another region's key and then "
            "fails every replication"
        ]
    return []


class DataLakeReplication(Construct):
    """Replicates the whole bucket when ``data_lake.replica`` is set; otherwise says why the bucket has none."""

    def __init__(
        self, scope: Construct, construct_id: str, *, cfg: AppConfig, bucket: s3.Bucket, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        replica = cfg.data_lake.replica
        self.role: iam.Role | None = None
        if replica is None:
            acknowledge_rule(
                bucket,
                "Replication is off because data_lake.replica is null in this configuration. The bucket is "
                "versioned (an overwrite or delete keeps the prior version for the configured noncurrent-version "
                "days) and retained on stack deletion, and so is its key; the current state of every item can be "
                "backfilled from the source tables, which keep point-in-time recovery and an AWS Backup plan. The "
                "change history exists only in the lake: set data_lake.replica to replicate it into a bucket of "
                "another account or region.",
                *in_packs("S3BucketReplicationEnabled", *REGULATORY),
            )
            return
        problems = replica_problems(cfg)
        if problems:
            raise ConfigError(problems)
        self._replicate(cfg, replica, bucket, key)

    def _replicate(self, cfg: AppConfig, replica: ReplicaConfig, bucket: s3.Bucket, key: kms.IKey) -> None:
        partition = cfg.consumer.partition
        other_account = replica.account != cfg.consumer.account
        source_arn = naming.lake(cfg).bucket_arn
        locked = cfg.data_lake.object_lock_retention_days is not None
        replica_arn = f"arn:{partition}:s3:::{replica.bucket_name}"
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name(cfg),
            # Confused deputy: S3 may assume the role only to replicate this account's lake bucket
            # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/setting-repl-config-perm-overview.html: the
            # trust policy's "aws:SourceAccount" and "aws:SourceArn" conditions).
            assumed_by=iam.ServicePrincipal(
                "s3.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": cfg.consumer.account},
                    "ArnLike": {"aws:SourceArn": source_arn},
                },
            ),
            description=f"S3 replication of the data lake into {replica.bucket_name} ({replica.account})",
        )
        statements = [
            iam.PolicyStatement(sid="ReadSourceBucket", actions=list(SOURCE_BUCKET_ACTIONS), resources=[source_arn]),
            iam.PolicyStatement(
                sid="ReadSourceObjectVersions",
                actions=[*SOURCE_OBJECT_ACTIONS, *(OBJECT_LOCK_SOURCE_ACTIONS if locked else ())],
                resources=[f"{source_arn}/*"],
            ),
            iam.PolicyStatement(
                sid="WriteReplicas",
                actions=[*REPLICA_OBJECT_ACTIONS, *([OWNER_OVERRIDE] if other_account else [])],
                resources=[f"{replica_arn}/*"],
            ),
            iam.PolicyStatement(
                sid="DecryptSourceViaS3",
                actions=["kms:Decrypt"],
                resources=[key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{cfg.consumer.region}.amazonaws.com"},
                    "StringLike": {"kms:EncryptionContext:aws:s3:arn": [source_arn, f"{source_arn}/*"]},
                },
            ),
            iam.PolicyStatement(
                sid="EncryptReplicasViaS3",
                actions=["kms:Encrypt", "kms:GenerateDataKey"],
                resources=[replica.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{replica.region}.amazonaws.com"},
                    "StringLike": {"kms:EncryptionContext:aws:s3:arn": [replica_arn, f"{replica_arn}/*"]},
                },
            ),
        ]
        # A customer managed policy, not inline: the same fix the compliance packs ask of every new role.
        policy = iam.ManagedPolicy(
            self, "Policy", description="S3 replication of the data lake", roles=[self.role], statements=statements
        )
        destination = s3.CfnBucket.ReplicationDestinationProperty(
            bucket=replica_arn,
            account=replica.account if other_account else None,
            access_control_translation=(
                s3.CfnBucket.AccessControlTranslationProperty(owner="Destination") if other_account else None
            ),
            encryption_configuration=s3.CfnBucket.EncryptionConfigurationProperty(replica_kms_key_id=replica.key_arn),
        )
        cfn_bucket = bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.replication_configuration = s3.CfnBucket.ReplicationConfigurationProperty(
            role=self.role.role_arn,
            rules=[
                s3.CfnBucket.ReplicationRuleProperty(
                    id=RULE_ID,
                    status="Enabled",
                    priority=1,
                    filter=s3.CfnBucket.ReplicationRuleFilterProperty(prefix=""),
                    delete_marker_replication=s3.CfnBucket.DeleteMarkerReplicationProperty(status="Disabled"),
                    source_selection_criteria=s3.CfnBucket.SourceSelectionCriteriaProperty(
                        sse_kms_encrypted_objects=s3.CfnBucket.SseKmsEncryptedObjectsProperty(status="Enabled")
                    ),
                    destination=destination,
                )
            ],
        )
        # The role must hold its permissions before S3 first uses it.
        cfn_bucket.add_resource_dependency(policy.node.default_child)
        for resource in (f"{source_arn}/*", f"{replica_arn}/*"):
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::{resource}]",
                "S3 replication copies every object version of the data-lake bucket, whose keys Firehose "
                "generates, so the role reads all object versions of the lake and writes all replicas of the one "
                "replica bucket; it may not touch any other bucket and only S3 can assume it.",
            )
