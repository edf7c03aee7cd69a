"""Configuration mistakes a newcomer makes (issue 16), each refused with exactly one line naming the key, the value
and what is allowed; every documented bound, top-level and per-table (issue 20); and a property test: no
configuration value, however malformed, gets anything but a ConfigError out of the loader."""

from __future__ import annotations

import copy
import json
import os
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.columns import table_columns, trino_type
from shared import config, naming
from tests import configs

BASE = configs.default()
PACKS = list(config.NAG_PACKS)


def _with(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """``base`` (the default configuration) with the dotted ``path`` (list indexes as numbers) set to ``value``."""
    raw = copy.deepcopy(base or BASE)
    node: Any = raw
    *parents, leaf = path.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[int(leaf) if leaf.isdigit() else leaf] = value
    return raw


def _problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(config.ConfigError) as caught:
        config.from_dict(raw)
    return caught.value.problems


def _only(raw: dict[str, Any]) -> str:
    problems = _problems(raw)
    assert len(problems) == 1, problems
    return problems[0]


# --- issue 16: the cases a newcomer met -------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["alarm_emails", "approval_emails"])
def test_a_repeated_e_mail_is_named_instead_of_a_jsii_traceback(key):
    raw = _with(f"notifications.{key}", ["oncall@example.com", "team@example.com", "oncall@example.com"])
    assert _only(raw) == (
        f"datalake.notifications.{key}[2] = 'oncall@example.com': the same address as {key}[0]; list each address once"
    )


def test_e_mails_differing_only_in_case_are_one_address():
    raw = _with("notifications.alarm_emails", ["oncall@example.com", "OnCall@Example.com"])
    assert _only(raw) == (
        "datalake.notifications.alarm_emails[1] = 'OnCall@Example.com': the same address as alarm_emails[0] "
        "('oncall@example.com'); list each address once"
    )


def test_one_address_on_both_topics_is_fine():
    raw = _with("notifications", {"approval_emails": ["ops@example.com"], "alarm_emails": ["ops@example.com"]})
    assert config.from_dict(raw).notifications.alarm_emails == ("ops@example.com",)


def test_a_shard_count_with_on_demand_is_refused_not_dropped():
    raw = _with("tables.0.stream", {"mode": "ON_DEMAND", "shard_count": 50})
    assert _only(raw) == (
        "datalake.tables[0].stream.shard_count = 50: applies only to mode 'PROVISIONED'; with mode 'ON_DEMAND' "
        "Kinesis sizes the stream itself: remove shard_count or set mode to 'PROVISIONED'"
    )


def test_on_demand_without_a_shard_count_and_provisioned_with_one_are_accepted():
    on_demand = config.from_dict(_with("tables.0.stream", {"mode": "ON_DEMAND"})).tables[0].stream
    assert on_demand.mode == "ON_DEMAND"
    provisioned = config.from_dict(_with("tables.0.stream", {"mode": "PROVISIONED", "shard_count": 50}))
    assert provisioned.tables[0].stream.shard_count == 50


def test_the_sandbox_of_an_on_demand_table_is_valid():
    # The sandbox rebuilds the configuration from what was set, not from every default written out.
    cfg = config.from_dict(configs.variant("on-demand")).for_sandbox("444455556666")
    assert cfg.tables[0].stream.mode == "ON_DEMAND"


def test_daily_backups_kept_longer_than_monthly_ones_are_refused():
    raw = _with("backup", {"daily_retention_days": 400, "monthly_retention_days": 30})
    assert _only(raw) == (
        "datalake.backup.daily_retention_days = 400: must not exceed datalake.backup.monthly_retention_days (30); "
        "monthly recovery points are meant to outlive daily ones"
    )
    # Only the monthly value set, below the daily default (35): the key that was set is the one named.
    assert _only(_with("backup", {"monthly_retention_days": 30})) == (
        "datalake.backup.monthly_retention_days = 30: must be at least datalake.backup.daily_retention_days (35, "
        "the default); monthly recovery points are meant to outlive daily ones"
    )
    equal = config.from_dict(_with("backup", {"daily_retention_days": 30, "monthly_retention_days": 30}))
    assert equal.backup.daily_retention_days == equal.backup.monthly_retention_days == 30
    assert "daily_retention_days = 31" in _only(
        _with("backup", {"daily_retention_days": 31, "monthly_retention_days": 30})
    )


def test_a_null_retention_is_an_error_not_the_default():
    assert _only(_with("tables.0.stream.retention_hours", None)) == (
        "datalake.tables[0].stream.retention_hours = null: must be a whole number from 24 to 8760 (how long a "
        "broken delivery may last before changes are lost)"
    )


def _concrete(key: str) -> str:
    return key.replace("[]", ".0")


NULL_REFUSED = [
    (key, allowed)
    for key, default, allowed in config.reference_rows()
    if default not in ("null", "required when set") and not allowed.startswith("null")
]


@pytest.mark.parametrize(("key", "allowed"), NULL_REFUSED, ids=[k for k, _ in NULL_REFUSED])
def test_null_for_any_key_that_cannot_be_null_names_the_key(key, allowed):
    dotted = "datalake." + re.sub(r"\[\]", "[0]", key)
    assert _only(_with(_concrete(key), None)) == f"{dotted} = null: must be {allowed}"


def test_a_null_survives_the_way_from_the_cli_to_the_model():
    # The CLI's own context (what app.cli_context reads) keeps nulls; load() must then refuse them.
    context = {config.CONTEXT_KEY: _with("tables.0.stream.retention_hours", None)}
    with pytest.raises(config.ConfigError) as caught:
        config.load(json.loads(json.dumps(context)))
    assert caught.value.problems == [
        "datalake.tables[0].stream.retention_hours = null: must be a whole number from 24 to 8760 (how long a "
        "broken delivery may last before changes are lost)"
    ]


@pytest.mark.parametrize(
    ("key", "written"),
    [("_event_name", "%5Fevent_name"), ("_version", "%5Fversion"), ("_is_deleted", "%5Fis_deleted")],
)
def test_a_column_key_in_the_metadata_namespace_is_refused_with_its_spelling(key, written):
    assert _only(_with("tables.0.columns", {key: "string"})) == (
        f"datalake.tables[0].columns: the key '{key}' starts with '_', which only the transform's metadata columns "
        f"do (every table has them, see docs/transform-contract.md): an item attribute '{key}' is written "
        f"'{written}', use that key"
    )
    # The spelling the error suggests is accepted.
    assert written in config.from_dict(_with("tables.0.columns", {written: "string"})).tables[0].columns


@pytest.mark.parametrize("where", ["tooling", "consumer", "producer"])
def test_a_region_typo_is_one_line_with_a_suggestion_and_nothing_built_from_it(where):
    raw = _with(f"{where}.region", "eu-centrl-1")
    assert _problems(raw) == [
        f"datalake.{where}.region = 'eu-centrl-1': not a region this CDK version knows (did you mean 'eu-central-1'?)"
    ]


def test_a_replica_region_typo_is_caught_too():
    replica = {
        "account": "444444444444",
        "region": "eu-centrl-1",
        "bucket_name": "replica-bucket",
        "key_arn": "arn:aws:kms:eu-central-1:444444444444:key/0b8e2c4d-1f3a-4e5b-9c7d-2a6f8e0b1c3d",
    }
    assert _only(_with("data_lake.replica", replica)) == (
        "datalake.data_lake.replica.region = 'eu-centrl-1': not a region this CDK version knows (did you mean "
        "'eu-central-1'?)"
    )


def test_a_sandbox_region_typo_names_the_context_key():
    with pytest.raises(config.ConfigError) as caught:
        config.from_dict(BASE).for_sandbox("444455556666", "eu-centrl-1")
    assert caught.value.problems == [
        "sandbox_region = 'eu-centrl-1': not a region this CDK version knows (did you mean 'eu-central-1'?)"
    ]


def test_an_invalid_e_mail_is_named_by_index_and_value():
    raw = _with("notifications.alarm_emails", ["ops@example.com", "oncall(at)example.com"])
    assert _only(raw) == (
        "datalake.notifications.alarm_emails[1] = 'oncall(at)example.com': must be an e-mail address such as "
        "'ops@example.com'"
    )


def test_a_backup_vault_arn_of_the_wrong_shape_shows_the_shape():
    raw = _with("backup.copy_to_vault_arn", "arn:aws:backup:eu-west-1:444444444444:vault/central")
    assert _only(raw) == (
        "datalake.backup.copy_to_vault_arn = 'arn:aws:backup:eu-west-1:444444444444:vault/central': must be null "
        "or a backup vault ARN in another account to copy every recovery point to; shaped "
        "'arn:aws:backup:<region>:<12-digit account>:backup-vault:<vault name>'"
    )


@pytest.mark.parametrize("key", ["", "   "])
def test_an_empty_column_key_reads_as_a_sentence(key):
    assert _only(_with("tables.0.columns", {key: "string"})) == (
        f"datalake.tables[0].columns: the key {key!r} is empty: a column key is 1-255 characters, the key as the "
        "transform writes it, e.g. 'total'"
    )


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("shipTo..city", "has an empty part between dots"),
        ("shipTo.", "has an empty part between dots"),
        ("100%", "has a '%' that starts no escape"),
        ("x" * 256, "is 256 characters: a column key has at most 255"),
    ],
)
def test_column_keys_the_transform_never_writes_are_refused(key, why):
    line = _only(_with("tables.0.columns", {key: "string"}))
    assert line.startswith(f"datalake.tables[0].columns: the key {key!r} {why}"), line


