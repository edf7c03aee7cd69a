"""Every bad-record class of the contract (docs/transform-contract.md, *Failures*) fails with exactly its reason.

test_failures.py proves that one bad record fails alone with its data unchanged; this file pins WHICH reason each
class gets, in the handler's log line, so a change that fails a record for the wrong reason (or as an "internal
error") is caught.
"""

import base64
import json

import pytest

from lambdas.transform import record
from lambdas.transform.replay import transform_record

from .builders import b64, change_record, event, item, run

NOT_A_CHANGE = "not a DynamoDB change record: "
NOT_ONE_TAG = "attribute value is not an object with exactly one type tag"


def _without(rec, field):
    return {k: v for k, v in rec.items() if k != field}


def _with_ddb(event_name="INSERT", **changes):
    rec = change_record(event_name, new=item(), old=item() if event_name == "REMOVE" else None)
    rec["dynamodb"].update(changes)
    return rec


def _json(rec) -> str:
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":"))


BASE = change_record("INSERT", new=item())
BASE_TEXT = _json(BASE)


def _data(payload) -> str:
    """Firehose ``data`` for a change record (dict), raw text (str) or raw bytes."""
    return b64(payload if isinstance(payload, bytes | dict) else payload.encode())


# (label, data, exact reason): the record-level classes, in the contract's table order.
RECORD_CASES = [
    ("invalid base64 characters", "!!!!", "data is not valid base64"),
    ("base64 without padding", "QQ", "data is not valid base64"),
    ("base64 with a line break", "QQ==\nQQ==", "data is not valid base64"),
    ("not UTF-8", base64.b64encode(b"\xff\xfe{}").decode(), "data is not valid UTF-8"),
    ("not JSON", _data("{this is not json"), "data is not JSON"),
    ("empty data", "", "data is not JSON"),
    ("an object followed by text", _data(BASE_TEXT + "xyz"), "data is not JSON"),
    ("two objects back to back", _data(BASE_TEXT + BASE_TEXT), "data is not JSON"),
    ("two objects separated by a newline", _data(BASE_TEXT + "\n" + BASE_TEXT), "data is not JSON"),
    ("an object followed by a comma", _data(BASE_TEXT + ","), "data is not JSON"),
    ("a truncated object", _data(BASE_TEXT[:-1]), "data is not JSON"),
    ("nested too deeply to parse", _data("[" * 200_000 + "]" * 200_000), "data is nested too deeply"),
    ("a JSON array", _data("[1, 2]"), NOT_A_CHANGE + "data is not a JSON object"),
    ("a JSON string", _data('"INSERT"'), NOT_A_CHANGE + "data is not a JSON object"),
    ("JSON null", _data("null"), NOT_A_CHANGE + "data is not a JSON object"),
    (
        "eventSource another service",
        _data({**BASE, "eventSource": "aws:kinesis"}),
        NOT_A_CHANGE + "eventSource is not aws:dynamodb",
    ),
    ("eventSource missing", _data(_without(BASE, "eventSource")), NOT_A_CHANGE + "eventSource is not aws:dynamodb"),
    ("eventName unknown", _data({**BASE, "eventName": "UPSERT"}), "unknown eventName"),
    ("eventName lower case", _data({**BASE, "eventName": "insert"}), "unknown eventName"),
    ("eventName missing", _data(_without(BASE, "eventName")), "unknown eventName"),
    ("eventName not a string", _data({**BASE, "eventName": ["INSERT"]}), "unknown eventName"),
    ("no dynamodb object", _data(_without(BASE, "dynamodb")), NOT_A_CHANGE + "no dynamodb object"),
    ("dynamodb not an object", _data({**BASE, "dynamodb": [BASE["dynamodb"]]}), NOT_A_CHANGE + "no dynamodb object"),
    ("Keys missing", _data({**BASE, "dynamodb": _without(BASE["dynamodb"], "Keys")}), NOT_A_CHANGE + "no Keys"),
    ("Keys null", _data(_with_ddb(Keys=None)), NOT_A_CHANGE + "no Keys"),
    ("Keys empty", _data(_with_ddb(Keys={})), NOT_A_CHANGE + "no Keys"),
    ("Keys a list", _data(_with_ddb(Keys=[{"pk": {"S": "x"}}])), NOT_A_CHANGE + "no Keys"),
    *[
        (
            f"only {field} missing",
            _data(_without(BASE, field)),
            NOT_A_CHANGE + "eventID, tableName or awsRegion missing",
        )
        for field in ("eventID", "tableName", "awsRegion")
    ],
    *[
        (f"{field} a number", _data({**BASE, field: 7}), NOT_A_CHANGE + "eventID, tableName or awsRegion missing")
        for field in ("eventID", "tableName", "awsRegion")
    ],
    ("NewImage not an object", _data(_with_ddb(NewImage=[1])), NOT_A_CHANGE + "NewImage is not an object"),
    ("NewImage a string", _data(_with_ddb(NewImage="x")), NOT_A_CHANGE + "NewImage is not an object"),
    (
        "OldImage of a REMOVE not an object",
        _data(_with_ddb("REMOVE", OldImage=[1])),
        NOT_A_CHANGE + "OldImage is not an object",
    ),
    *[
        (
            f"ddbLakeOrigin {value!r}",
            _data({**BASE, "ddbLakeOrigin": value}),
            "ddbLakeOrigin must be 'backfill' when present",
        )
        for value in (None, "stream", "Backfill", "", ["backfill"], True)
    ],
    (
        "timestamp missing",
        _data({**BASE, "dynamodb": _without(BASE["dynamodb"], "ApproximateCreationDateTime")}),
        "ApproximateCreationDateTime is not a number",
    ),
    (
        "timestamp a string",
        _data(_with_ddb(ApproximateCreationDateTime="1717171717123")),
        "ApproximateCreationDateTime is not a number",
    ),
    (
        "timestamp a boolean",
        _data(_with_ddb(ApproximateCreationDateTime=True)),
        "ApproximateCreationDateTime is not a number",
    ),
    (
        "timestamp null",
        _data(_with_ddb(ApproximateCreationDateTime=None)),
        "ApproximateCreationDateTime is not a number",
    ),
    (
        "timestamp NaN",
        _data(BASE_TEXT.replace("1717171717123456", "NaN")),
        "ApproximateCreationDateTime is not a number",
    ),
    (
        "timestamp Infinity",
        _data(BASE_TEXT.replace("1717171717123456", "Infinity")),
        "ApproximateCreationDateTime is not a number",
    ),
    ("timestamp -1", _data(_with_ddb(ApproximateCreationDateTime=-1)), "ApproximateCreationDateTime is negative"),
    ("timestamp -0.5", _data(_with_ddb(ApproximateCreationDateTime=-0.5)), "ApproximateCreationDateTime is negative"),
    (
        "timestamp past 9999",
        _data(_with_ddb(ApproximateCreationDateTime=253_402_300_800_000_000)),
        "ApproximateCreationDateTime is out of range",
    ),
    (
        "timestamp 10**22",
        _data(_with_ddb(ApproximateCreationDateTime=10**22)),
        "ApproximateCreationDateTime is out of range",
    ),
    (
        "timestamp 1e22",
        _data(_with_ddb(ApproximateCreationDateTime=1e22)),
        "ApproximateCreationDateTime is out of range",
    ),
    (
        "unpaired surrogate in a value",
        _data(json.dumps(change_record("INSERT", new=item(s={"S": "\ud800"})))),
        "string contains an unpaired surrogate",
    ),
    (
        "unpaired surrogate in a name",
        _data(json.dumps(change_record("INSERT", new=item(**{"\udc00": {"S": "x"}})))),
        "string contains an unpaired surrogate",
    ),
    (
        "unpaired surrogate in the event ID",
        _data(json.dumps({**BASE, "eventID": "\ud800"})),
        "string contains an unpaired surrogate",
    ),
]


