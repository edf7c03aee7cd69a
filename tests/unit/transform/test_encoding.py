"""The line is written as JSON text directly: it must be exactly the compact encoding json.dumps
would give, and N strings must become exact JSON number tokens."""

import base64
import json

import pytest

from benchmarks.corpus import make_records
from lambdas.transform import flatten
from lambdas.transform.numbers import InvalidNumber, number_token
from lambdas.transform.record import METADATA_COLUMNS

from .builders import SHARD, assert_canonical, b64, change_record, event, item, number_tokens, run


def lines_of(*changes):
    response, _ = run(event(*(b64(c) for c in changes)))
    assert {r["result"] for r in response["records"]} == {"Ok"}
    return [base64.b64decode(r["data"]) for r in response["records"]]


def test_corpus_lines_are_exactly_the_compact_json_encoding():
    records = make_records(200_000, seed=7)
    response, _ = run({"records": records})
    assert len(response["records"]) == len(records)
    for result in response["records"]:
        assert result["result"] == "Ok"
        assert_canonical(base64.b64decode(result["data"]))


def test_awkward_names_and_strings_are_escaped_like_json_dumps():
    text = 'q"uote back\\slash \n\t\x00\x1f \u2028 東京 😀'
    (line,) = lines_of(
        change_record(
            "INSERT",
            new=item(
                **{
                    text: {"S": text},
                    "m": {"M": {text: {"M": {text: {"N": "1"}}}, "e": {"M": {}}}},
                    "l": {"L": [{"M": {text: {"S": text}}}, {"SS": [text]}, {"M": {}}, {"L": []}]},
                }
            ),
        )
    )
    assert_canonical(line)
    obj = json.loads(line)
    assert obj[text] == text
    assert obj[f"m.{text}.{text}"] == 1
    assert obj["l"][0] == {text: text}


def test_metadata_and_missing_keys_are_part_of_the_same_object():
    (line,) = lines_of(
        change_record("REMOVE", old={"other": {"S": "x"}}, keys={"pk": {"S": "K"}, "sk": {"N": "7"}}),
    )
    assert_canonical(line)
    obj = json.loads(line)
    assert list(obj)[: len(METADATA_COLUMNS)] == list(METADATA_COLUMNS)  # the text is written by hand
    assert (obj["_is_deleted"], obj["_is_ttl_delete"], obj["_shard_id"]) == (True, False, SHARD)
    assert (obj["other"], obj["pk"], obj["sk"]) == ("x", "K", 7)


@pytest.mark.parametrize(
    ("sent", "token"),
    [
        ("0", "0"),
        ("42", "42"),
        ("-42", "-42"),
        ("9" * 38, "9" * 38),
        ("19.99", "19.99"),
        ("-0.5", "-0.5"),
        ("0.000001", "0.000001"),
        ("1.50", "1.50"),
        ("-0", "-0"),
        ("-0.0", "-0.0"),
        ("1E+5", "1E+5"),
        ("1e-130", "1e-130"),
        ("1" * 5000, "1" * 5000),  # no int() on the way, so no int() digit limit
        # Only what JSON's grammar forbids is normalised:
        ("007", "7"),
        ("+7", "7"),
        ("00.10", "0.10"),
        (".5", "0.5"),
        ("5.", "5"),
        ("+.5e-3", "0.5e-3"),
        ("-00", "-0"),
    ],
)
def test_number_tokens(sent, token):
    assert number_token(sent) == token
    (line,) = lines_of(
        change_record(
            "INSERT",
            new=item(
                top={"N": sent},
                m={"M": {"n": {"N": sent}}},
                l={"L": [{"N": sent}, {"M": {"n": {"N": sent}}}]},
                ns={"NS": [sent]},
            ),
        )
    )
    assert_canonical(line)
    cols = number_tokens(b64(line))
    num = ("num", token)
    assert (cols["top"], cols["m.n"], cols["l"], cols["ns"]) == (num, num, [num, {"n": num}], [num])


@pytest.mark.parametrize(
    "sent",
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
def test_number_token_rejects(sent):
    with pytest.raises(InvalidNumber):
        number_token(sent)


def test_key_caches_are_bounded(monkeypatch):
    monkeypatch.setattr(flatten, "_CACHE_MAX", 3)
    for cache in ("_TOP_KEYS", "_OBJECT_KEYS", "_NESTED_KEYS", "_CHILD_PREFIXES"):
        monkeypatch.setattr(flatten, cache, {})
    monkeypatch.setattr(flatten, "_nested_key_count", 0)
    names = {f"attr{i}": {"S": str(i)} for i in range(10)}
    maps = {f"map{i}": {"M": {"inner": {"M": dict(names)}}} for i in range(5)}
    for _ in range(2):  # the second record meets full caches
        (line,) = lines_of(change_record("INSERT", new=item(**names, **maps, l={"L": [{"M": names}]})))
        assert_canonical(line)
        obj = json.loads(line)
        for i in range(10):
            assert obj[f"attr{i}"] == obj[f"map4.inner.attr{i}"] == obj["l"][0][f"attr{i}"] == str(i)
    assert len(flatten._TOP_KEYS) == len(flatten._OBJECT_KEYS) == len(flatten._CHILD_PREFIXES) == 3
    assert len(flatten._NESTED_KEYS) == 3
    assert sum(map(len, flatten._NESTED_KEYS.values())) == flatten._nested_key_count == 3
    assert flatten._UNCACHED == {}


def test_long_key_texts_are_not_cached(monkeypatch):
    # Deep paths of long names would make every record cache megabytes in a warm container.
    for cache in ("_TOP_KEYS", "_OBJECT_KEYS", "_NESTED_KEYS", "_CHILD_PREFIXES"):
        monkeypatch.setattr(flatten, cache, {})
    monkeypatch.setattr(flatten, "_nested_key_count", 0)
    long = "n" * flatten._CACHED_KEY_CHARS
    value = {"S": "x"}
    for level in range(5):
        value = {"M": {f"{level}{long}": value, "short": {"N": "1"}}}
    (line,) = lines_of(change_record("INSERT", new=item(**{long: value}, l={"L": [{"M": {long: {"S": "y"}}}]})))
    assert_canonical(line)
    obj = json.loads(line)
    assert obj[".".join([long, *(f"{level}{long}" for level in reversed(range(5)))])] == "x"
    assert obj[f"{long}.4{long}.short"] == 1
    texts = [
        *flatten._TOP_KEYS.values(),
        *flatten._OBJECT_KEYS.values(),
        *flatten._NESTED_KEYS,
        *(key for keys in flatten._NESTED_KEYS.values() for key in keys.values()),
        *flatten._CHILD_PREFIXES,
        *flatten._CHILD_PREFIXES.values(),
    ]
    assert texts and max(map(len, texts)) <= flatten._CACHED_KEY_CHARS
    assert long not in "".join(texts)
    assert flatten._UNCACHED == {}
