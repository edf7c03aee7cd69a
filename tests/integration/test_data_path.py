"""The transform as Firehose will call it (the synthesized processor settings of each table's delivery stream),
against what account B's Athena table of that table declares: the two halves of the data path fit together."""

from __future__ import annotations

import base64
import contextlib
import io
import json
from typing import Any

import pytest

from benchmarks.corpus import make_events, make_records
from consumer.columns import METADATA_COLUMNS
from lambdas.transform.handler import LAMBDA_RESPONSE_LIMIT, MAX_OUTPUT_RECORD_BYTES, handler
from shared import naming
from shared.config import TableSpec
from tests.conftest import template_of

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def processor_buffer_bytes(synthesized) -> dict[str, int]:
    """Each table's processor buffer, read from its synthesized delivery stream."""
    template = template_of(synthesized.producer_stage.producer)
    by_stream = {}
    for stream in template.find_resources("AWS::KinesisFirehose::DeliveryStream").values():
        props = stream["Properties"]
        (processor,) = props["ExtendedS3DestinationConfiguration"]["ProcessingConfiguration"]["Processors"]
        params = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
        by_stream[props["DeliveryStreamName"]] = int(params["BufferSizeInMBs"]) * MIB
    return {spec.name: by_stream[names.delivery_stream] for spec, names in naming.tables(synthesized.cfg)}


def _typed_key(key_type: str, n: int) -> dict[str, str]:
    if key_type == "N":
        return {"N": str(n)}
    if key_type == "B":
        return {"B": base64.b64encode(n.to_bytes(8, "big")).decode()}
    return {"S": f"key#{n}"}


def _rekeyed(records: list[dict[str, Any]], spec: TableSpec) -> list[dict[str, Any]]:
    """The corpus's change records keyed like ``spec``'s table (the corpus uses pk/sk strings)."""
    out = []
    for n, record in enumerate(records):
        change = json.loads(base64.b64decode(record["data"]))
        ddb = change["dynamodb"]
        keys = {spec.partition_key: _typed_key(spec.partition_key_type, n)}
        if spec.sort_key:
            keys[spec.sort_key] = _typed_key(spec.sort_key_type, n + 1)
        ddb["Keys"] = keys
        for image in ("NewImage", "OldImage"):
            if image in ddb:
                ddb[image] = {**{k: v for k, v in ddb[image].items() if k not in ("pk", "sk")}, **keys}
        data = base64.b64encode(json.dumps(change, ensure_ascii=False).encode()).decode()
        out.append({**record, "data": data})
    return out


@pytest.fixture(scope="module")
def responses(processor_buffer_bytes, cfg) -> dict[str, list[tuple[dict[str, Any], dict[str, Any]]]]:
    # A realistic mix (INSERT/MODIFY/REMOVE, nested maps, sets, decimals), batched as Firehose would.
    result = {}
    for spec in cfg.tables:
        buffer = processor_buffer_bytes[spec.name]
        events = make_events(_rekeyed(make_records(target_bytes=2 * buffer), spec), batch_bytes=buffer)
        with contextlib.redirect_stdout(io.StringIO()):
            result[spec.name] = [(event, handler(event, None)) for event in events]
    return result


def test_every_batch_fits_lambdas_response_limit(responses):
    for table_responses in responses.values():
        for _, response in table_responses:
            assert len(json.dumps(response).encode()) < LAMBDA_RESPONSE_LIMIT


def test_every_record_is_answered_and_delivered(responses):
    for table_responses in responses.values():
        for event, response in table_responses:
            assert [r["recordId"] for r in response["records"]] == [r["recordId"] for r in event["records"]]
            assert {r["result"] for r in response["records"]} == {"Ok"}
            for record in response["records"]:
                assert len(base64.b64decode(record["data"])) <= MAX_OUTPUT_RECORD_BYTES


def test_lines_carry_the_keys_the_athena_table_maps(responses, synthesized):
    consumer = template_of(synthesized.consumer_stage.data_lake)
    glue = {r["Properties"]["TableInput"]["Name"]: r for r in consumer.find_resources("AWS::Glue::Table").values()}
    metadata = [name for name, _ in METADATA_COLUMNS]
    for spec, names in naming.tables(synthesized.cfg):
        storage = glue[names.glue_table]["Properties"]["TableInput"]["StorageDescriptor"]
        mapping = storage["SerdeInfo"]["Parameters"]
        mapped = [mapping[f"mapping.{c['Name']}"] for c in storage["Columns"]]
        # The metadata and key columns are in every line; configured item columns when the item has them.
        always = mapped[: len(metadata) + len(spec.key_attributes)]
        for _, response in responses[spec.name]:
            for record in response["records"]:
                line = base64.b64decode(record["data"]).decode()
                assert line.endswith("\n") and line.count("\n") == 1  # JSON Lines: one object per line
                row = json.loads(line)
                assert list(row)[: len(metadata)] == metadata
                assert all(key in row for key in always)
                assert isinstance(row["_is_deleted"], bool) and isinstance(row["_is_ttl_delete"], bool)
                assert row["_origin"] == "stream"
