"""ddb-lake backfill against moto's DynamoDB and Kinesis: every item exactly once across segments, in the exact
change-record format; failed entries retried until delivered; the rate limit per simulated second; resuming
without duplicates; dry runs; and the exit codes."""

from __future__ import annotations

import base64
import json
import re
import signal
import threading
from collections import Counter
from decimal import Decimal
from typing import Any

import boto3
import pytest

from ops import aws, backfill
from ops.cli import app
from tests import configs

from .conftest import REGION, write_cdk_json
from .lake_fakes import transformed_lines

TABLE, STREAM = "ddblake-orders", "ddblake-orders-changes"
THREE_SEGMENTS = backfill.ResumeToken(TABLE, [backfill.SegmentState() for _ in range(3)]).encode()


def make_table(count: int, *, binary_sort_key: bool = False) -> list[dict[str, Any]]:
    dynamodb = boto3.client("dynamodb")
    sort_type = "B" if binary_sort_key else "S"
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": sort_type},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    items = []
    for i in range(count):
        sk = {"B": f"ORDER#{i % 3}".encode()} if binary_sort_key else {"S": f"ORDER#{i % 3}"}
        item = {
            "pk": {"S": f"CUSTOMER#{i:05d}"},
            "sk": sk,
            "total": {"N": f"{i}.50"},
            "tags": {"SS": ["a", f"t{i % 7}"]},
            "blob": {"B": bytes([i % 256, 0, 255])},
            "shipTo": {"M": {"city": {"S": "Zürich"}, "zip": {"N": "8001"}}},
            "lines": {"L": [{"S": "x"}, {"N": "2"}, {"BOOL": True}, {"NULL": True}]},
        }
        dynamodb.put_item(TableName=TABLE, Item=item)
        items.append(item)
    boto3.client("kinesis").create_stream(StreamName=STREAM, ShardCount=2)
    return items


def stream_records() -> list[dict[str, Any]]:
    kinesis = boto3.client("kinesis")
    records = []
    for shard in kinesis.list_shards(StreamName=STREAM)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            answer = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            records += [json.loads(r["Data"]) | {"_partition_key": r["PartitionKey"]} for r in answer["Records"]]
            if not answer["Records"]:
                break
            iterator = answer.get("NextShardIterator")
    return records


def key_of(record: dict[str, Any]) -> str:
    return json.dumps(record["dynamodb"]["Keys"], sort_keys=True)


MOTO = threading.Lock()


