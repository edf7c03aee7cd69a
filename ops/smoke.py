"""``ddb-lake smoke``: one item written, updated and deleted in account A must arrive in account B's lake as
three flattened changes with the right content, within the time the configured buffering allows.

It touches only the item it creates: a partition key starting with ``naming.SMOKE_KEY_PREFIX`` plus a run id,
created with ``attribute_not_exists``, updated and deleted only while it still carries this run's marker. In
the pipeline its roles can touch nothing else either (see ``producer/capture/smoke.py``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from lambdas.transform.flatten import top_level_column
from ops import aws, lake
from ops.common import Clock, ExitCode, OpsError, err
from shared import naming
from shared.config import AppConfig, TableSpec
from shared.naming import LakeNames, TableNames
from shared.smoke_targets import smoke_problem, smoke_tables, smoke_timeout_seconds, smoke_views_seconds

POLL_SECONDS = 15.0
# S3's LastModified comes from S3's clock, the start time from ours: accept objects a little older.
CLOCK_SKEW = timedelta(seconds=60)
MARKER = "ddbLakeSmokeRun"  # attribute holding the run id: updates and deletes require it
EVENTS = ("INSERT", "MODIFY", "REMOVE")
SORT_KEY_VALUES = {"S": {"S": "ddb-lake-smoke"}, "N": {"N": "0"}, "B": {"B": b"ddb-lake-smoke"}}


@dataclass
class TableRun:
    """One table's smoke test: what was written, what has been found, and when to give up."""

    spec: TableSpec
    names: TableNames
    run_id: str
    key: dict[str, Any]  # the item key, typed for the low-level DynamoDB client
    deadline: datetime
    timeout: int
    # How long the view check may wait for the lakehouse's first run once the changes are found (first deployment).
    views_deadline: datetime
    seen: set[str] = field(default_factory=set)  # object keys already read
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)  # _event_id -> line
    objects: set[str] = field(default_factory=set)  # object keys holding our changes
    result: str | None = None  # None while waiting; "" when passed; else the reason it failed
    pending: str | None = None  # why the views cannot be checked yet (the probe's answer), while it lasts

    @property
    def label(self) -> str:
        return self.names.key

    def expected_columns(self) -> dict[str, Any]:
        """Key columns as the transform writes them: attribute name escaped, value in its JSON form."""
        return {top_level_column(name): _json_value(value) for name, value in self.key.items()}


def _json_value(value: dict[str, Any]) -> Any:
    ((tag, inner),) = value.items()
    if tag == "N":
        return Decimal(inner)
    if tag == "B":
        return base64.b64encode(inner).decode()
    return inner


def plan(cfg: AppConfig, table: str | None, started: datetime) -> list[TableRun]:
    if table:
        try:
            specs = [cfg.table(table)]
        except KeyError as error:
            raise OpsError(str(error.args[0]), ExitCode.USAGE) from None
        problem = smoke_problem(cfg, specs[0])
        if problem:
            raise OpsError(f"table {table!r} cannot be smoke-tested: {problem}", ExitCode.USAGE)
    else:
        specs = smoke_tables(cfg)
        if not specs:
            reasons = "; ".join(f"{s.name}: {smoke_problem(cfg, s)}" for s in cfg.tables)
            raise OpsError(f"no configured table can be smoke-tested ({reasons})", ExitCode.USAGE)
    runs = []
    for spec in specs:
        run_id = uuid.uuid4().hex
        key = {spec.partition_key: {"S": f"{naming.SMOKE_KEY_PREFIX}{run_id}"}}
        if spec.sort_key:
            key[spec.sort_key] = SORT_KEY_VALUES[spec.sort_key_type]
        timeout = smoke_timeout_seconds(cfg, spec)
        deadline = started + timedelta(seconds=timeout)
        views_deadline = deadline + timedelta(seconds=smoke_views_seconds(cfg))
        runs.append(TableRun(spec, naming.table(cfg, spec), run_id, key, deadline, timeout, views_deadline))
    return runs


def write_changes(dynamodb: Any, run: TableRun) -> None:
    """INSERT, MODIFY, REMOVE of our own item; each write is conditional so no other item is ever touched."""
    table, key = run.names.table, run.key
    pk = run.spec.partition_key
    ours = {"ConditionExpression": "#m = :run", "ExpressionAttributeNames": {"#m": MARKER}}
    created = False
    try:
        dynamodb.put_item(
            TableName=table,
            Item={**key, MARKER: {"S": run.run_id}, "step": {"S": "insert"}, "counter": {"N": "1"}},
            ConditionExpression="attribute_not_exists(#pk)",
            ExpressionAttributeNames={"#pk": pk},
        )
        created = True
        dynamodb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET #s = :s, #c = :c",
            ConditionExpression=ours["ConditionExpression"],
            ExpressionAttributeNames={**ours["ExpressionAttributeNames"], "#s": "step", "#c": "counter"},
            ExpressionAttributeValues={":run": {"S": run.run_id}, ":s": {"S": "update"}, ":c": {"N": "2"}},
        )
        dynamodb.delete_item(TableName=table, Key=key, **ours, ExpressionAttributeValues={":run": {"S": run.run_id}})
        created = False
        left = dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        if left:
            raise OpsError(f"{run.label}: the smoke item {key} is still in {table} after DeleteItem")
    except (ClientError, BotoCoreError) as error:
        if created:  # leave nothing behind, but only our own item
            with contextlib.suppress(ClientError, BotoCoreError):
                dynamodb.delete_item(
                    TableName=table, Key=key, **ours, ExpressionAttributeValues={":run": {"S": run.run_id}}
                )
        reason = f"{run.label}: writing the smoke item to {table} failed: {aws.describe(error)}"
        raise OpsError(reason, ExitCode.AWS) from None


