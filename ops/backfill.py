"""``ddb-lake backfill``: put every existing item of a table on its change stream as a synthetic INSERT, so the
lake starts from the table's full state rather than from the first change after deployment.

Each record is exactly what Kinesis Data Streams for DynamoDB writes for an INSERT, plus the top-level field
``"ddbLakeOrigin": "backfill"`` (the transform writes it to ``_origin``; a live change always wins over a
backfill record in the current-state view, see docs/transform-contract.md). A parallel scan feeds PutRecords
batches; only failed entries are retried, with exponential backoff; a per-second budget leaves the shards'
capacity to live traffic; and a resume token records exactly which items each segment has delivered.

Ctrl-C: the first one stops every segment before its next batch (requests in flight finish, waits for the rate
limit or a retry end at once) and the run ends with an exact resume token; a second one aborts without waiting
(``Aborted``: the last recorded token, which may send the batches that were in flight a second time).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from ops import aws
from ops.common import Clock, ExitCode, OpsError

ORIGIN_FIELD = "ddbLakeOrigin"
ORIGIN = "backfill"
# PutRecords limits (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html).
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 5 * 1024 * 1024  # the whole request, partition keys included
MAX_RECORD_BYTES = 1024 * 1024  # one record's data plus its partition key
MAX_PARTITION_KEY_CHARS = 256
MAX_WORKERS = 32
# How often the main thread looks up from waiting on the segments: a Ctrl-C delivered to a worker thread is only
# handled when the main thread runs Python code, so it must not block indefinitely.
WAIT_SECONDS = 0.2
# A backoff longer than this is slept in steps of this, so a stop is noticed within it.
PAUSE_STEP_SECONDS = 0.25
# Whole-request errors worth retrying like failed entries; anything else stops the run (with a resume token).
RETRYABLE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "LimitExceededException",
    "InternalFailure",
    "ServiceUnavailable",
    "KMSThrottlingException",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- the record ----------------------------------------------------------------------------------------------
def to_json(value: Any) -> Any:
    """A low-level client's typed value in its stream form: binary (bytes from boto3) as base64 text."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [to_json(v) for v in value]
    return value


