"""Proof on a real engine: the lakehouse maintenance statements, run window by window on DuckDB over the objects
Firehose and ``ddb-lake replay`` would write, keep history and state equal to the ordering rule after every run.

For the default configuration's table and one whose columns are as awkward as DynamoDB allows (names differing
only in case, 38-digit decimals, escaped and non-ASCII names), an adversarial stream
(tests/integration/lakehouse_stream.py) goes through the real transform; its objects become visible at the
instant they are written; maintenance runs on a schedule with an outage, a crash between INSERT and MERGE, a
window run twice, and a catch-up. After every run, the history and state tables equal the reference model's, the
window equals the model's, and the MERGE source has one row per key (Athena's rule, asserted here). At the end,
the result also equals the rule applied once to every copy ever written, without windows.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from consumer.lakehouse.sql import (
    ARRIVAL_HOUR,
    CHANGE_TIME,
    CHUNK_DAYS,
    CHUNK_VALUES,
    LINE,
    WINDOW_VALUES,
    LakehouseSql,
    Step,
)
from shared import config, naming
from shared.config import AppConfig
from tests import configs
from tests.conftest import template_of
from tests.integration import lake_stream, lakehouse_iceberg
from tests.integration import lakehouse_stream as ls
from tests.integration.lakehouse_proof import DuckLakehouse, deployed_statements, json_extract_scalar, to_duckdb
from tests.integration.lakehouse_template import bind, maintenance_steps
from tests.integration.test_lake_queries import _exact, awkward


def _variant(name: str) -> Callable[[], dict[str, Any]]:
    return lambda: configs.VARIANTS[name](configs.default())


# Every test configuration whose lakehouse is on, and the awkward one.
CONFIGS = {
    **{name: _variant(name) for name in configs.VARIANTS if _variant(name)().get("lakehouse", {}).get("enabled", True)},
    "awkward": awkward,
}
OLD_HOURS = (ls.hour_text(ls.at(0)), ls.hour_text(ls.at(ls.MAX_HOURS_PER_RUN - 1)))


def load(raw: dict[str, Any]) -> AppConfig:
    return config.load({config.CONTEXT_KEY: raw})


def _exact_rows(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((tuple((k, _exact(v)) for k, v in sorted(row.items())) for row in rows), key=repr)


def expected_row(sql: LakehouseSql, copy: ls.Copy, cfg: AppConfig) -> dict[str, Any]:
    """The history (and state) row of one kept copy, by column name, from the change itself."""
    change = copy.change
    by_key = {
        "_event_name": change.event_name,
        "_event_id": change.event_id,
        "_table_name": sql.names.table,
        "_aws_region": cfg.producer.region,
        "_approximate_creation_time": lake_stream.iso(change.time_us),
        "_sequence_number": None if copy.sequence is None else str(copy.sequence),
        "_shard_id": copy.shard,
        "_is_deleted": change.event_name == "REMOVE",
        "_is_ttl_delete": change.ttl,
        "_origin": change.origin,
        **change.values,
    }
    row: dict[str, Any] = dict.fromkeys(name for name, _ in sql.history_columns())
    for column in sql.columns:
        row[column.name] = by_key.get(column.json_key)
    row[CHANGE_TIME] = datetime(1970, 1, 1) + timedelta(microseconds=change.time_us)
    row[ARRIVAL_HOUR] = copy.arrival_hour
    row[LINE] = copy.line
    return row


@dataclass
class Snapshot:
    label: str
    window: tuple[str, str, str]
    expected_window: tuple[str, str, str]
    history: list[tuple[Any, ...]]
    expected_history: list[tuple[Any, ...]]
    state: list[tuple[Any, ...]]
    expected_state: list[tuple[Any, ...]]
    progress: list[str]
    expected_progress: str | None
    merge_source_rows: int
    expected_merge_source_rows: int


@dataclass
class Proof:
    cfg: AppConfig
    sql: LakehouseSql
    scenario: ls.Scenario
    lake: DuckLakehouse
    model: ls.Model
    snapshots: list[Snapshot] = field(default_factory=list)
    visible: list[ls.Copy] = field(default_factory=list)  # every copy written, in the order written
    very_late_missing: bool = False  # before the last rebuild, the very late object's changes were not in history

    def expected(self, copies: list[ls.Copy]) -> list[tuple[Any, ...]]:
        return _exact_rows([expected_row(self.sql, c, self.cfg) for c in copies])

    def progress_rows(self) -> list[dict[str, Any]]:
        return self.lake.rows(self.sql.names.iceberg_state_table, 'WHERE "_event_id" IS NULL')

    def snapshot(
        self, label: str, window: tuple[str, str, str], expected_window: tuple[str, str, str], rows: int, expected: int
    ):
        state = self.lake.rows(self.sql.names.iceberg_state_table, 'WHERE "_event_id" IS NOT NULL')
        self.snapshots.append(
            Snapshot(
                label=label,
                window=window,
                expected_window=expected_window,
                history=_exact_rows(self.lake.rows(self.sql.names.iceberg_history_table)),
                expected_history=self.expected(list(self.model.history.values())),
                state=_exact_rows(state),
                expected_state=self.expected(list(self.model.state.values())),
                progress=[r[ARRIVAL_HOUR] for r in self.progress_rows()],
                expected_progress=self.model.progress,
                merge_source_rows=rows,
                expected_merge_source_rows=expected,
            )
        )


def proof_config(name: str) -> dict[str, Any]:
    """The configuration the proof deploys: the named one with the proof stream's late window and run length."""
    raw = CONFIGS[name]()
    return {
        **raw,
        "lakehouse": {"late_window_hours": ls.LATE_WINDOW_HOURS, "max_hours_per_run": ls.MAX_HOURS_PER_RUN},
    }


