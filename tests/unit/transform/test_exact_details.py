"""Details the other transform tests leave open, found by `make mutation` (docs/testing.md): booleans inside lists,
the replay split's positions and reasons, and the handler's size arithmetic and log fields."""

import base64
import contextlib
import io
import json
import time

import pytest

from lambdas.transform import handler, record
from lambdas.transform.replay import InvalidBackup, split_records, transform_record

from .builders import b64, change_record, event, item, run


def test_false_stays_false_inside_lists_and_maps_in_lists():
    value = {"L": [{"BOOL": False}, {"BOOL": True}, {"M": {"f": {"BOOL": False}, "t": {"BOOL": True}}}]}
    line = transform_record(json.dumps(change_record("INSERT", new=item(flags=value))).encode()).line
    assert b'"flags":[false,true,{"f":false,"t":true}]' in line


def test_a_set_of_plain_and_normalised_numbers():
    value = {"NS": ["7", "007", "-3", "+4", "1.50", ".5", "0"]}
    line = transform_record(json.dumps(change_record("INSERT", new=item(ns=value))).encode()).line
    assert b'"ns":[7,7,-3,4,1.50,0.5,0]' in line


def test_split_skips_every_kind_of_whitespace_run_between_records():
    records = [b'{"a":1}', b'{"b":[2]}', b'"three"', b"4"]
    content = b" \t" + records[0] + b"\r\n\r\n" + records[1] + b"  \t " + records[2] + b"\n " + records[3] + b"\n\n"
    assert list(split_records(content)) == records


def test_split_counts_records_and_bytes_up_to_the_unreadable_one():
    head = b'{"city":"Z\xc3\xbcrich"}' + b'\n{"b":2}\n' + b"[3]"
    records = split_records(head + b"  garbage")
    assert [next(records) for _ in range(3)] == [b'{"city":"Z\xc3\xbcrich"}', b'{"b":2}', b"[3]"]
    with pytest.raises(InvalidBackup) as raised:
        next(records)
    assert (raised.value.offset, raised.value.index) == (len(head) + 2, 3)
    assert str(raised.value) == f"record 3 at byte {len(head) + 2}: Expecting value"


def test_split_names_nesting_too_deep_to_read():
    records = split_records(b'{"a":1}' + b"[" * 200_000 + b"]" * 200_000)
    assert next(records) == b'{"a":1}'
    with pytest.raises(InvalidBackup) as raised:
        next(records)
    assert str(raised.value) == "record 1 at byte 7: nested too deeply to read"


# --- the handler's own arithmetic ---------------------------------------------------------------------------------
def _small(i):
    return b64(change_record("INSERT", keys={"pk": {"S": f"K{i}"}}))


@pytest.mark.parametrize(
    "datas",
    [
        ["garbage"],  # a failed record only
        ["QQ==", 'bad"data\\with\u00e9escapes', "x" * 7],  # failed records whose data needs JSON escaping
        [_small(1), "QUJD", _small(2), 'no"pe'],  # both kinds
    ],
)
def test_the_logged_response_size_is_the_exact_serialised_size(datas):
    response, logs = run(event(*datas))
    assert logs[0]["ResponseBytes"] == len(json.dumps(response))


def test_a_response_of_exactly_the_budget_is_not_touched_and_one_byte_less_fails_over_one_record():
    datas = [_small(i) for i in range(5)]
    full, _ = run(event(*datas), response_budget=10**6)
    size = len(json.dumps(full))
    response, logs = run(event(*datas), response_budget=size)
    assert {r["result"] for r in response["records"]} == {"Ok"} and logs[0]["ResponseBytes"] == size
    response, logs = run(event(*datas), response_budget=size - 1)
    assert [r["result"] for r in response["records"]].count("ProcessingFailed") == 1
    assert logs[0]["failedForResponseSize"] == 1 and logs[0]["ResponseBytes"] == len(json.dumps(response)) < size
    ok_lines = [base64.b64decode(r["data"]) for r in response["records"] if r["result"] == "Ok"]
    assert logs[0]["OutputBytes"] == sum(map(len, ok_lines))


