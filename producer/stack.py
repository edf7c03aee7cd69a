"""Account A: for every configured table, table -> Kinesis -> Firehose (+ transform Lambda) -> B's data lake."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from producer.backup import TableBackup
from producer.capture import TableCapture
from producer.keys import ProducerKey
from producer.network import IsolatedNetwork
from shared import naming
from shared.alarm_topic import AlarmTopic
from shared.config import AppConfig
from shared.nag import cover_invisible_functions


class ProducerStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, cfg: AppConfig, **kwargs: Any) -> None:
        self._zones = list(cfg.network.availability_zones)
        super().__init__(scope, construct_id, **kwargs)
        key = ProducerKey(
            self, "Key", description=f"Encrypts the {cfg.prefix} change tables, streams, logs and alarm topic"
        ).key
        network = IsolatedNetwork(self, "Network", vpc_cidr=cfg.network.vpc_cidr, zones=self._zones, key=key)
        tables = naming.tables(cfg)
        self.topic = AlarmTopic(
            self,
            "Monitoring",
            display_name=f"{cfg.prefix} data-lake delivery alarms",
            key=key,
            alarm_prefixes=[names.alarm_prefix for _, names in tables],
            emails=cfg.notifications.alarm_emails,
        ).topic
        lake = naming.lake(cfg)
        self.captures: dict[str, TableCapture] = {}
        for spec, names in tables:
            # The construct ID is the table's configured name: adding or removing a table leaves the others' alone.
            capture = TableCapture(
                self,
                spec.name,
                spec=spec,
                names=names,
                lake=lake,
                delivery=cfg.delivery_for(spec),
                transform=cfg.transform,
                key=key,
                vpc=network.vpc,
                security_group=network.function_security_group,
                topic=self.topic,
            )
            self.captures[spec.name] = capture
            CfnOutput(self, f"{names.token}TableName", value=names.table)
            CfnOutput(self, f"{names.token}StreamArn", value=capture.stream.stream_arn)
            CfnOutput(self, f"{names.token}DeliveryStreamName", value=names.delivery_stream)
            CfnOutput(self, f"{names.token}DeliveryRoleArn", value=capture.delivery.role.role_arn)
        created = [c.table for c in self.captures.values() if not c.spec.existing_table_name]
        self.backup = TableBackup(
            self, "Backup", name=f"{cfg.prefix}-tables", settings=cfg.backup, tables=created, table_key=key
        )
        cover_invisible_functions(self, key=key)

    @property
    def availability_zones(self) -> list[str]:
        # The configured zones, so the VPC never asks the account for its zones (offline, deterministic synth).
        return self._zones
