"""Both sides of every documented boundary of the transform (docs/transform-contract.md).

* Firehose's record limit applies to the output line as returned (its bytes, the final newline included): exactly
  1,024,000 bytes is accepted, one byte more is refused.
* ApproximateCreationDateTime: the unit is told by magnitude (below 10^11 seconds, below 10^14 milliseconds, from
  10^14 microseconds), zero is the epoch, negative values are refused, and the last accepted instant is the last
  microsecond of 9999-12-31.
"""

import json

import pytest

from lambdas.transform import record
from lambdas.transform.replay import transform_record

from .builders import SEQ, SHARD, b64, change_record, event, item, run

LIMIT = 1_024_000  # https://docs.aws.amazon.com/firehose/latest/dev/limits.html: 1,000 KiB per record


def _line_with_blob(n: int):
    # With the Kinesis columns the handler fills from the event's metadata (builders.event).
    return transform_record(json.dumps(change_record("INSERT", new=item(blob={"S": "x" * n}))).encode(), SEQ, SHARD)


def _blob_for_line_of(size: int) -> int:
    base = _line_with_blob(0).line
    return size - len(base)


def test_the_limit_is_firehoses():
    assert record.MAX_OUTPUT_RECORD_BYTES == LIMIT


def test_an_output_line_of_exactly_the_limit_is_accepted():
    outcome = _line_with_blob(_blob_for_line_of(LIMIT))
    assert outcome.ok, outcome.reason
    assert len(outcome.line) == LIMIT and outcome.line.endswith(b"\n")


def test_one_byte_over_the_limit_is_refused():
    outcome = _line_with_blob(_blob_for_line_of(LIMIT + 1))
    assert outcome.reason == "output record exceeds 1024000 bytes"


def test_the_limit_counts_utf8_bytes_not_characters():
    # "é" is 2 bytes: a line of LIMIT - 1 characters that is LIMIT + 1 bytes long must fail.
    n = _blob_for_line_of(LIMIT + 1)
    change = change_record("INSERT", new=item(blob={"S": "é" * 2 + "x" * (n - 4)}))
    outcome = transform_record(json.dumps(change, ensure_ascii=False).encode(), SEQ, SHARD)
    assert outcome.reason == "output record exceeds 1024000 bytes"


def test_the_handler_returns_a_line_of_exactly_the_limit_as_ok():
    n = _blob_for_line_of(LIMIT)
    fits = change_record("INSERT", new=item(blob={"S": "x" * n}))
    over = change_record("INSERT", new=item(blob={"S": "x" * (n + 1)}))
    response, logs = run(event(b64(fits), b64(over)))
    assert [r["result"] for r in response["records"]] == ["Ok", "ProcessingFailed"]
    assert logs[0]["OutputBytes"] == LIMIT
    assert logs[0]["failures"] == [{"recordId": "rec-00001", "reason": "output record exceeds 1024000 bytes"}]


# --- timestamps ------------------------------------------------------------------------------------------------
LAST_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        (0, "1970-01-01T00:00:00.000000Z"),
        (0.0, "1970-01-01T00:00:00.000000Z"),
        (-0.0, "1970-01-01T00:00:00.000000Z"),
        (1, "1970-01-01T00:00:01.000000Z"),
        (1.5, "1970-01-01T00:00:01.500000Z"),
        (0.000001, "1970-01-01T00:00:00.000001Z"),
        # Seconds up to 10^11 - 1 (5138-11-16T09:46:39Z), milliseconds from 10^11.
        (10**11 - 1, "5138-11-16T09:46:39.000000Z"),
        (float(10**11 - 1), "5138-11-16T09:46:39.000000Z"),
        (10**11, "1973-03-03T09:46:40.000000Z"),
        (float(10**11), "1973-03-03T09:46:40.000000Z"),
        (10**11 + 1, "1973-03-03T09:46:40.001000Z"),
        (100_000_000_000.5, "1973-03-03T09:46:40.000500Z"),
        # Milliseconds up to 10^14 - 1, microseconds from 10^14.
        (10**14 - 1, "5138-11-16T09:46:39.999000Z"),
        (10**14, "1973-03-03T09:46:40.000000Z"),
        (float(10**14), "1973-03-03T09:46:40.000000Z"),
        (10**14 + 1, "1973-03-03T09:46:40.000001Z"),
        (1_717_171_717_123_456, "2024-05-31T16:08:37.123456Z"),
        (1_717_171_717_123_456.0, "2024-05-31T16:08:37.123456Z"),
        # The last instants ISO-8601 years allow (microseconds: milliseconds end in 5138).
        (LAST_SECOND * 10**6, "9999-12-31T23:59:59.000000Z"),
        (LAST_SECOND * 10**6 + 999_999, "9999-12-31T23:59:59.999999Z"),
        (float(LAST_SECOND * 10**6), "9999-12-31T23:59:59.000000Z"),
    ],
)
def test_accepted_timestamps(value, iso):
    assert record.iso_from_epoch(value) == iso
    change = change_record("INSERT", new=item(), timestamp=value)
    line = transform_record(json.dumps(change).encode()).line
    assert json.loads(line)["_approximate_creation_time"] == iso


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ((LAST_SECOND + 1) * 10**6, "out of range"),
        (float((LAST_SECOND + 2) * 10**6), "out of range"),
        (10**19, "out of range"),
        (-1, "negative"),
        (-(10**14), "negative"),
        (-1.0, "negative"),
        (-0.000001, "negative"),
        (float("nan"), "not a number"),
        (float("inf"), "not a number"),
        (float("-inf"), "not a number"),
        ("0", "not a number"),
        (None, "not a number"),
        (True, "not a number"),
        (False, "not a number"),
        ([0], "not a number"),
    ],
)
def test_refused_timestamps(value, reason):
    with pytest.raises(record.MalformedRecord) as raised:
        record.iso_from_epoch(value)
    assert str(raised.value) == f"ApproximateCreationDateTime is {reason}"


def test_a_cached_second_is_still_checked_for_range(monkeypatch):
    # The cache holds only instants that passed the check; the first out-of-range second is never cached.
    monkeypatch.setattr(record, "_SECOND_TEXT", {})
    record.iso_from_epoch(LAST_SECOND * 10**6)
    with pytest.raises(record.MalformedRecord):
        record.iso_from_epoch((LAST_SECOND + 1) * 10**6)
    assert set(record._SECOND_TEXT) == {LAST_SECOND}


def test_the_second_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(record, "_SECOND_TEXT", {})
    for second in range(5000):
        assert record.iso_from_epoch(1_700_000_000 + second).endswith(".000000Z")
    assert 0 < len(record._SECOND_TEXT) <= 4096
    # Values from before the clear are still right.
    assert record.iso_from_epoch(1_700_000_000) == "2023-11-14T22:13:20.000000Z"
