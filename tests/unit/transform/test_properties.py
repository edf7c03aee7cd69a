"""Property-based tests: the documented mapping holds for arbitrary items, and every batch is
answered record for record whatever garbage it carries."""

import base64
import json
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdas.transform import handler as transform_handler

from .builders import assert_canonical, b64, change_record, event, item_columns, number_tokens, parse_line, run

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- strategies ---------------------------------------------------------------------------------

# Names mix arbitrary text with the characters the naming rules care about.
names = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["", ".", "%", "_", "_x", "a.b", "a%2Eb", "%5Fx", "a", "b", "S", "N", "M", "L", "..", "_."]),
)

# N strings that are already valid JSON number tokens, so the output token must equal them:
# DynamoDB's canonical form (up to 38 digits, negatives, fractions) plus exponent spellings.
digits38 = st.integers(min_value=-(10**38 - 1), max_value=10**38 - 1).map(str)
fractions = st.builds(
    lambda whole, zeros, frac, neg: ("-" if neg else "") + f"{whole}.{zeros}{str(frac).rstrip('0')}",
    st.integers(min_value=0, max_value=10**20),
    st.sampled_from(["", "0", "00000"]),
    st.integers(min_value=1, max_value=10**17),
    st.booleans(),
)
exponents = st.builds(
    lambda mantissa, e, mark: f"{mantissa}{mark}{e:+d}" if e % 2 else f"{mantissa}{mark}{e}",
    st.sampled_from(["1", "-1", "9.99", "1.5", "-0.5", "12345678901234567890123456789012345678"]),
    st.integers(min_value=-130, max_value=125),
    st.sampled_from(["e", "E"]),
)
numbers = st.one_of(digits38, fractions, exponents, st.sampled_from(["0", "-0", "0.0", "1.50", "100"]))
b64s = st.binary(max_size=12).map(lambda b: base64.b64encode(b).decode())

leaves = st.one_of(
    st.text(max_size=12).map(lambda s: {"S": s}),
    numbers.map(lambda n: {"N": n}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    b64s.map(lambda b: {"B": b}),
    st.lists(st.text(max_size=6), max_size=3, unique=True).map(lambda xs: {"SS": xs}),
    st.lists(numbers, max_size=3).map(lambda xs: {"NS": xs}),
    st.lists(b64s, max_size=3).map(lambda xs: {"BS": xs}),
)
values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda xs: {"L": xs}),
        st.dictionaries(names, children, max_size=4).map(lambda m: {"M": m}),
    ),
    max_leaves=20,
)
images = st.dictionaries(names, values, max_size=8).map(lambda m: {**m, "pk": {"S": "KEY"}})


# --- independent reference for the documented mapping --------------------------------------------


def expected_columns(image, number):
    """Columns per docs/transform-contract.md, written independently of the implementation."""
    out = {}

    def component(name):
        return name.replace("%", "%25").replace(".", "%2E")

    def plain(av):
        (tag, v), *rest = av.items()
        assert not rest
        return {
            "S": lambda: v,
            "N": lambda: number(v),
            "BOOL": lambda: v,
            "NULL": lambda: None,
            "B": lambda: v,
            "SS": lambda: list(v),
            "NS": lambda: [number(x) for x in v],
            "BS": lambda: list(v),
            "L": lambda: [plain(x) for x in v],
            "M": lambda: {k: plain(x) for k, x in v.items()},
        }[tag]()

    def visit(m, path):
        for name, av in m.items():
            if path is not None:
                column = path + "." + component(name)
            else:
                column = component(name)
                if column.startswith("_"):
                    column = "%5F" + column[1:]
            ((tag, v),) = av.items()
            if tag == "M" and v:
                visit(v, column)
            else:
                assert column not in out, f"mapping is not injective at {column!r}"
                out[column] = plain(av)

    visit(image, None)
    return out


# --- properties ------------------------------------------------------------------------------------


STALE = {"pk": {"S": "KEY"}, "stale": {"S": "must not leak"}}


@SETTINGS
@given(image=images, event_name=st.sampled_from(["INSERT", "MODIFY", "REMOVE"]))
def test_any_item_survives_marshal_then_flatten(image, event_name):
    keys = {"pk": {"S": "KEY"}}
    if event_name == "REMOVE":
        change = change_record(event_name, new=STALE, old=image, keys=keys)
    else:
        change = change_record(event_name, new=image, old=STALE if event_name == "MODIFY" else None, keys=keys)
    response, _ = run(event(b64(change)))
    (result,) = response["records"]
    assert result["result"] == "Ok"
    # Values, numbers as exact Decimals ...
    assert item_columns(parse_line(result["data"])) == expected_columns(image, Decimal)
    # ... and every number token carries exactly the digits that were sent.
    assert item_columns(number_tokens(result["data"])) == expected_columns(image, lambda n: ("num", n))
    # ... in exactly the compact form json.dumps would give.
    assert_canonical(base64.b64decode(result["data"]))


garbage = st.one_of(
    st.binary(max_size=40).map(lambda b: ("bad", base64.b64encode(b).decode())),
    st.text(max_size=40).map(lambda t: ("bad", t)),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3).map(lambda d: ("bad", b64(json.dumps(d)))),
    st.sampled_from(["UPSERT", "", "insert"]).map(lambda e: ("bad", b64(change_record(e, new={"pk": {"S": "k"}})))),
    st.sampled_from([{"X": "1"}, {"N": "one"}, {"BOOL": "yes"}, {"S": 1}, {"M": []}, {}]).map(
        lambda av: ("bad", b64(change_record("INSERT", new={"pk": {"S": "k"}, "a": {"L": [av]}})))
    ),
    images.map(lambda img: ("bad", b64(json.dumps(change_record("INSERT", new=img))[:-1]))),
)
valid = st.tuples(images, st.sampled_from(["INSERT", "MODIFY", "REMOVE"])).map(
    lambda t: ("ok", b64(change_record(t[1], new=t[0], old=t[0])))
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.lists(
        st.tuples(st.text(min_size=1, max_size=8), st.one_of(valid, garbage)), max_size=10, unique_by=lambda t: t[0]
    )
)
def test_every_record_is_answered_once_in_order(batch):
    ids = [record_id for record_id, _ in batch]
    batch = [kind_and_data for _, kind_and_data in batch]
    response, logs = run(event(*(data for _, data in batch), ids=ids))
    results = response["records"]
    assert [r["recordId"] for r in results] == ids
    for (kind, data), result in zip(batch, results, strict=True):
        assert set(result) == {"recordId", "result", "data"}
        assert result["result"] in {"Ok", "Dropped", "ProcessingFailed"}
        if kind == "ok":
            assert result["result"] == "Ok"
            line = base64.b64decode(result["data"], validate=True)
            assert line.endswith(b"\n") and b"\n" not in line[:-1]
            assert isinstance(json.loads(line), dict)
        else:
            assert result["result"] == "ProcessingFailed"
            assert result["data"] == data
    assert transform_handler.response_size(results) == len(json.dumps(response))
    assert logs[0]["RecordsOk"] + logs[0]["RecordsFailed"] == len(batch)
