"""Account B's analytics side, for every table of every configuration: the Glue tables (columns mapped to the
transform's exact JSON keys, SerDe properties, partition projection equal to the Firehose prefix), the lines
tables, the raw-log history/current views, the named queries, the workgroup and its results bucket.

Expectations come from the configuration under test and from the transform's own code (its metadata column
list and its key escaping), not from the catalog module they check, except where a test says it checks that
the template carries exactly what that module computes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlglot
from aws_cdk.assertions import Template

from consumer import columns as catalog_columns
from consumer.queries import TableQueries
from consumer.views import VIEW_EXPANDED_TEXT, decode_view
from lambdas.transform.flatten import top_level_column
from lambdas.transform.record import METADATA_COLUMNS as TRANSFORM_METADATA
from shared import naming
from shared.config import TableSpec, from_dict
from tests import configs, projection

OPENX = "org.openx.data.jsonserde.JsonSerDe"
LAZY_SIMPLE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
METADATA_TYPES = {"_is_deleted": "boolean", "_is_ttl_delete": "boolean"}  # every other metadata column: string
BLOCK_ALL = {
    "BlockPublicAcls": True,
    "BlockPublicPolicy": True,
    "IgnorePublicAcls": True,
    "RestrictPublicBuckets": True,
}


# --- helpers ----------------------------------------------------------------------------------------------------
def _glue_tables(template: Template) -> dict[str, dict[str, Any]]:
    return {r["Properties"]["TableInput"]["Name"]: r for r in template.find_resources("AWS::Glue::Table").values()}


def _named_queries(template: Template) -> dict[str, dict[str, Any]]:
    return {r["Properties"]["Name"]: r for r in template.find_resources("AWS::Athena::NamedQuery").values()}


def _expected_json_keys(spec: TableSpec) -> list[str]:
    """The JSON keys a line of this table has for its declared columns: the transform's metadata columns, its
    escaping of each key attribute, then the configured column keys (a key declared again counts once)."""
    keys = list(TRANSFORM_METADATA)
    for attribute in spec.key_attributes:
        keys.append(top_level_column(attribute))
    keys += [k for k in spec.columns if k not in keys]
    return keys


def _expected_type(spec: TableSpec, json_key: str) -> str:
    if json_key in TRANSFORM_METADATA:
        return METADATA_TYPES.get(json_key, "string")
    if json_key in {top_level_column(a) for a in spec.key_attributes}:
        return "string"  # exact digits of N keys, base64 of B keys
    return spec.columns[json_key].replace(" ", "").lower()


def _firehose_layout_as_projection(data_prefix: str) -> str:
    """naming's data prefix with every !{timestamp:<format>} replaced by ${<its partition column>}."""
    column_of = {fmt: column for column, fmt in naming.DATE_PARTITIONS}
    return re.sub(r"!\{timestamp:([^}]*)\}", lambda m: "${" + column_of[m.group(1)] + "}", data_prefix)


@pytest.fixture(scope="module")
def lake(cfg) -> naming.LakeNames:
    return naming.lake(cfg)


@pytest.fixture(scope="module")
def glue_tables(consumer: Template) -> dict[str, dict[str, Any]]:
    return _glue_tables(consumer)


# --- the table of each source table --------------------------------------------------------------------------------
def _raw_sql_views(cfg, names: naming.TableNames) -> list[tuple[str, str]]:
    """(view name, kind) of every view that runs the raw-log SQL: the raw views always, and the user-facing names
    too when the lakehouse is disabled (tests/infrastructure/test_lakehouse.py checks them when it is enabled)."""
    views = [(names.raw_history_view, "history"), (names.raw_current_view, "current")]
    if not cfg.lakehouse.enabled:
        views += [(names.history_view, "history"), (names.current_view, "current")]
    return views


