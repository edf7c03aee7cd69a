"""The producer account's customer-managed key: tables, streams, log groups and the alarm topic."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class ProducerKey(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, description: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description=description,
            enable_key_rotation=True,
            # Without the key every table, stream record and log encrypted with it is unreadable; a failed first
            # create still cleans up.
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        # CloudWatch Logs encrypts the flow-log, Lambda and Firehose log groups with this key, and asks for it with
        # the log group's ARN as encryption context
        # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html: "kms:EncryptionContext:
        # aws:logs:arn"). The log groups cannot be named here by ARN (each names this key: a circular reference), and
        # none of them has a name of its own: CloudFormation names each "<stack name>-<logical ID>-<suffix>"
        # (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-name.html shows the pattern;
        # the AWS::Logs::LogGroup handler builds it from the aws:cloudformation:stack-name tag and the logical ID:
        # https://github.com/aws-cloudformation/aws-cloudformation-resource-providers-logs/blob/master/aws-logs-loggroup/src/main/java/software/amazon/logs/loggroup/CreateHandler.java),
        # so the pattern admits this stack's log groups only, not every log group of the account. A test keeps
        # every log group of the stack unnamed.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsForThisStacksLogGroups",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_group_pattern(stack)}},
            )
        )
        # Alarms publish to the KMS-encrypted SNS topic as CloudWatch, which needs a data key.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublishToEncryptedTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )


def log_group_pattern(stack: Stack) -> str:
    """The ARNs of the log groups CloudFormation creates, unnamed, in ``stack``."""
    return f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:{stack.stack_name}-*"
