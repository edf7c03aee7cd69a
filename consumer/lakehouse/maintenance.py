"""The lakehouse maintenance of one source table: EventBridge Scheduler -> Step Functions -> Athena, no Lambda.

Every Athena statement comes verbatim from ``consumer/lakehouse/sql.py`` (``LakehouseSql``); this module only
orders them, binds the window values, retries what may be retried, and publishes what a run did.

The state machine (standard workflow, JSONPath):

1. ``guard``: lists the RUNNING executions of this state machine (Step Functions SDK integration); only the oldest
   one proceeds. Any other scheduled run ends at once ("another_run_in_progress"): one execution per table at a
   time, because concurrent commits to one Iceberg table fail with ``ICEBERG_COMMIT_ERROR``. A table-maintenance
   run or an explicit window waits for its turn instead (they must not be skipped).
2. ``create_history``, ``create_state``: ``CREATE TABLE IF NOT EXISTS`` (see "Why the tables are created by
   Athena DDL" below); free (DDL is not billed) and idempotent.
3. The window, always as Athena returned it (``window_start``, ``window_end``, ``caught_up``): for ``{}`` (the
   schedule) the ``window`` step's single result row; for an explicit window in the execution input
   (``{"window_start": "YYYY-MM-DD-HH", "window_end": "YYYY-MM-DD-HH"}``: ``ddb-lake rebuild``, catch-up by hand)
   the row of ``validate_window``, which takes the two values as execution parameters and returns them re-formatted
   from Athena's own list of projected hours, or no row (the execution then fails: ``invalid window input``).
4. ``insert_history``: a ``startQueryExecution.sync`` task whose ``QueryString`` is the step's SQL and whose
   ``ExecutionParameters`` are the step's window values, in order, as SQL string literals (Athena substitutes each
   execution parameter as a literal, like ``EXECUTE ... USING 'usa'``:
   https://docs.aws.amazon.com/athena/latest/ug/querying-with-prepared-statements-execute.html).
   ``merge_state``: Athena takes execution parameters "only for SELECT, INSERT INTO, CTAS, and UNLOAD statements"
   (https://docs.aws.amazon.com/athena/latest/ug/querying-with-prepared-statements.html, "Considerations and
   limitations"), not for MERGE. Its ``QueryString.$`` is ``States.Format(<the MERGE>, <window values>)``: each
   ``?`` of sql.py's text becomes ``'{}'`` and Step Functions writes the window's hours there. The text is escaped
   as intrinsic functions require ("'", "{", "}" and "\\" are reserved and take a backslash:
   https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html, "Reserved characters in
   intrinsic functions") and written on one line without its ``--`` comments. The values are never user input:
   only the texts Athena returned in step 3 (digits and '-').
   If Athena refuses the INSERT for writing more partitions than one INSERT may (``..._TOO_MANY_OPEN_PARTITIONS``:
   history has one partition per change day, and a replay of months-old objects can bring more than 100), the
   fallback lists the window's change days in chunks (``change_days``) and runs ``insert_history_days`` once per
   chunk, in order, before the MERGE (``_insert_by_change_days``).
5. ``measure_lag`` and the metrics: data scanned per statement and the state's lag, via ``cloudwatch:putMetricData``.
6. While the window step said ``caught_up = 'false'`` (a catch-up after an outage, or the first run over an existing
   log, proceeds in ranges of at most ``max_hours_per_run`` hours), back to ``window``.

A separate daily schedule starts the same state machine with ``{"maintenance": true}``: ``optimize_history``,
``optimize_state``, ``vacuum_history``, ``vacuum_state`` (``LakehouseSql.maintenance_steps()``).

Why the tables are created by Athena DDL and not as ``AWS::Glue::Table`` resources: CloudFormation's Iceberg
support (``OpenTableFormatInput.IcebergInput.IcebergTableInput``: schema with field IDs, partition spec,
properties; https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-glue-table-icebergpartitionspec.html)
cannot express this project's columns: a field's ``Type`` is a plain string (aws-cdk-lib 2.275,
``CfnTable.IcebergStructFieldProperty``), so the struct/array/map columns ``tables[].columns`` allows (Iceberg
writes nested types as JSON objects with their own field IDs) have no form, and ``MetadataOperation`` "can only be
set to CREATE" (``CfnTable.IcebergInputProperty``), so a column added later would not reach the table. It would
also be a second rendering of every column, in Iceberg's type names, next to the Athena types ``sql.py`` owns.
Athena's ``CREATE TABLE`` takes ``sql.py``'s columns, partition transform and table properties as they are. The
consequence: the tables do not exist at deployment time, so ``AWS::Glue::TableOptimizer`` (which names an existing
table) cannot be declared for them; table maintenance runs as Athena ``OPTIMIZE``/``VACUUM`` instead
(docs/lakehouse.md).

Errors: a ``.sync`` Athena task whose query ends FAILED fails with ``States.TaskFailed`` and the query execution
(with its ``StateChangeReason``) in the cause (https://docs.aws.amazon.com/step-functions/latest/dg/connect-athena.html,
"Run a Job (.sync)"). A commit conflict reads ``ICEBERG_COMMIT_ERROR: Failed to commit Iceberg update ...``; AWS
documents retrying it with backoff (https://repost.aws/knowledge-center/athena-iceberg-table-error). Retriers
match error names only, so each statement catches ``States.TaskFailed`` and a Choice retries it when the cause
contains ``ICEBERG_COMMIT_ERROR`` (at most ``COMMIT_RETRIES`` times per execution). Throttled API calls surface as
``Athena.TooManyRequestsException`` (https://docs.aws.amazon.com/athena/latest/APIReference/API_StartQueryExecution.html,
"Errors") and are retried by a retrier. Any other failure fails the execution, which alarms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from consumer.lakehouse.sql import CHUNK_VALUES, WINDOW_VALUES, LakehouseSql, Step
from shared import naming
from shared.nag import REGULATORY, acknowledge, acknowledge_rule, in_packs, inline_policy_reason
from shared.naming import LakeNames, TableNames

# Commit conflicts retried per execution (all statements together), and the wait before each retry.
COMMIT_RETRIES = 5
COMMIT_RETRY_WAIT = Duration.seconds(30)
# A scheduled run's catch-up loop and a maintenance run's wait for another run both end within this.
EXECUTION_TIMEOUT = Duration.hours(24)
# How often a table-maintenance run checks again whether the other run has ended.
WAIT_FOR_OTHER_RUN = Duration.seconds(60)
# RUNNING executions listed per guard call (ListExecutions allows up to 1000).
LIST_PAGE = 100
# The daily table maintenance (OPTIMIZE/VACUUM), at a fixed quiet hour (UTC).
OPTIMIZE_CRON_HOUR = 3
MAINTENANCE_INPUT_KEY = "maintenance"
LOG_RETENTION = logs.RetentionDays.ONE_YEAR
# Metric names (namespace: TableNames.lakehouse_metrics_namespace).
DATA_SCANNED = "DataScannedBytes"
STATE_LAG = "StateLagSeconds"
STEP_DIMENSION = "Step"
# Where each piece of a run's data lives in the execution state.
WINDOW_PATH = "$.window"
RUNS_PATH = "$.runs"
# The INSERT's fallback: one chunk of change days, inside the "insert by change days" Map's iterations.
CHUNK_PATH = "$.chunk"
# getQueryResults rows per call (its maximum): the fallback's chunks, header row included.
MAX_RESULT_ROWS = 1000


INPUT_PATH = "$.input"
# Characters reserved inside an intrinsic function's string literal; each takes a backslash
# (https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html, "Reserved characters").
INTRINSIC_RESERVED = "\\'{}"


def literal(path: str) -> str:
    """An intrinsic that renders the text at ``path`` as a SQL string literal ('2026-11-21-05'). The window
    statement generates digits and '-'; a window given in the execution input is refused if it holds a quote
    (the "valid window?" state), so no value can end its literal early."""
    return f"States.Format('\\'{{}}\\'', {path})"


def execution_parameters(step: Step, source: str = WINDOW_PATH) -> str:
    """``States.Array(...)`` of the step's values, in order, each as a SQL string literal: window values from
    ``source``, a chunk's change days from ``CHUNK_PATH``."""
    paths = [f"{CHUNK_PATH if name in CHUNK_VALUES else source}.{name}" for name in step.parameters]
    return "States.Array(" + ", ".join(literal(path) for path in paths) + ")"


