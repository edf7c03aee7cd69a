"""ddb-lake smoke: success when the three changes arrive and are right; a precise reason (and exit 1) when they
do not arrive in time or arrive wrong. Simulated time: the fake clock moves only while the command waits."""

from __future__ import annotations

import gzip
import io
import json
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from lambdas.smoke_probe import handler as probe
from lambdas.transform.flatten import top_level_column
from ops import aws, cli, lake
from ops.cli import app
from shared import naming
from shared.config import from_dict
from shared.smoke_targets import smoke_timeout_seconds, smoke_views_seconds
from tests import configs

from .conftest import write_cdk_json
from .lake_fakes import FakeDelivery, create_bucket, create_table

NAMED = "orders: changes per hour"


class FakeAthena:
    """Athena for the probe: every query succeeds unless its view is in ``failures`` (view -> Athena's reason)."""

    def __init__(self) -> None:
        self.failures: dict[str, str] = {}
        self.queries: list[tuple[str, str]] = []
        self.parameters: list[list[str]] = []
        # The workgroup's named queries: one with a parameter, a '?' in a comment and one in a string literal.
        self.named = {NAMED: "-- Parameters: hour?\nSELECT * FROM t WHERE h >= ? AND note <> 'why?'"}

    def start_query_execution(self, QueryString: str, WorkGroup: str, QueryExecutionContext: dict[str, str], **more):
        self.queries.append((QueryString, WorkGroup))
        self.parameters.append(more.get("ExecutionParameters", []))
        return {"QueryExecutionId": str(len(self.queries))}

    def get_query_execution(self, QueryExecutionId: str):
        query = self.queries[int(QueryExecutionId) - 1][0]
        view = query.split('"."')[1].split('"')[0] if '"."' in query else ""
        if view in self.failures:
            return {"QueryExecution": {"Status": {"State": "FAILED", "StateChangeReason": self.failures[view]}}}
        return {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}}

    def get_paginator(self, name: str):
        assert name == "list_named_queries"
        ids = [str(i) for i in range(len(self.named))]
        return type("Pages", (), {"paginate": staticmethod(lambda WorkGroup: [{"NamedQueryIds": ids}])})()

    def batch_get_named_query(self, NamedQueryIds: list[str]):
        items = list(self.named.items())
        return {"NamedQueries": [{"Name": items[int(i)][0], "QueryString": items[int(i)][1]} for i in NamedQueryIds]}


class NotFound(Exception):
    pass


class AlreadyExists(Exception):
    pass


class FakeGlue:
    """The catalog for the probe: which Iceberg tables exist (all of them unless a test says otherwise)."""

    exceptions = type("Exceptions", (), {"EntityNotFoundException": NotFound})

    def __init__(self) -> None:
        self.missing: set[str] = set()

    def get_table(self, DatabaseName: str, Name: str) -> dict[str, Any]:
        if Name in self.missing:
            raise NotFound(Name)
        return {"Table": {"Name": Name, "DatabaseName": DatabaseName}}


class FakeStepFunctions:
    """StartExecution as Step Functions answers it for a Standard workflow: the same name while that execution runs
    is the same execution; after it has ended, ExecutionAlreadyExists. ``run`` decides what an execution does
    (by default: nothing, and it keeps running)."""

    exceptions = type("Exceptions", (), {"ExecutionAlreadyExists": AlreadyExists})

    def __init__(self) -> None:
        self.starts: list[tuple[str, str, str]] = []
        self.ended: set[str] = set()

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, str]:
        self.starts.append((stateMachineArn, name, input))
        if name in self.ended:
            raise AlreadyExists(name)
        return {"executionArn": stateMachineArn.replace(":stateMachine:", ":execution:") + f":{name}"}


def probe_config(cfg) -> dict[str, Any]:
    """What consumer/smoke.py gives the deployed probe (tests/infrastructure/test_smoke_roles.py checks it)."""
    lake_names = naming.lake(cfg)
    return {
        "bucket": lake_names.bucket,
        "database": lake_names.database,
        "workgroup": lake_names.workgroup,
        "prefix": naming.SMOKE_KEY_PREFIX,
        "tables": {
            names.key: {
                "root": names.root(naming.DATA),
                "column": top_level_column(spec.partition_key),
                "views": [names.history_view, names.current_view],
                "queries": [NAMED] if names.key == "orders" else [],
                "lakehouse": {
                    "root": names.lakehouse_root,
                    "tables": [names.iceberg_history_table, names.iceberg_state_table],
                    "state_machine": lake_names.state_machine_arn(names.maintenance_state_machine),
                }
                if cfg.lakehouse.enabled
                else None,
            }
            for spec, names in naming.tables(cfg)
        },
    }