class Serialized:
    """One moto call at a time: moto is not thread-safe (concurrent scans and puts lose Kinesis records), while
    the segments under test run in threads. Only the fake is serialised, not the code under test."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.real, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with MOTO:
                return attribute(*args, **kwargs)

        return call


class FlakyKinesis:
    """The real (moto) client, except that PutRecords fails the entries ``fail(call, entry)`` picks, as Kinesis
    reports throttled entries; every call is recorded with the simulated time it happened at."""

    def __init__(self, real: Any, clock: Any, fail: Any = lambda call, entry: False) -> None:
        self.real, self.clock, self.fail = real, clock, fail
        self.calls: list[tuple[float, int]] = []
        self.in_flight: Any = lambda call: None  # runs while a call is "on the wire" (before MOTO's lock)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        self.in_flight(len(self.calls))
        with MOTO:
            return self._put_records(StreamName, Records)

    def _put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        call = len(self.calls)
        self.calls.append((self.clock.monotonic(), len(Records)))
        failing = [self.fail(call, json.loads(entry["Data"])) for entry in Records]
        passed = [entry for entry, bad in zip(Records, failing, strict=True) if not bad]
        answers = iter(self.real.put_records(StreamName=StreamName, Records=passed)["Records"] if passed else [])
        results = [
            {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard"}
            if bad
            else next(answers)
            for bad in failing
        ]
        return {"FailedRecordCount": sum(failing), "Records": results}


@pytest.fixture
def kinesis(monkeypatch, clock) -> FlakyKinesis:
    flaky = FlakyKinesis(boto3.client("kinesis"), clock)
    original = aws.client

    def client(session: Any, service: str, region: str | None = None, config: Any = aws.CLIENT_CONFIG) -> Any:
        return flaky if service == "kinesis" else Serialized(original(session, service, region, config))

    monkeypatch.setattr(aws, "client", client)
    return flaky


# The producer account is moto's account for the default credentials, where these tests create the table.
MOTO_ACCOUNT = "123456789012"
CDK_JSON: list[str] = []


@pytest.fixture(autouse=True)
def producer_config(tmp_path):
    raw = configs.variant("default")
    raw["producer"]["account"] = MOTO_ACCOUNT
    CDK_JSON[:] = [str(write_cdk_json(tmp_path / "cdk.json", raw))]


def run(runner, *args: str) -> Any:
    return runner.invoke(app, ["backfill", "--cdk-json", CDK_JSON[0], "--table-name", TABLE, *args])


def test_every_item_exactly_once_in_the_change_record_format(runner, clock, kinesis):
    items = make_table(1200)
    result = run(runner, "--stream-name", STREAM, "--segments", "4", "--max-records-per-second", "10000")
    assert result.exit_code == 0, result.output
    assert f"sent 1,200 items of {TABLE} to {STREAM} in 4 segment(s)" in result.output
    records = stream_records()
    assert Counter(key_of(r) for r in records) == Counter(
        json.dumps(backfill.to_json({"pk": i["pk"], "sk": i["sk"]}), sort_keys=True) for i in items
    )
    assert all(count == 1 for count in Counter(key_of(r) for r in records).values())
    record = next(r for r in records if r["dynamodb"]["Keys"]["pk"] == {"S": "CUSTOMER#00007"})
    partition_key = record.pop("_partition_key")
    assert partition_key == '{"pk":{"S":"CUSTOMER#00007"},"sk":{"S":"ORDER#1"}}'
    assert list(record) == [
        "awsRegion",
        "eventID",
        "eventName",
        "userIdentity",
        "recordFormat",
        "tableName",
        "dynamodb",
        "eventSource",
        "ddbLakeOrigin",
    ]
    assert list(record["dynamodb"]) == [
        "ApproximateCreationDateTime",
        "Keys",
        "NewImage",
        "SizeBytes",
        "ApproximateCreationDateTimePrecision",
    ]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", record["eventID"])
    assert {k: record[k] for k in ("awsRegion", "eventName", "userIdentity", "recordFormat", "tableName")} == {
        "awsRegion": REGION,
        "eventName": "INSERT",
        "userIdentity": None,
        "recordFormat": "application/json",
        "tableName": TABLE,
    }
    assert record["eventSource"] == "aws:dynamodb" and record["ddbLakeOrigin"] == "backfill"
    ddb = record["dynamodb"]
    assert ddb["ApproximateCreationDateTimePrecision"] == "MICROSECOND"
    assert abs(ddb["ApproximateCreationDateTime"] - backfill.micros(clock.now())) < 60_000_000  # µs, not ms
    assert ddb["NewImage"]["blob"] == {"B": base64.b64encode(bytes([7, 0, 255])).decode()}
    assert ddb["NewImage"]["shipTo"] == {"M": {"city": {"S": "Zürich"}, "zip": {"N": "8001"}}}
    assert ddb["SizeBytes"] > 0
    # The Lambda accepts it as a backfill change.
    (line,) = transformed_lines([record])
    row = json.loads(line, parse_float=Decimal)
    assert row["_origin"] == "backfill" and row["_event_name"] == "INSERT" and row["shipTo.city"] == "Zürich"


def test_failed_entries_are_retried_until_delivered(runner, clock, kinesis):
    make_table(300)
    # Every other entry fails on its first two tries (as a hot shard would); only those are sent again.
    tries: Counter[str] = Counter()

    def fail(call: int, record: dict[str, Any]) -> bool:
        key = key_of(record)
        tries[key] += 1
        return int(record["dynamodb"]["Keys"]["pk"]["S"][-3:]) % 2 == 0 and tries[key] <= 2

    kinesis.fail = fail
    result = run(runner, "--stream-name", STREAM, "--segments", "3", "--max-records-per-second", "10000")
    assert result.exit_code == 0, result.output
    records = stream_records()
    assert len(records) == 300 and len({key_of(r) for r in records}) == 300
    sent_per_call = [n for _, n in kinesis.calls]
    assert sum(sent_per_call) == 300 + 150 * 2  # the failing half sent three times, the rest once
    assert clock.slept >= 0.2 + 0.4  # exponential backoff between the retries


def test_rate_limit_is_kept_in_every_simulated_second(runner, clock, kinesis):
    make_table(400)
    result = run(runner, "--stream-name", STREAM, "--segments", "1", "--max-records-per-second", "50")
    assert result.exit_code == 0, result.output
    per_second: Counter[int] = Counter()
    for at, count in kinesis.calls:
        per_second[int(at)] += count
    assert sum(per_second.values()) == 400
    assert max(per_second.values()) == 50 and len(per_second) == 8  # 400 records at 50/s: 8 seconds
    assert all(n <= 50 for _, n in kinesis.calls)  # a batch never exceeds one second's budget


def test_rate_limiter_counts_per_clock_second(clock):
    limiter = backfill.RateLimiter(100, clock)
    taken: Counter[int] = Counter()
    for n in [60, 30, 30, 100, 1, 99, 50, 50, 50]:
        limiter.acquire(n)
        taken[int(clock.monotonic())] += n
    assert taken == {0: 90, 1: 30, 2: 100, 3: 100, 4: 100, 5: 50}
    with pytest.raises(ValueError):
        limiter.acquire(101)


def test_stopped_run_resumes_without_duplicates(runner, clock, kinesis):
    make_table(600, binary_sort_key=True)
    # Some entries fail for good in the first run: it stops with a token; the rest of their batch went through.
    kinesis.fail = lambda call, record: record["dynamodb"]["Keys"]["pk"]["S"] in {"CUSTOMER#00123", "CUSTOMER#00456"}
    args = ["--stream-name", STREAM, "--segments", "3", "--max-records-per-second", "100", "--max-attempts", "3"]
    first = run(runner, *args)
    assert first.exit_code == 1
    # One or both, depending on whether the other segments got that far before the first failure stopped them.
    assert re.search(r"backfill incomplete: [12] record\(s\) still failing after the last attempt", first.output)
    assert "ProvisionedThroughputExceededException: Rate exceeded for shard" in first.output
    token = next(line for line in first.stdout.splitlines() if re.fullmatch(r"[A-Za-z0-9_=-]{40,}", line))
    sent_first = stream_records()
    assert 0 < len(sent_first) < 600

    kinesis.fail = lambda call, record: False
    second = run(runner, *args, "--resume", token)
    assert second.exit_code == 0, second.output
    assert "already sent before" in second.output
    records = stream_records()
    keys = Counter(key_of(r) for r in records)
    assert len(keys) == 600 and set(keys.values()) == {1}  # every item once, over both runs


def test_resume_token_round_trip_keeps_binary_keys():
    state = backfill.SegmentState(after={"pk": {"S": "a"}, "sk": {"B": b"\x00\xff"}}, sent=[{"pk": {"N": "1"}}])
    token = backfill.ResumeToken("t", [state, backfill.SegmentState(done=True)])
    again = backfill.ResumeToken.decode(token.encode())
    assert again == token
    assert json.loads(base64.urlsafe_b64decode(token.encode()))["table"] == "t"  # base64 JSON, inspectable


def test_dry_run_counts_and_puts_nothing(runner, clock, kinesis):
    make_table(250)
    result = run(runner, "--dry-run", "--segments", "2")
    assert result.exit_code == 0, result.output
    assert f"dry run: 250 items in {TABLE} (" in result.output and "nothing was put" in result.output
    assert kinesis.calls == [] and stream_records() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stream-name", STREAM, "--resume", "not-a-token"], "--resume: not a token printed by ddb-lake backfill"),
        (["--segments", "4"], "--stream-name is required (unless --dry-run)"),
        (
            ["--stream-name", STREAM, "--segments", "2", "--resume", THREE_SEGMENTS],
            f"--resume: the token is for table '{TABLE}' with 3 segments; run with --table-name {TABLE} --segments 3",
        ),
    ],
)
def test_usage_errors_exit_2(runner, clock, kinesis, args, message):
    make_table(1)
    result = run(runner, *args)
    assert result.exit_code == 2
    assert f"error: {message}" in result.output


def test_missing_table_or_stream_exit_3(runner, clock, kinesis):
    result = run(runner, "--stream-name", STREAM)
    assert result.exit_code == 3
    assert f"error: cannot use stream {STREAM}: DescribeStreamSummary: ResourceNotFoundException" in result.output
    boto3.client("kinesis").create_stream(StreamName=STREAM, ShardCount=1)
    result = run(runner, "--stream-name", STREAM)
    assert result.exit_code == 3
    assert f"error: cannot read table {TABLE}: DescribeTable: ResourceNotFoundException" in result.output


def test_records_over_the_kinesis_limit_are_reported_not_sent(runner, clock, kinesis):
    make_table(3)
    big = {"pk": {"S": "BIG"}, "sk": {"S": "x"}, "l": {"L": [{"N": "1"}] * 120_000}}  # ~1.2 MB as JSON
    boto3.client("dynamodb").put_item(TableName=TABLE, Item=big)
    result = run(runner, "--stream-name", STREAM, "--segments", "1")
    assert result.exit_code == 1
    assert (
        '1 item(s) exceed Kinesis\'s 1 MiB record limit as change records and were not sent: {"pk":{"S":"BIG"},'
        '"sk":{"S":"x"}}'
    ) in result.output
    assert len(stream_records()) == 3


# --- Ctrl-C --------------------------------------------------------------------------------------------------
class CtrlC:
    """Presses Ctrl-C for real (SIGINT to this process) from inside a PutRecords call, i.e. with a request in
    flight, and holds that request until the command has reacted (or 5 s), as a slow network would."""

    def __init__(self, monkeypatch, kinesis: FlakyKinesis, clock, at_call: int, presses: int = 1) -> None:
        self.kinesis, self.clock, self.at_call, self.presses = kinesis, clock, at_call, presses
        self.reacted = threading.Event()
        self.pressed_at: float | None = None
        self.exit_codes: list[int] = []
        original = backfill.Backfill.interrupt

        def interrupt(job: backfill.Backfill) -> None:
            try:
                original(job)
            finally:
                self.reacted.set()

        def hard_exit(code: int) -> None:  # the abort must not wait for the request still in flight
            self.exit_codes.append(code)
            self.reacted.set()

        monkeypatch.setattr(backfill.Backfill, "interrupt", interrupt)
        monkeypatch.setattr("ops.cli.hard_exit", hard_exit)
        kinesis.in_flight = self

    def __call__(self, call: int) -> None:
        if call != self.at_call:
            return
        self.pressed_at = self.clock.monotonic()
        for _ in range(self.presses):
            self.reacted.clear()
            signal.raise_signal(signal.SIGINT)
            assert self.reacted.wait(5), "the command did not react to Ctrl-C"


def _token(output: str) -> str:
    return next(line for line in output.splitlines() if re.fullmatch(r"[A-Za-z0-9_=-]{40,}", line))


def test_ctrl_c_stops_after_the_request_in_flight_with_an_exact_token(runner, clock, kinesis, monkeypatch):
    make_table(400)  # one scan page: before, Ctrl-C waited for all of it (8 batches at this rate)
    ctrl_c = CtrlC(monkeypatch, kinesis, clock, at_call=2)
    args = ["--stream-name", STREAM, "--segments", "1", "--max-records-per-second", "50"]
    result = run(runner, *args)
    assert result.exit_code == 130, result.output
    assert "stopping: waiting for the requests in flight, then printing the resume token" in result.output
    assert "backfill incomplete: stopped by Ctrl-C after the requests in flight" in result.output
    assert len(kinesis.calls) == 3  # the call in flight finished; no batch started after Ctrl-C
    assert clock.monotonic() - ctrl_c.pressed_at <= 1.0  # in simulated seconds
    assert len(stream_records()) == 150

    kinesis.in_flight = lambda call: None
    second = run(runner, *args, "--resume", _token(result.stdout))
    assert second.exit_code == 0, second.output
    keys = Counter(key_of(r) for r in stream_records())
    assert len(keys) == 400 and set(keys.values()) == {1}  # exact: nothing lost, nothing sent twice


def test_ctrl_c_during_the_last_request_leaves_nothing_to_resume(runner, clock, kinesis, monkeypatch):
    make_table(120)
    CtrlC(monkeypatch, kinesis, clock, at_call=2)
    result = run(runner, "--stream-name", STREAM, "--segments", "1", "--max-records-per-second", "50")
    assert result.exit_code == 0, result.output
    assert "interrupted, but every item had already been sent: nothing to resume" in result.output
    assert len(stream_records()) == 120


def test_second_ctrl_c_aborts_without_waiting(runner, clock, kinesis, monkeypatch):
    make_table(300)
    ctrl_c = CtrlC(monkeypatch, kinesis, clock, at_call=1, presses=2)
    result = run(runner, "--stream-name", STREAM, "--segments", "2", "--max-records-per-second", "100")
    assert ctrl_c.exit_codes == [130]  # left while the request was still held in flight
    assert result.exit_code == 130
    assert "aborted" in result.output and "record(s) were in flight and may have been delivered" in result.output
    assert backfill.ResumeToken.decode(_token(result.stdout)).table == TABLE
    for thread in threading.enumerate():  # let the abandoned workers see the stop before moto goes away
        if thread.name.startswith("ThreadPoolExecutor"):
            thread.join(5)


def test_a_backoff_is_cut_short_by_a_stop(clock):
    stop = threading.Event()
    clock.on_sleep = lambda c: stop.set() if c.monotonic() >= 0.5 else None
    assert backfill.pause(clock, 10.0, stop) is True
    assert clock.monotonic() <= 0.5 + backfill.PAUSE_STEP_SECONDS
    limiter = backfill.RateLimiter(10, clock, stop)
    assert limiter.acquire(5) is False  # nothing taken once the run is stopping
