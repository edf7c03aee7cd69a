"""An alarm topic (KMS-encrypted, TLS only, e-mail subscriptions) that admits only the given alarms: the producer's
for every table's capture alarms, and account B's for the lakehouse maintenance."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from shared.nag import acknowledge


class AlarmTopic(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        display_name: str,
        key: kms.IKey,
        alarm_prefixes: Sequence[str],
        emails: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "AlarmTopic", display_name=display_name, master_key=key, enforce_ssl=True)
        # enforce_ssl writes a topic policy, which replaces SNS's default one: CloudWatch alarms (not IAM
        # principals) need an explicit allow, limited to this account's alarms of the captured tables.
        stack = Stack.of(self)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowTheTablesAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": [
                            stack.format_arn(
                                service="cloudwatch",
                                resource="alarm",
                                resource_name=f"{prefix}*",
                                arn_format=ArnFormat.COLON_RESOURCE_NAME,
                            )
                            for prefix in alarm_prefixes
                        ]
                    },
                },
            )
        )
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        if emails:
            acknowledge(
                self.topic,
                "Serverless-SNSRedrivePolicy",
                "The alarm topic's subscriptions are e-mail addresses: SNS retries e-mail delivery itself, and a "
                "notification it finally drops would wait in a dead-letter queue nobody reads. The alarm state "
                "it announced stays in CloudWatch and on each table's dashboard, and the next state change "
                "notifies again.",
            )
