"""The streaming switch's handlers (lambdas/streaming_switch/handler.py) against a stubbed DynamoDB client: every
call it makes is listed with its exact parameters, and Stubber fails the test on any other call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lambdas.streaming_switch import handler

TABLE = "legacy-customers-prod"
STREAM = "arn:aws:kinesis:eu-west-1:333333333333:stream/ddblake-customers-changes"
OTHER_STREAM = "arn:aws:kinesis:eu-west-1:333333333333:stream/other-changes"
PAIR = {"TableName": TABLE, "StreamArn": STREAM}
PHYSICAL_ID = f"{TABLE}->{STREAM}"
ENABLE = {
    "TableName": TABLE,
    "StreamArn": STREAM,
    "EnableKinesisStreamingConfiguration": {"ApproximateCreationDateTimePrecision": "MICROSECOND"},
}


class Context:
    """Lambda's context: only the remaining time matters (on_event waits within it)."""

    def __init__(self, remaining_ms: int = 600_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def ddb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client("dynamodb", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    monkeypatch.setattr(handler, "client", lambda: client)
    slept: list[float] = []
    monkeypatch.setattr(handler, "sleep", slept.append)
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


def event(request: str, old: dict[str, str] | None = None, physical_id: str | None = PHYSICAL_ID, **props: str):
    body: dict[str, Any] = {
        "RequestType": request,
        "ResourceType": "Custom::KinesisStreamingDestination",
        "ResourceProperties": {"ServiceToken": "arn:token", **PAIR, **props},
    }
    if request != "Create":
        body["PhysicalResourceId"] = physical_id
    if old is not None:
        body["OldResourceProperties"] = {"ServiceToken": "arn:token", **old}
    return body


def describe(stubber: Stubber, *destinations: dict[str, str], table: str = TABLE) -> None:
    stubber.add_response(
        "describe_kinesis_streaming_destination",
        {"TableName": table, "KinesisDataStreamDestinations": list(destinations)},
        {"TableName": table},
    )


def dest(status: str, stream: str = STREAM, precision: str = "MICROSECOND", **extra: str) -> dict[str, str]:
    return {
        "StreamArn": stream,
        "DestinationStatus": status,
        "ApproximateCreationDateTimePrecision": precision,
        **extra,
    }


def enable(stubber: Stubber, **params: Any) -> None:
    stubber.add_response(
        "enable_kinesis_streaming_destination",
        {"TableName": TABLE, "StreamArn": STREAM, "DestinationStatus": "ENABLING"},
        {**ENABLE, **params},
    )


def disable(stubber: Stubber, stream: str = STREAM, table: str = TABLE) -> None:
    stubber.add_response(
        "disable_kinesis_streaming_destination",
        {"TableName": table, "StreamArn": stream, "DestinationStatus": "DISABLING"},
        {"TableName": table, "StreamArn": stream},
    )


# --- Create -------------------------------------------------------------------------------------------------


def test_create_enables_at_microsecond_precision_and_names_the_pair(ddb):
    describe(ddb)  # no destination yet
    enable(ddb)
    result = handler.on_event(event("Create"), Context())
    assert result["PhysicalResourceId"] == PHYSICAL_ID


def test_create_is_complete_only_once_active(ddb):
    describe(ddb, dest("ENABLING"))
    assert handler.is_complete(event("Create"), Context()) == {"IsComplete": False}
    describe(ddb, dest("ACTIVE"))
    assert handler.is_complete(event("Create"), Context()) == {"IsComplete": True}


def test_enable_failed_fails_the_deployment_with_dynamodbs_reason(ddb):
    reason = "User: arn:aws:sts::333333333333:assumed-role/x is not authorized to perform: kms:GenerateDataKey"
    describe(ddb, dest("ENABLE_FAILED", DestinationStatusDescription=reason))
    with pytest.raises(RuntimeError) as raised:
        handler.is_complete(event("Create"), Context())
    assert str(raised.value) == f"streaming table {TABLE} -> stream {STREAM} ended ENABLE_FAILED: {reason}"


def test_create_of_an_already_active_pair_is_success_without_enabling(ddb):
    describe(ddb, dest("ACTIVE"))  # no enable call is stubbed: Stubber would fail on one
    assert handler.on_event(event("Create"), Context())["PhysicalResourceId"] == PHYSICAL_ID
    describe(ddb, dest("ACTIVE"))
    assert handler.is_complete(event("Create"), Context()) == {"IsComplete": True}


def test_create_after_an_earlier_enable_failed_enables_again(ddb):
    describe(ddb, dest("ENABLE_FAILED", DestinationStatusDescription="earlier attempt"))
    enable(ddb)
    handler.on_event(event("Create"), Context())


def test_create_waits_for_a_disabling_pair_before_enabling(ddb):
    describe(ddb, dest("DISABLING"))
    describe(ddb, dest("DISABLING"))
    describe(ddb, dest("DISABLED"))
    enable(ddb)
    handler.on_event(event("Create"), Context())


def test_active_at_millisecond_precision_is_raised_to_microseconds(ddb):
    describe(ddb, dest("ACTIVE", precision="MILLISECOND"))
    ddb.add_response(
        "update_kinesis_streaming_destination",
        {"TableName": TABLE, "StreamArn": STREAM, "DestinationStatus": "UPDATING"},
        {
            "TableName": TABLE,
            "StreamArn": STREAM,
            "UpdateKinesisStreamingConfiguration": {"ApproximateCreationDateTimePrecision": "MICROSECOND"},
        },
    )
    assert handler.is_complete(event("Create"), Context()) == {"IsComplete": False}
    describe(ddb, dest("UPDATING"))
    assert handler.is_complete(event("Create"), Context()) == {"IsComplete": False}
    describe(ddb, dest("ACTIVE"))
    assert handler.is_complete(event("Create"), Context()) == {"IsComplete": True}


def test_create_on_a_missing_table_fails_with_the_table_named(ddb):
    describe(ddb)
    enable(ddb)
    handler.on_event(event("Create"), Context())
    ddb.add_client_error(
        "describe_kinesis_streaming_destination", "ResourceNotFoundException", "Requested resource not found"
    )
    with pytest.raises(RuntimeError, match=f"table {TABLE} does not exist"):
        handler.is_complete(event("Create"), Context())


def test_destination_disabled_by_someone_else_while_enabling_fails(ddb):
    describe(ddb, dest("DISABLED"))
    with pytest.raises(RuntimeError, match="is DISABLED after it was enabled"):
        handler.is_complete(event("Create"), Context())


# --- Update -------------------------------------------------------------------------------------------------


def test_update_keeping_the_pair_is_a_no_op(ddb):
    # Stubber has no responses: any DynamoDB call fails the test. The physical ID is kept as it was.
    same = event("Update", old=PAIR, physical_id="as-created-before")
    assert handler.on_event(same, Context()) == {
        "PhysicalResourceId": "as-created-before",
        "Data": {"Changed": "false"},
    }
    assert handler.is_complete(same, Context()) == {"IsComplete": True}


def test_update_to_another_table_enables_the_new_pair_under_a_new_id(ddb):
    old = {"TableName": "old-table", "StreamArn": STREAM}
    describe(ddb)
    enable(ddb)
    result = handler.on_event(event("Update", old=old, physical_id=f"old-table->{STREAM}"), Context())
    # A new physical ID: CloudFormation then deletes the old resource, which disables the old pair.
    assert result["PhysicalResourceId"] == PHYSICAL_ID
    describe(ddb, dest("ACTIVE"))
    assert handler.is_complete(event("Update", old=old), Context()) == {"IsComplete": True}


def test_update_to_another_stream_of_the_same_table_disables_the_old_one_first(ddb):
    old = {"TableName": TABLE, "StreamArn": OTHER_STREAM}
    describe(ddb, dest("ACTIVE", stream=OTHER_STREAM))
    disable(ddb, stream=OTHER_STREAM)
    describe(ddb, dest("DISABLING", stream=OTHER_STREAM))
    describe(ddb, dest("DISABLED", stream=OTHER_STREAM))
    describe(ddb, dest("DISABLED", stream=OTHER_STREAM))  # the new stream has no destination yet
    enable(ddb)
    result = handler.on_event(event("Update", old=old, physical_id=f"{TABLE}->{OTHER_STREAM}"), Context())
    assert result["PhysicalResourceId"] == PHYSICAL_ID


def test_rollback_of_a_failed_update_re_enables_the_old_pair(ddb):
    # The update to OTHER_STREAM (same table) ended ENABLE_FAILED; CloudFormation rolls back with an Update whose
    # properties are the old pair again. The failed destination is not disabled (not ACTIVE), the old one enabled.
    rollback = event("Update", old={"TableName": TABLE, "StreamArn": OTHER_STREAM})
    describe(ddb, dest("ENABLE_FAILED", stream=OTHER_STREAM), dest("DISABLED"))
    describe(ddb, dest("ENABLE_FAILED", stream=OTHER_STREAM), dest("DISABLED"))
    enable(ddb)
    assert handler.on_event(rollback, Context())["PhysicalResourceId"] == PHYSICAL_ID
    describe(ddb, dest("ENABLE_FAILED", stream=OTHER_STREAM), dest("ACTIVE"))
    assert handler.is_complete(rollback, Context()) == {"IsComplete": True}


def test_old_stream_stuck_disabling_fails_before_the_lambda_times_out(ddb):
    old = {"TableName": TABLE, "StreamArn": OTHER_STREAM}
    describe(ddb, dest("DISABLING", stream=OTHER_STREAM))
    with pytest.raises(RuntimeError, match="still DISABLING; retry the deployment"):
        handler.on_event(event("Update", old=old), Context(remaining_ms=20_000))


# --- Delete -------------------------------------------------------------------------------------------------


def test_delete_disables_an_active_pair_and_completes_once_disabled(ddb):
    assert handler.on_event(event("Delete"), Context()) == {"PhysicalResourceId": PHYSICAL_ID}
    describe(ddb, dest("ACTIVE"))
    disable(ddb)
    assert handler.is_complete(event("Delete"), Context()) == {"IsComplete": False}
    describe(ddb, dest("DISABLING"))
    assert handler.is_complete(event("Delete"), Context()) == {"IsComplete": False}
    describe(ddb, dest("DISABLED"))
    assert handler.is_complete(event("Delete"), Context()) == {"IsComplete": True}


def test_delete_of_a_missing_table_succeeds(ddb):
    ddb.add_client_error(
        "describe_kinesis_streaming_destination", "ResourceNotFoundException", "Requested resource not found"
    )
    assert handler.is_complete(event("Delete"), Context()) == {"IsComplete": True}


@pytest.mark.parametrize(
    "destinations", [[], [dest("DISABLED")], [dest("ENABLE_FAILED")], [dest("ACTIVE", OTHER_STREAM)]]
)
def test_delete_of_a_pair_that_is_not_enabled_succeeds_without_touching_anything(ddb, destinations):
    # Someone turned it off already, the create failed, or the table streams elsewhere: nothing to disable.
    describe(ddb, *destinations)
    assert handler.is_complete(event("Delete"), Context()) == {"IsComplete": True}


def test_delete_while_enabling_waits_then_disables(ddb):
    describe(ddb, dest("ENABLING"))
    assert handler.is_complete(event("Delete"), Context()) == {"IsComplete": False}
    describe(ddb, dest("ACTIVE"))
    ddb.add_client_error("disable_kinesis_streaming_destination", "ResourceInUseException", "busy")
    assert handler.is_complete(event("Delete"), Context()) == {"IsComplete": False}
    describe(ddb, dest("ACTIVE"))
    disable(ddb)
    assert handler.is_complete(event("Delete"), Context()) == {"IsComplete": False}


def test_delete_fails_on_access_denied(ddb):
    ddb.add_client_error("describe_kinesis_streaming_destination", "AccessDeniedException", "no")
    with pytest.raises(Exception, match="AccessDeniedException"):
        handler.is_complete(event("Delete"), Context())


def test_other_resource_types_are_refused(ddb):
    bad = {**event("Create"), "ResourceType": "Custom::Other"}
    with pytest.raises(ValueError, match="serves Custom::KinesisStreamingDestination only"):
        handler.on_event(bad, Context())
    with pytest.raises(ValueError):
        handler.is_complete(bad, Context())
