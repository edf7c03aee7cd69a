"""Shared names: deterministic, per table, valid for their services, and derived only from configuration."""

from __future__ import annotations

import copy

import pytest

from shared import config, naming
from tests import configs


@pytest.fixture
def cfg() -> config.AppConfig:
    return config.from_dict(configs.variant("two-tables"))


def _longest() -> config.AppConfig:
    raw = copy.deepcopy(configs.default())
    region = "ap-southeast-4"
    raw.update(prefix="a" * 20, tooling={"account": "123456789012", "region": region})
    raw["consumer"] = raw["producer"] = {"account": "123456789012", "region": region}
    raw["source"]["connection_arn"] = configs.CONNECTION.format(region=region, account="123456789012")
    raw["network"]["availability_zones"] = [f"{region}a", f"{region}b"]
    return config.from_dict(raw)


def test_bucket_names_fit_s3_rules_even_at_the_longest_prefix_and_region():
    lake = naming.lake(_longest())
    for name in (lake.bucket, lake.access_log_bucket, lake.results_bucket):
        assert 3 <= len(name) <= 63, name
        assert name == name.lower() and ".." not in name and not name.endswith("-")


def test_every_per_table_name_is_distinct_across_tables(cfg):
    orders, customers = (naming.table(cfg, spec) for spec in cfg.tables)
    for field in (
        "table",
        "stream",
        "delivery_stream",
        "delivery_role",
        "smoke_writer_role",
        "alarm_prefix",
        "dashboard",
        "metrics_namespace",
        "glue_table",
        "lines_table",
        "history_view",
        "current_view",
    ):
        assert getattr(orders, field) != getattr(customers, field), field
    assert set(orders.roots).isdisjoint(customers.roots)
    # Delivery roles are unique per table and region (IAM is global per account).
    assert cfg.producer.region in orders.delivery_role and orders.key in orders.delivery_role


def test_an_existing_table_keeps_its_own_name(cfg):
    customers = naming.table(cfg, cfg.table("customers"))
    assert customers.table == "legacy-customers-prod"
    assert customers.stream == f"{cfg.prefix}-customers-changes"


def test_arns_are_built_from_the_right_account(cfg):
    lake = naming.lake(cfg)
    names = naming.table(cfg, cfg.tables[0])
    assert names.delivery_role_arn == f"arn:aws:iam::{cfg.producer.account}:role/{names.delivery_role}"
    assert lake.key_alias_arn == f"arn:aws:kms:{cfg.consumer.region}:{cfg.consumer.account}:{lake.key_alias}"
    assert lake.bucket_arn == f"arn:aws:s3:::{lake.bucket}"
    assert names.table_arn == f"arn:aws:dynamodb:{cfg.producer.region}:{cfg.producer.account}:table/{names.table}"


def test_partition_is_carried_into_arns():
    raw = configs.default()
    region = "cn-north-1"
    for side in ("tooling", "consumer", "producer"):
        raw[side]["region"] = region
    raw["source"]["connection_arn"] = (
        f"arn:aws-cn:codeconnections:{region}:111111111111:connection/" + (configs.CONNECTION.rsplit("/", 1)[1])
    )
    raw["network"]["availability_zones"] = [f"{region}a", f"{region}b"]
    china = config.from_dict(raw)
    assert naming.table(china, china.tables[0]).delivery_role_arn.startswith("arn:aws-cn:iam::333333333333:")
    assert naming.lake(china).bucket_arn.startswith("arn:aws-cn:s3:::")


def test_firehose_prefixes(cfg):
    names = naming.table(cfg, cfg.tables[0])
    assert names.data_prefix.startswith(f"data/{names.key}/year=!{{timestamp:yyyy}}/")
    # An error prefix is mandatory with expressions and must carry the error type.
    assert "!{firehose:error-output-type}" in names.error_prefix
    assert names.roots == tuple(f"{k}/{names.key}/" for k in ("data", "errors", "raw"))
    for prefix in (names.data_prefix, names.error_prefix, names.raw_prefix):
        assert any(prefix.startswith(p) for p in names.roots)
        assert prefix.endswith("hour=!{timestamp:HH}/")
