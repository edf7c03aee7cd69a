"""A bucket that receives S3 server access logs (used by the data lake and by the pipeline's artifacts)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from shared.nag import REGULATORY, acknowledge, acknowledge_rule, in_packs

INCOMPLETE_UPLOAD_DAYS = 7


class AccessLogBucket(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, bucket_name: str | None, expiration_days: int) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            # S3 server access log delivery cannot write to SSE-KMS buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(expiration_days),
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(INCOMPLETE_UPLOAD_DAYS),
                )
            ],
            # Audit evidence outlives the stack; the lifecycle rule bounds its cost.
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "This bucket is itself the server-access-log destination; logging it into itself would recurse "
            "and logging it elsewhere only moves the problem. It is TLS-only, blocks public access, is "
            "versioned, and only the S3 logging service writes to it.",
        )
        acknowledge_rule(
            self.bucket,
            "This bucket receives S3 server access logs, and the S3 User Guide ('Enabling Amazon S3 server access "
            "logging') supports default encryption of a log destination bucket only with SSE-S3: 'SSE-KMS is not "
            "supported'. The logs are encrypted at rest with SSE-S3 (AES-256); the bucket is TLS-only, blocks public "
            "access, and its bucket policy admits only the S3 logging service.",
            *in_packs("S3DefaultEncryptionKMS", *REGULATORY),
        )
        acknowledge_rule(
            self.bucket,
            "Access logs are audit records about another bucket, not data: losing them loses nothing of the lake "
            "or the pipeline. They are kept in a versioned bucket (an overwrite or delete leaves the prior "
            "version), retained on stack deletion, whose bucket policy admits only the S3 logging service, for the "
            "configured expiration.",
            *in_packs("S3BucketReplicationEnabled", *REGULATORY),
        )
