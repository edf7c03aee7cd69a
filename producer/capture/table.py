"""The captured DynamoDB table: created here, or an existing one (owned elsewhere) whose Kinesis streaming
destination this stack turns on.

Kinesis Data Streams for DynamoDB sends every item change to this project's stream with microsecond
``ApproximateCreationDateTime`` precision, so changes to one item within a millisecond still order in the lake.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
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
# The switch runs only when CloudFormation creates, updates or deletes a streaming destination.
PROVIDER_MEMORY_MB = 256
PROVIDER_LOG_RETENTION = logs.RetentionDays.ONE_YEAR
PROVIDER_ID = "StreamingSwitch"
RESOURCE_TYPE = "Custom::KinesisStreamingDestination"
SWITCH_DIR = Path(__file__).resolve().parents[2] / "lambdas" / "streaming_switch"
# is_complete every 15 s for up to 50 min: CloudFormation waits 1 h for a custom resource by default.
QUERY_INTERVAL_SECONDS = 15
TOTAL_TIMEOUT_MINUTES = 50
ON_EVENT_TIMEOUT_MINUTES = 10


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
    """Turns on the Kinesis streaming destination of a table this stack does not own, waits until it is ACTIVE, and
    turns it off on delete (``lambdas/streaming_switch/handler.py`` says how each CloudFormation request is handled).

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
        assert stream.encryption_key is not None
        provider = StreamingSwitchProvider.of(stack, key=stream.encryption_key)
        table_arn = stack.format_arn(service="dynamodb", resource="table", resource_name=table_name)
        self.table = dynamodb.Table.from_table_attributes(self, "Table", table_arn=table_arn)
        provider.allow(table_arn=table_arn, stream_arn=stream.stream_arn)
        # A new logical ID for the Provider-backed resource: CloudFormation refuses to change a custom resource's
        # ServiceToken in place (the AwsCustomResource this replaces had another one).
        self.resource = CustomResource(
            self,
            "Streaming",
            service_token=provider.service_token,
            resource_type=RESOURCE_TYPE,
            properties={"TableName": table_name, "StreamArn": stream.stream_arn},
        )
        # The switch may run only once its role may touch this table (the grant above lands in the role's policy).
        self.resource.node.add_dependency(provider.role)
        self.legacy = keep_legacy_resource(self, table_name=table_name, table_arn=table_arn, stream=stream)


# The construct ID, log group and physical ID the previous version's AwsCustomResource had (logical ID
# <table>ExistingTableEnableStreaming<hash>; a test pins it).
LEGACY_ID = "EnableStreaming"
LEGACY_LOGS_ID = "ExistingTableStreamingLogs"


def keep_legacy_resource(
    scope: ExistingTableStreaming, *, table_name: str, table_arn: str, stream: kinesis.IStream
) -> cr.AwsCustomResource:
    """The previous version's streaming resource, kept so that upgrading never turns streaming off.

    Earlier versions switched an existing table's destination with an AwsCustomResource whose Delete call disabled
    it. CloudFormation refuses to change a custom resource's ServiceToken, so the Provider-backed resource above has
    a new logical ID; without this the old resource would leave the template, and CloudFormation deletes a
    removed resource after the update (cleanup), running its Delete call: the pair the new resource has just found
    ACTIVE would be disabled, and changes lost until someone noticed. Kept at the same construct path (same logical
    ID, same ServiceToken, same physical ID), the old resource is updated instead: its calls become the read-only
    DescribeKinesisStreamingDestination and it has no Delete call, and RETAIN means a later removal calls nothing
    either. On a new deployment it makes one describe call.
    """
    stack = Stack.of(scope)
    log_group = stack.node.try_find_child(LEGACY_LOGS_ID) or logs.LogGroup(
        stack,
        LEGACY_LOGS_ID,
        encryption_key=stream.encryption_key,
        retention=PROVIDER_LOG_RETENTION,
        removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    )
    describe = cr.AwsSdkCall(
        service="DynamoDB",
        action="describeKinesisStreamingDestination",
        parameters={"TableName": table_name},
        physical_resource_id=cr.PhysicalResourceId.of(f"{table_name}->{stream.stream_name}"),
    )
    resource = cr.AwsCustomResource(
        scope,  # the old construct path, so the old logical ID
        LEGACY_ID,
        resource_type=RESOURCE_TYPE,
        install_latest_aws_sdk=False,
        memory_size=PROVIDER_MEMORY_MB,
        log_group=log_group,
        on_create=describe,
        on_update=describe,
        removal_policy=RemovalPolicy.RETAIN,
        policy=cr.AwsCustomResourcePolicy.from_statements(
            [iam.PolicyStatement(actions=["dynamodb:DescribeKinesisStreamingDestination"], resources=[table_arn])]
        ),
    )
    assert isinstance(resource.grant_principal, iam.Role)
    acknowledge(
        resource.grant_principal,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "CDK's AwsCustomResource provider function uses the AWS managed basic execution policy to write its own "
        "CloudWatch logs; its only other grant is describing this stack's existing tables' streaming destinations.",
    )
    acknowledge_rule(
        resource,
        inline_policy_reason(
            "The policy CDK's AwsCustomResource attaches to its provider role for this table (describe its "
            "streaming destination, read-only)"
        ),
        *in_packs("IAMNoInlinePolicy", *REGULATORY),
    )
    provider = resource.grant_principal.node.scope
    assert provider is not None
    acknowledge_rule(
        provider,
        "CDK's AwsCustomResource provider of the kept legacy resource makes one read-only DynamoDB call per stack "
        "operation. The producer VPC is isolated on purpose (no NAT, no internet gateway, no endpoints), so inside "
        "it the call could not leave; the function holds no data.",
        *in_packs("LambdaInsideVPC", *REGULATORY),
    )
    acknowledge_rule(
        provider,
        "CloudFormation invokes the AwsCustomResource provider synchronously and waits for its answer on a "
        "presigned URL: a failure fails the stack operation visibly, and an event parked in a dead-letter queue "
        "could not be replayed once that operation is over. One call per stack operation needs no reserved "
        "concurrency; each call is in the stack events and the provider's encrypted log group.",
        *in_packs("LambdaDLQ", HIPAA, NIST, SERVERLESS),
        *in_packs("LambdaConcurrency", HIPAA, NIST),
    )
    acknowledge_rule(
        provider,
        "One read-only DynamoDB call per stack operation: there is no request path across services to trace. "
        "Each call, its parameters and its answer are logged to the provider's KMS-encrypted log group.",
        "Serverless-LambdaTracing",
    )
    return resource


