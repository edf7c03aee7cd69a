"""The data-lake customer-managed key and who may use it."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from shared.naming import LakeNames
from shared.permissions import DELIVERY_KEY_ACTIONS


class DataLakeKey(Construct):
    """KMS key of account B; the producer account may use it only as one of its tables' delivery roles, only via
    S3, only for the data-lake bucket."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        lake: LakeNames,
        description: str,
        producer_account: str,
        delivery_role_arns: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description=description,
            enable_key_rotation=True,
            alias=lake.key_alias,
            # Losing the key loses every object in the lake; a failed first create still cleans up.
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        # Account root + aws:PrincipalArn rather than the role ARN as principal: B deploys first, and KMS
        # rejects a policy naming a role that does not exist yet.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowProducerDeliveryRoleViaS3ForDataLakeBucket",
                principals=[iam.AccountPrincipal(producer_account)],
                actions=list(DELIVERY_KEY_ACTIONS),
                resources=["*"],
                conditions={
                    "ArnEquals": {"aws:PrincipalArn": list(delivery_role_arns)},
                    "StringEquals": {
                        "kms:ViaService": f"s3.{lake.region}.amazonaws.com",
                        # With S3 Bucket Keys the encryption context is the bucket ARN, not the object ARN.
                        "kms:EncryptionContext:aws:s3:arn": lake.bucket_arn,
                    },
                },
            )
        )
