"""ddb-lake replay in account B (moto): a raw backup object reproduces, line for line, what the Lambda returns
for its records; error envelopes replay the same way; replayed objects land in the partition of the hour the
replay runs (so the lakehouse maintenance, which reads recent arrival hours, picks them up); a second replay in
the same hour rewrites the same object, one in a later hour writes a copy with the same event IDs; the window and
the failures are reported with their exit codes."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ops import lake as lake_paths
from ops.cli import app
from shared import naming
from shared.config import from_dict
from tests import configs

from .conftest import CONSUMER, role_arn, write_cdk_json
from .lake_fakes import create_bucket, transformed_lines

HOUR = "year=2026/month=11/day=29/hour=10/"
# The replay runs days later, at 09:59:30 on 2026-12-06 (the fake clock's start in these tests).
REPLAY_TIME = datetime(2026, 12, 6, 9, 59, 30, tzinfo=UTC)
RAW_KEY = f"raw/orders/{HOUR}ddblake-orders-to-datalake-1-2026-11-29-10-14-03-0f1e2d3c.gz"


def change(event: str, n: int, **extra: Any) -> dict[str, Any]:
    keys = {"pk": {"S": f"CUSTOMER#{n}"}, "sk": {"S": "ORDER#1"}}
    image = {**keys, "total": {"N": f"{n}.25"}, "shipTo": {"M": {"city": {"S": "Zürich"}}}, "_v": {"N": "3"}}
    ddb: dict[str, Any] = {"ApproximateCreationDateTime": 1_764_410_000_000_000 + n, "Keys": keys}
    ddb["OldImage" if event == "REMOVE" else "NewImage"] = image
    ddb |= {"SizeBytes": 99, "ApproximateCreationDateTimePrecision": "MICROSECOND"}
    return {
        "awsRegion": "eu-west-1",
        "eventID": f"00000000-0000-4000-8000-{n:012d}",
        "eventName": event,
        "userIdentity": None,
        "recordFormat": "application/json",
        "tableName": "ddblake-orders",
        "dynamodb": ddb,
        "eventSource": "aws:dynamodb",
        **extra,
    }


def raw_bytes(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


def target(source_key: str, now: datetime) -> str:
    digest = hashlib.sha256(source_key.encode()).hexdigest()
    return f"data/orders/{lake_paths.partition_path(lake_paths.hour_floor(now))}replay-{digest}.gz"


@pytest.fixture
def replay_clock(clock):
    clock._now = clock._origin = REPLAY_TIME
    return clock


@pytest.fixture
def lake(tmp_path, replay_clock) -> tuple[Any, Any, Any]:
    raw = configs.variant("default")
    cfg = from_dict(raw)
    return write_cdk_json(tmp_path / "cdk.json", raw), cfg, create_bucket(cfg)


def replay(runner, cdk_json, *args: str) -> Any:
    return runner.invoke(
        app, ["replay", "--cdk-json", str(cdk_json), "--table", "orders", "--role-consumer", role_arn(CONSUMER), *args]
    )


def objects(s3: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def test_raw_object_replays_to_exactly_the_lambdas_lines(runner, lake, replay_clock):
    cdk_json, cfg, s3 = lake
    bucket = naming.lake(cfg).bucket
    changes = [change("INSERT", 1), change("MODIFY", 2), change("REMOVE", 3)]
    changes.append(change("INSERT", 4, ddbLakeOrigin="backfill"))
    # The raw backup: the source records back to back, no separators, GZIP (as Firehose writes it).
    s3.put_object(Bucket=bucket, Key=RAW_KEY, Body=gzip.compress(b"".join(raw_bytes(c) for c in changes)))
    # Outside the window: must not be replayed.
    s3.put_object(Bucket=bucket, Key=RAW_KEY.replace("hour=10", "hour=12"), Body=raw_bytes(change("INSERT", 9)))

    result = replay(runner, cdk_json, "--from", "raw", "--start", "2026-11-29T10:00Z", "--end", "2026-11-29T12:00Z")
    assert result.exit_code == 0, result.output
    # Into the replay's own arrival hour, not the source's hour=10 of a week ago.
    first = target(RAW_KEY, REPLAY_TIME)
    assert first.startswith("data/orders/year=2026/month=12/day=06/hour=09/replay-")
    assert f"{RAW_KEY} -> {first} (4 lines)" in result.output
    assert "replayed 1 object(s) of s3://ddblake-datalake-222222222222-eu-west-1/raw/orders/" in result.output
    assert "the lakehouse maintenance's next scheduled run applies them" in " ".join(result.output.split())
    written = objects(s3, bucket, "data/")
    assert list(written) == [first]
    # Exactly the Lambda's output for the same records (no Kinesis metadata in a raw backup: both null).
    assert gzip.decompress(written[first]) == b"".join(transformed_lines(changes))

    replay_clock.sleep(20)  # 09:59:50: the same hour
    again = replay(runner, cdk_json, "--from", "raw", "--start", "2026-11-29T10:00Z", "--end", "2026-11-29T12:00Z")
    assert again.exit_code == 0
    assert objects(s3, bucket, "data/") == written  # same key, same bytes: idempotent

    replay_clock.sleep(20)  # 10:00:10: a later hour gets a second copy, whose changes collapse on _event_id
    later = replay(runner, cdk_json, "--from", "raw", "--start", "2026-11-29T10:00Z", "--end", "2026-11-29T12:00Z")
    assert later.exit_code == 0
    second = target(RAW_KEY, REPLAY_TIME + timedelta(minutes=1))
    assert second.startswith("data/orders/year=2026/month=12/day=06/hour=10/replay-")
    assert objects(s3, bucket, "data/") == {first: written[first], second: written[first]}
    ids = [json.loads(line)["_event_id"] for line in gzip.decompress(written[first]).splitlines()]
    assert len(set(ids)) == len(changes)


def test_error_envelopes_replay_and_failures_are_counted(runner, lake):
    cdk_json, cfg, s3 = lake
    bucket = naming.lake(cfg).bucket
    good = [change("INSERT", 5), change("MODIFY", 6)]
    still_bad = change("UPSERT", 7)  # the transform refuses it again
    envelopes = [
        {
            "attemptsMade": 4,
            "arrivalTimestamp": 1_764_410_000_000,
            "errorCode": "Lambda.FunctionError",
            "errorMessage": "The Lambda function was successfully invoked but it returned an error result.",
            "attemptEndingTimestamp": 1_764_410_060_000,
            "rawData": base64.b64encode(raw_bytes(record)).decode(),
            "lambdaArn": "arn:aws:lambda:eu-west-1:333333333333:function:transform",
        }
        for record in [*good, still_bad]
    ]
    key = f"errors/orders/processing-failed/{HOUR}ddblake-orders-to-datalake-1-2026-11-29-10-20-00-1a2b.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(b"\n".join(json.dumps(e).encode() for e in envelopes)))

    window = ["--start", "2026-11-29T10:30:00+00:00", "--end", "2026-11-29T11:00Z"]
    result = replay(runner, cdk_json, "--from", "errors", *window)
    assert result.exit_code == 1
    assert "2 records transformed, 1 failed; wrote 1 object(s)" in result.output
    assert "1 x unknown eventName" in result.output
    assert "replay incomplete: 1 record(s) failed the transform and 0 object(s) could not be read to the end" in (
        result.output
    )
    assert gzip.decompress(objects(s3, bucket, "data/")[target(key, REPLAY_TIME)]) == b"".join(transformed_lines(good))


def test_unsplittable_raw_content_replays_what_it_can(runner, lake):
    cdk_json, cfg, s3 = lake
    bucket = naming.lake(cfg).bucket
    s3.put_object(Bucket=bucket, Key=RAW_KEY, Body=raw_bytes(change("INSERT", 1)) + b"{not json")
    result = replay(runner, cdk_json, "--from", "raw", "--start", "2026-11-29T10:00Z", "--end", "2026-11-29T11:00Z")
    assert result.exit_code == 1
    assert f"unreadable: {RAW_KEY}: record 1 at byte" in result.output
    assert "1 records transformed, 0 failed; wrote 1 object(s)" in result.output


def test_dry_run_writes_nothing(runner, lake):
    cdk_json, cfg, s3 = lake
    bucket = naming.lake(cfg).bucket
    s3.put_object(Bucket=bucket, Key=RAW_KEY, Body=raw_bytes(change("INSERT", 1)))
    result = replay(
        runner, cdk_json, "--from", "raw", "--start", "2026-11-29T10:00Z", "--end", "2026-11-29T11:00Z", "--dry-run"
    )
    assert result.exit_code == 0, result.output
    assert "would write 1 object(s)" in result.output
    assert objects(s3, bucket, "data/") == {}


def test_empty_window_exit_1(runner, lake):
    cdk_json, *_ = lake
    result = replay(runner, cdk_json, "--from", "raw", "--start", "2026-11-29T10:00Z", "--end", "2026-11-29T11:00Z")
    assert result.exit_code == 1
    assert (
        "nothing to replay: no objects under s3://ddblake-datalake-222222222222-eu-west-1/raw/orders/ in the "
        "partitions of 2026-11-29T10:00Z..2026-11-29T11:00Z"
    ) in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "yesterday", "--end", "2026-11-29T11:00Z"], "--start 'yesterday': not an ISO 8601 time"),
        (["--start", "2026-11-29T11:00Z", "--end", "2026-11-29T10:00Z"], "is not before --end"),
    ],
)
def test_bad_window_exit_2(runner, lake, args, message):
    cdk_json, *_ = lake
    result = replay(runner, cdk_json, "--from", "raw", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_a_replay_crossing_an_hour_writes_each_object_where_it_arrives(lake, replay_clock):
    from ops import replay as replay_module
    from shared.config import from_dict as load

    _, cfg, s3 = lake
    bucket = naming.lake(cfg).bucket
    keys = [RAW_KEY, RAW_KEY.replace("0f1e2d3c", "aaaa")]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=raw_bytes(change("INSERT", 1)))
    names = naming.table(cfg, load(configs.variant("default")).table("orders"))

    def now() -> datetime:  # each object takes 20 s: the first is written at 09:59:50, the second at 10:00:10
        replay_clock.sleep(20)
        return replay_clock.now()

    summary = replay_module.replay(
        s3,
        naming.lake(cfg),
        names,
        "raw",
        datetime(2026, 11, 29, 10, tzinfo=UTC),
        datetime(2026, 11, 29, 11, tzinfo=UTC),
        now=now,
    )
    written = [o.target_key for o in summary.objects]
    assert [key.split("/")[5] for key in written] == ["hour=09", "hour=10"]  # type: ignore[union-attr]
    assert written == [target(keys[0], REPLAY_TIME), target(keys[1], REPLAY_TIME + timedelta(minutes=1))]


def test_missing_bucket_exit_3(runner, tmp_path):
    cdk_json = write_cdk_json(tmp_path / "cdk.json", configs.variant("default"))
    result = replay(runner, cdk_json, "--from", "raw", "--start", "2026-11-29T10:00Z", "--end", "2026-11-29T11:00Z")
    assert result.exit_code == 3
    assert "error: replay stopped: ListObjectsV2: NoSuchBucket" in result.output