@functools.cache
def _deployed(name: str) -> dict[str, dict[str, Step]]:
    return deployed_statements(proof_config(name))


def _prove(name: str, table: int, root: Path) -> Proof:
    raw = proof_config(name)
    cfg = load(raw)
    spec = cfg.tables[table]
    names = naming.table(cfg, spec)
    sql = LakehouseSql(
        spec=spec,
        names=names,
        lake=naming.lake(cfg),
        late_window_hours=ls.LATE_WINDOW_HOURS,
        max_hours_per_run=ls.MAX_HOURS_PER_RUN,
        first_year=cfg.data_lake.first_year,
    )
    scenario = ls.generate(cfg, spec, names)
    # The statements as the state machine runs them, read back from the synthesized consumer template.
    steps = _deployed(name)[spec.name]
    proof = Proof(
        cfg, sql, scenario, DuckLakehouse(sql, root, steps), ls.Model(ls.LATE_WINDOW_HOURS, ls.MAX_HOURS_PER_RUN)
    )
    pending = sorted(scenario.objects, key=lambda o: o.write_us)
    visible = proof.visible
    model = proof.model

    def run(label: str, now_us: int, window: tuple[str, str] | None = None, crash: bool = False) -> tuple[str, str]:
        now = ls.utc(now_us).replace(tzinfo=None)
        expected_window = model.window(now_us)
        start, end = window or expected_window[:2]
        result = proof.lake.run(now, crash_after_insert=crash, window=window)
        model.insert(start, end, visible)
        rows = 0 if crash else model.merge_source_rows(start, end)
        if not crash:
            model.merge(start, end)
        proof.snapshot(f"{label} at {now:%H:%M}", result.window, expected_window, result.merge_source_rows, rows)
        return start, end

    for now_us in ls.run_instants():
        # Objects written before the run starts are there; later ones are not yet.
        while pending and pending[0].write_us <= now_us:
            obj = pending.pop(0)
            path = root / obj.key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(obj.content())
            visible.extend(obj.copies)
        hour = (now_us - ls.T0_US) // ls.HOUR_US
        crash = hour == ls.CRASH_HOUR
        window = run("run (crashed after INSERT)" if crash else "run", now_us, crash=crash)
        if hour == ls.REPEAT_HOUR:
            # The same window again, explicitly (a retry): nothing changes.
            run("repeated run", now_us, window=window)
            # A rebuild of old hours (explicit window, as `ddb-lake rebuild` runs it): nothing changes either, and
            # the progress row does not move back.
            run("rebuild of old hours", now_us, window=OLD_HOURS)
    assert not pending, "every object is written before the last run"
    # The object written beyond every late window is not in history yet (no scheduled run reads its partition);
    # a rebuild of its hours brings it in.
    very_late = [c.change.event_id for c in visible if c.arrival_hour == ls.hour_text(ls.at(ls.VERY_LATE_OBJECT_HOUR))]
    proof.very_late_missing = not set(very_late) <= set(model.history)
    run("rebuild after an object written beyond the late window", ls.run_instants()[-1], window=OLD_HOURS)
    assert not pending, "every object is written before the last run"
    return proof


