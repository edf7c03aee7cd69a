"""The deployed Athena catalog, rebuilt on DuckDB from a synthesized consumer template.

Nothing here is written for the test's data: the tables are read the way the Glue tables declare (location,
partition layout, column names, types and the OpenX ``mapping.*`` properties, all taken from the template), and
the views and named queries are the template's own SQL, translated mechanically from Athena's dialect to
DuckDB's with sqlglot.

How DuckDB reads a line like the OpenX SerDe:

* the ``<table>_lines`` table reads each line whole, splitting fields on the Glue table's ``field.delim``, as the
  LazySimpleSerDe does;
* the ``<table>`` table parses each line and takes every declared column from its exact JSON key with
  ``from_json(line, '{"<key>": "<type>"}')``: key matching is exact and case-sensitive (``case.insensitive =
  false``), DECIMAL values are read from the number's digits (DuckDB's ``read_json(columns=...)`` goes through a
  double for fractional numbers and cannot declare two keys differing only in case, so it is not used), and a
  value that does not fit its type reads NULL (``use.null.for.invalid.data``);
* a line that is not a JSON object is a row of nulls (``ignore.malformed.json``).

Only the partitions the table's projection generates at the time of the test are read (``tests/projection.py``
evaluates the template's ``projection.*`` parameters): Athena reads no other path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from consumer.views import decode_view
from tests import projection

ATHENA = "athena"


def to_duckdb(sql: str) -> str:
    """Athena (Trino) SQL -> DuckDB SQL, mechanically."""
    (translated,) = sqlglot.transpile(sql, read=ATHENA, write="duckdb")
    return translated


def duckdb_type(hive_type: str) -> str:
    return exp.DataType.build(hive_type, dialect="hive").sql("duckdb")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def glue_tables(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every Glue table and view of the template, by name."""
    return {
        r["Properties"]["TableInput"]["Name"]: r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Glue::Table"
    }


def named_queries(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["Name"]: r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Athena::NamedQuery"
    }


class Lake:
    """A DuckDB connection holding one database of the template, over files under ``root`` (the bucket)."""

    def __init__(self, template: dict[str, Any], bucket: str, root: Path) -> None:
        self.template = template
        self.bucket = bucket
        self.root = root
        self.con = duckdb.connect()
        self.tables = glue_tables(template)

    def _glob(self, table: dict[str, Any]) -> tuple[str, list[str]]:
        """The files of a projected table and its partition columns, from ``storage.location.template``."""
        params = table["TableInput"]["Parameters"]
        location_template = params["storage.location.template"]
        partitions = [k["Name"] for k in table["TableInput"]["PartitionKeys"]]
        # Hive-style layout (col=${col}/): DuckDB's hive_partitioning reads the same values from the same paths.
        for column in partitions:
            assert f"{column}=${{{column}}}/" in location_template, location_template
        prefix = f"s3://{self.bucket}/"
        assert location_template.startswith(prefix)
        relative = re.sub(r"\$\{[^}]+\}", "*", location_template[len(prefix) :])
        return str(self.root / relative / "*"), partitions

    def _projected(self, table: dict[str, Any], partitions: list[str]) -> str:
        """A WHERE clause keeping only the partitions the table's projection generates now (Athena reads no
        other path, e.g. a year before data_lake.first_year or a month written '1' instead of '01')."""
        params = table["TableInput"]["Parameters"]
        now = datetime.now(UTC)
        return " AND ".join(
            f"{_quote(p)} IN ({', '.join(_literal(v) for v in projection.column_values(params, p, now))})"
            for p in partitions
        )

    def register(self, database: str, table_name: str, lines_name: str) -> None:
        """The table and its lines table, as DuckDB views in schema ``database``, reading only projected
        partitions."""
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(database)}")
        lines = self.tables[lines_name]
        glob, partitions = self._glob(lines)
        storage = lines["TableInput"]["StorageDescriptor"]
        (line_column,) = storage["Columns"]
        delimiter = storage["SerdeInfo"]["Parameters"]["field.delim"]
        hive_types = "{" + ", ".join(f"{_literal(p)}: 'VARCHAR'" for p in partitions) + "}"
        partition_list = ", ".join(_quote(p) for p in partitions)
        self.con.execute(
            f"CREATE VIEW {_quote(database)}.{_quote(lines_name)} AS "
            f"SELECT column0 AS {_quote(line_column['Name'])}, {partition_list} "
            f"FROM read_csv({_literal(glob)}, columns = {{'column0': 'VARCHAR'}}, delim = {_literal(delimiter)}, "
            "quote = '', escape = '', header = false, auto_detect = false, "
            f"hive_partitioning = true, hive_types = {hive_types}) WHERE {self._projected(lines, partitions)}"
        )

        table = self.tables[table_name]
        assert self._projected(table, partitions) == self._projected(lines, partitions)
        assert self._glob(table) == (glob, partitions), "the table and its lines table read different files"
        serde = table["TableInput"]["StorageDescriptor"]["SerdeInfo"]["Parameters"]
        assert serde["case.insensitive"] == "false" and serde["ignore.malformed.json"] == "true"
        selects = []
        for column in table["TableInput"]["StorageDescriptor"]["Columns"]:
            name, key = column["Name"], serde[f"mapping.{column['Name']}"]
            structure = json.dumps({key: duckdb_type(column["Type"])}, ensure_ascii=False)
            selects.append(f"struct_extract(from_json(obj, {_literal(structure)}), {_literal(key)}) AS {_quote(name)}")
        # ignore.malformed.json: a line that is not a JSON object gives a row of nulls.
        self.con.execute(
            f"CREATE VIEW {_quote(database)}.{_quote(table_name)} AS SELECT {', '.join(selects)}, {partition_list} "
            f"FROM (SELECT CASE WHEN json_valid(line) AND starts_with(ltrim(line), '{{') THEN line::JSON END AS obj, "
            f"{partition_list} FROM {_quote(database)}.{_quote(lines_name)})"
        )

    def register_view(self, name: str) -> str:
        """A view of the template, with its own SQL translated to DuckDB; returns the Athena SQL."""
        table_input = self.tables[name]["TableInput"]
        assert table_input["TableType"] == "VIRTUAL_VIEW"
        definition = decode_view(table_input["ViewOriginalText"])
        database = definition["schema"]
        self.con.execute(f"CREATE VIEW {_quote(database)}.{_quote(name)} AS {to_duckdb(definition['originalSql'])}")
        return definition["originalSql"]

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run Athena SQL (translated) with execution parameters; column names and rows."""
        cursor = self.con.execute(to_duckdb(sql), list(parameters))
        return [d[0] for d in cursor.description], cursor.fetchall()
