"""The data-lake bucket and who may write where in it."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from shared.access_logs import INCOMPLETE_UPLOAD_DAYS
from shared.naming import LakeNames, TableNames
from shared.permissions import DELIVERY_BUCKET_ACTIONS, DELIVERY_OBJECT_ACTIONS


def private_kms_bucket(
    scope: Construct,
    construct_id: str,
    *,
    name: str,
    key: kms.IKey,
    access_logs: s3.IBucket,
    lifecycle_rule: s3.LifecycleRule,
    versioned: bool,
) -> s3.Bucket:
    """What every bucket of account B that holds lake data shares: default SSE-KMS with the lake key and Bucket
    Keys, private, TLS 1.2+ only, ACLs off, server access logs, and retained except on a failed first create (so a
    retry does not fail with "already exists")."""
    return s3.Bucket(
        scope,
        construct_id,
        bucket_name=name,
        versioned=versioned,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        # One data key per bucket instead of one KMS call per object: cheaper, and it makes the bucket ARN the
        # encryption context the key policy pins.
        bucket_key_enabled=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=f"{name}/",
        lifecycle_rules=[lifecycle_rule],
        removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    )


class DataLakeBucket(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        lake: LakeNames,
        producer_account: str,
        tables: Sequence[TableNames],
        key: kms.IKey,
        access_logs: s3.IBucket,
        noncurrent_version_expiration_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        # The default encryption every write gets: the producer's Firehose sends no SSE headers, so its objects are
        # encrypted with this key, named by its ARN (no alias resolution across accounts).
        self.bucket = private_kms_bucket(
            self,
            "Bucket",
            name=lake.bucket,
            key=key,
            access_logs=access_logs,
            lifecycle_rule=s3.LifecycleRule(
                id="expire-noncurrent-and-abort-uploads",
                noncurrent_version_expiration=Duration.days(noncurrent_version_expiration_days),
                abort_incomplete_multipart_upload_after=Duration.days(INCOMPLETE_UPLOAD_DAYS),
            ),
            versioned=True,
        )
        # Account root + aws:PrincipalArn: the roles live in account A and may not exist yet when B deploys.
        producer = [iam.AccountPrincipal(producer_account)]
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowProducerDeliveryRolesBucketAccess",
                principals=producer,
                actions=list(DELIVERY_BUCKET_ACTIONS),
                resources=[self.bucket.bucket_arn],
                conditions={"ArnEquals": {"aws:PrincipalArn": [t.delivery_role_arn for t in tables]}},
            )
        )
        # One statement per table: its delivery role writes its own table's prefixes and nothing else.
        for names in tables:
            self.bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"AllowDeliveryOf{names.token}",
                    principals=producer,
                    actions=list(DELIVERY_OBJECT_ACTIONS),
                    resources=[self.bucket.arn_for_objects(f"{prefix}*") for prefix in names.roots],
                    conditions={"ArnEquals": {"aws:PrincipalArn": names.delivery_role_arn}},
                )
            )
        # Every object is encrypted with the lake's key: a write that asks for SSE-S3, for another KMS key, or for
        # SSE-KMS without naming a key (S3 would then use the AWS managed aws/s3 key) is refused. A write without
        # SSE headers (Firehose's, replay's) gets the default above. Each deny tests that its header is present
        # ("Null": "false"): a negated operator, with or without ...IfExists, is true for an absent key, and a Deny
        # would then refuse every header-less write
        # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
        objects = self.bucket.arn_for_objects("*")
        sse, key_id = "s3:x-amz-server-side-encryption", "s3:x-amz-server-side-encryption-aws-kms-key-id"
        denies = {
            "DenyWritesAskingForAnotherEncryption": {"Null": {sse: "false"}, "StringNotEquals": {sse: "aws:kms"}},
            "DenyWritesNamingAnotherKey": {"Null": {key_id: "false"}, "StringNotEquals": {key_id: key.key_arn}},
            "DenyKmsWritesNamingNoKey": {"StringEquals": {sse: "aws:kms"}, "Null": {key_id: "true"}},
        }
        for sid, conditions in denies.items():
            self.bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=sid,
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["s3:PutObject"],
                    resources=[objects],
                    conditions=conditions,
                )
            )