def consumer_s3(cfg) -> Any:
    """An S3 client in B's moto backend, made without ops.aws (whose assume a test may be recording)."""
    sts = boto3.client("sts", region_name=cfg.consumer.region)
    role = f"arn:aws:iam::{cfg.consumer.account}:role/smoke-probe"
    credentials = sts.assume_role(RoleArn=role, RoleSessionName="probe")["Credentials"]
    return boto3.client(
        "s3",
        region_name=cfg.consumer.region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


class FakeProbe:
    """The Lambda client the pipeline's reader role gets: invoking the probe runs the real probe handler in B
    (moto's S3 of the consumer account, a fake Athena)."""

    def __init__(self) -> None:
        self.cfg = None
        self.s3: Any = None
        self.athena = FakeAthena()
        self.glue = FakeGlue()
        self.sfn = FakeStepFunctions()
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, FunctionName: str, Payload: bytes):
        event = json.loads(Payload)
        self.calls.append((FunctionName, event))
        if self.s3 is None:  # one client per test: the probe is polled every 15 simulated seconds
            self.s3 = consumer_s3(self.cfg)
        try:
            body = probe.handle(
                event, None, probe_config(self.cfg), s3=self.s3, athena=self.athena, glue=self.glue, sfn=self.sfn
            )
        except probe.Refused as error:
            body = {"error": str(error)}
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(body).encode())}


@pytest.fixture(autouse=True)
def fake_probe(monkeypatch) -> FakeProbe:
    fake = FakeProbe()
    original_client, original_load = aws.client, cli.load_config

    def client(session: Any, service: str, region: str | None = None) -> Any:
        return fake if service == "lambda" else original_client(session, service, region)

    def load_config(path: Any) -> Any:
        fake.cfg = original_load(path)
        return fake.cfg

    monkeypatch.setattr(aws, "client", client)
    monkeypatch.setattr(cli, "load_config", load_config)
    return fake


def setup(tmp_path, variant: str = "default", table: str = "orders") -> tuple[Any, Any, Any, Any]:
    raw = configs.variant(variant)
    cdk_json = write_cdk_json(tmp_path / "cdk.json", raw)
    cfg = from_dict(raw)
    spec = cfg.table(table) if variant != "realistic" else cfg.tables[0]
    dynamodb = create_table(cfg, spec)
    create_bucket(cfg)
    return cdk_json, cfg, spec, dynamodb


def invoke(runner, cdk_json, *args: str) -> Any:
    # As the pipeline runs it: the deployed smoke roles, assumed with the step's own credentials.
    return runner.invoke(app, ["smoke", "--cdk-json", str(cdk_json), "--use-smoke-roles", *args])


@pytest.mark.parametrize("variant", ["default", "realistic", "uncompressed", "no-sort-key"])
def test_three_changes_delivered_and_right_exit_0(runner, tmp_path, clock, variant):
    cdk_json, cfg, spec, dynamodb = setup(tmp_path, variant)
    names = naming.table(cfg, spec)
    # Someone else's item in the table: the smoke test must not touch it.
    other = {spec.partition_key: {"S": "CUSTOMER#1"}, "status": {"S": "kept"}}
    if spec.sort_key:
        other[spec.sort_key] = {"S": "ORDER#1"}
    dynamodb.put_item(TableName=names.table, Item=other)
    delivery = FakeDelivery(cfg, spec, after=200)
    clock.on_sleep = delivery
    result = invoke(runner, cdk_json)
    assert result.exit_code == 0, result.output
    assert f"{spec.name}: ✓ INSERT, MODIFY, REMOVE delivered and correct ({delivery.keys[0]})" in result.output
    assert "smoke: 1 table(s) passed" in result.output
    assert 200 <= clock.slept < 200 + 15 + 1  # found on the first poll after delivery
    items = dynamodb.scan(TableName=names.table)["Items"]
    assert items == [other]  # the smoke item is gone; the other item is untouched


