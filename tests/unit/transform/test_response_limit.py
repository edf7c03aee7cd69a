"""Lambda's 6 MB response limit: fail over to original data, never lose a recordId."""

import base64
import json

import pytest

from lambdas.transform import handler as transform_handler
from lambdas.transform.record import METADATA_COLUMNS

from .builders import b64, change_record, event, item, run


def small_change(i):
    # Tiny items: the metadata columns make the output line larger than the input record, the
    # only way a response can outgrow the request that carried it.
    return change_record("INSERT", keys={"pk": {"S": f"K{i}"}})


def test_response_size_is_exact_for_the_runtime_serialiser():
    evt = event(b64(small_change(1)), "garbage", b64(small_change(2)), ids=["a", 'we"ird\\id', "ü-id"])
    response, logs = run(evt)
    assert transform_handler.response_size(response["records"]) == len(json.dumps(response))
    assert logs[0]["ResponseBytes"] == len(json.dumps(response))


def test_fits_untouched_when_under_budget():
    evt = event(*(b64(small_change(i)) for i in range(20)))
    response, logs = run(evt, response_budget=10**6)
    assert {r["result"] for r in response["records"]} == {"Ok"}
    assert logs[0]["failedForResponseSize"] == 0


def test_over_budget_fails_over_fewest_records_with_original_data():
    datas = [b64(small_change(i)) for i in range(50)]
    full, _ = run(event(*datas), response_budget=10**6)
    full_size = len(json.dumps(full))
    budget = full_size - 1000  # a few records must go back as originals
    response, logs = run(event(*datas), response_budget=budget)
    results = response["records"]
    assert [r["recordId"] for r in results] == [r["recordId"] for r in full["records"]]
    assert len(json.dumps(response)) <= budget
    failed = [i for i, r in enumerate(results) if r["result"] == "ProcessingFailed"]
    assert failed, "something had to give"
    for i in failed:
        assert results[i]["data"] == datas[i]
    # Each failover saves (output - input - 14) bytes; no smaller set of records would do.
    savings = sorted((len(full["records"][i]["data"]) - len(datas[i]) - 14 for i in range(len(datas))), reverse=True)
    needed = full_size - budget
    assert sum(savings[: len(failed) - 1]) < needed <= sum(savings[: len(failed)])
    log = logs[0]
    assert log["failedForResponseSize"] == len(failed) == log["RecordsFailed"]
    assert log["RecordsOk"] == len(datas) - len(failed)
    assert {f["reason"] for f in log["failures"]} == {"response size limit: original data returned instead"}
    assert log["OutputBytes"] == sum(len(base64.b64decode(r["data"])) for r in results if r["result"] == "Ok")


def test_failover_is_deterministic_on_ties():
    datas = [b64(small_change(i)) for i in range(10)]  # equal sizes: equal savings
    full, _ = run(event(*datas), response_budget=10**6)
    budget = len(json.dumps(full)) - 1
    response, _ = run(event(*datas), response_budget=budget)
    assert [r["result"] for r in response["records"]] == ["ProcessingFailed"] + ["Ok"] * 9


def test_when_even_originals_do_not_fit_the_invocation_fails(capsys):
    datas = [b64(small_change(i)) for i in range(10)]
    with pytest.raises(transform_handler.ResponseTooLarge):
        transform_handler.process_event(event(*datas), response_budget=500)
    (line,) = capsys.readouterr().out.splitlines()
    log = json.loads(line)
    assert log["level"] == "ERROR"
    assert log["RecordsFailed"] == 10 and log["RecordsOk"] == 0
    assert "ResponseTooLarge" in log["error"]


def test_real_limit_with_flattening_that_multiplies_output_size():
    # Flattening repeats a map's (long) name in every column under it: ~5 KB records that become
    # ~200 KB lines. 40 of them make a ~0.3 MB request but a ~10 MB response.
    long_name = "n" * 1000
    leaves = {f"k{j}": {"S": "v"} for j in range(200)}
    datas = [b64(change_record("INSERT", new=item(**{long_name: {"M": leaves}}), eventID=f"e{i}")) for i in range(40)]
    response, logs = run(event(*datas))
    size = len(json.dumps(response))
    assert size <= transform_handler.RESPONSE_BUDGET < transform_handler.LAMBDA_RESPONSE_LIMIT == 6_291_456
    results = response["records"]
    assert [r["recordId"] for r in results] == [f"rec-{i:05d}" for i in range(len(datas))]
    failed = [i for i, r in enumerate(results) if r["result"] == "ProcessingFailed"]
    assert 0 < len(failed) < len(datas)
    assert all(results[i]["data"] == datas[i] for i in failed)
    ok = [r for r in results if r["result"] == "Ok"]
    assert all(len(json.loads(base64.b64decode(r["data"]))) == len(METADATA_COLUMNS) + 201 for r in ok)
    assert logs[0]["failedForResponseSize"] == len(failed)
