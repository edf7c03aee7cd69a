"""DynamoDB attribute values -> one flat, single-level JSON object -> one JSON line.

Column naming (see docs/transform-contract.md):

* nested map keys are joined with ``SEPARATOR`` (``"."``);
* inside every path component ``"%"`` is written ``"%25"`` and ``"."`` is written ``"%2E"``, so
  a literal dot in an attribute name can never be confused with nesting;
* a column whose first character would be ``"_"`` has it written as ``"%5F"``: ``"_"`` is
  reserved for metadata columns.

The mapping from attribute paths to column names is therefore injective: no two item values can
land on the same column and no item column can equal a metadata column, whatever the order of
attributes in the record.

Values: S -> string, N -> exact number, BOOL -> boolean, NULL -> null, B -> base64 string as
sent, SS/NS/BS -> arrays, L -> array of plain values (maps inside lists stay JSON objects), M ->
flattened into columns; an empty M is the value ``{}`` under its own column.
"""

from __future__ import annotations

import binascii
import json
import secrets
from typing import Any

from .numbers import InvalidNumber, number_value

__all__ = [
    "SEPARATOR",
    "MalformedRecord",
    "add_missing_keys",
    "encode_line",
    "flatten_image",
    "plain_value",
    "top_level_column",
]

SEPARATOR = "."


class MalformedRecord(Exception):
    """The record cannot be transformed; ``str(exc)`` is a reason safe to log (no item values)."""


class _MalformedValue(Exception):
    """An attribute value is malformed; the caller adds the column path."""


def _escape_component(name: str) -> str:
    return name.replace("%", "%25").replace(".", "%2E")


def top_level_column(name: str) -> str:
    """Column name for a top-level attribute ``name``."""
    col = _escape_component(name) if ("%" in name or "." in name) else name
    if col[:1] == "_":
        col = "%5F" + col[1:]
    return col


# Attribute names repeat across records, so caching top-level column names skips the escaping
# checks for almost every attribute. Bounded so hostile data cannot grow it without limit.
_TOP_COLUMNS: dict[str, str] = {}
_TOP_COLUMNS_MAX = 8192


def _top_column(name: str) -> str:
    col = _TOP_COLUMNS.get(name)
    if col is None:
        col = top_level_column(name)
        if len(_TOP_COLUMNS) < _TOP_COLUMNS_MAX:
            _TOP_COLUMNS[name] = col
    return col


_STR_ONLY = frozenset((str,))


def _check_b64(v: object) -> str:
    if type(v) is not str:
        raise _MalformedValue("B value is not a string")
    try:
        binascii.a2b_base64(v, strict_mode=True)
    except (binascii.Error, ValueError):
        raise _MalformedValue("B value is not valid base64") from None
    return v


def _number(v: object) -> int | bytes:
    try:
        return number_value(v)
    except InvalidNumber:
        raise _MalformedValue("N value is not a number") from None


def plain_value(av: Any) -> Any:
    """Convert one typed attribute value to plain JSON (maps stay nested objects).

    This is the strict path: it validates everything and names the problem. The loops below
    only shortcut the common cases and defer to it for anything else.
    """
    if type(av) is not dict or len(av) != 1:
        raise _MalformedValue("attribute value is not an object with exactly one type tag")
    (tag,) = av
    v = av[tag]
    if tag == "S":
        if type(v) is str:
            return v
        raise _MalformedValue("S value is not a string")
    if tag == "N":
        return _number(v)
    if tag == "M":
        if type(v) is not dict:
            raise _MalformedValue("M value is not an object")
        return _plain_map(v)
    if tag == "L":
        if type(v) is not list:
            raise _MalformedValue("L value is not an array")
        return _plain_list(v)
    if tag == "BOOL":
        if type(v) is bool:
            return v
        raise _MalformedValue("BOOL value is not a boolean")
    if tag == "NULL":
        if v is True:
            return None
        raise _MalformedValue("NULL value is not true")
    if tag == "SS":
        if type(v) is list and set(map(type, v)) <= _STR_ONLY:
            return v
        raise _MalformedValue("SS value is not an array of strings")
    if tag == "NS":
        if type(v) is not list:
            raise _MalformedValue("NS value is not an array")
        return [_number(x) for x in v]
    if tag == "B":
        return _check_b64(v)
    if tag == "BS":
        if type(v) is not list:
            raise _MalformedValue("BS value is not an array")
        return [_check_b64(x) for x in v]
    raise _MalformedValue("unknown type tag")


# The loops below inline S, N, M and L (nearly all values in real items). An exception in a
# shortcut only means "not the common case" (a non-dict value, several tags, a non-string N...)
# and sends the value to plain_value(), which raises the precise error. Try blocks cost nothing
# until they fire. `(tag,) = av` both extracts the only key and rejects any other count.

_SHORTCUT_MISSES = (AttributeError, TypeError, ValueError)


