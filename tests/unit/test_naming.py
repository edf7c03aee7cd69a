"""Shared names: deterministic, valid for their services, and derived only from configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared import config, naming

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cfg() -> config.AppConfig:
    return config.from_dict(json.loads((ROOT / "cdk.json").read_text())["context"][config.CONTEXT_KEY])


def test_bucket_names_fit_s3_rules_even_at_the_longest_prefix_and_region(cfg):
    import dataclasses

    longest = dataclasses.replace(cfg, prefix="a" * 20, consumer=config.Environment("123456789012", "ap-southeast-4"))
    for name in (naming.data_lake_bucket_name(longest), naming.access_log_bucket_name(longest)):
        assert 3 <= len(name) <= 63, name
        assert name == name.lower() and ".." not in name and not name.endswith("-")


def test_role_name_fits_iam_limit(cfg):
    import dataclasses

    longest = dataclasses.replace(cfg, prefix="a" * 20, producer=config.Environment("123456789012", "ap-southeast-4"))
    assert len(naming.delivery_role_name(longest)) <= 64


def test_arns_are_built_from_the_right_account(cfg):
    assert naming.delivery_role_arn(cfg) == f"arn:aws:iam::{cfg.producer.account}:role/{naming.delivery_role_name(cfg)}"
    assert naming.data_lake_key_alias_arn(cfg) == (
        f"arn:aws:kms:{cfg.consumer.region}:{cfg.consumer.account}:{naming.data_lake_key_alias(cfg)}"
    )
    assert naming.data_lake_bucket_arn(cfg) == f"arn:aws:s3:::{naming.data_lake_bucket_name(cfg)}"


def test_partition_is_carried_into_arns(cfg):
    import dataclasses

    china = dataclasses.replace(
        cfg,
        consumer=config.Environment("222222222222", "cn-north-1"),
        producer=config.Environment("333333333333", "cn-north-1"),
    )
    assert naming.delivery_role_arn(china).startswith("arn:aws-cn:iam::333333333333:")
    assert naming.data_lake_bucket_arn(china).startswith("arn:aws-cn:s3:::")


def test_firehose_prefixes(cfg):
    assert naming.data_prefix(cfg).startswith(f"data/{cfg.table.name}/year=!{{timestamp:yyyy}}/")
    # An error prefix is mandatory with expressions and must carry the error type.
    assert "!{firehose:error-output-type}" in naming.error_prefix(cfg)
    assert naming.delivery_prefixes(cfg) == [f"{k}/{cfg.table.name}/" for k in ("data", "errors", "raw")]
    for prefix in (naming.data_prefix(cfg), naming.error_prefix(cfg), naming.raw_backup_prefix(cfg)):
        assert any(prefix.startswith(p) for p in naming.delivery_prefixes(cfg))
        assert prefix.endswith("hour=!{timestamp:HH}/")
