"""A realistic change stream of one source table, what every query over it must return, and the lake Firehose
would write from it.

The stream has inserts, updates, deletes, TTL deletes, re-inserts after a delete, duplicate deliveries (Firehose
retries: same Kinesis record; DynamoDB re-puts: new sequence number), late writes, a reshard from 2 to 4 shards,
backfill records (``"ddbLakeOrigin": "backfill"``), changes of one item within one millisecond, sequence numbers
of different lengths (up to Kinesis's 129 digits), changes of one item with equal time AND equal sequence number
(only ``_event_id`` orders them), copies without a sequence number (as ``ddb-lake replay`` writes them) next to copies
with one, and every configured column of the table (attributes differing only in case, escaped
names, non-ASCII names, 38-digit numbers, nested maps) plus attributes nobody declared.

The ground truth is computed here from the generated changes alone, in Python, by the documented rule
(docs/lake-queries.md, *Ordering and duplicates: the rule*): it never looks at SQL. Sequence numbers are compared as
numbers (what equal-width text comparison stands for). A copy without a sequence number (a replayed record: the raw
backup keeps none) counts as having the lowest one: a copy with a sequence number is the one kept, and among changes
of equal time a change known only from a replay orders first (see ``order_key``).

Each expected row is keyed by the exact JSON key the transform writes; the test maps keys to column names through
the deployed Glue table's ``mapping.*`` properties.

The lake is written the way Firehose writes it: records go through the real transform handler in batches of the
processor's size, lines are grouped into GZIP objects by the S3 buffer, and each object lands in the hour
partition of "the approximate arrival timestamp of the oldest record" in it
(https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html), under the table's data prefix.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import gzip
import hashlib
import io
import json
import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

from lambdas.transform.handler import handler
from shared.config import AppConfig, TableSpec
from shared.naming import TableNames
from tests.projection import java_to_strftime

US = 1_000_000
HOUR_US = 3600 * US
# The stream covers six hours of change time from T0; the reshard from 2 to 4 shards happens mid-way.
T0_US = int(datetime(2026, 11, 21, 3, 0, tzinfo=UTC).timestamp()) * US
RESHARD_US = T0_US + 3 * HOUR_US + 17 * US + 123_500  # inside a millisecond on purpose (case "same_ms")
END_US = T0_US + 6 * HOUR_US
# The window the per-hour query is asked for (change time, end exclusive).
WINDOW = ("2026-11-21T04", "2026-11-21T08")

PARENT_SHARDS = ("shardId-000000000000", "shardId-000000000001")
CHILD_SHARDS = ("shardId-000000000002", "shardId-000000000003", "shardId-000000000004", "shardId-000000000005")
# Real sequence numbers have 56 digits; the children's start lower (55 digits) and shard 3 starts just below
# 10**55, so its sequence numbers grow from 55 to 56 digits: text comparison without padding would fail there.
_FIRST_SEQUENCE = {
    PARENT_SHARDS[0]: 4965 * 10**52 + 7,
    PARENT_SHARDS[1]: 4965 * 10**52 + 10**20,
    CHILD_SHARDS[0]: 10**54 + 11,
    CHILD_SHARDS[1]: 10**55 - 2,
    CHILD_SHARDS[2]: 10**54 + 10**30,
    CHILD_SHARDS[3]: 10**54 + 10**40,
}
# The longest sequence numbers Kinesis allows (pattern 0|([1-9]\d{0,128})): 129 digits, next to 128-digit ones.
# They start with "1" and "9" so that any narrower padding, which cuts or misaligns them, orders them wrongly.
WIDE_SHARD = "shardId-000000000009"
SEQUENCE_129 = 10**128 + 5
SEQUENCE_128 = 10**128 - 7
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
_WORDS = ("alpha", "bravo", "Zürich", "naïve", "straße", "東京", "données", "kilo", "OSLO", "quebec")
PROCESSOR_BUFFER_BYTES = 1024 * 1024
PROCESSOR_BUFFER_MS = 60_000
_EXACT = Context(prec=100)


def iso(time_us: int) -> str:
    """ISO-8601 UTC with microseconds: how the contract writes _approximate_creation_time."""
    return (datetime(1970, 1, 1) + timedelta(microseconds=time_us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def unescape(component: str) -> str:
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), component)


def attribute_path(json_key: str) -> list[str]:
    """The attribute path a configured column key stands for (the contract's "Column names", in reverse)."""
    return [unescape(part) for part in json_key.split(".")]


def escape_top(attribute: str) -> str:
    """The JSON key of a top-level attribute, as the contract describes it."""
    key = attribute.replace("%", "%25").replace(".", "%2E")
    return "%5F" + key[1:] if key.startswith("_") else key


# --- values -----------------------------------------------------------------------------------------------------
def _decimal_text(rng: random.Random, precision: int, scale: int, extreme: bool) -> str:
    int_digits = precision - scale
    n_int = int_digits if extreme else rng.randint(1, max(1, min(int_digits, 12)))
    integer = str(rng.randint(10 ** (n_int - 1), 10**n_int - 1)) if n_int else "0"
    fraction = "".join(str(rng.randint(0, 9)) for _ in range(scale))
    text = integer + ("." + fraction if fraction else "")
    if "." in text:
        text = text.rstrip("0").rstrip(".")  # DynamoDB sends no trailing fractional zeros
    return ("-" if rng.random() < 0.2 else "") + text


def make_value(rng: random.Random, hive_type: str, extreme: bool = False) -> tuple[dict[str, Any], Any]:
    """A DynamoDB typed value for a column of ``hive_type`` and the value the table must read from it."""
    t = hive_type.replace(" ", "").lower()
    if t in ("string", "varchar"):
        text = f"{rng.choice(_WORDS)} {rng.randint(0, 999)}"
        return {"S": text}, text
    if t == "boolean":
        flag = rng.random() < 0.5
        return {"BOOL": flag}, flag
    if t in ("bigint", "int", "integer", "smallint", "tinyint"):
        bits = {"bigint": 62, "int": 30, "integer": 30, "smallint": 14, "tinyint": 6}[t]
        n = rng.randint(-(2**bits), 2**bits)
        return {"N": str(n)}, n
    if t == "double":
        x = round(rng.uniform(-1e6, 1e6), rng.randint(0, 6))
        text = repr(x).removesuffix(".0") if x == int(x) else repr(x)
        return {"N": text}, float(text)
    match = re.fullmatch(r"decimal\((\d+),(\d+)\)", t)
    if match:
        precision, scale = int(match.group(1)), int(match.group(2))
        text = _decimal_text(rng, precision, scale, extreme)
        # Exact at 38 digits: the default decimal context keeps only 28.
        return {"N": text}, _EXACT.quantize(Decimal(text), Decimal(1).scaleb(-scale))
    raise ValueError(f"the generator has no values for type {hive_type!r}")


def _key_value(spec_type: str, n: int, salt: str) -> tuple[dict[str, Any], str]:
    """A key attribute value and its text in the lake (key columns are strings: digits or base64 as sent)."""
    if spec_type == "S":
        text = f"{salt}#{n}" if n % 5 else f"ключ-{salt}#{n}"
        return {"S": text}, text
    if spec_type == "N":
        text = str(12345678901234567890123456789012345678 - n) if n % 4 == 0 else str(1000 + n)
        return {"N": text}, text
    text = base64.b64encode(hashlib.sha256(f"{salt}{n}".encode()).digest()[:12]).decode()
    return {"B": text}, text


# --- the stream -------------------------------------------------------------------------------------------------
@dataclass
class Change:
    """One item change as DynamoDB (or the backfill tool) would put it on the stream."""

    item: int
    event_id: str
    event_name: str
    time_us: int
    keys: dict[str, Any]
    new_image: dict[str, Any] | None
    old_image: dict[str, Any] | None
    # JSON key -> expected value of every declared column this change's image gives (keys included).
    values: dict[str, Any]
    origin: str = "stream"
    ttl: bool = False
    put_delay_us: int = 0  # how long after the change DynamoDB put it on the stream (late writes)
    # Scripted copies, in arrival order: (shard, sequence number), both None for a replayed copy. None: generated.
    copies: tuple[tuple[str | None, int | None], ...] | None = None

    def record(self, table: str, region: str) -> dict[str, Any]:
        ddb: dict[str, Any] = {"ApproximateCreationDateTime": self.time_us, "Keys": self.keys}
        if self.new_image is not None:
            ddb["NewImage"] = self.new_image
        if self.old_image is not None:
            ddb["OldImage"] = self.old_image
        ddb["SizeBytes"] = 200 + len(json.dumps(self.new_image or self.old_image))
        ddb["ApproximateCreationDateTimePrecision"] = "MICROSECOND"
        record: dict[str, Any] = {
            "awsRegion": region,
            "eventID": self.event_id,
            "eventName": self.event_name,
            "userIdentity": TTL_IDENTITY if self.ttl else None,
            "recordFormat": "application/json",
            "tableName": table,
            "dynamodb": ddb,
            "eventSource": "aws:dynamodb",
        }
        if self.origin == "backfill":
            record["ddbLakeOrigin"] = "backfill"
        return record


@dataclass
class Put:
    """One Kinesis record carrying a change (a change is put more than once when DynamoDB re-puts it), or a replayed
    copy of it (``ddb-lake replay``: no shard, no sequence number)."""

    change: Change
    shard: str | None
    sequence: int | None
    arrival_ms: int


@dataclass
class Stream:
    spec: TableSpec
    changes: list[Change] = field(default_factory=list)
    deliveries: list[Put] = field(default_factory=list)  # in arrival order, retried records included


class _Builder:
    def __init__(self, spec: TableSpec, seed: int) -> None:
        self.spec = spec
        self.rng = random.Random(seed)
        self.changes: list[Change] = []
        self.state: dict[int, dict[str, Any] | None] = {}
        self.key_types = [(spec.partition_key, spec.partition_key_type)]
        if spec.sort_key:
            self.key_types.append((spec.sort_key, spec.sort_key_type))

    def keys(self, item: int) -> tuple[dict[str, Any], dict[str, Any]]:
        attributes, texts = {}, {}
        for n, (name, key_type) in enumerate(self.key_types):
            value, text = _key_value(key_type, item, salt=f"k{n}")
            attributes[name] = value
            texts[escape_top(name)] = text
        return attributes, texts

    def image(self, item: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """A full item image: keys, every configured column (some left out), and undeclared attributes."""
        attributes, values = self.keys(item)
        image = copy.deepcopy(attributes)
        key_names = {name for name, _ in self.key_types}
        for json_key, hive_type in self.spec.columns.items():
            path = attribute_path(json_key)
            if len(path) == 1 and path[0] in key_names:
                continue  # a key attribute declared again: it is the key
            if self.rng.random() < 0.1:
                continue  # absent in this version of the item: reads NULL
            typed, expected = make_value(self.rng, hive_type, extreme=self.rng.random() < 0.3)
            node = image
            for part in path[:-1]:
                node = node.setdefault(part, {"M": {}})["M"]
            node[path[-1]] = typed
            values[json_key] = expected
        # Undeclared: only <table>_lines shows them.
        image["undeclaredNote"] = {"S": f"note {self.rng.choice(_WORDS)}"}
        image["undeclaredMeta"] = {"M": {"source": {"S": "generator"}, "tags": {"SS": ["a", "b"]}}}
        image["undeclaredList"] = {"L": [{"M": {"sku": {"S": "SKU-1"}}}, {"N": "2"}]}
        return image, values

    def add(
        self,
        item: int,
        event_name: str,
        time_us: int,
        *,
        origin: str = "stream",
        ttl: bool = False,
        delay: int = 0,
        copies: tuple[tuple[str | None, int | None], ...] | None = None,
        event_id: str | None = None,
    ) -> Change:
        keys, key_texts = self.keys(item)
        previous = self.state.get(item)
        if event_name == "REMOVE":
            assert previous is not None, "REMOVE of an absent item"
            new_image, old_image = None, previous["image"]
            values = dict(previous["values"])
            self.state[item] = None
        else:
            new_image, values = self.image(item)
            old_image = previous["image"] if (event_name == "MODIFY" and previous) else None
            if origin == "stream":
                self.state[item] = {"image": new_image, "values": values}
        values.update(key_texts)
        change = Change(
            item=item,
            event_id=event_id or str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            event_name=event_name,
            time_us=time_us,
            keys=keys,
            new_image=new_image,
            old_image=old_image,
            values=values,
            origin=origin,
            ttl=ttl,
            put_delay_us=delay,
            copies=copies,
        )
        self.changes.append(change)
        return change

    def random_time(self, lo: int, hi: int) -> int:
        while True:
            t = self.rng.randint(lo, hi)
            if abs(t - RESHARD_US) > 2 * US:  # the reshard instant belongs to the scripted cases
                return t


def _shard_of(key_text: str, time_us: int) -> str:
    h = int(hashlib.md5(key_text.encode()).hexdigest(), 16)
    return PARENT_SHARDS[h % 2] if time_us < RESHARD_US else CHILD_SHARDS[h % 4]


def _item_on(builder: _Builder, start: int, shard: str, time_us: int, taken: set[int]) -> int:
    """The first unused item number whose key lands on ``shard`` at ``time_us``."""
    n = start
    while True:
        if n not in taken and _shard_of(json.dumps(builder.keys(n)[0], sort_keys=True), time_us) == shard:
            taken.add(n)
            return n
        n += 1


def generate(spec: TableSpec, seed: int = 20261121) -> Stream:
    """The change stream of one table (deterministic for a seed)."""
    b = _Builder(spec, seed)
    rng = b.rng
    taken: set[int] = set()

    # Ordinary items: inserted, updated a few times, some deleted (some by TTL), some re-inserted.
    for item in range(24):
        taken.add(item)
        t = b.random_time(T0_US, T0_US + 2 * HOUR_US)
        b.add(item, "INSERT", t)
        for _ in range(rng.randint(1, 4)):
            t = b.random_time(t + 1, min(END_US - HOUR_US, t + 90 * 60 * US))
            b.add(item, "MODIFY", t)
        if item % 4 == 0:
            t = b.random_time(t + 1, t + 20 * 60 * US)
            b.add(item, "REMOVE", t, ttl=item % 8 == 0)
            if item % 8 == 4:
                t = b.random_time(t + 1, t + 20 * 60 * US)
                b.add(item, "INSERT", t)  # re-insert after a delete

    # Two changes of one item within one microsecond on one shard: only the sequence number orders them, and it
    # crosses from 55 to 56 digits there (shard 3 starts just below 10**55).
    same_us = RESHARD_US + 2_000
    item = _item_on(b, 100, CHILD_SHARDS[1], same_us, taken)
    b.add(item, "INSERT", same_us - 5 * 60 * US)
    b.add(item, "MODIFY", same_us)
    b.add(item, "MODIFY", same_us)

    # Two changes within one millisecond across the reshard: the later one (by microseconds) is on a child shard
    # with a smaller sequence number. A millisecond timestamp would tie them and the sequence number pick wrongly.
    item = _item_on(b, 200, CHILD_SHARDS[0], RESHARD_US + 289, taken)
    b.add(item, "INSERT", RESHARD_US - 10 * 60 * US)
    b.add(item, "MODIFY", RESHARD_US - 44)  # X.123456, parent shard
    b.add(item, "MODIFY", RESHARD_US + 289)  # X.123789, child shard

    # A late write: a change put 40 minutes late (larger sequence number) followed by a prompt one 10 minutes
    # after it: the prompt one is the current state.
    item = max(taken) + 1
    taken.add(item)
    t = T0_US + 4 * HOUR_US + 30 * 60 * US
    b.add(item, "INSERT", t - HOUR_US)
    b.add(item, "MODIFY", t, delay=40 * 60 * US)
    b.add(item, "MODIFY", t + 10 * 60 * US)

    # A change three hours late, outside the per-hour window by change time, inside it by arrival.
    item = max(taken) + 1
    taken.add(item)
    b.add(item, "INSERT", T0_US + 10 * 60 * US, delay=3 * HOUR_US)

    # Changes on both sides of the window start.
    start_us = int(datetime.strptime(WINDOW[0], "%Y-%m-%dT%H").replace(tzinfo=UTC).timestamp()) * US
    for offset in (-1, 0):
        item = max(taken) + 1
        taken.add(item)
        b.add(item, "INSERT", start_us + offset)

    # Backfill: (a) deleted live, then a backfill snapshot taken before the delete arrives with a later time: the
    # item stays deleted; (b) only a backfill record (twice): it is the state; (c) backfill, then a live change:
    # the live one; (d) a live insert, then a newer backfill snapshot: the live one still wins.
    a, bf_only, c, d = (max(taken) + n for n in (1, 2, 3, 4))
    taken.update((a, bf_only, c, d))
    t = T0_US + HOUR_US + 5 * 60 * US
    b.add(a, "INSERT", t)
    b.add(a, "REMOVE", t + 60 * US)
    b.add(a, "INSERT", t + 120 * US, origin="backfill")
    b.add(bf_only, "INSERT", t + 7 * US, origin="backfill")
    b.add(c, "INSERT", t + 9 * US, origin="backfill")
    b.add(c, "MODIFY", t + 30 * 60 * US)
    b.add(d, "INSERT", t - 30 * 60 * US)
    b.add(d, "INSERT", t + 11 * US, origin="backfill")

    _scripted_ties(b, taken)
    return Stream(spec=spec, changes=b.changes, deliveries=_deliver(b.changes, rng))


def _event_id(first: str) -> str:
    """An event ID that sorts where a case needs it (its first hex digit)."""
    return f"{first * 8}-0000-4000-8000-{first * 12}"


def _scripted_ties(b: _Builder, taken: set[int]) -> None:
    """The cases only the last tie-breakers decide, delivered exactly as scripted (no random re-puts or retries)."""
    t = T0_US + 5 * HOUR_US + 7 * 60 * US + 123_456
    shard_a, shard_b = CHILD_SHARDS[0], CHILD_SHARDS[2]

    def new_item() -> int:
        item = max(taken) + 1
        taken.add(item)
        return item

    # (1) Equal time AND equal sequence number (two shards can hand out the same number): only _event_id orders
    # them, ascending in the history, and the greatest wins the current state.
    item = new_item()
    b.add(item, "INSERT", t - 60 * US, copies=((shard_a, 10**54 + 500),))
    b.add(item, "MODIFY", t, copies=((shard_a, 10**54 + 900),), event_id=_event_id("c"))
    b.add(item, "MODIFY", t, copies=((shard_b, 10**54 + 900),), event_id=_event_id("3"))

    # (2) Replayed copies (no sequence number) next to Kinesis copies of the same change: the copy with the
    # sequence number is kept, whichever arrives first.
    item = new_item()
    b.add(item, "INSERT", t - 30 * US, copies=((None, None), (shard_a, 10**54 + 700), (None, None)))
    # ...and a change known only from a replay, at the same time as a change with a sequence number: the replayed
    # one orders first (lowest) and does not win, although its event ID is the greater.
    b.add(item, "MODIFY", t, copies=((shard_a, 10**54 + 910),), event_id=_event_id("1"))
    b.add(item, "MODIFY", t, copies=((None, None), (None, None)), event_id=_event_id("e"))

    # (3) 129-digit and 128-digit sequence numbers on one shard at equal time: the 129-digit one is greater. Its
    # event ID is the smaller, so ordering by anything but the full number picks the other.
    item = new_item()
    b.add(item, "INSERT", t - 10 * US, copies=((WIDE_SHARD, SEQUENCE_128 - 100),))
    b.add(item, "MODIFY", t, copies=((WIDE_SHARD, SEQUENCE_129),), event_id=_event_id("2"))
    b.add(item, "MODIFY", t, copies=((WIDE_SHARD, SEQUENCE_128),), event_id=_event_id("d"))
    # Copies of one change re-put with a 129-digit and a 128-digit number: the 128-digit copy is the lower, kept.
    item = new_item()
    b.add(item, "INSERT", t, copies=((WIDE_SHARD, SEQUENCE_129 + 2), (WIDE_SHARD, SEQUENCE_128 + 3)))


def _deliver(changes: list[Change], rng: random.Random) -> list[Put]:
    """Kinesis puts (sequence numbers per shard in put order) and Firehose arrivals, duplicates included."""
    # (put time, order of the change, change): changes of one instant are put in the order they happened.
    puts: list[tuple[int, int, Change]] = [
        (c.time_us + c.put_delay_us, n, c) for n, c in enumerate(changes) if c.copies is None
    ]
    # DynamoDB re-puts about one change in twelve: a second Kinesis record, later, with its own sequence number
    # (never at the reshard instant, which the scripted cases own).
    for put_us, n, change in list(puts):
        again = put_us + rng.randint(1, 90) * US
        if rng.random() < 1 / 12 and abs(again - RESHARD_US) > 2 * US:
            puts.append((again, n, change))
    puts.sort(key=lambda p: (p[0], p[1]))
    counters = dict(_FIRST_SEQUENCE)
    used: set[str] = set()
    deliveries: list[Put] = []
    for put_us, _, change in puts:
        shard = _shard_of(json.dumps(change.keys, sort_keys=True), put_us)
        # Sequence numbers grow by arbitrary steps; the first one of a shard is its start + 1.
        counters[shard] += 1 + (rng.randint(0, 10**6) if shard in used else 0)
        used.add(shard)
        sequence = counters[shard]
        arrival_ms = put_us // 1000 + rng.randint(20, 900)
        deliveries.append(Put(change, shard, sequence, arrival_ms))
        # Firehose retries about one batch record in fifteen: the same Kinesis record again, minutes later.
        if rng.random() < 1 / 15:
            deliveries.append(Put(change, shard, sequence, arrival_ms + rng.randint(60, 600) * 1000))
    for change in changes:
        for n, (shard, sequence) in enumerate(change.copies or ()):
            # A second apart, in the order given; replayed copies come through the same transform.
            deliveries.append(Put(change, shard, sequence, change.time_us // 1000 + 500 + n * 1000))
    deliveries.sort(key=lambda d: (d.arrival_ms, d.shard or "", d.sequence or 0))
    return deliveries


# --- what the queries must return ----------------------------------------------------------------------------------
def expected_row(change: Change, put: Put, names: TableNames, region: str) -> dict[str, Any]:
    """The row (JSON key -> value) the table shows for one delivered copy of ``change``."""
    return {
        "_event_name": change.event_name,
        "_event_id": change.event_id,
        "_table_name": names.table,
        "_aws_region": region,
        "_approximate_creation_time": iso(change.time_us),
        "_sequence_number": None if put.sequence is None else str(put.sequence),
        "_shard_id": put.shard,
        "_is_deleted": change.event_name == "REMOVE",
        "_is_ttl_delete": change.ttl,
        "_origin": change.origin,
        **change.values,
    }


def sequence_key(put: Put) -> tuple[bool, int]:
    """A sequence number compared as a number; none (a replayed copy) below every number."""
    return (put.sequence is not None, put.sequence or 0)


def kept_copies(stream: Stream) -> dict[str, Put]:
    """Duplicates collapse on the event ID; the copy with the lowest sequence number is the one shown, and a copy
    without one (replayed) only when no copy has one."""
    kept: dict[str, Put] = {}
    for put in stream.deliveries:
        best = kept.get(put.change.event_id)
        if best is None or _copy_rank(put) < _copy_rank(best):
            kept[put.change.event_id] = put
    return kept


def _copy_rank(put: Put) -> tuple[bool, int, bool, str]:
    # Copies of one change differ in sequence number and shard only; replayed copies are identical lines.
    return (put.sequence is None, put.sequence or 0, put.shard is None, put.shard or "")


def order_key(put: Put) -> tuple[int, tuple[bool, int], str]:
    """Rule 2: change time, then sequence number, then event ID (ascending = older first)."""
    return (put.change.time_us, sequence_key(put), put.change.event_id)


def _key_of(change: Change) -> str:
    return json.dumps(change.keys, sort_keys=True)


def history(stream: Stream) -> dict[str, list[Put]]:
    """Distinct changes per item, in order: change time, then sequence number (as numbers), then event ID."""
    per_item: dict[str, list[Put]] = {}
    for put in kept_copies(stream).values():
        per_item.setdefault(_key_of(put.change), []).append(put)
    for puts in per_item.values():
        puts.sort(key=order_key)
    return per_item


def current(stream: Stream) -> dict[str, Put]:
    """Per item, the winning change (live beats backfill, then latest time, then highest sequence number),
    items whose winner is a delete left out."""
    result = {}
    for key, puts in history(stream).items():
        live = [p for p in puts if p.change.origin == "stream"]
        pool = live or puts
        winner = max(pool, key=order_key)  # the latest by rule 2: the greatest event ID breaks the last tie
        if winner.change.event_name != "REMOVE":
            result[key] = winner
    return result


def changes_per_hour(stream: Stream, window: tuple[str, str] = WINDOW) -> list[tuple[str, str, int]]:
    counts: dict[tuple[str, str], int] = {}
    for put in kept_copies(stream).values():
        when = iso(put.change.time_us)
        if window[0] <= when < window[1]:
            hour = when[:13]
            counts[(hour, put.change.event_name)] = counts.get((hour, put.change.event_name), 0) + 1
    return sorted((hour, name, n) for (hour, name), n in counts.items())


# --- the lake ---------------------------------------------------------------------------------------------------
def firehose_events(stream: Stream, names: TableNames, region: str, account: str) -> Iterator[tuple[dict, list[Put]]]:
    """Firehose transformation events in processor-sized batches (1 MiB or 60 s of arrivals)."""
    batch: list[Put] = []
    size = 0
    n = 0

    def event(puts: list[Put]) -> dict[str, Any]:
        records = []
        for i, put in enumerate(puts):
            raw = json.dumps(put.change.record(names.table, region), ensure_ascii=False).encode()
            records.append(
                {
                    "recordId": f"{n:08d}-{i:05d}",
                    "approximateArrivalTimestamp": put.arrival_ms,
                    "data": base64.b64encode(raw).decode(),
                    "kinesisRecordMetadata": {
                        "shardId": put.shard,
                        "partitionKey": hashlib.md5(_key_of(put.change).encode()).hexdigest().upper(),
                        "approximateArrivalTimestamp": put.arrival_ms,
                        "sequenceNumber": str(put.sequence),
                        "subsequenceNumber": 0,
                    },
                }
            )
            if put.sequence is None:
                # A replayed copy: the same transform without Kinesis metadata (transform.replay.transform_record
                # gives this exact line), so its _sequence_number and _shard_id are null.
                del records[-1]["kinesisRecordMetadata"]
        return {
            "invocationId": str(uuid.UUID(int=n, version=4)),
            "deliveryStreamArn": f"arn:aws:firehose:{region}:{account}:deliverystream/{names.delivery_stream}",
            "region": region,
            "sourceKinesisStreamArn": names.stream_arn,
            "records": records,
        }

    for put in stream.deliveries:
        record_bytes = len(json.dumps(put.change.record(names.table, region)).encode())
        if batch and (
            size + record_bytes > PROCESSOR_BUFFER_BYTES or put.arrival_ms - batch[0].arrival_ms >= PROCESSOR_BUFFER_MS
        ):
            yield event(batch), batch
            n += 1
            batch, size = [], 0
        batch.append(put)
        size += record_bytes
    if batch:
        yield event(batch), batch


def transform(stream: Stream, names: TableNames, region: str, account: str) -> list[tuple[Put, bytes]]:
    """Every delivered record through the real handler: (record, output line), in arrival order."""
    lines: list[tuple[Put, bytes]] = []
    for event, puts in firehose_events(stream, names, region, account):
        with contextlib.redirect_stdout(io.StringIO()):  # the handler's EMF log line
            response = handler(event, None)
        results = response["records"]
        assert [r["recordId"] for r in results] == [r["recordId"] for r in event["records"]]
        bad = [r["recordId"] for r in results if r["result"] != "Ok"]
        assert not bad, f"the transform failed records {bad}"
        lines.extend((put, base64.b64decode(r["data"])) for put, r in zip(puts, results, strict=True))
    return lines


def _prefix(data_prefix: str, arrival_ms: int) -> str:
    """Firehose's prefix for an object whose oldest record arrived at ``arrival_ms`` (UTC)."""
    when = datetime(1970, 1, 1) + timedelta(milliseconds=arrival_ms)
    return re.sub(r"!\{timestamp:([^}]*)\}", lambda m: when.strftime(java_to_strftime(m.group(1))), data_prefix)


def write_lake(
    root: Path, lines: list[tuple[Put, bytes]], names: TableNames, cfg: AppConfig, spec: TableSpec
) -> list[Path]:
    """GZIP JSON Lines objects under ``root`` (the bucket), grouped by the S3 buffer of the table's delivery."""
    delivery = cfg.delivery_for(spec)
    interval_ms = delivery.buffer_interval_seconds * 1000
    limit = delivery.buffer_size_mib * 1024 * 1024
    objects: list[list[tuple[Put, bytes]]] = []
    for put, line in lines:
        current_object = objects[-1] if objects else None
        if (
            current_object is None
            or put.arrival_ms - current_object[0][0].arrival_ms >= interval_ms
            or sum(len(x) for _, x in current_object) + len(line) > limit
        ):
            objects.append([])
        objects[-1].append((put, line))
    written = []
    for n, obj in enumerate(objects):
        oldest = min(put.arrival_ms for put, _ in obj)
        when = (datetime(1970, 1, 1) + timedelta(milliseconds=oldest)).strftime("%Y-%m-%d-%H-%M-%S")
        path = root / _prefix(names.data_prefix, oldest) / f"{names.delivery_stream}-1-{when}-{n:08d}.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(b"".join(line for _, line in obj)))
        written.append(path)
    return written