def test_an_unknown_pack_is_named_with_the_list_of_packs():
    assert _only(_with("compliance.packs", ["AwsSolutions", "CIS"])) == (
        f"datalake.compliance.packs[1] = 'CIS': must be one of {PACKS}"
    )


def test_a_pack_listed_twice_is_refused():
    assert _only(_with("compliance.packs", ["AwsSolutions", "Serverless", "AwsSolutions"])) == (
        "datalake.compliance.packs[2] = 'AwsSolutions': listed twice"
    )


@pytest.mark.parametrize(
    ("key", "value", "line"),
    [
        (
            "tables.0.stream.mode",
            "on_demand",
            "datalake.tables[0].stream.mode = 'on_demand': must be one of ['PROVISIONED', 'ON_DEMAND'] (did you mean "
            "'ON_DEMAND'?)",
        ),
        (
            "compliance.packs",
            ["awssolutions"],
            f"datalake.compliance.packs[0] = 'awssolutions': must be one of {PACKS} (did you mean 'AwsSolutions'?)",
        ),
        (
            "producer.region",
            "EU-WEST-1",
            "datalake.producer.region = 'EU-WEST-1': not a region this CDK version knows (did you mean 'eu-west-1'?)",
        ),
    ],
)
def test_a_near_miss_of_a_fixed_choice_gets_a_suggestion(key, value, line):
    assert _only(_with(key, value)) == line


