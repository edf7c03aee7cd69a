"""The DynamoDB table whose every item change is streamed, and the Kinesis stream that carries it."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from constructs import Construct

from shared import naming
from shared.config import AppConfig
from shared.nag import acknowledge

_KEY_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}


class ChangeStream(Construct):
    """Kinesis stream fed by Kinesis Data Streams for DynamoDB. Its retention is how long a broken delivery
    can last before changes are lost; the iterator-age alarm fires long before."""

    def __init__(self, scope: Construct, construct_id: str, *, cfg: AppConfig, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        provisioned = cfg.stream.mode == "PROVISIONED"
        self.stream = kinesis.Stream(
            self,
            "Stream",
            stream_name=naming.stream_name(cfg),
            stream_mode=kinesis.StreamMode.PROVISIONED if provisioned else kinesis.StreamMode.ON_DEMAND,
            shard_count=cfg.stream.shard_count if provisioned else None,
            retention_period=Duration.hours(cfg.stream.retention_hours),
            encryption=kinesis.StreamEncryption.KMS,
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.stream,
            "AwsSolutions-KDS3",
            "The change stream is encrypted with the producer's customer-managed key instead of the AWS "
            "managed aws/kinesis key: rotation, key policy and CloudTrail usage are under the account's "
            "control, which is stronger than what the rule asks for.",
        )


class ChangeTable(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, cfg: AppConfig, key: kms.IKey, stream: kinesis.IStream
    ) -> None:
        super().__init__(scope, construct_id)
        t = cfg.table
        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=naming.table_name(cfg),
            partition_key=dynamodb.Attribute(name=t.partition_key, type=_KEY_TYPES[t.partition_key_type]),
            sort_key=(dynamodb.Attribute(name=t.sort_key, type=_KEY_TYPES[t.sort_key_type]) if t.sort_key else None),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
            kinesis_stream=stream,
            # Microseconds so changes to one item within the same millisecond still order in the lake.
            kinesis_precision_timestamp=dynamodb.ApproximateCreationDateTimePrecision.MICROSECOND,
        )
