"""The producer side played in-process: moto's DynamoDB Streams stand in for Kinesis Data Streams for DynamoDB,
and the real transform handler stands in for Firehose's Lambda, writing what Firehose would write."""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import json
import uuid
from collections.abc import Callable
from typing import Any

from lambdas.transform.handler import process_event
from ops import lake
from ops.backfill import micros, to_json
from shared import naming
from shared.config import AppConfig, TableSpec

from .conftest import FakeClock, account_session


def create_table(cfg: AppConfig, spec: TableSpec) -> Any:
    """The table as the producer stack creates it, with a DynamoDB stream for the fake delivery to read."""
    dynamodb = account_session(cfg.producer.account, cfg.producer.region).client("dynamodb")
    keys = [(spec.partition_key, spec.partition_key_type, "HASH")]
    if spec.sort_key:
        keys.append((spec.sort_key, spec.sort_key_type, "RANGE"))
    dynamodb.create_table(
        TableName=naming.table(cfg, spec).table,
        KeySchema=[{"AttributeName": name, "KeyType": kind} for name, _, kind in keys],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": typ} for name, typ, _ in keys],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return dynamodb


def create_bucket(cfg: AppConfig) -> Any:
    s3 = account_session(cfg.consumer.account, cfg.consumer.region).client("s3")
    location = {} if cfg.consumer.region == "us-east-1" else {"LocationConstraint": cfg.consumer.region}
    s3.create_bucket(Bucket=naming.lake(cfg).bucket, CreateBucketConfiguration=location)
    return s3


def transformed_lines(changes: list[dict[str, Any]], metadata: list[tuple[str, str]] | None = None) -> list[bytes]:
    """What the Lambda returns Ok for these change records (with Kinesis metadata when given)."""
    records = []
    for index, change in enumerate(changes):
        data = json.dumps(change, separators=(",", ":"), ensure_ascii=False).encode()
        record: dict[str, Any] = {"recordId": f"r{index}", "data": base64.b64encode(data).decode()}
        if metadata:
            shard, sequence = metadata[index]
            record["kinesisRecordMetadata"] = {"shardId": shard, "sequenceNumber": sequence}
        records.append(record)
    with contextlib.redirect_stdout(io.StringIO()):  # the handler's log line is not the command's output
        answer = process_event({"invocationId": "test", "records": records})
    return [base64.b64decode(r["data"]) for r in answer["records"] if r["result"] == "Ok"]


class FakeDelivery:
    """Called on every clock sleep: once ``after`` simulated seconds have passed, reads the table's changes,
    turns them into Kinesis Data Streams for DynamoDB records, transforms them and writes the data object."""

    def __init__(
        self,
        cfg: AppConfig,
        spec: TableSpec,
        after: float = 200.0,
        events: tuple[str, ...] = ("INSERT", "MODIFY", "REMOVE"),
        tamper: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.cfg, self.spec, self.after, self.events, self.tamper = cfg, spec, after, events, tamper
        self.names = naming.table(cfg, spec)
        self.producer = account_session(cfg.producer.account, cfg.producer.region)
        self.s3 = account_session(cfg.consumer.account, cfg.consumer.region).client("s3")
        self.keys: list[str] = []

    def changes(self, clock: FakeClock) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        dynamodb = self.producer.client("dynamodb")
        streams = self.producer.client("dynamodbstreams")
        arn = dynamodb.describe_table(TableName=self.names.table)["Table"]["LatestStreamArn"]
        changes, metadata = [], []
        base = micros(clock.now())
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            iterator = streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for record in streams.get_records(ShardIterator=iterator)["Records"]:
                if record["eventName"] not in self.events:
                    continue
                ddb = record["dynamodb"]
                image = {
                    "ApproximateCreationDateTime": base + len(changes),
                    "Keys": to_json(ddb["Keys"]),
                    **({"NewImage": to_json(ddb["NewImage"])} if "NewImage" in ddb else {}),
                    **({"OldImage": to_json(ddb["OldImage"])} if "OldImage" in ddb else {}),
                    "SizeBytes": ddb["SizeBytes"],
                    "ApproximateCreationDateTimePrecision": "MICROSECOND",
                }
                change = {
                    "awsRegion": self.cfg.producer.region,
                    "eventID": record["eventID"],
                    "eventName": record["eventName"],
                    "userIdentity": None,
                    "recordFormat": "application/json",
                    "tableName": self.names.table,
                    "dynamodb": image,
                    "eventSource": "aws:dynamodb",
                }
                if self.tamper:
                    self.tamper(change)
                changes.append(change)
                metadata.append(("shardId-000000000000", ddb["SequenceNumber"]))
        return changes, metadata

    def __call__(self, clock: FakeClock) -> None:
        if self.keys or clock.monotonic() < self.after:
            return
        changes, metadata = self.changes(clock)
        body = b"".join(transformed_lines(changes, metadata))
        gzipped = self.cfg.delivery_for(self.spec).compression == "GZIP"
        now = clock.now()
        key = (
            f"{self.names.root(naming.DATA)}{lake.partition_path(lake.hour_floor(now))}"
            f"{self.names.delivery_stream}-1-{now:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}" + (".gz" if gzipped else "")
        )
        self.s3.put_object(Bucket=naming.lake(self.cfg).bucket, Key=key, Body=gzip.compress(body) if gzipped else body)
        self.keys.append(key)