# Every table of every such configuration: (configuration, table index).
TABLES = [(name, i) for name, raw in CONFIGS.items() for i in range(len(raw()["tables"]))]


@pytest.fixture(scope="module", params=TABLES, ids=[f"{name}-{i}" for name, i in TABLES])
def proof(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proof]:
    name, table = request.param
    proof = _prove(name, table, tmp_path_factory.mktemp(f"lakehouse-{name}-{table}"))
    yield proof
    proof.lake.con.close()


def test_every_window_is_the_last_merged_hour_minus_the_late_window(proof: Proof):
    windows = [(s.label, s.window) for s in proof.snapshots]
    assert windows == [(s.label, s.expected_window) for s in proof.snapshots]
    # The outage made the catch-up take several windows, each at most max_hours_per_run long.
    assert any(s.window[2] == "false" for s in proof.snapshots)
    assert proof.snapshots[-1].window[2] == "true"
    for s in proof.snapshots:
        start, end = (datetime.strptime(h, "%Y-%m-%d-%H") for h in s.window[:2])
        assert timedelta(0) <= end - start <= timedelta(hours=ls.MAX_HOURS_PER_RUN - 1)


def test_history_equals_the_rule_after_every_run(proof: Proof):
    for s in proof.snapshots:
        assert s.history == s.expected_history, s.label


def test_state_equals_the_rule_after_every_run(proof: Proof):
    for s in proof.snapshots:
        assert s.state == s.expected_state, s.label
        assert s.progress == ([s.expected_progress] if s.expected_progress else []), s.label


def test_each_run_reads_only_its_window(proof: Proof):
    """The MERGE's source is the window's history rows (one per key, plus the progress row: uniqueness itself is
    asserted before every MERGE), and the INSERT reads only the window's raw partitions: an object written beyond
    every late window reaches history only through a rebuild of its hours."""
    assert [s.merge_source_rows for s in proof.snapshots] == [s.expected_merge_source_rows for s in proof.snapshots]
    assert proof.very_late_missing


def test_crash_between_insert_and_merge_is_repaired_by_the_next_run(proof: Proof):
    crashed = next(i for i, s in enumerate(proof.snapshots) if "crashed" in s.label)
    before, after = proof.snapshots[crashed], proof.snapshots[crashed + 1]
    assert before.state == proof.snapshots[crashed - 1].state  # the MERGE never ran
    assert after.window[0] == before.window[0]  # the next run reads the crashed run's hours again


def test_a_window_run_twice_or_rebuilt_changes_nothing(proof: Proof):
    repeated = next(i for i, s in enumerate(proof.snapshots) if s.label.startswith("repeated"))
    first, second, rebuilt = proof.snapshots[repeated - 1 : repeated + 2]
    assert (first.history, first.state, first.progress) == (second.history, second.state, second.progress)
    assert (first.history, first.state, first.progress) == (rebuilt.history, rebuilt.state, rebuilt.progress)
    assert rebuilt.merge_source_rows > 1


