"""ddb-lake smoke: success when the three changes arrive and are right; a precise reason (and exit 1) when they
do not arrive in time or arrive wrong. Simulated time: the fake clock moves only while the command waits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ops import aws
from ops.cli import app
from shared import naming
from shared.config import from_dict
from shared.smoke_targets import smoke_timeout_seconds
from tests import configs

from .conftest import write_cdk_json
from .lake_fakes import FakeDelivery, create_bucket, create_table


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
