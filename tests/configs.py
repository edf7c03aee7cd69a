"""The configurations the suite synthesizes: a default written here (never read from cdk.json, which holds the
user's own values) and variants covering the documented settings. Every template test runs on each of them, so
its expectations must come from the configuration under test."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

TOOLING, CONSUMER, PRODUCER = "111111111111", "222222222222", "333333333333"
CONNECTION = "arn:aws:codeconnections:{region}:{account}:connection/6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"


def default() -> dict[str, Any]:
    region = "eu-west-1"
    return {
        "prefix": "ddblake",
        "tooling": {"account": TOOLING, "region": region},
        "consumer": {"account": CONSUMER, "region": region},
        "producer": {"account": PRODUCER, "region": region},
        "source": {
            "repository": "example-org/ddb-cross-account-datalake",
            "branch": "main",
            "connection_arn": CONNECTION.format(region=region, account=TOOLING),
        },
        "tables": [
            {
                "name": "orders",
                "partition_key": "pk",
                "partition_key_type": "S",
                "sort_key": "sk",
                "sort_key_type": "S",
                "stream": {"mode": "PROVISIONED", "shard_count": 10, "retention_hours": 24},
                "columns": {"total": "decimal(38,2)", "shipTo.city": "string"},
            }
        ],
        "delivery": {"buffer_interval_seconds": 120, "buffer_size_mib": 1, "compression": "GZIP"},
        "network": {"vpc_cidr": "10.40.0.0/24", "availability_zones": [f"{region}a", f"{region}b"]},
    }


def _table(raw: dict[str, Any], **changes: Any) -> dict[str, Any]:
    raw["tables"][0].update(changes)
    return raw


def _stream(raw: dict[str, Any], **changes: Any) -> dict[str, Any]:
    raw["tables"][0]["stream"].update(changes)
    return raw


def _on_demand(raw: dict[str, Any]) -> dict[str, Any]:
    # Kinesis sizes an on-demand stream itself, so it has no shard_count (the model refuses one).
    del raw["tables"][0]["stream"]["shard_count"]
    return _stream(raw, mode="ON_DEMAND")


def _tooling_elsewhere(raw: dict[str, Any]) -> dict[str, Any]:
    # CDK Pipelines adds a cross-region support stack; the connection lives with the pipeline.
    raw["tooling"]["region"] = "us-east-1"
    raw["source"]["connection_arn"] = CONNECTION.format(region="us-east-1", account=TOOLING)
    return raw


def _same_account(raw: dict[str, Any]) -> dict[str, Any]:
    raw["consumer"]["account"] = raw["producer"]["account"]
    return raw


def _realistic(raw: dict[str, Any]) -> dict[str, Any]:
    """What a real organization commits: its own accounts, a codestar-connections ARN, e-mails, another region."""
    region = "eu-central-1"
    raw.update(
        prefix="acme-cdc",
        tooling={"account": "048213955321", "region": "us-east-2"},
        consumer={"account": "729314560012", "region": region},
        producer={"account": "615802347719", "region": region},
        notifications={"approval_emails": ["platform-team@acme.example"], "alarm_emails": ["oncall@acme.example"]},
        network={"vpc_cidr": "10.120.8.0/22", "availability_zones": [f"{region}a", f"{region}b", f"{region}c"]},
    )
    raw["source"]["connection_arn"] = (
        "arn:aws:codestar-connections:us-east-2:048213955321:connection/0b8e2c4d-1f3a-4e5b-9c7d-2a6f8e0b1c3d"
    )
    # The integrity options an audited organization turns on (docs/security.md), and the year it first deployed.
    raw["data_lake"] = {
        "first_year": 2026,
        "break_glass_role_name": "data-lake-break-glass",
        "replay_role_name": "data-lake-replay",
        "object_lock_retention_days": 365,
    }
    raw["tables"][0].update(sort_key=None, name="customer_orders", partition_key="_id")
    raw["tables"][0]["stream"] = {"mode": "ON_DEMAND", "retention_hours": 168}
    return raw


def _two_tables(raw: dict[str, Any]) -> dict[str, Any]:
    """One table the stack creates, one that exists already and is owned elsewhere."""
    raw["tables"].append(
        {
            "name": "customers",
            "existing_table_name": "legacy-customers-prod",
            "partition_key": "customerId",
            "partition_key_type": "N",
            "stream": {"mode": "PROVISIONED", "shard_count": 2},
            "delivery": {"buffer_interval_seconds": 60, "compression": "UNCOMPRESSED"},
        }
    )
    # Object Lock on without a default retention: where a bucket stays after its retention is turned off again.
    raw["data_lake"] = {"object_lock_retention_days": 0}
    return raw


VARIANTS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "default": lambda raw: raw,
    "shards-4": lambda raw: _stream(raw, shard_count=4),
    "on-demand": _on_demand,
    "no-sort-key": lambda raw: _table(raw, sort_key=None),
    "same-account": _same_account,
    "tooling-region-differs": _tooling_elsewhere,
    # Also the one configuration without the lakehouse: its views are then the raw-log SQL (no extra synthesis).
    "uncompressed": lambda raw: {
        **raw,
        "delivery": {**raw["delivery"], "compression": "UNCOMPRESSED"},
        "lakehouse": {"enabled": False},
    },
    "buffering-300s-64mib": lambda raw: {
        **raw,
        "delivery": {**raw["delivery"], "buffer_interval_seconds": 300, "buffer_size_mib": 64},
    },
    "realistic": _realistic,
    "two-tables": _two_tables,
}


def variant(name: str) -> dict[str, Any]:
    return VARIANTS[name](copy.deepcopy(default()))
