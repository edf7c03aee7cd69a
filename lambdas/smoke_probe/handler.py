"""The smoke test's probe in account B: the pipeline's smoke step (tooling account) may invoke it, and nothing else
of B's lake; it answers two questions without handing out any other item's data.

- ``{"action": "find", "table": t, "value": v, "since": iso, "until": iso}``: the JSON lines under ``data/<t>/``
  (hour partitions of objects written in [since, until]) whose partition-key column equals ``v``. ``v`` must start
  with the smoke key prefix: only the smoke test's own items can be asked for. Returns the matching lines (as text)
  and the keys of the objects holding them.
- ``{"action": "views", "table": t, "run": id}``: runs ``SELECT * FROM <view> LIMIT 0`` for each of the table's views
  through the lake workgroup (Athena compiles the view, which proves its stored definition, without returning rows),
  and each of the table's named queries as ``SELECT * FROM (<query>) LIMIT 0`` with its parameters set; returns each
  one's outcome (``{"checks": {"view <v>" | "named query '<n>'": ...}}``): "" when it ran, else Athena's state and
  reason. With the lakehouse on, the views read Iceberg tables that the table's maintenance state machine creates on
  its first run (``CREATE TABLE IF NOT EXISTS``), up to a schedule interval after the first deployment: while one is
  missing from the catalog, the probe starts that state machine once per smoke run (execution ``smoke-<id>``; a
  second start with the same name and input while it runs is the same execution) and answers ``{"pending": why}``
  instead, and the smoke test asks again.

Configuration (environment, set by consumer/smoke.py): BUCKET, DATABASE, WORKGROUP, SMOKE_PREFIX and TABLES, a JSON
object ``{table: {"root": "data/<table>/", "column": <partition-key column>, "views": [...], "queries": [...],
"lakehouse": null | {"root": "lakehouse/<table>/", "tables": [<Iceberg table>, ...], "state_machine": <ARN>}}}``.
Standard library and boto3 only.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

GZIP_MAGIC = b"\x1f\x8b"
# Bounds the work one call may do: the smoke window is minutes, never more than a day of hours.
MAX_HOURS = 24
POLL_SECONDS = 1.0
QUERY_MARGIN_MS = 5_000
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")

sleep = time.sleep  # replaced in tests


def clients() -> dict[str, Any]:
    region = os.environ.get("AWS_REGION")
    return {name: boto3.client(name, region_name=region) for name in ("s3", "athena", "glue", "stepfunctions")}


def settings() -> dict[str, Any]:
    return {
        "bucket": os.environ["BUCKET"],
        "database": os.environ["DATABASE"],
        "workgroup": os.environ["WORKGROUP"],
        "prefix": os.environ["SMOKE_PREFIX"],
        "tables": json.loads(os.environ["TABLES"]),
    }


class Refused(ValueError):
    """A request the probe does not answer (unknown table, not a smoke key, window too long)."""


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    aws = clients()
    try:
        return handle(
            event, context, settings(), s3=aws["s3"], athena=aws["athena"], glue=aws["glue"], sfn=aws["stepfunctions"]
        )
    except Refused as error:
        return {"error": str(error)}


def handle(
    event: dict[str, Any],
    context: Any,
    config: dict[str, Any],
    *,
    s3: Any,
    athena: Any,
    glue: Any = None,
    sfn: Any = None,
) -> dict[str, Any]:
    table = config["tables"].get(event.get("table"))
    if table is None:
        raise Refused(f"unknown table {event.get('table')!r}")
    if event.get("action") == "find":
        return find(s3, config, table, event)
    if event.get("action") == "views":
        lakehouse = table.get("lakehouse")
        if lakehouse:
            missing = [name for name in lakehouse["tables"] if not table_exists(glue, config["database"], name)]
            if missing:
                return {"pending": create_lakehouse_tables(sfn, lakehouse["state_machine"], missing, event.get("run"))}
        checks = {f"view {view}": run_view(athena, config, view, context) for view in table["views"]}
        for name, sql in named_queries(athena, config, table.get("queries", [])).items():
            checks[f"named query {name!r}"] = run_named_query(athena, config, sql, context)
        return {"checks": checks}
    raise Refused(f"unknown action {event.get('action')!r}: 'find' or 'views'")


def table_exists(glue: Any, database: str, name: str) -> bool:
    try:
        glue.get_table(DatabaseName=database, Name=name)
    except glue.exceptions.EntityNotFoundException:
        return False
    return True


def create_lakehouse_tables(sfn: Any, state_machine: str, missing: list[str], run: Any) -> str:
    """Start the table's maintenance once for this smoke run (its first step creates the Iceberg tables); say so."""
    # One name per smoke run: a Standard workflow "automatically returns an idempotent response on starting an
    # execution with the same name as a currently-running workflow"
    # (https://docs.aws.amazon.com/step-functions/latest/dg/express-at-least-once-execution.html).
    name = "smoke-" + re.sub(r"[^A-Za-z0-9_-]", "-", str(run or "run"))[:60]
    waiting = f"the lakehouse tables {', '.join(missing)} do not exist yet (the scheduled maintenance creates them"
    try:
        execution = sfn.start_execution(stateMachineArn=state_machine, name=name, input="{}")["executionArn"]
    except sfn.exceptions.ExecutionAlreadyExists:
        # This run's execution has ended, and the tables are still missing: its history says why.
        return f"{waiting}); the execution {name} of {state_machine} ended without creating them: see its history"
    return f"{waiting} on its first run): started {execution} to create them"


