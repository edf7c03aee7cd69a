"""The line encoder and the number parser it relies on."""

import json
from decimal import Decimal

import pytest

from lambdas.transform import flatten
from lambdas.transform.numbers import InvalidNumber, number_value


def test_raw_tokens_are_spliced_verbatim():
    line = flatten.encode_line({"a": b"1.50", "b": [b"1E+5", 2, {"c": b"-0"}], "d": "x"})
    assert line == b'{"a":1.50,"b":[1E+5,2,{"c":-0}],"d":"x"}\n'


def test_item_text_equal_to_the_placeholder_cannot_corrupt_the_line(monkeypatch):
    calls = []
    real = flatten._encode_with_fresh_marker
    monkeypatch.setattr(flatten, "_encode_with_fresh_marker", lambda obj: calls.append(1) or real(obj))
    marker = flatten._marker
    obj = {marker: marker, "n": b"0.1", "s": f'"{marker}"', "l": [marker, b"2.5"]}
    line = flatten.encode_line(obj)
    assert calls == [1]
    assert json.loads(line, parse_float=Decimal) == {
        marker: marker,
        "n": Decimal("0.1"),
        "s": f'"{marker}"',
        "l": [marker, Decimal("2.5")],
    }
    # The module-level state is clean for the next line.
    assert flatten.encode_line({"n": b"3.5"}) == b'{"n":3.5}\n'


def test_unexpected_types_are_a_bug_not_silently_written():
    with pytest.raises(TypeError):
        flatten.encode_line({"x": object()})
    assert flatten.encode_line({"n": b"1.5"}) == b'{"n":1.5}\n'


class TestNumberValue:
    @pytest.mark.parametrize(
        ("s", "value"),
        [
            ("0", 0),
            ("42", 42),
            ("-42", -42),
            ("007", 7),
            ("+7", 7),
            ("9" * 38, int("9" * 38)),
            ("1" + "0" * 125, 10**125),
            ("19.99", b"19.99"),
            ("-0.5", b"-0.5"),
            ("0.000001", b"0.000001"),
            ("1E+5", b"1E+5"),
            ("1e-130", b"1e-130"),
            ("-0", b"-0"),
            ("-0.0", b"-0.0"),
            (".5", b"0.5"),
            ("5.", b"5"),
            ("+.5e-3", b"0.5e-3"),
            ("00.10", b"0.10"),
            ("1" * 5000, ("1" * 5000).encode()),
        ],
    )
    def test_values(self, s, value):
        result = number_value(s)
        assert result == value and type(result) is type(value)

    @pytest.mark.parametrize(
        "s",
        [
            "",
            ".",
            "-",
            "+",
            "e5",
            "1e",
            "1e+",
            "1.2.3",
            "--1",
            "1-",
            "NaN",
            "nan",
            "inf",
            "-Infinity",
            "0x10",
            " 1",
            "1 ",
            "1_0",
            "\u0661",  # ARABIC-INDIC DIGIT ONE
            "\uff11",  # FULLWIDTH DIGIT ONE
            "1,5",
            None,
            1,
            1.5,
            True,
        ],
    )
    def test_rejects(self, s):
        with pytest.raises(InvalidNumber):
            number_value(s)
