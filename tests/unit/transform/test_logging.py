"""The per-invocation log line, which is also a CloudWatch Embedded Metric Format document."""

import base64

from lambdas.transform import metrics

from .builders import b64, change_record, event, item, run

GOOD = b64(change_record("INSERT", new=item(a={"S": "x"})))


def test_exactly_one_log_line_per_invocation_with_counts():
    response, logs = run(event(GOOD, "bad-data", GOOD))
    assert len(logs) == 1
    log = logs[0]
    assert log["level"] == "WARN"
    assert log["message"] == "firehose transform batch"
    assert log["invocationId"] == "00540a87-5050-496a-84e4-e7d92bbaf5e2"
    assert log["deliveryStreamArn"].endswith("deliverystream/ddb-lake")
    assert log["records"] == 3
    assert (log["RecordsOk"], log["RecordsFailed"], log["RecordsDropped"]) == (2, 1, 0)
    assert log["InputBytes"] == 2 * len(base64.b64decode(GOOD)) + len("bad-data") * 3 // 4
    ok_bytes = [len(base64.b64decode(r["data"])) for r in response["records"] if r["result"] == "Ok"]
    assert log["OutputBytes"] == sum(ok_bytes)
    assert log["failures"] == [{"recordId": "rec-00001", "reason": "data is not valid base64"}]
    assert log["failuresNotListed"] == 0


def test_clean_batch_logs_info():
    _, logs = run(event(GOOD))
    assert logs[0]["level"] == "INFO"
    assert logs[0]["failures"] == []


def test_emf_metadata_declares_the_three_metrics_in_the_default_namespace():
    _, logs = run(event(GOOD, "bad"))
    log = logs[0]
    aws = log["_aws"]
    assert isinstance(aws["Timestamp"], int) and aws["Timestamp"] > 1_700_000_000_000
    (directive,) = aws["CloudWatchMetrics"]
    assert directive["Namespace"] == "DdbDataLake/Transform"
    assert directive["Dimensions"] == [[]]
    assert directive["Metrics"] == [
        {"Name": "RecordsOk", "Unit": "Count"},
        {"Name": "RecordsFailed", "Unit": "Count"},
        {"Name": "OutputBytes", "Unit": "Bytes"},
    ]
    # EMF requires every declared metric as a numeric member of the root object.
    for metric in directive["Metrics"]:
        assert isinstance(log[metric["Name"]], int)
    assert (log["RecordsOk"], log["RecordsFailed"]) == (1, 1)


def test_namespace_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("METRICS_NAMESPACE", "Team/Lake")
    _, logs = run(event(GOOD))
    assert logs[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Team/Lake"


def test_failure_list_is_capped_but_counted():
    n = metrics.MAX_LOGGED_FAILURES + 7
    _, logs = run(event(*(["garbage"] * n)))
    log = logs[0]
    assert log["RecordsFailed"] == n
    assert len(log["failures"]) == metrics.MAX_LOGGED_FAILURES
    assert log["failuresNotListed"] == 7
    assert log["failures"][0]["recordId"] == "rec-00000"


def test_log_line_survives_unserialisable_envelope_fields():
    summary = metrics.BatchSummary(invocation_id=object(), records=1)
    line = metrics.log_line(summary, "NS", timestamp_ms=1)
    assert "\n" not in line and line.startswith('{"_aws":{"Timestamp":1,')
