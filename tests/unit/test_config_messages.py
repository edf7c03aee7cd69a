"""The exact line of each configuration check that spans keys or explains a naming rule, and of a -c override or
context key mistake: the lines a newcomer reads instead of a traceback (issue 16), pinned word for word."""

from __future__ import annotations

from typing import Any

import pytest

from shared import config
from tests import configs
from tests.unit.test_config_loading import _problems


def _with(**sections: Any) -> dict[str, Any]:
    raw = configs.default()
    raw.update(sections)
    return raw


def test_a_catch_up_must_advance_unless_the_lakehouse_is_off():
    lakehouse = {"late_window_hours": 10, "max_hours_per_run": 11}
    assert _problems(_with(lakehouse=lakehouse)) == [
        "datalake.lakehouse.max_hours_per_run = 11: must be at least datalake.lakehouse.late_window_hours + 2 (12); "
        "each run re-reads the late window, so a smaller one never catches up"
    ]
    assert _problems(_with(lakehouse={**lakehouse, "max_hours_per_run": 12})) == []
    assert _problems(_with(lakehouse={**lakehouse, "enabled": False})) == []


def test_the_replay_role_is_not_the_break_glass_role():
    assert _problems(_with(data_lake={"break_glass_role_name": "bg", "replay_role_name": "bg"})) == [
        "datalake.data_lake.replay_role_name = 'bg': must differ from datalake.data_lake.break_glass_role_name; "
        "routine replays must not need the role exempt from every integrity control"
    ]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (
            "a..b",
            "has an empty part between dots: '.' joins a map's keys ('shipTo.city'); a dot inside an attribute name "
            "is written '%2E'",
        ),
        ("a%zz", "has a '%' that starts no escape: the transform writes '%' as '%25' and '.' inside a name as '%2E'"),
        ("a%2e", None),  # an escape in lower-case hex digits is an escape too
        ("a%2E", None),
    ],
)
def test_column_key_rules_say_how_the_transform_writes_names(key, reason):
    raw = configs.default()
    raw["tables"][0]["columns"] = {key: "string"}
    expected = [] if reason is None else [f"datalake.tables[0].columns: the key {key!r} {reason}"]
    assert _problems(raw) == expected


def test_a_map_key_may_be_any_primitive_type():
    for key in ("string", "decimal(5,1)", "varchar(3)"):
        assert config._hive_type_problem(f"map<{key},string>") is None, key


def test_cdk_feature_flags_are_not_taken_for_mistakes_and_a_near_miss_is_named():
    raw = configs.default()
    flags = {"@aws-cdk/core:newStyleStackSynthesis": True, "aws:cdk:enable-path-metadata": True}
    config.load({config.CONTEXT_KEY: raw, **flags})
    with pytest.raises(config.ConfigError) as raised:
        config.load({config.CONTEXT_KEY: raw, "sandbox-account": "1"})
    assert raised.value.problems == [
        "context key 'sandbox-account': not a key of this app; did you mean 'sandbox_account'?"
    ]


def test_an_override_past_the_end_of_a_list_says_which_indexes_exist():
    raw = configs.default()
    with pytest.raises(config.ConfigError) as raised:
        config.load({config.CONTEXT_KEY: raw, "datalake.tables.1.name": "x"})
    assert raised.value.problems == [
        "-c datalake.tables.1.name: datalake.tables is a list of 1 item(s); the part after it must be an index from 0 "
        "to 0, not '1'"
    ]
    assert str(raised.value).startswith("invalid configuration in the -c overrides 'datalake' (1):")


def test_a_sandbox_region_mistake_names_the_sandbox_keys():
    cfg = config.from_dict(configs.default())
    with pytest.raises(config.ConfigError) as raised:
        cfg.for_sandbox("123456789012", "eu-westt-1")
    (problem,) = raised.value.problems
    assert problem.startswith("sandbox_region = 'eu-westt-1': not a region this CDK version knows")
    assert str(raised.value).startswith(
        "invalid configuration in sandbox (-c sandbox_account/sandbox_region/sandbox_prefix) 'datalake' (1):"
    )


def test_a_declared_key_carries_its_item_and_shape_texts():
    assert config._key("x", item="i", shape="s").json_schema_extra == {"allowed": "x", "item": "i", "shape": "s"}
    assert config._key("x").json_schema_extra == {"allowed": "x"}


def test_an_override_into_an_empty_list_asks_for_the_whole_list():
    raw = configs.default()
    raw["notifications"] = {**raw.get("notifications", {}), "alarm_emails": []}
    with pytest.raises(config.ConfigError) as raised:
        config.load({config.CONTEXT_KEY: raw, "datalake.notifications.alarm_emails.0": "ops@example.com"})
    where = "datalake.notifications.alarm_emails"
    assert raised.value.problems == [
        f"-c {where}.0: {where} is an empty list; set the whole list instead, e.g. -c {where}='[...]'"
    ]


def test_every_check_across_keys_is_reported_at_once():
    """Two checks across keys fail: both lines, not the first one only (one run shows every mistake)."""
    problems = _problems(
        _with(
            data_lake={"break_glass_role_name": "bg", "replay_role_name": "bg"},
            lakehouse={"late_window_hours": 10, "max_hours_per_run": 11},
        )
    )
    assert [p.split(" =", 1)[0] for p in problems] == [
        "datalake.data_lake.replay_role_name",
        "datalake.lakehouse.max_hours_per_run",
    ]
