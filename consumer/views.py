"""Athena views as Glue tables, so they are deployed (and replaced) by CloudFormation with everything else.

Athena stores a view as a Glue table of type ``VIRTUAL_VIEW`` whose ``ViewOriginalText`` is
``/* Presto View: <base64 of the view's JSON definition> */`` and whose ``ViewExpandedText`` is
``/* Presto View */``, with the table parameter ``presto_view = true``. The JSON holds ``originalSql``, the
``catalog`` (``awsdatacatalog``, Athena's name for the Glue Data Catalog), the ``schema`` (database) and the
output ``columns`` with their engine (Trino) types. This is the format Trino's Hive connector reads and writes
(trinodb/trino, HiveMetadata.PRESTO_VIEW_EXPANDED_TEXT_MARKER and the "/* Presto View: " prefix of its view
codec) and the one public CloudFormation/Terraform modules write for Athena. The engine checks the stored column
types against the query's output when the view is used, so they come from the same column list as the SQL.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_glue as glue
from constructs import Construct

from consumer.queries import ViewColumn
from shared.naming import LakeNames

VIEW_PREFIX = "/* Presto View: "
VIEW_SUFFIX = " */"
VIEW_EXPANDED_TEXT = "/* Presto View */"
# Athena's catalog name for the AWS Glue Data Catalog of the account.
CATALOG = "awsdatacatalog"


def view_definition(sql: str, database: str, columns: Sequence[ViewColumn]) -> dict[str, Any]:
    return {
        "originalSql": sql,
        "catalog": CATALOG,
        "schema": database,
        "columns": [{"name": c.name, "type": c.trino_type} for c in columns],
    }


def encode_view(definition: dict[str, Any]) -> str:
    text = json.dumps(definition, separators=(",", ":"), ensure_ascii=False)
    return VIEW_PREFIX + base64.b64encode(text.encode()).decode() + VIEW_SUFFIX


def decode_view(original_text: str) -> dict[str, Any]:
    """The JSON definition inside a ``ViewOriginalText`` (the reverse of :func:`encode_view`)."""
    if not (original_text.startswith(VIEW_PREFIX) and original_text.endswith(VIEW_SUFFIX)):
        raise ValueError("not a Presto view text")
    return json.loads(base64.b64decode(original_text[len(VIEW_PREFIX) : -len(VIEW_SUFFIX)]))


class AthenaView(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        lake: LakeNames,
        name: str,
        description: str,
        sql: str,
        columns: Sequence[ViewColumn],
    ) -> None:
        super().__init__(scope, construct_id)
        self.sql = sql
        self.table = glue.CfnTable(
            self,
            "View",
            catalog_id=Stack.of(self).account,
            database_name=lake.database,
            table_input=glue.CfnTable.TableInputProperty(
                name=name,
                description=description,
                table_type="VIRTUAL_VIEW",
                parameters={"presto_view": "true", "comment": "Presto View"},
                view_original_text=encode_view(view_definition(sql, lake.database, columns)),
                view_expanded_text=VIEW_EXPANDED_TEXT,
                partition_keys=[],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[glue.CfnTable.ColumnProperty(name=c.name, type=c.hive_type) for c in columns],
                    serde_info=glue.CfnTable.SerdeInfoProperty(),
                ),
            ),
        )
