"""Entry points for replaying records outside the Lambda (see docs/transform-contract.md, *Replay*).

Firehose's raw backup keeps the source records exactly as they were on the Kinesis stream,
concatenated without separators. :func:`split_records` cuts such content back into records and
:func:`transform_record` turns one record into exactly what the handler would have produced: the
same line for ``Ok``, the same reason for ``ProcessingFailed``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import NamedTuple

from .record import failure_reason, transform_change

__all__ = ["InvalidBackup", "Outcome", "split_records", "transform_record"]

# JSON's insignificant whitespace (RFC 8259); raw_decode itself does not skip it.
_JSON_WHITESPACE = " \t\n\r"
_decode_one = json.JSONDecoder().raw_decode


class InvalidBackup(ValueError):
    """Raw backup content in which no JSON value starts at byte ``offset``."""

    def __init__(self, offset: int, index: int, problem: str) -> None:
        super().__init__(f"record {index} at byte {offset}: {problem}")
        self.offset = offset  # where the unreadable record starts, in bytes
        self.index = index  # how many records were read before it


class Outcome(NamedTuple):
    """One record's result: ``line`` when it transformed, otherwise ``reason``."""

    line: bytes | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.line is not None


def transform_record(raw: bytes, sequence_number: str | None = None, shard_id: str | None = None) -> Outcome:
    """Transform one change record's bytes, as the handler does after base64-decoding ``data``.

    ``sequence_number`` and ``shard_id`` fill ``_sequence_number`` and ``_shard_id`` (null when
    ``None``). Never raises for bad content, like the handler: a bug becomes the reason
    ``internal error: <type>``.
    """
    try:
        return Outcome(transform_change(raw, sequence_number, shard_id), None)
    except Exception as exc:  # the handler's own rule: one record fails, never the run
        return Outcome(None, failure_reason(exc))


def split_records(content: bytes) -> Iterator[bytes]:
    """The records of raw backup ``content`` (JSON values concatenated without separators), each
    as its exact bytes, in order.

    Values are read with ``json.JSONDecoder().raw_decode``; JSON whitespace between them is
    skipped. Raises :class:`InvalidBackup` where no JSON value can be read: with no separators,
    nothing after that point can be split.
    """
    # surrogateescape keeps bytes that are not UTF-8 (they can only sit inside strings of a
    # record that still splits) and gives them back unchanged, so the transform sees the
    # original bytes and fails the record just as the Lambda would.
    text = content.decode("utf-8", "surrogateescape")
    end, n, index = 0, len(text), 0
    while True:
        while end < n and text[end] in _JSON_WHITESPACE:
            end += 1
        if end == n:
            return
        start = end
        try:
            _, end = _decode_one(text, start)
        except (json.JSONDecodeError, RecursionError) as exc:
            offset = len(text[:start].encode("utf-8", "surrogateescape"))  # characters -> bytes
            problem = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply to read"
            raise InvalidBackup(offset, index, problem) from exc
        yield text[start:end].encode("utf-8", "surrogateescape")
        index += 1
