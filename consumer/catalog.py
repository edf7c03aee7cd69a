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
from shared.config import AppConfig

JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
# Integer projection enumerates every value: a bounded year range keeps unfiltered scans planable.
PROJECTION_YEARS = "2025,2050"
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


def database_name(cfg: AppConfig) -> str:
    return f"{cfg.prefix.replace('-', '_')}_datalake"


class DataLakeCatalog(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, cfg: AppConfig) -> None:
        super().__init__(scope, construct_id)
        account = Stack.of(self).account
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=database_name(cfg), description=f"{cfg.prefix} DynamoDB change data lake"
            ),
        )
        bucket = naming.data_lake_bucket_name(cfg)
        location = f"s3://{bucket}/{naming.table_prefix(naming.DATA, cfg)}"
        t = cfg.table
        keys = [(t.partition_key, _KEY_COLUMN_TYPES[t.partition_key_type])]
        if t.sort_key:
            keys.append((t.sort_key, _KEY_COLUMN_TYPES[t.sort_key_type]))
        columns = [glue.CfnTable.ColumnProperty(name=n, type=ty) for n, ty in [*METADATA_COLUMNS, *keys]]
        self.table = glue.CfnTable(
            self,
            "Table",
            catalog_id=account,
            database_name=database_name(cfg),
            table_input=glue.CfnTable.TableInputProperty(
                name=t.name,
                description=f"Changes of DynamoDB table {naming.table_name(cfg)}, one JSON line per change",
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "json",
                    "projection.enabled": "true",
                    "projection.year.type": "integer",
                    "projection.year.range": PROJECTION_YEARS,
                    "projection.month.type": "integer",
                    "projection.month.range": "1,12",
                    "projection.month.digits": "2",
                    "projection.day.type": "integer",
                    "projection.day.range": "1,31",
                    "projection.day.digits": "2",
                    "projection.hour.type": "integer",
                    "projection.hour.range": "0,23",
                    "projection.hour.digits": "2",
                    "storage.location.template": location + "year=${year}/month=${month}/day=${day}/hour=${hour}/",
                },
                partition_keys=[
                    glue.CfnTable.ColumnProperty(name=part, type="string") for part in ("year", "month", "day", "hour")
                ],
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
        self.table.add_dependency(self.database)