@pytest.mark.parametrize(("label", "data", "reason"), RECORD_CASES, ids=[c[0] for c in RECORD_CASES])
def test_each_bad_record_class_fails_with_its_documented_reason(label, data, reason):
    response, logs = run(event(data))
    assert response["records"][0]["result"] == "ProcessingFailed"
    assert response["records"][0]["data"] == data
    assert logs[0]["failures"] == [{"recordId": "rec-00000", "reason": reason}]


# Malformed attribute values: (label, typed value, reason after "malformed attribute value at '<column>': ").
VALUE_CASES = [
    ("no type tag", {}, NOT_ONE_TAG),
    ("two type tags", {"S": "a", "N": "1"}, NOT_ONE_TAG),
    ("a plain string", "plain", NOT_ONE_TAG),
    ("a list", [{"S": "a"}], NOT_ONE_TAG),
    ("null", None, NOT_ONE_TAG),
    ("unknown tag", {"X": "1"}, "unknown type tag"),
    ("lower-case tag", {"s": "a"}, "unknown type tag"),
    ("S a number", {"S": 12}, "S value is not a string"),
    ("S null", {"S": None}, "S value is not a string"),
    ("N letters", {"N": "12abc"}, "N value is not a number"),
    ("N a JSON number", {"N": 12}, "N value is not a number"),
    ("N empty", {"N": ""}, "N value is not a number"),
    ("N a sign only", {"N": "-"}, "N value is not a number"),
    ("N a dot only", {"N": "."}, "N value is not a number"),
    ("N NaN", {"N": "NaN"}, "N value is not a number"),
    ("N with a space", {"N": "1 "}, "N value is not a number"),
    ("N non-ASCII digits", {"N": "\u0661\u0662"}, "N value is not a number"),
    ("N exponent without digits", {"N": "1e"}, "N value is not a number"),
    ("BOOL a string", {"BOOL": "true"}, "BOOL value is not a boolean"),
    ("BOOL a number", {"BOOL": 1}, "BOOL value is not a boolean"),
    ("BOOL null", {"BOOL": None}, "BOOL value is not a boolean"),
    ("NULL false", {"NULL": False}, "NULL value is not true"),
    ("NULL one", {"NULL": 1}, "NULL value is not true"),
    ("B a number", {"B": 5}, "B value is not a string"),
    ("B not base64", {"B": "***"}, "B value is not valid base64"),
    ("B bad padding", {"B": "QQ="}, "B value is not valid base64"),
    ("SS a string", {"SS": "a"}, "SS value is not an array of strings"),
    ("SS with a number", {"SS": ["a", 1]}, "SS value is not an array of strings"),
    ("NS a string", {"NS": "1"}, "NS value is not an array"),
    ("NS with a bad number", {"NS": ["1", "x"]}, "N value is not a number"),
    ("NS with a JSON number", {"NS": [1]}, "N value is not a number"),
    ("BS a string", {"BS": "AA=="}, "BS value is not an array"),
    ("BS with bad base64", {"BS": ["AA==", "?"]}, "B value is not valid base64"),
    ("BS with a number", {"BS": [1]}, "B value is not a string"),
    ("L an object", {"L": {"S": "a"}}, "L value is not an array"),
    ("L with a bad element", {"L": [{"S": "a"}, {"N": "x"}]}, "N value is not a number"),
    ("L with an untagged element", {"L": [{"S": "a"}, {}]}, NOT_ONE_TAG),
    ("L with a map holding a bad value", {"L": [{"M": {"q": {"BOOL": None}}}]}, "BOOL value is not a boolean"),
    ("L with a map holding an untagged value", {"L": [{"M": {"q": "x"}}]}, NOT_ONE_TAG),
    ("L with a map that is not an object", {"L": [{"M": ["x"]}]}, "M value is not an object"),
    ("L with a map holding a bad S", {"L": [{"M": {"q": {"S": 1}}}]}, "S value is not a string"),
    ("L with a map holding a bad N", {"L": [{"M": {"q": {"N": "x"}}}]}, "N value is not a number"),
    ("M a list", {"M": [1]}, "M value is not an object"),
    ("M a string", {"M": "x"}, "M value is not an object"),
]


