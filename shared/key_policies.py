"""Key-policy statements both stages give their customer-managed key: CloudWatch Logs for the stack's own log
groups, and CloudWatch alarms publishing to an SNS topic encrypted with the key. One place, so the producer's key
and the data-lake key (which encrypts account B's lakehouse log groups and alarm topic) cannot drift apart."""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms


def log_group_pattern(stack: Stack) -> str:
    """The ARNs of the log groups CloudFormation creates, unnamed, in ``stack``."""
    return f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:{stack.stack_name}-*"


# What CloudWatch Logs asks of a key that encrypts a log group.
LOGS_KEY_ACTIONS = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]


def allow_cloudwatch_logs(key: kms.IKey, stack: Stack, sid: str, operator: str, log_groups: str) -> None:
    """CloudWatch Logs may use ``key`` only for ``log_groups`` (an ARN with ``ArnEquals``, a pattern with
    ``ArnLike``): it asks with the log group's ARN as encryption context
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html)."""
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid=sid,
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=list(LOGS_KEY_ACTIONS),
            resources=["*"],
            conditions={operator: {"kms:EncryptionContext:aws:logs:arn": log_groups}},
        )
    )


def log_group_arn(stack: Stack, name: str) -> str:
    return stack.format_arn(
        service="logs", resource="log-group", arn_format=ArnFormat.COLON_RESOURCE_NAME, resource_name=name
    )


def allow_logs_and_alarms(key: kms.IKey, stack: Stack) -> None:
    """CloudWatch Logs asks for the key with the log group's ARN as encryption context
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html: "kms:EncryptionContext:
    aws:logs:arn"). The log groups cannot be named here by ARN (each names the key: a circular reference), and none
    has a name of its own: CloudFormation names each "<stack name>-<logical ID>-<suffix>"
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-name.html shows the pattern; the
    AWS::Logs::LogGroup handler builds it from the aws:cloudformation:stack-name tag and the logical ID:
    https://github.com/aws-cloudformation/aws-cloudformation-resource-providers-logs/blob/master/aws-logs-loggroup/src/main/java/software/amazon/logs/loggroup/CreateHandler.java),
    so the pattern admits the stack's own log groups only. Tests keep every such log group unnamed. Alarms publish
    to the KMS-encrypted SNS topic as CloudWatch, which needs a data key, for this account only."""
    allow_cloudwatch_logs(key, stack, "AllowCloudWatchLogsForThisStacksLogGroups", "ArnLike", log_group_pattern(stack))
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchAlarmsToPublishToEncryptedTopic",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
        )
    )
