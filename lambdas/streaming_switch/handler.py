"""``Custom::KinesisStreamingDestination``: turns an existing DynamoDB table's Kinesis streaming destination on
(and waits until it is ``ACTIVE``) or off, behind CDK's custom-resource ``Provider`` framework.

Standard library and boto3 only (the Lambda runtime's). Two entry points:

- ``on_event`` (Create/Update/Delete) starts the change and returns the physical ID ``<table>-><stream ARN>``;
- ``is_complete`` (called right after, then every query interval) reports when it is done, and fails the
  deployment with DynamoDB's own reason when the destination ends ``ENABLE_FAILED``.

``EnableKinesisStreamingDestination`` returns while the destination is still ``ENABLING``; its outcome is read with
``DescribeKinesisStreamingDestination`` (statuses ENABLING | ACTIVE | DISABLING | DISABLED | ENABLE_FAILED | UPDATING,
``DestinationStatusDescription`` the reason):
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_EnableKinesisStreamingDestination.html,
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_KinesisDataStreamDestination.html.

Transitions (the pair is the table and the stream ARN):
- Create: enable the pair, unless it is already ACTIVE/ENABLING/UPDATING (a pair turned on by hand or by an earlier
  attempt is success, not an error); a stale ENABLE_FAILED or DISABLED is enabled again.
- Update keeping the pair: nothing at all (same physical ID).
- Update to another pair: the new pair is enabled under a new physical ID, so CloudFormation deletes the old
  resource afterwards, which disables the old pair. A table streams to one Kinesis stream at a time
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/kds.html), so when only the stream changes
  the old stream is disabled first. A rollback is the same Update in the other direction and goes the same way.
- Delete: disable the pair if it is ACTIVE (waiting out ENABLING/UPDATING first); a table that is gone or a
  pair that is not enabled is already deleted.
"""

from __future__ import annotations

import os
import time
from typing import Any

import boto3
from botocore.exceptions import ClientError

PRECISION = "MICROSECOND"
RESOURCE_TYPE = "Custom::KinesisStreamingDestination"
# Statuses in which DynamoDB is still working on the pair.
BUSY = ("ENABLING", "UPDATING", "DISABLING")
STREAMING = ("ACTIVE", "ENABLING", "UPDATING")
POLL_SECONDS = 5.0
# on_event waits for an old destination to leave DISABLING within its own Lambda timeout, keeping this margin.
MARGIN_MS = 30_000
# Errors that mean "DynamoDB is busy with this table, ask again later", not "this cannot be done".
RETRYABLE = ("ResourceInUseException", "LimitExceededException")

sleep = time.sleep  # replaced in tests


def client() -> Any:
    return boto3.client("dynamodb", region_name=os.environ.get("AWS_REGION"))