def _parse_lines(content: bytes) -> list[dict[str, Any]]:
    lines = []
    for raw in content.splitlines():
        if raw.strip():
            try:
                lines.append(json.loads(raw, parse_float=Decimal, parse_int=Decimal))
            except ValueError:
                continue  # not ours to judge: the test only looks for its own lines
    return lines


def is_probe(reader: Any) -> bool:
    """True for a Lambda client (the smoke probe in B, consumer/smoke.py), False for an S3 client."""
    return hasattr(reader, "invoke")


def _probe(reader: Any, lake_names: LakeNames, event: dict[str, Any]) -> dict[str, Any]:
    """Invoke the smoke probe in B (named like the reader role that alone may invoke it) and return its answer."""
    answer = reader.invoke(FunctionName=lake_names.smoke_reader_role, Payload=json.dumps(event).encode())
    body = json.loads(answer["Payload"].read() or b"null")
    if answer.get("FunctionError") or not isinstance(body, dict):
        raise OpsError(f"the smoke probe {lake_names.smoke_reader_role} failed: {body}", ExitCode.AWS)
    if "error" in body:
        raise OpsError(f"the smoke probe {lake_names.smoke_reader_role} refused: {body['error']}", ExitCode.AWS)
    return body


def collect_via_probe(reader: Any, lake_names: LakeNames, run: TableRun, since: datetime, now: datetime) -> None:
    """As ``collect``, but B's probe reads the lake and hands back only the lines of our own (smoke) key."""
    wanted = run.expected_columns()
    smoke_key = run.key[run.spec.partition_key]["S"]
    event = {"action": "find", "table": run.names.key, "value": smoke_key, "since": since.isoformat()}
    body = _probe(reader, lake_names, {**event, "until": now.isoformat()})
    objects = [str(key) for key in body.get("objects", [])]
    for line in _parse_lines("\n".join(body.get("lines", [])).encode()):
        if all(line.get(column) == value for column, value in wanted.items()):
            run.changes[str(line.get("_event_id"))] = line
    run.objects.update(objects)


def check_views(reader: Any, lake_names: LakeNames, run: TableRun) -> tuple[str | None, str | None]:
    """``(failure, pending)``: the views and named queries of the table that do not run through the workgroup, with
    Athena's messages (None if all run); or, while the probe cannot check them yet (the lakehouse's Iceberg tables do
    not exist before its first run), why. The probe runs ``SELECT * FROM <view> LIMIT 0`` for each view the consumer
    stack defines and each named query wrapped the same way (parameters set)."""
    body = _probe(reader, lake_names, {"action": "views", "table": run.names.key, "run": run.run_id})
    if body.get("pending"):
        return None, str(body["pending"])
    checks = body.get("checks", {})
    if not checks:
        return "the smoke probe knows no view of this table", None
    failed = {what: reason for what, reason in checks.items() if reason}
    if failed:
        return "; ".join(f"{what} does not run: {reason}" for what, reason in sorted(failed.items())), None
    return None, None


def collect(s3: Any, lake_names: LakeNames, run: TableRun, since: datetime, now: datetime) -> None:
    """Read the objects delivered since ``since`` under the table's data prefix; keep our key's lines."""
    if is_probe(s3):
        collect_via_probe(s3, lake_names, run, since, now)
        return
    wanted = run.expected_columns()
    root = run.names.root(naming.DATA)
    for hour in lake.hours(since, now):
        for item in lake.list_objects(s3, lake_names.bucket, root + lake.partition_path(hour)):
            key = item["Key"]
            if key in run.seen or item["LastModified"] < since:
                continue
            run.seen.add(key)
            for line in _parse_lines(lake.read_object(s3, lake_names.bucket, key)):
                if all(line.get(column) == value for column, value in wanted.items()):
                    run.changes[str(line.get("_event_id"))] = line
                    run.objects.add(key)


