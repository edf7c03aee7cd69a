"""Event kinds, images, metadata columns and timestamps."""

import base64
from decimal import Decimal

import pytest

from lambdas.transform import record

from .builders import (
    SEQ,
    SHARD,
    TS_MICROS,
    TS_MILLIS,
    TTL_IDENTITY,
    b64,
    change_record,
    event,
    item,
    item_columns,
    parse_line,
    run,
    transform_one,
)

METADATA = {
    "_event_name",
    "_event_id",
    "_table_name",
    "_aws_region",
    "_approximate_creation_time",
    "_sequence_number",
    "_shard_id",
    "_is_deleted",
    "_is_ttl_delete",
}


def test_metadata_columns_are_exactly_the_documented_set():
    assert set(record.METADATA_COLUMNS) == METADATA
    obj = transform_one(change_record("INSERT", new=item(status={"S": "PAID"})))
    assert {k for k in obj if k.startswith("_")} == METADATA
    assert obj["_event_name"] == "INSERT"
    assert obj["_event_id"] == "3f2b6c1e-0000-4000-8000-000000000001"
    assert obj["_table_name"] == "orders"
    assert obj["_aws_region"] == "eu-west-1"
    assert obj["_approximate_creation_time"] == "2024-05-31T16:08:37.123456Z"
    assert obj["_sequence_number"] == SEQ
    assert obj["_shard_id"] == SHARD
    assert obj["_is_deleted"] is False
    assert obj["_is_ttl_delete"] is False


def test_insert_uses_new_image():
    obj = transform_one(change_record("INSERT", new=item(status={"S": "NEW"})))
    assert item_columns(obj) == {"pk": "ORDER#1", "status": "NEW"}


def test_modify_uses_new_image_not_old():
    obj = transform_one(
        change_record("MODIFY", new=item(status={"S": "NEW"}), old=item(status={"S": "OLD"}, gone={"N": "1"}))
    )
    assert obj["_event_name"] == "MODIFY"
    assert item_columns(obj) == {"pk": "ORDER#1", "status": "NEW"}
    assert obj["_is_deleted"] is False


def test_remove_uses_old_image_and_sets_deleted():
    obj = transform_one(change_record("REMOVE", old=item(status={"S": "LAST"})))
    assert item_columns(obj) == {"pk": "ORDER#1", "status": "LAST"}
    assert obj["_is_deleted"] is True
    assert obj["_is_ttl_delete"] is False


def test_ttl_delete_by_the_dynamodb_service_principal():
    obj = transform_one(change_record("REMOVE", old=item(ttl={"N": "1717171717"}), identity=TTL_IDENTITY))
    assert obj["_is_deleted"] is True
    assert obj["_is_ttl_delete"] is True


@pytest.mark.parametrize(
    "identity",
    [
        None,
        {"type": "Service", "principalId": "someone-else.amazonaws.com"},
        {"type": "User", "principalId": "dynamodb.amazonaws.com"},
        "dynamodb.amazonaws.com",
    ],
)
def test_other_removes_are_not_ttl_deletes(identity):
    obj = transform_one(change_record("REMOVE", old=item(), identity=identity))
    assert obj["_is_deleted"] is True
    assert obj["_is_ttl_delete"] is False


def test_service_identity_on_a_non_remove_is_not_a_ttl_delete():
    obj = transform_one(change_record("MODIFY", new=item(), identity=TTL_IDENTITY))
    assert obj["_is_ttl_delete"] is False


@pytest.mark.parametrize(
    ("event_name", "present"),
    [("REMOVE", {"new": {"pk": {"S": "ORDER#1"}, "x": {"S": "new"}}}), ("INSERT", {}), ("MODIFY", {})],
)
def test_missing_image_falls_back_to_keys(event_name, present):
    # KEYS_ONLY views, or OLD_IMAGE/NEW_IMAGE views lacking the image this event uses.
    keys = {"pk": {"S": "ORDER#1"}, "sk": {"N": "3"}}
    obj = transform_one(change_record(event_name, keys=keys, **present))
    assert item_columns(obj) == {"pk": "ORDER#1", "sk": Decimal(3)}


