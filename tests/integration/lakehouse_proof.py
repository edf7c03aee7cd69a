"""The lakehouse maintenance, run on DuckDB: the raw log as Firehose writes it, native tables standing in for the
Iceberg history and state tables (created from the statements' own column lists), and the maintenance statements
translated mechanically from Athena's dialect with sqlglot.

Where DuckDB differs from Athena, the harness makes it as strict as Athena, never looser:

* ``json_extract_scalar`` (Athena/Trino returns the value's own text: ``JsonExtract.ScalarValueJsonExtractor``
  returns ``jsonParser.getText()``; a JSON null, object or array gives NULL, text that is not JSON gives NULL,
  keys match exactly) becomes a DuckDB function with exactly that behaviour, because DuckDB's ``->>`` renders a
  number through a double (``12345678901234567890123456789012345678.5`` comes back as ``1.2345678901234568e37``);
* a MERGE whose source holds several rows for one target row is an error in Athena
  (https://docs.aws.amazon.com/athena/latest/ug/merge-into-statement.html) and not in DuckDB: the harness runs the
  MERGE's source first and fails if a key repeats;
* "now" is the run's instant: the window statement's one clock expression (``sql.NOW_SQL``) is replaced by it.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from duckdb.sqltypes import VARCHAR
from sqlglot import exp

from consumer.catalog import LINE_COLUMN, LINE_FIELD_DELIMITER
from consumer.columns import PARTITION_COLUMNS
from consumer.lakehouse import sql as lakehouse_sql
from consumer.lakehouse.maintenance import MAX_RESULT_ROWS
from consumer.lakehouse.sql import CHANGE_TIME, LakehouseSql, Step
from consumer.stage import ConsumerStage
from shared.config import ATHENA_MAX_PARTITIONS_PER_INSERT
from tests.integration.duck import duckdb_type
from tests.integration.lakehouse_template import bind, maintenance_steps

JSON_SCALAR = "lakehouse_json_extract_scalar"


def deployed_statements(raw: dict[str, Any]) -> dict[str, dict[str, Step]]:
    """The maintenance statements as the consumer stack deploys them for the configuration ``raw`` (a ``datalake``
    object), per source table: account B's stage synthesized alone (the stack the pipeline deploys, without the
    producer, pipeline and cdk-nag packs, which the infrastructure tests cover) and read back from its template."""
    from aws_cdk import App
    from aws_cdk.assertions import Template

    import app as app_module
    from shared import config, naming

    cfg = config.load({config.CONTEXT_KEY: raw})
    cdk_app = App(context={**app_module.feature_flags(), config.CONTEXT_KEY: raw})
    stage = ConsumerStage(cdk_app, "Consumer", cfg=cfg)
    template = Template.from_stack(stage.data_lake).to_json()
    return {
        spec.name: maintenance_steps(template, names.maintenance_state_machine) for spec, names in naming.tables(cfg)
    }


def merge_source(merge: str) -> str:
    """The USING (...) source of a MERGE statement (Athena's dialect), for the one-row-per-key check."""
    tree = sqlglot.parse_one(merge, read="athena")
    assert isinstance(tree, exp.Merge), type(tree)
    using = tree.args["using"]
    assert isinstance(using, exp.Subquery), using
    return using.this.sql(dialect="athena")


@functools.lru_cache(maxsize=8192)
def _parsed(line: str) -> dict[str, Any] | None:
    try:
        # Numbers keep their text (parse_int/parse_float get the literal), as Jackson's getText() returns it.
        value = json.loads(line, parse_int=str, parse_float=str, parse_constant=str)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def json_extract_scalar(line: str | None, key: str) -> str | None:
    """Trino's json_extract_scalar on a top-level key (the path ``$["<key>"]``, parsed by sqlglot): the scalar's
    text, NULL for null/object/array/absent."""
    obj = None if line is None else _parsed(line)
    if obj is None:
        return None
    value = obj.get(key)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return None


def to_duckdb(sql: str) -> str:
    """Athena SQL -> DuckDB SQL with sqlglot; json_extract_scalar keeps Trino's exact text (module docstring)."""
    tree = sqlglot.parse_one(sql, read="athena")

    def exact(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.JSONExtractScalar):
            path = node.expression
            assert isinstance(path, exp.JSONPath), path
            root, key = path.expressions
            assert isinstance(root, exp.JSONPathRoot) and isinstance(key, exp.JSONPathKey), path
            return exp.Anonymous(this=JSON_SCALAR, expressions=[node.this, exp.Literal.string(key.this)])
        if isinstance(node, exp.JSONExtract):
            raise AssertionError("the proof's tables declare no array/map/struct columns")
        return node

    return tree.transform(exact).sql("duckdb")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


@dataclass
class RunResult:
    window: tuple[str, str, str]
    merge_source_rows: int


class DuckLakehouse:
    """One table's raw log (files under ``root``), its history and state tables, and its maintenance statements."""

    def __init__(self, sql: LakehouseSql, root: Path, steps: dict[str, Step]) -> None:
        """``steps``: the deployed statements (``deployed_statements``), read back from the synthesized template."""
        self.sql = sql
        self.root = root
        self.steps = steps
        assert {"window", "insert_history", "merge_state", "validate_window", "measure_lag"} <= set(steps)
        self.con = duckdb.connect()
        self.con.create_function(JSON_SCALAR, json_extract_scalar, [VARCHAR, VARCHAR], VARCHAR, null_handling="special")
        database = _quote(sql.lake.database)
        self.con.execute(f"CREATE SCHEMA {database}")
        for table, columns in (
            (sql.names.iceberg_history_table, sql.history_columns()),
            (sql.names.iceberg_state_table, sql.state_columns()),
        ):
            body = ", ".join(f"{_quote(name)} {duckdb_type(type_)}" for name, type_ in columns)
            self.con.execute(f"CREATE TABLE {database}.{_quote(table)} ({body})")
        self.lines_registered = False
        self.most_insert_partitions = 0  # the most change-day partitions one INSERT wrote (Athena allows 100)
        self.fallbacks = 0  # runs whose INSERT went by chunks of change days

    def _register_lines(self) -> None:
        """``<table>_lines`` (DuckDB checks the files when the view is created: after the first object exists)."""
        if self.lines_registered:
            return
        self.lines_registered = True
        sql, root, database = self.sql, self.root, _quote(self.sql.lake.database)
        # <table>_lines: every line whole, partition columns from the Hive-style path (as the Glue table projects
        # them from naming.data_prefix; tests/integration/duck.py reads the synthesized table the same way).
        glob = str(root / re.sub(r"!\{timestamp:[^}]*\}", "*", sql.names.data_prefix) / "*")
        hive_types = "{" + ", ".join(f"'{p}': 'VARCHAR'" for p in PARTITION_COLUMNS) + "}"
        self.con.execute(
            f"CREATE VIEW {database}.{_quote(sql.names.lines_table)} AS "
            f"SELECT column0 AS {_quote(LINE_COLUMN)}, {', '.join(_quote(p) for p in PARTITION_COLUMNS)} "
            f"FROM read_csv('{glob}', columns = {{'column0': 'VARCHAR'}}, delim = '{LINE_FIELD_DELIMITER}', "
            "quote = '', escape = '', header = false, auto_detect = false, "
            f"hive_partitioning = true, hive_types = {hive_types})"
        )

    def execute(self, step: Step, values: dict[str, str], now: datetime | None = None) -> duckdb.DuckDBPyConnection:
        """Run a deployed step as Athena would receive it: execution parameters bound, or (inline) the values
        written into the text by States.Format semantics."""
        text, parameters = bind(step, values)
        if now is not None:
            assert text.count(lakehouse_sql.NOW_SQL) == 1, "the statement reads the clock once"
            text = text.replace(lakehouse_sql.NOW_SQL, f"TIMESTAMP '{now.strftime('%Y-%m-%d %H:%M:%S')}'")
        assert text.count("?") == len(parameters), step.name
        return self.con.execute(to_duckdb(text), parameters)

    def window(self, now: datetime) -> tuple[str, str, str]:
        cursor = self.execute(self.steps["window"], {}, now)
        assert [d[0] for d in cursor.description] == list(lakehouse_sql.WINDOW_COLUMNS)
        (row,) = cursor.fetchall()
        return row

    def assert_merge_source_unique(self, values: dict[str, str]) -> int:
        """Athena's MERGE rule, checked before DuckDB runs it: at most one source row per target key."""
        merge, _ = bind(self.steps["merge_state"], values)
        source = merge_source(merge)
        keys = ", ".join(_quote(c.name) for c in self.sql.keys)
        text = f"SELECT {keys}, count(*) AS n FROM ({source}) GROUP BY {keys} HAVING count(*) > 1"
        duplicates = self.con.execute(to_duckdb(text)).fetchall()
        assert not duplicates, f"several MERGE source rows for one target row: {duplicates}"
        return self.con.execute(to_duckdb(f"SELECT count(*) FROM ({source})")).fetchone()[0]

    def insert_partitions(self, step: str, values: dict[str, str]) -> int:
        """How many partitions of history (one per change day: ``day(_change_time)``) the INSERT ``step`` would
        write with these values: Athena fails an INSERT that writes more than ATHENA_MAX_PARTITIONS_PER_INSERT
        (https://docs.aws.amazon.com/athena/latest/ug/ctas-insert-into.html); DuckDB has no such limit, so the proof
        counts before it runs one."""
        assert self.sql.history_partitioning == ("day(_change_time)",)
        insert, parameters = bind(self.steps[step], values)
        source = insert[insert.index('WITH "lines"') :]
        query = f'SELECT count(DISTINCT CAST("{CHANGE_TIME}" AS DATE)) FROM ({source})'
        return self.con.execute(to_duckdb(query), parameters).fetchone()[0]

    def insert(self, values: dict[str, str]) -> None:
        """insert_history as deployed; when Athena would refuse it for writing too many partitions (the state
        machine's Catch), the fallback as deployed: change_days, then insert_history_days per chunk, in order."""
        days = self.insert_partitions("insert_history", values)
        if days <= ATHENA_MAX_PARTITIONS_PER_INSERT:
            self.most_insert_partitions = max(self.most_insert_partitions, days)
            self.execute(self.steps["insert_history"], values)
            return
        self.fallbacks += 1
        cursor = self.execute(self.steps["change_days"], values)
        assert [d[0] for d in cursor.description] == list(lakehouse_sql.CHUNK_VALUES)
        chunks = cursor.fetchall()
        assert len(chunks) + 1 <= MAX_RESULT_ROWS, "the state machine reads the chunks from one getQueryResults page"
        assert [start for start, _ in chunks] == sorted(start for start, _ in chunks)
        for chunk_start, chunk_end in chunks:
            chunk = {**values, "chunk_start": chunk_start, "chunk_end": chunk_end}
            days = self.insert_partitions("insert_history_days", chunk)
            assert days <= lakehouse_sql.CHUNK_DAYS, f"one chunk INSERT would write {days} change-day partitions"
            self.most_insert_partitions = max(self.most_insert_partitions, days)
            self.execute(self.steps["insert_history_days"], chunk)
        # Every new change was in some chunk: nothing is left for the plain INSERT.
        assert self.insert_partitions("insert_history", values) == 0

    def validate(self, start: str, end: str, now: datetime) -> list[tuple[str, str, str]]:
        """The deployed validate_window statement for an explicit window at ``now``: its rows (one, or none if
        invalid)."""
        cursor = self.execute(self.steps["validate_window"], {"window_start": start, "window_end": end}, now)
        assert [d[0] for d in cursor.description] == list(lakehouse_sql.WINDOW_COLUMNS)
        return cursor.fetchall()

    def lag(self, now: datetime) -> int | None:
        (row,) = self.execute(self.steps["measure_lag"], {}, now).fetchall()
        return row[0]

    def run(
        self, now: datetime, *, crash_after_insert: bool = False, window: tuple[str, str] | None = None
    ) -> RunResult:
        """One maintenance execution: the window (or an explicit one, as a rebuild passes), INSERT, MERGE."""
        self._register_lines()
        computed = self.window(now)
        if window is not None:
            # An explicit window reaches INSERT and MERGE only as validate_window returns it (as deployed).
            (validated,) = self.validate(*window, now)
            window = validated[:2]
        start, end = window or computed[:2]
        values = {"window_start": start, "window_end": end}
        self.insert(values)
        if crash_after_insert:
            return RunResult(computed, 0)
        rows = self.assert_merge_source_unique(values)
        self.execute(self.steps["merge_state"], values)
        return RunResult(computed, rows)

    def rows(self, table: str, where: str = "") -> list[dict[str, Any]]:
        cursor = self.con.execute(f"SELECT * FROM {_quote(self.sql.lake.database)}.{_quote(table)} {where}")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]

    def view(self, view_sql: str) -> list[dict[str, Any]]:
        cursor = self.con.execute(to_duckdb(view_sql))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]

    def column_types(self, table: str) -> Sequence[tuple[str, str]]:
        return self.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position",
            [self.sql.lake.database, table],
        ).fetchall()