def item_size(item: dict[str, Any]) -> int:
    """An approximation of DynamoDB's item size (names plus values), for the record's ``SizeBytes``."""

    def size(value: dict[str, Any]) -> int:
        ((tag, inner),) = value.items()
        if tag == "S":
            return len(inner.encode())
        if tag == "N":
            return len(str(inner).lstrip("-").replace(".", "")) // 2 + 1
        if tag == "B":
            return len(inner)
        if tag in ("BOOL", "NULL"):
            return 1
        if tag == "SS":
            return sum(len(s.encode()) for s in inner)
        if tag == "NS":
            return sum(len(n.lstrip("-").replace(".", "")) // 2 + 1 for n in inner)
        if tag == "BS":
            return sum(len(b) for b in inner)
        if tag == "L":
            return 3 + sum(1 + size(v) for v in inner)
        if tag == "M":
            return 3 + sum(1 + len(k.encode()) + size(v) for k, v in inner.items())
        return 0

    return sum(len(name.encode()) + size(value) for name, value in item.items())


def change_record(
    item: dict[str, Any], keys: dict[str, Any], table: str, region: str, micros: int, event_id: str
) -> dict[str, Any]:
    """An INSERT exactly as Kinesis Data Streams for DynamoDB writes it (field order included), marked as a
    backfill."""
    return {
        "awsRegion": region,
        "eventID": event_id,
        "eventName": "INSERT",
        "userIdentity": None,
        "recordFormat": "application/json",
        "tableName": table,
        "dynamodb": {
            "ApproximateCreationDateTime": micros,
            "Keys": to_json(keys),
            "NewImage": to_json(item),
            "SizeBytes": item_size(item),
            "ApproximateCreationDateTimePrecision": "MICROSECOND",
        },
        "eventSource": "aws:dynamodb",
        ORIGIN_FIELD: ORIGIN,
    }


def canonical(keys: dict[str, Any]) -> str:
    return json.dumps(to_json(keys), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def partition_key(keys: dict[str, Any]) -> str:
    """The item key: all changes of one item go to one shard, in order. Kinesis allows 256 characters."""
    text = canonical(keys)
    return text if len(text) <= MAX_PARTITION_KEY_CHARS else hashlib.sha256(text.encode()).hexdigest()


def micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


class Aborted(Exception):
    """A second Ctrl-C: the run was abandoned with requests possibly in flight."""

    def __init__(self, token: ResumeToken, in_flight: int) -> None:
        super().__init__("aborted")
        self.token = token
        self.in_flight = in_flight


def pause(clock: Clock, seconds: float, stop: threading.Event | None) -> bool:
    """Sleep ``seconds`` on the clock, in steps, unless ``stop`` is set; True if it was (the wait was cut short)."""
    left = seconds
    while left > 0:
        if stop is not None and stop.is_set():
            return True
        step = min(left, PAUSE_STEP_SECONDS)
        clock.sleep(step)
        left -= step
    return stop is not None and stop.is_set()


# --- rate limit ----------------------------------------------------------------------------------------------
class RateLimiter:
    """A token bucket refilled to ``rate`` tokens at the start of every clock second (capacity ``rate``), so no
    clock second ever carries more than ``rate`` records; callers sleep on the clock until tokens are there.
    Sleeping under the lock serialises waiters, which keeps the count exact with several segments."""

    def __init__(self, rate: int, clock: Clock, stop: threading.Event | None = None) -> None:
        if rate < 1:
            raise ValueError("rate must be at least 1 record per second")
        self.rate = rate
        self._clock = clock
        self._stop = stop
        self._second: int | None = None
        self._tokens = rate
        self._lock = threading.Lock()

    def acquire(self, n: int) -> bool:
        """Take ``n`` tokens, waiting for them; False (nothing taken) if the run is stopping."""
        if n > self.rate:
            raise ValueError(f"cannot take {n} tokens from a bucket of {self.rate}")
        with self._lock:
            while True:
                if self._stop is not None and self._stop.is_set():
                    return False
                now = self._clock.monotonic()
                second = int(now // 1)
                if second != self._second:
                    self._second, self._tokens = second, self.rate
                if n <= self._tokens:
                    self._tokens -= n
                    return True
                self._clock.sleep(second + 1 - now)  # at most a second: the stop is checked again after it


# --- delivery ------------------------------------------------------------------------------------------------
class Sender:
    """PutRecords with retries of the failed entries only, backing off exponentially on the clock."""

    def __init__(
        self,
        kinesis: Any,
        stream: str,
        limiter: RateLimiter,
        clock: Clock,
        max_attempts: int = 8,
        base_delay: float = 0.2,
        max_delay: float = 10.0,
        stop: threading.Event | None = None,
    ) -> None:
        self.kinesis, self.stream, self.limiter, self.clock = kinesis, stream, limiter, clock
        self.stop = stop
        self.max_attempts, self.base_delay, self.max_delay = max_attempts, base_delay, max_delay
        self.retried = 0
        self.last_error = ""
        self._lock = threading.Lock()

    def put(self, records: list[tuple[bytes, str]]) -> tuple[list[bool], bool]:
        """Deliver ``(data, partition key)`` records; returns, per record, whether it was delivered, and whether
        the run's stop cut the attempts short (then the undelivered ones did not fail: they were not retried)."""
        delivered = [False] * len(records)
        pending = list(range(len(records)))
        attempt = 0
        while pending:
            if not self.limiter.acquire(len(pending)):
                return delivered, True
            entries = [{"Data": records[i][0], "PartitionKey": records[i][1]} for i in pending]
            try:
                answer = self.kinesis.put_records(StreamName=self.stream, Records=entries)
            except ClientError as error:
                if aws.error_code(error) not in RETRYABLE:
                    raise
                failed, reason = pending, aws.describe(error)
            else:
                failed, reason = [], ""
                for index, result in zip(pending, answer["Records"], strict=True):
                    if result.get("ErrorCode"):
                        failed.append(index)
                        reason = f"{result['ErrorCode']}: {result.get('ErrorMessage', '')}".strip(": ")
                    else:
                        delivered[index] = True
            if not failed:
                break
            attempt += 1
            with self._lock:
                self.retried += len(failed)
                self.last_error = reason
            if attempt >= self.max_attempts:
                break
            if pause(self.clock, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)), self.stop):
                return delivered, True
            pending = failed
        return delivered, False


# --- resume token --------------------------------------------------------------------------------------------
@dataclass
class SegmentState:
    """A segment's progress: every item up to ``after`` (its key, in scan order) is delivered, and so are the
    items keyed in ``sent`` beyond it; ``done`` once the segment's scan finished."""

    done: bool = False
    after: dict[str, Any] | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)


def _key_to_token(keys: dict[str, Any]) -> dict[str, Any]:
    return to_json(keys)


def _key_from_token(keys: dict[str, Any]) -> dict[str, Any]:
    # Key attributes are S, N or B; only B is bytes on the client side.
    return {
        name: ({"B": base64.b64decode(value["B"], validate=True)} if "B" in value else dict(value))
        for name, value in keys.items()
    }