def _plain_map(m: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, av in m.items():
        try:
            (tag,) = av
            v = av[tag]
            if tag == "S":
                if type(v) is str:
                    out[name] = v
                    continue
            elif tag == "N":
                out[name] = int(v) if v.isdigit() and v.isascii() else number_value(v)
                continue
            elif tag == "M":
                if type(v) is dict:
                    out[name] = _plain_map(v)
                    continue
            elif tag == "L" and type(v) is list:
                out[name] = _plain_list(v)
                continue
        except _SHORTCUT_MISSES:
            pass
        out[name] = plain_value(av)
    return out


def _plain_list(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    append = out.append
    for av in items:
        try:
            (tag,) = av
            v = av[tag]
            if tag == "S":
                if type(v) is str:
                    append(v)
                    continue
            elif tag == "N":
                append(int(v) if v.isdigit() and v.isascii() else number_value(v))
                continue
            elif tag == "M":
                if type(v) is dict:
                    append(_plain_map(v))
                    continue
            elif tag == "L" and type(v) is list:
                append(_plain_list(v))
                continue
        except _SHORTCUT_MISSES:
            pass
        append(plain_value(av))
    return out


def _flatten_map(m: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    col = prefix
    try:
        for name, av in m.items():
            col = prefix + (_escape_component(name) if ("%" in name or "." in name) else name)
            try:
                (tag,) = av
                v = av[tag]
                if tag == "S":
                    if type(v) is str:
                        out[col] = v
                        continue
                elif tag == "N":
                    out[col] = int(v) if v.isdigit() and v.isascii() else number_value(v)
                    continue
                elif tag == "L" and type(v) is list:
                    out[col] = _plain_list(v)
                    continue
            except _SHORTCUT_MISSES:
                pass
            else:
                # Outside the try: an error while flattening must not fall back to plain_value().
                if tag == "M" and type(v) is dict:
                    if v:
                        _flatten_map(v, col + SEPARATOR, out)
                    else:
                        out[col] = {}  # lossless: an empty map is a value of its own
                    continue
            out[col] = plain_value(av)
    except _MalformedValue as exc:
        raise MalformedRecord(f"malformed attribute value at {col[:200]!r}: {exc}") from None


def flatten_image(image: dict[str, Any], out: dict[str, Any]) -> None:
    """Flatten the typed item ``image`` into ``out``."""
    cache = _TOP_COLUMNS
    col = ""
    try:
        for name, av in image.items():
            col = cache.get(name) or _top_column(name)
            try:
                (tag,) = av
                v = av[tag]
                if tag == "S":
                    if type(v) is str:
                        out[col] = v
                        continue
                elif tag == "N":
                    out[col] = int(v) if v.isdigit() and v.isascii() else number_value(v)
                    continue
                elif tag == "L" and type(v) is list:
                    out[col] = _plain_list(v)
                    continue
            except _SHORTCUT_MISSES:
                pass
            else:
                if tag == "M" and type(v) is dict:
                    if v:
                        _flatten_map(v, col + SEPARATOR, out)
                    else:
                        out[col] = {}
                    continue
            out[col] = plain_value(av)
    except _MalformedValue as exc:
        raise MalformedRecord(f"malformed attribute value at {col[:200]!r}: {exc}") from None


def add_missing_keys(keys: dict[str, Any], out: dict[str, Any]) -> None:
    """Add key attributes that the image lacked (key attributes are scalars: one column each)."""
    for name, av in keys.items():
        col = _top_column(name)
        if col not in out:
            try:
                out[col] = plain_value(av)
            except _MalformedValue as exc:
                raise MalformedRecord(f"malformed attribute value at {col[:200]!r}: {exc}") from None


# --- encoding --------------------------------------------------------------------------------
# Raw number tokens (bytes) are the only values the encoder cannot write. Its default hook
# stores each one and writes a placeholder string instead; the tokens are spliced back in after
# encoding. The placeholder is random per process and the splice verifies the number of
# placeholders found, drawing a fresh one if item text happened to contain it, so the output
# never depends on luck. Module-level state: the handler encodes one line at a time.

_tokens: list[bytes] = []


def _placeholder_hook(marker: str, tokens: list[bytes]) -> Any:
    def default(o: object) -> str:
        if type(o) is bytes:
            tokens.append(o)
            return marker
        raise TypeError(f"unexpected value of type {type(o).__name__}")

    return default


def _encoder(default: Any) -> Any:
    # ensure_ascii=False: UTF-8 output keeps lines about the size of the input (\uXXXX escapes
    # would triple non-Latin text and push large items over Firehose's record limit) and is what
    # Athena reads natively. No floats are ever produced: allow_nan is moot but kept strict.
    return json.JSONEncoder(
        ensure_ascii=False, allow_nan=False, check_circular=False, separators=(",", ":"), default=default
    ).encode


_marker = secrets.token_hex(16)
_quoted_marker = f'"{_marker}"'.encode()
_encode = _encoder(_placeholder_hook(_marker, _tokens))


def encode_line(obj: dict[str, Any]) -> bytes:
    """UTF-8 compact JSON for ``obj`` followed by ``\\n``, raw number tokens written verbatim."""
    tokens = _tokens
    tokens.clear()
    try:
        data = _encode(obj).encode("utf-8")
        if not tokens:
            return data + b"\n"
        parts = data.split(_quoted_marker)
        if len(parts) != len(tokens) + 1:
            return _encode_with_fresh_marker(obj)
        return _splice(parts, tokens)
    except UnicodeEncodeError:
        # Only an unpaired surrogate (a "\\ud800" escape in the input) cannot be UTF-8.
        raise MalformedRecord("string contains an unpaired surrogate") from None
    finally:
        tokens.clear()


def _splice(parts: list[bytes], tokens: list[bytes]) -> bytes:
    pieces = parts + tokens
    pieces[::2] = parts
    pieces[1::2] = tokens
    pieces.append(b"\n")
    return b"".join(pieces)


def _encode_with_fresh_marker(obj: dict[str, Any]) -> bytes:
    while True:
        marker = secrets.token_hex(16)
        tokens: list[bytes] = []
        parts = _encoder(_placeholder_hook(marker, tokens))(obj).encode("utf-8").split(f'"{marker}"'.encode())
        if len(parts) == len(tokens) + 1:
            return _splice(parts, tokens)
