"""The transform Lambda that Firehose calls: DynamoDB change records in, flat JSON lines out.

One function per table, not one shared: a poison batch, a throttle or a reservation of one table never
touches another's, each table's Embedded Metric Format counts land in its own namespace, and Lambda charges
per invocation, so the copies cost nothing while idle. They share the isolated subnets and security group.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from shared.config import TransformConfig
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

# Plain Python, standard library only: the asset is the source folder as it is, no bundling, no Docker.
LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"
HANDLER = "transform.handler.handler"


LOG_RETENTION = logs.RetentionDays.THREE_MONTHS


class TransformFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: TransformConfig,
        metrics_namespace: str,
        key: kms.IKey,
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=key,
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        # An own role instead of the AWS managed Lambda policies: logs only to this group.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Transform Lambda: write its own log group, attach to the isolated VPC, send traces",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        # What the managed AWSLambdaVPCAccessExecutionRole grants; EC2 cannot scope these to resources.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSubnets",
                    "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                resources=["*"],
                conditions={"StringEquals": {"aws:RequestedRegion": stack.region}},
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description="Flattens DynamoDB change records into single-level JSON lines for the data lake",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            code=lambda_.Code.from_asset(str(LAMBDAS_DIR), exclude=["**/__pycache__", "**/*.pyc"]),
            handler=HANDLER,
            memory_size=settings.memory_mb,
            timeout=Duration.seconds(settings.timeout_seconds),
            # No reservation by default: one too low sends batches to errors/ and one above the account's quota
            # (reduced in new accounts) fails the deployment. The throttle alarm watches for starvation instead;
            # a configured reservation is checked against Firehose's 5 invocations per shard (shared/config.py).
            reserved_concurrent_executions=settings.reserved_concurrency,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[security_group],
            environment={"METRICS_NAMESPACE": metrics_namespace},
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "The transform Lambda's role needs the ENI actions Lambda uses to attach to the isolated VPC "
            "(ec2:CreateNetworkInterface and friends) and X-Ray's PutTraceSegments/PutTelemetryRecords; "
            "neither service supports resource-level scoping. The ENI statement is limited to this region.",
        )
        acknowledge_rule(
            self.role,
            inline_policy_reason("The transform Lambda's own role (its log group, VPC attachment and X-Ray)"),
            *in_packs("IAMNoInlinePolicy", *REGULATORY),
        )
        acknowledge_rule(
            self.function,
            "Firehose invokes the transform synchronously (RequestResponse) and a dead-letter queue only "
            "receives failed asynchronous events, so it would never hold anything. Firehose itself is the "
            "fallback: it retries a failed call 3 times, then writes the batch unchanged under errors/, and "
            "records the transform marks ProcessingFailed go there too; raw/ keeps every source record for "
            "replays, and the TransformFailing, TransformErrors and TransformRecordsFailed alarms fire.",
            *in_packs("LambdaDLQ", HIPAA, NIST, SERVERLESS),
        )
        if settings.reserved_concurrency is None:
            acknowledge_rule(
                self.function,
                "No concurrency is reserved because transform.reserved_concurrency is null (the default): a "
                "reservation too low sends batches to errors/ and one above the account quota (reduced in new "
                "accounts) fails the deployment. "
                "The TransformThrottles alarm reports starvation; set transform.reserved_concurrency to reserve.",
                *in_packs("LambdaConcurrency", HIPAA, NIST),
            )