def one_line(sql: str) -> str:
    """The statement without its ``--`` comment lines, on one line (an intrinsic's string literal is kept to one
    line; SQL whitespace outside literals is free, and no literal of these statements holds a line break)."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    text = " ".join(line.strip() for line in lines)
    if "--" in text:
        raise ValueError("a -- comment after SQL on one line would swallow the rest of the statement")
    return text


def inline_query(step: Step) -> str:
    """``States.Format('<the statement, escaped, each ? as '{}'>', $.window.<value>, ...)``: the window values
    written into the text as SQL string literals (for the MERGE, which takes no execution parameters)."""
    text = one_line(step.sql)
    if text.count("?") != len(step.parameters):
        raise ValueError(f"step {step.name!r}: {text.count('?')} '?' for {len(step.parameters)} window values")
    escaped = "".join("\\" + c if c in INTRINSIC_RESERVED else c for c in text).replace("?", "\\'{}\\'")
    return f"States.Format('{escaped}', " + ", ".join(f"{WINDOW_PATH}.{name}" for name in step.parameters) + ")"


class LakehouseMaintenance(Construct):
    """The state machine, its role, its schedules, its alarm and its dashboard, for one source table."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        sql: LakehouseSql,
        names: TableNames,
        lake: LakeNames,
        bucket: s3.IBucket,
        results: s3.IBucket,
        data_key: kms.IKey,
        log_key: kms.IKey,
        topic: sns.ITopic,
        schedule_minutes: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self._sql = sql
        self._lake = lake
        self._names = names
        self.role = MaintenanceRole(
            self, "Role", names=names, lake=lake, bucket=bucket, results=results, data_key=data_key
        ).role
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=log_key,
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=names.maintenance_state_machine,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(self._definition()),
            role=self.role,
            timeout=EXECUTION_TIMEOUT,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            comment=f"Keeps {names.iceberg_history_table} and {names.iceberg_state_table} current (docs/lakehouse.md)",
        )
        # Logging and X-Ray APIs have no resource-level permissions: CDK grants them on "*".
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "The maintenance role: Step Functions' log delivery (logs:CreateLogDelivery, ...) and X-Ray "
            "(xray:PutTraceSegments, ...) support no resource-level permissions, and cloudwatch:PutMetricData has "
            "none either; the latter is limited to this table's namespace by the cloudwatch:namespace condition.",
        )
        acknowledge_rule(
            self.role,
            inline_policy_reason("The lakehouse maintenance role"),
            *in_packs("IAMNoInlinePolicy", *REGULATORY),
        )

        # One role for both schedules: it may start this state machine and nothing else.
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            ),
            description=f"Lets EventBridge Scheduler start the lakehouse maintenance of {names.key}",
        )
        acknowledge_rule(
            self.scheduler_role,
            inline_policy_reason("The lakehouse schedules' role"),
            *in_packs("IAMNoInlinePolicy", *REGULATORY),
        )
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            schedule_name=names.maintenance_schedule,
            description=f"Runs the lakehouse maintenance of {names.key} every {schedule_minutes} minutes",
            schedule=scheduler.ScheduleExpression.rate(Duration.minutes(schedule_minutes)),
            # Runs start on time: freshness is what the schedule is for (flexible window off).
            time_window=scheduler.TimeWindow.off(),
            target=targets.StepFunctionsStartExecution(
                self.state_machine,
                input=scheduler.ScheduleTargetInput.from_object({}),
                retry_attempts=3,
                role=self.scheduler_role,
            ),
        )
        self.optimize_schedule = scheduler.Schedule(
            self,
            "OptimizeSchedule",
            schedule_name=names.optimize_schedule,
            description=f"Compacts and vacuums the lakehouse tables of {names.key} once a day",
            schedule=scheduler.ScheduleExpression.cron(minute="7", hour=str(OPTIMIZE_CRON_HOUR)),
            time_window=scheduler.TimeWindow.off(),
            target=targets.StepFunctionsStartExecution(
                self.state_machine,
                input=scheduler.ScheduleTargetInput.from_object({MAINTENANCE_INPUT_KEY: True}),
                retry_attempts=3,
                role=self.scheduler_role,
            ),
        )

        self.monitoring = MaintenanceMonitoring(
            self, "Monitoring", names=names, state_machine=self.state_machine, topic=topic, steps=self._metric_steps
        )

    # --- the definition -----------------------------------------------------------------------------------------
    @property
    def _metric_steps(self) -> list[str]:
        return [step.name for step in self._sql.steps()]

    def _athena(
        self,
        step: Step,
        *,
        result_path: str | None = None,
        selector: dict[str, str] | None = None,
        fail: sfn.IChainable | None = None,
        too_many_partitions: sfn.IChainable | None = None,
    ) -> Any:
        """A ``startQueryExecution.sync`` task named ``step.name`` running ``step.sql`` verbatim. ``fail``: where a
        failure that is not retried goes (the execution's Fail state by default; a Map iteration has its own);
        ``too_many_partitions``: where a failure for writing too many partitions goes instead."""
        parameters: dict[str, Any] = {
            "QueryString": step.sql,
            "WorkGroup": self._lake.workgroup,
            "QueryExecutionContext": {"Database": self._lake.database},
        }
        unknown = set(step.parameters) - {*WINDOW_VALUES, *CHUNK_VALUES}
        if unknown:
            raise ValueError(f"step {step.name!r} binds {sorted(unknown)}; only {WINDOW_VALUES + CHUNK_VALUES} exist")
        if step.inline:
            del parameters["QueryString"]
            parameters["QueryString.$"] = inline_query(step)
        elif step.parameters:
            # The window step's row, or an explicit window (validate_window reads the execution input).
            source = INPUT_PATH if step.name == "validate_window" else WINDOW_PATH
            parameters["ExecutionParameters.$"] = execution_parameters(step, source)
        state: dict[str, Any] = {
            "Type": "Task",
            "Resource": f"arn:{Stack.of(self).partition}:states:::athena:startQueryExecution.sync",
            "Parameters": parameters,
            "ResultPath": result_path or sfn.JsonPath.DISCARD,
        }
        if selector:
            state["ResultSelector"] = selector
        task = sfn.CustomState(self, step.name, state_json=state)
        task.add_retry(
            errors=["Athena.TooManyRequestsException"],
            interval=Duration.seconds(10),
            backoff_rate=2,
            max_attempts=6,
            jitter_strategy=sfn.JitterType.FULL,
        )
        # A commit conflict: wait and run the same statement again (each is idempotent: docs/lakehouse.md).
        count = sfn.Pass(
            self,
            f"{step.name} commit conflict",
            parameters={"count.$": "States.MathAdd($.commit_retries.count, 1)"},
            result_path="$.commit_retries",
        )
        wait = sfn.Wait(self, f"{step.name} retry wait", time=sfn.WaitTime.duration(COMMIT_RETRY_WAIT))
        count.next(wait).next(task)
        decide = sfn.Choice(self, f"{step.name} failed").when(
            sfn.Condition.and_(
                sfn.Condition.string_matches("$.failure.Cause", "*ICEBERG_COMMIT_ERROR*"),
                sfn.Condition.number_less_than("$.commit_retries.count", COMMIT_RETRIES),
            ),
            count,
        )
        if too_many_partitions is not None:
            # HIVE_TOO_MANY_OPEN_PARTITIONS (Iceberg tables too): more partitions than one INSERT may write.
            decide.when(
                sfn.Condition.string_matches("$.failure.Cause", "*TOO_MANY_OPEN_PARTITIONS*"), too_many_partitions
            )
        decide.otherwise(fail or self._fail)
        task.add_catch(decide, errors=["States.TaskFailed"], result_path="$.failure")
        return task

    def _results(
        self, construct_id: str, execution_id_path: str, result_path: str, max_results: int = 2
    ) -> sfn.CustomState:
        """The first rows of a finished query (``athena:getQueryResults``, header row included): by default the
        header and the first data row."""
        return sfn.CustomState(
            self,
            construct_id,
            state_json={
                "Type": "Task",
                "Resource": f"arn:{Stack.of(self).partition}:states:::athena:getQueryResults",
                "Parameters": {"QueryExecutionId.$": execution_id_path, "MaxResults": max_results},
                "ResultSelector": {"rows.$": "$.ResultSet.Rows"},
                "ResultPath": result_path,
            },
        )

    def _definition(self) -> sfn.IChainable:
        sql = self._sql
        partition = Stack.of(self).partition
        self._fail = sfn.Fail(self, "statement failed", cause_path="$.failure.Cause", error_path="$.failure.Error")
        start = sfn.Pass(
            self,
            "start",
            parameters={
                "input.$": "$",
                "execution.$": "$$.Execution.Id",
                "commit_retries": {"count": 0},
                "runs": {name: {"bytes": 0} for name in self._metric_steps},
            },
        )
        # The input moves under $.input; window values given there are read from it below. The RUNNING executions
        # come newest first (https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html);
        # only the oldest one proceeds. Scheduled runs never wait, so more than a page of them never runs.
        guard = sfn.CustomState(
            self,
            "guard",
            state_json={
                "Type": "Task",
                "Resource": f"arn:{partition}:states:::aws-sdk:sfn:listExecutions",
                "Parameters": {
                    "StateMachineArn.$": "$$.StateMachine.Id",
                    "StatusFilter": "RUNNING",
                    "MaxResults": LIST_PAGE,
                },
                # Newest first: the last ARN is the oldest RUNNING execution's.
                "ResultSelector": {"arns.$": "$.Executions[*].ExecutionArn"},
                "ResultPath": "$.running",
                "Retry": [
                    {
                        "ErrorEquals": ["Sfn.SfnException", "States.TaskFailed"],
                        "IntervalSeconds": 5,
                        "BackoffRate": 2,
                        "MaxAttempts": 3,
                    }
                ],
            },
        )
        oldest = sfn.Pass(
            self,
            "oldest",
            parameters={
                "arn.$": "States.ArrayGetItem($.running.arns, States.MathAdd(States.ArrayLength($.running.arns), -1))"
            },
            result_path="$.oldest",
        )
        others = sfn.Succeed(self, "another_run_in_progress")
        wait_other = sfn.Wait(self, "wait for the other run", time=sfn.WaitTime.duration(WAIT_FOR_OTHER_RUN))
        wait_other.next(guard)

        create_history = self._athena(Step("create_history", sql.create_history_sql()))
        create_state = self._athena(Step("create_state", sql.create_state_sql()))

        steps = {step.name: step for step in sql.steps()}
        if list(steps) != ["window", "insert_history", "merge_state"]:
            raise ValueError(f"LakehouseSql.steps() must be window, insert_history, merge_state; got {list(steps)}")
        bytes_selector = {"bytes.$": "$.QueryExecution.Statistics.DataScannedInBytes"}
        window = self._athena(
            steps["window"],
            result_path=f"{RUNS_PATH}.window",
            selector={**bytes_selector, "id.$": "$.QueryExecution.QueryExecutionId"},
        )
        window_rows = self._results("window result", f"{RUNS_PATH}.window.id", "$.window_rows")
        cell = "$.window_rows.rows[1].Data[{}].VarCharValue"
        read_window = sfn.Pass(
            self,
            "read window",
            parameters={f"{name}.$": cell.format(i) for i, name in enumerate((*WINDOW_VALUES, "caught_up"))},
            result_path=WINDOW_PATH,
        )
        nothing = sfn.Succeed(self, "no_window")
        # An explicit window reaches the statements only as Athena re-formats it (validate_window), so the text the
        # MERGE gets written into it is Athena's, never the execution input.
        given_window = self._athena(
            sql.validate_window_step(),
            result_path="$.validate_query",
            selector={"id.$": "$.QueryExecution.QueryExecutionId"},
        )
        given_rows = self._results("validated window", "$.validate_query.id", "$.window_rows")
        invalid = sfn.Fail(
            self,
            "invalid window input",
            error="InvalidWindow",
            cause=(
                "window_start and window_end must be arrival hours as text, 'YYYY-MM-DD-HH', from "
                "data_lake.first_year to the current hour (UTC), window_start <= window_end"
            ),
        )
        merge = self._athena(steps["merge_state"], result_path=f"{RUNS_PATH}.merge_state", selector=bytes_selector)
        by_days = self._insert_by_change_days(merge, bytes_selector)
        insert = self._athena(
            steps["insert_history"],
            result_path=f"{RUNS_PATH}.insert_history",
            selector=bytes_selector,
            too_many_partitions=by_days,
        )

        lag_step = sql.lag_step()
        lag = self._athena(lag_step, result_path="$.lag_query", selector={"id.$": "$.QueryExecution.QueryExecutionId"})
        lag_rows = self._results("lag result", "$.lag_query.id", "$.lag_rows")
        scanned = sfn.CustomState(
            self,
            "publish data scanned",
            state_json=self._put_metrics(
                [
                    {
                        "MetricName": DATA_SCANNED,
                        "Dimensions": [{"Name": STEP_DIMENSION, "Value": name}],
                        "Unit": "Bytes",
                        "Value.$": f"{RUNS_PATH}.{name}.bytes",
                    }
                    for name in self._metric_steps
                ]
            ),
        )
        publish_lag = sfn.CustomState(
            self,
            "publish lag",
            state_json=self._put_metrics(
                [
                    {
                        "MetricName": STATE_LAG,
                        "Unit": "Seconds",
                        "Value.$": "States.StringToJson($.lag_rows.rows[1].Data[0].VarCharValue)",
                    }
                ]
            ),
        )
        done = sfn.Succeed(self, "done")
        again = (
            sfn.Choice(self, "caught up?")
            .when(sfn.Condition.string_equals(f"{WINDOW_PATH}.caught_up", "false"), window)
            .otherwise(done)
        )
        has_lag = (
            sfn.Choice(self, "state has rows?")
            .when(sfn.Condition.is_present("$.lag_rows.rows[1].Data[0].VarCharValue"), publish_lag.next(again))
            .otherwise(again)
        )

        maintenance_steps = list(sql.maintenance_steps())
        expected = ["optimize_history", "optimize_state", "vacuum_history", "vacuum_state"]
        if [s.name for s in maintenance_steps] != expected:
            raise ValueError(f"LakehouseSql.maintenance_steps() must be {expected}")
        maintained = sfn.Succeed(self, "maintained")
        maintenance_chain: sfn.IChainable | None = None
        previous: Any = None
        for step in maintenance_steps:
            task = self._athena(step)
            if previous is None:
                maintenance_chain = task
            else:
                previous.next(task)
            previous = task
        previous.next(maintained)
        assert maintenance_chain is not None

        is_maintenance = sfn.Condition.is_present(f"$.input.{MAINTENANCE_INPUT_KEY}")
        route = (
            sfn.Choice(self, "which run?")
            .when(is_maintenance, maintenance_chain)
            .when(
                sfn.Condition.and_(*(sfn.Condition.is_present(f"$.input.{name}") for name in WINDOW_VALUES)),
                sfn.Choice(self, "valid window?")
                .when(
                    sfn.Condition.and_(
                        *(
                            condition
                            for name in WINDOW_VALUES
                            for condition in (
                                sfn.Condition.is_string(f"$.input.{name}"),
                                sfn.Condition.not_(sfn.Condition.string_matches(f"$.input.{name}", "*'*")),
                            )
                        )
                    ),
                    given_window,
                )
                .otherwise(invalid),
            )
            .otherwise(window)
        )
        window.next(window_rows)
        window_rows.next(
            sfn.Choice(self, "window found?")
            .when(
                sfn.Condition.and_(*(sfn.Condition.is_present(cell.format(i)) for i in range(3))),
                read_window,
            )
            .otherwise(nothing)
        )
        read_window.next(insert)
        given_window.next(given_rows).next(
            sfn.Choice(self, "window valid?")
            .when(
                sfn.Condition.and_(*(sfn.Condition.is_present(cell.format(i)) for i in range(3))),
                read_window,
            )
            .otherwise(invalid)
        )
        insert.next(merge).next(scanned).next(lag).next(lag_rows).next(has_lag)

        # A scheduled run ({}) ends when another run is going: the next one starts within minutes. A maintenance
        # run or an explicit window (ddb-lake rebuild) waits for its turn instead.
        waits = sfn.Condition.or_(
            is_maintenance,
            sfn.Condition.and_(*(sfn.Condition.is_present(f"$.input.{name}") for name in WINDOW_VALUES)),
        )
        alone = (
            sfn.Choice(self, "oldest run?")
            .when(sfn.Condition.string_equals_json_path("$.oldest.arn", "$.execution"), create_history)
            .when(waits, wait_other)
            .otherwise(others)
        )
        create_history.next(create_state).next(route)
        return start.next(guard).next(oldest).next(alone)

    def _insert_by_change_days(self, merge: sfn.IChainable, bytes_selector: dict[str, str]) -> sfn.IChainable:
        """The INSERT's fallback when it would write more partitions than Athena allows (a window holding changes
        of more than 100 change days: replays of months-old objects): ``change_days`` lists the window's change
        days in chunks of at most ``CHUNK_DAYS``, then one ``insert_history_days`` per chunk, one at a time, then
        the MERGE as usual. Every chunk is idempotent, so a failure part-way is repaired by the next run."""
        sql = self._sql
        change_days = self._athena(
            sql.change_days_step(),
            result_path=f"{RUNS_PATH}.insert_history",  # the run's INSERT metric shows this read
            selector={**bytes_selector, "id.$": "$.QueryExecution.QueryExecutionId"},
        )
        chunks = self._results(
            "change days result", f"{RUNS_PATH}.insert_history.id", "$.chunk_rows", max_results=MAX_RESULT_ROWS
        )
        each = sfn.Map(
            self,
            "insert by change days",
            items_path="$.chunk_rows.rows",
            item_selector={
                "index.$": "$$.Map.Item.Index",
                "row.$": "$$.Map.Item.Value",
                "window.$": WINDOW_PATH,
                "commit_retries.$": "$.commit_retries",
            },
            max_concurrency=1,  # one commit to history at a time
            result_path=sfn.JsonPath.DISCARD,
        )
        chunk_failed = sfn.Fail(
            self, "chunk statement failed", cause_path="$.failure.Cause", error_path="$.failure.Error"
        )
        insert_days = self._athena(sql.insert_history_days_step(), fail=chunk_failed)
        read_chunk = sfn.Pass(
            self,
            "read chunk",
            parameters={f"{name}.$": f"$.row.Data[{i}].VarCharValue" for i, name in enumerate(CHUNK_VALUES)},
            result_path=CHUNK_PATH,
        )
        each.item_processor(
            sfn.Choice(self, "header row?")
            .when(sfn.Condition.number_equals("$.index", 0), sfn.Succeed(self, "header row"))
            .otherwise(read_chunk.next(insert_days))
        )
        change_days.next(chunks).next(each).next(merge)
        return change_days

    def _put_metrics(self, data: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return {
            "Type": "Task",
            "Resource": f"arn:{Stack.of(self).partition}:states:::aws-sdk:cloudwatch:putMetricData",
            "Parameters": {"Namespace": self._names.lakehouse_metrics_namespace, "MetricData": list(data)},
            "ResultPath": sfn.JsonPath.DISCARD,
        }


class MaintenanceRole(Construct):
    """What the maintenance statements touch, and nothing else (docs/lakehouse.md, "Permissions")."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: TableNames,
        lake: LakeNames,
        bucket: s3.IBucket,
        results: s3.IBucket,
        data_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description=f"Runs the lakehouse maintenance statements of {names.key} in workgroup {lake.workgroup}",
        )

        def glue(resource: str) -> str:
            return stack.format_arn(service="glue", resource=resource, arn_format=ArnFormat.SLASH_RESOURCE_NAME)

        workgroup = stack.format_arn(
            service="athena",
            resource="workgroup",
            resource_name=lake.workgroup,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        catalog = stack.format_arn(
            service="athena",
            resource="datacatalog",
            resource_name="AwsDataCatalog",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        read_tables = [names.glue_table, names.raw_history_view, names.raw_current_view]
        lakehouse_tables = [names.iceberg_history_table, names.iceberg_state_table]
        statements = [
            iam.PolicyStatement(
                sid="RunQueriesInTheLakeWorkgroup",
                actions=[
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:StopQueryExecution",
                ],
                resources=[workgroup],
            ),
            iam.PolicyStatement(sid="ReadTheGlueCatalog", actions=["athena:GetDataCatalog"], resources=[catalog]),
            iam.PolicyStatement(
                sid="ReadThisTablesCatalogEntries",
                actions=["glue:GetDatabase", "glue:GetTable"],
                resources=[
                    glue("catalog"),
                    glue(f"database/{lake.database}"),
                    *(glue(f"table/{lake.database}/{t}") for t in read_tables + lakehouse_tables),
                ],
            ),
            iam.PolicyStatement(
                sid="CreateAndCommitThisTablesIcebergTables",
                actions=["glue:CreateTable", "glue:UpdateTable"],
                resources=[
                    glue("catalog"),
                    glue(f"database/{lake.database}"),
                    *(glue(f"table/{lake.database}/{t}") for t in lakehouse_tables),
                ],
            ),
            iam.PolicyStatement(
                sid="ListThisTablesPrefixes",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{names.root(naming.DATA)}*", f"{names.lakehouse_root}*"]}},
            ),
            iam.PolicyStatement(
                sid="LocateTheBuckets",
                actions=["s3:GetBucketLocation"],
                resources=[bucket.bucket_arn, results.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="ReadThisTablesRawLog",
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(f"{names.root(naming.DATA)}*")],
            ),
            iam.PolicyStatement(
                sid="ReadAndWriteThisTablesIcebergFiles",
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[bucket.arn_for_objects(f"{names.lakehouse_root}*")],
            ),
            iam.PolicyStatement(
                sid="WriteAndReadQueryResults",
                actions=["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[results.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="WriteAndReadQueryResultObjects",
                actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                resources=[results.arn_for_objects("*")],
            ),
            iam.PolicyStatement(
                sid="UseTheLakeKeyThroughS3",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[data_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="SeeWhetherAnotherRunIsGoing",
                actions=["states:ListExecutions"],
                resources=[
                    stack.format_arn(
                        service="states",
                        resource="stateMachine",
                        resource_name=names.maintenance_state_machine,
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            ),
            iam.PolicyStatement(
                sid="PublishRunMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": names.lakehouse_metrics_namespace}},
            ),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)
        results_objects = f"Resource::<{Stack.of(results).get_logical_id(results.node.default_child)}.Arn>/*"
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[{results_objects}]",
            "The maintenance role writes query results into the Athena results bucket: the enforced workgroup puts "
            "every result at the bucket's root under a generated query ID, so no narrower object prefix exists.",
        )
        for prefix in (names.root(naming.DATA), names.lakehouse_root):
            acknowledge(
                self.role,
                f"AwsSolutions-IAM5[Resource::<{Stack.of(bucket).get_logical_id(bucket.node.default_child)}.Arn>/{prefix}*]",
                f"The maintenance role reads (and for {naming.LAKEHOUSE}/ writes) the objects under this table's own "
                f"prefix {prefix}: object names are Firehose's and Iceberg's, generated per hour and per commit.",
            )


class MaintenanceMonitoring(Construct):
    """An alarm on failed executions (to account B's alarm topic) and a dashboard of runs, bytes and lag."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: TableNames,
        state_machine: sfn.StateMachine,
        topic: sns.ITopic,
        steps: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        period = Duration.minutes(5)
        failed = state_machine.metric_failed(statistic="Sum", period=period)
        timed_out = state_machine.metric_timed_out(statistic="Sum", period=period)
        self.failed = cloudwatch.Alarm(
            self,
            "Failed",
            alarm_name=f"{names.lakehouse_alarm_prefix}Failed",
            alarm_description=(
                f"A lakehouse maintenance run of {names.key} failed or timed out: its history and state stop "
                f"advancing. See the execution in Step Functions ({names.maintenance_state_machine})."
            ),
            metric=cloudwatch.MathExpression(
                expression="failed + timedout",
                using_metrics={"failed": failed, "timedout": timed_out},
                period=period,
                label="failed or timed-out executions",
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.failed.add_alarm_action(cw_actions.SnsAction(topic))
        self.failed.add_ok_action(cw_actions.SnsAction(topic))

        namespace = names.lakehouse_metrics_namespace
        scanned = [
            cloudwatch.Metric(
                namespace=namespace,
                metric_name=DATA_SCANNED,
                dimensions_map={STEP_DIMENSION: step},
                statistic="Sum",
                period=Duration.hours(1),
                label=step,
            )
            for step in steps
        ]
        lag = cloudwatch.Metric(
            namespace=namespace, metric_name=STATE_LAG, statistic="Maximum", period=period, label="state lag (s)"
        )
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=names.lakehouse_dashboard)
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Executions",
                left=[
                    state_machine.metric_succeeded(statistic="Sum", period=period, label="succeeded"),
                    failed.with_(label="failed"),
                    timed_out.with_(label="timed out"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(title="Data scanned per hour (bytes)", left=scanned, stacked=True, width=8),
            cloudwatch.GraphWidget(title="State lag: now - newest change applied (s)", left=[lag], width=8),
        )
