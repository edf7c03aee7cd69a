"""One "Kinesis Data Streams for DynamoDB" change record -> one JSON Lines line."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta

from .b64 import InvalidBase64, decode_strict
from .flatten import MalformedRecord, add_missing_keys, flatten_image

__all__ = [
    "COL_APPROXIMATE_CREATION_TIME",
    "COL_AWS_REGION",
    "COL_EVENT_ID",
    "COL_EVENT_NAME",
    "COL_IS_DELETED",
    "COL_IS_TTL_DELETE",
    "COL_ORIGIN",
    "COL_SEQUENCE_NUMBER",
    "COL_SHARD_ID",
    "COL_TABLE_NAME",
    "MAX_OUTPUT_RECORD_BYTES",
    "METADATA_COLUMNS",
    "ORIGIN_BACKFILL",
    "ORIGIN_FIELD",
    "ORIGIN_STREAM",
    "MalformedRecord",
    "failure_reason",
    "iso_from_epoch",
    "transform_change",
    "transform_data",
]

# Metadata columns all start with "_"; item columns never do (see flatten.top_level_column).
COL_EVENT_NAME = "_event_name"
COL_EVENT_ID = "_event_id"
COL_TABLE_NAME = "_table_name"
COL_AWS_REGION = "_aws_region"
COL_APPROXIMATE_CREATION_TIME = "_approximate_creation_time"
COL_SEQUENCE_NUMBER = "_sequence_number"
COL_SHARD_ID = "_shard_id"
COL_IS_DELETED = "_is_deleted"
COL_IS_TTL_DELETE = "_is_ttl_delete"
COL_ORIGIN = "_origin"

METADATA_COLUMNS = (
    COL_EVENT_NAME,
    COL_EVENT_ID,
    COL_TABLE_NAME,
    COL_AWS_REGION,
    COL_APPROXIMATE_CREATION_TIME,
    COL_SEQUENCE_NUMBER,
    COL_SHARD_ID,
    COL_IS_DELETED,
    COL_IS_TTL_DELETE,
    COL_ORIGIN,
)

# Firehose rejects a transformed record larger than 1,000 KiB.
MAX_OUTPUT_RECORD_BYTES = 1_024_000

# The one top-level field the backfill tool adds to an otherwise genuine change record.
ORIGIN_FIELD = "ddbLakeOrigin"
ORIGIN_BACKFILL = "backfill"
ORIGIN_STREAM = "stream"  # the field is absent: DynamoDB wrote the record

_IMAGE_FOR_EVENT = {"INSERT": "NewImage", "MODIFY": "NewImage", "REMOVE": "OldImage"}
_TTL_PRINCIPAL = "dynamodb.amazonaws.com"

# Magnitude tells the unit apart: every instant from 1973 to 5138 is below 1e14 in milliseconds
# and at or above it in microseconds (seconds, as in DynamoDB Streams, stay below 1e11 until 5138).
_SECONDS_BELOW = 10**11
_MILLIS_BELOW = 10**14
_EPOCH = datetime(1970, 1, 1)
_MAX_EPOCH_SECONDS = 253402300799  # 9999-12-31T23:59:59Z, the last instant ISO-8601 years allow
_SECOND_TEXT: dict[int, str] = {}


def iso_from_epoch(value: object) -> str:
    """ISO-8601 UTC with microseconds from epoch seconds, milliseconds or microseconds."""
    if type(value) is int:
        if value < 0:
            raise MalformedRecord("ApproximateCreationDateTime is negative")
        if value < _SECONDS_BELOW:
            micros = value * 1_000_000
        elif value < _MILLIS_BELOW:
            micros = value * 1_000
        else:
            micros = value
    elif type(value) is float and math.isfinite(value):
        if value < 0:
            raise MalformedRecord("ApproximateCreationDateTime is negative")
        if value < _SECONDS_BELOW:
            micros = round(value * 1_000_000)
        elif value < _MILLIS_BELOW:
            micros = round(value * 1_000)
        else:
            micros = round(value)
    else:
        raise MalformedRecord("ApproximateCreationDateTime is not a number")
    seconds, fraction = divmod(micros, 1_000_000)
    text = _SECOND_TEXT.get(seconds)
    if text is None:
        if seconds > _MAX_EPOCH_SECONDS:
            raise MalformedRecord("ApproximateCreationDateTime is out of range")
        text = (_EPOCH + timedelta(seconds=seconds)).isoformat()
        # Records of one batch share few distinct seconds; the bound only guards warm containers.
        if len(_SECOND_TEXT) >= 4096:
            _SECOND_TEXT.clear()
        _SECOND_TEXT[seconds] = text
    return f"{text}.{fraction:06d}Z"


_json_string = json.encoder.encode_basestring
# The C scanner behind json.loads, called directly: json.loads adds two whitespace regex passes
# that a compact change record never needs. Anything it does not consume whole goes through
# json.loads, so what is accepted and how it fails stay exactly json.loads's.
_scan_json = json.scanner.make_scanner(json.JSONDecoder())


def _parse(text: str) -> object:
    try:
        value, end = _scan_json(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):
        value = json.loads(text)
    return value


def _key(column: str, first: bool = False) -> str:
    return f"{'{' if first else ','}{_json_string(column)}:"


# The metadata part of the line as JSON text, in METADATA_COLUMNS order.
_EVENT_NAME_TEXT = {name: f"{_key(COL_EVENT_NAME, first=True)}{_json_string(name)}" for name in _IMAGE_FOR_EVENT}
_K_EVENT_ID = _key(COL_EVENT_ID)
_K_TABLE_NAME = _key(COL_TABLE_NAME)
_K_AWS_REGION = _key(COL_AWS_REGION)
_K_CREATION_TIME = _key(COL_APPROXIMATE_CREATION_TIME)
_K_SEQUENCE_NUMBER = _key(COL_SEQUENCE_NUMBER)
_K_SHARD_ID = _key(COL_SHARD_ID)
# The flag columns (_is_deleted, _is_ttl_delete, _origin) by (deleted, TTL delete, backfill).
_FLAGS_TEXT = {
    (deleted, ttl, backfill): (
        f"{_key(COL_IS_DELETED)}{'true' if deleted else 'false'}"
        f"{_key(COL_IS_TTL_DELETE)}{'true' if ttl else 'false'}"
        f"{_key(COL_ORIGIN)}{_json_string(ORIGIN_BACKFILL if backfill else ORIGIN_STREAM)}"
    )
    for deleted, ttl in ((False, False), (True, False), (True, True))
    for backfill in (False, True)
}
_ORIGIN_REASON = f"{ORIGIN_FIELD} must be {ORIGIN_BACKFILL!r} when present"

# Table name and region repeat in every record of a stream.
_REPEATED_TEXT: dict[str, str] = {}


def _repeated_json_string(s: str) -> str:
    text = _REPEATED_TEXT.get(s)
    if text is None:
        text = _json_string(s)
        if len(_REPEATED_TEXT) < 64 and len(s) <= 256:
            _REPEATED_TEXT[s] = text
    return text


def failure_reason(exc: Exception) -> str:
    """The logged reason for a record that raised ``exc`` while being transformed."""
    if isinstance(exc, MalformedRecord):
        return str(exc)
    # A bug must cost one record, not the batch; the type name is enough to find it.
    return f"internal error: {type(exc).__name__}"


def transform_data(data: object, sequence_number: object, shard_id: object) -> bytes:
    """Transform one base64 Firehose ``data`` payload into one UTF-8 JSON line ending in ``\\n``.

    Raises :class:`MalformedRecord` (or, for bugs, anything else) when the record cannot be
    transformed; the caller turns that into ``ProcessingFailed`` (see :func:`failure_reason`).
    """
    try:
        raw = decode_strict(data)
    except InvalidBase64:
        raise MalformedRecord("data is not valid base64") from None
    return transform_change(raw, sequence_number, shard_id)


def transform_change(raw: bytes, sequence_number: object, shard_id: object) -> bytes:
    """Transform one change record, the bytes as they were put on the Kinesis stream, into one
    UTF-8 JSON line ending in ``\\n``. ``sequence_number`` and ``shard_id`` are the Kinesis
    record's (``None`` when unknown: the columns are then null).

    Raises like :func:`transform_data`.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRecord("data is not valid UTF-8") from None
    try:
        change = _parse(text)
    except ValueError:
        raise MalformedRecord("data is not JSON") from None
    except RecursionError:
        raise MalformedRecord("data is nested too deeply") from None

    if type(change) is not dict:
        raise MalformedRecord("not a DynamoDB change record: data is not a JSON object")
    if change.get("eventSource") != "aws:dynamodb":
        raise MalformedRecord("not a DynamoDB change record: eventSource is not aws:dynamodb")
    event_name = change.get("eventName")
    image_field = _IMAGE_FOR_EVENT.get(event_name) if type(event_name) is str else None
    if image_field is None:
        raise MalformedRecord("unknown eventName")
    ddb = change.get("dynamodb")
    if type(ddb) is not dict:
        raise MalformedRecord("not a DynamoDB change record: no dynamodb object")
    keys = ddb.get("Keys")
    if type(keys) is not dict or not keys:
        raise MalformedRecord("not a DynamoDB change record: no Keys")
    event_id = change.get("eventID")
    table_name = change.get("tableName")
    region = change.get("awsRegion")
    if type(event_id) is not str or type(table_name) is not str or type(region) is not str:
        raise MalformedRecord("not a DynamoDB change record: eventID, tableName or awsRegion missing")
    image = ddb.get(image_field)
    if image is not None and type(image) is not dict:
        raise MalformedRecord(f"not a DynamoDB change record: {image_field} is not an object")
    # Absent: a live change. Anything but "backfill" (null included) is refused rather than
    # guessed, since queries let a live change win over a backfill record.
    is_backfill = ORIGIN_FIELD in change
    if is_backfill and change[ORIGIN_FIELD] != ORIGIN_BACKFILL:
        raise MalformedRecord(_ORIGIN_REASON)

    is_deleted = event_name == "REMOVE"
    is_ttl = False
    if is_deleted:
        identity = change.get("userIdentity")
        is_ttl = (
            type(identity) is dict
            and identity.get("type") == "Service"
            and identity.get("principalId") == _TTL_PRINCIPAL
        )

    parts = [
        f"{_EVENT_NAME_TEXT[event_name]}"
        f"{_K_EVENT_ID}{_json_string(event_id)}"
        f"{_K_TABLE_NAME}{_repeated_json_string(table_name)}"
        f"{_K_AWS_REGION}{_repeated_json_string(region)}"
        f'{_K_CREATION_TIME}"{iso_from_epoch(ddb.get("ApproximateCreationDateTime"))}"'
        f"{_K_SEQUENCE_NUMBER}{_json_string(sequence_number) if type(sequence_number) is str else 'null'}"
        f"{_K_SHARD_ID}{_json_string(shard_id) if type(shard_id) is str else 'null'}"
        f"{_FLAGS_TEXT[is_deleted, is_ttl, is_backfill]}"
    ]
    try:
        if image is None:
            # KEYS_ONLY / OLD_IMAGE / NEW_IMAGE views omit the image this event needs: keys only.
            flatten_image(keys, parts)
        else:
            flatten_image(image, parts)
            # Key attributes are always present, even if an image lacks them; image values win.
            add_missing_keys(keys, image, parts)
    except RecursionError:
        # The walk recurses once or twice per level. DynamoDB allows 32 levels; the parser takes
        # far more (on 3.12+ its limit is separate from Python's), so this is not a bug.
        raise MalformedRecord("data is nested too deeply") from None
    parts.append("}\n")
    try:
        line = "".join(parts).encode("utf-8")
    except UnicodeEncodeError:
        # Only an unpaired surrogate (a "\\ud800" escape in the input) cannot be UTF-8.
        raise MalformedRecord("string contains an unpaired surrogate") from None
    if len(line) > MAX_OUTPUT_RECORD_BYTES:
        raise MalformedRecord(f"output record exceeds {MAX_OUTPUT_RECORD_BYTES} bytes")
    return line
