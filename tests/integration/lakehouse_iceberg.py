"""The history and state tables as real Iceberg tables, offline: pyiceberg with a SQLite catalog and a local
warehouse, created from the statements' own column lists and partitioning (``LakehouseSql.history_columns()``,
``history_partitioning``), so the proof knows the declared schema is one Iceberg accepts and round-trips exactly.

Type mapping (Athena DDL -> Iceberg), per Athena's "Supported data types for Iceberg tables"
(https://docs.aws.amazon.com/athena/latest/ug/querying-iceberg-supported-data-types.html): ``timestamp`` is
Iceberg's microsecond timestamp without zone, ``decimal(p,s)`` is Iceberg's decimal, ``string``/``bigint``/...
the same-named primitives.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform
from pyiceberg.types import (
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IcebergType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestampType,
)

_PRIMITIVES: dict[str, IcebergType] = {
    "string": StringType(),
    "boolean": BooleanType(),
    "int": IntegerType(),
    "bigint": LongType(),
    "double": DoubleType(),
    "float": FloatType(),
    "date": DateType(),
    "timestamp": TimestampType(),
}


def iceberg_type(athena_type: str) -> IcebergType:
    match = re.fullmatch(r"decimal\((\d+),(\d+)\)", athena_type)
    if match:
        return DecimalType(int(match.group(1)), int(match.group(2)))
    return _PRIMITIVES[athena_type]


def schema(columns: Sequence[tuple[str, str]]) -> Schema:
    return Schema(
        *(NestedField(n, name, iceberg_type(type_), required=False) for n, (name, type_) in enumerate(columns, 1))
    )


def partition_spec(table_schema: Schema, partitioning: Sequence[str]) -> PartitionSpec:
    fields = []
    for n, transform in enumerate(partitioning):
        match = re.fullmatch(r"day\((\w+)\)", transform)
        assert match, f"the proof knows day() partitioning only, not {transform!r}"
        source = table_schema.find_field(match.group(1))
        fields.append(PartitionField(source.field_id, 1000 + n, DayTransform(), f"{source.name}_day"))
    return PartitionSpec(*fields)


def catalog(root: Path) -> SqlCatalog:
    warehouse = root / "warehouse"
    warehouse.mkdir(parents=True, exist_ok=True)
    return SqlCatalog("lakehouse", uri=f"sqlite:///{root / 'catalog.db'}", warehouse=f"file://{warehouse}")


def create(
    cat: SqlCatalog, database: str, table: str, columns: Sequence[tuple[str, str]], partitioning: Sequence[str]
) -> Table:
    cat.create_namespace_if_not_exists(database)
    table_schema = schema(columns)
    return cat.create_table(
        f"{database}.{table}",
        schema=table_schema,
        partition_spec=partition_spec(table_schema, partitioning),
        properties={"write.format.default": "parquet", "write.parquet.compression-codec": "zstd"},
    )
