"""Account B: the data lake the producer's Firehose writes into."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from consumer.buckets import DataLakeBucket
from consumer.catalog import DataLakeCatalog, database_name
from consumer.key import DataLakeKey
from shared import naming
from shared.access_logs import AccessLogBucket
from shared.config import AppConfig


class DataLakeStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, cfg: AppConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.key = DataLakeKey(self, "DataLakeKey", cfg=cfg).key
        logs = AccessLogBucket(
            self,
            "AccessLogs",
            bucket_name=naming.access_log_bucket_name(cfg),
            expiration_days=cfg.data_lake.access_log_expiration_days,
        ).bucket
        self.bucket = DataLakeBucket(self, "DataLake", cfg=cfg, key=self.key, access_logs=logs).bucket

        self.catalog = DataLakeCatalog(self, "Catalog", cfg=cfg)

        CfnOutput(self, "DataLakeBucketName", value=self.bucket.bucket_name)
        CfnOutput(self, "DataLakeBucketArn", value=self.bucket.bucket_arn)
        CfnOutput(self, "DataLakeKeyArn", value=self.key.key_arn)
        CfnOutput(self, "DataLakeKeyAlias", value=naming.data_lake_key_alias(cfg))
        CfnOutput(self, "AthenaTable", value=f"{database_name(cfg)}.{cfg.table.name}")
