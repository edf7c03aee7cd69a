"""The lakehouse of account B: per source table, an Iceberg history table and an Iceberg state table, kept current
by scheduled Athena SQL (docs/lakehouse.md).

- ``sql.py``: every statement (DDL, window, INSERT into history, MERGE into state, the views over both), built
  from the table's declared columns; the only place this SQL is written.
- the constructs (Glue Iceberg tables, the maintenance state machine and its schedule, table optimizers) take the
  statements from ``sql.py`` verbatim, so the offline proof can read them back from the synthesized template.
"""