def test_nothing_delivered_times_out_with_the_place_to_look_exit_1(runner, tmp_path, clock):
    cdk_json, cfg, spec, _ = setup(tmp_path)
    result = invoke(runner, cdk_json)
    assert result.exit_code == 1
    bucket = naming.lake(cfg).bucket
    assert (
        "orders: ✗ nothing delivered after 8 min: check the Firehose stream ddblake-orders-to-datalake's "
        f"DeliveryToS3.DataFreshness metric and s3://{bucket}/errors/orders/"
    ) in result.output
    assert smoke_timeout_seconds(cfg, spec) == 480  # 2 x (60 s processor + 120 s S3 buffer) + 120 s
    assert 480 <= clock.slept < 480 + 15


def test_timeout_follows_the_configured_buffering(runner, tmp_path, clock):
    cdk_json, *_ = setup(tmp_path, "buffering-300s-64mib")
    result = invoke(runner, cdk_json)
    assert result.exit_code == 1
    assert "nothing delivered after 14 min" in result.output  # 2 x (60 + 300) + 120 = 840 s
    assert 840 <= clock.slept < 840 + 15


def test_missing_change_is_named_exit_1(runner, tmp_path, clock):
    cdk_json, cfg, spec, _ = setup(tmp_path)
    clock.on_sleep = FakeDelivery(cfg, spec, after=30, events=("INSERT", "MODIFY"))
    result = invoke(runner, cdk_json)
    assert result.exit_code == 1
    assert "orders: ✗ only INSERT, MODIFY delivered after 8 min (missing REMOVE): check the Firehose" in result.output


def test_wrong_content_fails_at_once_with_the_column_exit_1(runner, tmp_path, clock):
    cdk_json, cfg, spec, _ = setup(tmp_path)

    def tamper(change: dict[str, Any]) -> None:
        if change["eventName"] == "MODIFY":
            change["dynamodb"]["NewImage"]["counter"] = {"N": "3"}

    clock.on_sleep = FakeDelivery(cfg, spec, after=30, tamper=tamper)
    result = invoke(runner, cdk_json)
    assert result.exit_code == 1
    assert 'orders: ✗ MODIFY has counter = "3", expected "2"' in result.output
    assert clock.slept < 60  # no need to wait for the timeout


def test_two_tables_tests_the_one_it_can(runner, tmp_path, clock, monkeypatch):
    raw = configs.variant("two-tables")
    cdk_json = write_cdk_json(tmp_path / "cdk.json", raw)
    cfg = from_dict(raw)
    create_table(cfg, cfg.table("orders"))
    create_bucket(cfg)
    clock.on_sleep = FakeDelivery(cfg, cfg.table("orders"), after=100)
    assumed: list[str] = []
    original = aws.assume

    def recording_assume(session: Any, role_arn: str, region: str) -> Any:
        assumed.append(role_arn)
        return original(session, role_arn, region)

    monkeypatch.setattr(aws, "assume", recording_assume)
    result = invoke(runner, cdk_json)
    assert result.exit_code == 0, result.output
    assert "orders: ✓" in result.output and "customers" not in result.output
    # Only roles the pipeline creates: the reader, and a writer for each table the smoke test covers.
    assert sorted(assumed) == sorted(
        [naming.lake(cfg).smoke_reader_role_arn, naming.table(cfg, cfg.table("orders")).smoke_writer_role_arn]
    )

    result = invoke(runner, cdk_json, "--table", "customers")
    assert result.exit_code == 2
    assert (
        "error: table 'customers' cannot be smoke-tested: partition key 'customerId' is of type N, so no item can "
        "carry the smoke key prefix 'ddb-lake-smoke#'"
    ) in result.output


def test_unknown_table_exit_2(runner, tmp_path, clock):
    cdk_json, *_ = setup(tmp_path)
    result = invoke(runner, cdk_json, "--table", "nope")
    assert result.exit_code == 2
    assert "error: no table named 'nope'; configured: ['orders']" in result.output


def test_aws_failure_exit_3(runner, tmp_path, clock):
    cdk_json = write_cdk_json(tmp_path / "cdk.json", configs.variant("default"))
    result = invoke(runner, cdk_json)  # no table, no bucket
    assert result.exit_code == 3
    assert "error: orders: writing the smoke item to ddblake-orders failed: PutItem: ResourceNotFoundException" in (
        result.output
    )


def test_key_columns_follow_the_transforms_escaping(tmp_path, clock):
    # realistic: partition key "_id" is written as column "%5Fid" by the transform.
    from ops.smoke import plan

    cfg = from_dict(configs.variant("realistic"))
    (run,) = plan(cfg, None, clock.now())
    columns = run.expected_columns()
    assert list(columns) == ["%5Fid"]
    assert columns["%5Fid"].startswith(naming.SMOKE_KEY_PREFIX)
    raw = configs.variant("default")
    raw["tables"][0]["sort_key_type"] = "N"
    cfg = from_dict(raw)
    (run,) = plan(cfg, None, clock.now())
    assert run.expected_columns()["sk"] == Decimal(0)


