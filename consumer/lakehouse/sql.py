"""All SQL of the lakehouse, in Athena's dialect (engine 3, Trino), in one place.

INTERFACE CONTRACT (the constructs and the offline proof rely on these names):

- ``LakehouseSql(spec, names, lake, late_window_hours, max_hours_per_run, first_year)``
- ``history_columns()`` / ``state_columns()``: ``(name, type)`` pairs of each Iceberg table, Athena DDL types
  (``string``, ``boolean``, ``bigint``, ``decimal(38,2)``, ``timestamp``, ...), in table order.
- ``history_partitioning`` / ``state_partitioning``: the Iceberg partition transforms, e.g. ``("day(_change_time)",)``.
- ``create_history_sql()`` / ``create_state_sql()``: ``CREATE TABLE IF NOT EXISTS ... TBLPROPERTIES
  ('table_type'='ICEBERG', ...)`` statements, for whichever way the tables get created.
- ``steps()``: the maintenance statements in execution order, each ``Step(name, sql, parameters, inline)``; every
  ``?`` in a statement stands for, in order, the named window values (``window_start``/``window_end``: arrival hours
  as 'yyyy-MM-dd-HH' text, both inclusive) that the ``window`` step's single result row returns. A step with
  ``inline=False`` receives them as Athena execution parameters (quoted string literals); for ``inline=True`` (the
  MERGE) the state machine writes them into the statement's text (``States.Format``), see "Why the MERGE takes its
  window as text" below.
- ``validate_window_step()``: for an explicit window from the execution input: one row of ``WINDOW_COLUMNS`` with
  both hours re-formatted by Athena, or no row when they are not two projected hours 'YYYY-MM-DD-HH', start <= end.
- ``change_days_step()`` / ``insert_history_days_step()``: the INSERT's fallback when one INSERT would write more
  partitions than Athena allows (chunks of at most ``CHUNK_DAYS`` change days, each ``?`` a window value or a
  chunk's first/last day ``CHUNK_VALUES`` from ``change_days``' own result).
- ``maintenance_steps()``: ``OPTIMIZE``/``VACUUM`` of both tables (daily); ``lag_step()``: the state's lag in
  seconds (one row, one bigint column; NULL while the state holds no change).
- ``history_view_sql()`` / ``current_view_sql()`` (+ ``..._view_columns()``): the user-facing
  ``<table>_history`` / ``<table>_current`` views over the Iceberg tables.

How a run works (docs/lakehouse.md, "Maintenance SQL", says it for users):

1. ``window``: the arrival hours to read. Start = the last hour a run has merged (the progress row of the state
   table, below) minus the late window, or now minus the late window on the first run; end = start +
   ``max_hours_per_run`` - 1, at most the current hour; ``caught_up`` tells whether the end is the current hour.
2. ``insert_history``: the distinct changes of those raw partitions (``<table>_lines``), read with exact types,
   anti-joined on ``_event_id``: re-running a window, or running it again after a crash, inserts nothing twice.
3. ``merge_state``: the history rows of the window's arrival hours, one per key (the ordering rule), applied to
   the state only when newer by the full rule than the row already there; deletes stay as tombstones. The same
   MERGE moves the progress row to the window's end, so a run that failed before it is repeated, whole.

Why the MERGE takes its window as text: Athena's execution parameters are "supported only for SELECT, INSERT INTO,
CTAS, and UNLOAD statements", and "? parameters can be placed only in the WHERE clause"
(https://docs.aws.amazon.com/athena/latest/ug/querying-with-prepared-statements.html, "Considerations and
limitations"). So ``merge_state`` is ``inline``: its ``?`` mark where the state machine writes the window's hours
as SQL string literals into the QueryString with ``States.Format`` (maintenance.py). Only Athena-generated text is
ever written there: the ``window`` step's own result, or for an explicit window the result of
``validate_window_step()``, which takes the given values as execution parameters (a SELECT, in a WHERE clause:
allowed) and returns the matching hours from a generated list, formatted by Athena ('YYYY-MM-DD-HH': digits and
'-'), or no row, and the execution fails. The INSERT keeps execution parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from consumer.catalog import LINE_COLUMN
from consumer.columns import PARTITION_COLUMNS, Column, key_columns, table_columns, trino_type
from consumer.queries import DEFAULT_ORIGIN, SEQUENCE_WIDTH, ViewColumn, quote
from shared.config import ATHENA_MAX_PARTITIONS_PER_INSERT, TableSpec
from shared.naming import LakeNames, TableNames

WINDOW_VALUES = ("window_start", "window_end")
# One chunk of change days for the INSERT's fallback ('YYYY-MM-DD', both inclusive): change_days_step() returns them.
CHUNK_VALUES = ("chunk_start", "chunk_end")
# Change days per fallback INSERT: under Athena's 100 partitions per INSERT (history is partitioned by change day).
CHUNK_DAYS = 90
# What the window step returns, in order (window values, then whether the window reaches the current hour).
WINDOW_COLUMNS = (*WINDOW_VALUES, "caught_up")
# Arrival hours as text, the way they compare: 'YYYY-MM-DD-HH' (Trino date_format/date_parse specifiers,
# https://trino.io/docs/current/functions/datetime.html#mysql-date-functions).
HOUR_FORMAT = "%Y-%m-%d-%H"
# The one place a maintenance statement reads the clock (the offline proof substitutes a fixed instant for it).
# Athena's current_timestamp is the query's start time, with time zone; AT TIME ZONE 'UTC' makes its hour UTC.
NOW_SQL = "current_timestamp AT TIME ZONE 'UTC'"

# Columns the lakehouse adds to the raw table's columns (consumer.columns.QUERY_COLUMNS reserves the names):
CHANGE_TIME = "_change_time"  # _approximate_creation_time as timestamp(6): Iceberg timestamps hold microseconds
ARRIVAL_HOUR = "_arrival_hour"  # the raw partition the change was read from, 'YYYY-MM-DD-HH'
LINE = "_line"  # the transform's whole line (new image included): no undeclared attribute is lost

# The progress row of the state table: every key column '' (DynamoDB key values are never empty: "partition key and
# sort key attributes of base tables continue to require non-empty values for all data types, including String and
# Binary", https://aws.amazon.com/about-aws/whats-new/2020/05/amazon-dynamodb-now-supports-empty-values-for-non-key-
# string-and-binary-attributes-in-dynamodb-tables/; a number key has digits), _event_id NULL,
# _is_deleted true (so the current view never shows it) and _arrival_hour = the last arrival hour merged.
PROGRESS_KEY = ""

_ATHENA_ICEBERG_TYPES = {
    # Athena's Iceberg tables have no tinyint/smallint/char/varchar(n)
    # (https://docs.aws.amazon.com/athena/latest/ug/querying-iceberg-supported-data-types.html): widen.
    "tinyint": "int",
    "smallint": "int",
    "integer": "int",
}


def iceberg_type(hive_type: str) -> str:
    """The Athena DDL type of an Iceberg column holding a raw column of ``hive_type``."""
    text = re.sub(r"\s+", "", hive_type.lower())
    text = re.sub(r"varchar\(\d+\)", "string", text)
    return re.sub(r"\b(tinyint|smallint|integer)\b", lambda m: _ATHENA_ICEBERG_TYPES[m.group(1)], text)


def engine_type(iceberg: str) -> str:
    """The Trino type of an Iceberg column as Athena engine 3 reads it: timestamps have microseconds
    (https://docs.aws.amazon.com/athena/latest/ug/querying-iceberg-supported-data-types.html)."""
    return trino_type(iceberg).replace("timestamp(3)", "timestamp(6)")


class IcebergViewColumn(ViewColumn):
    """A view column over an Iceberg table: Glue type as declared, view type as the engine reads Iceberg."""

    @property
    def trino_type(self) -> str:
        return engine_type(self.hive_type)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def json_path(json_key: str) -> str:
    """The bracket JSON path of one top-level key (dots and non-ASCII stay part of the key: Trino's
    JsonPathTokenizer reads quoted subscripts; docs/lake-queries.md, "Attributes nobody declared")."""
    return '$["' + json_key.replace("\\", "\\\\").replace('"', '\\"') + '"]'


@dataclass(frozen=True)
class Step:
    """One Athena statement of the maintenance run: its state name, its SQL and the window values its ``?`` stand
    for, in order. ``inline``: the values are written into the text by the state machine (``States.Format``: only
    Athena-generated hour texts, module docstring) instead of being passed as execution parameters."""

    name: str
    sql: str
    parameters: tuple[str, ...] = ()
    inline: bool = False


@dataclass(frozen=True)
class LakehouseSql:
    spec: TableSpec
    names: TableNames
    lake: LakeNames
    late_window_hours: int
    max_hours_per_run: int
    # data_lake.first_year: the first arrival year the raw tables project, so an explicit window starts no earlier.
    first_year: int

    history_partitioning: tuple[str, ...] = ("day(_change_time)",)
    state_partitioning: tuple[str, ...] = ()
    columns: tuple[Column, ...] = field(init=False, repr=False)
    keys: tuple[Column, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # late_window_hours and max_hours_per_run are checked by the configuration (shared/config.py,
        # _lakehouse_checks: a catch-up must advance, one run stays under Athena's 100 partitions per INSERT).
        object.__setattr__(self, "columns", table_columns(self.spec))
        object.__setattr__(self, "keys", key_columns(self.spec))

    # --- tables -----------------------------------------------------------------------------------------------
    def history_columns(self) -> tuple[tuple[str, str], ...]:
        return (
            *((c.name, iceberg_type(c.type)) for c in self.columns),
            (CHANGE_TIME, "timestamp"),
            (ARRIVAL_HOUR, "string"),
            (LINE, "string"),
        )

    def state_columns(self) -> tuple[tuple[str, str], ...]:
        # The state holds one whole history row per key (the winner by the rule), plus the progress row.
        return self.history_columns()

    def _table(self, name: str) -> str:
        return f"{quote(self.lake.database)}.{quote(name)}"

    @property
    def history_table(self) -> str:
        return self._table(self.names.iceberg_history_table)

    @property
    def state_table(self) -> str:
        return self._table(self.names.iceberg_state_table)

    def _create(
        self, table: str, prefix: str, columns: tuple[tuple[str, str], ...], partitioning: tuple[str, ...]
    ) -> str:
        # Athena DDL quotes identifiers with backticks; names starting with '_' need them
        # (https://docs.aws.amazon.com/athena/latest/ug/tables-databases-columns-names.html).
        # Syntax and properties: https://docs.aws.amazon.com/athena/latest/ug/querying-iceberg-creating-tables.html
        # ('format' parquet, 'write_compression' zstd; Athena creates Iceberg v2 tables).
        body = ",\n".join(f"  `{name}` {type_}" for name, type_ in columns)
        partitioned = f"PARTITIONED BY ({', '.join(partitioning)})\n" if partitioning else ""
        return (
            f"CREATE TABLE IF NOT EXISTS `{self.lake.database}`.`{table}` (\n{body}\n)\n"
            f"{partitioned}"
            f"LOCATION 's3://{self.lake.bucket}/{prefix}'\n"
            "TBLPROPERTIES ('table_type'='ICEBERG', 'format'='parquet', 'write_compression'='zstd')"
        )

    def create_history_sql(self) -> str:
        return self._create(
            self.names.iceberg_history_table,
            self.names.iceberg_history_prefix,
            self.history_columns(),
            self.history_partitioning,
        )

    def create_state_sql(self) -> str:
        return self._create(
            self.names.iceberg_state_table,
            self.names.iceberg_state_prefix,
            self.state_columns(),
            self.state_partitioning,
        )

    # --- pieces -----------------------------------------------------------------------------------------------
    def _column_list(self, prefix: str = "", indent: str = "  ") -> str:
        return f",\n{indent}".join(f"{prefix}{quote(name)}" for name, _ in self.history_columns())

    def _extract(self, column: Column) -> str:
        """One raw column read from the line text, exactly.

        ``json_extract_scalar`` returns the value's own text (Trino's JsonExtract.ScalarValueJsonExtractor returns
        ``jsonParser.getText()``; a JSON null, object or array gives NULL; a line that is not JSON gives NULL) and
        matches the key exactly, case included. A number's digits therefore reach ``decimal(p,s)`` through no
        double; a value that does not fit its type reads NULL (``try_cast``), as the raw table's
        ``use.null.for.invalid.data`` does.
        """
        path = _literal(json_path(column.json_key))
        target = engine_type(iceberg_type(column.type))
        if re.match(r"(array|map|row)\(", target):
            return f"try_cast(json_extract({quote(LINE_COLUMN)}, {path}) AS {target})"
        text = f"json_extract_scalar({quote(LINE_COLUMN)}, {path})"
        return text if target == "varchar" else f"try_cast({text} AS {target})"

    @staticmethod
    def _change_time(text: str) -> str:
        # '2026-11-21T03:00:00.123456Z' (fixed width, the transform contract) -> timestamp(6), no time-zone or
        # millisecond function in between (from_iso8601_timestamp would keep milliseconds only).
        return f"try_cast(concat(substr({text}, 1, 10), ' ', substr({text}, 12, 15)) AS timestamp(6))"

    def _arrival(self) -> str:
        return "concat(" + ", '-', ".join(quote(p) for p in PARTITION_COLUMNS) + ")"

    def _partition_filter(self) -> tuple[str, tuple[str, ...]]:
        """The raw partitions of the window, with the bounds as literals (execution parameters).

        The year is compared on its own column so Athena's partition projection gets a range per column to
        enumerate (https://docs.aws.amazon.com/athena/latest/ug/partition-projection.html: pruning applies to
        projected tables too); the exact hour range is the concatenated text, which compares like time because
        every part is zero-padded (month, day, hour have two digits: naming.DATE_PARTITIONS).
        """
        year = quote(PARTITION_COLUMNS[0])
        sql = f"{year} BETWEEN substr(?, 1, 4) AND substr(?, 1, 4)\n    AND {self._arrival()} BETWEEN ? AND ?"
        return sql, (*WINDOW_VALUES, *WINDOW_VALUES)

    @staticmethod
    def _sequence(alias: str = "") -> str:
        return f"lpad({alias}\"_sequence_number\", {SEQUENCE_WIDTH}, '0')"

    def order_key(self, alias: str = "") -> str:
        """The ordering rule as one text that compares like the rule (higher = newer): origin (live '1' beats
        backfill '0'; a missing origin is live), the change time (fixed-width text with microseconds), the sequence
        number padded to 129 digits (a missing one lowest: 129 spaces sort below any digit), then ``_event_id``.
        Every part before the last has a fixed width, so text comparison is the rule's lexicographic order."""
        a = alias
        origin = f"CASE coalesce({a}\"_origin\", '{DEFAULT_ORIGIN}') WHEN '{DEFAULT_ORIGIN}' THEN '1' ELSE '0' END"
        missing = f"lpad('', {SEQUENCE_WIDTH}, ' ')"
        return (
            f'concat({origin}, {a}"_approximate_creation_time", '
            f'coalesce({self._sequence(a)}, {missing}), {a}"_event_id")'
        )

    def _key_match(self, left: str, right: str) -> str:
        return " AND ".join(f"{left}{quote(c.name)} = {right}{quote(c.name)}" for c in self.keys)

    # --- steps ------------------------------------------------------------------------------------------------
    def window_sql(self) -> str:
        progress = " AND ".join(f"{quote(c.name)} = {_literal(PROGRESS_KEY)}" for c in self.keys)
        last = self.max_hours_per_run - 1
        fmt = _literal(HOUR_FORMAT)
        return (
            f"-- The arrival hours the next run of {self.names.key} reads: from the last hour merged (the state's\n"
            f"-- progress row) minus the late window ({self.late_window_hours} h), or from now minus the late window\n"
            f"-- on the first run; at most {self.max_hours_per_run} hours, never past the current hour (UTC).\n"
            'SELECT\n  date_format("start_hour", ' + fmt + ') AS "window_start",\n'
            f'  date_format(least("start_hour" + INTERVAL \'{last}\' HOUR, "now_hour"), {fmt}) AS "window_end",\n'
            f"  CASE WHEN \"start_hour\" + INTERVAL '{last}' HOUR >= \"now_hour\" THEN 'true' ELSE 'false' END"
            ' AS "caught_up"\n'
            "FROM (\n"
            f"  SELECT\n    coalesce(date_parse((\n"
            f'      SELECT max("{ARRIVAL_HOUR}") FROM {self.state_table}\n'
            f'      WHERE {progress} AND "_event_id" IS NULL), {fmt}), "now_hour")\n'
            f"      - INTERVAL '{self.late_window_hours}' HOUR AS \"start_hour\",\n"
            '    "now_hour"\n'
            f'  FROM (SELECT date_parse(date_format({NOW_SQL}, {fmt}), {fmt}) AS "now_hour")\n'
            ")"
        )

    def _new_changes(self) -> tuple[str, str, tuple[str, ...]]:
        """``WITH "lines" AS (...), "copies" AS (...)``, the SELECT of the window's new distinct changes (the
        INSERT's rows) and the partition filter's execution parameters."""
        partitions, parameters = self._partition_filter()
        extractions = ",\n      ".join(f"{self._extract(c)} AS {quote(c.name)}" for c in self.columns)
        time_text = f"json_extract_scalar({quote(LINE_COLUMN)}, {_literal(json_path('_approximate_creation_time'))})"
        ctes = (
            'WITH "lines" AS (\n'
            f"  SELECT\n      {extractions},\n"
            f"      {self._change_time(time_text)} AS {quote(CHANGE_TIME)},\n"
            f"      {self._arrival()} AS {quote(ARRIVAL_HOUR)},\n"
            f"      {quote(LINE_COLUMN)} AS {quote(LINE)}\n"
            f"  FROM {self._table(self.names.lines_table)}\n"
            f"  WHERE {partitions}\n"
            "),\n"
            '"copies" AS (\n'
            "  SELECT\n    *,\n"
            "    row_number() OVER (\n"
            '      PARTITION BY "_event_id"\n'
            f'      ORDER BY {self._sequence()} NULLS LAST, "_shard_id" NULLS LAST,\n'
            f"        {quote(ARRIVAL_HOUR)}, {quote(LINE)}\n"
            '    ) AS "_copy"\n'
            '  FROM "lines"\n'
            f'  WHERE "_event_id" IS NOT NULL AND {quote(CHANGE_TIME)} IS NOT NULL\n'
            ")"
        )
        select = (
            f"SELECT\n  {self._column_list('c.')}\n"
            'FROM "copies" AS c\n'
            'WHERE c."_copy" = 1\n'
            "  AND NOT EXISTS (\n"
            # Equal change times too: copies of one change carry one time, and the equality lets the engine prune
            # history by its day partitions and file statistics instead of reading every _event_id ever written.
            f"    SELECT 1 FROM {self.history_table} AS h\n"
            f'    WHERE h."_event_id" = c."_event_id" AND h.{quote(CHANGE_TIME)} = c.{quote(CHANGE_TIME)})'
        )
        return ctes, select, parameters

    def insert_history_sql(self) -> tuple[str, tuple[str, ...]]:
        ctes, select, parameters = self._new_changes()
        sql = (
            f"-- New distinct changes of {self.names.key} from the window's raw partitions (arrival hours,\n"
            "-- inclusive), read from the line text with exact types. One copy per _event_id: the one the raw views\n"
            "-- keep (lowest sequence number, a copy without one last, then shard, arrival hour, line); a change\n"
            "-- already in history is skipped, so a window run twice, or again after a crash, inserts nothing twice.\n"
            f"INSERT INTO {self.history_table} (\n  {self._column_list()}\n)\n{ctes}\n{select}"
        )
        return sql, parameters

    @staticmethod
    def _change_day(alias: str = "") -> str:
        return f"date_format({alias}{quote(CHANGE_TIME)}, '%Y-%m-%d')"

    def change_days_step(self) -> Step:
        """The INSERT's fallback, 1 of 2: the change days of the window's new changes in chunks of at most
        ``CHUNK_DAYS`` days, one row each (``chunk_start``, ``chunk_end``: 'YYYY-MM-DD', inclusive), in order.

        One INSERT writes at most 100 partitions (https://docs.aws.amazon.com/athena/latest/ug/ctas-insert-into.html)
        and history has one per change day, so a window holding changes of more than 100 days (a replay of error or
        backup objects from months of history) fails the INSERT with ``..._TOO_MANY_OPEN_PARTITIONS``; the state
        machine then inserts chunk by chunk (``insert_history_days_step``). ``floor`` keeps the chunk number whole in
        any engine (Trino divides bigints exactly, others do not)."""
        ctes, select, parameters = self._new_changes()
        sql = (
            f"-- The change days of {self.names.key}'s new changes in this window, {CHUNK_DAYS} at a time.\n"
            f'{ctes},\n"new" AS (\n{select}\n),\n'
            f'"days" AS (SELECT DISTINCT {self._change_day()} AS "day" FROM "new"),\n'
            '"numbered" AS (\n'
            f'  SELECT "day", floor((row_number() OVER (ORDER BY "day") - 1) / {CHUNK_DAYS}) AS "chunk" FROM "days"\n'
            ")\n"
            f'SELECT min("day") AS "{CHUNK_VALUES[0]}", max("day") AS "{CHUNK_VALUES[1]}"\n'
            'FROM "numbered"\n'
            'GROUP BY "chunk"\n'
            'ORDER BY "chunk"'
        )
        return Step("change_days", sql, parameters)

    def insert_history_days_step(self) -> Step:
        """The INSERT's fallback, 2 of 2: ``insert_history`` restricted to one chunk of change days (at most
        ``CHUNK_DAYS`` partitions). Idempotent like it: a chunk run twice inserts nothing twice."""
        insert, parameters = self.insert_history_sql()
        sql = (
            f"-- One chunk of at most {CHUNK_DAYS} change days ({CHUNK_VALUES[0]}..{CHUNK_VALUES[1]}) of:\n"
            + insert
            + f"\n  AND {self._change_day('c.')} BETWEEN ? AND ?"
        )
        return Step("insert_history_days", sql, (*parameters, *CHUNK_VALUES))

    def merge_source_sql(self) -> tuple[str, tuple[str, ...]]:
        """The MERGE's source: one row per key (Athena fails a MERGE when a target row matches several source rows:
        https://docs.aws.amazon.com/athena/latest/ug/merge-into-statement.html), plus the progress row."""
        keys = ", ".join(quote(c.name) for c in self.keys)
        progress_values = []
        for name, type_ in self.history_columns():
            if name in {c.name for c in self.keys}:
                value = _literal(PROGRESS_KEY)
            elif name == "_is_deleted":
                value = "true"
            elif name == ARRIVAL_HOUR:
                value = "?"  # the window's end, written into the text (inline step)
            else:
                value = f"CAST(NULL AS {engine_type(type_)})"
            progress_values.append(f"{value} AS {quote(name)}")
        sql = (
            f"SELECT\n    {self._column_list(indent='    ')}\n"
            "  FROM (\n"
            "    SELECT\n      *,\n"
            f'      row_number() OVER (PARTITION BY {keys} ORDER BY {self.order_key()} DESC) AS "_state_rank"\n'
            f"    FROM {self.history_table}\n"
            f"    WHERE {quote(ARRIVAL_HOUR)} BETWEEN ? AND ?)\n"
            '  WHERE "_state_rank" = 1\n'
            "  UNION ALL\n"
            f"  SELECT\n    {(',' + chr(10) + '    ').join(progress_values)}"
        )
        return sql, (*WINDOW_VALUES, "window_end")

    def _hours(self) -> str:
        """``"hours"``, a WITH clause: every arrival hour the raw tables project, from ``first_year`` to the current
        hour (UTC), as 'YYYY-MM-DD-HH' text.

        ``validate_window_step()`` picks an explicit window's hours from it with ``WHERE "hour" = ?``: Athena accepts
        execution parameters only in WHERE clauses ("Currently, ? parameters can be placed only in the WHERE clause.
        Syntax like SELECT ? FROM table is not supported",
        https://docs.aws.amazon.com/athena/latest/ug/querying-with-prepared-statements.html). Weeks x days x hours,
        because Trino's sequence() returns at most 10,000 elements (weeks last 190 years); one week more than
        date_diff counts, and the filter on the clock, make the list exact whichever way an engine rounds weeks. A
        window ending after the current hour is refused: its end would move the state's progress row into the
        future, and scheduled runs would skip every hour until then.
        """
        # Both sides timestamp(3) without a zone: Trino's date_diff wants one type, and a cast to a lower
        # precision would round 17:59:59.6 up into the next hour.
        start = f"TIMESTAMP '{self.first_year:04d}-01-01 00:00:00.000'"
        return (
            f'"clock" AS (SELECT CAST({NOW_SQL} AS timestamp(3)) AS "now"),\n'
            '"hours" AS (\n'
            f'  SELECT date_format("time", {_literal(HOUR_FORMAT)}) AS "hour"\n'
            "  FROM (\n"
            f'    SELECT date_add(\'hour\', 24 * (7 * "w" + "d") + "h", {start}) AS "time", "now"\n'
            '    FROM "clock"\n'
            f'    CROSS JOIN UNNEST(sequence(0, date_diff(\'week\', {start}, "now") + 1)) AS "weeks"("w")\n'
            '    CROSS JOIN UNNEST(sequence(0, 6)) AS "days"("d")\n'
            '    CROSS JOIN UNNEST(sequence(0, 23)) AS "day_hours"("h"))\n'
            '  WHERE "time" <= "now")'
        )

    def merge_state_sql(self) -> tuple[str, tuple[str, ...]]:
        source, parameters = self.merge_source_sql()
        names = [name for name, _ in self.history_columns()]
        updates = ",\n    ".join(f"{quote(n)} = s.{quote(n)}" for n in names)
        inserts = ", ".join(quote(n) for n in names)
        values = ", ".join(f"s.{quote(n)}" for n in names)
        sql = (
            f"-- The window's history rows of {self.names.key}, one per key by the ordering rule, applied to the\n"
            "-- state only when newer by the same rule than the row already there (origin, change time, sequence\n"
            "-- number, _event_id), whatever window each arrived in; deletes stay as tombstones (_is_deleted = true)\n"
            "-- so an older change arriving late never brings an item back. The progress row moves to the window's\n"
            "-- end.\n"
            f"MERGE INTO {self.state_table} AS t\n"
            f"USING (\n  {source}\n) AS s\n"
            f"ON ({self._key_match('t.', 's.')})\n"
            'WHEN MATCHED AND s."_event_id" IS NULL THEN UPDATE SET\n'
            f"    {quote(ARRIVAL_HOUR)} = greatest(t.{quote(ARRIVAL_HOUR)}, s.{quote(ARRIVAL_HOUR)})\n"
            f'WHEN MATCHED AND s."_event_id" IS NOT NULL AND {self.order_key("s.")} > {self.order_key("t.")}'
            " THEN UPDATE SET\n"
            f"    {updates}\n"
            f"WHEN NOT MATCHED THEN INSERT ({inserts})\n  VALUES ({values})"
        )
        return sql, parameters

    def steps(self) -> tuple[Step, ...]:
        """window (no parameters, one row of WINDOW_COLUMNS), insert_history (execution parameters), merge_state
        (inline: Athena takes no execution parameters for MERGE), in order."""
        insert, insert_parameters = self.insert_history_sql()
        merge, merge_parameters = self.merge_state_sql()
        return (
            Step("window", self.window_sql()),
            Step("insert_history", insert, insert_parameters),
            Step("merge_state", merge, merge_parameters, inline=True),
        )

    def validate_window_step(self) -> Step:
        """An explicit window (execution input) as Athena formats it: one row of WINDOW_COLUMNS (``caught_up`` 'true':
        an explicit window is one range) when both values are projected hours 'YYYY-MM-DD-HH' and start <= end, no
        row otherwise. The values arrive as execution parameters in WHERE clauses only (allowed for a SELECT); what
        the MERGE later gets in its text is this result, never the input."""
        sql = (
            f"-- An explicit window for {self.names.key}, re-formatted by Athena from the projected hours, or no row.\n"
            f"WITH {self._hours()}\n"
            'SELECT s."hour" AS "window_start", e."hour" AS "window_end", \'true\' AS "caught_up"\n'
            'FROM "hours" AS s\n'
            'CROSS JOIN "hours" AS e\n'
            'WHERE s."hour" = ? AND e."hour" = ? AND s."hour" <= e."hour"'
        )
        return Step("validate_window", sql, WINDOW_VALUES)

    def lag_step(self) -> Step:
        """``measure_lag``: seconds from the newest change time applied to the state to now (one row, one bigint
        column; NULL while the state holds no change). The progress row (``_event_id`` NULL) is not a change."""
        sql = (
            f"-- The state lag of {self.names.key}: now - the newest change time applied (seconds).\n"
            f"SELECT date_diff('second', max({quote(CHANGE_TIME)}), CAST({NOW_SQL} AS timestamp(6)))"
            ' AS "lag_seconds"\n'
            f"FROM {self.state_table}\n"
            'WHERE "_event_id" IS NOT NULL'
        )
        return Step("measure_lag", sql)

    def maintenance_steps(self) -> tuple[Step, ...]:
        """Daily table maintenance of both tables: compaction (data files and the MERGE's delete files), then snapshot
        expiry and orphan-file removal.

        ``OPTIMIZE [db_name.]table_name REWRITE DATA USING BIN_PACK`` rewrites data files "based on their size and
        number of associated delete files" (https://docs.aws.amazon.com/athena/latest/ug/optimize-statement.html);
        ``VACUUM [database_name.]target_table`` performs "snapshot expiration and orphan file removal"
        (https://docs.aws.amazon.com/athena/latest/ug/vacuum-statement.html). VACUUM wants backticks (not double
        quotes) around a table name that begins with '_'; the names here are plain identifiers (database
        ``<prefix>_datalake``, tables ``<table>_iceberg_*``: [a-z0-9_], starting with a letter), written unquoted.
        """
        statements = []
        for verb, template in (
            ("optimize", "OPTIMIZE {} REWRITE DATA USING BIN_PACK"),
            ("vacuum", "VACUUM {}"),
        ):
            for kind, table in (
                ("history", self.names.iceberg_history_table),
                ("state", self.names.iceberg_state_table),
            ):
                for part in (self.lake.database, table):
                    if not re.fullmatch(r"[a-z][a-z0-9_]*", part):
                        raise ValueError(f"{part!r} is not a plain identifier; OPTIMIZE/VACUUM write it unquoted")
                statements.append(Step(f"{verb}_{kind}", template.format(f"{self.lake.database}.{table}")))
        return tuple(statements)

    # --- views ------------------------------------------------------------------------------------------------
    def _view_columns(self) -> tuple[tuple[str, str], ...]:
        """The views' columns: every column but the whole line, like the raw views (whose tables have no line
        column); ``_line`` stays in the tables for undeclared attributes, and a query that does not need it does
        not pay for reading it."""
        return tuple((name, type_) for name, type_ in self.history_columns() if name != LINE)

    def _view_list(self) -> str:
        return ",\n  ".join(quote(name) for name, _ in self._view_columns())

    def history_view_sql(self) -> str:
        """Every distinct change, numbered per item in change order (as the raw history view numbers them)."""
        keys = ", ".join(quote(c.name) for c in self.keys)
        return (
            f"SELECT\n  {self._view_list()},\n"
            "  row_number() OVER (\n"
            f"    PARTITION BY {keys}\n"
            f'    ORDER BY "_approximate_creation_time", {self._sequence()} NULLS FIRST, "_event_id"\n'
            '  ) AS "_change_number"\n'
            f"FROM {self.history_table}"
        )

    def history_view_columns(self) -> list[ViewColumn]:
        return [
            *(IcebergViewColumn(name, type_) for name, type_ in self._view_columns()),
            ViewColumn("_change_number", "bigint"),
        ]

    def current_view_sql(self) -> str:
        """The state's items that exist now: tombstones and the progress row left out."""
        return (
            f"SELECT\n  {self._view_list()}\nFROM {self.state_table}\n"
            'WHERE NOT "_is_deleted" AND "_event_id" IS NOT NULL'
        )

    def current_view_columns(self) -> list[ViewColumn]:
        return [IcebergViewColumn(name, type_) for name, type_ in self._view_columns()]


if CHUNK_DAYS >= ATHENA_MAX_PARTITIONS_PER_INSERT:
    raise ValueError("a chunk of change days must stay under Athena's partitions per INSERT")
