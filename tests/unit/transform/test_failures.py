"""One bad record fails alone; the envelope contract holds for every record."""

import base64
import json
import sys

import pytest

from lambdas.transform import handler as transform_handler
from lambdas.transform import record

from .builders import b64, change_record, event, item, parse_line, run

GOOD = b64(change_record("INSERT", new=item(ok={"S": "yes"})))


def bad_records():
    """(label, data) pairs that must each come back ProcessingFailed with data unchanged."""
    base = change_record("INSERT", new=item())

    def with_ddb(**changes):
        rec = change_record("INSERT", new=item())
        rec["dynamodb"].update(changes)
        return b64(rec)

    def with_value(av):
        return b64(change_record("INSERT", new=item(bad=av)))

    return [
        ("unknown eventName", b64({**base, "eventName": "UPSERT"})),
        ("eventName not a string", b64({**base, "eventName": ["INSERT"]})),
        ("invalid base64 characters", "!!!not base64!!!"),
        ("base64 with bad padding", GOOD[:-1]),
        ("base64 with trailing garbage", GOOD + "AAAA===="),
        ("not UTF-8", base64.b64encode(b"\xff\xfe{}").decode()),
        ("not JSON", b64(b"{this is not json")),
        ("truncated JSON", b64(json.dumps(base)[:-10])),
        ("empty data", ""),
        ("JSON array", b64(b"[1, 2, 3]")),
        ("JSON string", b64(b'"INSERT"')),
        ("not from DynamoDB", b64({**base, "eventSource": "aws:kinesis"})),
        ("no eventSource", b64({k: v for k, v in base.items() if k != "eventSource"})),
        ("no dynamodb object", b64({k: v for k, v in base.items() if k != "dynamodb"})),
        ("no Keys", with_ddb(Keys=None)),
        ("empty Keys", with_ddb(Keys={})),
        ("image not an object", with_ddb(NewImage=[1])),
        ("no eventID", b64({k: v for k, v in base.items() if k != "eventID"})),
        ("tableName not a string", b64({**base, "tableName": 7})),
        ("timestamp missing", b64({**base, "dynamodb": {"Keys": base["dynamodb"]["Keys"]}})),
        ("timestamp a string", with_ddb(ApproximateCreationDateTime="1717171717123")),
        ("timestamp negative", with_ddb(ApproximateCreationDateTime=-1)),
        ("timestamp beyond year 9999", with_ddb(ApproximateCreationDateTime=10**22)),
        ("timestamp NaN", b64(json.dumps(base).replace("1717171717123456", "NaN"))),
        ("timestamp boolean", with_ddb(ApproximateCreationDateTime=True)),
        ("unknown type tag", with_value({"X": "1"})),
        ("two type tags", with_value({"S": "a", "N": "1"})),
        ("no type tag", with_value({})),
        ("attribute value not an object", with_value("plain")),
        ("attribute value an array", with_value([{"S": "a"}])),
        ("N not a number", with_value({"N": "12abc"})),
        ("N NaN", with_value({"N": "NaN"})),
        ("N Infinity", with_value({"N": "Infinity"})),
        ("N empty", with_value({"N": ""})),
        ("N with spaces", with_value({"N": " 1"})),
        ("N with underscores", with_value({"N": "1_000"})),
        ("N with non-ASCII digits", with_value({"N": "\u0661\u0662"})),
        ("N a JSON number", with_value({"N": 12})),
        ("S not a string", with_value({"S": 12})),
        ("BOOL not a bool", with_value({"BOOL": "true"})),
        ("BOOL a number", with_value({"BOOL": 1})),
        ("NULL false", with_value({"NULL": False})),
        ("B not base64", with_value({"B": "***"})),
        ("B not a string", with_value({"B": 5})),
        ("SS with a number", with_value({"SS": ["a", 1]})),
        ("SS not a list", with_value({"SS": "a"})),
        ("NS with a bad number", with_value({"NS": ["1", "x"]})),
        ("NS with a JSON number", with_value({"NS": [1]})),
        ("BS with bad base64", with_value({"BS": ["AA==", "?"]})),
        ("L not a list", with_value({"L": {"S": "a"}})),
        ("M not an object", with_value({"M": [1]})),
        ("bad value deep in a map", with_value({"M": {"a": {"M": {"b": {"N": "x"}}}}})),
        ("bad value deep in a list", with_value({"L": [{"M": {"a": {"L": [{"BOOL": None}]}}}]})),
        ("unpaired surrogate", b64(json.dumps(change_record("INSERT", new=item(s={"S": "\ud800"}))))),
    ]