def test_every_source_table_has_its_table_lines_table_and_four_views(glue_tables, cfg, lake, consumer: Template):
    (database,) = consumer.find_resources("AWS::Glue::Database").values()
    assert database["Properties"]["DatabaseInput"]["Name"] == lake.database
    expected = set()
    for _, names in naming.tables(cfg):
        expected |= {names.glue_table, names.lines_table, names.history_view, names.current_view}
        expected |= {names.raw_history_view, names.raw_current_view}
    assert set(glue_tables) == expected
    for table in glue_tables.values():
        assert table["Properties"]["DatabaseName"] == lake.database
        assert table["Properties"]["CatalogId"] == cfg.consumer.account


def test_every_declared_column_reads_the_exact_json_key_the_transform_writes(glue_tables, cfg):
    for spec, names in naming.tables(cfg):
        table_input = glue_tables[names.glue_table]["Properties"]["TableInput"]
        storage = table_input["StorageDescriptor"]
        serde = storage["SerdeInfo"]
        assert serde["SerializationLibrary"] == OPENX
        params = serde["Parameters"]
        columns = storage["Columns"]
        mapped = [params[f"mapping.{c['Name']}"] for c in columns]
        assert mapped == _expected_json_keys(spec)
        # Nothing else is mapped, and every column's type is what the configuration declares.
        assert {k for k in params if k.startswith("mapping.")} == {f"mapping.{c['Name']}" for c in columns}
        assert [c["Type"] for c in columns] == [_expected_type(spec, k) for k in mapped]


def test_column_names_are_valid_distinct_athena_names(glue_tables, cfg):
    partitions = [column for column, _ in naming.DATE_PARTITIONS]
    for _, names in naming.tables(cfg):
        table_input = glue_tables[names.glue_table]["Properties"]["TableInput"]
        names_ = [c["Name"] for c in table_input["StorageDescriptor"]["Columns"]]
        assert all(re.fullmatch(r"[a-z0-9_]{1,255}", n) for n in names_), names_
        assert len(set(names_) | set(partitions)) == len(names_) + len(partitions)
        # Metadata columns keep their own names.
        assert names_[: len(TRANSFORM_METADATA)] == list(TRANSFORM_METADATA)


def test_serde_matches_keys_exactly_and_confines_bad_data_to_its_line(glue_tables, cfg):
    for _, names in naming.tables(cfg):
        params = glue_tables[names.glue_table]["Properties"]["TableInput"]["StorageDescriptor"]["SerdeInfo"][
            "Parameters"
        ]
        assert params["case.insensitive"] == "false"
        assert params["ignore.malformed.json"] == "true"
        assert params["use.null.for.invalid.data"] == "true"
        assert params["dots.in.keys"] == "false"


@pytest.mark.parametrize("which", ["glue_table", "lines_table"])
def test_partition_projection_is_the_firehose_prefix(which, glue_tables, cfg, lake):
    partitions = [column for column, _ in naming.DATE_PARTITIONS]
    for _, names in naming.tables(cfg):
        table_input = glue_tables[getattr(names, which)]["Properties"]["TableInput"]
        params = table_input["Parameters"]
        assert params["projection.enabled"] == "true"
        template = params["storage.location.template"]
        assert template == f"s3://{lake.bucket}/" + _firehose_layout_as_projection(names.data_prefix)
        # Spelled out for the shipped layout, so the substitution above cannot hide a change of both sides.
        assert (
            template
            == f"s3://{lake.bucket}/data/{names.key}/year=${{year}}/month=${{month}}/day=${{day}}/hour=${{hour}}/"
        )
        assert table_input["StorageDescriptor"]["Location"] == f"s3://{lake.bucket}/data/{names.key}/"
        assert [k["Name"] for k in table_input["PartitionKeys"]] == partitions
        assert all(k["Type"] == "string" for k in table_input["PartitionKeys"])
        # The year is a date projection from data_lake.first_year to NOW (so it never enumerates years that cannot
        # hold data yet); month, day and hour are integers written with two digits, as Firehose writes MM, dd, HH.
        assert params["projection.year.type"] == "date"
        assert params["projection.year.format"] == dict(naming.DATE_PARTITIONS)["year"]
        assert params["projection.year.range"] == f"{cfg.data_lake.first_year},NOW"
        assert (params["projection.year.interval"], params["projection.year.interval.unit"]) == ("1", "YEARS")
        for column in partitions[1:]:
            assert params[f"projection.{column}.type"] == "integer"
            assert params[f"projection.{column}.digits"] == "2"
        assert params["projection.month.range"] == "1,12"
        assert params["projection.day.range"] == "1,31"
        assert params["projection.hour.range"] == "0,23"


