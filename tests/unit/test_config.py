"""Configuration: every rule rejects a bad value with one line naming the key, the value and what is allowed;
checks spanning several keys catch what CloudFormation would reject. Built from tests/configs.py, never cdk.json."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shared import config, naming
from tests import configs

ROOT = Path(__file__).resolve().parents[2]
BASE = configs.default()


def _with(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    raw = copy.deepcopy(base or BASE)
    node: Any = raw
    *parents, leaf = path.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    if leaf.isdigit():
        node[int(leaf)] = value
    else:
        node[leaf] = value
    return raw


def _problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(config.ConfigError) as caught:
        config.from_dict(raw)
    return caught.value.problems


@pytest.mark.parametrize("name", list(configs.VARIANTS))
def test_every_suite_configuration_is_valid(name):
    cfg = config.from_dict(configs.variant(name))
    assert cfg.tables


def test_config_is_frozen():
    cfg = config.from_dict(BASE)
    with pytest.raises(ValidationError):
        cfg.prefix = "other"  # type: ignore[misc]


def test_defaults_fill_optional_sections():
    raw = {k: v for k, v in BASE.items() if k not in ("delivery", "transform", "data_lake", "notifications")}
    raw["tables"] = [{"name": "orders", "partition_key": "pk"}]
    cfg = config.from_dict(raw)
    (table,) = cfg.tables
    assert table.stream == config.StreamSettings(mode="PROVISIONED", shard_count=10, retention_hours=24)
    assert (table.sort_key, table.partition_key_type, table.existing_table_name) == (None, "S", None)
    assert cfg.delivery_for(table) == config.DeliverySettings(
        buffer_interval_seconds=120, buffer_size_mib=1, compression="GZIP"
    )
    assert cfg.transform.reserved_concurrency is None


def test_table_delivery_overrides_fall_back_to_app_defaults():
    raw = configs.variant("two-tables")
    cfg = config.from_dict(raw)
    orders, customers = cfg.tables
    assert cfg.delivery_for(orders) == cfg.delivery
    assert cfg.delivery_for(customers) == config.DeliverySettings(
        buffer_interval_seconds=60, buffer_size_mib=cfg.delivery.buffer_size_mib, compression="UNCOMPRESSED"
    )


BAD_VALUES = [
    ("prefix", "Bad_Prefix", "lower-case"),
    ("prefix", "x", "3-20 characters"),
    ("tooling.account", "12345", "12-digit"),
    ("tooling.region", "", "region"),
    ("consumer.account", "22222222222a", "12-digit"),
    ("producer.account", 333333333333, "12-digit AWS account ID, as a string"),
    ("source.repository", "no-slash", "'owner/name'"),
    ("source.branch", "bad..branch", "git branch"),
    ("source.branch", "refs/heads/main", "without 'refs/heads/'"),
    ("source.connection_arn", "arn:aws:s3:::bucket", "CodeConnections ARN"),
    ("tables.0.name", "Orders-Table", "lower-case"),
    ("tables.0.existing_table_name", "x", "existing table"),
    ("tables.0.partition_key", "", "attribute name"),
    ("tables.0.partition_key_type", "X", "['S', 'N', 'B']"),
    ("tables.0.sort_key", "has space", "attribute name"),
    ("tables.0.sort_key_type", "BOOL", "['S', 'N', 'B']"),
    ("tables.0.stream.mode", "SERVERLESS", "['PROVISIONED', 'ON_DEMAND']"),
    ("tables.0.stream.shard_count", 0, "from 1 to 500"),
    ("tables.0.stream.shard_count", "10", "whole number"),
    ("tables.0.stream.retention_hours", 12, "from 24 to 8760"),
    ("tables.0.delivery.compression", "ZIP", "'GZIP'"),
    ("tables.0.delivery.buffer_size_mib", 0, "from 1 to 128"),
    ("delivery.buffer_interval_seconds", 901, "from 0 to 900"),
    ("delivery.buffer_size_mib", 129, "from 1 to 128"),
    ("delivery.compression", "ZIP", "['GZIP', 'HADOOP_SNAPPY', 'UNCOMPRESSED']"),
    ("transform.memory_mb", 64, "from 128 to 10240"),
    ("transform.timeout_seconds", 30, "from 60 to 300"),
    ("transform.timeout_seconds", True, "whole number"),
    ("transform.reserved_concurrency", 0, "null (no reservation)"),
    ("transform.account_concurrency_quota", 5, "from 10 to 1000000"),
    ("network.vpc_cidr", "10.0.0.0/8", "/16 to /24"),
    ("network.vpc_cidr", "8.8.8.0/24", "private IPv4 CIDR"),
    ("notifications.alarm_emails", "ops@example.com", "list of e-mail"),
    ("data_lake.noncurrent_version_expiration_days", 0, "from 1 to 3650"),
    ("data_lake.access_log_expiration_days", -5, "from 1 to 3650"),
    ("athena.bytes_scanned_cutoff_mib", 1, "from 10 to"),
    ("backup.daily_retention_days", 0, "from 1 to 3650"),
    ("backup.copy_to_vault_arn", "vault", "backup vault ARN"),
    ("compliance.packs", [], "non-empty list"),
]


@pytest.mark.parametrize(("key", "value", "allowed"), BAD_VALUES, ids=[f"{k}={v!r}" for k, v, _ in BAD_VALUES])
def test_bad_value_names_key_value_and_allowed(key, value, allowed):
    problems = _problems(_with(key, value))
    assert len(problems) == 1, problems
    (problem,) = problems
    dotted = "datalake." + re.sub(r"\.(\d+)", r"[\1]", key)
    assert problem.startswith(f"{dotted} = {value!r}:"), problem
    assert allowed in problem


def test_list_items_are_named_by_index():
    (problem,) = _problems(_with("notifications.approval_emails", ["ops@example.com", "not-an-email"]))
    assert problem.startswith("datalake.notifications.approval_emails[1] = 'not-an-email':")


def test_bad_column_type_names_the_column():
    (problem,) = _problems(_with("tables.0.columns", {"total": "number"}))
    assert problem.startswith("datalake.tables[0].columns.total = 'number': must be an Athena column type")


def test_unknown_keys_are_named_with_the_allowed_ones_and_a_suggestion():
    raw = _with("tables.0.stream.shards", 4)
    raw["typo"] = 1
    problems = _problems(raw)
    assert any(
        p.startswith("datalake.tables[0].stream.shards: unknown key (did you mean 'shard_count'?)") for p in problems
    ), problems
    assert any(p.startswith("datalake.typo: unknown key") for p in problems)


def test_old_single_table_layout_is_explained():
    raw = copy.deepcopy(BASE)
    raw["table"] = raw.pop("tables")[0]
    problems = _problems(raw)
    assert any(p.startswith("datalake.table: unknown key (did you mean 'tables'?)") for p in problems), problems
    assert any(p.startswith("datalake.tables: missing") for p in problems), problems


def test_section_must_be_an_object():
    (problem,) = _problems(_with("delivery", 10))
    assert problem.startswith("datalake.delivery = 10: must be an object")


def test_tables_must_not_be_empty():
    (problem,) = _problems(_with("tables", []))
    assert problem.startswith("datalake.tables = []: must be a non-empty list")


def test_all_problems_are_reported_at_once():
    raw = _with("producer.account", "x")
    raw["tables"][0]["stream"]["shard_count"] = 9999
    raw["delivery"]["compression"] = "LZ4"
    with pytest.raises(config.ConfigError) as caught:
        config.from_dict(raw)
    message = str(caught.value)
    for key in ("datalake.producer.account", "datalake.tables[0].stream.shard_count", "datalake.delivery.compression"):
        assert key in message
    assert "(3)" in message


# --- checks spanning several keys -------------------------------------------------------------------------
def test_unknown_region_is_refused_with_a_suggestion():
    raw = _with("tooling.region", "eu-west-9")
    problems = _problems(raw)
    assert (
        problems[0]
        == "datalake.tooling.region = 'eu-west-9': not a region this CDK version knows (did you mean 'eu-west-3'?)"
    )


def test_consumer_region_must_equal_producer_region():
    raw = copy.deepcopy(BASE)
    raw["consumer"]["region"] = "eu-central-1"
    (problem,) = _problems(raw)
    assert problem.startswith("datalake.consumer.region = 'eu-central-1': must equal datalake.producer.region")


def test_connection_must_be_in_the_tooling_account_and_region():
    raw = _with("source.connection_arn", configs.CONNECTION.format(region="us-east-1", account="999999999999"))
    (problem,) = _problems(raw)
    assert problem.startswith("datalake.source.connection_arn = ")
    assert "(111111111111, eu-west-1)" in problem and "(999999999999, us-east-1)" in problem


def test_availability_zones_must_belong_to_the_producer_region():
    (problem,) = _problems(_with("network.availability_zones", ["us-east-1a", "us-east-1b"]))
    assert problem.startswith("datalake.network.availability_zones = ['us-east-1a', 'us-east-1b']:")
    assert "producer region 'eu-west-1'" in problem
    assert "2 to 6 distinct" in _problems(_with("network.availability_zones", ["eu-west-1a", "eu-west-1a"]))[0]


def test_table_names_are_unique():
    raw = copy.deepcopy(BASE)
    raw["tables"].append(copy.deepcopy(raw["tables"][0]))
    (problem,) = _problems(raw)
    assert problem == "datalake.tables[].name = 'orders': appears more than once; table names must be unique"


def test_longest_derived_names_must_fit_and_the_error_names_the_keys_to_shorten():
    raw = _with("prefix", "a" * 20)
    raw["tables"][0]["name"] = "b" * 39
    problems = _problems(raw)
    assert any(
        p.startswith(f"datalake.tables[0].name = '{'b' * 39}': the Firehose delivery stream name") for p in problems
    ), problems
    assert all("shorten datalake.prefix (20) or datalake.tables[0].name (39)" in p for p in problems)
    # Every name the configuration derives is checked against its limit.
    cfg = config.from_dict(BASE)
    for what, value, limit in [*naming.lake(cfg).limited(), *naming.table(cfg, cfg.tables[0]).limited()]:
        assert len(value) <= limit, what


def test_reservations_sum_over_tables_and_must_fit_the_quota():
    raw = configs.variant("two-tables")
    raw["transform"] = {"reserved_concurrency": 451, "account_concurrency_quota": 1000}
    (problem,) = _problems(raw)
    assert problem.startswith("datalake.transform.reserved_concurrency = 451: 2 table(s) reserve 902")
    assert "leaves at most 900 reservable" in problem
    raw["transform"]["account_concurrency_quota"] = 1002
    assert config.from_dict(raw).transform.reserved_concurrency == 451


def test_a_reservation_must_cover_firehoses_invocations_per_shard():
    raw = _with("transform.reserved_concurrency", 49)  # the default table has 10 provisioned shards
    (problem,) = _problems(raw)
    assert problem.startswith("datalake.transform.reserved_concurrency = 49: table 'orders' has 10 shards")
    assert "at least 50" in problem
    assert config.from_dict(_with("transform.reserved_concurrency", 50)).transform.reserved_concurrency == 50


def test_no_reservation_by_default():
    assert config.from_dict(BASE).transform.reserved_concurrency is None


# --- loading from the CDK context ------------------------------------------------------------------------
def test_missing_context_is_explained():
    with pytest.raises(config.ConfigError, match="datalake: missing"):
        config.load({})


def test_dotted_overrides_apply_on_top_of_the_context_object():
    context = {
        config.CONTEXT_KEY: BASE,
        "datalake.tables.0.stream.shard_count": "4",
        "datalake.producer.account": "444455556666",
        "datalake.notifications.alarm_emails": '["oncall@example.com"]',
        "unrelated": "x",
    }
    cfg = config.load(context)
    assert cfg.tables[0].stream.shard_count == 4
    assert cfg.producer.account == "444455556666"
    assert cfg.notifications.alarm_emails == ("oncall@example.com",)
    assert BASE["tables"][0]["stream"]["shard_count"] == 10  # the base object is not modified


def test_whole_object_can_be_passed_as_json_string():
    assert config.load({config.CONTEXT_KEY: json.dumps(BASE)}) == config.from_dict(BASE)


def test_a_problem_caused_by_an_override_says_so():
    context = {config.CONTEXT_KEY: BASE, "datalake.tables.0.stream.retention_hours": "1"}
    with pytest.raises(config.ConfigError) as caught:
        config.load(context, {config.CONTEXT_KEY: BASE})
    (problem,) = caught.value.problems
    assert problem.startswith("datalake.tables[0].stream.retention_hours = 1:")
    assert problem.endswith("(set on the command line: -c datalake.tables.0.stream.retention_hours=...)")
    assert "cdk.json context with -c overrides" in str(caught.value)


def test_a_problem_in_the_file_does_not_blame_the_command_line():
    raw = _with("prefix", "X")
    with pytest.raises(config.ConfigError) as caught:
        config.load({config.CONTEXT_KEY: raw}, {config.CONTEXT_KEY: raw})
    assert "command line" not in str(caught.value)
    assert "in cdk.json context" in str(caught.value)


@pytest.mark.parametrize("key", ["sandbox_regoin", "sandbox-account", "datalake_prefix", "Sandbox_Account"])
def test_context_keys_that_look_like_ours_are_errors(key):
    with pytest.raises(config.ConfigError) as caught:
        config.load({config.CONTEXT_KEY: BASE, key: "x"})
    (problem,) = caught.value.problems
    assert problem.startswith(f"context key {key!r}: not a key of this app; did you mean")


def test_unrelated_and_cdk_context_keys_are_left_alone():
    cfg = config.load({config.CONTEXT_KEY: BASE, "@aws-cdk/core:foo": True, "aws:cdk:enable-path-metadata": True})
    assert cfg.prefix == BASE["prefix"]


def test_sandbox_puts_both_halves_in_one_account_under_its_own_prefix():
    cfg = config.from_dict(BASE).for_sandbox("444455556666", "us-east-1", "alice")
    assert cfg.consumer == cfg.producer == config.Environment(account="444455556666", region="us-east-1")
    assert cfg.same_account and cfg.prefix == "alice"
    assert cfg.network.availability_zones == ("us-east-1a", "us-east-1b")


def test_sandbox_account_is_validated():
    with pytest.raises(config.ConfigError, match=r"datalake\.consumer\.account = 'abc'"):
        config.from_dict(BASE).for_sandbox("abc")


def test_partition_follows_region():
    assert config.Environment(account="111111111111", region="cn-north-1").partition == "aws-cn"
    assert config.Environment(account="111111111111", region="us-gov-west-1").partition == "aws-us-gov"
    assert config.Environment(account="111111111111", region="eu-west-1").partition == "aws"


def test_app_reports_bad_config_without_traceback(tmp_path):
    context = {config.CONTEXT_KEY: _with("tables.0.stream.shard_count", 0)}
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "datalake.tables[0].stream.shard_count = 0: must be a whole number from 1 to 500" in result.stderr
    assert "Traceback" not in result.stderr


# --- the configuration reference (docs/configuration.md) is the model's ---------------------------------------
CONFIG_DOC = ROOT / "docs" / "configuration.md"
TABLE_START, TABLE_END = "<!-- config-table:start -->", "<!-- config-table:end -->"


def _documented_rows() -> list[tuple[str, ...]]:
    text = CONFIG_DOC.read_text(encoding="utf-8")
    assert text.count(TABLE_START) == 1 and text.count(TABLE_END) == 1, f"{CONFIG_DOC} needs one table between markers"
    section = text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0]
    lines = section.strip().splitlines()
    assert lines[:2] == ["| key | default | allowed |", "|---|---|---|"], lines[:2]
    rows = []
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        rows.append(tuple(c.strip("`") for c in cells))
    return rows


def test_configuration_reference_table_matches_the_model():
    expected = [(key, default, allowed.replace("|", "\\|")) for key, default, allowed in config.reference_rows()]
    table = "\n".join(f"| `{k}` | `{d}` | {a} |" for k, d, a in expected)
    assert _documented_rows() == expected, f"the table in {CONFIG_DOC.name} should read (after its header):\n{table}"


def test_documented_error_example_is_what_the_loader_says():
    """docs/configuration.md shows a two-mistake message; the values in it are parsed from the page, the message is
    the loader's own, so the example cannot drift from the code."""
    text = CONFIG_DOC.read_text(encoding="utf-8")
    (example,) = re.findall(r"^```\n(invalid configuration in .*?)\n```", text, flags=re.MULTILINE | re.DOTALL)
    raw = copy.deepcopy(BASE)
    for key, value in re.findall(r"^  - datalake\.(\S+) = (\S+):", example, flags=re.MULTILINE):
        node: Any = raw
        *parents, leaf = re.sub(r"\[(\d+)\]", r".\1", key).split(".")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[leaf] = json.loads(value)
    with pytest.raises(config.ConfigError) as raised:
        config.from_dict(raw)
    assert str(raised.value) == example


def test_known_regions_are_exactly_the_ones_cdk_has_facts_for():
    from aws_cdk.region_info import RegionInfo

    assert tuple(sorted(r.name for r in RegionInfo.regions)) == config.KNOWN_REGIONS


def test_nulls_dropped_on_the_way_through_the_cdk_context_do_not_look_like_an_override():
    raw = _with("prefix", "X")
    raw["tables"][0]["sort_key"] = None
    seen_by_the_app = copy.deepcopy(raw)
    del seen_by_the_app["tables"][0]["sort_key"]  # jsii drops null-valued keys of context objects
    with pytest.raises(config.ConfigError) as caught:
        config.load({config.CONTEXT_KEY: seen_by_the_app}, {config.CONTEXT_KEY: raw})
    assert "command line" not in str(caught.value)