# --- the probe in B (the pipeline's reader role may only invoke it) ----------------------------------------------


def test_pipeline_reads_through_the_probe_and_compiles_every_view(runner, tmp_path, clock, fake_probe):
    cdk_json, cfg, spec, _ = setup(tmp_path)
    clock.on_sleep = FakeDelivery(cfg, spec, after=100)
    result = invoke(runner, cdk_json)
    assert result.exit_code == 0, result.output
    names, lake_names = naming.table(cfg, spec), naming.lake(cfg)
    assert {name for name, _ in fake_probe.calls} == {lake_names.smoke_reader_role}
    finds = [event for _, event in fake_probe.calls if event["action"] == "find"]
    # Only ever the smoke item's own key.
    assert finds and all(event["value"].startswith(naming.SMOKE_KEY_PREFIX) for event in finds)
    queries = [query for query, _ in fake_probe.athena.queries]
    named = fake_probe.athena.named[NAMED]
    assert queries == [
        *(f'SELECT * FROM "{lake_names.database}"."{v}" LIMIT 0' for v in (names.history_view, names.current_view)),
        f"SELECT * FROM (\n{named}\n) LIMIT 0",
    ]
    assert {workgroup for _, workgroup in fake_probe.athena.queries} == {lake_names.workgroup}
    # One parameter (the '?' in the comment and in the string literal are not placeholders): the hour, as text.
    (hour,) = fake_probe.athena.parameters[-1]
    assert re.fullmatch(r"'\d{4}-\d{2}-\d{2}T\d{2}'", hour)


def test_a_view_athena_cannot_run_fails_with_athenas_message(runner, tmp_path, clock, fake_probe):
    cdk_json, cfg, spec, _ = setup(tmp_path)
    names = naming.table(cfg, spec)
    reason = "line 1:8: Column 'shipto%2ecity' cannot be resolved"
    fake_probe.athena.failures[names.current_view] = reason
    clock.on_sleep = FakeDelivery(cfg, spec, after=100)
    result = invoke(runner, cdk_json)
    assert result.exit_code == 1
    assert f"orders: ✗ view {names.current_view} does not run: FAILED: {reason} (query 2)" in result.output


def test_probe_returns_only_the_smoke_items_lines(clock):
    cfg = from_dict(configs.variant("default"))
    spec = cfg.table("orders")
    names, lake_names = naming.table(cfg, spec), naming.lake(cfg)
    s3 = create_bucket(cfg)
    now = clock.now()
    smoke_key = f"{naming.SMOKE_KEY_PREFIX}run1"
    lines = [
        {"pk": "CUSTOMER#1", "sk": "x", "secret": "someone else's data"},
        {"pk": smoke_key, "sk": "ddb-lake-smoke", "_event_name": "INSERT"},
        {"pk": "CUSTOMER#2", "note": smoke_key},  # mentions the value in another column: not returned
    ]
    key = f"{names.root(naming.DATA)}{lake.partition_path(lake.hour_floor(now))}object-1.gz"
    body = "\n".join(json.dumps(line) for line in lines).encode()
    s3.put_object(Bucket=lake_names.bucket, Key=key, Body=gzip.compress(body))
    event = {"action": "find", "table": "orders", "value": smoke_key}
    window = {"since": (now - timedelta(minutes=5)).isoformat(), "until": (now + timedelta(minutes=5)).isoformat()}
    answer = probe.handle({**event, **window}, None, probe_config(cfg), s3=s3, athena=None)
    assert answer == {"lines": [json.dumps(lines[1])], "objects": [key]}


@pytest.mark.parametrize(
    ("event", "refusal"),
    [
        ({"action": "find", "table": "orders", "value": "CUSTOMER#1"}, "only smoke items"),
        ({"action": "find", "table": "orders", "value": naming.SMOKE_KEY_PREFIX}, "only smoke items"),
        ({"action": "find", "table": "orders", "value": f"{naming.SMOKE_KEY_PREFIX}x", "hours": 48}, "at most 24"),
        ({"action": "find", "table": "other", "value": f"{naming.SMOKE_KEY_PREFIX}x"}, "unknown table 'other'"),
        ({"action": "read", "table": "orders"}, "unknown action 'read'"),
    ],
)
def test_probe_refuses_anything_but_smoke_items(clock, event, refusal):
    cfg = from_dict(configs.variant("default"))
    now = clock.now()
    hours = event.pop("hours", 1)
    window = {"since": (now - timedelta(hours=hours)).isoformat(), "until": now.isoformat()}
    with pytest.raises(probe.Refused, match=refusal):
        probe.handle({**event, **window}, None, probe_config(cfg), s3=None, athena=None)


