"""Bytes the lakehouse reads, against the raw JSON change log: issue 17, item 6 (a benchmark, not a test).

Run from the repository root: ``python -m benchmarks.lakehouse`` (``--help`` for the sizes).

1. Generates ``--changes`` changes over ``--keys`` items of the default test configuration's table, spread evenly
   over ``--days`` days (an insert per item first, then updates and some deletes), runs every record through the
   real transform (``lambdas.transform.record.transform_change``) and writes the raw log the way Firehose does:
   GZIP JSON Lines objects of 120 s of arrivals, per arrival hour.
2. Builds the history (one row per change, the columns of ``LakehouseSql.history_columns()``, one Parquet ZSTD file
   per change day, as after compaction) and the state (the latest change per item) with pyarrow.
3. Reports, from the files' own sizes and Parquet metadata (column-chunk sizes, row-group statistics):

   - a current-state query: Athena reads every column of every state file (``SELECT *``) against the raw-log
     current view, which reads every raw object whole (GZIP JSON cannot skip columns or rows);
   - one steady-state maintenance run (window = the last ``--late-window`` hours + the current hour), per statement:
     window (4 columns of the state), INSERT (the window's raw objects + ``_event_id``/``_change_time`` of the
     history files of the change days the window holds: the anti-join, pruned by day partition through the join on
     ``_change_time``), MERGE (history row groups whose ``_arrival_hour`` statistics overlap the window, every
     column, + every column of the state: the MERGE target);
   - the same at 10x the history (90 more days of history files, the older days shifted copies of the first ten):
     what a run reads must not grow.

Athena bills bytes scanned with a 10 MB minimum per query (https://aws.amazon.com/athena/pricing/); the byte counts
here are a model of its reads (file and column-chunk sizes after partition and statistics pruning), not a
measurement of Athena.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from consumer.lakehouse.sql import ARRIVAL_HOUR, CHANGE_TIME, LINE, LakehouseSql
from lambdas.transform.record import transform_change
from shared import config, naming
from tests import configs

US = 1_000_000
START = datetime(2026, 11, 1, tzinfo=UTC)
OBJECT_SECONDS = 120  # the default configuration's S3 buffer interval
MB = 1_000_000
ATHENA_MINIMUM_BYTES = 10 * MB
_ARROW = {"string": pa.string(), "boolean": pa.bool_(), "timestamp": pa.timestamp("us")}


def _arrow_type(athena: str) -> pa.DataType:
    if athena.startswith("decimal("):
        precision, scale = athena[8:-1].split(",")
        return pa.decimal128(int(precision), int(scale))
    return _ARROW[athena]


def _record(table: str, n: int, key: int, event: str, time_us: int, rng: random.Random) -> dict[str, Any]:
    keys = {"pk": {"S": f"CUSTOMER#{key // 10}"}, "sk": {"S": f"ORDER#{key}"}}
    image = {
        **keys,
        "total": {"N": f"{rng.randint(1, 10**7)}.{rng.randint(0, 99):02d}"},
        "shipTo": {"M": {"city": {"S": rng.choice(("Oslo", "Zürich", "Lyon", "Porto"))}, "zip": {"S": "0150"}}},
        "status": {"S": rng.choice(("NEW", "PAID", "SHIPPED"))},
        "items": {"L": [{"M": {"sku": {"S": f"SKU-{rng.randint(1, 999)}"}, "qty": {"N": "2"}}}]},
        "updatedBy": {"S": "checkout-service"},
    }
    ddb: dict[str, Any] = {"ApproximateCreationDateTime": time_us, "Keys": keys, "SizeBytes": 300}
    ddb["OldImage" if event == "REMOVE" else "NewImage"] = image
    ddb["ApproximateCreationDateTimePrecision"] = "MICROSECOND"
    return {
        "awsRegion": "eu-west-1",
        "eventID": f"{n:08x}-0000-4000-8000-{key:012x}",
        "eventName": event,
        "userIdentity": None,
        "recordFormat": "application/json",
        "tableName": table,
        "dynamodb": ddb,
        "eventSource": "aws:dynamodb",
    }


def generate(sql: LakehouseSql, changes: int, keys: int, days: int, root: Path, seed: int) -> dict[str, Any]:
    """The raw log under ``root/raw`` and the history rows (column -> list), in arrival order."""
    rng = random.Random(seed)
    span_us = days * 86_400 * US
    columns: dict[str, list[Any]] = {name: [] for name, _ in sql.history_columns()}
    raw_bytes: dict[str, int] = defaultdict(int)  # arrival hour -> GZIP bytes
    exists: set[int] = set()
    obj: list[bytes] = []
    obj_start = 0
    sequence = 4965 * 10**52

    def flush() -> None:
        if obj:
            hour = (START + timedelta(microseconds=obj_start)).strftime("%Y-%m-%d-%H")
            raw_bytes[hour] += len(gzip.compress(b"".join(obj)))
            obj.clear()

    start_us = int(START.timestamp() * US)
    for n in range(changes):
        offset = n * span_us // changes
        key = n if n < keys else rng.randrange(keys)
        event = "INSERT" if key not in exists else ("REMOVE" if rng.random() < 0.02 else "MODIFY")
        exists.symmetric_difference_update({key} if event in ("INSERT", "REMOVE") else set())
        sequence += rng.randint(1, 10**6)
        raw = json.dumps(_record(sql.names.table, n, key, event, start_us + offset, rng)).encode()
        line = transform_change(raw, str(sequence), f"shardId-00000000000{key % 4}")
        if offset + US - obj_start >= OBJECT_SECONDS * US:
            flush()
            obj_start = offset + US
        obj.append(line)
        values = json.loads(line, parse_float=Decimal)
        for column in sql.columns:
            columns[column.name].append(values.get(column.json_key))
        columns[CHANGE_TIME].append(datetime(2026, 11, 1) + timedelta(microseconds=offset))
        columns[ARRIVAL_HOUR].append((START + timedelta(microseconds=offset + US)).strftime("%Y-%m-%d-%H"))
        columns[LINE].append(line.decode().rstrip("\n"))
    flush()
    return {"columns": columns, "raw_bytes": dict(raw_bytes)}


def write_history(sql: LakehouseSql, table: pa.Table, root: Path) -> list[Path]:
    """One Parquet ZSTD file per change day (the layout after compaction)."""
    days = pc.strftime(table[CHANGE_TIME], format="%Y-%m-%d")
    paths = []
    for day in sorted(set(days.to_pylist())):
        path = root / f"day={day}" / "data.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.filter(pc.equal(days, day)), path, compression="zstd")
        paths.append(path)
    return paths


def chunk_bytes(path: Path, columns: set[str] | None = None, hours: tuple[str, str] | None = None) -> int:
    """Compressed bytes of the named columns (all when None) in the row groups whose _arrival_hour statistics
    overlap ``hours`` (all when None)."""
    meta = pq.ParquetFile(path).metadata
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    total = 0
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        if hours is not None:
            stats = group.column(names.index(ARRIVAL_HOUR)).statistics
            if stats.max < hours[0] or stats.min > hours[1]:
                continue
        total += sum(
            group.column(i).total_compressed_size for i, n in enumerate(names) if columns is None or n in columns
        )
    return total


def maintenance_run(
    sql: LakehouseSql, raw_bytes: dict[str, int], history: list[Path], state: Path, late: int
) -> dict[str, int]:
    """Bytes one steady-state run reads, per statement (module docstring)."""
    now = max(raw_bytes)
    start = (datetime.strptime(now, "%Y-%m-%d-%H") - timedelta(hours=late)).strftime("%Y-%m-%d-%H")
    window_days = {start[:10], now[:10]}
    keys = {c.name for c in sql.keys}
    raw = sum(b for hour, b in raw_bytes.items() if start <= hour <= now)
    antijoin = sum(chunk_bytes(p, {"_event_id", CHANGE_TIME}) for p in history if p.parent.name[4:] in window_days)
    merge_source = sum(chunk_bytes(p, hours=(start, now)) for p in history)
    # The same with row groups of one arrival hour (the files the runs' INSERTs write, and what an in-order binpack
    # compaction keeps): the row groups overlapping the window, i.e. the day's bytes in proportion to its rows there.
    clustered = 0
    for path in history:
        if chunk_bytes(path, hours=(start, now)):
            hours = pq.read_table(path, columns=[ARRIVAL_HOUR])[ARRIVAL_HOUR]
            inside = pc.sum(pc.and_(pc.greater_equal(hours, start), pc.less_equal(hours, now))).as_py() or 0
            clustered += chunk_bytes(path) * inside // len(hours)
    return {
        "window": chunk_bytes(state, {*keys, "_event_id", ARRIVAL_HOUR}),
        "insert_raw": raw,
        "insert_history": antijoin,
        "merge_history": merge_source,
        "merge_state": chunk_bytes(state),
        "merge_history_hourly_row_groups": clustered,
    }


def _billed(run: dict[str, int], merge_history: str = "merge_history") -> int:
    queries = (run["window"], run["insert_raw"] + run["insert_history"], run[merge_history] + run["merge_state"])
    return sum(max(q, ATHENA_MINIMUM_BYTES) for q in queries)


def _summary(run: dict[str, int]) -> dict[str, int]:
    worst = {k: v for k, v in run.items() if k != "merge_history_hourly_row_groups"}
    return {
        **run,
        "total": sum(worst.values()),
        "billed": _billed(run),
        "total_hourly_row_groups": sum(worst.values()) - run["merge_history"] + run["merge_history_hourly_row_groups"],
        "billed_hourly_row_groups": _billed(run, "merge_history_hourly_row_groups"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--changes", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--late-window", type=int, default=3)
    parser.add_argument("--growth", type=int, default=10, help="history multiple for the second per-run figure")
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--out", type=Path, default=None, help="where to write the files (default: a temp dir)")
    args = parser.parse_args()

    cfg = config.load({config.CONTEXT_KEY: configs.default()})
    spec = cfg.tables[0]
    sql = LakehouseSql(
        spec=spec,
        names=naming.table(cfg, spec),
        lake=naming.lake(cfg),
        late_window_hours=args.late_window,
        max_hours_per_run=24,
        first_year=cfg.data_lake.first_year,
    )
    root = args.out or Path(tempfile.mkdtemp(prefix="lakehouse-bench-"))
    began = time.perf_counter()
    data = generate(sql, args.changes, args.keys, args.days, root, args.seed)
    schema = pa.schema([(name, _arrow_type(type_)) for name, type_ in sql.history_columns()])
    table = pa.table(data.pop("columns"), schema=schema)
    history = write_history(sql, table, root / "history")
    # State: the latest change per key (all live, strictly increasing times: the last row of each key).
    keys = [c.name for c in sql.keys]
    last = table.append_column("_n", pa.array(range(table.num_rows))).group_by(keys).aggregate([("_n", "max")])
    state = table.take(last["_n_max"])
    state_path = root / "state" / "data.parquet"
    state_path.parent.mkdir(parents=True)
    pq.write_table(state, state_path, compression="zstd")
    raw_bytes: dict[str, int] = data["raw_bytes"]

    run_1x = maintenance_run(sql, raw_bytes, history, state_path, args.late_window)
    # 10x: older days, copies of the first ones shifted back by whole multiples of the span.
    grown = list(history)
    for k in range(1, args.growth):
        for path in history:
            shifted = pq.read_table(path)
            delta = pa.scalar(timedelta(days=args.days * k), pa.duration("us"))
            times = pc.subtract(shifted[CHANGE_TIME], delta)
            shifted = shifted.set_column(shifted.schema.get_field_index(CHANGE_TIME), CHANGE_TIME, times)
            hours = pc.strftime(pc.add(times, pa.scalar(timedelta(seconds=1), pa.duration("us"))), format="%Y-%m-%d-%H")
            shifted = shifted.set_column(shifted.schema.get_field_index(ARRIVAL_HOUR), ARRIVAL_HOUR, hours)
            day = pc.strftime(times[0], format="%Y-%m-%d").as_py()
            target = root / "history" / f"day={day}" / "data.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(shifted, target, compression="zstd")
            grown.append(target)
    run_10x = maintenance_run(sql, raw_bytes, grown, state_path, args.late_window)

    raw_total = sum(raw_bytes.values())
    state_bytes = os.path.getsize(state_path)
    view = chunk_bytes(state_path, {c.name for c in sql.current_view_columns()})
    history_bytes = sum(os.path.getsize(p) for p in history)
    result = {
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, pyarrow {pa.__version__}",
        "seconds": round(time.perf_counter() - began, 1),
        "changes": args.changes,
        "keys": args.keys,
        "days": args.days,
        "raw_log_gzip_bytes": raw_total,
        "history_parquet_bytes": history_bytes,
        "state_parquet_bytes": state_bytes,
        # SELECT * FROM <table>_current (every column of the view) against SELECT * FROM <table>_raw_current.
        "current_state_query": {"state": view, "raw_current_view": raw_total, "ratio": view / raw_total},
        # Every column of the state table, the whole line (_line) included.
        "state_table_all_columns": {
            "state": state_bytes,
            "raw_current_view": raw_total,
            "ratio": state_bytes / raw_total,
        },
        "run_1x": _summary(run_1x),
        f"run_{args.growth}x": _summary(run_10x),
        "history_files": {"1x": len(history), f"{args.growth}x": len(grown)},
        "raw_bytes_per_change": raw_total / args.changes,
        "history_bytes_per_change": history_bytes / args.changes,
        "state_bytes_per_key": state_bytes / state.num_rows,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
