"""The data-lake customer-managed key and who may use it."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from shared import naming
from shared.config import AppConfig
from shared.permissions import DELIVERY_KEY_ACTIONS


class DataLakeKey(Construct):
    """KMS key of account B; the producer may use it only as its delivery role, only via S3, only for
    the data-lake bucket."""

    def __init__(self, scope: Construct, construct_id: str, *, cfg: AppConfig) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description=f"Encrypts the {cfg.prefix} data lake (objects written by the producer's Firehose)",
            enable_key_rotation=True,
            alias=naming.data_lake_key_alias(cfg),
            # Losing the key loses every object in the lake.
            removal_policy=RemovalPolicy.RETAIN,
        )
        # Account root + aws:PrincipalArn rather than the role ARN as principal: B deploys first, and KMS
        # rejects a policy naming a role that does not exist yet.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowProducerDeliveryRoleViaS3ForDataLakeBucket",
                principals=[iam.AccountPrincipal(cfg.producer.account)],
                actions=list(DELIVERY_KEY_ACTIONS),
                resources=["*"],
                conditions={
                    "ArnEquals": {"aws:PrincipalArn": naming.delivery_role_arn(cfg)},
                    "StringEquals": {
                        "kms:ViaService": f"s3.{cfg.consumer.region}.amazonaws.com",
                        # With S3 Bucket Keys the encryption context is the bucket ARN, not the object ARN.
                        "kms:EncryptionContext:aws:s3:arn": naming.data_lake_bucket_arn(cfg),
                    },
                },
            )
        )
