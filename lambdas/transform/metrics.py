"""The one structured log line per invocation, doubling as a CloudWatch Embedded Metric Format
document so that metrics cost no API call (CloudWatch Logs extracts them)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_NAMESPACE",
    "MAX_LOGGED_FAILURES",
    "NAMESPACE_ENV",
    "BatchSummary",
    "log_line",
    "metrics_namespace",
]

NAMESPACE_ENV = "METRICS_NAMESPACE"
DEFAULT_NAMESPACE = "DdbDataLake/Transform"
# A batch of garbage must not turn into a multi-megabyte log line (CloudWatch caps events at
# 256 KiB); the count of the rest is still logged.
MAX_LOGGED_FAILURES = 25

# Dimensionless metrics (an empty dimension set) so alarms need no per-stream dimension values.
_METRICS = (
    {"Name": "RecordsOk", "Unit": "Count"},
    {"Name": "RecordsFailed", "Unit": "Count"},
    {"Name": "OutputBytes", "Unit": "Bytes"},
)


def metrics_namespace() -> str:
    return os.environ.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE


@dataclass
class BatchSummary:
    invocation_id: object = None
    delivery_stream_arn: object = None
    records: int = 0
    ok: int = 0
    failed: int = 0
    dropped: int = 0
    input_bytes: int = 0
    output_bytes: int = 0
    response_bytes: int = 0
    failed_for_response_size: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


def log_line(
    summary: BatchSummary, namespace: str, *, error: str | None = None, timestamp_ms: int | None = None
) -> str:
    """Render ``summary`` as one JSON line that is both the invocation log and an EMF document."""
    listed: Sequence[tuple[str, str]] = summary.failures[:MAX_LOGGED_FAILURES]
    doc = {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [[]], "Metrics": list(_METRICS)}],
        },
        "level": "ERROR" if error else "WARN" if summary.failed else "INFO",
        "message": "firehose transform batch",
        "invocationId": summary.invocation_id,
        "deliveryStreamArn": summary.delivery_stream_arn,
        "records": summary.records,
        "RecordsOk": summary.ok,
        "RecordsFailed": summary.failed,
        "RecordsDropped": summary.dropped,
        "InputBytes": summary.input_bytes,
        "OutputBytes": summary.output_bytes,
        "ResponseBytes": summary.response_bytes,
        "failedForResponseSize": summary.failed_for_response_size,
        "failures": [{"recordId": rid, "reason": reason} for rid, reason in listed],
        "failuresNotListed": len(summary.failures) - len(listed),
    }
    if error:
        doc["error"] = error
    # default=str: the envelope fields come from the event and must never make logging raise.
    return json.dumps(doc, separators=(",", ":"), default=str)
