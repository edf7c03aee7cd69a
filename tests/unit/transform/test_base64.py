"""Strict base64 for the record's data and for B/BS values, with one verdict on every Python.

binascii's strict mode differs between releases (3.11/3.12 accept "QUJD=", 3.13 does not), so the
cases below include exactly those; this file must pass unchanged on 3.11, 3.12 and 3.13.
"""

import base64
import binascii
import itertools
import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.transform import b64 as b64_module
from lambdas.transform.b64 import InvalidBase64, decode_strict

from .builders import b64, change_record, event, item, run


def record_data(padded):
    """A valid record's base64, ending in padding or not (one of three lengths gives each)."""
    for n in range(3):
        data = b64(change_record("INSERT", new=item(s={"S": "x" * n})))
        if data.endswith("=") is padded:
            return data
    raise AssertionError("unreachable")


VALID = [
    ("", b""),
    ("QQ==", b"A"),
    ("QUI=", b"AB"),
    ("QUJD", b"ABC"),
    ("QUJDRA==", b"ABCD"),
    ("+/+/", b"\xfb\xff\xbf"),
    # Non-zero pad bits are accepted and ignored, as CPython's decoder always has.
    ("QR==", b"A"),
    ("QUK=", b"AB"),
    ("QUJ=", b"AB"),
]

INVALID = [
    # Accepted by binascii's strict mode on 3.11/3.12, refused on 3.13: excess padding.
    "QUJD=",
    "QUJD==",
    "AAAA====",
    "QUJDRA===",
    # Refused everywhere, but by different rules; the rule here names one.
    "QQ===",
    "QQ====",
    "QQ",
    "QQ=",
    "QUI",
    "QUJDRA",
    "QUJDRA=",
    "Q===",
    "A",
    "AAAAA",
    "=",
    "==",
    "====",
    "=QQ=",
    "Q=Q=",
    "QQ=A",
    "QQ==QQ==",
    "QUI=QUI=",
    "QQ== ",
    " QQ==",
    "QQ\n==",
    "QU JD",
    "QUJD\n",
    "-_8=",  # URL-safe alphabet
    "QUJ!",
    "QUJé",  # non-ASCII
    "QUJ\x00",
]


# decode_strict takes a shortcut through binascii's strict mode; _decode_by_rule is the rule alone.
# Both must give every verdict.
DECODERS = pytest.mark.parametrize("decode", [decode_strict, b64_module._decode_by_rule], ids=["shortcut", "rule"])


@DECODERS
@pytest.mark.parametrize(("text", "decoded"), VALID)
def test_valid(decode, text, decoded):
    assert decode(text) == decoded


@DECODERS
@pytest.mark.parametrize("text", INVALID)
def test_invalid(decode, text):
    with pytest.raises(InvalidBase64):
        decode(text)


def test_a_strict_mode_that_refuses_pad_bits_changes_nothing(monkeypatch):
    # CPython 3.15's strict mode refuses non-zero pad bits; the rule accepts them everywhere.
    def stricter(text, strict_mode=False):
        if strict_mode and text in {"QR==", "QUK=", "QUJ="}:
            raise binascii.Error("Excess padding bits")
        return binascii.a2b_base64(text, strict_mode=strict_mode)

    monkeypatch.setattr(b64_module, "_a2b", stricter)
    for text, decoded in VALID:
        assert decode_strict(text) == decoded
    for text in INVALID:
        with pytest.raises(InvalidBase64):
            decode_strict(text)


@pytest.mark.parametrize("value", [None, 5, b"QQ==", ["QQ=="]])
def test_only_strings(value):
    with pytest.raises(InvalidBase64):
        decode_strict(value)


def test_the_cases_that_made_the_rule_explicit_still_differ_in_binascii():
    # Documents why b64.py does not rely on strict_mode: if this starts failing, the versions agree.
    def strict_accepts(text):
        try:
            binascii.a2b_base64(text, strict_mode=True)
        except binascii.Error:
            return False
        return True

    assert strict_accepts("QUJD=") is (sys.version_info < (3, 13))
    assert strict_accepts("QR==")  # pad bits: decode_strict accepts them whatever binascii does


# An independent statement of the rule: groups of 4, then an optional padded group.
CANONICAL = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="AQRZaz09+/=-_ \n\té\x00", max_size=10))
def test_verdict_matches_the_rule_for_any_text(text):
    expected = CANONICAL.fullmatch(text) is not None
    for decode in (decode_strict, b64_module._decode_by_rule):
        try:
            decoded = decode(text)
        except InvalidBase64:
            assert not expected
        else:
            assert expected
            assert decoded == base64.b64decode(text)


def test_verdict_matches_the_rule_for_every_short_text():
    # Exhaustive up to two quads over a valid character, one with non-zero pad bits ("AR=="),
    # the pad and a character outside the alphabet: covers every padding shape.
    for length in range(9):
        for chars in itertools.product("AR=!", repeat=length):
            text = "".join(chars)
            expected = CANONICAL.fullmatch(text) is not None
            for decode in (decode_strict, b64_module._decode_by_rule):
                try:
                    decoded = decode(text)
                except InvalidBase64:
                    assert not expected, (decode.__name__, text)
                else:
                    assert expected and decoded == base64.b64decode(text), (decode.__name__, text)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_every_encoding_round_trips(payload):
    assert decode_strict(base64.b64encode(payload).decode()) == payload


# --- the same rule for the record's data and for B / BS values -----------------------------------------


@pytest.mark.parametrize("text", ["QUJD=", "QQ===", "QQ==" + "=", "QQ", "QQ== "])
def test_record_data_follows_the_rule(text):
    # Also valid records followed by excess padding or with their padding cut. An unpadded one
    # plus "=" is what binascii's strict mode accepts on 3.11/3.12.
    padded, unpadded = record_data(padded=True), record_data(padded=False)
    for data in (text, unpadded + "=", unpadded + "==", padded + "=", padded + "==", padded.rstrip("=")):
        response, logs = run(event(data))
        assert response["records"][0]["result"] == "ProcessingFailed", data
        assert logs[0]["failures"][0]["reason"] == "data is not valid base64"
    response, _ = run(event(padded, unpadded))
    assert [r["result"] for r in response["records"]] == ["Ok", "Ok"]


@pytest.mark.parametrize("text", INVALID[:20])
@pytest.mark.parametrize("tag", ["B", "BS", "B in a map", "BS in a list"])
def test_binary_values_follow_the_rule(text, tag):
    value = {
        "B": {"B": text},
        "BS": {"BS": ["QQ==", text]},
        "B in a map": {"M": {"inner": {"B": text}}},
        "BS in a list": {"L": [{"BS": [text]}]},
    }[tag]
    response, logs = run(event(b64(change_record("INSERT", new=item(bin=value)))))
    assert response["records"][0]["result"] == "ProcessingFailed"
    assert logs[0]["failures"][0]["reason"].endswith("B value is not valid base64")


@pytest.mark.parametrize(("text", "_"), VALID)
def test_valid_binary_values_are_passed_as_sent(text, _):
    response, _ = run(event(b64(change_record("INSERT", new=item(b={"B": text}, bs={"BS": [text]})))))
    (result,) = response["records"]
    assert result["result"] == "Ok"
    line = base64.b64decode(result["data"])
    assert f'"b":"{text}","bs":["{text}"]'.encode() in line