def test_the_largest_saving_fails_over_first():
    # Flattening repeats the long map name in every column: the middle record's line outgrows its input the most.
    wide = {"m" * 200: {"M": {f"a{i}": {"S": "x"} for i in range(20)}}}
    datas = [_small(1), b64(change_record("INSERT", new=item(**wide))), _small(3)]
    full, _ = run(event(*datas), response_budget=10**6)
    response, _logs = run(event(*datas), response_budget=len(json.dumps(full)) - 1)
    assert [r["result"] for r in response["records"]] == ["Ok", "ProcessingFailed", "Ok"]
    assert response["records"][1]["data"] == datas[1]


@pytest.mark.parametrize(("data", "decoded"), [("QQ==", 1), ("QUI=", 2), ("QUJD", 3), ("QUJDRA==", 4), (None, 0)])
def test_input_bytes_count_the_decoded_data(data, decoded):
    evt = event("QUJD")
    evt["records"][0]["data"] = data
    _, logs = run(evt)
    assert logs[0]["InputBytes"] == decoded


@pytest.mark.parametrize(
    ("evt", "error"),
    [
        ([], "InvalidEvent: event is not a JSON object"),
        ({"records": {}}, "InvalidEvent: event has no records list"),
        ({"records": [{"recordId": 5}]}, "InvalidEvent: a record has no recordId"),
    ],
)
def test_an_invalid_event_logs_exactly_why(evt, error):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(handler.InvalidEvent) as raised:
        handler.process_event(evt)
    assert json.loads(out.getvalue())["error"] == error
    assert f"InvalidEvent: {raised.value}" == error


def test_the_emf_timestamp_is_now_in_milliseconds():
    _, logs = run(event(_small(1)))
    assert abs(logs[0]["_aws"]["Timestamp"] - time.time() * 1000) < 60_000


def test_the_second_cache_never_holds_more_than_its_bound(monkeypatch):
    monkeypatch.setattr(record, "_SECOND_TEXT", {})
    for second in range(4200):
        record.iso_from_epoch(1_700_000_000 + second)
        assert len(record._SECOND_TEXT) <= 4096


def test_the_response_size_escapes_a_backslash_in_failed_data():
    response, logs = run(event("back\\slash", "plain"))
    assert logs[0]["ResponseBytes"] == len(json.dumps(response))


@pytest.mark.parametrize(("data", "counted"), [("ab=cdefg", 6), ("A===", 1), ("a=bc", 3)])
def test_input_bytes_of_invalid_data_count_only_trailing_padding(data, counted):
    # Invalid data is counted approximately, by the same formula: 3/4 of its length less the "=" in its last two.
    evt = event("QUJD")
    evt["records"][0]["data"] = data
    _, logs = run(evt)
    assert logs[0]["InputBytes"] == counted


def test_failover_stops_as_soon_as_the_response_fits_exactly():
    datas = [_small(i) for i in range(5)]
    full, _ = run(event(*datas), response_budget=10**6)
    once, _ = run(event(*datas), response_budget=len(json.dumps(full)) - 1)
    fitted = len(json.dumps(once))
    response, logs = run(event(*datas), response_budget=fitted)
    assert logs[0]["failedForResponseSize"] == 1 and logs[0]["ResponseBytes"] == fitted
    assert response == once


def test_when_even_the_originals_do_not_fit_the_log_says_exactly_so():
    datas = [_small(i) for i in range(3)]
    originals = {
        "records": [{"recordId": f"rec-{i:05d}", "result": "ProcessingFailed", "data": d} for i, d in enumerate(datas)]
    }
    size = len(json.dumps(originals))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(handler.ResponseTooLarge):
        handler.process_event(event(*datas), response_budget=100)
    log = json.loads(out.getvalue())
    assert log["error"] == (
        f"ResponseTooLarge: response would be {size} bytes even with original data (budget 100); "
        "failing the invocation so Firehose delivers the batch to the processing-failed prefix"
    )
    assert (log["RecordsOk"], log["RecordsFailed"], log["OutputBytes"]) == (0, 3, 0)
    assert log["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "DdbDataLake/Transform"


def test_an_invalid_event_is_logged_in_the_metrics_namespace():
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(handler.InvalidEvent):
        handler.process_event({"records": None})
    assert json.loads(out.getvalue())["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "DdbDataLake/Transform"


def test_the_metadata_key_texts():
    # record._key runs while the module is imported; called here, it is checked like any other function.
    assert record._key("_event_id") == ',"_event_id":'
    assert record._key('a"b', first=True) == '{"a\\"b":'