# Old projection: year an integer 2025-2050 (the ≈228 k partitions of issue 18 were 26 years of real hours).
_OLD_YEARS = {"projection.year.type": "integer", "projection.year.range": "2025,2050"}


@pytest.mark.parametrize(
    "now",
    [datetime(2026, 12, 6, 17, 42, tzinfo=UTC), datetime(2027, 1, 1, 0, 0, tzinfo=UTC)],
    ids=["2026-12-06T17:42", "2027-01-01T00:00"],
)
def test_an_unfiltered_query_enumerates_only_years_that_can_hold_data(now, glue_tables, cfg):
    """Every hour Firehose can have written since data_lake.first_year is projected, no later year is, and a query
    without a partition filter enumerates (years since first_year) x 12 x 31 x 24 partitions instead of 232,128."""
    columns = [column for column, _ in naming.DATE_PARTITIONS]
    first = cfg.data_lake.first_year
    for _, names in naming.tables(cfg):
        params = glue_tables[names.glue_table]["Properties"]["TableInput"]["Parameters"]
        values = {column: set(projection.column_values(params, column, now)) for column in columns}
        assert values["year"] == {str(year) for year in range(first, now.year + 1)}
        # Each hour's partition values as Firehose formats them (naming.DATE_PARTITIONS), first and last included.
        hour = datetime(first, 1, 1, tzinfo=UTC)
        while hour <= now:
            for column, fmt in naming.DATE_PARTITIONS:
                assert hour.strftime(projection.java_to_strftime(fmt)) in values[column], (hour, column)
            hour += timedelta(hours=1)
        assert str(now.year + 1) not in values["year"]

        count = projection.partition_count(params, columns, now)
        assert count == (now.year - first + 1) * 12 * 31 * 24
        assert projection.partition_count({**params, **_OLD_YEARS}, columns, now) == 232_128
        # Never fewer than the hours since the start (every one of them is readable).
        assert count >= (now - datetime(first, 1, 1, tzinfo=UTC)) // timedelta(hours=1) + 1


