"""Attribute value -> column mapping for every DynamoDB type, nesting and naming rule."""

import base64
import json
from decimal import Decimal

import pytest

from .builders import b64, change_record, decode_line, event, item, item_columns, number_tokens, run, transform_one


def columns_of(**attrs):
    return item_columns(transform_one(change_record("INSERT", new=item(**attrs))))


def test_scalar_types_map_to_plain_json():
    cols = columns_of(
        s={"S": "hello"},
        n={"N": "42"},
        t={"BOOL": True},
        f={"BOOL": False},
        nothing={"NULL": True},
        blob={"B": "AAECAwQ="},
    )
    assert cols == {
        "pk": "ORDER#1",
        "s": "hello",
        "n": Decimal(42),
        "t": True,
        "f": False,
        "nothing": None,
        "blob": "AAECAwQ=",
    }


def test_sets_become_arrays():
    cols = columns_of(ss={"SS": ["a", "b"]}, ns={"NS": ["1", "-2.5", "1E+3"]}, bs={"BS": ["AA==", "AQI="]})
    assert cols["ss"] == ["a", "b"]
    assert cols["ns"] == [Decimal("1"), Decimal("-2.5"), Decimal("1000")]
    assert cols["bs"] == ["AA==", "AQI="]


def test_empty_string_and_empty_collections_are_kept():
    cols = columns_of(
        es={"S": ""},
        el={"L": []},
        ess={"SS": []},
        ens={"NS": []},
        ebs={"BS": []},
        eb={"B": ""},
        em={"M": {}},
    )
    assert cols == {"pk": "ORDER#1", "es": "", "el": [], "ess": [], "ens": [], "ebs": [], "eb": "", "em": {}}


def test_nested_maps_flatten_at_any_depth():
    cols = columns_of(
        address={
            "M": {"city": {"S": "Zürich"}, "geo": {"M": {"lat": {"N": "47.3769"}, "deep": {"M": {"x": {"N": "1"}}}}}}
        }
    )
    assert cols == {
        "pk": "ORDER#1",
        "address.city": "Zürich",
        "address.geo.lat": Decimal("47.3769"),
        "address.geo.deep.x": Decimal(1),
    }


def test_empty_nested_map_is_its_own_value():
    cols = columns_of(m={"M": {"empty": {"M": {}}, "x": {"S": "y"}}})
    assert cols == {"pk": "ORDER#1", "m.empty": {}, "m.x": "y"}


def test_lists_keep_maps_as_nested_objects_and_convert_elements_recursively():
    cols = columns_of(
        lines={
            "L": [
                {
                    "M": {
                        "sku": {"S": "A"},
                        "qty": {"N": "2"},
                        "tags": {"SS": ["x"]},
                        "sub": {"M": {"k": {"BOOL": True}}},
                    }
                },
                {"N": "7.25"},
                {"NULL": True},
                {"L": [{"S": "nested"}, {"B": "AA=="}, {"NS": ["3"]}]},
                {"M": {}},
                {"M": {"a.b": {"S": "dots stay inside objects"}, "_u": {"S": "so do underscores"}}},
            ]
        }
    )
    assert cols["lines"] == [
        {"sku": "A", "qty": Decimal(2), "tags": ["x"], "sub": {"k": True}},
        Decimal("7.25"),
        None,
        ["nested", "AA==", [Decimal(3)]],
        {},
        {"a.b": "dots stay inside objects", "_u": "so do underscores"},
    ]


def test_unicode_round_trips_as_utf8():
    text = 'naïve café 東京 😀 \u2028 "quoted" back\\slash \n tab\t nul\x00'
    change = change_record("INSERT", new=item(**{"ключ": {"S": text}}))
    response, _ = run(event(b64(change)))
    raw = decode_line(response["records"][0]["data"])
    assert "東京 😀".encode() in raw  # written as UTF-8, not \\u escapes
    assert json.loads(raw)["ключ"] == text


def test_attribute_named_like_a_type_tag_is_not_confused_with_one():
    cols = columns_of(S={"M": {"S": {"S": "inner"}, "N": {"N": "5"}}}, N={"L": [{"M": {"S": {"S": "x"}}}]})
    assert cols == {"pk": "ORDER#1", "S.S": "inner", "S.N": Decimal(5), "N": [{"S": "x"}]}


