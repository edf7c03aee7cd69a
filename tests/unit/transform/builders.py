"""Builders for Firehose events carrying DynamoDB change records, and output decoders."""

from __future__ import annotations

import base64
import contextlib
import io
import json
from decimal import Decimal
from typing import Any

from lambdas.transform import handler as transform_handler

TS_MICROS = 1_717_171_717_123_456  # 2024-05-31T16:08:37.123456Z
TS_MILLIS = 1_717_171_717_123  # 2024-05-31T16:08:37.123000Z
SEQ = "49650000000000000000000000000000000000000000000000000001"
SHARD = "shardId-000000000003"
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def change_record(
    event_name: str = "INSERT",
    new: dict[str, Any] | None = None,
    old: dict[str, Any] | None = None,
    keys: dict[str, Any] | None = None,
    *,
    timestamp: Any = TS_MICROS,
    identity: Any = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A "Kinesis Data Streams for DynamoDB" change record as AWS writes it."""
    keys = keys if keys is not None else {"pk": {"S": "ORDER#1"}}
    ddb: dict[str, Any] = {"ApproximateCreationDateTime": timestamp, "Keys": keys}
    if new is not None:
        ddb["NewImage"] = new
    if old is not None:
        ddb["OldImage"] = old
    ddb["SizeBytes"] = 42
    record = {
        "awsRegion": "eu-west-1",
        "eventID": "3f2b6c1e-0000-4000-8000-000000000001",
        "eventName": event_name,
        "userIdentity": identity,
        "recordFormat": "application/json",
        "tableName": "orders",
        "dynamodb": ddb,
        "eventSource": "aws:dynamodb",
    }
    record.update(overrides)
    return record


def item(**attrs: Any) -> dict[str, Any]:
    """An item image: the key attribute plus ``attrs`` (already typed)."""
    return {"pk": {"S": "ORDER#1"}, **attrs}


def b64(payload: bytes | str | dict[str, Any]) -> str:
    if isinstance(payload, dict):
        payload = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    if isinstance(payload, str):
        payload = payload.encode()
    return base64.b64encode(payload).decode()


def firehose_record(data: str, record_id: str, *, kinesis: bool = True) -> dict[str, Any]:
    record: dict[str, Any] = {"recordId": record_id, "approximateArrivalTimestamp": 1_717_171_718_000, "data": data}
    if kinesis:
        record["kinesisRecordMetadata"] = {
            "shardId": SHARD,
            "partitionKey": "4D6F2E0A1B2C3D4E5F60718293A4B5C6",
            "approximateArrivalTimestamp": 1_717_171_718_000,
            "sequenceNumber": SEQ,
            "subsequenceNumber": 0,
        }
    return record


def event(*datas: str, ids: list[str] | None = None, kinesis: bool = True) -> dict[str, Any]:
    ids = ids or [f"rec-{i:05d}" for i in range(len(datas))]
    return {
        "invocationId": "00540a87-5050-496a-84e4-e7d92bbaf5e2",
        "deliveryStreamArn": "arn:aws:firehose:eu-west-1:111122223333:deliverystream/ddb-lake",
        "region": "eu-west-1",
        "sourceKinesisStreamArn": "arn:aws:kinesis:eu-west-1:111122223333:stream/ddb-changes",
        "records": [firehose_record(d, i, kinesis=kinesis) for d, i in zip(datas, ids, strict=True)],
    }


def run(evt: dict[str, Any], **kwargs: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Invoke the transform; return the response and the parsed log lines it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        response = transform_handler.process_event(evt, **kwargs) if kwargs else transform_handler.handler(evt, None)
    logs = [json.loads(line) for line in out.getvalue().splitlines()]
    return response, logs


def decode_line(data: str) -> bytes:
    raw = base64.b64decode(data, validate=True)
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1, "one JSON object per line"
    return raw


def parse_line(data: str) -> dict[str, Any]:
    """Output object with every number as an exact Decimal."""
    return json.loads(decode_line(data), parse_float=Decimal, parse_int=Decimal)


def number_tokens(data: str) -> dict[str, Any]:
    """Output object with every number as its verbatim JSON token text, tagged."""
    return json.loads(decode_line(data), parse_float=lambda t: ("num", t), parse_int=lambda t: ("num", t))


def item_columns(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def transform_one(change: dict[str, Any]) -> dict[str, Any]:
    """Transform a single change record that must succeed; return its parsed output object."""
    response, _ = run(event(b64(change)))
    (result,) = response["records"]
    assert result["result"] == "Ok", result
    return parse_line(result["data"])


# --- the line must be exactly what json.dumps would write -------------------------------------------


class Number(str):
    """A JSON number token kept as its text."""


def canonical(value: Any) -> str:
    """Compact JSON of a parsed line, numbers written back verbatim; json.dumps for everything else."""
    if isinstance(value, Number):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{canonical(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def assert_canonical(line: bytes) -> None:
    text = line.decode("utf-8")
    assert text.endswith("\n")
    parsed = json.loads(text, parse_int=Number, parse_float=Number, object_pairs_hook=pairs_without_duplicates)
    assert canonical(parsed) + "\n" == text


def pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate keys {keys}"
    return dict(pairs)
