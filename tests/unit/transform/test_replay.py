"""Replay: raw backup content split back into records and transformed exactly as the handler does."""

import base64
import json

import pytest

from benchmarks.corpus import make_records
from lambdas.transform.replay import InvalidBackup, Outcome, split_records, transform_record

from .builders import SEQ, SHARD, b64, change_record, event, item, run


def raw_records():
    """Change records as bytes on the stream: a realistic corpus plus records that fail."""
    corpus = [base64.b64decode(r["data"]) for r in make_records(300_000, seed=11)]
    failing = [
        json.dumps(change_record("UPSERT", new=item())).encode(),  # unknown eventName
        json.dumps(change_record("INSERT", new=item(n={"N": "x"}))).encode(),  # malformed value
        json.dumps(change_record("INSERT", new=item(), ddbLakeOrigin="other")).encode(),
        json.dumps(change_record("INSERT", new=item(s={"S": "\ud800"}))).encode(),  # unpaired surrogate
        b'{"valid JSON": "but no change record"}',
        b"[1, 2]",
        b'"a string"',
        b'{"eventSource": "aws:dynamodb", "x": "\xff\xfe not UTF-8"}',
    ]
    backfill = [json.dumps(change_record("INSERT", new=item(a={"S": "b"}), ddbLakeOrigin="backfill")).encode()]
    indented = [json.dumps(change_record("REMOVE", old=item()), indent=2).encode() + b"\n"]
    records = corpus + failing + backfill + indented
    # Interleave the odd ones into the corpus.
    return [records[i] for i in sorted(range(len(records)), key=lambda i: (i * 7919) % len(records))]


@pytest.mark.parametrize("kinesis", [True, False], ids=["with Kinesis metadata", "without"])
def test_replaying_the_raw_backup_reproduces_the_handlers_answers(kinesis):
    records = raw_records()
    response, logs = run(event(*(b64(r) for r in records), kinesis=kinesis))
    reasons = {f["recordId"]: f["reason"] for f in logs[0]["failures"]}
    assert logs[0]["failuresNotListed"] == 0

    content = b"".join(records)  # Firehose's raw backup: no separators
    split = list(split_records(content))
    assert split == [r.strip(b" \t\r\n") for r in records]  # whitespace between records is skipped

    seq, shard = (SEQ, SHARD) if kinesis else (None, None)
    outcomes = [transform_record(raw, seq, shard) for raw in split]
    for result, outcome in zip(response["records"], outcomes, strict=True):
        if result["result"] == "Ok":
            assert outcome == Outcome(base64.b64decode(result["data"]), None)
            assert outcome.ok
        else:
            assert outcome == Outcome(None, reasons[result["recordId"]])
            assert not outcome.ok
    assert sum(o.ok for o in outcomes) == logs[0]["RecordsOk"] > 0
    assert sum(not o.ok for o in outcomes) == logs[0]["RecordsFailed"] >= 8


def test_split_returns_each_records_exact_bytes():
    records = [
        b'{"a":1}',
        b'{"b":"x}{y"}',  # braces inside a string
        b'{"c":"\\"}"}',  # an escaped quote before a brace
        b'{"d":"\xc3\xa9\xe6\x9d\xb1"}',  # UTF-8
        b'{"e":"\xff"}',  # not UTF-8: carried through unchanged
        b"[]",
        b"7",
        b'{"f":{"g":[{}]}}',
    ]
    assert list(split_records(b"".join(records))) == records


def test_split_skips_whitespace_between_records():
    assert list(split_records(b' \n{"a":1}\r\n\t{"b":2} \n')) == [b'{"a":1}', b'{"b":2}']
    assert list(split_records(b"")) == []
    assert list(split_records(b" \n ")) == []


@pytest.mark.parametrize(
    "rest",
    [b"garbage{}", b'{"b":', b"}", b'\xff{"b":2}', b'{"b":"\xc3\xa9",]'],
)
def test_split_stops_where_no_json_value_starts(rest):
    head = b'{"a":"\xc3\xa9\xff"}\n'  # 2-byte UTF-8 and a stray byte: the offset counts bytes
    records = split_records(head + rest)
    assert next(records) == head.strip()
    with pytest.raises(InvalidBackup) as excinfo:
        next(records)
    assert (excinfo.value.offset, excinfo.value.index) == (len(head), 1)
    assert str(excinfo.value).startswith(f"record 1 at byte {len(head)}: ")
    assert isinstance(excinfo.value, ValueError)


def test_split_refuses_nesting_too_deep_to_read():
    deep = b"[" * 200_000 + b"]" * 200_000
    records = split_records(b"{}" + deep)
    assert next(records) == b"{}"
    with pytest.raises(InvalidBackup) as excinfo:
        next(records)
    assert (excinfo.value.offset, excinfo.value.index) == (2, 1)


def test_transform_record_never_raises(monkeypatch):
    from lambdas.transform import record

    def broken(image, parts):
        raise KeyError("simulated bug")

    monkeypatch.setattr(record, "flatten_image", broken)
    raw = json.dumps(change_record("INSERT", new=item())).encode()
    assert transform_record(raw) == Outcome(None, "internal error: KeyError")


def test_transform_record_defaults_to_null_kinesis_columns():
    outcome = transform_record(json.dumps(change_record("INSERT", new=item())).encode())
    obj = json.loads(outcome.line)
    assert (obj["_sequence_number"], obj["_shard_id"], obj["_origin"]) == (None, None, "stream")
