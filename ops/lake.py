"""Reading and addressing the lake's objects: hourly partitions, compression, JSON Lines."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from ops.common import utc

GZIP_MAGIC = b"\x1f\x8b"
# The partition path every Firehose prefix of this project ends with (shared.naming.DATE_PARTITIONS).
PARTITION = re.compile(r"year=(\d{4})/month=(\d{2})/day=(\d{2})/hour=(\d{2})/")


def hour_floor(moment: datetime) -> datetime:
    return utc(moment).replace(minute=0, second=0, microsecond=0)


def partition_path(hour: datetime) -> str:
    return f"year={hour:%Y}/month={hour:%m}/day={hour:%d}/hour={hour:%H}/"


def hours(start: datetime, end: datetime) -> Iterator[datetime]:
    """Every UTC hour whose partition can hold objects that arrived in [start, end]."""
    hour, last = hour_floor(start), hour_floor(end)
    while hour <= last:
        yield hour
        hour += timedelta(hours=1)


def window_hours(start: datetime, end: datetime) -> Iterator[datetime]:
    """The hour partitions that overlap [start, end): the end is exclusive, so 10:00-12:00 is two hours."""
    hour = hour_floor(start)
    while hour < utc(end):
        yield hour
        hour += timedelta(hours=1)


def partition_of(key: str) -> str | None:
    """The ``year=…/hour=HH/`` part of an object key, or None."""
    found = PARTITION.search(key)
    return found.group(0) if found else None


def decompress(body: bytes) -> bytes:
    """Object content as written: GZIP is recognised by its magic bytes, so a replay works whatever the
    table's compression was when the object was written."""
    return gzip.decompress(body) if body[:2] == GZIP_MAGIC else body


def list_objects(s3: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if not item["Key"].endswith("/"):
                yield item


def read_object(s3: Any, bucket: str, key: str) -> bytes:
    return decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
