"""The transform as Firehose will call it (the synthesized processor settings), against what account B's
Athena table declares: the two halves of the data path fit together."""

from __future__ import annotations

import base64
import contextlib
import io
import json

import pytest

from benchmarks.corpus import make_events, make_records
from consumer.catalog import METADATA_COLUMNS
from lambdas.transform.handler import LAMBDA_RESPONSE_LIMIT, MAX_OUTPUT_RECORD_BYTES, handler
from tests.conftest import template_of


@pytest.fixture(scope="module")
def processor_buffer_bytes(synthesized) -> int:
    template = template_of(synthesized.producer_stage.producer)
    (stream,) = template.find_resources("AWS::KinesisFirehose::DeliveryStream").values()
    (processor,) = stream["Properties"]["ExtendedS3DestinationConfiguration"]["ProcessingConfiguration"]["Processors"]
    params = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
    return int(params["BufferSizeInMBs"]) * 1024 * 1024


@pytest.fixture(scope="module")
def responses(processor_buffer_bytes):
    # A realistic mix (INSERT/MODIFY/REMOVE, nested maps, sets, decimals), batched as Firehose would.
    events = make_events(make_records(target_bytes=2 * processor_buffer_bytes), batch_bytes=processor_buffer_bytes)
    with contextlib.redirect_stdout(io.StringIO()):
        return [(event, handler(event, None)) for event in events]


def test_every_batch_fits_lambdas_response_limit(responses):
    for _, response in responses:
        assert len(json.dumps(response).encode()) < LAMBDA_RESPONSE_LIMIT


def test_every_record_is_answered_and_delivered(responses):
    for event, response in responses:
        assert [r["recordId"] for r in response["records"]] == [r["recordId"] for r in event["records"]]
        assert {r["result"] for r in response["records"]} == {"Ok"}
        for record in response["records"]:
            assert len(base64.b64decode(record["data"])) <= MAX_OUTPUT_RECORD_BYTES


def test_lines_carry_the_columns_the_athena_table_declares(responses, cfg):
    declared = [name for name, _ in METADATA_COLUMNS]
    keys = [cfg.table.partition_key, cfg.table.sort_key]
    for _, response in responses:
        for record in response["records"]:
            line = base64.b64decode(record["data"]).decode()
            assert line.endswith("\n") and line.count("\n") == 1  # JSON Lines: one object per line
            row = json.loads(line)
            assert list(row)[: len(declared)] == declared
            assert all(key in row for key in keys)
            assert isinstance(row["_is_deleted"], bool) and isinstance(row["_is_ttl_delete"], bool)
