"""Column types (``tables[].columns``): both sides of every bound Athena sets, and the exact reason for each way a type
can be wrong (https://docs.aws.amazon.com/athena/latest/ug/data-types.html: DECIMAL precision up to 38 and scale
up to the precision, VARCHAR length 1 to 65535; ARRAY takes one type, MAP a primitive key and a value, STRUCT named
fields)."""

from __future__ import annotations

import pytest

from shared import config
from tests import configs
from tests.unit.test_config_loading import _problems

DECIMAL = "decimal is written decimal(precision,scale), precision 1-38, scale 0 to precision"
VARCHAR = "varchar is written varchar(length), length 1-65535"
STRUCT = "a struct's fields are written name:type, the name of [a-z0-9_]"
MAP_KEY = "a map's key type must be a primitive type such as 'string'"
ARITY = "array<T> takes one type, map<K,V> two"

CASES = [
    # decimal: precision 1..38, scale 0..precision, scale optional
    ("decimal(1)", None),
    ("decimal(1,0)", None),
    ("decimal(1,1)", None),
    ("decimal(38,38)", None),
    ("decimal(38,0)", None),
    ("decimal(0)", DECIMAL),
    ("decimal(0,0)", DECIMAL),
    ("decimal(39,0)", DECIMAL),
    ("decimal(2,3)", DECIMAL),
    ("decimal", DECIMAL),
    ("decimal()", DECIMAL),
    # varchar: one length, 1..65535
    ("varchar(1)", None),
    ("varchar(65535)", None),
    ("varchar(0)", VARCHAR),
    ("varchar(65536)", VARCHAR),
    ("varchar", VARCHAR),
    ("varchar(5,1)", VARCHAR),
    # nested types
    ("array<string>", None),
    ("array<decimal(38,2)>", None),
    ("map<string,array<int>>", None),
    ("struct<a:int,b_2:array<string>,c:struct<d:decimal(5,1)>>", None),
    ("STRUCT< A : INT >", None),  # case and spaces are free
    ("array<string", "array<...> is not closed with '>'"),
    ("map<string,int", "map<...> is not closed with '>'"),
    ("array<string,int>", ARITY),
    ("map<string>", ARITY),
    ("map<string,int,int>", ARITY),
    ("map<array<string>,int>", MAP_KEY),
    ("map<decimal(5,1),int>", None),  # a primitive key with parameters
    ("struct<int>", STRUCT),
    ("struct<a-b:int>", STRUCT),
    ("struct<>", STRUCT),
    ("array<>", "'>' is not a type"),
    ("foo", "'foo' is not a type"),
    ("", "'' is not a type"),
    ("(5)", "'(5)' is not a type"),
    ("array", "'array' is not a type"),
    ("decimal(5)x", "unexpected 'x' after the type"),
    ("string,", "unexpected ',' after the type"),
]


@pytest.mark.parametrize(("text", "reason"), CASES, ids=[repr(t) for t, _ in CASES])
def test_each_type_is_accepted_or_refused_with_its_exact_reason(text, reason):
    assert config._hive_type_problem(text) == reason


def test_a_refused_type_names_the_column_and_says_why_in_one_line():
    raw = configs.default()
    raw["tables"][0]["columns"] = {"total": "decimal(39,2)", "note": "varchar(10)"}
    (problem,) = _problems(raw)
    assert problem.startswith("datalake.tables[0].columns.total = 'decimal(39,2)': must be an Athena column type")
    assert problem.endswith(f"({DECIMAL})")
    assert config._hive_type_problem("varchar(10)") is None
