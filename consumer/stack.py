"""Account B: the data lake every captured table's Firehose writes into."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from consumer.buckets import DataLakeBucket, deployment_role_arn, role_arn
from consumer.catalog import DataLakeDatabase, TableCatalog
from consumer.key import DataLakeKey
from consumer.lakehouse.maintenance import LakehouseMaintenance
from consumer.lakehouse.monitoring import ConsumerMonitoring
from consumer.lakehouse.sql import LakehouseSql
from consumer.replica import QUERY_RESULTS, DataLakeReplication, derived_bucket
from consumer.workgroup import LakeWorkgroup
from shared import naming
from shared.access_logs import AccessLogBucket
from shared.config import AppConfig


class DataLakeStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, cfg: AppConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        lake = naming.lake(cfg)
        tables = naming.tables(cfg)
        table_names = [names for _, names in tables]
        self.key = DataLakeKey(
            self,
            "DataLakeKey",
            lake=lake,
            description=f"Encrypts the {cfg.prefix} data lake (objects written by the producer's Firehose)",
            producer_account=cfg.producer.account,
            delivery_role_arns=[names.delivery_role_arn for names in table_names],
        ).key
        logs = AccessLogBucket(
            self,
            "AccessLogs",
            bucket_name=lake.access_log_bucket,
            expiration_days=cfg.data_lake.access_log_expiration_days,
        ).bucket
        self.bucket = DataLakeBucket(
            self,
            "DataLake",
            lake=lake,
            producer_account=cfg.producer.account,
            tables=table_names,
            key=self.key,
            access_logs=logs,
            noncurrent_version_expiration_days=cfg.data_lake.noncurrent_version_expiration_days,
            deployment_role_arn=deployment_role_arn(self, lake.partition),
            break_glass_role_arn=role_arn(lake, cfg.data_lake.break_glass_role_name)
            if cfg.data_lake.break_glass_role_name
            else None,
            replay_role_arn=role_arn(lake, cfg.data_lake.replay_role_name) if cfg.data_lake.replay_role_name else None,
            object_lock_retention_days=cfg.data_lake.object_lock_retention_days,
        ).bucket
        self.replication = DataLakeReplication(self, "Replication", cfg=cfg, bucket=self.bucket, key=self.key)

        database = DataLakeDatabase(
            self, "Catalog", lake=lake, description=f"{cfg.prefix} DynamoDB change data lake"
        ).database
        lakehouse = cfg.lakehouse
        self.lakehouse_sql = {
            spec.name: LakehouseSql(
                spec=spec,
                names=names,
                lake=lake,
                late_window_hours=lakehouse.late_window_hours,
                max_hours_per_run=lakehouse.max_hours_per_run,
                first_year=cfg.data_lake.first_year,
            )
            for spec, names in tables
            if lakehouse.enabled
        }
        self.catalogs = {
            spec.name: TableCatalog(
                self,
                f"{spec.name}-Catalog",
                spec=spec,
                names=names,
                lake=lake,
                database=database,
                first_year=cfg.data_lake.first_year,
                lakehouse=self.lakehouse_sql.get(spec.name),
            )
            for spec, names in tables
        }
        self.athena = LakeWorkgroup(
            self,
            "Athena",
            lake=lake,
            key=self.key,
            access_logs=logs,
            results_expiration_days=cfg.athena.results_expiration_days,
            bytes_scanned_cutoff_mib=cfg.athena.bytes_scanned_cutoff_mib,
            database=database,
            queries={
                spec.name: self.catalogs[spec.name].queries.named_queries(
                    cfg.delivery_for(spec).buffer_interval_seconds
                )
                for spec, _ in tables
            },
        )
        derived_bucket(self.athena.results, QUERY_RESULTS)

        self.lakehouse: dict[str, LakehouseMaintenance] = {}
        if lakehouse.enabled:
            monitoring = ConsumerMonitoring(
                self,
                "Monitoring",
                lake=lake,
                key=self.key,
                display_name=f"{cfg.prefix} lakehouse alarms",
                alarm_prefixes=[names.lakehouse_alarm_prefix for names in table_names],
                emails=cfg.notifications.alarm_emails,
            )
            self.alarm_topic = monitoring.topic
            for spec, names in tables:
                # The construct ID is the table's name: adding or removing a table leaves the others alone.
                maintenance = LakehouseMaintenance(
                    self,
                    f"{spec.name}-Lakehouse",
                    sql=self.lakehouse_sql[spec.name],
                    names=names,
                    lake=lake,
                    bucket=self.bucket,
                    results=self.athena.results,
                    data_key=self.key,
                    log_key=self.key,
                    topic=monitoring.topic,
                    schedule_minutes=lakehouse.schedule_minutes,
                )
                # Its statements run in the workgroup and read the raw table: both exist before the first run.
                maintenance.state_machine.node.add_dependency(self.athena.workgroup, self.catalogs[spec.name])
                self.lakehouse[spec.name] = maintenance
                CfnOutput(
                    self, f"{names.token}LakehouseStateMachine", value=maintenance.state_machine.state_machine_arn
                )

        CfnOutput(self, "DataLakeBucketName", value=self.bucket.bucket_name)
        CfnOutput(self, "DataLakeBucketArn", value=self.bucket.bucket_arn)
        CfnOutput(self, "DataLakeKeyArn", value=self.key.key_arn)
        CfnOutput(self, "DataLakeKeyAlias", value=lake.key_alias)
        CfnOutput(self, "AthenaDatabase", value=lake.database)
        CfnOutput(self, "AthenaWorkGroup", value=lake.workgroup)
