"""All SQL of the lakehouse, in Athena's dialect (engine 3, Trino), in one place.

INTERFACE CONTRACT (the constructs and the offline proof rely on these names; the bodies are being written):

- ``LakehouseSql(spec, names, lake, late_window_hours, max_hours_per_run)``
- ``history_columns()`` / ``state_columns()``: ``(name, type)`` pairs of each Iceberg table, Athena DDL types
  (``string``, ``boolean``, ``bigint``, ``decimal(38,2)``, ``timestamp``, ...), in table order.
- ``history_partitioning`` / ``state_partitioning``: the Iceberg partition transforms, e.g. ``("day(_change_time)",)``.
- ``create_history_sql()`` / ``create_state_sql()``: ``CREATE TABLE IF NOT EXISTS ... TBLPROPERTIES
  ('table_type'='ICEBERG', ...)`` statements, for whichever way the tables get created.
- ``STEPS``: the maintenance statements in execution order, each ``Step(name, sql_method, parameters)``; every
  ``?`` in a statement is bound, in order, from the named window values (``window_start``/``window_end``: arrival
  hours as 'yyyy-MM-dd-HH' text) that the ``window`` step's single result row returns.
- ``history_view_sql()`` / ``current_view_sql()`` (+ ``..._view_columns()``): the user-facing
  ``<table>_history`` / ``<table>_current`` views over the Iceberg tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import TableSpec
from shared.naming import LakeNames, TableNames

WINDOW_VALUES = ("window_start", "window_end")


@dataclass(frozen=True)
class Step:
    """One Athena statement of the maintenance run: its state name, its SQL and the window values it binds."""

    name: str
    sql: str
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class LakehouseSql:
    spec: TableSpec
    names: TableNames
    lake: LakeNames
    late_window_hours: int
    max_hours_per_run: int

    history_partitioning: tuple[str, ...] = ("day(_change_time)",)
    state_partitioning: tuple[str, ...] = ()

    def history_columns(self) -> tuple[tuple[str, str], ...]:
        raise NotImplementedError

    def state_columns(self) -> tuple[tuple[str, str], ...]:
        raise NotImplementedError

    def create_history_sql(self) -> str:
        raise NotImplementedError

    def create_state_sql(self) -> str:
        raise NotImplementedError

    def steps(self) -> tuple[Step, ...]:
        """window (no parameters, one row of WINDOW_VALUES), insert_history, merge_state, in order."""
        raise NotImplementedError

    def history_view_sql(self) -> str:
        raise NotImplementedError

    def current_view_sql(self) -> str:
        raise NotImplementedError
