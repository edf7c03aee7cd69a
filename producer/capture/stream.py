"""The table's Kinesis stream, fed by Kinesis Data Streams for DynamoDB. Its retention is how long a broken
delivery can last before changes are lost; the iterator-age alarm fires long before."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from constructs import Construct

from shared.config import StreamSettings
from shared.nag import acknowledge


class ChangeStream(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, name: str, settings: StreamSettings, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        provisioned = settings.mode == "PROVISIONED"
        self.stream = kinesis.Stream(
            self,
            "Stream",
            stream_name=name,
            stream_mode=kinesis.StreamMode.PROVISIONED if provisioned else kinesis.StreamMode.ON_DEMAND,
            shard_count=settings.shard_count if provisioned else None,
            retention_period=Duration.hours(settings.retention_hours),
            encryption=kinesis.StreamEncryption.KMS,
            encryption_key=key,
            # Changes in flight outlive a stack deletion; a failed first create still cleans up (no "already
            # exists" on the retry).
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        acknowledge(
            self.stream,
            "AwsSolutions-KDS3",
            "The change stream is encrypted with the producer's customer-managed key instead of the AWS "
            "managed aws/kinesis key: rotation, key policy and CloudTrail usage are under the account's "
            "control, which is stronger than what the rule asks for.",
        )