def test_lines_table_reads_each_line_whole(glue_tables, cfg):
    for _, names in naming.tables(cfg):
        table_input = glue_tables[names.lines_table]["Properties"]["TableInput"]
        storage = table_input["StorageDescriptor"]
        assert storage["Columns"] == [{"Name": "line", "Type": "string"}]
        assert storage["SerdeInfo"]["SerializationLibrary"] == LAZY_SIMPLE
        # U+0001 never occurs unescaped in JSON text, so no line is ever split.
        assert storage["SerdeInfo"]["Parameters"]["field.delim"] == "\u0001"
        assert storage["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat"
        assert table_input["TableType"] == "EXTERNAL_TABLE"


# --- views ---------------------------------------------------------------------------------------------------------
def _view(glue_tables: dict[str, dict[str, Any]], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    table_input = glue_tables[name]["Properties"]["TableInput"]
    return table_input, decode_view(table_input["ViewOriginalText"])


def test_raw_views_are_athena_views_over_their_table(glue_tables, cfg, lake):
    for spec, names in naming.tables(cfg):
        queries = TableQueries(spec=spec, names=names, lake=lake)
        sql_of = {"history": queries.history_sql(), "current": queries.current_sql()}
        for view_name, kind in _raw_sql_views(cfg, names):
            sql = sql_of[kind]
            table_input, definition = _view(glue_tables, view_name)
            assert table_input["TableType"] == "VIRTUAL_VIEW"
            assert table_input["ViewExpandedText"] == VIEW_EXPANDED_TEXT == "/* Presto View */"
            assert table_input["ViewOriginalText"].startswith("/* Presto View: ")
            assert table_input["Parameters"]["presto_view"] == "true"
            assert definition["catalog"] == "awsdatacatalog" and definition["schema"] == lake.database
            # The SQL deployed is the SQL of consumer/queries.py, and Athena's dialect parses it.
            assert definition["originalSql"] == sql
            sqlglot.parse_one(sql, read="athena")
            assert f'"{lake.database}"."{names.glue_table}"' in sql
            # Glue columns and the view's own column list agree, in order.
            glue_columns = table_input["StorageDescriptor"]["Columns"]
            assert [c["name"] for c in definition["columns"]] == [c["Name"] for c in glue_columns]
            assert [c["type"] for c in definition["columns"]] == [
                catalog_columns.trino_type(c["Type"]) for c in glue_columns
            ]
            dependencies = glue_tables[view_name].get("DependsOn", [])
            assert len(dependencies) == 1  # the table it reads


def test_raw_view_columns_are_the_tables_columns(glue_tables, cfg):
    for _, names in naming.tables(cfg):
        table_columns = glue_tables[names.glue_table]["Properties"]["TableInput"]["StorageDescriptor"]["Columns"]
        expected = {
            "history": [*table_columns, {"Name": "_change_number", "Type": "bigint"}],
            "current": table_columns,
        }
        for view_name, kind in _raw_sql_views(cfg, names):
            view, _ = _view(glue_tables, view_name)
            assert view["StorageDescriptor"]["Columns"] == expected[kind], view_name


def test_every_raw_query_applies_the_ordering_rule(glue_tables, consumer: Template, cfg):
    raw_views = [view for _, names in naming.tables(cfg) for view, _ in _raw_sql_views(cfg, names)]
    texts = [
        decode_view(glue_tables[n]["Properties"]["TableInput"]["ViewOriginalText"])["originalSql"] for n in raw_views
    ]
    texts += [q["Properties"]["QueryString"] for q in _named_queries(consumer).values()]
    assert texts
    for sql in texts:
        # Duplicates collapse on the event ID, sequence numbers compare as equal-width text, malformed lines skipped.
        assert 'PARTITION BY "_event_id"' in sql
        assert "lpad(\"_sequence_number\", 129, '0')" in sql  # Kinesis' widest: 129 digits
        assert '"_event_id" IS NOT NULL' in sql
        # The change time is compared as text: never parsed to a millisecond timestamp.
        assert "from_iso8601" not in sql and 'CAST("_approximate_creation_time"' not in sql
    currents = [s for s in texts if '"_state_rank"' in s]
    assert currents
    for sql in currents:
        # Live changes first (a missing _origin counts as live), deletes removed after the ranking.
        assert "CASE coalesce(\"_origin\", 'stream') WHEN 'stream' THEN 0 ELSE 1 END" in sql
        assert 'WHERE "_state_rank" = 1 AND NOT "_is_deleted"' in sql


# --- named queries and the workgroup --------------------------------------------------------------------------------
def test_named_queries_are_the_shipped_sql_in_the_workgroup(consumer: Template, cfg, lake):
    queries = _named_queries(consumer)
    (workgroup_id,) = consumer.find_resources("AWS::Athena::WorkGroup")
    expected_names = set()
    for spec, names in naming.tables(cfg):
        shipped = TableQueries(spec=spec, names=names, lake=lake).named_queries(
            cfg.delivery_for(spec).buffer_interval_seconds
        )
        for query in shipped:
            expected_names.add(query.name)
            resource = queries[query.name]["Properties"]
            assert resource["QueryString"] == query.sql
            assert resource["Database"] == lake.database
            assert resource["WorkGroup"] == {"Ref": workgroup_id}
            sqlglot.parse_one(query.sql, read="athena")
            # Every execution parameter is declared, in order.
            assert query.sql.count("?") == len(query.parameters)
    assert set(queries) == expected_names
    assert len(queries) == 3 * len(cfg.tables)


def test_changes_per_hour_reads_the_arrival_partitions_around_the_window(consumer: Template, cfg):
    queries = _named_queries(consumer)
    for spec, names in naming.tables(cfg):
        sql = queries[f"{names.glue_table}: changes per hour"]["Properties"]["QueryString"]
        buffer = cfg.delivery_for(spec).buffer_interval_seconds
        # One hour plus the buffers (transform 60 s + S3 interval) before the window, one hour after.
        assert f"- INTERVAL '{3600 + 60 + buffer}' SECOND" in sql
        assert "+ INTERVAL '3600' SECOND" in sql
        assert '"year" || \'-\' || "month" || \'-\' || "day" || \'-\' || "hour" BETWEEN' in sql
        assert 'substr("_approximate_creation_time", 1, 13) AS "change_hour"' in sql


def test_workgroup_enforces_engine_results_encryption_and_cutoff(consumer: Template, cfg, lake):
    (workgroup,) = consumer.find_resources("AWS::Athena::WorkGroup").values()
    (key_id,) = consumer.find_resources("AWS::KMS::Key")
    props = workgroup["Properties"]
    assert props["Name"] == lake.workgroup and props["State"] == "ENABLED"
    conf = props["WorkGroupConfiguration"]
    assert conf["EnforceWorkGroupConfiguration"] is True
    assert conf["EngineVersion"] == {"SelectedEngineVersion": "Athena engine version 3"}
    assert conf["BytesScannedCutoffPerQuery"] == cfg.athena.bytes_scanned_cutoff_mib * 1024 * 1024
    assert conf["PublishCloudWatchMetricsEnabled"] is True
    assert conf["ResultConfiguration"] == {
        "OutputLocation": f"s3://{lake.results_bucket}/",
        "ExpectedBucketOwner": cfg.consumer.account,
        "EncryptionConfiguration": {"EncryptionOption": "SSE_KMS", "KmsKey": {"Fn::GetAtt": [key_id, "Arn"]}},
    }


def test_results_bucket(consumer: Template, cfg, lake):
    found = consumer.find_resources("AWS::S3::Bucket", {"Properties": {"BucketName": lake.results_bucket}})
    assert len(found) == 1
    ((bucket_id, bucket),) = found.items()
    (key_id,) = consumer.find_resources("AWS::KMS::Key")
    (log_id,) = consumer.find_resources("AWS::S3::Bucket", {"Properties": {"BucketName": lake.access_log_bucket}})
    props = bucket["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {
            "BucketKeyEnabled": True,
            "ServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms",
                "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]},
            },
        }
    ]
    assert props["PublicAccessBlockConfiguration"] == BLOCK_ALL
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert props["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": log_id},
        "LogFilePrefix": f"{lake.results_bucket}/",
    }
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == cfg.athena.results_expiration_days and rule["Status"] == "Enabled"
    assert bucket["DeletionPolicy"] == "RetainExceptOnCreate" and bucket["UpdateReplacePolicy"] == "Retain"
    # TLS only.
    (policy,) = consumer.find_resources(
        "AWS::S3::BucketPolicy", {"Properties": {"Bucket": {"Ref": bucket_id}}}
    ).values()
    denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)
    # The access-log bucket accepts its logs.
    (log_policy,) = consumer.find_resources(
        "AWS::S3::BucketPolicy", {"Properties": {"Bucket": {"Ref": log_id}}}
    ).values()
    sources = []
    for statement in log_policy["Properties"]["PolicyDocument"]["Statement"]:
        if statement["Effect"] == "Allow":
            arn = statement["Condition"]["ArnLike"]["aws:SourceArn"]
            sources += arn if isinstance(arn, list) else [arn]
    assert {"Fn::GetAtt": [bucket_id, "Arn"]} in sources


