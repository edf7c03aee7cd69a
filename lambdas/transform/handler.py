"""Firehose data-transformation Lambda: DynamoDB change records -> flat JSON Lines.

Handler string: ``transform.handler.handler`` (the asset root is ``lambdas/``).
The output contract is documented in docs/transform-contract.md.
"""

from __future__ import annotations

import binascii
import json
from typing import Any

from .metrics import BatchSummary, log_line, metrics_namespace
from .record import MAX_OUTPUT_RECORD_BYTES, failure_reason, transform_data

__all__ = [
    "LAMBDA_RESPONSE_LIMIT",
    "MAX_OUTPUT_RECORD_BYTES",
    "RESPONSE_BUDGET",
    "InvalidEvent",
    "ResponseTooLarge",
    "handler",
    "process_event",
    "response_size",
]

RESULT_OK = "Ok"
RESULT_FAILED = "ProcessingFailed"

# Lambda's synchronous response payload limit; the budget keeps a margin below it for any
# difference between our size arithmetic and the runtime's serialiser.
LAMBDA_RESPONSE_LIMIT = 6_291_456
RESPONSE_BUDGET = LAMBDA_RESPONSE_LIMIT - 65_536

_RESPONSE_SIZE_REASON = "response size limit: original data returned instead"

# Serialised size of the response pieces with json.dumps defaults (", " and ": " separators,
# \uXXXX escapes): the most verbose form the runtime could choose, so an upper bound.
_RESPONSE_OVERHEAD = len('{"records": []}')
_ENTRY_OVERHEAD = len('{"recordId": , "result": "", "data": ""}')
_ENTRY_SEPARATOR = len(", ")


class InvalidEvent(ValueError):
    """The event is not a Firehose transformation event; no response can answer it."""


class ResponseTooLarge(RuntimeError):
    """Even the original data does not fit in a Lambda response.

    Raising makes the invocation fail; Firehose retries it and then delivers every record of
    the batch, unchanged, under the processing-failed error prefix: lossless.
    """


def _json_string_len(s: str) -> int:
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return len(s) + 2
    return len(json.dumps(s))


def response_size(entries: list[dict[str, str]]) -> int:
    """Exact byte size of ``json.dumps({"records": entries})`` for well-formed entries."""
    if not entries:
        return _RESPONSE_OVERHEAD
    body = sum(
        _ENTRY_OVERHEAD + _json_string_len(e["recordId"]) + len(e["result"]) + _json_string_len(e["data"]) - 2
        for e in entries
    )
    return _RESPONSE_OVERHEAD + body + _ENTRY_SEPARATOR * (len(entries) - 1)


def _decoded_len(data: object) -> int:
    # Input bytes for the log without decoding twice (approximate for invalid base64).
    if type(data) is not str:
        return 0
    return len(data) * 3 // 4 - data.count("=", -2)


def _fit_response(
    entries: list[dict[str, str]], originals: list[str], size: int, summary: BatchSummary, budget: int
) -> int:
    """Fail over Ok records to their original data until the response fits; return its size."""
    if size <= budget:
        return size
    # Greedy by bytes saved: the fewest records leave the lake's happy path.
    extra_for_failed = len(RESULT_FAILED) - len(RESULT_OK)
    candidates = sorted(
        (
            (len(e["data"]) - (_json_string_len(originals[i]) - 2) - extra_for_failed, i)
            for i, e in enumerate(entries)
            if e["result"] == RESULT_OK
        ),
        key=lambda c: (-c[0], c[1]),
    )
    for saving, i in candidates:
        if size <= budget or saving <= 0:
            break
        entry = entries[i]
        summary.output_bytes -= _decoded_len(entry["data"])
        entry["result"] = RESULT_FAILED
        entry["data"] = originals[i]
        summary.ok -= 1
        summary.failed += 1
        summary.failed_for_response_size += 1
        summary.failures.append((entry["recordId"], _RESPONSE_SIZE_REASON))
        size -= saving
    if size > budget:
        raise ResponseTooLarge(
            f"response would be {size} bytes even with original data (budget {budget}); "
            "failing the invocation so Firehose delivers the batch to the processing-failed prefix"
        )
    return size


def process_event(event: Any, *, response_budget: int = RESPONSE_BUDGET) -> dict[str, Any]:
    """Transform a Firehose event; every recordId is answered once, in order."""
    summary = BatchSummary()
    namespace = metrics_namespace()
    try:
        if type(event) is not dict:
            raise InvalidEvent("event is not a JSON object")
        summary.invocation_id = event.get("invocationId")
        summary.delivery_stream_arn = event.get("deliveryStreamArn")
        records = event.get("records")
        if type(records) is not list:
            raise InvalidEvent("event has no records list")
        summary.records = len(records)

        entries: list[dict[str, str]] = []
        originals: list[str] = []
        record_ids: list[str] = []
        failures = summary.failures
        ok = input_bytes = output_bytes = data_chars = 0
        b2a = binascii.b2a_base64
        for record in records:
            if type(record) is not dict or type(record.get("recordId")) is not str:
                raise InvalidEvent("a record has no recordId")
            record_id = record["recordId"]
            data = record.get("data")
            original = data if type(data) is str else ""
            input_bytes += _decoded_len(data)
            meta = record.get("kinesisRecordMetadata")
            sequence_number = shard_id = None
            if type(meta) is dict:
                sequence_number = meta.get("sequenceNumber")
                shard_id = meta.get("shardId")
            try:
                line = transform_data(data, sequence_number, shard_id)
            except Exception as exc:  # a bug must cost one record, not the batch
                reason = failure_reason(exc)
            else:
                encoded = b2a(line, newline=False).decode("ascii")
                entries.append({"recordId": record_id, "result": RESULT_OK, "data": encoded})
                originals.append(original)
                record_ids.append(record_id)
                ok += 1
                output_bytes += len(line)
                data_chars += len(encoded)
                continue
            entries.append({"recordId": record_id, "result": RESULT_FAILED, "data": original})
            originals.append(original)
            record_ids.append(record_id)
            data_chars += _json_string_len(original) - 2  # garbage data may need escaping
            failures.append((record_id, reason))

        summary.ok, summary.failed = ok, len(failures)
        summary.input_bytes, summary.output_bytes = input_bytes, output_bytes
        # Same arithmetic as response_size(), without a per-entry pass in the common case where
        # no recordId needs escaping (each is then written as its characters plus two quotes).
        joined_ids = "".join(record_ids)
        if not entries:
            size = _RESPONSE_OVERHEAD
        elif _json_string_len(joined_ids) == len(joined_ids) + 2:
            size = (
                _RESPONSE_OVERHEAD
                + len(entries) * (_ENTRY_OVERHEAD + 2 + _ENTRY_SEPARATOR)
                - _ENTRY_SEPARATOR
                + len(joined_ids)
                + ok * len(RESULT_OK)
                + len(failures) * len(RESULT_FAILED)
                + data_chars
            )
        else:
            size = response_size(entries)
        summary.response_bytes = _fit_response(entries, originals, size, summary, response_budget)
    except ResponseTooLarge as exc:
        # The whole batch goes to the processing-failed prefix: count it that way.
        summary.failed, summary.ok, summary.output_bytes = summary.records, 0, 0
        print(log_line(summary, namespace, error=f"ResponseTooLarge: {exc}"))
        raise
    except InvalidEvent as exc:
        print(log_line(summary, namespace, error=f"InvalidEvent: {exc}"))
        raise
    print(log_line(summary, namespace))
    return {"records": entries}


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point."""
    return process_event(event)