@pytest.mark.parametrize(("label", "data"), bad_records(), ids=[label for label, _ in bad_records()])
def test_bad_record_fails_alone(label, data):
    response, logs = run(event(GOOD, data, GOOD, ids=["good-1", "bad", "good-2"]))
    results = response["records"]
    assert [r["recordId"] for r in results] == ["good-1", "bad", "good-2"]
    assert [r["result"] for r in results] == ["Ok", "ProcessingFailed", "Ok"]
    assert results[1]["data"] == data  # original, unchanged, for the error prefix
    assert parse_line(results[0]["data"])["ok"] == "yes"
    (log,) = logs
    assert log["RecordsOk"] == 2 and log["RecordsFailed"] == 1
    assert [f["recordId"] for f in log["failures"]] == ["bad"]
    assert log["failures"][0]["reason"]


def test_reasons_name_the_problem_and_path_but_not_values():
    secret = "4111-1111-1111-1111"
    change = change_record("INSERT", new=item(card={"M": {"number": {"N": secret}}}))
    response, logs = run(event(b64(change)))
    assert response["records"][0]["result"] == "ProcessingFailed"
    reason = logs[0]["failures"][0]["reason"]
    assert "card.number" in reason and "N value is not a number" in reason
    assert secret not in json.dumps(logs)


def test_output_over_firehose_record_limit_fails(monkeypatch):
    limit = transform_handler.MAX_OUTPUT_RECORD_BYTES
    assert limit == 1_024_000
    big = change_record("INSERT", new=item(blob={"S": "x" * limit}))
    fits = change_record("INSERT", new=item(blob={"S": "x" * (limit - 1000)}))
    response, logs = run(event(b64(big), b64(fits)))
    assert [r["result"] for r in response["records"]] == ["ProcessingFailed", "Ok"]
    assert response["records"][0]["data"] == b64(big)
    assert "exceeds 1024000 bytes" in logs[0]["failures"][0]["reason"]
    assert len(base64.b64decode(response["records"][1]["data"])) <= limit


def test_unexpected_exception_costs_one_record(monkeypatch):
    real = record.flatten_image

    def flaky(image, *args):
        if "boom" in image:
            raise KeyError("simulated bug")
        return real(image, *args)

    monkeypatch.setattr(record, "flatten_image", flaky)
    bad = b64(change_record("INSERT", new=item(boom={"S": "x"})))
    response, logs = run(event(GOOD, bad))
    assert [r["result"] for r in response["records"]] == ["Ok", "ProcessingFailed"]
    assert logs[0]["failures"][0]["reason"] == "internal error: KeyError"


@pytest.mark.parametrize("data", [None, 5, {"a": 1}])
def test_non_string_data_fails_with_empty_data(data):
    evt = event(GOOD, GOOD)
    evt["records"][1]["data"] = data
    response, _ = run(evt)
    assert [r["result"] for r in response["records"]] == ["Ok", "ProcessingFailed"]
    assert response["records"][1]["data"] == ""


def test_records_are_never_dropped():
    response, _ = run(event(GOOD, "garbage", b64(change_record("REMOVE", old=item()))))
    assert "Dropped" not in {r["result"] for r in response["records"]}


class TestMalformedEvent:
    @pytest.mark.parametrize(
        "evt",
        [
            None,
            [],
            {"invocationId": "x"},
            {"records": {"recordId": "a"}},
            {"records": [{"data": "AA=="}]},
            {"records": ["x"]},
        ],
    )
    def test_raises_and_logs(self, evt):
        with pytest.raises(transform_handler.InvalidEvent):
            run(evt)

    def test_log_line_is_printed_before_raising(self, capsys):
        with pytest.raises(transform_handler.InvalidEvent):
            transform_handler.handler({"invocationId": "inv-1"}, None)
        (line,) = capsys.readouterr().out.splitlines()
        log = json.loads(line)
        assert log["level"] == "ERROR"
        assert log["invocationId"] == "inv-1"
        assert "no records list" in log["error"]

    def test_empty_batch_is_answered(self):
        response, logs = run({"invocationId": "x", "records": []})
        assert response == {"records": []}
        assert logs[0]["records"] == 0


@pytest.mark.parametrize("shape", ["list", "map in list"])
def test_nesting_too_deep_for_the_walk_fails_with_a_reason(monkeypatch, shape):
    # On Python 3.12+ the parser's depth limit is separate from Python's, so a record can parse
    # and still be too deep to walk (DynamoDB itself allows 32 levels).
    value = {"S": "x"}
    for _ in range(sys.getrecursionlimit()):
        value = {"L": [value]} if shape == "list" else {"L": [{"M": {"a": value}}]}
    change = change_record("INSERT", new=item(deep=value))
    monkeypatch.setattr(record, "_parse", lambda text: change)
    response, logs = run(event(b64(change_record("INSERT", new=item()))))
    assert response["records"][0]["result"] == "ProcessingFailed"
    assert logs[0]["failures"][0]["reason"] == "data is nested too deeply"