class Pair:
    def __init__(self, properties: dict[str, Any]) -> None:
        self.table = str(properties["TableName"])
        self.stream = str(properties["StreamArn"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pair) and (self.table, self.stream) == (other.table, other.stream)

    def __hash__(self) -> int:
        return hash((self.table, self.stream))

    @property
    def physical_id(self) -> str:
        return f"{self.table}->{self.stream}"

    def __str__(self) -> str:
        return f"table {self.table} -> stream {self.stream}"


def destination(ddb: Any, table: str, stream: str) -> dict[str, Any] | None:
    """The table's destination for ``stream`` (DescribeKinesisStreamingDestination), or None when it has none.
    Raises ClientError ResourceNotFoundException when the table does not exist."""
    found = ddb.describe_kinesis_streaming_destination(TableName=table)
    for item in found.get("KinesisDataStreamDestinations", []):
        if item.get("StreamArn") == stream:
            return item
    return None


def _status(item: dict[str, Any] | None) -> str | None:
    return None if item is None else item.get("DestinationStatus")


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _check(event: dict[str, Any]) -> None:
    if event.get("ResourceType") != RESOURCE_TYPE:
        raise ValueError(f"this provider serves {RESOURCE_TYPE} only, not {event.get('ResourceType')!r}")


def _released_stream(event: dict[str, Any], pair: Pair) -> str | None:
    """On an Update that keeps the table but changes the stream: the old stream, which must be disabled first."""
    if event["RequestType"] != "Update":
        return None
    old = Pair(event["OldResourceProperties"])
    return old.stream if old.table == pair.table and old.stream != pair.stream else None


def _wait_while_busy(ddb: Any, table: str, stream: str, context: Any) -> dict[str, Any] | None:
    """Poll until the pair is no longer ENABLING/UPDATING/DISABLING, within this invocation's remaining time."""
    while True:
        item = destination(ddb, table, stream)
        if _status(item) not in BUSY:
            return item
        if context is None or context.get_remaining_time_in_millis() < MARGIN_MS + POLL_SECONDS * 1000:
            raise RuntimeError(
                f"table {table} -> stream {stream} is still {_status(item)}; retry the deployment when it is not"
            )
        sleep(POLL_SECONDS)


def _disable_and_wait(ddb: Any, table: str, stream: str, context: Any) -> None:
    item = _wait_while_busy(ddb, table, stream, context)
    if _status(item) == "ACTIVE":
        ddb.disable_kinesis_streaming_destination(TableName=table, StreamArn=stream)
        _wait_while_busy(ddb, table, stream, context)


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _check(event)
    request = event["RequestType"]
    pair = Pair(event["ResourceProperties"])
    print(f"{request} {pair}")  # the provider log group is the audit trail
    if request == "Delete":
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    if request == "Update" and Pair(event["OldResourceProperties"]) == pair:
        # Same pair: nothing to do, same physical ID, so CloudFormation deletes nothing either.
        return {"PhysicalResourceId": event["PhysicalResourceId"], "Data": {"Changed": "false"}}
    ddb = client()
    released = _released_stream(event, pair)
    if released:
        _disable_and_wait(ddb, pair.table, released, context)
    item = destination(ddb, pair.table, pair.stream)
    if _status(item) == "DISABLING":
        item = _wait_while_busy(ddb, pair.table, pair.stream, context)
    if _status(item) not in STREAMING:
        ddb.enable_kinesis_streaming_destination(
            TableName=pair.table,
            StreamArn=pair.stream,
            EnableKinesisStreamingConfiguration={"ApproximateCreationDateTimePrecision": PRECISION},
        )
    return {"PhysicalResourceId": pair.physical_id, "Data": {"Changed": "true"}}


def is_complete(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _check(event)
    request = event["RequestType"]
    pair = Pair(event["ResourceProperties"])
    if request == "Update" and Pair(event["OldResourceProperties"]) == pair:
        return {"IsComplete": True}
    ddb = client()
    if request == "Delete":
        return {"IsComplete": _disabled(ddb, pair)}
    try:
        item = destination(ddb, pair.table, pair.stream)
    except ClientError as error:
        if _code(error) == "ResourceNotFoundException":
            raise RuntimeError(f"table {pair.table} does not exist (DynamoDB: {error})") from None
        raise
    status = _status(item)
    if status == "ACTIVE":
        if item and item.get("ApproximateCreationDateTimePrecision", "MILLISECOND") != PRECISION:
            # Enabled before at millisecond precision: the lake orders changes by this timestamp.
            ddb.update_kinesis_streaming_destination(
                TableName=pair.table,
                StreamArn=pair.stream,
                UpdateKinesisStreamingConfiguration={"ApproximateCreationDateTimePrecision": PRECISION},
            )
            return {"IsComplete": False}
        return {"IsComplete": True}
    if status in ("ENABLING", "UPDATING"):
        return {"IsComplete": False}
    if status == "ENABLE_FAILED":
        reason = (item or {}).get("DestinationStatusDescription") or "DynamoDB gave no reason"
        raise RuntimeError(f"streaming {pair} ended ENABLE_FAILED: {reason}")
    raise RuntimeError(f"streaming {pair} is {status or 'not configured'} after it was enabled")


def _disabled(ddb: Any, pair: Pair) -> bool:
    try:
        item = destination(ddb, pair.table, pair.stream)
    except ClientError as error:
        if _code(error) == "ResourceNotFoundException":
            return True  # the table is gone: nothing streams from it
        raise
    status = _status(item)
    if status == "ACTIVE":
        try:
            ddb.disable_kinesis_streaming_destination(TableName=pair.table, StreamArn=pair.stream)
        except ClientError as error:
            if _code(error) not in RETRYABLE:
                raise
        return False
    # ENABLING/UPDATING become ACTIVE (then disabled), DISABLING becomes DISABLED; the rest is off already.
    return status not in BUSY