# --- issue 20: every bound pinned, top-level and per-table --------------------------------------------------------
def test_a_single_availability_zone_is_refused():
    assert _only(_with("network.availability_zones", ["eu-west-1a"])) == (
        "datalake.network.availability_zones = ['eu-west-1a']: must list 2 to 6 distinct zones of the producer "
        "region 'eu-west-1', e.g. ['eu-west-1a', 'eu-west-1b']"
    )
    seven = [f"eu-west-1{z}" for z in "abcdefg"]
    assert _only(_with("network.availability_zones", seven)).startswith(
        f"datalake.network.availability_zones = {seven}"
    )
    assert len(config.from_dict(_with("network.availability_zones", seven[:6])).network.availability_zones) == 6


def test_a_zone_entry_of_the_wrong_type_is_named_by_index():
    assert _only(_with("network.availability_zones", ["eu-west-1a", 7])) == (
        "datalake.network.availability_zones[1] = 7: must be a zone name such as 'eu-west-1a'"
    )


BOUNDS = [
    # (key, lowest allowed, highest allowed, allowed text); per-table delivery keys may also be null.
    ("delivery.buffer_size_mib", 1, 128, "a whole number from 1 to 128"),
    ("delivery.buffer_interval_seconds", 0, 900, "a whole number from 0 to 900"),
    ("tables.0.delivery.buffer_size_mib", 1, 128, "null or a whole number from 1 to 128"),
    ("tables.0.delivery.buffer_interval_seconds", 0, 900, "null or a whole number from 0 to 900"),
    ("tables.0.stream.shard_count", 1, 500, "a whole number from 1 to 500 (provisioned mode)"),
    ("transform.memory_mb", 128, 10240, "a whole number from 128 to 10240"),
    ("backup.monthly_retention_days", 30, 36500, "a whole number from 30 to 36500"),
]


