"""Details the other transform tests leave open, found by `make mutation` (docs/testing.md): booleans inside lists,
and the replay split's positions and reasons."""

import json

import pytest

from lambdas.transform.replay import InvalidBackup, split_records, transform_record

from .builders import change_record, item


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
