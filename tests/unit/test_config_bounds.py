"""Both sides of every bound of every configuration key, top-level and per table.

The numeric bounds are found by walking the model (``ge``/``le`` of every field, nested models included), so a key
added later is covered without editing this file; the walk must also equal ``PINNED``, so a bound that moves (or a
key that appears) is a reviewed change here, not a silent one. Each refused value must produce a line that names the
exact key path and the value and shows the model's own ``allowed`` text (read from the field, never copied here).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import annotated_types
import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from shared import config
from tests import configs
from tests.unit.test_config_loading import _problems

# key path ("[]" for every item of a list) -> (lowest accepted, highest accepted): the documented ranges.
PINNED: dict[str, tuple[int, int]] = {
    "tables[].stream.shard_count": (1, 500),
    "tables[].stream.retention_hours": (24, 8760),
    "tables[].delivery.buffer_interval_seconds": (0, 900),
    "tables[].delivery.buffer_size_mib": (1, 128),
    "delivery.buffer_interval_seconds": (0, 900),
    "delivery.buffer_size_mib": (1, 128),
    "transform.memory_mb": (128, 10240),
    "transform.timeout_seconds": (60, 300),
    "transform.reserved_concurrency": (1, 1_000_000),
    "transform.account_concurrency_quota": (10, 1_000_000),
    "data_lake.noncurrent_version_expiration_days": (1, 3650),
    "data_lake.access_log_expiration_days": (1, 3650),
    "data_lake.object_lock_retention_days": (0, 36500),
    "athena.bytes_scanned_cutoff_mib": (10, 10_485_760),
    "athena.results_expiration_days": (1, 3650),
    "backup.daily_retention_days": (1, 3650),
    "backup.monthly_retention_days": (30, 36500),
    "lakehouse.schedule_minutes": (5, 1440),
    "lakehouse.late_window_hours": (2, 168),
    "lakehouse.max_hours_per_run": (4, 720),
}


def _numeric_bounds(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo, int, int]]:
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        low = next((m.ge for m in field.metadata if isinstance(m, annotated_types.Ge)), None)
        high = next((m.le for m in field.metadata if isinstance(m, annotated_types.Le)), None)
        if low is not None or high is not None:
            assert low is not None and high is not None, f"{path}: a range needs both ends"
            yield path, field, low, high
        nested = config._model_of(field.annotation)
        if nested is not None:
            yield from _numeric_bounds(nested, path + ("[]." if name == "tables" else "."))


BOUNDS = list(_numeric_bounds(config.AppConfig))


def test_every_bounded_key_is_pinned_with_its_documented_range():
    assert {path: (low, high) for path, _, low, high in BOUNDS} == PINNED


def _allowed(field: FieldInfo) -> str:
    return field.json_schema_extra["allowed"]  # type: ignore[index]


def _raw_with(path: str, value: Any) -> dict[str, Any]:
    raw = configs.default()
    # Values that other keys constrain: a reservation must cover 5 calls per shard and fit the quota.
    raw["tables"][0]["stream"]["shard_count"] = 1
    raw.setdefault("transform", {})["account_concurrency_quota"] = 1_000_000
    if path == "transform.reserved_concurrency":
        raw["tables"][0]["stream"]["mode"] = "ON_DEMAND"  # no per-shard minimum: 1 is a valid reservation
        del raw["tables"][0]["stream"]["shard_count"]  # a shard count with ON_DEMAND is refused
    # Daily recovery points may not outlive monthly ones; a catch-up must advance past the late window.
    if path == "backup.daily_retention_days":
        raw.setdefault("backup", {})["monthly_retention_days"] = 36500
    if path == "backup.monthly_retention_days":
        raw.setdefault("backup", {})["daily_retention_days"] = 1
    if path == "lakehouse.late_window_hours":
        raw.setdefault("lakehouse", {})["max_hours_per_run"] = PINNED["lakehouse.max_hours_per_run"][1]
    if path == "lakehouse.max_hours_per_run":
        raw.setdefault("lakehouse", {})["late_window_hours"] = PINNED["lakehouse.late_window_hours"][0]
    node: Any = raw
    parts = path.replace("[]", ".0").split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[parts[-1]] = value
    return raw


def _dotted(path: str) -> str:
    return f"{config.CONTEXT_KEY}." + path.replace("[]", "[0]")


def _cases() -> Iterator[Any]:
    for path, field, low, high in BOUNDS:
        for value, accepted in ((low - 1, False), (low, True), (high, True), (high + 1, False)):
            yield pytest.param(path, field, value, accepted, id=f"{path}={value}")


@pytest.mark.parametrize(("path", "field", "value", "accepted"), list(_cases()))
def test_both_sides_of_every_numeric_bound(path, field, value, accepted):
    problems = _problems(_raw_with(path, value))
    mine = [p for p in problems if p.startswith(f"{_dotted(path)} = {value!r}:")]
    if accepted:
        # The per-key check passes. The largest reservation can never fit the largest quota (Lambda keeps 100
        # unreserved): that cross-check names the key too, but not with the key's range.
        assert not [p for p in mine if _allowed(field) in p], problems
        if path != "transform.reserved_concurrency" or value != PINNED[path][1]:
            assert problems == []
    else:
        assert len(mine) == 1 and _allowed(field) in mine[0], problems
        assert problems == mine


@pytest.mark.parametrize("path", [p for p, *_ in BOUNDS])
def test_a_bounded_key_refuses_a_non_integer(path):
    field = next(f for p, f, *_ in BOUNDS if p == path)
    for value in ("10", 10.0, True):
        (problem,) = _problems(_raw_with(path, value))
        assert problem.startswith(f"{_dotted(path)} = {value!r}:") and _allowed(field) in problem


def _field(path: str) -> FieldInfo:
    model: Any = config.AppConfig
    field = None
    for part in path.replace("[]", "").split("."):
        field = model.model_fields[part]
        model = config._model_of(field.annotation)
    assert field is not None
    return field


# --- a bound that moves with the clock ----------------------------------------------------------------------------
def test_first_year_runs_from_the_earliest_projected_year_to_the_current_year():
    """data_lake.first_year: 2025 (the first year any version projected) to the current UTC year; a later year would
    hide every hour until then (the projection ends at NOW), so it is refused with the current year in the line."""
    path, current = "data_lake.first_year", datetime.now(UTC).year
    assert config.EARLIEST_FIRST_YEAR == 2025
    assert config.DataLakeConfig().first_year == config.EARLIEST_FIRST_YEAR
    for value in (2025, current):
        assert _problems(_raw_with(path, value)) == [], value
    for value in (2024, current + 1):
        assert _problems(_raw_with(path, value)) == [
            f"{_dotted(path)} = {value}: must be a whole number from 2025 to the current year ({current}, UTC)"
        ]
    for value in ("2026", 2026.0, True, None):
        (problem,) = _problems(_raw_with(path, value))
        assert problem.startswith(f"{_dotted(path)} = {config.show(value)}:") and _allowed(_field(path)) in problem


# --- lengths and counts (patterns and cross-checks rather than ge/le) -------------------------------------------
# (path, accepted values, refused values); the refused line names the path and the value.
LENGTHS = [
    ("prefix", ["abc", "a" + "b" * 18 + "c"], ["ab", "a" + "b" * 19 + "c"]),
    ("tables[].name", ["o", "o" * 40], ["", "o" * 41]),
    ("tables[].partition_key", ["p", "p" * 255], ["", "p" * 256]),
    ("tables[].sort_key", ["s", "s" * 255], ["", "s" * 256]),
    ("tables[].existing_table_name", ["abc", "a" * 255], ["ab", "a" * 256]),
    ("source.branch", ["m", "m" * 200], ["", "m" * 201]),
    ("network.vpc_cidr", ["10.0.0.0/16", "10.0.0.0/24"], ["10.0.0.0/15", "10.0.0.0/25"]),
]


@pytest.mark.parametrize(("path", "accepted", "refused"), LENGTHS, ids=[p for p, *_ in LENGTHS])
def test_both_sides_of_every_length(path, accepted, refused):
    for value in accepted:
        raw = _raw_with(path, value)
        raw["prefix"] = value if path == "prefix" else "abc"  # the shortest prefix: derived names stay short
        assert _problems(raw) == [], value
    for value in refused:
        raw = _raw_with(path, value)
        raw["prefix"] = value if path == "prefix" else "abc"
        problems = _problems(raw)
        assert any(p.startswith(f"{_dotted(path)} = {value!r}:") for p in problems), problems
        if path != "network.vpc_cidr":  # its allowed text is checked by the model validator's own message
            assert any(_allowed(_field(path)) in p for p in problems), problems


def test_column_keys_are_1_to_255_characters():
    for key, ok in (("c", True), ("c" * 255, True), ("", False), ("c" * 256, False)):
        raw = _raw_with("tables[].columns", {key: "string"})
        problems = _problems(raw)
        assert (problems == []) is ok, (len(key), problems)
        if not ok:
            assert all(p.startswith(f"{_dotted('tables[].columns')}") for p in problems), problems


@pytest.mark.parametrize(
    ("zones", "ok"),
    [
        (["a"], False),
        (["a", "b"], True),
        (["a", "b", "c", "d", "e", "f"], True),
        (["a", "b", "c", "d", "e", "f", "g"], False),
        (["a", "a"], False),
        ([], False),
    ],
)
def test_availability_zones_are_2_to_6_distinct(zones, ok):
    region = configs.default()["producer"]["region"]
    value = [region + z for z in zones]
    problems = _problems(_raw_with("network.availability_zones", value))
    if ok:
        assert problems == []
    else:
        # Another helper is rewording this message: the key path and the value are what must stay.
        assert len(problems) == 1, problems
        assert problems[0].startswith(f"{_dotted('network.availability_zones')} = {value!r}:"), problems


@pytest.mark.parametrize("path", ["tables", "compliance.packs"])
def test_non_empty_lists(path):
    empty = _problems(_raw_with(path, []))
    assert len(empty) == 1 and empty[0].startswith(f"{_dotted(path)} = []:"), empty
    assert _allowed(_field(path)) in empty[0]
    one = ["AwsSolutions"] if path == "compliance.packs" else configs.default()["tables"][:1]
    assert _problems(_raw_with(path, one)) == []


# --- object keys ------------------------------------------------------------------------------------------------
def _object_keys() -> Iterator[tuple[str, type[BaseModel]]]:
    def walk(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, type[BaseModel]]]:
        for name, field in model.model_fields.items():
            nested = config._model_of(field.annotation)
            if nested is not None:
                yield prefix + name, nested
                yield from walk(nested, prefix + name + ("[]." if name == "tables" else "."))

    yield from walk(config.AppConfig, "")


OBJECT_KEYS = [p for p, _ in _object_keys() if p != "tables"]


@pytest.mark.parametrize("path", OBJECT_KEYS)
@pytest.mark.parametrize("value", ["text", 5, ["a"], True])
def test_a_non_object_value_for_an_object_key_names_its_keys(path, value):
    model = dict(_object_keys())[path]
    raw = _raw_with(path, value)
    problems = _problems(raw)
    expected = f"{_dotted(path)} = {value!r}: must be an object with keys {list(model.model_fields)}"
    assert problems == [expected]


def test_every_object_key_is_covered():
    assert set(OBJECT_KEYS) >= {
        "tooling",
        "consumer",
        "producer",
        "source",
        "tables[].stream",
        "tables[].delivery",
        "delivery",
        "transform",
        "network",
        "notifications",
        "data_lake",
        "data_lake.replica",
        "athena",
        "backup",
        "compliance",
    }