def test_the_end_equals_the_rule_applied_once_to_every_copy(proof: Proof):
    """No windows at all: every copy ever written, the rule applied once."""
    history, state = ls.rule_applied_once(proof.visible)
    last = proof.snapshots[-1]
    assert last.history == proof.expected(list(history.values()))
    assert last.state == proof.expected(list(state.values()))
    # Every distinct change is in history, once.
    assert {c.event_id for c in proof.scenario.changes} == set(proof.model.history)


def test_the_stream_has_every_hard_case(proof: Proof):
    copies = proof.visible
    history, state = ls.rule_applied_once(copies)
    changes = proof.scenario.changes
    assert any(c.ttl for c in changes) and any(c.event_name == "REMOVE" and not c.ttl for c in changes)
    # Redelivery (same sequence number twice) and re-puts (one change, two sequence numbers).
    seen: dict[str, set[tuple[Any, ...]]] = {}
    for c in copies:
        seen.setdefault(c.change.event_id, set()).add((c.shard, c.sequence))
    assert len(copies) > sum(len(v) for v in seen.values()) > len({c.change.event_id for c in copies})
    # The reshard: both parent and at least three child shards.
    shards = {c.shard for c in copies}
    assert set(lake_stream.PARENT_SHARDS) <= shards and len(shards & set(lake_stream.CHILD_SHARDS)) >= 3
    # Copies without sequence numbers (replays) of changes also delivered with one, and changes only replayed.
    unsequenced = {c.change.event_id for c in copies if c.sequence is None}
    sequenced = {c.change.event_id for c in copies if c.sequence is not None}
    assert unsequenced & sequenced and unsequenced - sequenced
    # Replayed changes weeks old: history partitions (change days) far behind the arrival hours.
    assert min(c.change.time_us for c in copies) < ls.T0_US - 30 * ls.DAY_US
    # 129-digit sequence numbers next to 128-digit ones, winning at the same microsecond.
    assert any(len(str(c.sequence)) == 129 for c in state.values())
    # Ties at the same microsecond decided by _event_id (equal sequence numbers), and by a missing sequence number.
    by_item: dict[str, list[ls.Copy]] = {}
    for c in history.values():
        by_item.setdefault(ls.item_key(c.change), []).append(c)
    ties = [
        sorted(ls.state_rank(c)[:4] for c in group)
        for group in by_item.values()
        if len({(c.change.time_us, c.sequence) for c in group}) < len(group)
    ]
    assert ties
    # Late changes arriving after a newer one (a delete among them), and a backfill losing to an old live change.
    winners = {ls.item_key(c.change): c for c in state.values()}
    late_losers = [
        c
        for c in history.values()
        if ls.state_rank(c) < ls.state_rank(winners[ls.item_key(c.change)])
        and c.arrival_hour > winners[ls.item_key(c.change)].arrival_hour
    ]
    assert any(c.change.origin == "backfill" for c in late_losers)
    assert any(winners[ls.item_key(c.change)].change.event_name == "REMOVE" for c in late_losers)
    assert any(w.change.origin == "backfill" for w in winners.values())  # backfill of items never seen live


def test_tombstones_stay_in_state_and_the_current_view_leaves_them_out(proof: Proof):
    state = proof.lake.rows(proof.sql.names.iceberg_state_table, 'WHERE "_event_id" IS NOT NULL')
    assert any(r["_is_deleted"] for r in state)
    current = proof.lake.view(proof.sql.current_view_sql())
    expected = [{k: v for k, v in r.items() if k != LINE} for r in state if not r["_is_deleted"]]
    assert _exact_rows(current) == _exact_rows(expected)
    assert [c.name for c in proof.sql.current_view_columns()] == list(current[0])


def test_history_view_numbers_each_items_changes_in_order(proof: Proof):
    rows = proof.lake.view(proof.sql.history_view_sql())
    assert [c.name for c in proof.sql.history_view_columns()] == list(rows[0])
    history, _ = ls.rule_applied_once(proof.visible)
    per_item: dict[str, list[ls.Copy]] = {}
    for c in history.values():
        per_item.setdefault(ls.item_key(c.change), []).append(c)
    expected = []
    for group in per_item.values():
        group.sort(key=lambda c: (c.change.time_us, c.sequence is not None, c.sequence or 0, c.change.event_id))
        for n, c in enumerate(group, 1):
            row = {**expected_row(proof.sql, c, proof.cfg), "_change_number": n}
            del row[LINE]
            expected.append(row)
    assert _exact_rows(rows) == _exact_rows(expected)