class StreamingSwitchProvider(Construct):
    """One per stack, shared by every existing table: the two Python handlers, CDK's Provider framework around them
    (its onEvent/isComplete/onTimeout functions and the waiter state machine that polls ``is_complete``), their
    roles and one KMS-encrypted log group.

    Who can invoke it: no function here has a resource-based policy (CDK's Provider adds none; the test
    asserts that no AWS::Lambda::Permission exists for them), so no other account and no AWS service can call them;
    inside account A only a principal whose IAM policy allows lambda:InvokeFunction on them can, and CloudFormation
    calls the framework's onEvent function with the deploying role's credentials. The handlers act only on
    ``Custom::KinesisStreamingDestination`` events, and their role only on this stack's existing tables and streams.
    """

    @classmethod
    def of(cls, stack: Stack, *, key: kms.IKey) -> StreamingSwitchProvider:
        found = stack.node.try_find_child(PROVIDER_ID)
        if isinstance(found, StreamingSwitchProvider):
            return found
        return cls(stack, PROVIDER_ID, key=key)

    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=key,
            retention=PROVIDER_LOG_RETENTION,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        self.role = iam.Role(
            self,
            "HandlerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Streaming switch handlers: turn this stack's existing tables' Kinesis destinations on/off",
        )
        self._write_logs(self.role)
        self.handlers = {
            entry: lambda_.Function(
                self,
                name,
                description=f"Streaming switch ({entry}): existing tables' Kinesis streaming destinations",
                runtime=lambda_.Runtime.PYTHON_3_14,
                architecture=lambda_.Architecture.ARM_64,
                # Plain files, standard library and boto3 only: no bundling, no Docker.
                code=lambda_.Code.from_asset(str(SWITCH_DIR), exclude=["**/__pycache__", "**/*.pyc"]),
                handler=f"handler.{entry}",
                memory_size=PROVIDER_MEMORY_MB,
                timeout=timeout,
                role=self.role,
                log_group=self.log_group,
            )
            for entry, name, timeout in (
                # on_event may wait for an old destination to finish disabling before it enables the new one.
                ("on_event", "OnEvent", Duration.minutes(ON_EVENT_TIMEOUT_MINUTES)),
                ("is_complete", "IsComplete", Duration.minutes(1)),
            )
        }
        # Two framework roles, as CDK requires (one for onEvent, one for isComplete/onTimeout), instead of the
        # default ones with the AWS managed basic execution policy: each writes only this log group.
        on_event_role, waiter_role = (
            iam.Role(
                self,
                name,
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"CDK Provider framework {what} of the streaming switch",
            )
            for name, what in (("FrameworkOnEventRole", "onEvent"), ("FrameworkWaiterRole", "isComplete/onTimeout"))
        )
        for role in (on_event_role, waiter_role):
            self._write_logs(role)
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.handlers["on_event"],
            is_complete_handler=self.handlers["is_complete"],
            query_interval=Duration.seconds(QUERY_INTERVAL_SECONDS),
            total_timeout=Duration.minutes(TOTAL_TIMEOUT_MINUTES),
            framework_on_event_role=on_event_role,
            framework_complete_and_timeout_role=waiter_role,
            log_group=self.log_group,
        )
        self.service_token = self.provider.service_token
        self._link_role = False
        self._acknowledge()

    def _write_logs(self, role: iam.Role) -> None:
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                # The group's ARN attribute ends in ':*', which covers its log streams.
                resources=[self.log_group.log_group_arn],
            )
        )

    def allow(self, *, table_arn: str, stream_arn: str) -> None:
        """Let the handlers switch this table's destination to this stream, and nothing else of it."""
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "dynamodb:EnableKinesisStreamingDestination",
                    "dynamodb:DisableKinesisStreamingDestination",
                    "dynamodb:DescribeKinesisStreamingDestination",
                    "dynamodb:UpdateKinesisStreamingDestination",
                ],
                resources=[table_arn],
            )
        )
        # What the DynamoDB developer guide lists for enabling and describing a streaming destination
        # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/kds_iam.html). kinesis:PutRecords stays
        # although DynamoDB's service-linked role makes the writes (its policy, DynamoDBKinesisReplicationServiceRole
        # Policy, allows kinesis:PutRecord(s) itself: https://docs.aws.amazon.com/aws-managed-policy/latest/reference/
        # DynamoDBKinesisReplicationServiceRolePolicy.html): the guide names it among the caller's permissions for
        # EnableKinesisStreamingDestination, and no emulator can show that the call succeeds without it.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:PutRecords"],
                resources=[stream_arn],
            )
        )
        if self._link_role:
            return
        self._link_role = True
        stack = Stack.of(self)
        # Listed too; Kinesis offers no resource-level scoping for ListStreams.
        self.role.add_to_policy(iam.PolicyStatement(actions=["kinesis:ListStreams"], resources=["*"]))
        self.role.add_to_policy(
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
            )
        )

    def _acknowledge(self) -> None:
        functions = [f for f in self.node.find_all() if isinstance(f, lambda_.Function)]
        for function in functions:
            if function not in self.handlers.values():
                # CDK's framework functions take Lambda's default 128 MB; give them the handlers' size instead.
                cfn = function.node.default_child
                assert isinstance(cfn, lambda_.CfnFunction)
                cfn.memory_size = PROVIDER_MEMORY_MB
            acknowledge_rule(
                function,
                "The streaming switch runs only while CloudFormation creates, updates or deletes an existing table's "
                "streaming destination, and calls the public DynamoDB, Lambda and Step Functions APIs. The producer "
                "VPC is isolated on purpose (no NAT, no internet gateway, no endpoints), so inside it the calls could "
                "not leave; the functions hold no data, and their roles may only switch this stack's existing "
                "tables' streaming destinations and run the provider's own waiter.",
                *in_packs("LambdaInsideVPC", *REGULATORY),
            )
            acknowledge_rule(
                function,
                "CloudFormation calls the provider's onEvent function synchronously and waits for the answer on a "
                "presigned URL; the framework calls the handlers synchronously too and its waiter state machine "
                "retries isComplete. A failure fails the stack operation visibly (and rolls it back): an event parked "
                "in a dead-letter queue could not be replayed once that operation is over. A few calls per stack "
                "operation need no reserved concurrency; each is in the stack events and the encrypted log group.",
                *in_packs("LambdaDLQ", HIPAA, NIST, SERVERLESS),
                *in_packs("LambdaConcurrency", HIPAA, NIST),
            )
            acknowledge_rule(
                function,
                "The streaming switch makes a few DynamoDB calls per stack operation; there is no request path across "
                "services to trace. Each request and its outcome are logged to the provider's KMS-encrypted log "
                "group, and the waiter's executions are kept in Step Functions' execution history.",
                "Serverless-LambdaTracing",
            )
        for role in [self.role, *(r for r in self.node.find_all() if isinstance(r, iam.Role) and r is not self.role)]:
            acknowledge_rule(
                role,
                inline_policy_reason(
                    "A role of the streaming switch (its handlers, CDK's Provider framework functions or their "
                    "waiter state machine)"
                ),
                *in_packs("IAMNoInlinePolicy", *REGULATORY),
            )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "kinesis:ListStreams, which the DynamoDB developer guide lists for enabling a Kinesis streaming "
            "destination, supports no resource-level permissions; it only lists stream names. Every other grant of "
            "this role names this stack's existing tables, their streams, its log group or the service-linked role.",
        )
        invoked = [*self.handlers.values(), *(f for f in functions if f not in self.handlers.values())]
        for function in invoked:
            cfn = function.node.default_child
            assert isinstance(cfn, lambda_.CfnFunction)
            logical_id = Stack.of(self).get_logical_id(cfn)
            acknowledge(
                self,
                f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>:*]",
                "CDK's Provider framework grants lambda:InvokeFunction on one named function of the streaming "
                "switch; the wildcard is that function's versions and aliases, nothing else.",
            )
        machine = self.provider.node.find_child("waiter-state-machine")
        acknowledge_rule(
            machine,
            "CDK's Provider waiter: a state machine that only calls the streaming switch's isComplete function every "
            f"{QUERY_INTERVAL_SECONDS} s until the destination is ACTIVE (or disabled), then the framework's timeout "
            "function. It handles no data; Step Functions keeps every execution's event history (console and API), "
            "and each isComplete call logs to the KMS-encrypted provider log group.",
            "AwsSolutions-SF1",
            "AwsSolutions-SF2",
            "Serverless-StepFunctionStateMachineXray",
        )
