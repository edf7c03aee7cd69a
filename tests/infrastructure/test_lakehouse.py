"""The lakehouse in account B, for every configuration: per source table, the maintenance state machine runs
``consumer/lakehouse/sql.py``'s statements verbatim with the right window values, on a schedule, one execution at a
time, retrying commit conflicts and throttling; its role reaches only this table's data; failures alarm on B's
topic; the user-facing views read the Iceberg tables (or the raw log when the lakehouse is disabled).

Expectations come from the configuration under test and from ``LakehouseSql`` (the statements must be its own,
character for character); the template is read back with tests/integration/lakehouse_template.py, the same reader
the offline proof uses.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
import sqlglot
from aws_cdk.assertions import Template

from consumer.lakehouse.maintenance import MAX_RESULT_ROWS
from consumer.lakehouse.sql import CHUNK_DAYS, CHUNK_VALUES, WINDOW_VALUES, LakehouseSql, Step
from consumer.queries import TableQueries
from consumer.views import decode_view
from shared import config, naming
from tests.integration.lakehouse_template import (
    all_states,
    bind,
    maintenance_steps,
    parameter_names,
    state_machines,
)

SCHEDULED = ["window", "insert_history", "merge_state"]
MAINTENANCE = ["optimize_history", "optimize_state", "vacuum_history", "vacuum_state"]
CREATES = ["create_history", "create_state"]


def _sql(cfg: config.AppConfig, spec: config.TableSpec, names: naming.TableNames) -> LakehouseSql:
    return LakehouseSql(
        spec=spec,
        names=names,
        lake=naming.lake(cfg),
        late_window_hours=cfg.lakehouse.late_window_hours,
        max_hours_per_run=cfg.lakehouse.max_hours_per_run,
        first_year=cfg.data_lake.first_year,
    )


@pytest.fixture(scope="module")
def template(consumer: Template) -> dict[str, Any]:
    return consumer.to_json()


@pytest.fixture(scope="module")
def enabled(cfg) -> list[tuple[config.TableSpec, naming.TableNames, LakehouseSql]]:
    if not cfg.lakehouse.enabled:
        return []
    return [(spec, names, _sql(cfg, spec, names)) for spec, names in naming.tables(cfg)]


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def _glue_views(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["TableInput"]["Name"]: r["Properties"]["TableInput"]
        for r in _resources(template, "AWS::Glue::Table").values()
    }


def _state_machine_id(template: dict[str, Any], name: str) -> str:
    (found,) = [
        k
        for k, r in _resources(template, "AWS::StepFunctions::StateMachine").items()
        if r["Properties"]["StateMachineName"] == name
    ]
    return found


# --- present exactly when enabled ---------------------------------------------------------------------------------
def test_one_state_machine_and_two_schedules_per_table_only_when_enabled(template, cfg):
    machines = set(state_machines(template))
    schedules = {r["Properties"]["Name"] for r in _resources(template, "AWS::Scheduler::Schedule").values()}
    topics = {r["Properties"].get("TopicName") for r in _resources(template, "AWS::SNS::Topic").values()}
    lake = naming.lake(cfg)
    if not cfg.lakehouse.enabled:
        assert machines == set() and schedules == set() and lake.alarm_topic not in topics
        return
    tables = [names for _, names in naming.tables(cfg)]
    assert machines == {names.maintenance_state_machine for names in tables}
    assert schedules == {n.maintenance_schedule for n in tables} | {n.optimize_schedule for n in tables}
    assert lake.alarm_topic in topics


def test_user_views_read_the_iceberg_tables_or_the_raw_log(template, cfg):
    views = _glue_views(template)
    lake = naming.lake(cfg)
    for spec, names in naming.tables(cfg):
        raw = TableQueries(spec=spec, names=names, lake=lake)
        history = decode_view(views[names.history_view]["ViewOriginalText"])
        current = decode_view(views[names.current_view]["ViewOriginalText"])
        # The raw-log views keep the raw SQL under their own names in every configuration.
        assert decode_view(views[names.raw_history_view]["ViewOriginalText"])["originalSql"] == raw.history_sql()
        assert decode_view(views[names.raw_current_view]["ViewOriginalText"])["originalSql"] == raw.current_sql()
        if not cfg.lakehouse.enabled:
            assert history["originalSql"] == raw.history_sql()
            assert current["originalSql"] == raw.current_sql()
            continue
        sql = _sql(cfg, spec, names)
        assert history["originalSql"] == sql.history_view_sql()
        assert current["originalSql"] == sql.current_view_sql()
        assert f'"{names.iceberg_history_table}"' in history["originalSql"]
        assert f'"{names.iceberg_state_table}"' in current["originalSql"]
        # Columns as sql.py declares them, in both the Glue column list and the view's own definition.
        for view, columns in ((history, sql.history_view_columns()), (current, sql.current_view_columns())):
            assert [(c["name"], c["type"]) for c in view["columns"]] == [(c.name, c.trino_type) for c in columns]
        glue_columns = views[names.history_view]["StorageDescriptor"]["Columns"]
        assert [(c["Name"], c["Type"]) for c in glue_columns] == [
            (c.name, c.hive_type) for c in sql.history_view_columns()
        ]


# --- the statements -------------------------------------------------------------------------------------------------
def test_every_statement_is_sql_py_verbatim_with_its_window_values(template, enabled):
    for _, names, sql in enabled:
        steps = maintenance_steps(template, names.maintenance_state_machine)
        expected = {
            step.name: step
            for step in (
                Step("create_history", sql.create_history_sql()),
                Step("create_state", sql.create_state_sql()),
                *sql.steps(),
                sql.validate_window_step(),
                *sql.maintenance_steps(),
                sql.lag_step(),
                sql.change_days_step(),
                sql.insert_history_days_step(),
            )
        }
        assert set(steps) == set(expected)
        assert [step.name for step in sql.steps()] == SCHEDULED
        assert [step.name for step in sql.maintenance_steps()] == MAINTENANCE
        values = {"window_start": "2026-11-21-03", "window_end": "2026-11-21-07"}
        for name, step in steps.items():
            want = expected[name]
            assert (step.parameters, step.inline) == (want.parameters, want.inline), name
            chunk = CHUNK_VALUES if name == "insert_history_days" else ()
            assert set(step.parameters) <= {*WINDOW_VALUES, *chunk}, name
            if not step.inline:
                assert step.sql == want.sql, name
                continue
            # The MERGE as Athena receives it: sql.py's text (one line, no comments) with each ? the window's
            # value as a string literal, in order, after Step Functions formats it.
            text, parameters = bind(step, values)
            lines = [line.strip() for line in want.sql.splitlines() if not line.lstrip().startswith("--")]
            pieces = " ".join(lines).split("?")
            literals = [f"'{values[p]}'" for p in want.parameters]
            assert len(pieces) == len(literals) + 1, name
            rebuilt = pieces[0] + "".join(v + piece for v, piece in zip(literals, pieces[1:], strict=True))
            assert text == rebuilt and parameters == [], name


def test_tables_are_created_as_iceberg_under_their_prefix(template, enabled, cfg):
    lake = naming.lake(cfg)
    for _, names, sql in enabled:
        steps = maintenance_steps(template, names.maintenance_state_machine)
        for step, table, prefix, columns, partitioning in (
            ("create_history", names.iceberg_history_table, names.iceberg_history_prefix, sql.history_columns(),
             sql.history_partitioning),
            ("create_state", names.iceberg_state_table, names.iceberg_state_prefix, sql.state_columns(),
             sql.state_partitioning),
        ):  # fmt: skip
            ddl = steps[step].sql
            assert ddl.upper().startswith("CREATE TABLE IF NOT EXISTS")
            assert re.search(r"'table_type'\s*=\s*'ICEBERG'", ddl, re.IGNORECASE), ddl
            # Parquet with ZSTD: Athena engine 3's defaults for Iceberg, or said explicitly with Athena's table
            # properties 'format' and 'write_compression'
            # (https://docs.aws.amazon.com/athena/latest/ug/compression-support-iceberg.html).
            for key, value in (("format", "PARQUET"), ("write_compression", "ZSTD")):
                said = re.search(rf"'{key}'\s*=\s*'([^']*)'", ddl, re.IGNORECASE)
                assert said is None or said.group(1).upper() == value, (key, said)
            # Under the table's own prefix of the lake bucket (encrypted by the bucket's default: the lake key).
            assert f"LOCATION 's3://{lake.bucket}/{prefix}'" in ddl
            assert table in ddl
            # Every column with its type, and the partition transforms (compared without quotes, case and spaces).
            bare = re.sub(r"[\s`\"]", "", ddl.lower())
            for name, type_ in columns:
                assert re.sub(r"\s", "", f"{name}{type_}".lower()) in bare, (name, type_)
            for transform in partitioning:
                assert re.sub(r"[\s`\"]", "", transform.lower()) in bare, transform
        assert "day(_change_time)" in sql.history_partitioning


FALLBACK = ["change_days", "insert_history_days"]


def test_athena_tasks_run_in_the_lake_workgroup_and_wait_for_the_query(template, enabled, cfg):
    lake = naming.lake(cfg)
    for _, names, _ in enabled:
        definition = state_machines(template)[names.maintenance_state_machine]
        athena = {
            n: s
            for n, s in all_states(definition).items()
            if s.get("Resource", "").endswith("athena:startQueryExecution.sync")
        }
        assert set(athena) == {*CREATES, *SCHEDULED, *MAINTENANCE, *FALLBACK, "measure_lag", "validate_window"}
        for state in athena.values():
            params = state["Parameters"]
            assert params["WorkGroup"] == lake.workgroup
            assert params["QueryExecutionContext"] == {"Database": lake.database}
            # The workgroup enforces the results location and encryption: the task asks for nothing else.
            assert "ResultConfiguration" not in params


def test_window_values_come_from_the_window_row_or_the_input(template, enabled):
    for _, names, sql in enabled:
        states = state_machines(template)[names.maintenance_state_machine]["States"]
        # The window statement's result columns, in the order the state machine reads them.
        (window,) = [step for step in sql.steps() if step.name == "window"]
        select = sqlglot.parse_one(window.sql, read="athena")
        assert [e.alias_or_name for e in select.expressions] == [*WINDOW_VALUES, "caught_up"]
        assert window.parameters == ()
        read = states["read window"]["Parameters"]
        assert read == {
            f"{name}.$": f"$.window_rows.rows[1].Data[{i}].VarCharValue"
            for i, name in enumerate((*WINDOW_VALUES, "caught_up"))
        }
        assert states["window result"]["Parameters"]["MaxResults"] == 2  # header row + the one data row
        # An explicit window: validate_window takes the input as execution parameters; its row (Athena's text) is
        # what "read window" reads, or the execution fails.
        validate = states["validate_window"]["Parameters"]
        assert parameter_names(validate["ExecutionParameters.$"]) == WINDOW_VALUES
        assert "$.input.window_start" in validate["ExecutionParameters.$"]
        assert states["validate_window"]["Next"] == "validated window"
        assert states["validated window"]["ResultPath"] == "$.window_rows"
        valid_row = states[states["validated window"]["Next"]]
        assert [c["Next"] for c in valid_row["Choices"]] == ["read window"]
        assert states[valid_row["Default"]]["Type"] == "Fail"
        assert states["read window"]["Next"] == "insert_history"
        # Only the MERGE gets values written into its text, and only from $.window (Athena's own results).
        merge = states["merge_state"]["Parameters"]
        assert "QueryString" not in merge and "ExecutionParameters.$" not in merge
        assert merge["QueryString.$"].startswith("States.Format('MERGE INTO ")
        assert merge["QueryString.$"].endswith(", $.window.window_start, $.window.window_end, $.window.window_end)")
        # The route: maintenance input, explicit window, else the window statement.
        route = states["which run?"]
        assert route["Choices"][0] == {"Variable": "$.input.maintenance", "IsPresent": True, "Next": MAINTENANCE[0]}
        assert route["Choices"][1]["Next"] == "valid window?"
        # A given window is text without quotes (each value becomes a SQL string literal), else the run fails.
        valid = states["valid window?"]
        (rule,) = valid["Choices"]
        assert rule["Next"] == "validate_window"
        for name in WINDOW_VALUES:
            assert {"Variable": f"$.input.{name}", "IsString": True} in rule["And"]
            assert {"Not": {"Variable": f"$.input.{name}", "StringMatches": "*'*"}} in rule["And"]
        assert states[valid["Default"]]["Type"] == "Fail"
        assert {c["Variable"] for c in route["Choices"][1]["And"]} == {f"$.input.{n}" for n in WINDOW_VALUES}
        assert route["Default"] == "window"
        # insert_history, then merge_state; a catch-up loops back to the window statement.
        assert states["insert_history"]["Next"] == "merge_state"
        loop = states["caught up?"]
        assert loop["Choices"] == [{"Variable": "$.window.caught_up", "StringEquals": "false", "Next": "window"}]
        # Each parameter is its window value as an Athena string literal.
        rendered = states["insert_history"]["Parameters"]["ExecutionParameters.$"]
        assert "States.Format('\\'{}\\'', $.window.window_start)" in rendered
        assert parameter_names(rendered) == next(s.parameters for s in sql.steps() if s.name == "insert_history")


def test_one_execution_at_a_time(template, enabled):
    for _, names, _ in enabled:
        definition = state_machines(template)[names.maintenance_state_machine]
        states = definition["States"]
        assert definition["StartAt"] == "start"
        assert states["start"]["Parameters"]["execution.$"] == "$$.Execution.Id"
        guard = states[states["start"]["Next"]]
        assert guard["Resource"].endswith(":states:::aws-sdk:sfn:listExecutions")
        assert guard["Parameters"]["StatusFilter"] == "RUNNING"
        assert guard["ResultSelector"] == {"arns.$": "$.Executions[*].ExecutionArn"}
        # ListExecutions lists newest first: the last ARN is the oldest running execution, the only one to proceed.
        oldest = states[guard["Next"]]
        assert oldest["Parameters"] == {
            "arn.$": "States.ArrayGetItem($.running.arns, States.MathAdd(States.ArrayLength($.running.arns), -1))"
        }
        decide = states[oldest["Next"]]
        first = decide["Choices"][0]
        assert first == {"Variable": "$.oldest.arn", "StringEqualsPath": "$.execution", "Next": "create_history"}
        assert decide["Default"] == "another_run_in_progress"
        assert states["another_run_in_progress"]["Type"] == "Succeed"
        # Maintenance and explicit windows wait for their turn, then ask again.
        assert decide["Choices"][1]["Next"] == "wait for the other run"
        assert states["wait for the other run"]["Next"] == states["start"]["Next"]


def test_commit_conflicts_and_throttling_are_retried_and_nothing_else(template, enabled):
    for _, names, _ in enabled:
        states = all_states(state_machines(template)[names.maintenance_state_machine])
        athena = [n for n, s in states.items() if s.get("Resource", "").endswith("athena:startQueryExecution.sync")]
        for name in athena:
            state = states[name]
            assert [r["ErrorEquals"] for r in state["Retry"]] == [["Athena.TooManyRequestsException"]]
            (catch,) = state["Catch"]
            assert catch["ErrorEquals"] == ["States.TaskFailed"] and catch["ResultPath"] == "$.failure"
            choice = states[catch["Next"]]
            rule, *others = choice["Choices"]
            # Only the INSERT has a second way out: too many partitions for one INSERT -> by chunks of days.
            assert others == (
                [{"Variable": "$.failure.Cause", "StringMatches": "*TOO_MANY_OPEN_PARTITIONS*", "Next": "change_days"}]
                if name == "insert_history"
                else []
            ), name
            conditions = {c["Variable"]: c for c in rule["And"]}
            assert conditions["$.failure.Cause"]["StringMatches"] == "*ICEBERG_COMMIT_ERROR*"
            assert conditions["$.commit_retries.count"]["NumericLessThan"] > 0
            # Count, wait, run the same statement again; anything else fails the execution.
            count = states[rule["Next"]]
            assert count["Parameters"] == {"count.$": "States.MathAdd($.commit_retries.count, 1)"}
            assert states[count["Next"]]["Type"] == "Wait" and states[count["Next"]]["Next"] == name
            assert states[choice["Default"]]["Type"] == "Fail"


def test_an_insert_of_too_many_change_days_goes_by_chunks_then_merges(template, enabled):
    """Athena writes at most 100 partitions per INSERT and history has one per change day: the fallback lists the
    window's change days in chunks (change_days, all rows of one getQueryResults page), inserts each chunk in turn
    with the chunk's days as execution parameters read from Athena's own result, then merges as usual."""
    assert CHUNK_DAYS < config.ATHENA_MAX_PARTITIONS_PER_INSERT
    for _, names, sql in enabled:
        definition = state_machines(template)[names.maintenance_state_machine]
        states = definition["States"]
        change_days = states["change_days"]
        assert parameter_names(change_days["Parameters"]["ExecutionParameters.$"]) == sql.change_days_step().parameters
        result = states[change_days["Next"]]
        assert result["Parameters"]["MaxResults"] == MAX_RESULT_ROWS
        assert result["ResultPath"] == "$.chunk_rows"
        each = states[result["Next"]]
        assert each["Type"] == "Map" and each["MaxConcurrency"] == 1 and each["ItemsPath"] == "$.chunk_rows.rows"
        assert each["ItemSelector"]["window.$"] == "$.window" and each["ResultPath"] is None
        assert each["Next"] == "merge_state"
        inner = each["ItemProcessor"]["States"]
        header = inner[each["ItemProcessor"]["StartAt"]]
        assert header["Choices"] == [{"Variable": "$.index", "NumericEquals": 0, "Next": "header row"}]
        read = inner[header["Default"]]
        assert read["Parameters"] == {
            f"{name}.$": f"$.row.Data[{i}].VarCharValue" for i, name in enumerate(CHUNK_VALUES)
        }
        assert read["ResultPath"] == "$.chunk" and read["Next"] == "insert_history_days"
        rendered = inner["insert_history_days"]["Parameters"]["ExecutionParameters.$"]
        assert parameter_names(rendered) == sql.insert_history_days_step().parameters
        assert "$.chunk.chunk_start" in rendered and "$.input." not in rendered
        # The change_days statement's columns are the chunk values, in this order.
        select = sqlglot.parse_one(sql.change_days_step().sql, read="athena")
        assert [e.alias_or_name for e in select.expressions] == list(CHUNK_VALUES)


def test_metrics_data_scanned_per_statement_and_state_lag(template, enabled):
    for _, names, sql in enabled:
        states = state_machines(template)[names.maintenance_state_machine]["States"]
        puts = [s for s in states.values() if s.get("Resource", "").endswith("aws-sdk:cloudwatch:putMetricData")]
        assert {p["Parameters"]["Namespace"] for p in puts} == {names.lakehouse_metrics_namespace}
        data = [d for p in puts for d in p["Parameters"]["MetricData"]]
        scanned = {d["Dimensions"][0]["Value"]: d["Value.$"] for d in data if d["MetricName"] == "DataScannedBytes"}
        assert scanned == {step.name: f"$.runs.{step.name}.bytes" for step in sql.steps()}
        for step in sql.steps():
            assert states[step.name]["ResultSelector"]["bytes.$"] == "$.QueryExecution.Statistics.DataScannedInBytes"
        (lag,) = [d for d in data if d["MetricName"] == "StateLagSeconds"]
        assert lag["Value.$"] == "States.StringToJson($.lag_rows.rows[1].Data[0].VarCharValue)"


# --- schedules ------------------------------------------------------------------------------------------------------
def test_schedules_start_the_state_machine_on_time(template, enabled, cfg):
    schedules = {
        r["Properties"]["Name"]: r["Properties"] for r in _resources(template, "AWS::Scheduler::Schedule").values()
    }
    for _, names, _ in enabled:
        machine = _state_machine_id(template, names.maintenance_state_machine)
        regular = schedules[names.maintenance_schedule]
        assert regular["ScheduleExpression"] == f"rate({cfg.lakehouse.schedule_minutes} minutes)"
        assert regular["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert regular["Target"]["Arn"] == {"Ref": machine}
        assert json.loads(regular["Target"]["Input"]) == {}
        daily = schedules[names.optimize_schedule]
        assert daily["ScheduleExpression"].startswith("cron(") and daily["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert json.loads(daily["Target"]["Input"]) == {"maintenance": True}
        assert daily["Target"]["Arn"] == {"Ref": machine}
        # The schedules' role may start this state machine and nothing else.
        role = regular["Target"]["RoleArn"]["Fn::GetAtt"][0]
        assert daily["Target"]["RoleArn"]["Fn::GetAtt"][0] == role
        statements = _statements_of(template, role)
        assert [(s["Action"], s["Resource"]) for s in statements] == [("states:StartExecution", {"Ref": machine})]


# --- the role ---------------------------------------------------------------------------------------------------------
def _statements_of(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    statements = []
    for policy in _resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _arn_text(resource: Any) -> str:
    """A resource as text: Fn::Join parts joined, other intrinsics as their JSON."""
    if isinstance(resource, str):
        return resource
    if "Fn::Join" in resource:
        separator, parts = resource["Fn::Join"]
        return separator.join(_arn_text(p) for p in parts)
    return json.dumps(resource, sort_keys=True)


def test_maintenance_role_reaches_only_this_tables_data(template, enabled, cfg):
    lake = naming.lake(cfg)
    (bucket_id,) = [
        k
        for k, r in _resources(template, "AWS::S3::Bucket").items()
        if r["Properties"].get("BucketName") == lake.bucket
    ]
    (results_id,) = [
        k
        for k, r in _resources(template, "AWS::S3::Bucket").items()
        if r["Properties"].get("BucketName") == lake.results_bucket
    ]
    bucket = json.dumps({"Fn::GetAtt": [bucket_id, "Arn"]}, sort_keys=True)
    results = json.dumps({"Fn::GetAtt": [results_id, "Arn"]}, sort_keys=True)
    for _, names, _ in enabled:
        machine = _resources(template, "AWS::StepFunctions::StateMachine")[
            _state_machine_id(template, names.maintenance_state_machine)
        ]
        role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
        granted: dict[str, set[str]] = {}
        for statement in _statements_of(template, role):
            assert statement["Effect"] == "Allow"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for action in actions:
                granted.setdefault(action, set()).update(_arn_text(r) for r in resources)
            if "*" in resources:
                # Only APIs without resource-level permissions, and metrics only into this table's namespace.
                assert set(actions) <= {
                    "cloudwatch:PutMetricData",
                    "logs:CreateLogDelivery",
                    "logs:GetLogDelivery",
                    "logs:UpdateLogDelivery",
                    "logs:DeleteLogDelivery",
                    "logs:ListLogDeliveries",
                    "logs:PutResourcePolicy",
                    "logs:DescribeResourcePolicies",
                    "logs:DescribeLogGroups",
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                }, actions
                if "cloudwatch:PutMetricData" in actions:
                    assert statement["Condition"] == {
                        "StringEquals": {"cloudwatch:namespace": names.lakehouse_metrics_namespace}
                    }
        workgroup = f"athena:{cfg.consumer.region}:{cfg.consumer.account}:workgroup/{lake.workgroup}"
        for action in ("athena:StartQueryExecution", "athena:GetQueryResults", "athena:GetQueryExecution"):
            assert granted[action] and all(r.endswith(workgroup) for r in granted[action]), action
        glue_prefix = f"glue:{cfg.consumer.region}:{cfg.consumer.account}:"
        own_tables = {names.iceberg_history_table, names.iceberg_state_table}
        for action in ("glue:CreateTable", "glue:UpdateTable"):
            tables = {r.rsplit("/", 1)[1] for r in granted[action] if ":table/" in r}
            assert tables == own_tables, action
        readable = {r.rsplit("/", 1)[1] for r in granted["glue:GetTable"] if ":table/" in r}
        assert readable == own_tables | {names.glue_table, names.raw_history_view, names.raw_current_view}
        assert all(glue_prefix in r for a in granted if a.startswith("glue:") for r in granted[a])
        # S3: this table's raw data read-only, its lakehouse prefix read/write, the results bucket.
        data, own = f"{bucket}/{names.root(naming.DATA)}*", f"{bucket}/{naming.LAKEHOUSE}/{names.key}/*"
        assert granted["s3:GetObject"] == {data, own, f"{results}/*"}
        assert granted["s3:PutObject"] == {own, f"{results}/*"}
        assert granted["s3:DeleteObject"] == {own}
        assert granted["s3:ListBucket"] == {bucket, results}
        # KMS: the lake key, through S3 only.
        (kms,) = [
            s
            for s in _statements_of(template, role)
            if "kms:Decrypt" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        ]
        assert kms["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{cfg.consumer.region}.amazonaws.com"}}
        (listed,) = granted["states:ListExecutions"]
        assert listed.endswith(
            f":states:{cfg.consumer.region}:{cfg.consumer.account}:stateMachine:{names.maintenance_state_machine}"
        )
        # Nothing destructive outside the table's own prefix, no IAM, no other service.
        services = {a.split(":")[0] for a in granted}
        assert services <= {"athena", "glue", "s3", "kms", "states", "cloudwatch", "logs", "xray"}


# --- alarm, topic and dashboard -------------------------------------------------------------------------------------
def test_failed_runs_alarm_on_account_bs_topic(template, enabled, cfg):
    if not enabled:
        return
    lake = naming.lake(cfg)
    (topic_id,) = [
        k
        for k, r in _resources(template, "AWS::SNS::Topic").items()
        if r["Properties"].get("TopicName") == lake.alarm_topic
    ]
    topic = template["Resources"][topic_id]["Properties"]
    assert "KmsMasterKeyId" in topic
    subscriptions = [
        r["Properties"]
        for r in _resources(template, "AWS::SNS::Subscription").values()
        if r["Properties"]["TopicArn"] == {"Ref": topic_id}
    ]
    assert sorted(s["Endpoint"] for s in subscriptions) == sorted(cfg.notifications.alarm_emails)
    assert all(s["Protocol"] == "email" for s in subscriptions)
    alarms = {
        r["Properties"]["AlarmName"]: r["Properties"] for r in _resources(template, "AWS::CloudWatch::Alarm").values()
    }
    dashboards = {r["Properties"]["DashboardName"] for r in _resources(template, "AWS::CloudWatch::Dashboard").values()}
    for _, names, _ in enabled:
        alarm = alarms[f"{names.lakehouse_alarm_prefix}Failed"]
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] == 0
        machine = _state_machine_id(template, names.maintenance_state_machine)
        watched = {
            m["MetricStat"]["Metric"]["MetricName"]
            for m in alarm["Metrics"]
            if "MetricStat" in m and m["MetricStat"]["Metric"]["Dimensions"][0]["Value"] == {"Ref": machine}
        }
        assert watched == {"ExecutionsFailed", "ExecutionsTimedOut"}
        assert names.lakehouse_dashboard in dashboards


def test_state_machine_logs_everything_encrypted_and_traces(template, enabled):
    for _, names, _ in enabled:
        machine = _resources(template, "AWS::StepFunctions::StateMachine")[
            _state_machine_id(template, names.maintenance_state_machine)
        ]["Properties"]
        assert machine["TracingConfiguration"] == {"Enabled": True}
        assert machine["LoggingConfiguration"]["Level"] == "ALL"
        (destination,) = machine["LoggingConfiguration"]["Destinations"]
        group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
        assert "KmsKeyId" in template["Resources"][group]["Properties"]


# --- configuration (no synthesis) -------------------------------------------------------------------------------------
def _lakehouse_config(**lakehouse: Any) -> dict[str, Any]:
    from tests import configs

    raw = configs.default()
    raw["lakehouse"] = lakehouse
    return raw


def test_defaults_fit_athenas_partition_limit_and_the_buffers():
    lake = config.from_dict(_lakehouse_config()).lakehouse
    assert (lake.enabled, lake.schedule_minutes, lake.late_window_hours, lake.max_hours_per_run) == (True, 15, 3, 72)
    # 3 days + 3 late hours -> 4 day partitions, + 2 edge days: well under Athena's 100 per INSERT; and even the
    # largest allowed run (30 days + a 7-day late window) stays far below it.
    assert -(-(lake.max_hours_per_run + lake.late_window_hours) // 24) + 2 <= 100
    assert -(-(config.LAKEHOUSE_MAX_HOURS_PER_RUN + config.LAKEHOUSE_MAX_LATE_WINDOW_HOURS) // 24) + 2 < 50
    assert lake.max_hours_per_run >= lake.late_window_hours + 2


@pytest.mark.parametrize(
    ("lakehouse", "problem"),
    [
        (
            {"late_window_hours": 1},
            "datalake.lakehouse.late_window_hours = 1: must be a whole number from 2 to 168",
        ),
        (
            {"max_hours_per_run": 721},
            "datalake.lakehouse.max_hours_per_run = 721: must be a whole number from 4 to 720",
        ),
        (
            {"late_window_hours": 10, "max_hours_per_run": 11},
            "datalake.lakehouse.max_hours_per_run = 11: must be at least datalake.lakehouse.late_window_hours + 2 "
            "(12); each run re-reads the late window, so a smaller one never catches up",
        ),
        ({"schedule_minutes": 4}, "datalake.lakehouse.schedule_minutes = 4: must be a whole number from 5 to 1440"),
        ({"enabled": "yes"}, "datalake.lakehouse.enabled = 'yes': must be true or false"),
    ],
)
def test_bad_lakehouse_settings_name_the_key_the_value_and_what_is_allowed(lakehouse, problem):
    with pytest.raises(config.ConfigError) as caught:
        config.from_dict(_lakehouse_config(**lakehouse))
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_the_smallest_late_window_covers_the_largest_buffers():
    """An object lands up to both buffers after its arrival hour ends (transform 60 s + at most 900 s of S3
    buffer), and an hour is kept for replication lag: the lower bound of late_window_hours is exactly that."""
    delivery = config.DeliverySettings.model_fields["buffer_interval_seconds"]
    (largest,) = (m.le for m in delivery.metadata if hasattr(m, "le"))
    assert largest == config.MAX_BUFFER_INTERVAL_SECONDS
    worst = config.FIREHOSE_PROCESSOR_BUFFER_SECONDS + largest
    assert config.LAKEHOUSE_MIN_LATE_WINDOW_HOURS == 1 + math.ceil(worst / 3600) == 2
