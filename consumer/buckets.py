"""The data-lake bucket and who may write where in it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aws_cdk import DefaultStackSynthesizer, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from shared.access_logs import INCOMPLETE_UPLOAD_DAYS
from shared.config import CONTEXT_KEY, ConfigError
from shared.naming import DATA, ERRORS, RAW, LakeNames, TableNames
from shared.permissions import DELIVERY_BUCKET_ACTIONS, DELIVERY_OBJECT_ACTIONS

# What erases or shortens the change history, or the controls that keep it: only the deploying CloudFormation role
# and the break-glass role may do these. DeleteBucketLifecycle is authorized as s3:PutLifecycleConfiguration and
# DeleteBucketReplication as s3:PutReplicationConfiguration
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html). S3 itself names
# s3:PutLifecycleConfiguration, with s3:DeleteObject and s3:DeleteObjectVersion, as what to deny "to prevent users or
# accounts from removing or deleting objects" (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketLifecycleConfiguration.html):
# lifecycle expirations are S3's own work, not requests of a principal, so the lifecycle rule already deployed keeps
# running (noncurrent versions expire after data_lake.noncurrent_version_expiration_days); changing it is denied.
PROTECTED_BUCKET_ACTIONS = (
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketVersioning",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutReplicationConfiguration",
    # The other settings the template holds: default encryption (header-less writes would change key), access
    # logging (the record of every request), ACLs and public access.
    "s3:PutEncryptionConfiguration",
    "s3:PutBucketLogging",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketPublicAccessBlock",
)
# Object versions are the history itself: deleting one (or a delete marker) and lifting or shortening an Object Lock
# retention. Deleting a current object (s3:DeleteObject) only adds a delete marker and stays allowed outside the
# change log, so the lakehouse's Iceberg commits, compaction and orphan-file removal keep working under lakehouse/.
PROTECTED_OBJECT_ACTIONS = ("s3:DeleteObjectVersion", "s3:BypassGovernanceRetention", "s3:PutObjectRetention")
# Writing and deleting under the change log's prefixes (data/, errors/, raw/): S3 replication into this bucket
# writes and deletes too, with its own actions.
CHANGE_LOG_WRITE_ACTIONS = ("s3:PutObject", "s3:ReplicateObject")
CHANGE_LOG_DELETE_ACTIONS = ("s3:DeleteObject", "s3:ReplicateDelete")
CHANGE_LOG_KINDS = (DATA, ERRORS, RAW)
OBJECT_LOCK_MODE = "GOVERNANCE"
# "Bucket policies are limited to 20 KB in size" (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-policies.html).
BUCKET_POLICY_LIMIT = 20 * 1024


def role_arn(lake: LakeNames, name: str) -> str:
    return f"arn:{lake.partition}:iam::{lake.account}:role/{name}"


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
        deployment_role_arn: str,
        break_glass_role_arn: str | None,
        replay_role_arn: str | None,
        object_lock_retention_days: int | None,
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
        self._object_lock(object_lock_retention_days)
        # The controls outlive the stack, like the bucket and its key: deleting the stack leaves the policy in place.
        assert self.bucket.policy is not None
        self.bucket.policy.apply_removal_policy(RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE)
        self._protect_history(
            tables=tables,
            deployment_role_arn=deployment_role_arn,
            break_glass_role_arn=break_glass_role_arn,
            replay_role_arn=replay_role_arn,
            same_account=producer_account == lake.account,
        )
        size = policy_bytes(self.bucket, lake.bucket_arn)
        if size > BUCKET_POLICY_LIMIT:
            raise ConfigError(
                [
                    f"{CONTEXT_KEY}.tables = {len(tables)} tables: the data-lake bucket policy would be {size} bytes, "
                    f"over S3's limit of {BUCKET_POLICY_LIMIT} (each table adds about 0.8 KB, 1.3 KB when producer and "
                    f"consumer share an account); split the tables over deployments with different "
                    f"{CONTEXT_KEY}.prefix values"
                ]
            )

    def _object_lock(self, retention_days: int | None) -> None:
        """Object Lock on the versioned bucket; S3 allows turning it on for an existing bucket and never off again
        (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-configure.html). A default retention
        applies to every new object version of the bucket (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html):
        in governance mode, only a principal allowed s3:BypassGovernanceRetention (here: the break-glass role) can
        delete a version or shorten its retention before it ends. CloudFormation updates both properties in place
        (the AWS::S3::Bucket registry schema lists only the bucket's name properties as create-only; a test reads it),
        so turning it on for a deployed lake does not replace the bucket."""
        if retention_days is None:
            return
        cfn = self.bucket.node.default_child
        assert isinstance(cfn, s3.CfnBucket)
        cfn.object_lock_enabled = True
        cfn.object_lock_configuration = s3.CfnBucket.ObjectLockConfigurationProperty(
            object_lock_enabled="Enabled",
            rule=(
                s3.CfnBucket.ObjectLockRuleProperty(
                    default_retention=s3.CfnBucket.DefaultRetentionProperty(mode=OBJECT_LOCK_MODE, days=retention_days)
                )
                if retention_days > 0
                else None
            ),
        )

    def _protect_history(
        self,
        *,
        tables: Sequence[TableNames],
        deployment_role_arn: str,
        break_glass_role_arn: str | None,
        replay_role_arn: str | None,
        same_account: bool,
    ) -> None:
        """Explicit denies that no identity policy of account B can override
        (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html). Exceptions are
        matched on aws:PrincipalArn, which for a role session is the role's ARN, so every session of an excepted role
        matches and nothing else does; an anonymous request has no aws:PrincipalArn and a negated operator is true for
        an absent key, so it is denied too
        (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn).
        The deploying CloudFormation role stays excepted from the bucket-level denies, so the next deployment can still
        write the policy, lifecycle, versioning, Object Lock and replication settings. The root user of account B can
        always rewrite the bucket policy
        (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucketPolicy.html): docs/security.md."""
        bucket, objects = self.bucket.bucket_arn, self.bucket.arn_for_objects("*")
        break_glass = [break_glass_role_arn] if break_glass_role_arn else []
        replay = [replay_role_arn] if replay_role_arn else []
        delivery = [names.delivery_role_arn for names in tables]

        def deny(sid: str, actions: Sequence[str], resources: Sequence[str], condition: dict[str, Any]) -> None:
            self.bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=sid,
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=list(actions),
                    resources=list(resources),
                    conditions=condition,
                )
            )

        def unless(*arns: str) -> dict[str, Any]:
            # No exception at all (no break-glass role configured): the deny has no condition.
            return {"ArnNotLike": {"aws:PrincipalArn": list(dict.fromkeys(arns))}} if arns else {}

        deny(
            "DenyControlChangesExceptDeploymentAndBreakGlass",
            PROTECTED_BUCKET_ACTIONS,
            [bucket],
            unless(deployment_role_arn, *break_glass),
        )
        # CloudFormation never needs to delete a version or lift a retention: only the break-glass role may.
        deny("DenyVersionDeletesExceptBreakGlass", PROTECTED_OBJECT_ACTIONS, [objects], unless(*break_glass))
        # Firehose only writes: its roles never delete anything, anywhere in the bucket.
        deny(
            "DenyDeliveryRolesAnyDelete",
            [*CHANGE_LOG_DELETE_ACTIONS, "s3:DeleteObjectVersion"],
            [objects],
            {"ArnLike": {"aws:PrincipalArn": delivery}},
        )
        change_log = [self.bucket.arn_for_objects(f"{kind}/*") for kind in CHANGE_LOG_KINDS]
        # The change log is append-only for everyone: delivery roles included (they never needed a delete), replays
        # included (they overwrite their own replay-<digest>.gz keys and delete nothing).
        deny("DenyChangeLogDeletesExceptBreakGlass", CHANGE_LOG_DELETE_ACTIONS, change_log, unless(*break_glass))
        # Prefixes of tables no longer (or not yet) configured are written by nobody but the break-glass role.
        deny(
            "DenyChangeLogWritesExceptDeliveryReplayAndBreakGlass",
            CHANGE_LOG_WRITE_ACTIONS,
            change_log,
            unless(*delivery, *replay, *break_glass),
        )
        # A replay writes lines under data/ only, never the source records it reads.
        if replay:
            deny(
                "DenyReplayWritesOutsideData",
                CHANGE_LOG_WRITE_ACTIONS,
                [self.bucket.arn_for_objects(f"{kind}/*") for kind in (ERRORS, RAW)],
                {"ArnLike": {"aws:PrincipalArn": replay}},
            )
        # A delivery role of another account reaches only the prefixes the bucket policy allows it (one Allow per
        # table above): a cross-account request needs the bucket's Allow as well as its own policy's
        # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html).
        # In one account its own policy would suffice, so there each table's prefixes also deny every other
        # table's role (a statement per table, kept out of the cross-account policy to leave room under S3's size
        # limit for more tables).
        if same_account:
            for names in tables:
                deny(
                    f"DenyWritesOf{names.token}ExceptItsDelivery",
                    CHANGE_LOG_WRITE_ACTIONS,
                    [self.bucket.arn_for_objects(f"{prefix}*") for prefix in names.roots],
                    unless(names.delivery_role_arn, *replay, *break_glass),
                )


def deployment_role_arn(stack: Stack, partition: str) -> str:
    """The role CloudFormation deploys this stack with: the CDK bootstrap's execution role, named by the stack's
    synthesizer from its qualifier (``@aws-cdk/core:bootstrapQualifier`` in cdk.json's context, default
    'hnb659fds'; https://docs.aws.amazon.com/cdk/v2/guide/bootstrapping-customizing.html), the same ARN the cloud
    assembly hands to CloudFormation (and CDK Pipelines' deploy actions), so no lookup is needed. A user who
    bootstrapped with a custom qualifier must set that context key anyway, or the deployment would not find its
    roles and assets."""
    synthesizer = stack.synthesizer
    if not isinstance(synthesizer, DefaultStackSynthesizer):
        raise TypeError(f"{stack.node.path}: the integrity denies need the DefaultStackSynthesizer's execution role")
    arn = synthesizer.cloud_formation_execution_role_arn.replace("${AWS::Partition}", partition)
    if Token.is_unresolved(arn) or "${" in arn:
        raise ValueError(f"{stack.node.path}: the CloudFormation execution role ARN is not concrete: {arn}")
    return arn


def policy_bytes(bucket: s3.Bucket, bucket_arn: str) -> int:
    """The size of the bucket's policy as S3 will store it: the bucket's own ARN in place of its tokens, without
    whitespace."""
    assert bucket.policy is not None
    stack = Stack.of(bucket)
    document = stack.resolve(bucket.policy.document)
    bucket_id = stack.resolve(bucket.bucket_arn)

    def plain(value: Any) -> Any:
        if value == bucket_id:
            return bucket_arn
        if isinstance(value, dict) and set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return separator.join(str(plain(p)) for p in parts)
        if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
            # Another resource's ARN (the lake key's): as long as a KMS key ARN.
            return "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/" + "0" * 36
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return len(json.dumps(plain(document), separators=(",", ":")))