def test_exact_types_reach_the_tables(proof: Proof):
    types = dict(proof.lake.column_types(proof.sql.names.iceberg_history_table))
    assert types[CHANGE_TIME] == "TIMESTAMP"  # microseconds
    rows = proof.lake.rows(proof.sql.names.iceberg_history_table)
    for column in proof.sql.columns:
        if column.type.startswith("decimal(38"):
            values = [r[column.name] for r in rows if r[column.name] is not None]
            assert values and all(isinstance(v, Decimal) for v in values)
            assert any(len(str(v).lstrip("-").replace(".", "")) == 38 for v in values), column.name
    times = [r[CHANGE_TIME] for r in rows]
    assert any(t.microsecond % 1000 for t in times)  # microseconds kept, not milliseconds


def test_json_extract_scalar_stand_in_keeps_trinos_semantics():
    line = '{"a":12345678901234567890123456789012345678.5,"A":"x","b":true,"n":null,"o":{"k":1},"a.b":"dot"}'
    assert json_extract_scalar(line, "a") == "12345678901234567890123456789012345678.5"
    assert json_extract_scalar(line, "A") == "x"
    assert json_extract_scalar(line, "b") == "true"
    assert json_extract_scalar(line, "a.b") == "dot"
    assert [json_extract_scalar(line, k) for k in ("n", "o", "missing")] == [None, None, None]
    assert json_extract_scalar("not json", "a") is None
    translated = to_duckdb(
        """SELECT json_extract_scalar(line, '$["a.b"]'), json_extract_scalar(line, '$["_x"]') FROM t"""
    )
    assert translated.lower() == (
        "select lakehouse_json_extract_scalar(line, 'a.b'), lakehouse_json_extract_scalar(line, '_x') from t"
    )


def test_both_tables_are_real_iceberg_tables_that_keep_every_digit_and_microsecond(proof: Proof, tmp_path: Path):
    """pyiceberg creates both tables from the declared columns and partitioning, and the proof's final rows go
    in and come back unchanged: DECIMAL(38,s) digits and microsecond timestamps included."""
    sql = proof.sql
    cat = lakehouse_iceberg.catalog(tmp_path)
    for table, columns, partitioning in (
        (sql.names.iceberg_history_table, sql.history_columns(), sql.history_partitioning),
        (sql.names.iceberg_state_table, sql.state_columns(), sql.state_partitioning),
    ):
        iceberg = lakehouse_iceberg.create(cat, sql.lake.database, table, columns, partitioning)
        rows = proof.lake.con.sql(f'SELECT * FROM "{sql.lake.database}"."{table}"').to_arrow_table()
        iceberg.append(rows.cast(iceberg.schema().as_arrow()))
        back = iceberg.scan().to_arrow()
        assert _exact_rows(back.to_pylist()) == _exact_rows(rows.to_pylist()), table
        assert len(iceberg.spec().fields) == len(partitioning)
    history = cat.load_table(f"{sql.lake.database}.{sql.names.iceberg_history_table}")
    types = {f.name: str(f.field_type) for f in history.schema().fields}
    assert types[CHANGE_TIME] == "timestamp"  # Iceberg's timestamp: microseconds, no zone
    # Every declared decimal keeps its precision and scale (a table declaring none has nothing to check here).
    for column in sql.columns:
        if column.type.startswith("decimal"):
            assert types[column.name] == column.type.replace(",", ", "), column.name
    # Change days as partitions: the replayed changes weeks old have their own.
    partitions = history.inspect.partitions().to_pylist()
    assert len(partitions) == len({r[CHANGE_TIME].date() for r in proof.lake.rows(sql.names.iceberg_history_table)})


ALL_CONFIGS = {**{name: _variant(name) for name in configs.VARIANTS}, "awkward": awkward}


