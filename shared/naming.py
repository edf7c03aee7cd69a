"""The single source of every name that crosses a stage boundary.

The consumer (account B) and producer (account A) stages are deployed by different CloudFormation
executions in different accounts, so neither may reference the other's constructs. Both compute the
names they share from the same configuration with these functions instead; a test checks that the
names the producer uses are exactly the ones the consumer's policies trust.
"""

from __future__ import annotations

from shared.config import AppConfig


def data_lake_bucket_name(cfg: AppConfig) -> str:
    # Globally unique and at most 63 characters: prefix (<=20) + account + region (<=14) + fixed parts.
    return f"{cfg.prefix}-datalake-{cfg.consumer.account}-{cfg.consumer.region}"


def access_log_bucket_name(cfg: AppConfig) -> str:
    return f"{cfg.prefix}-datalake-logs-{cfg.consumer.account}-{cfg.consumer.region}"


def data_lake_bucket_arn(cfg: AppConfig) -> str:
    return f"arn:{cfg.consumer.partition}:s3:::{data_lake_bucket_name(cfg)}"


def data_lake_key_alias(cfg: AppConfig) -> str:
    return f"alias/{cfg.prefix}/datalake"


def data_lake_key_alias_arn(cfg: AppConfig) -> str:
    c = cfg.consumer
    return f"arn:{c.partition}:kms:{c.region}:{c.account}:{data_lake_key_alias(cfg)}"


def delivery_role_name(cfg: AppConfig) -> str:
    # IAM is global per account: the region keeps two producer regions from colliding.
    return f"{cfg.prefix}-firehose-delivery-{cfg.producer.region}"


def delivery_role_arn(cfg: AppConfig) -> str:
    p = cfg.producer
    return f"arn:{p.partition}:iam::{p.account}:role/{delivery_role_name(cfg)}"


def table_name(cfg: AppConfig) -> str:
    return f"{cfg.prefix}-{cfg.table.name}"


def stream_name(cfg: AppConfig) -> str:
    return f"{cfg.prefix}-{cfg.table.name}-changes"


def delivery_stream_name(cfg: AppConfig) -> str:
    return f"{cfg.prefix}-{cfg.table.name}-to-datalake"


# Hive-style partition columns and the Firehose timestamp format of each: the layout Firehose writes and the
# layout Athena's partition projection reads (consumer/catalog.py) are both built from this.
DATE_PARTITIONS = (("year", "yyyy"), ("month", "MM"), ("day", "dd"), ("hour", "HH"))
_DATE_PARTS = "".join(f"{column}=!{{timestamp:{fmt}}}/" for column, fmt in DATE_PARTITIONS)
DATA, ERRORS, RAW = "data", "errors", "raw"


def table_prefix(kind: str, cfg: AppConfig) -> str:
    """Per table, so several producers can share one lake and Athena tables map to one folder each."""
    return f"{kind}/{cfg.table.name}/"


def data_prefix(cfg: AppConfig) -> str:
    """Hive-style partitions, so Athena partition projection can address each hour directly."""
    return table_prefix(DATA, cfg) + _DATE_PARTS


def error_prefix(cfg: AppConfig) -> str:
    return table_prefix(ERRORS, cfg) + "!{firehose:error-output-type}/" + _DATE_PARTS


def raw_backup_prefix(cfg: AppConfig) -> str:
    return table_prefix(RAW, cfg) + _DATE_PARTS


def delivery_prefixes(cfg: AppConfig) -> list[str]:
    """Every prefix the producer's Firehose writes under."""
    return [table_prefix(kind, cfg) for kind in (DATA, ERRORS, RAW)]