def _value_reason(column: str, reason: str) -> str:
    return f"malformed attribute value at {column!r}: {reason}"


@pytest.mark.parametrize(("label", "value", "reason"), VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
@pytest.mark.parametrize(
    ("where", "image", "column"),
    [
        ("top level", lambda v: item(bad=v), "bad"),
        ("after good values", lambda v: item(a={"S": "x"}, n={"N": "1"}, t={"BOOL": True}, bad=v), "bad"),
        ("in a map", lambda v: item(shipTo={"M": {"geo": {"M": {"lat": v}}}}), "shipTo.geo.lat"),
        ("in a map with escapes", lambda v: item(**{"_m": {"M": {"a.b": v}}}), "%5Fm.a%2Eb"),
        ("in a list", lambda v: item(bad={"L": [{"S": "ok"}, v]}), "bad"),
        ("in a map in a list", lambda v: item(bad={"L": [{"M": {"k": {"S": "ok"}, "q": v}}]}), "bad"),
        ("a key missing from the image", None, "sk"),
    ],
)
def test_each_malformed_value_fails_with_its_reason_and_column(label, value, reason, where, image, column):
    if image is None:
        change = change_record("INSERT", new=item(), keys={"pk": {"S": "ORDER#1"}, "sk": value})
    else:
        change = change_record("INSERT", new=image(value))
    outcome = transform_record(json.dumps(change).encode())
    assert outcome.reason == _value_reason(column, reason)


def test_a_bad_key_value_fails_with_the_keys_column_when_there_is_no_image():
    change = change_record("REMOVE", keys={"pk": {"N": "x"}})
    assert transform_record(json.dumps(change).encode()).reason == _value_reason("pk", "N value is not a number")


def test_a_long_column_path_is_cut_to_200_characters_in_the_reason():
    deep = {"N": "x"}
    for _ in range(30):
        deep = {"M": {"abcdefghij": deep}}
    reason = transform_record(json.dumps(change_record("INSERT", new=item(top=deep))).encode()).reason
    column = "top" + ".abcdefghij" * 30
    assert reason == _value_reason(column[:200], "N value is not a number")


def test_an_internal_error_is_named_by_its_type(monkeypatch):
    def broken(*args):
        raise ZeroDivisionError

    monkeypatch.setattr(record, "flatten_image", broken)
    response, logs = run(event(b64(BASE)))
    assert response["records"][0]["result"] == "ProcessingFailed"
    assert logs[0]["failures"][0]["reason"] == "internal error: ZeroDivisionError"


def test_json_whitespace_around_the_object_is_still_json():
    # Only other text after the object is refused: JSON allows insignificant whitespace (RFC 8259).
    for text in (" " + BASE_TEXT, BASE_TEXT + "\n", "\t" + BASE_TEXT + " \r\n"):
        outcome = transform_record(text.encode())
        assert outcome.ok, (text[:5], outcome.reason)


def test_deep_but_parseable_nesting_within_the_limit_is_accepted():
    value = {"S": "x"}
    for _ in range(32):  # DynamoDB's own limit
        value = {"M": {"a": value}}
    line = transform_record(json.dumps(change_record("INSERT", new=item(deep=value))).encode()).line
    assert json.loads(line)["deep" + ".a" * 32] == "x"