def verify(run: TableRun) -> str | None:
    """ "" when the three changes are all there and right; a reason as soon as one found is wrong; None while
    some are still missing."""
    by_event: dict[str, dict[str, Any]] = {}
    for line in run.changes.values():
        by_event.setdefault(str(line.get("_event_name")), line)
    unexpected = set(by_event) - set(EVENTS)
    if unexpected:
        return f"unexpected change kinds {sorted(unexpected)} for the smoke item"
    common = {"_table_name": run.names.table, "_origin": "stream"}
    expect = {
        "INSERT": {MARKER: run.run_id, "step": "insert", "counter": Decimal(1), "_is_deleted": False},
        "MODIFY": {MARKER: run.run_id, "step": "update", "counter": Decimal(2), "_is_deleted": False},
        "REMOVE": {"_is_deleted": True},
    }
    for event, line in by_event.items():
        columns = {**common, **expect[event]}
        if event == "REMOVE" and MARKER in line:  # the old image, when the stream carries one
            columns.update({MARKER: run.run_id, "step": "update", "counter": Decimal(2)})
        for column, value in columns.items():
            if line.get(column) != value:
                return f"{event} has {column} = {_show(line.get(column))}, expected {_show(value)}"
    if len(by_event) < len(EVENTS):
        return None
    times = [str(by_event[e].get("_approximate_creation_time")) for e in EVENTS]
    if times != sorted(times):
        return f"changes out of order by _approximate_creation_time: {dict(zip(EVENTS, times, strict=True))}"
    return ""


def _show(value: Any) -> str:
    return json.dumps(str(value) if isinstance(value, Decimal) else value)


def _missing_reason(lake_names: LakeNames, run: TableRun) -> str:
    found = sorted({str(line.get("_event_name")) for line in run.changes.values()})
    minutes = f"{run.timeout / 60:g} min"
    hint = (
        f"check the Firehose stream {run.names.delivery_stream}'s DeliveryToS3.DataFreshness metric and "
        f"s3://{lake_names.bucket}/{run.names.root(naming.ERRORS)}"
    )
    if not found:
        return f"nothing delivered after {minutes}: {hint}"
    missing = [e for e in EVENTS if e not in found]
    return f"only {', '.join(found)} delivered after {minutes} (missing {', '.join(missing)}): {hint}"


def run_smoke(
    cfg: AppConfig,
    writers: dict[str, Any],
    s3: Any,
    clock: Clock,
    table: str | None = None,
) -> list[TableRun]:
    """``writers``: table name -> DynamoDB client allowed to write it; ``s3``: a client that can read the lake, or a
    Lambda client that may invoke B's smoke probe (the pipeline's reader role: then the probe reads the lake and
    compiles every view). Returns every table's run with ``result`` set."""
    lake_names = naming.lake(cfg)
    started = clock.now()
    runs = plan(cfg, table, started)
    since = started - CLOCK_SKEW
    for run in runs:
        write_changes(writers[run.spec.name], run)
        pk = run.key[run.spec.partition_key]["S"]
        err.print(
            f"{run.label}: wrote INSERT, MODIFY, REMOVE of {run.spec.partition_key}={pk}; "
            f"waiting up to {run.timeout / 60:g} min for s3://{lake_names.bucket}/{run.names.root(naming.DATA)}"
        )
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[found]}"), TimeElapsedColumn())
    with Progress(*columns, console=err, get_time=clock.monotonic, transient=True) as progress:
        tasks = {run.label: progress.add_task(run.label, total=run.timeout, found="0/3 changes") for run in runs}
        while True:
            now = clock.now()
            for run in runs:
                if run.result is not None:
                    continue
                try:
                    collect(s3, lake_names, run, since, now)
                except (ClientError, BotoCoreError) as error:
                    reason = f"{run.label}: reading the lake failed: {aws.describe(error)}"
                    raise OpsError(reason, ExitCode.AWS) from None
                outcome = verify(run)
                kinds = {str(line.get("_event_name")) for line in run.changes.values()} & set(EVENTS)
                progress.update(
                    tasks[run.label],
                    completed=min((now - started).total_seconds(), run.timeout),
                    found=f"{len(kinds)}/3 changes",
                )
                waiting_for_views = False
                if outcome == "" and is_probe(s3):
                    # Delivered and right: every view of the table must now run through the workgroup too.
                    try:
                        failure, pending = check_views(s3, lake_names, run)
                    except (ClientError, BotoCoreError) as error:
                        raise OpsError(
                            f"{run.label}: the view check failed: {aws.describe(error)}", ExitCode.AWS
                        ) from None
                    if pending is None:
                        outcome = failure or ""
                    elif now < run.views_deadline:
                        if pending != run.pending:
                            err.print(f"{run.label}: {pending}; checking the views again until they can run")
                        run.pending, outcome, waiting_for_views = pending, None, True
                    else:
                        waited = f"{(run.views_deadline - started).total_seconds() / 60:g} min"
                        outcome = f"the views could not be checked after {waited}: {pending}"
                if outcome is not None:
                    run.result = outcome
                elif not waiting_for_views and now >= run.deadline:
                    run.result = _missing_reason(lake_names, run)
            if all(run.result is not None for run in runs):
                return runs
            clock.sleep(POLL_SECONDS)
