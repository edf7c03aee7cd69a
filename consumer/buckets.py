"""The data-lake bucket and the bucket that receives its server access logs."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from shared import naming
from shared.access_logs import INCOMPLETE_UPLOAD_DAYS
from shared.config import AppConfig
from shared.permissions import DELIVERY_BUCKET_ACTIONS, DELIVERY_OBJECT_ACTIONS


class DataLakeBucket(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cfg: AppConfig,
        key: kms.IKey,
        access_logs: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        name = naming.data_lake_bucket_name(cfg)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=name,
            versioned=True,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            # One data key per bucket instead of one KMS call per object: cheaper, and it makes the bucket
            # ARN the encryption context the key policy pins.
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=f"{name}/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-noncurrent-and-abort-uploads",
                    noncurrent_version_expiration=Duration.days(cfg.data_lake.noncurrent_version_expiration_days),
                    abort_incomplete_multipart_upload_after=Duration.days(INCOMPLETE_UPLOAD_DAYS),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        # Account root + aws:PrincipalArn: the role lives in account A and may not exist yet when B deploys.
        # Objects only under the producer table's prefixes: even a widened role in A cannot read the rest.
        producer = [iam.AccountPrincipal(cfg.producer.account)]
        only_the_delivery_role = {"ArnEquals": {"aws:PrincipalArn": naming.delivery_role_arn(cfg)}}
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowProducerFirehoseBucketAccess",
                principals=producer,
                actions=list(DELIVERY_BUCKET_ACTIONS),
                resources=[self.bucket.bucket_arn],
                conditions=only_the_delivery_role,
            )
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowProducerFirehoseObjectWrites",
                principals=producer,
                actions=list(DELIVERY_OBJECT_ACTIONS),
                resources=[self.bucket.arn_for_objects(f"{prefix}*") for prefix in naming.delivery_prefixes(cfg)],
                conditions=only_the_delivery_role,
            )
        )
