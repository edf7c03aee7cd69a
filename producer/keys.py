"""The producer account's customer-managed key: tables, streams, log groups and the alarm topic."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from constructs import Construct

from shared.key_policies import allow_logs_and_alarms


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
        # The flow-log, Lambda and Firehose log groups and the alarm topic are encrypted with this key.
        allow_logs_and_alarms(self.key, stack)
