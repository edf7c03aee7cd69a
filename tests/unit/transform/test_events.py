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
    "_origin",
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
    assert obj["_origin"] == "stream"


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


@pytest.mark.parametrize("image", [None, {"status": {"S": "PAID"}}], ids=["keys only", "image lacks the key"])
def test_a_map_key_missing_from_the_image_is_flattened_like_an_image_map(image):
    # DynamoDB keys are S, N or B, but a record is input: a map from Keys follows the image rules.
    keys = {
        "pk": {"S": "ORDER#1"},
        "addr": {"M": {"city": {"S": "Oslo"}, "geo": {"M": {"lat": {"N": "59.9"}}}, "none": {"M": {}}}},
        "_k.x": {"L": [{"M": {"a.b": {"S": "c"}}}]},
    }
    from_keys = transform_one(change_record("INSERT", keys=keys, new=image))
    # The same values as image attributes give the same columns.
    as_image = transform_one(change_record("INSERT", keys={"pk": {"S": "ORDER#1"}}, new={**(image or {}), **keys}))
    expected = {
        "pk": "ORDER#1",
        "addr.city": "Oslo",
        "addr.geo.lat": Decimal("59.9"),
        "addr.none": {},
        "%5Fk%2Ex": [{"a.b": "c"}],
    }
    assert {k: v for k, v in item_columns(from_keys).items() if k != "status"} == expected
    assert item_columns(from_keys) == item_columns(as_image)


def test_a_malformed_map_key_names_its_column():
    keys = {"pk": {"S": "ORDER#1"}, "addr": {"M": {"geo": {"M": {"lat": {"N": "x"}}}}}}
    response, logs = run(event(b64(change_record("INSERT", keys=keys, new={"status": {"S": "PAID"}}))))
    assert response["records"][0]["result"] == "ProcessingFailed"
    assert logs[0]["failures"][0]["reason"] == "malformed attribute value at 'addr.geo.lat': N value is not a number"


class TestOrigin:
    def test_a_change_from_dynamodb_is_stream(self):
        obj = transform_one(change_record("MODIFY", new=item()))
        assert obj["_origin"] == "stream"

    @pytest.mark.parametrize("event_name", ["INSERT", "MODIFY", "REMOVE"])
    def test_the_backfill_marker_makes_it_backfill(self, event_name):
        change = change_record(event_name, new=item(a={"S": "x"}), old=item(a={"S": "x"}), ddbLakeOrigin="backfill")
        live = transform_one(change_record(event_name, new=item(a={"S": "x"}), old=item(a={"S": "x"})))
        obj = transform_one(change)
        assert obj["_origin"] == "backfill"
        # The marker changes nothing else: it is no item column, and Kinesis metadata is kept.
        assert {**obj, "_origin": "stream"} == live
        assert (obj["_sequence_number"], obj["_shard_id"]) == (SEQ, SHARD)

    def test_origin_is_the_last_metadata_column(self):
        obj = transform_one(change_record("INSERT", new=item(), ddbLakeOrigin="backfill"))
        assert list(obj)[: len(record.METADATA_COLUMNS)] == list(record.METADATA_COLUMNS)
        assert record.METADATA_COLUMNS[-2:] == ("_is_ttl_delete", "_origin")

    @pytest.mark.parametrize("value", ["stream", "Backfill", "backfill ", "", None, True, 1, ["backfill"], {}])
    def test_any_other_marker_value_fails_the_record(self, value):
        data = b64(change_record("INSERT", new=item(), ddbLakeOrigin=value))
        response, logs = run(event(data))
        assert response["records"][0] == {"recordId": "rec-00000", "result": "ProcessingFailed", "data": data}
        assert logs[0]["failures"][0]["reason"] == "ddbLakeOrigin must be 'backfill' when present"


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
        b'"_shard_id":"shardId-000000000003","_is_deleted":false,"_is_ttl_delete":false,"_origin":"stream",'
        b'"pk":"ORDER#1","a":"x"}\n'
    )
