"""All SQL of the lake, in Athena's dialect (Trino), in one place.

The raw-log views (``<table>_raw_history``, ``<table>_raw_current``) and the named queries (one item's history, the
current state, changes per hour) are all built here from the same pieces, and the DuckDB proof
(tests/integration/test_lake_queries.py) runs exactly these texts, read back from the synthesized templates.

The ordering rule (docs/lake-queries.md states it with its sources):

1. duplicates (the same change delivered twice) collapse on ``_event_id``;
2. changes of an item are ordered by ``_approximate_creation_time``, compared as text (fixed-width ISO-8601
   with microseconds; Athena's TIMESTAMP holds milliseconds, https://docs.aws.amazon.com/athena/latest/ug/
   data-types-timestamps.html, and would tie changes within one millisecond), then by ``_sequence_number``
   compared as equal-width text (valid within a shard);
3. for the current state a live change (``_origin = 'stream'``) beats any backfill record of the same key,
   whatever their times; deletes are removed AFTER ranking, so a deleted item never comes back from an older
   change or an older backfill record.

Lines the OpenX SerDe could not read come back as rows of nulls (``ignore.malformed.json``); every query
skips them with ``"_event_id" IS NOT NULL``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from consumer.columns import PARTITION_COLUMNS, Column, key_columns, table_columns, trino_type
from shared.config import FIREHOSE_PROCESSOR_BUFFER_SECONDS, TableSpec
from shared.naming import LakeNames, TableNames

# Kinesis sequence numbers are decimal strings of up to 129 digits (pattern 0|([1-9]\d{0,128}):
# https://docs.aws.amazon.com/kinesis/latest/APIReference/API_SequenceNumberRange.html). Padded with zeros to
# that width they compare as text exactly as numbers do; a narrower lpad would cut longer ones, because Trino's
# lpad truncates to the given size (https://trino.io/docs/current/functions/string.html).
SEQUENCE_WIDTH = 129
# What the analyst passes for a missing _origin (lines written before the transform had the column).
DEFAULT_ORIGIN = "stream"
BACKFILL_ORIGIN = "backfill"

# Firehose names each object's partition after "the approximate arrival timestamp of the oldest record that's
# contained in the Amazon S3 object" (https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html), so a change
# lands in the hour partition of its arrival, or earlier by at most the time its object was buffered: the
# transform's buffer (shared.config.FIREHOSE_PROCESSOR_BUFFER_SECONDS) plus the S3 buffer interval. It never lands
# before the change happened, except for clock differences. A change-time window is therefore read from the
# partitions between (start - buffers - 1 hour) and (end + 1 hour): the hour on both sides absorbs clock skew and
# normal replication lag. A change that waited longer upstream (iterator age over an hour: the StreamIteratorAge
# alarm) can fall outside; query the history view without a window for those hours.
ARRIVAL_MARGIN_SECONDS = 3600


def quote(identifier: str) -> str:
    """A Trino quoted identifier: names starting with '_' or equal to a reserved word stay valid."""
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True)
class ViewColumn:
    name: str
    hive_type: str

    @property
    def trino_type(self) -> str:
        return trino_type(self.hive_type)


@dataclass(frozen=True)
class NamedQuery:
    construct_id: str
    name: str
    description: str
    sql: str
    # Athena execution parameters, in order (https://docs.aws.amazon.com/athena/latest/ug/
    # querying-with-prepared-statements-querying-using-execution-parameters.html).
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableQueries:
    """The SQL of one source table."""

    spec: TableSpec
    names: TableNames
    lake: LakeNames
    columns: tuple[Column, ...] = field(init=False)
    keys: tuple[Column, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", table_columns(self.spec))
        object.__setattr__(self, "keys", key_columns(self.spec))

    # --- pieces -----------------------------------------------------------------------------------------------
    @property
    def table(self) -> str:
        return f"{quote(self.lake.database)}.{quote(self.names.glue_table)}"

    def _select_list(self, indent: str) -> str:
        return f",\n{indent}".join(quote(c.name) for c in self.columns)

    def _key_list(self) -> str:
        return ", ".join(quote(c.name) for c in self.keys)

    @staticmethod
    def _sequence() -> str:
        return f"lpad(\"_sequence_number\", {SEQUENCE_WIDTH}, '0')"

    def distinct_changes(self, conditions: Sequence[str] = ()) -> str:
        """One row per ``_event_id`` (duplicates collapsed), from the lines matching ``conditions``.

        Copies of one change differ at most in sequence number, shard and arrival partition; the lowest sequence
        number is kept, so the result does not depend on which copy a scan meets first.
        """
        where = " AND ".join(['"_event_id" IS NOT NULL', *conditions])
        return (
            f"SELECT\n      {self._select_list('      ')}\n"
            f"    FROM (\n"
            f"      SELECT\n        *,\n"
            f"        row_number() OVER (\n"
            f'          PARTITION BY "_event_id"\n'
            f'          ORDER BY {self._sequence()} NULLS LAST, "_shard_id" NULLS LAST) AS "_copy"\n'
            f"      FROM {self.table}\n"
            f"      WHERE {where})\n"
            f'    WHERE "_copy" = 1'
        )

    # --- views ------------------------------------------------------------------------------------------------
    def history_sql(self, conditions: Sequence[str] = ()) -> str:
        """Every distinct change, numbered per item in change order (``_change_number`` 1 is the first)."""
        return (
            f"SELECT\n  {self._select_list('  ')},\n"
            f"  row_number() OVER (\n"
            f"    PARTITION BY {self._key_list()}\n"
            f'    ORDER BY "_approximate_creation_time", {self._sequence()} NULLS FIRST, "_event_id"\n'
            f'  ) AS "_change_number"\n'
            f"FROM (\n    {self.distinct_changes(conditions)}\n)"
        )

    def history_columns(self) -> list[ViewColumn]:
        return [*(ViewColumn(c.name, c.type) for c in self.columns), ViewColumn("_change_number", "bigint")]

    def current_sql(self) -> str:
        """The latest state of every item: live changes first, then latest time, then highest sequence number;
        deleted items are dropped only after that ranking."""
        origin = f"CASE coalesce(\"_origin\", '{DEFAULT_ORIGIN}') WHEN '{DEFAULT_ORIGIN}' THEN 0 ELSE 1 END"
        return (
            f"SELECT\n  {self._select_list('  ')}\n"
            f"FROM (\n"
            f"  SELECT\n    *,\n"
            f"    row_number() OVER (\n"
            f"      PARTITION BY {self._key_list()}\n"
            f"      ORDER BY {origin},\n"
            f'        "_approximate_creation_time" DESC,\n'
            f"        {self._sequence()} DESC NULLS LAST,\n"
            f'        "_event_id" DESC) AS "_state_rank"\n'
            f"  FROM (\n    {self.distinct_changes()}\n  )\n"
            f")\n"
            f'WHERE "_state_rank" = 1 AND NOT "_is_deleted"'
        )

    def current_columns(self) -> list[ViewColumn]:
        return [ViewColumn(c.name, c.type) for c in self.columns]

    # --- named queries ----------------------------------------------------------------------------------------
    def item_history(self) -> NamedQuery:
        conditions = [f"{quote(c.name)} = ?" for c in self.keys]
        keys = ", ".join(c.name for c in self.keys)
        sql = (
            f"-- Every distinct change of one item of {self.names.glue_table}, in order (the "
            f"{self.names.raw_history_view} view's SQL).\n"
            f"-- Parameters: {keys} (as text, e.g. '42' for a number key). Reads every partition: the item's\n"
            "-- history may be years long; add a partition filter on year/month/day/hour to read less.\n"
            f"SELECT *\nFROM (\n{self.history_sql(conditions)}\n)\n"
            'ORDER BY "_change_number"'
        )
        return NamedQuery(
            construct_id="ItemHistory",
            name=f"{self.names.glue_table}: one item's history",
            description=f"Every distinct change of one item of {self.names.glue_table}, in change order",
            sql=sql,
            parameters=tuple(c.name for c in self.keys),
        )

    def current_state(self) -> NamedQuery:
        order = ", ".join(quote(c.name) for c in self.keys)
        sql = (
            f"-- The current state of every item of {self.names.glue_table} (the {self.names.raw_current_view} view's"
            " SQL):\n"
            "-- a live change beats any backfill record, then the latest change time, then the highest sequence\n"
            "-- number; deleted items are removed after that ranking.\n"
            f"SELECT *\nFROM (\n{self.current_sql()}\n)\nORDER BY {order}"
        )
        return NamedQuery(
            construct_id="CurrentState",
            name=f"{self.names.glue_table}: current state",
            description=f"The current state of every item of {self.names.glue_table}, deletes removed",
            sql=sql,
        )

    def partition_margins(self, buffer_interval_seconds: int) -> tuple[int, int]:
        """Seconds read before the window start and after its end (see ARRIVAL_MARGIN_SECONDS)."""
        before = FIREHOSE_PROCESSOR_BUFFER_SECONDS + buffer_interval_seconds + ARRIVAL_MARGIN_SECONDS
        return before, ARRIVAL_MARGIN_SECONDS

    def changes_per_hour(self, buffer_interval_seconds: int) -> NamedQuery:
        """Distinct changes per change hour and event type, for a window of change time.

        The window is two hour texts ('2026-11-21T05', end exclusive), compared as text with the change time.
        The partitions (Firehose arrival hours) are read from ``before`` seconds ahead of the window start to
        ``after`` seconds past its end; the parameters appear twice because Athena's partition pruning needs
        them as literals in the partition filter.
        """
        before, after = self.partition_margins(buffer_interval_seconds)
        processor_buffer = FIREHOSE_PROCESSOR_BUFFER_SECONDS
        partition = " || '-' || ".join(quote(p) for p in PARTITION_COLUMNS)

        def bound(offset: str) -> str:
            return f"date_format(date_parse(?, '%Y-%m-%dT%H') {offset}, '%Y-%m-%d-%H')"

        low, high = bound(f"- INTERVAL '{before}' SECOND"), bound(f"+ INTERVAL '{after}' SECOND")
        conditions = [f"{partition} BETWEEN {low} AND {high}"]
        sql = (
            f"-- Distinct changes of {self.names.glue_table} per hour of change time and event type.\n"
            "-- Parameters: 1 window start, 2 window end: change-time hours as text, e.g. '2026-11-21T05' and\n"
            "-- '2026-11-22T00' (end exclusive, UTC); 3 and 4: the same two values again (the partition filter\n"
            "-- needs them as literals to prune partitions).\n"
            "-- Partitions are Firehose ARRIVAL hours, not change hours: a change arrives after it happened, and\n"
            "-- its object is named after the oldest record in it, up to the buffers earlier. So the partitions\n"
            f"-- read run from {before} s before the window start (transform buffer {processor_buffer} s +"
            f" S3 buffer\n-- {buffer_interval_seconds} s + 1 hour for clock skew and replication lag) to"
            f" {after} s after its end (1 hour of lag).\n"
            "-- A change delayed upstream by more than that hour (StreamIteratorAge alarm) is not counted:\n"
            f"-- query {self.names.raw_history_view} without a window for such hours.\n"
            'SELECT\n  substr("_approximate_creation_time", 1, 13) AS "change_hour",\n'
            '  "_event_name",\n  count(*) AS "changes"\n'
            f"FROM (\n    {self.distinct_changes(conditions)}\n)\n"
            'WHERE "_approximate_creation_time" >= ? AND "_approximate_creation_time" < ?\n'
            "GROUP BY 1, 2\nORDER BY 1, 2"
        )
        # Parameters bind in text order (partition filter first), and both pairs are (start, end).
        return NamedQuery(
            construct_id="ChangesPerHour",
            name=f"{self.names.glue_table}: changes per hour",
            description=(
                f"Distinct changes of {self.names.glue_table} per change hour and event type in a window of change time"
            ),
            sql=sql,
            parameters=("window_start", "window_end", "window_start", "window_end"),
        )

    def named_queries(self, buffer_interval_seconds: int) -> list[NamedQuery]:
        return [self.item_history(), self.current_state(), self.changes_per_hour(buffer_interval_seconds)]