@dataclass
class ResumeToken:
    table: str
    segments: list[SegmentState]

    def encode(self) -> str:
        body = {
            "v": 1,
            "table": self.table,
            "segments": [
                {
                    "done": s.done,
                    "after": _key_to_token(s.after) if s.after else None,
                    "sent": [_key_to_token(k) for k in s.sent],
                }
                for s in self.segments
            ],
        }
        return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()

    @classmethod
    def decode(cls, token: str) -> ResumeToken:
        try:
            body = json.loads(base64.urlsafe_b64decode(token.strip().encode()))
            if body.get("v") != 1:
                raise ValueError("unknown version")
            segments = [
                SegmentState(
                    done=bool(s["done"]),
                    after=_key_from_token(s["after"]) if s["after"] else None,
                    sent=[_key_from_token(k) for k in s["sent"]],
                )
                for s in body["segments"]
            ]
            return cls(table=str(body["table"]), segments=segments)
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            raise OpsError("--resume: not a token printed by ddb-lake backfill", ExitCode.USAGE) from None


# --- the run -------------------------------------------------------------------------------------------------
@dataclass
class Result:
    items: int = 0  # items delivered (or counted, in a dry run) by this run
    skipped: int = 0  # items a resumed run found already delivered
    record_bytes: int = 0
    too_large: list[dict[str, Any]] = field(default_factory=list)
    undelivered: int = 0
    error: str = ""
    token: ResumeToken | None = None

    @property
    def complete(self) -> bool:
        return bool(self.token) and all(s.done for s in self.token.segments)  # type: ignore[union-attr]


@dataclass
class _Pending:
    keys: dict[str, Any]
    data: bytes | None  # None: nothing to send (already delivered, or too large)
    partition_key: str = ""