def test_workgroup_is_an_output(consumer: Template, lake):
    assert consumer.find_outputs("AthenaWorkGroup")["AthenaWorkGroup"]["Value"] == lake.workgroup


# --- column naming (no synthesis) -----------------------------------------------------------------------------------
def test_catalog_metadata_columns_are_the_transforms():
    assert [name for name, _ in catalog_columns.METADATA_COLUMNS] == list(TRANSFORM_METADATA)
    assert "_origin" in TRANSFORM_METADATA


@pytest.mark.parametrize("attribute", ["pk", "_id", "a.b", "100%", "_", "_%.", "Größe", "x" * 255, "%5Fid", "__double"])
def test_key_escaping_is_the_transforms(attribute):
    assert catalog_columns.escape_top_level(attribute) == top_level_column(attribute)


def _spec(**table: Any) -> TableSpec:
    raw = configs.default()
    raw["tables"][0].update(table)
    return from_dict(raw).tables[0]


def _names_by_key(spec: TableSpec) -> dict[str, str]:
    return {c.json_key: c.name for c in catalog_columns.table_columns(spec)}


def test_names_are_lower_case_with_every_other_character_an_underscore():
    spec = _spec(
        partition_key="_id",
        sort_key="order.no",
        columns={"shipTo.city": "string", "%5Fversion": "bigint", "größe": "string", "a%2Eb": "string"},
    )
    names = _names_by_key(spec)
    assert names["%5Fid"] == "_id"
    assert names["order%2Eno"] == "order_no"
    assert names["shipTo.city"] == "shipto_city"
    assert names["%5Fversion"] == "_version"
    assert names["größe"] == "gr__e"
    assert names["a%2Eb"] == "a_b"