@pytest.mark.parametrize("name", list(ALL_CONFIGS))
def test_create_statements_declare_the_columns_partitioning_location_and_format(name: str):
    cfg = load(ALL_CONFIGS[name]())
    for spec, names in naming.tables(cfg):
        _check_create_statements(LakehouseSql(spec, names, naming.lake(cfg), 3, 24, cfg.data_lake.first_year))


def _check_create_statements(sql: LakehouseSql) -> None:
    names, lake = sql.names, sql.lake
    for ddl, table, prefix, columns, partitioning in (
        (
            sql.create_history_sql(),
            names.iceberg_history_table,
            names.iceberg_history_prefix,
            sql.history_columns(),
            "PARTITIONED BY (day(_change_time))\n",
        ),
        (sql.create_state_sql(), names.iceberg_state_table, names.iceberg_state_prefix, sql.state_columns(), ""),
    ):
        assert ddl.startswith(f"CREATE TABLE IF NOT EXISTS `{lake.database}`.`{table}` (\n")
        declared = re.findall(r"^  `([^`]+)` (\S+?),?$", ddl, flags=re.MULTILINE)
        assert declared == list(columns)
        assert f")\n{partitioning}LOCATION 's3://{lake.bucket}/{prefix}'\n" in ddl
        assert ddl.endswith("TBLPROPERTIES ('table_type'='ICEBERG', 'format'='parquet', 'write_compression'='zstd')")
    types = dict(sql.history_columns())
    assert len(types) == len(sql.history_columns()), "two columns of one name"
    assert types["_change_time"] == "timestamp" and types["_sequence_number"] == "string"
    assert all(types[c.name] == c.type for c in sql.columns if c.type.startswith("decimal"))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_execution_parameters_stand_only_in_where_clauses_and_the_merge_takes_none(name: str):
    """Athena: "Currently, ? parameters can be placed only in the WHERE clause", and parameterized queries are
    "supported only for SELECT, INSERT INTO, CTAS, and UNLOAD statements"
    (https://docs.aws.amazon.com/athena/latest/ug/querying-with-prepared-statements.html): checked on the deployed
    statements; the MERGE gets its window written into its text (inline) from the state machine's $.window only."""
    values = {"window_start": "2026-11-21-03", "window_end": "2026-11-21-07"}
    values |= {"chunk_start": "2026-01-01", "chunk_end": "2026-03-31"}
    for step in _deployed(name)[load(CONFIGS[name]()).tables[0].name].values():
        # A chunk's change days only in the INSERT's fallback (from Athena's change_days result, not from input).
        allowed = {*WINDOW_VALUES, *(CHUNK_VALUES if step.name == "insert_history_days" else ())}
        assert set(step.parameters) <= allowed, step.name
        text, parameters = bind(step, values)
        tree = sqlglot.parse_one(text, read="athena")
        placeholders = list(tree.find_all(exp.Placeholder))
        assert len(placeholders) == len(parameters), step.name
        if parameters:
            assert isinstance(tree, (exp.Select, exp.Insert)), step.name
            assert all(p.find_ancestor(exp.Where) is not None for p in placeholders), step.name
        if isinstance(tree, exp.Merge):
            assert step.inline and step.parameters == ("window_start", "window_end", "window_end")
            assert "'2026-11-21-03' AND '2026-11-21-07'" in text and "'2026-11-21-07' AS \"_arrival_hour\"" in text
        else:
            assert not step.inline, step.name


