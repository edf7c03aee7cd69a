"""Athena partition projection, evaluated the way the Athena user guide documents it, so tests can see the partitions
a query without a partition filter enumerates and the hours Athena can read at all.

https://docs.aws.amazon.com/athena/latest/ug/partition-projection-supported-types.html:

* ``integer``: ``range`` "low,high" (inclusive), ``interval`` (default 1), ``digits`` (zero-padded width; default
  none);
* ``date``: ``range`` "start,end", each in ``format`` or relative (``NOW``, ``NOW-3YEARS``, ``NOW+1MONTH``),
  ``format`` a Java DateTimeFormatter pattern (here the subset Firehose's prefixes use: ``yyyy``, ``MM``, ``dd``,
  ``HH`` and quoted text), ``interval`` + ``interval.unit``; "Projected date columns are generated in Coordinated
  Universal Time (UTC) at query execution time".

Only what the project's tables use is implemented; anything else fails loudly instead of being guessed.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

_JAVA_FIELDS = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H"}
_RELATIVE = re.compile(r"\s*NOW\s*(?:([+-])\s*([0-9]+)\s*(YEARS?|MONTHS?|WEEKS?|DAYS?|HOURS?)\s*)?")


def java_to_strftime(pattern: str) -> str:
    """A Java DateTimeFormatter pattern as a strftime format (the subset above)."""
    out = []
    for token in re.findall(r"yyyy|MM|dd|HH|'[^']*'|.", pattern):
        if token in _JAVA_FIELDS:
            out.append(_JAVA_FIELDS[token])
        elif token.startswith("'"):
            out.append(token[1:-1].replace("%", "%%"))
        elif re.match(r"[A-Za-z]", token):
            raise NotImplementedError(f"pattern letter {token!r} of {pattern!r}")
        else:
            out.append(token.replace("%", "%%"))
    return "".join(out)


def _add(when: datetime, amount: int, unit: str) -> datetime:
    unit = unit.upper().rstrip("S")
    if unit == "YEAR":
        return when.replace(year=when.year + amount)
    if unit == "MONTH":
        months = when.month - 1 + amount
        return when.replace(year=when.year + months // 12, month=months % 12 + 1)
    return when + {"WEEK": timedelta(weeks=1), "DAY": timedelta(days=1), "HOUR": timedelta(hours=1)}[unit] * amount


def _bound(text: str, fmt: str, now: datetime) -> datetime:
    relative = _RELATIVE.fullmatch(text)
    if relative:
        sign, amount, unit = relative.groups()
        return now if sign is None else _add(now, int(amount) * (1 if sign == "+" else -1), unit)
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


def column_values(params: dict[str, Any], column: str, now: datetime) -> list[str]:
    """Every value Athena projects for ``column`` of a table with these parameters, at ``now`` (UTC)."""
    kind = params[f"projection.{column}.type"].strip().lower()
    low_text, high_text = params[f"projection.{column}.range"].split(",")
    interval = int(params.get(f"projection.{column}.interval", "1"))
    if kind == "integer":
        digits = int(params.get(f"projection.{column}.digits", "0"))
        return [str(v).zfill(digits) for v in range(int(low_text), int(high_text) + 1, interval)]
    if kind == "date":
        fmt = java_to_strftime(params[f"projection.{column}.format"])
        unit = params[f"projection.{column}.interval.unit"]
        low, high = _bound(low_text, fmt, now), _bound(high_text, fmt, now)
        values, step = [], 0
        while (value := _add(low, step * interval, unit)) <= high:
            values.append(value.strftime(fmt))
            step += 1
        return values
    raise NotImplementedError(f"projection type {kind!r}")


def partition_count(params: dict[str, Any], columns: list[str], now: datetime) -> int:
    """How many partitions a query without a partition filter enumerates: every combination of column values."""
    return math.prod(len(column_values(params, c, now)) for c in columns)