class TestColumnNames:
    def test_dot_in_attribute_name_does_not_collide_with_nesting(self):
        # "a.b" the attribute and a -> {b} the map must both survive, in either order.
        for attrs in (
            {"a.b": {"S": "literal"}, "a": {"M": {"b": {"S": "nested"}}}},
            {"a": {"M": {"b": {"S": "nested"}}}, "a.b": {"S": "literal"}},
        ):
            cols = columns_of(**attrs)
            assert cols == {"pk": "ORDER#1", "a%2Eb": "literal", "a.b": "nested"}

    def test_percent_is_escaped_so_escapes_cannot_collide(self):
        cols = columns_of(**{"a%2Eb": {"S": "percent"}, "a.b": {"S": "dot"}, "m": {"M": {"x%y": {"S": "z"}}}})
        assert cols == {"pk": "ORDER#1", "a%252Eb": "percent", "a%2Eb": "dot", "m.x%25y": "z"}

    def test_leading_underscore_is_escaped_away_from_metadata(self):
        obj = transform_one(
            change_record(
                "INSERT",
                new=item(_event_name={"S": "mine"}, __x={"N": "1"}, m={"M": {"_inner": {"S": "kept"}}}),
            )
        )
        assert obj["_event_name"] == "INSERT"
        assert obj["%5Fevent_name"] == "mine"
        assert obj["%5F_x"] == Decimal(1)
        assert obj["m._inner"] == "kept"  # only the column's first character is reserved
        assert not [k for k in item_columns(obj) if k.startswith("_")]

    def test_empty_names(self):
        cols = columns_of(**{"": {"S": "top"}, "m": {"M": {"": {"S": "nested"}}}})
        assert cols == {"pk": "ORDER#1", "": "top", "m.": "nested"}


class TestNumbers:
    @pytest.mark.parametrize(
        "n",
        [
            "0",
            "7",
            "-7",
            "12345678901234567890123456789012345678",
            "-12345678901234567890123456789012345678",
            "1234567890123456789012345678901234567.8",
            "0.12345678901234567890123456789012345678",
            "9.9999999999999999999999999999999999999E+125",
            "1E-130",
            "1e5",
            "-2.5E-3",
            "1E+0",
            "19.99",
            "-0.0000001",
            "0.1",
            "100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
            "0.00000000000000000000000000000000000000000000000000000000000000000000000000000000001",
            "-0",
            "1.50",
        ],
    )
    def test_exact_digits_are_emitted_verbatim(self, n):
        change = change_record("INSERT", new=item(n={"N": n}, ns={"NS": [n]}, lst={"L": [{"N": n}]}))
        response, _ = run(event(b64(change)))
        obj = number_tokens(response["records"][0]["data"])
        assert obj["n"] == ("num", n)
        assert obj["ns"] == [("num", n)]
        assert obj["lst"] == [("num", n)]

    @pytest.mark.parametrize(
        ("sent", "token"),
        [
            ("+5", "5"),
            (".5", "0.5"),
            ("-.5", "-0.5"),
            ("5.", "5"),
            ("007", "7"),
            ("-007.50", "-7.50"),
            ("+1E+3", "1E+3"),
        ],
    )
    def test_only_what_json_forbids_is_normalised(self, sent, token):
        change = change_record("INSERT", new=item(n={"N": sent}))
        response, _ = run(event(b64(change)))
        assert number_tokens(response["records"][0]["data"])["n"] == ("num", token)

    def test_numbers_never_pass_through_float(self):
        # 2**53 + 1 and 0.1 + 0.2 style values are where a float round trip would show.
        cols = columns_of(a={"N": "9007199254740993"}, b={"N": "0.30000000000000004441"})
        assert cols["a"] == Decimal("9007199254740993")
        assert cols["b"] == Decimal("0.30000000000000004441")

    def test_binary_is_passed_as_sent(self):
        payload = bytes(range(256))
        encoded = base64.b64encode(payload).decode()
        assert columns_of(b={"B": encoded})["b"] == encoded
