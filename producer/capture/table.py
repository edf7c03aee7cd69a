"""The captured DynamoDB table: created here, or an existing one (owned elsewhere) whose Kinesis streaming
destination this stack turns on.

Kinesis Data Streams for DynamoDB sends every item change to this project's stream with microsecond
``ApproximateCreationDateTime`` precision, so changes to one item within a millisecond still order in the lake.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from shared.config import TableSpec
from shared.nag import (
    HIPAA,
    NIST,
    REGULATORY,
    SERVERLESS,
    acknowledge,
    acknowledge_rule,
    in_packs,
    inline_policy_reason,
)

_KEY_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}
PRECISION = "MICROSECOND"
# DynamoDB writes the change records to Kinesis as this service-linked role.
SERVICE_LINKED_ROLE_SERVICE = "kinesisreplication.dynamodb.amazonaws.com"
SERVICE_LINKED_ROLE = "AWSServiceRoleForDynamoDBKinesisDataStreamsReplication"
# The AwsCustomResource provider runs only when CloudFormation creates or deletes the streaming destination.
PROVIDER_MEMORY_MB = 256
PROVIDER_LOG_RETENTION = logs.RetentionDays.ONE_YEAR
PROVIDER_LOGS_ID = "ExistingTableStreamingLogs"


class ChangeTable(Construct):
    """A table this stack creates and owns."""

    def __init__(
        self, scope: Construct, construct_id: str, *, spec: TableSpec, name: str, key: kms.IKey, stream: kinesis.IStream
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=name,
            partition_key=dynamodb.Attribute(name=spec.partition_key, type=_KEY_TYPES[spec.partition_key_type]),
            sort_key=(
                dynamodb.Attribute(name=spec.sort_key, type=_KEY_TYPES[spec.sort_key_type]) if spec.sort_key else None
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            # The source of truth survives a stack deletion; a failed first create still cleans up.
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
            kinesis_stream=stream,
            kinesis_precision_timestamp=dynamodb.ApproximateCreationDateTimePrecision.MICROSECOND,
        )


class ExistingTableStreaming(Construct):
    """Turns on the Kinesis streaming destination of a table this stack does not own, and off on delete.

    DynamoDB API: EnableKinesisStreamingDestination / DisableKinesisStreamingDestination
    (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_EnableKinesisStreamingDestination.html).
    A table streams to one Kinesis stream only, in its own account and region
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/kds.html), so the table must not already
    stream elsewhere. DynamoDB's service-linked role writes the records; the producer key's default policy lets
    this account's IAM policies (the role's managed policy: kms:GenerateDataKey via Kinesis) use it.

    Its backups belong to its owner too: ``producer/backup.py`` puts only the tables this stack creates in its
    AWS Backup plan, never an existing one.
    """

    def __init__(self, scope: Construct, construct_id: str, *, table_name: str, stream: kinesis.IStream) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # One provider function serves every existing table of the stack (a singleton), so its log group is
        # one per stack too, encrypted with the stream's (the producer's) key.
        log_group = stack.node.try_find_child(PROVIDER_LOGS_ID) or logs.LogGroup(
            stack,
            PROVIDER_LOGS_ID,
            encryption_key=stream.encryption_key,
            retention=PROVIDER_LOG_RETENTION,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        table_arn = stack.format_arn(service="dynamodb", resource="table", resource_name=table_name)
        self.table = dynamodb.Table.from_table_attributes(self, "Table", table_arn=table_arn)
        parameters = {"TableName": table_name, "StreamArn": stream.stream_arn}
        enable = cr.AwsSdkCall(
            service="DynamoDB",
            action="enableKinesisStreamingDestination",
            parameters={
                **parameters,
                "EnableKinesisStreamingConfiguration": {"ApproximateCreationDateTimePrecision": PRECISION},
            },
            # The pair is the identity: a new table or stream name is a new physical resource, so CloudFormation
            # then deletes the old one, which turns streaming off for the old pair.
            physical_resource_id=cr.PhysicalResourceId.of(f"{table_name}->{stream.stream_name}"),
        )
        self.resource = cr.AwsCustomResource(
            self,
            "EnableStreaming",
            resource_type="Custom::KinesisStreamingDestination",
            install_latest_aws_sdk=False,
            memory_size=PROVIDER_MEMORY_MB,
            log_group=log_group,
            on_create=enable,
            # Same call on update: a new pair has a new physical ID (enable it; CloudFormation then deletes the old
            # resource, which disables the old pair). Errors are not ignored: an update that keeps the pair (only a
            # changed CDK serialization can cause one) fails loudly rather than risk a new pair silently not
            # streaming. Enabling is asynchronous: `ddb-lake smoke` (string partition keys) or DynamoDB's
            # DescribeKinesisStreamingDestination shows it took effect.
            on_update=enable,
            on_delete=cr.AwsSdkCall(
                service="DynamoDB",
                action="disableKinesisStreamingDestination",
                parameters=parameters,
                # Deleting the stack after someone else already turned it off must not fail the deletion.
                ignore_error_codes_matching="ResourceNotFoundException|ValidationException",
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [
                    iam.PolicyStatement(
                        actions=[
                            "dynamodb:EnableKinesisStreamingDestination",
                            "dynamodb:DisableKinesisStreamingDestination",
                            "dynamodb:DescribeKinesisStreamingDestination",
                        ],
                        resources=[table_arn],
                    ),
                    # What the DynamoDB developer guide lists for enabling a streaming destination
                    # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/kds_iam.html); the writes
                    # themselves are made by DynamoDB's service-linked role, which may be created on first use.
                    iam.PolicyStatement(
                        actions=["kinesis:DescribeStream", "kinesis:PutRecords"], resources=[stream.stream_arn]
                    ),
                    # Listed too; Kinesis offers no resource-level scoping for ListStreams.
                    iam.PolicyStatement(actions=["kinesis:ListStreams"], resources=["*"]),
                    iam.PolicyStatement(
                        actions=["iam:CreateServiceLinkedRole"],
                        resources=[
                            stack.format_arn(
                                service="iam",
                                region="",
                                resource="role",
                                resource_name=f"aws-service-role/{SERVICE_LINKED_ROLE_SERVICE}/{SERVICE_LINKED_ROLE}",
                            )
                        ],
                        conditions={"StringEquals": {"iam:AWSServiceName": SERVICE_LINKED_ROLE_SERVICE}},
                    ),
                ]
            ),
        )
        acknowledge(
            self.resource,
            "AwsSolutions-IAM5[Resource::*]",
            "kinesis:ListStreams, which the DynamoDB developer guide lists for enabling a Kinesis streaming "
            "destination, supports no resource-level permissions; it only lists stream names. Every other grant of "
            "this policy names this table or this stream.",
        )
        # The provider function is a singleton of the stack, shared by every existing table's custom resource.
        assert isinstance(self.resource.grant_principal, iam.Role)
        acknowledge(
            self.resource.grant_principal,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK's AwsCustomResource provider function uses the AWS managed basic execution policy to write its "
            "own CloudWatch logs; it holds no data and its only other grants are on this table and stream.",
        )
        acknowledge_rule(
            self.resource,
            inline_policy_reason(
                "The policy CDK's AwsCustomResource attaches to its provider role for this table (turn its "
                "streaming destination on and off)"
            ),
            *in_packs("IAMNoInlinePolicy", *REGULATORY),
        )
        provider = self.resource.grant_principal.node.scope
        assert provider is not None
        acknowledge_rule(
            provider,
            "CDK's AwsCustomResource provider calls the public DynamoDB API when CloudFormation creates or deletes "
            "the streaming destination. The producer VPC is isolated on purpose (no NAT, no internet gateway, no "
            "endpoints), so inside it the call could not leave; the function holds no data, and its role may only "
            "turn this stack's tables' streaming destinations on or off.",
            *in_packs("LambdaInsideVPC", *REGULATORY),
        )
        acknowledge_rule(
            provider,
            "CloudFormation invokes the AwsCustomResource provider only to create or delete a streaming "
            "destination, and waits for its response on a presigned URL: a failed call fails the stack operation "
            "visibly (and rolls it back), and an event parked in a dead-letter queue could not be replayed once "
            "that operation is over. One call per stack operation needs no reserved concurrency; each call is in "
            "the stack events and the provider's encrypted log group.",
            *in_packs("LambdaDLQ", HIPAA, NIST, SERVERLESS),
            *in_packs("LambdaConcurrency", HIPAA, NIST),
        )
        acknowledge_rule(
            provider,
            "CDK's AwsCustomResource provider makes one DynamoDB API call per stack operation; there is no "
            "request path across services to trace. Each call, its parameters and its answer are logged to the "
            "provider's KMS-encrypted log group and show in the CloudFormation stack events.",
            "Serverless-LambdaTracing",
        )