class Backfill:
    def __init__(
        self,
        dynamodb: Any,
        kinesis: Any | None,
        table: str,
        stream: str | None,
        *,
        segments: int,
        rate: int,
        clock: Clock,
        resume: ResumeToken | None = None,
        max_attempts: int = 8,
        dry_run: bool = False,
        on_progress: Callable[[int], None] = lambda n: None,
    ) -> None:
        if segments < 1:
            raise OpsError("--segments must be at least 1", ExitCode.USAGE)
        if resume and (resume.table != table or len(resume.segments) != segments):
            raise OpsError(
                f"--resume: the token is for table {resume.table!r} with {len(resume.segments)} segments; "
                f"run with --table-name {resume.table} --segments {len(resume.segments)}",
                ExitCode.USAGE,
            )
        self.dynamodb, self.table, self.segments, self.clock = dynamodb, table, segments, clock
        self.dry_run = dry_run
        self.on_progress = on_progress
        self.states = resume.segments if resume else [SegmentState() for _ in range(segments)]
        self.batch_records = min(MAX_BATCH_RECORDS, rate)
        self.stop = threading.Event()  # set by a failure that ends the run, or by Ctrl-C
        self.interrupted = False
        self.on_stopping: Callable[[], None] = lambda: None  # told about the first Ctrl-C
        self.sender = (
            None
            if dry_run
            else Sender(kinesis, stream or "", RateLimiter(rate, clock, self.stop), clock, max_attempts, stop=self.stop)
        )
        self.result = Result()
        self._lock = threading.Lock()
        self._in_flight = 0
        self.region = dynamodb.meta.region_name
        self.key_names: list[str] = []

    def describe(self) -> int | None:
        """Reads the key schema; returns DynamoDB's (approximate, six-hourly) item count."""
        try:
            table = self.dynamodb.describe_table(TableName=self.table)["Table"]
        except aws.ERRORS as error:
            raise OpsError(f"cannot read table {self.table}: {aws.describe(error)}", ExitCode.AWS) from None
        self.key_names = [k["AttributeName"] for k in table["KeySchema"]]
        return table.get("ItemCount")

    def interrupt(self) -> None:
        """Ctrl-C: the first stops the segments before their next batch; the second abandons the run."""
        if self.interrupted:
            with self._lock:
                raise Aborted(self._token(), self._in_flight)
        self.interrupted = True
        self.stop.set()
        self.on_stopping()

    def _token(self) -> ResumeToken:
        return ResumeToken(
            self.table,
            [SegmentState(s.done, dict(s.after) if s.after else None, list(s.sent)) for s in self.states],
        )

    @contextmanager
    def _ctrl_c(self) -> Iterator[None]:
        """SIGINT calls ``interrupt`` while the segments run (only the main thread may install a handler)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, lambda signum, frame: self.interrupt())
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def run(self) -> Result:
        if not self.key_names:
            self.describe()
        errors: list[BaseException] = []
        pool = ThreadPoolExecutor(max_workers=min(self.segments, MAX_WORKERS))
        futures = [pool.submit(self._segment, i) for i in range(self.segments)]
        try:
            with self._ctrl_c():
                pending = set(futures)
                while pending:
                    # A timeout, so that a signal is handled promptly whichever thread received it.
                    done, pending = wait(pending, timeout=WAIT_SECONDS, return_when=FIRST_EXCEPTION)
                    for future in done:
                        exc = future.exception()
                        if exc:
                            errors.append(exc)
                            self.stop.set()
        except (Aborted, KeyboardInterrupt):
            self.stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        if self.interrupted:
            self.result.error = "interrupted"
        self.result.token = ResumeToken(self.table, self.states)
        for exc in errors:
            if isinstance(exc, OpsError):
                raise exc
            if isinstance(exc, aws.ERRORS):
                self.result.error = aws.describe(exc)
            else:
                raise exc
        return self.result

    def _segment(self, index: int) -> None:
        state = self.states[index]
        if state.done:
            return
        remaining = {canonical(k): k for k in state.sent}
        start = state.after
        while not self.stop.is_set():
            request: dict[str, Any] = {"TableName": self.table, "Segment": index, "TotalSegments": self.segments}
            if start:
                request["ExclusiveStartKey"] = start
            page = self.dynamodb.scan(**request)
            pending: list[_Pending] = []
            count = size = 0
            for item in page.get("Items", []):
                keys = {name: item[name] for name in self.key_names}
                if remaining.pop(canonical(keys), None) is not None:
                    pending.append(_Pending(keys, None))
                    with self._lock:
                        self.result.skipped += 1
                    continue
                entry = self._entry(item, keys)
                if entry.data is not None:
                    weight = len(entry.data) + len(entry.partition_key.encode())
                    if count + 1 > self.batch_records or size + weight > MAX_BATCH_BYTES:
                        if not self._flush(state, pending, remaining):
                            return
                        pending, count, size = [], 0, 0
                    count, size = count + 1, size + weight
                pending.append(entry)
            if pending and not self._flush(state, pending, remaining):
                return
            start = page.get("LastEvaluatedKey")
            with self._lock:
                if not start:
                    state.done, state.after, state.sent = True, None, []
                    return
                state.after = start

    def _entry(self, item: dict[str, Any], keys: dict[str, Any]) -> _Pending:
        record = change_record(item, keys, self.table, self.region, micros(self.clock.now()), str(uuid.uuid4()))
        data = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
        pk = partition_key(keys)
        if len(data) + len(pk.encode()) > MAX_RECORD_BYTES:
            with self._lock:
                self.result.too_large.append(keys)
            return _Pending(keys, None)
        return _Pending(keys, data, pk)

    def _flush(self, state: SegmentState, pending: list[_Pending], remaining: dict[str, Any]) -> bool:
        """Send the batch; move the segment's progress past what was delivered. False if something was not, or
        if the run is stopping (then the batch is not started: its items stay after the token's position)."""
        if self.stop.is_set():
            return False
        sendable = [i for i, p in enumerate(pending) if p.data is not None]
        delivered = [True] * len(pending)
        stopped = False
        if sendable and self.sender is not None:
            with self._lock:
                self._in_flight += len(sendable)
            try:
                flags, stopped = self.sender.put([(pending[i].data, pending[i].partition_key) for i in sendable])  # type: ignore[misc]
            finally:
                with self._lock:
                    self._in_flight -= len(sendable)
            for i, ok in zip(sendable, flags, strict=True):
                delivered[i] = ok
        first_failure = next((i for i, ok in enumerate(delivered) if not ok), None)
        done = len(pending) if first_failure is None else first_failure
        with self._lock:
            if done:
                state.after = pending[done - 1].keys
            beyond = [p.keys for p, ok in zip(pending[done:], delivered[done:], strict=True) if ok]
            state.sent = beyond + list(remaining.values())
            sent_now = sum(1 for i in sendable if delivered[i])
            self.result.items += sent_now
            self.result.record_bytes += sum(len(pending[i].data or b"") for i in sendable if delivered[i])
            if first_failure is not None and not stopped:
                self.result.undelivered += len(delivered) - sum(delivered)
                self.result.error = self.sender.last_error if self.sender else ""
        self.on_progress(len(pending))
        if first_failure is not None:
            self.stop.set()
            return False
        return True
