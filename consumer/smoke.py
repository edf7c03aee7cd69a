"""The smoke test's reader role in account B (``ddb-lake smoke`` in the pipeline assumes it).

It may list and read only the smoke-tested tables' ``data/<table>/`` objects and decrypt them through S3 with
the lake key. Whom it trusts is decided by ``pipeline/smoke.py`` (the pipeline's smoke step only).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from shared import naming
from shared.nag import acknowledge
from shared.naming import LakeNames, TableNames


class SmokeReaderRole(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        lake: LakeNames,
        tables: Sequence[TableNames],
        key: kms.IKey,
        trusted: iam.IPrincipal,
    ) -> None:
        super().__init__(scope, construct_id)
        roots = [names.root(naming.DATA) for names in tables]
        objects = [f"{lake.bucket_arn}/{root}*" for root in roots]
        policy = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    sid="ListSmokeTablesDataOnly",
                    actions=["s3:ListBucket"],
                    resources=[lake.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [root + "*" for root in roots]}},
                ),
                iam.PolicyStatement(sid="ReadSmokeTablesData", actions=["s3:GetObject"], resources=objects),
                iam.PolicyStatement(
                    sid="LakeKeyViaS3ForTheBucket",
                    actions=["kms:Decrypt"],
                    resources=[key.key_arn],
                    conditions={
                        "StringEquals": {
                            "kms:ViaService": f"s3.{lake.region}.amazonaws.com",
                            # With S3 Bucket Keys the encryption context is the bucket ARN.
                            "kms:EncryptionContext:aws:s3:arn": lake.bucket_arn,
                        }
                    },
                ),
            ]
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=lake.smoke_reader_role,
            description="ddb-lake smoke: reads the smoke-tested tables' data/ objects; assumed by the pipeline step",
            assumed_by=trusted,
            max_session_duration=Duration.hours(1),
        )
        # A customer-managed policy, not an inline one: the regulatory packs refuse inline policies.
        iam.ManagedPolicy(self, "Policy", document=policy, roles=[self.role])
        for resource in objects:
            acknowledge(
                self,
                f"AwsSolutions-IAM5[Resource::{resource}]",
                "Firehose names each data object at delivery time, so the smoke test can only read them by prefix: "
                "the wildcard is the object keys under one table's data/ folder (GetObject only, no other prefix).",
            )
