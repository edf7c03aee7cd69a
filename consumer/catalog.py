"""Glue Data Catalog tables that make each source table queryable from Athena right after deployment.

Per source table:

* ``<table>``: the JSON lines under ``data/<table>/``, every declared column (the transform's metadata
  columns, the key attributes and the table's configured ``columns``) mapped explicitly to the exact JSON key
  the transform writes;
* ``<table>_lines``: the same objects, each line as one string, so attributes nobody declared stay reachable
  with ``json_extract``;
* the ``<table>_raw_history`` and ``<table>_raw_current`` views over the raw change log (``consumer/views.py``,
  SQL in ``consumer/queries.py``);
* the ``<table>_history`` and ``<table>_current`` views: over the lakehouse's Iceberg tables (SQL in
  ``consumer/lakehouse/sql.py``) when ``lakehouse.enabled``, else the raw-log SQL again under these names.

Why the OpenX JSON SerDe (docs/lake-queries.md has the whole argument):

* it is the SerDe Athena documents with ``mapping.<column>``, ``case.insensitive`` and
  ``ignore.malformed.json`` ("Unlike the Hive JSON SerDe, the OpenX JSON SerDe also has the following optional
  SerDe properties", https://docs.aws.amazon.com/athena/latest/ug/openx-json-serde.html). Without explicit
  mappings the transform's keys (``%5Fid``, ``a%2Eb``, ``shipTo.city``) cannot be read, and with case-insensitive
  matching two attributes differing only in case fail every query with "Duplicate key";
* DECIMAL columns read the number's exact digits: Athena engine 3's OpenX reader parses a number with
  ``BigDecimal`` and rounds it half up to the declared scale (Trino's implementation, which Athena engine 3 is
  built on: lib/trino-hive-formats/.../openxjson/README.md, "DECIMAL"); nothing goes through a double.
* The same page warns that OpenX results "can be non-deterministic" and recommends the Hive JSON SerDe or
  rewriting the data; the Hive SerDe offers none of the properties above, so this project keeps OpenX and says
  so in docs/lake-queries.md (a CTAS into Parquet is the documented way out if it ever bites).

Partition projection computes partitions from the S3 layout (new hours are queryable without crawlers or
MSCK REPAIR), and the layout is the one Firehose writes: both come from ``naming.DATE_PARTITIONS``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from aws_cdk import Stack
from aws_cdk import aws_glue as glue
from constructs import Construct

from consumer.columns import METADATA_COLUMNS, PARTITION_COLUMNS, Column, table_columns
from consumer.queries import TableQueries
from consumer.views import AthenaView
from shared import naming
from shared.config import TableSpec
from shared.naming import LakeNames, TableNames

if TYPE_CHECKING:  # sql.py reads this module's column constants
    from consumer.lakehouse.sql import LakehouseSql

__all__ = [
    "JSON_SERDE",
    "METADATA_COLUMNS",
    "DataLakeDatabase",
    "TableCatalog",
    "json_serde_parameters",
    "location_template",
    "projection_parameters",
]

JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
# The default SerDe for delimited text (https://docs.aws.amazon.com/athena/latest/ug/lazy-simple-serde.html).
TEXT_SERDE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
TEXT_INPUT_FORMAT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
# The lines table splits fields on U+0001, which JSON text can never hold unescaped (RFC 8259, section 7:
# control characters must be escaped in strings, and compact JSON has no whitespace), so the whole line is
# one field.
LINE_COLUMN = "line"
LINE_FIELD_DELIMITER = "\u0001"

# Month, day and hour are integer projections written with 2 digits (naming.DATE_PARTITIONS); Athena enumerates
# every value of an integer range, 12 * 31 * 24 = 8,928 combinations per projected year.
_PROJECTION_RANGES = {"month": "1,12", "day": "1,31", "hour": "0,23"}
# The year is a date projection from the configured first year to NOW, so an unfiltered query enumerates only the
# years that can hold data (not 2025-2050). Athena's date type: "range ... can also contain relative date strings
# ... NOW", "interval.unit ... YEARS", format "based on the Java date format DateTimeFormatter", "Projected date
# columns are generated in Coordinated Universal Time (UTC) at query execution time"
# (https://docs.aws.amazon.com/athena/latest/ug/partition-projection-supported-types.html), the time zone
# Firehose's !{timestamp:yyyy} uses too (https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html).
# The same pattern Firehose writes the year with: the projected values are the folder names.
YEAR_PROJECTION_FORMAT = dict(naming.DATE_PARTITIONS)["year"]
_COLUMN_OF_FORMAT = {fmt: column for column, fmt in naming.DATE_PARTITIONS}


def json_serde_parameters(columns: Iterable[Column]) -> dict[str, str]:
    """OpenX SerDe properties (https://docs.aws.amazon.com/athena/latest/ug/openx-json-serde.html)."""
    return {
        # Keys match exactly: "Status" and "status" are two columns, never a "Duplicate key" failure.
        "case.insensitive": "false",
        # A line that is not JSON reads as a row of nulls (filtered out by the views) instead of failing the query.
        "ignore.malformed.json": "true",
        # A value that does not fit its declared type (DynamoDB has no schema) reads NULL in that row only; the
        # exact text stays in the <table>_lines table.
        "use.null.for.invalid.data": "true",
        # Every column is mapped explicitly below, so the SerDe's own dot renaming is off.
        "dots.in.keys": "false",
        **{f"mapping.{column.name}": column.json_key for column in columns},
    }


def location(lake: LakeNames, names: TableNames) -> str:
    return f"s3://{lake.bucket}/{names.root(naming.DATA)}"


def location_template(lake: LakeNames, names: TableNames) -> str:
    """The projected layout: Firehose's data prefix with each ``!{timestamp:<format>}`` replaced by ``${column}``."""

    def column(match: re.Match[str]) -> str:
        return "${" + _COLUMN_OF_FORMAT[match.group(1)] + "}"

    return f"s3://{lake.bucket}/" + re.sub(r"!\{timestamp:([^}]*)\}", column, names.data_prefix)


def projection_parameters(lake: LakeNames, names: TableNames, first_year: int) -> dict[str, str]:
    """Partition projection (https://docs.aws.amazon.com/athena/latest/ug/partition-projection.html): the year from
    ``first_year`` to the current year (UTC), then every month, day and hour."""
    year, *others = PARTITION_COLUMNS
    params = {
        "projection.enabled": "true",
        "storage.location.template": location_template(lake, names),
        f"projection.{year}.type": "date",
        f"projection.{year}.format": YEAR_PROJECTION_FORMAT,
        f"projection.{year}.range": f"{first_year:04d},NOW",
        f"projection.{year}.interval": "1",
        f"projection.{year}.interval.unit": "YEARS",
    }
    for column in others:
        params[f"projection.{column}.type"] = "integer"
        params[f"projection.{column}.range"] = _PROJECTION_RANGES[column]
        params[f"projection.{column}.digits"] = "2"
    return params


class DataLakeDatabase(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, lake: LakeNames, description: str) -> None:
        super().__init__(scope, construct_id)
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Stack.of(self).account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(name=lake.database, description=description),
        )