def test_an_explicit_window_reaches_the_merge_only_as_athena_formats_it(proof: Proof):
    """validate_window (deployed) returns the two hours from Athena's generated list (data_lake.first_year to the
    current hour), or no row."""
    now = datetime(2026, 11, 22, 0, 59, 59, 999999)
    first = proof.cfg.data_lake.first_year
    assert proof.lake.validate("2026-11-21-03", "2026-11-22-00", now) == [("2026-11-21-03", "2026-11-22-00", "true")]
    assert proof.lake.validate("2026-11-21-03", "2026-11-21-03", now) == [("2026-11-21-03", "2026-11-21-03", "true")]
    # Both ends of the projected years: the first hour of first_year, and every hour up to the current one.
    assert proof.lake.validate(f"{first}-01-01-00", "2026-11-22-00", now) == [
        (f"{first}-01-01-00", "2026-11-22-00", "true")
    ]
    for start, end in (
        ("2026-11-21-04", "2026-11-21-03"),  # backwards
        ("2026-11-21-3", "2026-11-21-04"),  # not zero-padded
        ("2026-11-21-24", "2026-11-22-00"),  # no such hour
        ("2026-02-29-00", "2026-03-01-00"),  # no such day
        ("2026-11-21 03", "2026-11-21-04"),
        (f"{first - 1}-12-31-23", f"{first}-01-01-00"),  # before the projected years
        ("2026-11-21-03", "2026-11-22-01"),  # after the current hour: progress would move into the future
        ("x", "y"),
        ("", ""),
    ):
        assert proof.lake.validate(start, end, now) == [], (start, end)
    # The list follows the clock: the next hour is valid once it has begun.
    assert proof.lake.validate("2026-11-22-01", "2026-11-22-01", now + timedelta(microseconds=1)) == [
        ("2026-11-22-01", "2026-11-22-01", "true")
    ]


def test_the_lag_leaves_out_the_progress_row(proof: Proof):
    now = ls.utc(ls.run_instants()[-1]).replace(tzinfo=None)
    newest = max(datetime(1970, 1, 1) + timedelta(microseconds=c.change.time_us) for c in proof.model.state.values())
    assert proof.lake.lag(now) == int((now - newest).total_seconds())


def test_a_catch_up_must_advance():
    """A run re-reads the late window: max_hours_per_run below late_window_hours + 2 is a configuration error."""
    raw = configs.default()
    with pytest.raises(
        config.ConfigError, match=r"max_hours_per_run = 4: must be at least .*late_window_hours \+ 2 \(5\)"
    ):
        load({**raw, "lakehouse": {"late_window_hours": 3, "max_hours_per_run": 4}})
    load({**raw, "lakehouse": {"late_window_hours": 3, "max_hours_per_run": 5}})


@pytest.mark.parametrize("synthesized", ["default"], indirect=True)
def test_the_proof_runs_what_the_default_configuration_deploys(synthesized):
    """The session's synthesis of the whole default app (pipeline, nag packs) deploys the proven statements: all but
    the window statement, which carries late_window_hours and max_hours_per_run (3 and 72 there, 2 and 5 in the
    proof stream), are the same text with the same window values."""
    template = template_of(synthesized.consumer_stage.data_lake).to_json()
    spec, names = naming.tables(synthesized.cfg)[0]
    deployed = maintenance_steps(template, names.maintenance_state_machine)
    proved = _deployed("default")[spec.name]
    assert set(deployed) == set(proved)
    for name in set(deployed) - {"window"}:
        assert deployed[name] == proved[name], name
    lake = synthesized.cfg.lakehouse
    cfg = synthesized.cfg
    sql = LakehouseSql(
        spec, names, naming.lake(cfg), lake.late_window_hours, lake.max_hours_per_run, cfg.data_lake.first_year
    )
    assert deployed["window"].sql == sql.window_sql()


def test_no_insert_writes_more_partitions_than_athena_allows(proof: Proof):
    """Every INSERT of the proof was checked against Athena's 100 partitions (DuckDB has no limit). The replay of
    error objects from more than 100 change days made one run's INSERT too wide: that run went through the
    deployed fallback (change_days, then insert_history_days per chunk), and history and state still equal the rule
    after it (the run-by-run tests)."""
    assert proof.lake.fallbacks >= 1
    assert 3 <= proof.lake.most_insert_partitions <= CHUNK_DAYS < config.ATHENA_MAX_PARTITIONS_PER_INSERT
    days = {c.change.time_us // ls.DAY_US for c in proof.visible}
    assert len(days) > config.ATHENA_MAX_PARTITIONS_PER_INSERT
