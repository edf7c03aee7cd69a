"""Configuration: every rule rejects a bad value with a message naming the key and what is allowed."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared import config

ROOT = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"][config.CONTEXT_KEY]


def _with(path: str, value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    node = raw
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return raw


def _problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(config.ConfigError) as caught:
        config.from_dict(raw)
    return caught.value.problems


def test_shipped_cdk_json_is_valid_and_uses_placeholder_accounts():
    cfg = config.from_dict(BASE)
    assert {cfg.tooling.account, cfg.consumer.account, cfg.producer.account} == {
        "111111111111",
        "222222222222",
        "333333333333",
    }
    assert cfg.stream.shard_count == 10 and cfg.stream.mode == "PROVISIONED"
    assert (cfg.delivery.buffer_interval_seconds, cfg.delivery.buffer_size_mib) == (120, 1)
    assert cfg.source.branch == "main"


def test_config_is_frozen():
    cfg = config.from_dict(BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.prefix = "other"  # type: ignore[misc]


def test_defaults_fill_optional_sections():
    raw = {k: v for k, v in BASE.items() if k not in ("stream", "delivery", "transform", "data_lake")}
    cfg = config.from_dict(raw)
    assert cfg.stream == config.StreamConfig(mode="PROVISIONED", shard_count=10, retention_hours=24)
    assert cfg.delivery == config.DeliveryConfig(buffer_interval_seconds=120, buffer_size_mib=1, compression="GZIP")
    assert cfg.transform.timeout_seconds >= 60


BAD_VALUES = [
    ("prefix", "Bad_Prefix", "lower-case"),
    ("prefix", "x", "3-20 characters"),
    ("tooling.account", "12345", "12-digit"),
    ("tooling.region", "", "region"),
    ("consumer.account", "22222222222a", "12-digit"),
    ("producer.account", 333333333333, "12-digit AWS account ID, as a string"),
    ("producer.region", "europe-west", "region"),
    ("producer.region", 5, "region"),
    ("consumer.region", "EU-WEST-1", "region"),
    ("source.repository", "no-slash", "'owner/name'"),
    ("source.branch", "bad..branch", "git branch"),
    ("source.connection_arn", "arn:aws:s3:::bucket", "CodeConnections ARN"),
    ("table.name", "Orders-Table", "lower-case"),
    ("table.partition_key", "", "attribute name"),
    ("table.partition_key_type", "X", "['S', 'N', 'B']"),
    ("table.sort_key", "has space", "attribute name"),
    ("table.sort_key_type", "BOOL", "['S', 'N', 'B']"),
    ("stream.mode", "SERVERLESS", "['PROVISIONED', 'ON_DEMAND']"),
    ("stream.shard_count", 0, "from 1 to 500"),
    ("stream.shard_count", "10", "whole number"),
    ("stream.retention_hours", 12, "from 24 to 8760"),
    ("delivery.buffer_interval_seconds", 901, "from 0 to 900"),
    ("delivery.buffer_size_mib", 129, "from 1 to 128"),
    ("delivery.buffer_size_mib", 0, "from 1 to 128"),
    ("delivery.compression", "ZIP", "['GZIP', 'HADOOP_SNAPPY', 'UNCOMPRESSED']"),
    ("transform.memory_mb", 64, "from 128 to 10240"),
    ("transform.timeout_seconds", 30, "from 60 to 300"),
    ("transform.timeout_seconds", True, "whole number"),
    ("transform.account_concurrency_quota", 5, "from 10 to 1000000"),
    ("network.vpc_cidr", "10.0.0.0/8", "/16 to /24"),
    ("network.vpc_cidr", "8.8.8.0/24", "private IPv4 CIDR"),
    ("network.vpc_cidr", "not-a-cidr", "CIDR"),
    ("network.availability_zones", ["eu-west-1a"], "2 to 6 distinct zones"),
    ("network.availability_zones", ["us-east-1a", "us-east-1b"], "producer region 'eu-west-1'"),
    ("network.availability_zones", ["eu-west-1a", "eu-west-1a"], "distinct"),
    ("notifications.approval_emails", ["not-an-email"], "e-mail"),
    ("notifications.alarm_emails", "ops@example.com", "list of e-mail"),
    ("data_lake.noncurrent_version_expiration_days", 0, "from 1 to 3650"),
    ("data_lake.access_log_expiration_days", -5, "from 1 to 3650"),
]


@pytest.mark.parametrize(("key", "value", "allowed"), BAD_VALUES, ids=[f"{k}={v!r}" for k, v, _ in BAD_VALUES])
def test_bad_value_names_key_value_and_allowed(key, value, allowed):
    problems = _problems(_with(key, value))
    assert len(problems) == 1, problems
    (problem,) = problems
    assert problem.startswith(f"datalake.{key} = {value!r}:")
    assert allowed in problem


def test_every_validated_leaf_is_exercised():
    leaves = {
        f"{section}.{leaf}" if isinstance(value, dict) else section
        for section, value in BASE.items()
        for leaf in (value if isinstance(value, dict) else [None])
    }
    assert leaves <= {key for key, _, _ in BAD_VALUES}


def test_unknown_keys_are_named_with_the_allowed_ones():
    raw = _with("stream.shards", 4)
    raw["typo"] = 1
    problems = _problems(raw)
    assert any(p.startswith("datalake.stream.shards: unknown key") and "'shard_count'" in p for p in problems)
    assert any(p.startswith("datalake.typo: unknown key") for p in problems)


def test_section_must_be_an_object():
    (problem,) = _problems(_with("stream", 10))
    assert problem.startswith("datalake.stream = 10: must be an object")


def test_all_problems_are_reported_at_once():
    raw = _with("producer.account", "x")
    raw["stream"]["shard_count"] = 9999
    raw["delivery"]["compression"] = "LZ4"
    with pytest.raises(config.ConfigError) as caught:
        config.from_dict(raw)
    error_message = str(caught.value)
    for key in ("datalake.producer.account", "datalake.stream.shard_count", "datalake.delivery.compression"):
        assert key in error_message
    assert "(3)" in error_message


def test_missing_context_is_explained():
    with pytest.raises(config.ConfigError, match="datalake: missing"):
        config.load({})


def test_dotted_overrides_apply_on_top_of_cdk_json():
    context = {
        config.CONTEXT_KEY: BASE,
        "datalake.stream.shard_count": "4",
        "datalake.producer.account": "444455556666",
        "datalake.notifications.alarm_emails": '["oncall@example.com"]',
        "unrelated": "x",
    }
    cfg = config.load(context)
    assert cfg.stream.shard_count == 4
    assert cfg.producer.account == "444455556666"
    assert cfg.notifications.alarm_emails == ("oncall@example.com",)
    # The base object is not modified by the override.
    assert BASE["stream"]["shard_count"] == 10


def test_whole_object_can_be_passed_as_json_string():
    cfg = config.load({config.CONTEXT_KEY: json.dumps(BASE)})
    assert cfg == config.from_dict(BASE)


def test_bad_override_is_reported_like_any_bad_value():
    with pytest.raises(config.ConfigError, match=r"datalake\.stream\.retention_hours = 1:"):
        config.load({config.CONTEXT_KEY: BASE, "datalake.stream.retention_hours": "1"})


def test_sandbox_puts_both_halves_in_one_account():
    cfg = config.from_dict(BASE).for_sandbox("444455556666", "us-east-1")
    assert cfg.consumer == cfg.producer == config.Environment("444455556666", "us-east-1")
    assert cfg.same_account
    assert cfg.network.availability_zones == ("us-east-1a", "us-east-1b")


def test_sandbox_account_is_validated():
    with pytest.raises(config.ConfigError, match=r"sandbox\.account = 'abc'"):
        config.from_dict(BASE).for_sandbox("abc")


def test_transform_concurrency_follows_firehose_limit():
    cfg = config.from_dict(_with("stream.shard_count", 3))
    assert cfg.reserved_transform_concurrency == 15


def test_on_demand_stream_reserves_nothing():
    cfg = config.from_dict(_with("stream.mode", "ON_DEMAND"))
    assert cfg.reserved_transform_concurrency is None


def test_reservation_must_fit_the_account_quota():
    raw = _with("stream.shard_count", 181)  # 905 reserved > 1000 - 100
    (problem,) = _problems(raw)
    assert problem.startswith("datalake.stream.shard_count = 181:")
    assert "datalake.transform.account_concurrency_quota = 1000" in problem and "at most 900" in problem
    raw["transform"]["account_concurrency_quota"] = 2000
    assert config.from_dict(raw).reserved_transform_concurrency == 905
    # A new account's quota of 10 cannot hold any reservation; on-demand mode needs none.
    small = _with("transform.account_concurrency_quota", 10)
    assert "at most 0 reservable" in _problems(small)[0]
    small["stream"]["mode"] = "ON_DEMAND"
    assert config.from_dict(small).reserved_transform_concurrency is None


def test_partition_follows_region():
    assert config.Environment("111111111111", "cn-north-1").partition == "aws-cn"
    assert config.Environment("111111111111", "us-gov-west-1").partition == "aws-us-gov"
    assert config.Environment("111111111111", "eu-west-1").partition == "aws"


def test_app_reports_bad_config_without_traceback(tmp_path):
    context = {config.CONTEXT_KEY: _with("stream.shard_count", 0)}
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "datalake.stream.shard_count = 0: must be a whole number from 1 to 500" in result.stderr
    assert "Traceback" not in result.stderr
