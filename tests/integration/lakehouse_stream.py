"""An adversarial change stream for the lakehouse maintenance, the objects Firehose (and ``ddb-lake replay``) would
write from it over time, the schedule of maintenance runs, and the reference model of what history and state must
hold after every run.

Built from tests/integration/lake_stream.py's pieces (item images, Kinesis puts with re-puts and Firehose
retries, the real transform handler), plus what only the lakehouse meets:

- time: objects become visible when Firehose (or a replay) writes them, and runs see only what exists at their
  start; an outage stops the runs for hours, and the catch-up proceeds in windows of at most max_hours_per_run;
- late arrivals beyond one window (changes put on the stream hours late), an object written late into an old
  partition (within the late window), a delete followed by a late older change;
- backfill before and after live changes (one live change far outside the window of its backfill), backfill of
  items never seen live, a newer backfill of a backfill-only item;
- ``ddb-lake replay`` (issue 19): replays of old objects from the raw backup and of error records whose
  changes are days and weeks old, written into the partition of the hour the replay runs, without sequence
  numbers (``lambdas/transform/replay.py``, the code the CLI runs);
- ties: two changes of one item at the same microsecond with equal sequence numbers (``_event_id`` decides), at
  the same microsecond with 128- and 129-digit sequence numbers, and at the same microsecond where one change
  exists only as a copy without a sequence number;
- the reshard from 2 to 4 shards, TTL deletes, re-inserts, redeliveries and re-puts of lake_stream.

The reference model (``Model``) applies the rule in Python, independently of the SQL: which copy of a change is
kept (lowest sequence number, a copy without one last, then shard, arrival hour, line), which change is an
item's state (live beats backfill, then change time, then sequence number, a missing one lowest, then
``_event_id``), which arrival hours a run reads (from the last merged hour minus the late window). The test also
checks the model's end result against the rule applied once to every copy ever written (no windows at all).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lambdas.transform.replay import transform_record
from shared.config import AppConfig, TableSpec
from shared.naming import TableNames
from tests.integration import lake_stream
from tests.integration.lake_stream import HOUR_US, T0_US, US, Change, Put, Stream

MINUTE_US = 60 * US
DAY_US = 24 * HOUR_US
# The maintenance configuration the proof runs with: small, so the catch-up takes several windows.
LATE_WINDOW_HOURS = 2
MAX_HOURS_PER_RUN = 5
# Runs at :25 of every hour from T0, except during the outage; the crash hits the run at CRASH_HOUR.
RUN_HOURS = [h for h in range(0, 20) if not 7 <= h <= 10]
CRASH_HOUR = 5
REPEAT_HOUR = 13  # this run is repeated with the same window
REPLAY_HOUR = 14  # ddb-lake replay runs at :05 of this hour
# Error objects replayed from this many further change days (beyond 100, as one INSERT may write at most).
OLD_ERROR_DAYS = 120
OUTAGE_REPLAY_HOUR = 10  # and again during the outage, of the hour before
LATE_OBJECT_HOUR = 13  # an object of this partition hour is written 95 minutes after the hour starts
VERY_LATE_OBJECT_HOUR = 2  # an object of this partition hour is written at 13:40, beyond every late window

# A shard whose sequence numbers have 129 digits, next to one whose have 128 (Kinesis allows 0|[1-9]\d{0,128}).
WIDE_SHARD, NARROW_SHARD = "shardId-000000000098", "shardId-000000000099"
TIE_SHARDS = ("shardId-000000000002", "shardId-000000000003")


def at(hours: float) -> int:
    """T0 + hours, in microseconds."""
    return T0_US + int(hours * HOUR_US)


VERY_LATE_WRITE_US = at(13) + 40 * MINUTE_US


def hour_text(time_us: int) -> str:
    return (datetime(1970, 1, 1) + timedelta(microseconds=time_us)).strftime("%Y-%m-%d-%H")


@dataclass(frozen=True)
class Copy:
    """One line in the lake: a delivered copy of a change."""

    change: Change
    sequence: int | None
    shard: str | None
    arrival_hour: str
    line: str  # the transform's line, without its newline


@dataclass
class LakeObject:
    key: str  # relative to the bucket
    write_us: int
    copies: list[Copy]

    def content(self) -> bytes:
        return gzip.compress(b"".join(c.line.encode() + b"\n" for c in self.copies))


@dataclass
class Scenario:
    spec: TableSpec
    names: TableNames
    changes: list[Change]
    objects: list[LakeObject] = field(default_factory=list)

    def all_copies(self) -> list[Copy]:
        return [c for o in self.objects for c in o.copies]


def _partition_key(names: TableNames, time_us: int, file_name: str) -> str:
    return lake_stream._prefix(names.data_prefix, time_us // 1000) + file_name


def _firehose_objects(
    puts: list[Put], names: TableNames, cfg: AppConfig, spec: TableSpec, tag: str
) -> list[LakeObject]:
    """Puts through the real transform, grouped by the S3 buffer interval; each object in the hour of its oldest
    arrival, written when its buffer interval ends."""
    if not puts:
        return []
    stream = Stream(spec=spec, changes=[], deliveries=sorted(puts, key=lambda p: (p.arrival_ms, p.shard, p.sequence)))
    lines = lake_stream.transform(stream, names, cfg.producer.region, cfg.producer.account)
    interval_us = cfg.delivery_for(spec).buffer_interval_seconds * US
    groups: list[list[tuple[Put, bytes]]] = []
    for put, line in lines:
        if not groups or put.arrival_ms * 1000 - groups[-1][0][0].arrival_ms * 1000 >= interval_us:
            groups.append([])
        groups[-1].append((put, line))
    objects = []
    for n, group in enumerate(groups):
        oldest_us = group[0][0].arrival_ms * 1000
        name = f"{names.delivery_stream}-1-{tag}-{n:05d}.gz"
        copies = [
            Copy(put.change, put.sequence, put.shard, hour_text(oldest_us), line.decode().rstrip("\n"))
            for put, line in group
        ]
        objects.append(LakeObject(_partition_key(names, oldest_us, name), oldest_us + interval_us, copies))
    return objects


def _replay_object(
    changes: list[Change], names: TableNames, cfg: AppConfig, source_key: str, replay_us: int
) -> LakeObject:
    """What ``ddb-lake replay`` writes for one source object: every record through the Lambda's replay code
    without a sequence number or shard, into the partition of the hour the replay runs."""
    copies = []
    for change in changes:
        raw = json.dumps(change.record(names.table, cfg.producer.region), ensure_ascii=False).encode()
        outcome = transform_record(raw)
        assert outcome.line is not None, outcome
        copies.append(Copy(change, None, None, hour_text(replay_us), outcome.line.decode().rstrip("\n")))
    digest = hashlib.sha256(source_key.encode()).hexdigest()
    return LakeObject(_partition_key(names, replay_us, f"replay-{digest}.gz"), replay_us, copies)


def generate(cfg: AppConfig, spec: TableSpec, names: TableNames, seed: int = 20261206) -> Scenario:
    b = lake_stream._Builder(spec, seed)
    rng = b.rng
    taken: set[int] = set()

    def new_item() -> int:
        item = max(taken, default=-1) + 1
        taken.add(item)
        return item

    # Ordinary items over 14 hours (the reshard is at T0 + 3 h): updates, deletes (every other one by TTL), re-inserts.
    for _ in range(12):
        item = new_item()
        t = b.random_time(at(0), at(9))
        b.add(item, "INSERT", t)
        for _ in range(rng.randint(1, 3)):
            t = b.random_time(t + 1, t + 150 * MINUTE_US)
            b.add(item, "MODIFY", t)
        if item % 3 == 0:
            t = b.random_time(t + 1, t + 30 * MINUTE_US)
            b.add(item, "REMOVE", t, ttl=item % 2 == 0)
            if item % 6 == 3:
                b.add(item, "INSERT", b.random_time(t + 1, t + 30 * MINUTE_US))

    # Late beyond one window: a change put 6 hours late (arrives during the outage) is older than the next one.
    item = new_item()
    b.add(item, "INSERT", at(1))
    b.add(item, "MODIFY", at(2), delay=6 * HOUR_US)
    b.add(item, "MODIFY", at(3) + 7)
    # A delete followed by a late older change: the tombstone stays.
    item = new_item()
    b.add(item, "INSERT", at(1))
    b.add(item, "MODIFY", at(1.5), delay=5 * HOUR_US)
    b.add(item, "REMOVE", at(2))
    # Backfill: after a live change far outside its window (live wins); before a live change (live wins); only
    # backfill, twice (the newer backfill wins); deleted live, then a backfill snapshot with a later time.
    far, before, only, deleted = new_item(), new_item(), new_item(), new_item()
    b.add(far, "INSERT", at(10 / 60))
    b.add(far, "INSERT", at(13.2), origin="backfill")
    b.add(before, "INSERT", at(20 / 60), origin="backfill")
    b.add(before, "MODIFY", at(12))
    b.add(only, "INSERT", at(5), origin="backfill")
    b.add(only, "INSERT", at(13.3), origin="backfill")
    b.add(deleted, "INSERT", at(1.9))
    b.add(deleted, "REMOVE", at(2))
    b.add(deleted, "INSERT", at(2) + 60 * US, origin="backfill")
    # The object written late into an old partition (see below).
    late_item = new_item()
    late_change = b.add(late_item, "INSERT", at(LATE_OBJECT_HOUR + 0.5))
    # ... and one written so late that no scheduled window holds its partition any more: only a rebuild reads it.
    very_late_change = b.add(new_item(), "INSERT", at(VERY_LATE_OBJECT_HOUR + 0.2))

    ordinary = list(b.changes)
    ordinary.remove(late_change)
    ordinary.remove(very_late_change)
    puts = lake_stream._deliver(ordinary, rng)

    # Ties, scripted with explicit sequence numbers (no re-puts), each (change, shard, sequence, arrival delay):
    scripted: list[tuple[Change, str, int, int]] = []
    same = 4965 * 10**52 + 424242

    def sequenced(change: Change, shard: str, sequence: int, delay_us: int = 300_000) -> Change:
        scripted.append((change, shard, sequence, delay_us))
        return change

    # equal time and equal sequence number on two shards, in one window and across windows (the second copy 3 hours
    # late): the larger _event_id wins, whichever arrives first;
    for n, (first_id, second_id) in enumerate((("0" * 8, "f" * 8), ("f" * 8, "0" * 8), ("7" * 8, "8" * 8))):
        item = new_item()
        sequenced(b.add(item, "INSERT", at(2 + n / 10)), TIE_SHARDS[0], same - 10**20)
        first, second = b.add(item, "MODIFY", at(2.5 + n / 10)), b.add(item, "MODIFY", at(2.5 + n / 10))
        first.event_id = first_id + first.event_id[8:]
        second.event_id = second_id + second.event_id[8:]
        sequenced(first, TIE_SHARDS[0], same)
        sequenced(second, TIE_SHARDS[1], same, delay_us=(3 * HOUR_US if n < 2 else 300_000))
    tie = item
    # equal time with 128 and 129 digits: the 129-digit one is larger (unpadded text would pick the 128-digit one);
    wide = new_item()
    sequenced(b.add(wide, "INSERT", at(4)), NARROW_SHARD, 10**127)
    sequenced(b.add(wide, "MODIFY", at(4.6)), WIDE_SHARD, 10**128 + 1)
    sequenced(b.add(wide, "MODIFY", at(4.6)), NARROW_SHARD, 10**128 - 1)
    # equal time where one change exists only as a copy without a sequence number (its Kinesis record failed the
    # transform; only the error replay below brings it): the one with a sequence number wins.
    unsequenced = new_item()
    sequenced(b.add(unsequenced, "INSERT", at(4)), TIE_SHARDS[0], same + 10**31)
    sequenced(b.add(unsequenced, "MODIFY", at(4.7)), TIE_SHARDS[1], same + 10**32)
    lost = b.add(unsequenced, "MODIFY", at(4.7))
    scripted_puts = [Put(c, shard, seq, (c.time_us + delay) // 1000) for c, shard, seq, delay in scripted]

    objects = _firehose_objects(puts + scripted_puts, names, cfg, spec, "stream")

    # The object written late into an old partition: Firehose names it after its oldest record's arrival hour,
    # but writes it 95 minutes after that hour began (within the late window).
    late_put = Put(late_change, lake_stream.CHILD_SHARDS[0], 10**54 + 10**45, late_change.time_us // 1000 + 400)
    (late_object,) = _firehose_objects([late_put], names, cfg, spec, "late")
    late_object.write_us = at(LATE_OBJECT_HOUR) + 95 * MINUTE_US
    assert late_object.key.split("/")[-2] == f"hour={LATE_OBJECT_HOUR + 3:02d}", late_object.key
    objects.append(late_object)
    very_late_put = Put(very_late_change, lake_stream.PARENT_SHARDS[0], 4965 * 10**52 + 10**45, at(2.2) // 1000 + 500)
    (very_late,) = _firehose_objects([very_late_put], names, cfg, spec, "very-late")
    very_late.write_us = VERY_LATE_WRITE_US
    objects.append(very_late)

    # ddb-lake replay at REPLAY_HOUR:05, written into that hour's partition:
    replay_us = at(REPLAY_HOUR) + 5 * MINUTE_US
    # (1) from the raw backup: every record of an old hour again (duplicates of changes already in history);
    old_hour = hour_text(at(1))
    old = [c for o in objects for c in o.copies if c.arrival_hour == old_hour and c.sequence is not None]
    replays = [_replay_object([c.change for c in old], names, cfg, f"raw/{names.key}/{old_hour}/backup-1", replay_us)]
    # (2) from the error envelopes: changes that never reached the data prefix, days and weeks old (each an item of
    # its own, and one older change of an item whose state is newer), and the unsequenced tie above.
    errors: list[Change] = []
    # Also months of them: more change days in one window than one INSERT may write (the INSERT's fallback).
    for days in (40, 3, 2, *range(50, 50 + OLD_ERROR_DAYS)):
        errors.append(b.add(new_item(), "INSERT", T0_US - days * DAY_US + 17 * MINUTE_US))
    errors.append(b.add(tie, "MODIFY", at(2.3)))  # older than the tie item's state: loses
    errors.append(lost)
    replays.append(_replay_object(errors, names, cfg, f"errors/{names.key}/processing-failed/x", replay_us))
    # (3) from the raw backup during the outage: the replayed copies (no sequence number) and the originals are first
    # read by the same catch-up run, so the copy rule itself decides which one history keeps.
    outage_us = at(OUTAGE_REPLAY_HOUR) + 5 * MINUTE_US
    source_hour = hour_text(at(OUTAGE_REPLAY_HOUR - 1))
    recent = [c for o in objects for c in o.copies if c.arrival_hour == source_hour and c.sequence is not None]
    assert recent, "the outage replay has records to replay"
    replays.append(
        _replay_object([c.change for c in recent], names, cfg, f"raw/{names.key}/{source_hour}/backup-2", outage_us)
    )
    objects += replays
    return Scenario(spec=spec, names=names, changes=b.changes, objects=objects)


# --- the reference model -------------------------------------------------------------------------------------
def item_key(change: Change) -> str:
    return json.dumps(change.keys, sort_keys=True)


def copy_rank(copy: Copy) -> tuple[Any, ...]:
    """Lower is kept: lowest sequence number (a copy without one last), then shard (none last), arrival hour,
    line."""
    return (
        copy.sequence is None,
        copy.sequence or 0,
        copy.shard is None,
        copy.shard or "",
        copy.arrival_hour,
        copy.line.encode(),
    )


def state_rank(copy: Copy) -> tuple[Any, ...]:
    """Higher wins: live before backfill, then change time (µs), then sequence number (a missing one lowest),
    then _event_id."""
    change = copy.change
    return (change.origin != "backfill", change.time_us, copy.sequence is not None, copy.sequence or 0, change.event_id)


def add_hours(hour: str, hours: int) -> str:
    return (datetime.strptime(hour, "%Y-%m-%d-%H") + timedelta(hours=hours)).strftime("%Y-%m-%d-%H")


@dataclass
class Model:
    late_window_hours: int
    max_hours_per_run: int
    history: dict[str, Copy] = field(default_factory=dict)  # _event_id -> the kept copy
    state: dict[str, Copy] = field(default_factory=dict)  # item key -> its winning copy (tombstones included)
    progress: str | None = None  # the last arrival hour merged

    def window(self, now_us: int) -> tuple[str, str, str]:
        now = hour_text(now_us)
        start = add_hours(self.progress or now, -self.late_window_hours)
        last = add_hours(start, self.max_hours_per_run - 1)
        return start, min(last, now), "true" if last >= now else "false"

    def insert(self, start: str, end: str, visible: list[Copy]) -> None:
        fresh: dict[str, Copy] = {}
        for copy in visible:
            event = copy.change.event_id
            if (
                start <= copy.arrival_hour <= end
                and event not in self.history
                and (event not in fresh or copy_rank(copy) < copy_rank(fresh[event]))
            ):
                fresh[event] = copy
        self.history.update(fresh)

    def merge_source_rows(self, start: str, end: str) -> int:
        """Rows of the MERGE's source: one per key among the window's history rows, plus the progress row."""
        return 1 + len({item_key(c.change) for c in self.history.values() if start <= c.arrival_hour <= end})

    def merge(self, start: str, end: str) -> None:
        for copy in self.history.values():
            if start <= copy.arrival_hour <= end:
                key = item_key(copy.change)
                if key not in self.state or state_rank(copy) > state_rank(self.state[key]):
                    self.state[key] = copy
        self.progress = max(self.progress or end, end)


def rule_applied_once(copies: list[Copy]) -> tuple[dict[str, Copy], dict[str, Copy]]:
    """History and state by the rule applied once to every copy ever written, no windows."""
    history: dict[str, Copy] = {}
    for copy in copies:
        event = copy.change.event_id
        if event not in history or copy_rank(copy) < copy_rank(history[event]):
            history[event] = copy
    state: dict[str, Copy] = {}
    for copy in history.values():
        key = item_key(copy.change)
        if key not in state or state_rank(copy) > state_rank(state[key]):
            state[key] = copy
    return history, state


def run_instants() -> list[int]:
    return [at(h) + 25 * MINUTE_US for h in RUN_HOURS]


def utc(time_us: int) -> datetime:
    return datetime.fromtimestamp(time_us / US, tz=UTC)
