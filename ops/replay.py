"""``ddb-lake replay``: run Firehose's kept source records through the transform again and write the lines
under the table's data prefix, e.g. after a transform bug was fixed.

Sources: the raw backup ``raw/<table>/`` (every source record, concatenated without separators) or the error
envelopes ``errors/<table>/<type>/`` (one JSON envelope per failed record, ``rawData`` in base64). The window
selects partitions (Firehose's arrival hours). The transform is the Lambda's own code
(``lambdas/transform/replay.py``).

Each source object becomes at most one data object named ``replay-<sha256 of the source key>.gz``, in the hour
partition of the replay's own arrival (UTC now), not the source's: the lakehouse maintenance reads recent
arrival-hour partitions only, so an object written into a partition it has moved past would never reach the
history and state tables. Replaying again within the same hour overwrites the same object with the same bytes;
replaying in a later hour writes a second copy whose lines carry the same ``_event_id``s, which history, the
raw views and the lakehouse all collapse on.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lambdas.transform.replay import InvalidBackup, split_records, transform_record
from ops import aws, lake
from ops.common import ExitCode, OpsError
from shared import naming
from shared.naming import LakeNames, TableNames

SOURCES = ("raw", "errors")
DEFAULT_ERROR_TYPE = "processing-failed"


@dataclass
class Replayed:
    source_key: str
    target_key: str | None  # None when nothing transformed (or a dry run)
    ok: int = 0
    failed: int = 0


@dataclass
class Summary:
    objects: list[Replayed] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    unreadable: list[str] = field(default_factory=list)  # "key: problem" for content that could not be split

    @property
    def ok(self) -> int:
        return sum(o.ok for o in self.objects)

    @property
    def failed(self) -> int:
        return sum(o.failed for o in self.objects)


def target_key(names: TableNames, source_key: str, arrival: datetime) -> str:
    """Where a replayed object goes: the partition of the hour it arrives in (``arrival``, the replay's now), under
    a name fixed by its source, so a replay repeated within the hour overwrites its own objects."""
    digest = hashlib.sha256(source_key.encode()).hexdigest()
    return f"{names.root(naming.DATA)}{lake.partition_path(lake.hour_floor(arrival))}replay-{digest}.gz"


def source_prefix(names: TableNames, source: str, error_type: str) -> str:
    if source == "raw":
        return names.root(naming.RAW)
    return f"{names.root(naming.ERRORS)}{error_type}/"


def records_of(content: bytes, source: str) -> tuple[list[bytes], str | None]:
    """The change records in one object's content, and the problem that stopped reading it, if any."""
    records: list[bytes] = []
    try:
        for value in split_records(content):
            if source == "raw":
                records.append(value)
                continue
            try:
                envelope = json.loads(value)
                records.append(base64.b64decode(envelope["rawData"], validate=True))
            except (ValueError, KeyError, TypeError, binascii.Error):
                return records, f"error envelope {len(records)} has no base64 rawData"
    except InvalidBackup as error:
        return records, str(error)
    return records, None


def gzip_lines(lines: list[bytes]) -> bytes:
    # mtime=0: the same lines always give the same bytes, so a second replay rewrites an identical object.
    return gzip.compress(b"".join(lines), compresslevel=9, mtime=0)


def replay(
    s3: Any,
    lake_names: LakeNames,
    names: TableNames,
    source: str,
    start: datetime,
    end: datetime,
    *,
    error_type: str = DEFAULT_ERROR_TYPE,
    now: Callable[[], datetime],
    dry_run: bool = False,
    on_object: Callable[[int | None], None] = lambda total: None,
) -> Summary:
    """Replay every object under the source prefix whose hour partition overlaps [start, end); each object is
    written into the partition of the hour ``now()`` says it is written in (a long replay may cross an hour)."""
    prefix = source_prefix(names, source, error_type)
    summary = Summary()
    try:
        keys = [
            item["Key"]
            for hour in lake.window_hours(start, end)
            for item in lake.list_objects(s3, lake_names.bucket, prefix + lake.partition_path(hour))
        ]
        on_object(len(keys))
        for key in keys:
            content = lake.read_object(s3, lake_names.bucket, key)
            records, problem = records_of(content, source)
            if problem:
                summary.unreadable.append(f"{key}: {problem}")
            replayed = Replayed(key, None)
            lines = []
            for record in records:
                outcome = transform_record(record)
                if outcome.line is not None:
                    lines.append(outcome.line)
                    replayed.ok += 1
                else:
                    replayed.failed += 1
                    summary.reasons[str(outcome.reason)] += 1
            if lines:
                replayed.target_key = target_key(names, key, now())
                if not dry_run:
                    s3.put_object(
                        Bucket=lake_names.bucket,
                        Key=replayed.target_key,
                        Body=gzip_lines(lines),
                        ContentType="application/x-ndjson",
                    )
            summary.objects.append(replayed)
            on_object(None)
    except aws.ERRORS as error:
        raise OpsError(f"replay stopped: {aws.describe(error)}", ExitCode.AWS) from None
    return summary