def _glue_columns(columns: Sequence[tuple[str, str]]) -> list[glue.CfnTable.ColumnProperty]:
    return [glue.CfnTable.ColumnProperty(name=name, type=type_) for name, type_ in columns]


class TableCatalog(Construct):
    """The Athena tables and views of one source table."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: TableSpec,
        names: TableNames,
        lake: LakeNames,
        database: glue.CfnDatabase,
        first_year: int,
        lakehouse: LakehouseSql | None = None,
    ) -> None:
        """``first_year``: the first arrival year the raw tables project (``data_lake.first_year``).
        ``lakehouse``: the table's lakehouse SQL when the lakehouse is enabled (its views then read the Iceberg
        tables), else None."""
        super().__init__(scope, construct_id)
        account = Stack.of(self).account
        self.columns = table_columns(spec)
        partitions = [glue.CfnTable.ColumnProperty(name=p, type="string") for p in PARTITION_COLUMNS]
        projection = projection_parameters(lake, names, first_year)

        def external_table(
            construct_id: str,
            name: str,
            description: str,
            classification: str,
            serde: glue.CfnTable.SerdeInfoProperty,
            columns: Sequence[tuple[str, str]],
        ) -> glue.CfnTable:
            """A table over the table's data prefix with the Firehose layout projected as partitions."""
            table = glue.CfnTable(
                self,
                construct_id,
                catalog_id=account,
                database_name=lake.database,
                table_input=glue.CfnTable.TableInputProperty(
                    name=name,
                    description=description,
                    table_type="EXTERNAL_TABLE",
                    parameters={"classification": classification, **projection},
                    partition_keys=partitions,
                    storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                        location=location(lake, names),
                        input_format=TEXT_INPUT_FORMAT,
                        output_format=TEXT_OUTPUT_FORMAT,
                        serde_info=serde,
                        columns=_glue_columns(columns),
                    ),
                ),
            )
            table.add_resource_dependency(database)
            return table

        self.table = external_table(
            "Table",
            names.glue_table,
            f"Changes of DynamoDB table {names.table}, one JSON line per change",
            "json",
            glue.CfnTable.SerdeInfoProperty(
                serialization_library=JSON_SERDE, parameters=json_serde_parameters(self.columns)
            ),
            [(c.name, c.type) for c in self.columns],
        )
        self.lines_table = external_table(
            "LinesTable",
            names.lines_table,
            f"Changes of DynamoDB table {names.table}, each JSON line whole in column '{LINE_COLUMN}' "
            "(for attributes the table does not declare: json_extract_scalar(line, '$[\"key\"]'))",
            "text",
            glue.CfnTable.SerdeInfoProperty(
                serialization_library=TEXT_SERDE,
                parameters={"field.delim": LINE_FIELD_DELIMITER, "serialization.format": LINE_FIELD_DELIMITER},
            ),
            [(LINE_COLUMN, "string")],
        )

        self.queries = TableQueries(spec=spec, names=names, lake=lake)
        # The raw-log views: up to the minute, but every query re-reads the whole change log.
        self.raw_history_view = AthenaView(
            self,
            "RawHistoryView",
            lake=lake,
            name=names.raw_history_view,
            description=(
                f"Every distinct change of DynamoDB table {names.table}, numbered in order per item, computed from "
                "the raw change log on each query (up to the minute)"
            ),
            sql=self.queries.history_sql(),
            columns=self.queries.history_columns(),
        )
        self.raw_current_view = AthenaView(
            self,
            "RawCurrentView",
            lake=lake,
            name=names.raw_current_view,
            description=(
                f"The current state of every item of DynamoDB table {names.table} (deleted items removed), computed "
                "from the raw change log on each query (up to the minute)"
            ),
            sql=self.queries.current_sql(),
            columns=self.queries.current_columns(),
        )
        for view in (self.raw_history_view, self.raw_current_view):
            view.table.add_resource_dependency(self.table)

        # What users query under the table's own names: the lakehouse's Iceberg tables when it is enabled, else
        # the raw-log SQL, so <table>_history and <table>_current always exist.
        if lakehouse is not None:
            self.history_view = AthenaView(
                self,
                "HistoryView",
                lake=lake,
                name=names.history_view,
                description=(
                    f"Every distinct change of DynamoDB table {names.table}, from the lakehouse history table "
                    f"{names.iceberg_history_table} (as fresh as its last maintenance run)"
                ),
                sql=lakehouse.history_view_sql(),
                columns=lakehouse.history_view_columns(),
            )
            self.current_view = AthenaView(
                self,
                "CurrentView",
                lake=lake,
                name=names.current_view,
                description=(
                    f"The current state of every item of DynamoDB table {names.table} (deleted items removed), from "
                    f"the lakehouse state table {names.iceberg_state_table} (as fresh as its last maintenance run)"
                ),
                sql=lakehouse.current_view_sql(),
                columns=lakehouse.current_view_columns(),
            )
            # The Iceberg tables are created by the maintenance's first run (consumer/lakehouse/maintenance.py);
            # a view is only text until queried, so it can exist before them.
        else:
            self.history_view = AthenaView(
                self,
                "HistoryView",
                lake=lake,
                name=names.history_view,
                description=f"Every distinct change of DynamoDB table {names.table}, numbered in order per item",
                sql=self.queries.history_sql(),
                columns=self.queries.history_columns(),
            )
            self.current_view = AthenaView(
                self,
                "CurrentView",
                lake=lake,
                name=names.current_view,
                description=(
                    f"The current state of every item of DynamoDB table {names.table} (deleted items removed)"
                ),
                sql=self.queries.current_sql(),
                columns=self.queries.current_columns(),
            )
            for view in (self.history_view, self.current_view):
                view.table.add_resource_dependency(self.table)