def test_keys_are_merged_when_the_image_lacks_them():
    keys = {"pk": {"S": "ORDER#1"}, "sk": {"S": "LINE#2"}}
    obj = transform_one(change_record("INSERT", keys=keys, new={"status": {"S": "PAID"}}))
    assert item_columns(obj) == {"status": "PAID", "pk": "ORDER#1", "sk": "LINE#2"}


def test_image_value_of_a_key_attribute_wins_and_appears_once():
    keys = {"pk": {"S": "ORDER#1"}}
    obj = transform_one(change_record("INSERT", keys=keys, new={"pk": {"S": "ORDER#1"}, "a": {"S": "b"}}))
    assert item_columns(obj) == {"pk": "ORDER#1", "a": "b"}


class TestTimestamps:
    @pytest.mark.parametrize(
        ("value", "iso"),
        [
            (TS_MICROS, "2024-05-31T16:08:37.123456Z"),
            (TS_MILLIS, "2024-05-31T16:08:37.123000Z"),
            (1_717_171_717, "2024-05-31T16:08:37.000000Z"),  # DynamoDB Streams style seconds
            (1_717_171_717.5, "2024-05-31T16:08:37.500000Z"),
            (1_717_171_717_123.0, "2024-05-31T16:08:37.123000Z"),
            (100_000_000_000_000, "1973-03-03T09:46:40.000000Z"),  # smallest microsecond value
            (99_999_999_999_999, "5138-11-16T09:46:39.999000Z"),  # largest millisecond value
            (0, "1970-01-01T00:00:00.000000Z"),
            (1_000_000_000_000, "2001-09-09T01:46:40.000000Z"),
        ],
    )
    def test_precision_is_detected_by_magnitude(self, value, iso):
        assert record.iso_from_epoch(value) == iso

    def test_both_precisions_end_to_end(self):
        for ts, iso in ((TS_MICROS, "2024-05-31T16:08:37.123456Z"), (TS_MILLIS, "2024-05-31T16:08:37.123000Z")):
            obj = transform_one(change_record("INSERT", new=item(), timestamp=ts))
            assert obj["_approximate_creation_time"] == iso

    def test_precision_field_does_not_override_magnitude(self):
        change = change_record("INSERT", new=item(), timestamp=TS_MILLIS)
        change["dynamodb"]["ApproximateCreationDateTimePrecision"] = "MICROSECOND"
        assert transform_one(change)["_approximate_creation_time"] == "2024-05-31T16:08:37.123000Z"

    def test_cached_second_text_does_not_leak_between_fractions(self):
        first = record.iso_from_epoch(TS_MICROS)
        assert record.iso_from_epoch(TS_MICROS + 1) == first[:-7] + "123457Z"


def test_records_without_kinesis_metadata_have_null_ordering_columns():
    change = change_record("INSERT", new=item())
    response, _ = run(event(b64(change), kinesis=False))
    obj = parse_line(response["records"][0]["data"])
    assert obj["_sequence_number"] is None
    assert obj["_shard_id"] is None


def test_output_line_is_compact_and_metadata_comes_first():
    change = change_record("INSERT", new=item(a={"S": "x"}))
    response, _ = run(event(b64(change)))
    raw = base64.b64decode(response["records"][0]["data"])
    assert raw == (
        b'{"_event_name":"INSERT","_event_id":"3f2b6c1e-0000-4000-8000-000000000001","_table_name":"orders",'
        b'"_aws_region":"eu-west-1","_approximate_creation_time":"2024-05-31T16:08:37.123456Z",'
        b'"_sequence_number":"49650000000000000000000000000000000000000000000000000001",'
        b'"_shard_id":"shardId-000000000003","_is_deleted":false,"_is_ttl_delete":false,'
        b'"pk":"ORDER#1","a":"x"}\n'
    )
