"""Account A: table -> Kinesis -> Firehose (+ transform Lambda) -> account B's data lake."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from producer.delivery import Delivery
from producer.keys import ProducerKey
from producer.monitoring import Monitoring
from producer.network import IsolatedNetwork
from producer.table import ChangeStream, ChangeTable
from producer.transform import TransformFunction
from shared.config import AppConfig


class ProducerStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, cfg: AppConfig, **kwargs: Any) -> None:
        self._zones = list(cfg.network.availability_zones)
        super().__init__(scope, construct_id, **kwargs)
        key = ProducerKey(self, "Key", cfg=cfg).key
        self.stream = ChangeStream(self, "ChangeStream", cfg=cfg, key=key).stream
        self.table = ChangeTable(self, "ChangeTable", cfg=cfg, key=key, stream=self.stream).table
        network = IsolatedNetwork(self, "Network", cfg=cfg, key=key)
        self.transform = TransformFunction(
            self,
            "Transform",
            cfg=cfg,
            key=key,
            vpc=network.vpc,
            security_group=network.function_security_group,
        ).function
        delivery = Delivery(
            self,
            "Delivery",
            cfg=cfg,
            stream=self.stream,
            stream_key=key,
            log_key=key,
            function=self.transform,
        )
        self.delivery_stream = delivery.delivery_stream
        self.delivery_role = delivery.role
        Monitoring(
            self,
            "Monitoring",
            cfg=cfg,
            key=key,
            stream=self.stream,
            delivery_stream=self.delivery_stream,
            function=self.transform,
        )
        CfnOutput(self, "TableName", value=self.table.table_name)
        CfnOutput(self, "StreamArn", value=self.stream.stream_arn)
        CfnOutput(self, "DeliveryStreamName", value=self.delivery_stream.delivery_stream_name)
        CfnOutput(self, "DeliveryRoleArn", value=self.delivery_role.role_arn)

    @property
    def availability_zones(self) -> list[str]:
        # The configured zones, so the VPC never asks the account for its zones (offline, deterministic synth).
        return self._zones