def test_colliding_names_get_the_smallest_free_suffix_in_declaration_order():
    spec = _spec(
        partition_key="pk",
        sort_key=None,
        columns={
            "Status": "string",
            "status": "string",
            "STATUS": "string",
            "a%2Eb": "string",
            "a.b": "string",
            "year": "string",  # a partition column's name
            "%5Fevent_name": "string",  # a metadata column's name
            "%5Fchange_number": "bigint",  # a name the views add
        },
    )
    names = _names_by_key(spec)
    assert [names[k] for k in ("Status", "status", "STATUS")] == ["status", "status_2", "status_3"]
    assert (names["a%2Eb"], names["a.b"]) == ("a_b", "a_b_2")
    assert names["year"] == "year_2"
    assert names["%5Fevent_name"] == "_event_name_2"
    assert names["%5Fchange_number"] == "_change_number_2"
    assert names["_event_name"] == "_event_name"


def test_a_key_declared_again_is_one_column_and_long_names_stay_within_255():
    long_key = "n" * 255
    spec = _spec(
        partition_key="pk",
        sort_key=None,
        columns={"pk": "string", long_key: "string", long_key.upper(): "string"},
    )
    columns = catalog_columns.table_columns(spec)
    assert [c.json_key for c in columns].count("pk") == 1
    names = _names_by_key(spec)
    assert names[long_key] == long_key
    assert names[long_key.upper()] == "n" * 253 + "_2"


@pytest.mark.parametrize(
    ("hive", "trino"),
    [
        ("string", "varchar"),
        ("decimal(38,2)", "decimal(38,2)"),
        ("decimal(38, 0)", "decimal(38,0)"),
        ("bigint", "bigint"),
        ("int", "integer"),
        ("float", "real"),
        ("boolean", "boolean"),
        ("varchar(10)", "varchar(10)"),
        ("array<string>", "array(varchar)"),
        ("map<string,array<int>>", "map(varchar, array(integer))"),
        ("struct<a:int,b:struct<c:string>>", "row(a integer, b row(c varchar))"),
    ],
)
def test_view_column_types_are_trino_types(hive, trino):
    assert catalog_columns.trino_type(hive) == trino
