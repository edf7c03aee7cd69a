"""Everything about one table's change capture in account A: the table (or an existing one's streaming
destination), its Kinesis stream, its transform Lambda, its Firehose delivery into the lake, and its alarms.

The construct takes narrow inputs (the table's spec, its names, its delivery settings and the stack's shared
key, network and alarm topic), so adding or removing a table never touches another table's resources: every
construct ID below derives from the table's configured name.
"""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from producer.capture.alarms import TableAlarms
from producer.capture.delivery import Delivery
from producer.capture.stream import ChangeStream
from producer.capture.table import ChangeTable, ExistingTableStreaming
from producer.capture.transform import TransformFunction
from shared.config import DeliverySettings, TableSpec, TransformConfig
from shared.naming import LakeNames, TableNames


class TableCapture(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: TableSpec,
        names: TableNames,
        lake: LakeNames,
        delivery: DeliverySettings,
        transform: TransformConfig,
        key: kms.IKey,
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.spec = spec
        self.names = names
        self.stream = ChangeStream(self, "ChangeStream", name=names.stream, settings=spec.stream, key=key).stream
        self.table: dynamodb.ITable
        if spec.existing_table_name:
            self.table = ExistingTableStreaming(self, "ExistingTable", table_name=names.table, stream=self.stream).table
        else:
            self.table = ChangeTable(
                self, "ChangeTable", spec=spec, name=names.table, key=key, stream=self.stream
            ).table
        self.transform = TransformFunction(
            self,
            "Transform",
            settings=transform,
            metrics_namespace=names.metrics_namespace,
            key=key,
            vpc=vpc,
            security_group=security_group,
        ).function
        self.delivery = Delivery(
            self,
            "Delivery",
            names=names,
            lake=lake,
            settings=delivery,
            stream=self.stream,
            stream_key=key,
            log_key=key,
            function=self.transform,
        )
        self.alarms = TableAlarms(
            self,
            "Alarms",
            names=names,
            retention_hours=spec.stream.retention_hours,
            buffer_interval_seconds=delivery.buffer_interval_seconds,
            topic=topic,
            stream=self.stream,
            delivery_stream=self.delivery.delivery_stream,
            function=self.transform,
        )