# --- the first deployment: the lakehouse's Iceberg tables appear on its first maintenance run -------------------
class FirstRun:
    """On every clock sleep: the delivery, and ``created_after`` simulated seconds after the probe first started the
    maintenance execution, the Iceberg tables (None: never; the execution then ends without them)."""

    def __init__(self, delivery: FakeDelivery, fake_probe: FakeProbe, created_after: float | None) -> None:
        self.delivery, self.fake_probe, self.created_after = delivery, fake_probe, created_after
        self.started_at: float | None = None

    def __call__(self, clock: Any) -> None:
        self.delivery(clock)
        sfn = self.fake_probe.sfn
        if sfn.starts and self.started_at is None:
            self.started_at = clock.slept
        if self.started_at is None:
            return
        if self.created_after is not None and clock.slept - self.started_at >= self.created_after:
            self.fake_probe.glue.missing.clear()
        if self.created_after is None and clock.slept - self.started_at >= 120:
            sfn.ended.update(name for _, name, _ in sfn.starts)


def test_first_deployment_starts_the_lakehouse_run_once_and_checks_the_views_after_it(
    runner, tmp_path, clock, fake_probe
):
    cdk_json, cfg, spec, _ = setup(tmp_path)
    names, lake_names = naming.table(cfg, spec), naming.lake(cfg)
    fake_probe.glue.missing = {names.iceberg_history_table, names.iceberg_state_table}
    clock.on_sleep = FirstRun(FakeDelivery(cfg, spec, after=100), fake_probe, created_after=90)
    result = invoke(runner, cdk_json)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    arn = lake_names.state_machine_arn(names.maintenance_state_machine)
    # One execution per smoke run: every start (one per poll while the tables are missing) has the same name.
    run_names = {name for _, name, _ in fake_probe.sfn.starts}
    (run_name,) = run_names
    assert run_name.startswith("smoke-") and len(fake_probe.sfn.starts) > 1
    assert {(machine, given) for machine, _, given in fake_probe.sfn.starts} == {(arn, "{}")}
    assert (
        f"orders: the lakehouse tables {names.iceberg_history_table}, {names.iceberg_state_table} do not exist yet"
    ) in text
    assert text.count("checking the views again until they can run") == 1
    # The views were compiled only once the tables existed, and all of them.
    views = [q for q, _ in fake_probe.athena.queries if q.startswith('SELECT * FROM "')]
    assert views == [
        f'SELECT * FROM "{lake_names.database}"."{v}" LIMIT 0' for v in (names.history_view, names.current_view)
    ]
    assert "smoke: 1 table(s) passed" in text


def test_first_run_that_never_creates_the_tables_fails_after_the_wait_exit_1(runner, tmp_path, clock, fake_probe):
    cdk_json, cfg, spec, _ = setup(tmp_path)
    names = naming.table(cfg, spec)
    fake_probe.glue.missing = {names.iceberg_state_table}
    clock.on_sleep = FirstRun(FakeDelivery(cfg, spec, after=100), fake_probe, created_after=None)
    result = invoke(runner, cdk_json)
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    limit = smoke_timeout_seconds(cfg, spec) + smoke_views_seconds(cfg)
    assert f"orders: ✗ the views could not be checked after {limit / 60:g} min: the lakehouse tables" in text
    assert "ended without creating them: see its history" in text
    assert limit <= clock.slept < limit + 15
    assert fake_probe.athena.queries == []


def test_without_the_lakehouse_the_probe_never_starts_anything(runner, tmp_path, clock, fake_probe):
    cdk_json, cfg, spec, _ = setup(tmp_path, "uncompressed")
    assert not cfg.lakehouse.enabled and smoke_views_seconds(cfg) == 0
    fake_probe.glue.missing = {naming.table(cfg, spec).iceberg_history_table}
    clock.on_sleep = FakeDelivery(cfg, spec, after=100)
    result = invoke(runner, cdk_json)
    assert result.exit_code == 0, result.output
    assert fake_probe.sfn.starts == []
