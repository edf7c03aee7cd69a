"""``ddb-lake rebuild``: rebuild a table's Iceberg history and state from the raw change log, for recovery and
for the first deployment over a lake that already holds changes.

It starts the table's lakehouse maintenance state machine (account B) once per range of arrival hours, one
execution at a time, and waits for each. The execution input is the window contract of the maintenance
(``consumer/lakehouse/``): ``{"window_start": "YYYY-MM-DD-HH", "window_end": "YYYY-MM-DD-HH"}``, inclusive arrival
hours, UTC (its own scheduled runs start with ``{}`` and derive the window themselves). A range holds at most
``lakehouse.max_hours_per_run`` hours, so no run writes more partitions than Athena allows in one INSERT.

Re-running is safe: the maintenance SQL anti-joins history on ``_event_id`` and guards state by the ordering
rule, so a range applied twice changes nothing. A scheduled run already in progress is waited for first, so the
table never has two maintenance executions at once.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ops import lake
from ops.common import Clock, ExitCode, OpsError
from shared import naming
from shared.config import AppConfig
from shared.naming import TableNames

# Until cfg.lakehouse.max_hours_per_run exists (another change adds it), the same default.
DEFAULT_MAX_HOURS_PER_RUN = 72
POLL_SECONDS = 10.0
OPTION_FORMAT = "%Y-%m-%dT%H"  # --from/--to
WINDOW_FORMAT = "%Y-%m-%d-%H"  # the execution input's window values
# Step Functions execution statuses that are not final (https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html).
UNFINISHED = {"RUNNING", "PENDING_REDRIVE"}


def max_hours_per_run(cfg: AppConfig) -> int:
    return int(getattr(getattr(cfg, "lakehouse", None), "max_hours_per_run", DEFAULT_MAX_HOURS_PER_RUN))


def state_machine_arn(cfg: AppConfig, names: TableNames) -> str:
    return naming.lake(cfg).state_machine_arn(names.maintenance_state_machine)


def parse_hour(option: str, text: str) -> datetime:
    try:
        return datetime.strptime(text, OPTION_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise OpsError(
            f"{option} {text!r}: not an hour such as 2026-11-29T10 (YYYY-MM-DDTHH, UTC)", ExitCode.USAGE
        ) from None


def ranges(first: datetime, last: datetime, size: int) -> list[tuple[datetime, datetime]]:
    """[first, last] (whole hours, inclusive) cut into consecutive ranges of at most ``size`` hours."""
    out = []
    start = lake.hour_floor(first)
    last = lake.hour_floor(last)
    while start <= last:
        end = min(start + timedelta(hours=size - 1), last)
        out.append((start, end))
        start = end + timedelta(hours=1)
    return out


def hours_in(start: datetime, end: datetime) -> int:
    return int((end - start) / timedelta(hours=1)) + 1


def window(start: datetime, end: datetime) -> dict[str, str]:
    return {"window_start": f"{start:{WINDOW_FORMAT}}", "window_end": f"{end:{WINDOW_FORMAT}}"}


def earliest_hour(s3: Any, bucket: str, root: str) -> datetime | None:
    """The earliest ``year=/month=/day=/hour=`` partition holding an object under ``root``: a few delimited
    listings (one per level, more only past empty or foreign folders), never a listing of the objects."""
    levels = [column for column, _ in naming.DATE_PARTITIONS]

    def children(prefix: str, level: str) -> list[str]:
        pattern = re.compile(re.escape(prefix) + re.escape(level) + r"=\d+/")
        found = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            found += [p["Prefix"] for p in page.get("CommonPrefixes", []) if pattern.fullmatch(p["Prefix"])]
        return sorted(found)

    def descend(prefix: str, depth: int) -> str | None:
        if depth == len(levels):
            return prefix
        for child in children(prefix, levels[depth]):
            found = descend(child, depth + 1)
            if found:
                return found
        return None

    deepest = descend(root, 0)
    if deepest is None:
        return None
    year, month, day, hour = (int(v) for v in lake.PARTITION.search(deepest).groups())  # type: ignore[union-attr]
    return datetime(year, month, day, hour, tzinfo=UTC)


@dataclass
class Outcome:
    start: datetime
    end: datetime
    execution_arn: str
    status: str
    error: str = ""
    cause: str = ""


def wait_idle(sfn: Any, arn: str, clock: Clock, on_wait: Callable[[str], None]) -> None:
    """Wait while another execution of the state machine (a scheduled run) is in progress."""
    while True:
        running = sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING", maxResults=1).get("executions", [])
        if not running:
            return
        on_wait(running[0]["name"])
        clock.sleep(POLL_SECONDS)


def start(sfn: Any, arn: str, first: datetime, last: datetime) -> str:
    name = f"rebuild-{first:%Y%m%d%H}-{last:%Y%m%d%H}-{uuid.uuid4().hex[:8]}"
    answer = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(window(first, last)))
    return str(answer["executionArn"])


def wait(sfn: Any, execution_arn: str, first: datetime, last: datetime, clock: Clock) -> Outcome:
    while True:
        answer = sfn.describe_execution(executionArn=execution_arn)
        status = str(answer["status"])
        if status not in UNFINISHED:
            return Outcome(first, last, execution_arn, status, answer.get("error", ""), answer.get("cause", ""))
        clock.sleep(POLL_SECONDS)
