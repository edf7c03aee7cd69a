"""Glue Data Catalog entries that make the lake queryable from Athena in account B right after deployment.

Partition projection computes partitions from the S3 layout, so new hours are queryable without crawlers
or MSCK REPAIR. Only the metadata and key columns are declared; other item attributes are added with
`ALTER TABLE ... ADD COLUMNS` as analysts need them (the JSON SerDe ignores undeclared fields).
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_glue as glue
from constructs import Construct

from shared import naming
from shared.config import TableSpec
from shared.naming import LakeNames, TableNames

JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
# Integer projection enumerates every value: a bounded year range keeps unfiltered scans planable.
PROJECTION_YEARS = "2025,2050"
# Range of each partition column of shared.naming.DATE_PARTITIONS; all but the year are written with 2 digits.
_PROJECTION_RANGES = {"year": PROJECTION_YEARS, "month": "1,12", "day": "1,31", "hour": "0,23"}
# Numbers and binaries stay strings: exact digits and base64 survive, casts are the analyst's choice.
_KEY_COLUMN_TYPES = {"S": "string", "N": "string", "B": "string"}


# The transform's metadata columns (docs/transform-contract.md); a test keeps this list equal to the transform's.
METADATA_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_event_name", "string"),
    ("_event_id", "string"),
    ("_table_name", "string"),
    ("_aws_region", "string"),
    # ISO-8601 text: from_iso8601_timestamp(_approximate_creation_time) in queries.
    ("_approximate_creation_time", "string"),
    ("_sequence_number", "string"),
    ("_shard_id", "string"),
    ("_is_deleted", "boolean"),
    ("_is_ttl_delete", "boolean"),
)


def _projection(partitions: list[str]) -> dict[str, str]:
    params = {}
    for column in partitions:
        params[f"projection.{column}.type"] = "integer"
        params[f"projection.{column}.range"] = _PROJECTION_RANGES[column]
        if column != "year":
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


class TableCatalog(Construct):
    """The Athena table over one source table's data prefix."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: TableSpec,
        names: TableNames,
        lake: LakeNames,
        database: glue.CfnDatabase,
    ) -> None:
        super().__init__(scope, construct_id)
        account = Stack.of(self).account
        location = f"s3://{lake.bucket}/{names.root(naming.DATA)}"
        keys = [(spec.partition_key, _KEY_COLUMN_TYPES[spec.partition_key_type])]
        if spec.sort_key:
            keys.append((spec.sort_key, _KEY_COLUMN_TYPES[spec.sort_key_type]))
        partitions = [column for column, _ in naming.DATE_PARTITIONS]
        columns = [glue.CfnTable.ColumnProperty(name=n, type=ty) for n, ty in [*METADATA_COLUMNS, *keys]]
        self.table = glue.CfnTable(
            self,
            "Table",
            catalog_id=account,
            database_name=lake.database,
            table_input=glue.CfnTable.TableInputProperty(
                name=names.glue_table,
                description=f"Changes of DynamoDB table {names.table}, one JSON line per change",
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "json",
                    "projection.enabled": "true",
                    **_projection(partitions),
                    "storage.location.template": location + "".join(f"{p}=${{{p}}}/" for p in partitions),
                },
                partition_keys=[glue.CfnTable.ColumnProperty(name=p, type="string") for p in partitions],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    input_format="org.apache.hadoop.mapred.TextInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    # Flattened map columns are "a.b" in JSON; the SerDe reads them as column a_b.
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=JSON_SERDE, parameters={"dots.in.keys": "true"}
                    ),
                    columns=columns,
                ),
            ),
        )
        self.table.add_resource_dependency(database)