@pytest.mark.parametrize(("key", "low", "high", "allowed"), BOUNDS, ids=[b[0] for b in BOUNDS])
def test_both_sides_of_every_bound(key, low, high, allowed):
    dotted = "datalake." + re.sub(r"\.(\d+)", r"[\1]", key)
    for inside in (low, high):
        raw = _with(key, inside)
        if key.startswith("backup."):
            raw["backup"]["daily_retention_days"] = 1
        config.from_dict(raw)
    for outside in (low - 1, high + 1):
        problem = _only(_with(key, outside))
        assert problem.startswith(f"{dotted} = {outside}: must be {allowed}"), problem


OBJECT_KEYS = [
    ("tooling", config.Environment),
    ("source", config.SourceConfig),
    ("tables.0", config.TableSpec),
    ("tables.0.stream", config.StreamSettings),
    ("tables.0.delivery", config.DeliveryOverrides),
    ("delivery", config.DeliverySettings),
    ("transform", config.TransformConfig),
    ("network", config.NetworkConfig),
    ("notifications", config.NotificationConfig),
    ("data_lake", config.DataLakeConfig),
    ("data_lake.replica", config.ReplicaConfig),
    ("athena", config.AthenaConfig),
    ("backup", config.BackupConfig),
    ("compliance", config.ComplianceConfig),
]


@pytest.mark.parametrize(("key", "model"), OBJECT_KEYS, ids=[k for k, _ in OBJECT_KEYS])
@pytest.mark.parametrize("value", [5, "x", ["a"], True])
def test_a_non_object_for_an_object_key_lists_the_keys(key, model, value):
    dotted = "datalake." + re.sub(r"\.(\d+)", r"[\1]", key)
    assert _only(_with(key, value)) == f"{dotted} = {value!r}: must be an object with keys {list(model.model_fields)}"


# --- column types: what the model accepts, the views can translate ------------------------------------------------
@pytest.mark.parametrize(
    "type_",
    [
        "struct<a>",
        "decimal(10,20)",
        "decimal(39,2)",
        "decimal",
        "map<string>",
        "map<array<int>,int>",
        "array<int>>",
        "array<int,int>",
        "varchar(0)",
        "number",
        "struct<a:int",
        "array<>",
    ],
)
def test_column_types_the_catalog_cannot_declare_are_refused(type_):
    line = _only(_with("tables.0.columns", {"total": type_}))
    assert line.startswith(f"datalake.tables[0].columns.total = {type_!r}: must be an Athena column type"), line


@pytest.mark.parametrize(
    "type_",
    [
        "string",
        "DECIMAL(38, 2)",
        "decimal(9,0)",
        "decimal(15)",  # the scale is optional in Athena (0)
        "varchar(65535)",
        "array<struct<a:int,b:map<string,double>>>",
        "map<string,array<bigint>>",
        "struct<x:timestamp>",
    ],
)
def test_accepted_column_types_translate_for_the_views(type_):
    spec = config.from_dict(_with("tables.0.columns", {"total": type_})).tables[0]
    assert [trino_type(c.type) for c in table_columns(spec)]


# --- -c overrides that point nowhere --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "line"),
    [
        (
            "datalake.tables.3.name",
            "-c datalake.tables.3.name: datalake.tables is a list of 1 item(s); the part after it must be an index "
            "from 0 to 0, not '3'",
        ),
        (
            "datalake.tables.orders.name",
            "-c datalake.tables.orders.name: datalake.tables is a list of 1 item(s); the part after it must be an "
            "index from 0 to 0, not 'orders'",
        ),
        ("datalake..prefix", "-c datalake..prefix: a dotted key has no empty parts; e.g. -c datalake.prefix=team"),
    ],
)
def test_an_override_path_that_points_nowhere_is_named(key, line):
    with pytest.raises(config.ConfigError) as caught:
        config.load({config.CONTEXT_KEY: BASE, key: "x"})
    assert caught.value.problems == [line]