def _moment(text: Any) -> datetime:
    moment = datetime.fromisoformat(str(text))
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def find(s3: Any, config: dict[str, Any], table: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    value = event.get("value")
    if not isinstance(value, str) or not value.startswith(config["prefix"]) or len(value) <= len(config["prefix"]):
        raise Refused(f"only smoke items (partition key starting with {config['prefix']!r}) can be looked for")
    since, until = _moment(event["since"]), _moment(event["until"])
    hour = since.replace(minute=0, second=0, microsecond=0)
    if until < since or until - hour > timedelta(hours=MAX_HOURS):
        raise Refused(f"the window must be at most {MAX_HOURS} hours")
    lines, objects = [], []
    while hour <= until:
        prefix = f"{table['root']}year={hour:%Y}/month={hour:%m}/day={hour:%d}/hour={hour:%H}/"
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=config["bucket"], Prefix=prefix):
            for item in page.get("Contents", []):
                if item["Key"].endswith("/") or item["LastModified"] < since:
                    continue
                found = _matching(s3, config["bucket"], item["Key"], table["column"], value)
                if found:
                    lines += found
                    objects.append(item["Key"])
        hour += timedelta(hours=1)
    return {"lines": lines, "objects": objects}


def _matching(s3: Any, bucket: str, key: str, column: str, value: str) -> list[str]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    text = (gzip.decompress(body) if body[:2] == GZIP_MAGIC else body).decode("utf-8", errors="replace")
    found = []
    for line in text.splitlines():
        # Cheap test first: most lines cannot hold the value at all.
        if value not in line:
            continue
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict) and parsed.get(column) == value:
            found.append(line)
    return found


def named_queries(athena: Any, config: dict[str, Any], names: list[str]) -> dict[str, str]:
    """The SQL of the workgroup's named queries called ``names`` (a missing one maps to "")."""
    found: dict[str, str] = dict.fromkeys(names, "")
    if not names:
        return found
    ids: list[str] = []
    for page in athena.get_paginator("list_named_queries").paginate(WorkGroup=config["workgroup"]):
        ids += page.get("NamedQueryIds", [])
    for start in range(0, len(ids), 50):  # BatchGetNamedQuery takes up to 50 ids
        for query in athena.batch_get_named_query(NamedQueryIds=ids[start : start + 50]).get("NamedQueries", []):
            if query.get("Name") in found:
                found[query["Name"]] = query.get("QueryString", "")
    return found


def parameter_count(sql: str) -> int:
    """The ``?`` placeholders of ``sql`` outside comments and string literals."""
    count, index, quote = 0, 0, ""
    while index < len(sql):
        char = sql[index]
        if quote:
            if char == quote:
                quote = ""
        elif sql.startswith("--", index):
            newline = sql.find("\n", index)
            index = len(sql) if newline < 0 else newline
            continue
        elif char in "'\"":
            quote = char
        elif char == "?":
            count += 1
        index += 1
    return count


def run_named_query(athena: Any, config: dict[str, Any], sql: str, context: Any) -> str:
    """Empty when the named query, wrapped in ``SELECT * FROM (...) LIMIT 0``, runs with every parameter set to the
    current hour as text (a value every parameter of this project's queries accepts: hour bounds and key texts)."""
    if not sql:
        return "not found in the workgroup"
    hour = f"'{datetime.now(UTC):%Y-%m-%dT%H}'"
    parameters = [hour] * parameter_count(sql)
    return _run(athena, config, f"SELECT * FROM (\n{sql}\n) LIMIT 0", parameters, context)


def run_view(athena: Any, config: dict[str, Any], view: str, context: Any) -> str:
    """Empty when ``SELECT * FROM view LIMIT 0`` succeeds in the workgroup, else Athena's state and reason."""
    return _run(athena, config, f'SELECT * FROM "{config["database"]}"."{view}" LIMIT 0', [], context)


def _run(athena: Any, config: dict[str, Any], query: str, parameters: list[str], context: Any) -> str:
    request: dict[str, Any] = {
        "QueryString": query,
        "WorkGroup": config["workgroup"],
        "QueryExecutionContext": {"Database": config["database"]},
    }
    if parameters:
        request["ExecutionParameters"] = parameters
    try:
        started = athena.start_query_execution(**request)
    except Exception as error:  # Athena refused to start it (a botocore ClientError): this view's outcome
        return f"not started: {error}"
    query_id = started["QueryExecutionId"]
    while True:
        status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
        state = status["State"]
        if state == "SUCCEEDED":
            return ""
        if state in TERMINAL:
            return f"{state}: {status.get('StateChangeReason', 'no reason given')} (query {query_id})"
        if context is not None and context.get_remaining_time_in_millis() < QUERY_MARGIN_MS:
            athena.stop_query_execution(QueryExecutionId=query_id)
            return f"still {state} when the probe had to answer (query {query_id}, stopped)"
        sleep(POLL_SECONDS)
