"""Loading the configuration: exact lines for unknown, missing and mistyped keys, context keys, command-line
overrides and the checks that span keys. Written against the mutants `make mutation` found alive in
shared/config.py (docs/testing.md); test_config.py checks the same paths by substring.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shared import config, naming
from tests import configs

TOP_KEYS = list(config.AppConfig.model_fields)


def _problems(raw: dict[str, Any]) -> list[str]:
    try:
        config.from_dict(copy.deepcopy(raw))
    except config.ConfigError as error:
        return error.problems
    return []


def _load_error(context: dict[str, Any], file_context: dict[str, Any] | None = None) -> config.ConfigError:
    with pytest.raises(config.ConfigError) as raised:
        config.load(context, file_context)
    return raised.value


def test_an_unknown_key_without_a_close_match_lists_the_allowed_keys():
    raw = configs.default()
    raw["zzz"] = 1
    assert _problems(raw) == [f"datalake.zzz: unknown key; allowed keys are {TOP_KEYS}"]


def test_an_unknown_key_with_a_close_match_suggests_it():
    raw = configs.default()
    raw["prefx"] = "abc"
    assert _problems(raw) == [f"datalake.prefx: unknown key (did you mean 'prefix'?); allowed keys are {TOP_KEYS}"]


def test_an_unknown_nested_key_lists_its_own_objects_keys():
    raw = configs.default()
    raw["network"]["zzz"] = 1
    assert _problems(raw) == ["datalake.network.zzz: unknown key; allowed keys are ['vpc_cidr', 'availability_zones']"]


def test_a_missing_key_shows_what_it_must_be():
    raw = configs.default()
    del raw["network"]["availability_zones"]
    allowed = config.NetworkConfig.model_fields["availability_zones"].json_schema_extra["allowed"]
    assert _problems(raw) == [f"datalake.network.availability_zones: missing; must be {allowed}"]


def test_an_unknown_region_without_a_close_match_has_no_hint():
    raw = configs.default()
    raw["tooling"]["region"] = "zz-qqqq-9"
    problems = _problems(raw)
    assert "datalake.tooling.region = 'zz-qqqq-9': not a region this CDK version knows" in problems


def test_regions_in_two_partitions_are_refused():
    raw = configs.default()
    raw["tooling"]["region"] = "us-gov-west-1"
    raw["source"]["connection_arn"] = configs.CONNECTION.format(region="us-gov-west-1", account=configs.TOOLING)
    raw["source"]["connection_arn"] = raw["source"]["connection_arn"].replace("arn:aws:", "arn:aws-us-gov:")
    assert _problems(raw) == ["datalake.tooling/consumer/producer regions: must all be in one AWS partition"]


def test_a_sort_key_equal_to_the_partition_key_is_refused():
    raw = configs.default()
    raw["tables"][0]["sort_key"] = raw["tables"][0]["partition_key"]
    assert _problems(raw) == ["datalake.tables[0].sort_key = 'pk': must differ from partition_key"]


def test_no_sort_key_is_fine():
    raw = configs.default()
    raw["tables"][0]["sort_key"] = None
    assert _problems(raw) == []


def test_two_tables_capturing_one_existing_table_are_refused():
    raw = configs.default()
    second = copy.deepcopy(raw["tables"][0])
    second["name"] = "orders_copy"
    raw["tables"].append(second)
    for table in raw["tables"]:
        table["existing_table_name"] = "legacy-orders"
    problems = _problems(raw)
    # Another helper is rewording duplicate messages: the key and the value are what must stay.
    assert len(problems) == 1 and "existing_table_name" in problems[0] and "'legacy-orders'" in problems[0]
    raw["tables"][1]["existing_table_name"] = "other-orders"
    assert _problems(raw) == []


# --- context keys and the CDK context ---------------------------------------------------------------------------
SUGGEST_ALL = "one of " + ", ".join(config.OUR_CONTEXT_KEYS)


def test_context_keys_that_look_like_ours_are_named_with_a_suggestion():
    assert config.context_problems(
        {"sandbox_regoin": "x", "Sandbox-Foo": 1, "DATALAKE_X": 1, "other": 1, "@aws-cdk/core:x": 1, "aws:cdk:y": 2}
    ) == [
        "context key 'sandbox_regoin': not a key of this app; did you mean 'sandbox_region'?",
        f"context key 'Sandbox-Foo': not a key of this app; did you mean '{SUGGEST_ALL}'?",
        "context key 'DATALAKE_X': not a key of this app; did you mean 'datalake'?",
    ]


def test_a_dashed_spelling_of_our_key_is_suggested_the_key():
    assert config.context_problems({"sandbox-account": "1"}) == [
        "context key 'sandbox-account': not a key of this app; did you mean 'sandbox_account'?"
    ]


def test_cdk_feature_flags_are_not_ours():
    assert config.context_problems({"@aws-cdk/aws-s3:sandboxThing": True, "aws:cdk:sandbox": True}) == []


def test_a_context_problem_is_reported_as_the_cdk_contexts():
    error = _load_error({"datalake": configs.default(), "sandbox_regoin": "x"})
    assert str(error).splitlines()[0] == "invalid configuration in the CDK context 'datalake' (1):"


def test_a_datalake_that_is_not_an_object_is_refused():
    error = _load_error({"datalake": 5})
    assert error.problems == ["datalake = 5: must be an object (see cdk.json)"]
    assert str(error).splitlines()[0] == "invalid configuration in cdk.json context 'datalake' (1):"


# --- command-line overrides ---------------------------------------------------------------------------------------
def test_an_override_indexes_lists_and_replaces_list_items():
    base = configs.default()
    merged = config.merge_overrides(
        base,
        {
            "datalake.network.availability_zones.0": "eu-west-1c",
            "datalake.network.availability_zones.1": "eu-west-1a",
            "datalake.tables.0.columns.7": "string",
            "datalake.tables.0.stream.shard_count": "4",
        },
    )
    assert merged["network"]["availability_zones"] == ["eu-west-1c", "eu-west-1a"]
    assert merged["tables"][0]["columns"] == {**base["tables"][0]["columns"], "7": "string"}
    assert merged["tables"][0]["stream"]["shard_count"] == 4
    assert base == configs.default()  # the base object is not modified


def test_a_problem_from_an_override_names_the_override():
    context = {"datalake": configs.default(), "datalake.tables.0.stream": "x"}
    error = _load_error(context, {"datalake": configs.default()})
    assert str(error).splitlines()[0] == "invalid configuration in cdk.json context with -c overrides 'datalake' (1):"
    (line,) = error.problems
    assert line.startswith("datalake.tables[0].stream = 'x': must be an object with keys")
    assert line.endswith(" (set on the command line: -c datalake.tables.0.stream=...)")


def test_a_deeper_override_blames_the_object_it_broke():
    raw = configs.default()
    context = {"datalake": raw, "datalake.network.vpc_cidr": "10.0.0.0/8"}
    (line,) = _load_error(context, {"datalake": raw}).problems
    assert line.startswith("datalake.network.vpc_cidr = '10.0.0.0/8': ")
    assert line.endswith(" (set on the command line: -c datalake.network.vpc_cidr=...)")


def test_an_override_of_a_parent_object_blames_it():
    raw = configs.default()
    context = {"datalake": raw, "datalake.network": '{"vpc_cidr": "10.0.0.0/8"}'}
    problems = _load_error(context, {"datalake": raw}).problems
    assert problems and all(p.endswith(" (set on the command line: -c datalake.network=...)") for p in problems)


def test_a_whole_object_from_the_command_line_says_so():
    raw = configs.default()
    bad = copy.deepcopy(raw)
    bad["tables"][0]["stream"]["shard_count"] = 0
    (line,) = _load_error({"datalake": bad}, {"datalake": raw}).problems
    assert line.startswith("datalake.tables[0].stream.shard_count = 0: must be")
    assert line.endswith(" (the 'datalake' object differs from cdk.json: set on the command line)")


def test_nulls_do_not_make_the_file_look_different():
    raw = configs.default()
    bad = copy.deepcopy(raw)
    bad["tables"][0]["stream"]["shard_count"] = 0
    file_bad = copy.deepcopy(bad)
    # The CDK context drops null-valued keys on the way through jsii, at any depth (list items included).
    file_bad["tables"][0]["existing_table_name"] = None
    file_bad["backup"] = None
    error = _load_error({"datalake": bad}, {"datalake": file_bad})
    assert str(error).splitlines()[0] == "invalid configuration in cdk.json context 'datalake' (1):"
    (line,) = error.problems
    assert "command line" not in line


def test_a_list_item_that_differs_from_the_file_is_a_command_line_object():
    raw = configs.default()
    raw["tables"][0]["stream"]["shard_count"] = 0
    raw["notifications"] = {"approval_emails": ["a@example.com"]}
    file_raw = copy.deepcopy(raw)
    file_raw["notifications"]["approval_emails"] = ["b@example.com"]
    (line,) = _load_error({"datalake": raw}, {"datalake": file_raw}).problems
    assert line.endswith(" (the 'datalake' object differs from cdk.json: set on the command line)")


def test_a_problem_in_the_file_does_not_blame_an_unrelated_override():
    raw = configs.default()
    raw["tables"][0]["stream"]["shard_count"] = 0
    context = {"datalake": raw, "datalake.prefix": "other"}
    (line,) = _load_error(context, {"datalake": raw}).problems
    assert line.startswith("datalake.tables[0].stream.shard_count = 0: must be")
    assert "command line" not in line


# --- sandbox ----------------------------------------------------------------------------------------------------
def test_a_bad_sandbox_account_is_reported_as_the_sandboxs():
    cfg = config.from_dict(configs.default())
    with pytest.raises(config.ConfigError) as raised:
        cfg.for_sandbox("123")
    assert str(raised.value).splitlines()[0] == (
        "invalid configuration in sandbox (-c sandbox_account/sandbox_region/sandbox_prefix) 'datalake' (2):"
    )
    assert raised.value.problems[0].startswith("datalake.consumer.account = '123': must be")


# --- error text, lookups, limits ----------------------------------------------------------------------------------
def test_the_error_lists_one_problem_per_line_under_its_origin():
    error = config.ConfigError(["a = 1: bad", "b = 2: bad"])
    assert str(error) == "invalid configuration in cdk.json context 'datalake' (2):\n  - a = 1: bad\n  - b = 2: bad"
    assert str(config.ConfigError(["x"], "somewhere")) == "invalid configuration in somewhere 'datalake' (1):\n  - x"


def test_a_datalake_that_is_not_a_mapping_is_refused_under_its_origin():
    with pytest.raises(config.ConfigError) as raised:
        config.from_dict([1], origin="the test")  # type: ignore[arg-type]
    assert (
        str(raised.value)
        == "invalid configuration in the test 'datalake' (1):\n  - datalake = [1]: must be an object (see cdk.json)"
    )


def test_a_problem_keeps_the_origin_it_was_found_in():
    raw = configs.default()
    raw["prefix"] = "X"
    with pytest.raises(config.ConfigError) as raised:
        config.from_dict(raw, origin="the test")
    assert str(raised.value).startswith(
        "invalid configuration in the test 'datalake' (1):\n  - datalake.prefix = 'X': "
    )


def test_a_column_type_containing_an_equals_sign_is_named_whole():
    raw = configs.default()
    raw["tables"][0]["columns"] = {"total": "x=y"}
    (line,) = _problems(raw)
    assert line.startswith("datalake.tables[0].columns.total = 'x=y': must be an Athena column type")


def test_every_key_has_the_allowed_text_its_errors_show():
    # The message falls back to pydantic's own text only for a field without one: there is none.
    def walk(model):
        for name, field in model.model_fields.items():
            assert (field.json_schema_extra or {}).get("allowed"), f"{model.__name__}.{name}"
            nested = config._model_of(field.annotation)
            if nested is not None:
                walk(nested)

    walk(config.AppConfig)


def test_a_table_is_found_by_name():
    raw = configs.default()
    second = copy.deepcopy(raw["tables"][0])
    second["name"] = "lines"
    raw["tables"].append(second)
    cfg = config.from_dict(raw)
    assert cfg.table("lines") is cfg.tables[1] and cfg.table("orders") is cfg.tables[0]
    with pytest.raises(KeyError) as raised:
        cfg.table("nope")
    assert raised.value.args == ("no table named 'nope'; configured: ['orders', 'lines']",)


def test_a_derived_name_exactly_at_its_limit_is_accepted():
    raw = configs.default()
    raw["prefix"] = "a" * 20  # the longest prefix: the table name then reaches a limit below 40 characters
    slack = None
    for length in range(1, 41):
        raw["tables"][0]["name"] = "t" * length
        problems = _problems(raw)
        if problems:
            break
        cfg = config.from_dict(copy.deepcopy(raw))
        slack = min(limit - len(value) for _, value, limit in naming.table(cfg, cfg.tables[0]).limited())
    assert slack == 0, "the last accepted name makes a derived name exactly as long as its limit"
    assert problems and all(p.startswith(f"datalake.tables[0].name = {'t' * length!r}: ") for p in problems)


def test_an_unknown_key_set_on_the_command_line_is_blamed_on_it():
    raw = configs.default()
    (line,) = _load_error({"datalake": raw, "datalake.prefx": "abc"}, {"datalake": raw}).problems
    assert line.startswith("datalake.prefx: unknown key (did you mean 'prefix'?)")
    assert line.endswith(" (set on the command line: -c datalake.prefx=...)")


def test_an_override_inside_a_list_is_blamed_for_the_lists_problem():
    raw = configs.default()
    context = {"datalake": raw, "datalake.network.availability_zones.1": "eu-west-1a"}
    (line,) = _load_error(context, {"datalake": raw}).problems
    assert line.startswith("datalake.network.availability_zones = ['eu-west-1a', 'eu-west-1a']: ")
    assert line.endswith(" (set on the command line: -c datalake.network.availability_zones.1=...)")


def test_a_number_in_an_override_path_names_a_key_of_an_object():
    merged = config.merge_overrides(configs.default(), {"datalake.tables.0.columns.1": "string"})
    assert merged["tables"][0]["columns"]["1"] == "string" and 1 not in merged["tables"][0]["columns"]
    raw = configs.default()
    context = {"datalake": raw, "datalake.tables.0.columns.1.x": "string"}
    (line,) = _load_error(context, {"datalake": raw}).problems
    assert line.startswith("datalake.tables[0].columns.1 = {'x': 'string'}: ")


def test_a_quota_below_lambdas_unreserved_minimum_leaves_nothing_reservable():
    raw = configs.default()
    raw["tables"][0]["stream"] = {"mode": "ON_DEMAND"}  # no per-shard minimum
    raw["transform"] = {"reserved_concurrency": 5, "account_concurrency_quota": 10}
    (line,) = _problems(raw)
    assert line == (
        "datalake.transform.reserved_concurrency = 5: 1 table(s) reserve 5 concurrent executions, but "
        "datalake.transform.account_concurrency_quota = 10 leaves at most 0 reservable (Lambda keeps 100 "
        "unreserved); lower it, raise the quota, or set it to null"
    )


def test_the_key_declarations_carry_their_range_default_and_text():
    # _key and _int run while the module is imported; called here, they are checked like any other function.
    field = config._int(3, 7, 5, "why")
    assert field.json_schema_extra == {"allowed": "a whole number from 3 to 7 (why)"} and field.default == 5
    assert [(type(m).__name__, getattr(m, "ge", getattr(m, "le", None))) for m in field.metadata] == [
        ("Ge", 3),
        ("Le", 7),
    ]
    assert config._int(0, 9, None).json_schema_extra == {"allowed": "a whole number from 0 to 9"}
    assert config._int(0, 9, None).default is None
    key = config._key("some text", default=4, ge=1)
    assert key.json_schema_extra == {"allowed": "some text"} and key.default == 4 and len(key.metadata) == 1


def test_a_key_ending_in_x_set_on_the_command_line_is_blamed_on_it():
    raw = configs.default()
    (line,) = _load_error({"datalake": raw, "datalake.prefiX": "abc"}, {"datalake": raw}).problems
    assert line.endswith(" (set on the command line: -c datalake.prefiX=...)")


def test_an_unknown_key_is_named_with_its_path_or_quoted_when_it_is_not_a_plain_name():
    """A plain name (letters, digits, '_', '-', any case) is part of the path; anything else is quoted after its
    object's path, so the line stays readable. Either way the closest allowed key is suggested."""
    allowed = "allowed keys are ['mode', 'shard_count', 'retention_hours']"
    stream = "datalake.tables[0].stream"
    for key, line in (
        ("Shard_Cout", f"{stream}.Shard_Cout: unknown key (did you mean 'shard_count'?); {allowed}"),
        ("shard count", f"{stream}: unknown key 'shard count' (did you mean 'shard_count'?); {allowed}"),
        ("x.y", f"{stream}: unknown key 'x.y'; {allowed}"),
    ):
        raw = configs.default()
        raw["tables"][0]["stream"][key] = 3
        assert _problems(raw) == [line], key


def test_a_column_key_that_is_not_text_is_one_line():
    """JSON keys are always text; a configuration built in Python may not be, and gets a line, not a traceback."""
    raw = configs.default()
    raw["tables"][0]["columns"] = {1: "string"}
    assert _problems(raw) == ["datalake.tables[0].columns: the key 1 must be a string"]