# --- property: any malformed configuration gives a ConfigError, never another exception ---------------------------
GARBAGE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["", " ", "_x", "a..b", "%", "eu-centrl-1", "ON_DEMAND", "decimal(1,2)", "struct<a>", "x@y.z"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
EXAMPLES = int(os.environ.get("CONFIG_FUZZ_EXAMPLES", "150"))  # raise it for a deep local run
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value: dict keys and list indexes, parents before children."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


def _at(raw: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        raw = raw[part]
    return raw


@st.composite
def mutated(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    """A suite configuration with up to three random mutations (garbage, null, a key deleted), and optionally a
    last one that makes it surely invalid (an unknown key in an object, an object wrapped in a list); the flag
    says whether that last one was made."""
    raw = configs.variant(draw(st.sampled_from(sorted(configs.VARIANTS))))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        path = draw(st.sampled_from(_paths(raw)[1:]))
        parent, leaf = _at(raw, path[:-1]), path[-1]
        action = draw(st.sampled_from(["garbage", "null", "delete"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[leaf]
        else:
            parent[leaf] = None if action == "null" else draw(GARBAGE)
    # Every object but a 'columns' mapping (whose keys are the user's) is a model object: no key is unknown there.
    objects = [p for p in _paths(raw) if isinstance(_at(raw, p), dict) and p[-1:] != ("columns",)]
    if not draw(st.booleans()):
        return raw, False
    path = draw(st.sampled_from(objects))
    if draw(st.booleans()) and path:
        _at(raw, path[:-1])[path[-1]] = [_at(raw, path)]
    else:
        _at(raw, path)[draw(st.sampled_from(["typo", "shards", "regoin", "extra_key"]))] = draw(GARBAGE)
    return raw, True


def _check(error: config.ConfigError) -> None:
    assert error.problems
    for line in error.problems:
        assert "\n" not in line and line.strip() == line, line
        assert line.startswith(("datalake", "-c ", "context key", "sandbox_")), line
        key = re.split(r" = |: ", line, maxsplit=1)[0]
        # Pydantic's own markers never show (a user's key is quoted: columns['[key]']).
        unquoted = re.sub(r"\['[^']*'\]", "", key)
        assert line.startswith("-c ") or not ("[key]" in unquoted or ".." in unquoted or unquoted.endswith(".")), line


@FUZZ
@given(mutated())
def test_any_malformed_configuration_is_a_config_error(case):
    raw, surely_invalid = case
    try:
        cfg = config.from_dict(raw)
    except config.ConfigError as error:
        _check(error)
        return
    assert not surely_invalid, raw
    # Accepted: everything derived from it must work too (names, columns, the views' types, the sandbox).
    for table in cfg.tables:
        naming.table(cfg, table)
        assert [trino_type(c.type) for c in table_columns(table)]
    try:
        cfg.for_sandbox("444455556666")
    except config.ConfigError as error:
        _check(error)


OVERRIDE_KEYS = st.lists(
    st.sampled_from(["tables", "0", "1", "stream", "shard_count", "mode", "notifications", "alarm_emails", "x", ""]),
    min_size=1,
    max_size=4,
).map(lambda parts: ".".join([config.CONTEXT_KEY, *parts]))


@FUZZ
@given(st.dictionaries(OVERRIDE_KEYS, st.text(max_size=10) | GARBAGE.map(json.dumps), max_size=3))
def test_any_command_line_override_is_a_config_error_at_worst(overrides):
    context = {config.CONTEXT_KEY: BASE, **overrides}
    try:
        config.load(context, {config.CONTEXT_KEY: BASE})
    except config.ConfigError as error:
        _check(error)


TYPE_TEXT = st.text(alphabet="<>,:() abcdeilmnprstugxy0123456789_", max_size=30) | st.sampled_from(
    ["array<", "map<string,", "struct<a:", "decimal(38,", "varchar(", "struct<a:int,b:array<map<string,int>>>"]
)


@FUZZ
@given(st.dictionaries(st.text(max_size=6) | st.sampled_from(["_x", "a.b", "%2E", ""]), TYPE_TEXT, max_size=3))
def test_any_columns_object_is_accepted_whole_or_refused_in_lines(columns):
    try:
        spec = config.from_dict(_with("tables.0.columns", columns)).tables[0]
    except config.ConfigError as error:
        _check(error)
        return
    # What the model accepts, the catalog and the views can declare.
    assert [trino_type(c.type) for c in table_columns(spec)]
