"""DynamoDB attribute values -> the columns of one flat JSON object, written directly as JSON text.

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

Why text instead of a dict handed to ``json.dumps``: every column is written once, as
``,"column":value``, while the item is walked. A string is escaped once by the C escaper; an
``N`` string is already a JSON number token, so it is checked and copied (no conversion, no
placeholder to splice back); column keys are escaped once per process and cached. That keeps
the whole transform cheaper than the plain JSON round trip it replaces (see benchmarks/).
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable
from typing import Any

from .numbers import InvalidNumber, number_token

__all__ = [
    "SEPARATOR",
    "MalformedRecord",
    "add_missing_keys",
    "flatten_image",
    "plain_json",
    "top_level_column",
]

SEPARATOR = "."

# The C string escaper (the one json.dumps(ensure_ascii=False) uses): UTF-8 stays UTF-8.
_json_string: Callable[[str], str] = json.encoder.encode_basestring

Append = Callable[[str], None]


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


# Attribute names repeat across records, so the JSON text of their keys is built once. Bounded so
# hostile data cannot grow the caches without limit (past the bound, keys are built every time).
_CACHE_MAX = 8192
_TOP_KEYS: dict[str, str] = {}  # attribute name -> ',"column":'
_NESTED_NAMES: dict[str, str] = {}  # attribute name -> escaped path component, JSON-escaped, no quotes
_OBJECT_KEYS: dict[str, str] = {}  # map key inside a list -> ',"key":'


def _top_key(name: str) -> str:
    key = _TOP_KEYS.get(name)
    if key is None:
        key = f",{_json_string(top_level_column(name))}:"
        if len(_TOP_KEYS) < _CACHE_MAX:
            _TOP_KEYS[name] = key
    return key


def _nested_name(name: str) -> str:
    text = _NESTED_NAMES.get(name)
    if text is None:
        component = _escape_component(name) if ("%" in name or "." in name) else name
        text = _json_string(component)[1:-1]
        if len(_NESTED_NAMES) < _CACHE_MAX:
            _NESTED_NAMES[name] = text
    return text


def _object_key(name: str) -> str:
    key = _OBJECT_KEYS.get(name)
    if key is None:
        key = f",{_json_string(name)}:"
        if len(_OBJECT_KEYS) < _CACHE_MAX:
            _OBJECT_KEYS[name] = key
    return key


def _column_of(key: str) -> str:
    """The column name inside a key text ``,"column":`` (for error messages)."""
    return json.loads(key[1:-1])


def _check_b64(v: object) -> str:
    if type(v) is not str:
        raise _MalformedValue("B value is not a string")
    try:
        binascii.a2b_base64(v, strict_mode=True)
    except (binascii.Error, ValueError):
        raise _MalformedValue("B value is not valid base64") from None
    return v


def _number(v: object) -> str:
    try:
        return number_token(v)
    except InvalidNumber:
        raise _MalformedValue("N value is not a number") from None


def _string_array(v: list[str]) -> str:
    return "[" + ",".join(map(_json_string, v)) + "]"


def plain_json(av: Any) -> str:
    """JSON text of one typed attribute value (maps stay nested objects).

    This is the strict path: it validates everything and names the problem. The loops below
    only shortcut the common cases and defer to it for anything else.
    """
    if type(av) is not dict or len(av) != 1:
        raise _MalformedValue("attribute value is not an object with exactly one type tag")
    (tag,) = av
    v = av[tag]
    if tag == "S":
        if type(v) is str:
            return _json_string(v)
        raise _MalformedValue("S value is not a string")
    if tag == "N":
        return _number(v)
    if tag == "M":
        if type(v) is not dict:
            raise _MalformedValue("M value is not an object")
        return _object_json(v)
    if tag == "L":
        if type(v) is not list:
            raise _MalformedValue("L value is not an array")
        return _array_json(v)
    if tag == "BOOL":
        if type(v) is bool:
            return "true" if v else "false"
        raise _MalformedValue("BOOL value is not a boolean")
    if tag == "NULL":
        if v is True:
            return "null"
        raise _MalformedValue("NULL value is not true")
    if tag == "SS":
        if type(v) is list:
            try:
                return _string_array(v)
            except TypeError:
                pass
        raise _MalformedValue("SS value is not an array of strings")
    if tag == "NS":
        if type(v) is not list:
            raise _MalformedValue("NS value is not an array")
        return "[" + ",".join([_number(x) for x in v]) + "]"
    if tag == "B":
        return _json_string(_check_b64(v))
    if tag == "BS":
        if type(v) is not list:
            raise _MalformedValue("BS value is not an array")
        return _string_array([_check_b64(x) for x in v])
    raise _MalformedValue("unknown type tag")


# The loops below inline S, N and M (nearly all values in real items). An exception in a
# shortcut only means "not the common case" (a non-dict value, several tags, a non-string S or
# N...) and sends the value to plain_json(), which raises the precise error. Try blocks cost
# nothing until they fire. `(tag,) = av` both extracts the only key and rejects any other count.
# A shortcut that fails after writing a key always ends in a malformed value, so the record
# (and its half-written text) is discarded. An N string that is a plain integer without leading
# zeros is its own JSON token; number_token() checks everything else.

_SHORTCUT_MISSES = (AttributeError, TypeError, ValueError)


def _object_json(m: dict[str, Any]) -> str:
    parts: list[str] = []
    ap = parts.append
    for name, av in m.items():
        ap(_OBJECT_KEYS.get(name) or _object_key(name))
        try:
            (tag,) = av
            v = av[tag]
            if tag == "S":
                ap(_json_string(v))
                continue
            if tag == "N":
                ap(v if v.isdigit() and v.isascii() and v[0] != "0" else number_token(v))
                continue
        except _SHORTCUT_MISSES:
            pass
        ap(plain_json(av))
    return "{" + "".join(parts)[1:] + "}"


def _array_json(items: list[Any]) -> str:
    parts: list[str] = []
    ap = parts.append
    for av in items:
        try:
            (tag,) = av
            v = av[tag]
            if tag == "S":
                ap(_json_string(v))
                continue
            if tag == "N":
                ap(v if v.isdigit() and v.isascii() and v[0] != "0" else number_token(v))
                continue
            if tag == "M" and type(v) is dict:
                ap(_object_json(v))
                continue
        except _SHORTCUT_MISSES:
            pass
        ap(plain_json(av))
    return "[" + ",".join(parts) + "]"


def _flatten_map(m: dict[str, Any], prefix: str, ap: Append) -> None:
    """Columns of nested map ``m``; ``prefix`` is the key text so far: ``,"parent.``."""
    key = prefix + '":'
    try:
        for name, av in m.items():
            key = f'{prefix}{_NESTED_NAMES.get(name) or _nested_name(name)}":'
            try:
                (tag,) = av
                v = av[tag]
                if tag == "S":
                    ap(key)
                    ap(_json_string(v))
                    continue
                if tag == "N":
                    ap(key)
                    ap(v if v.isdigit() and v.isascii() and v[0] != "0" else number_token(v))
                    continue
            except _SHORTCUT_MISSES:
                pass
            else:
                # Outside the try: an error while flattening must not fall back to plain_json().
                if tag == "M" and type(v) is dict:
                    if v:
                        _flatten_map(v, key[:-2] + SEPARATOR, ap)
                    else:
                        ap(key)
                        ap("{}")  # lossless: an empty map is a value of its own
                    continue
            ap(key)
            ap(plain_json(av))
    except _MalformedValue as exc:
        raise MalformedRecord(f"malformed attribute value at {_column_of(key)[:200]!r}: {exc}") from None


def flatten_image(image: dict[str, Any], ap: Append) -> None:
    """Write the columns of the typed item ``image`` as ``,"column":value`` pieces to ``ap``."""
    cache = _TOP_KEYS
    key = ',"":'  # named in an error only once set by the loop
    try:
        for name, av in image.items():
            key = cache.get(name) or _top_key(name)
            try:
                (tag,) = av
                v = av[tag]
                if tag == "S":
                    ap(key)
                    ap(_json_string(v))
                    continue
                if tag == "N":
                    ap(key)
                    ap(v if v.isdigit() and v.isascii() and v[0] != "0" else number_token(v))
                    continue
            except _SHORTCUT_MISSES:
                pass
            else:
                if tag == "M" and type(v) is dict:
                    if v:
                        _flatten_map(v, key[:-2] + SEPARATOR, ap)
                    else:
                        ap(key)
                        ap("{}")
                    continue
            ap(key)
            ap(plain_json(av))
    except _MalformedValue as exc:
        raise MalformedRecord(f"malformed attribute value at {_column_of(key)[:200]!r}: {exc}") from None


def add_missing_keys(keys: dict[str, Any], image: dict[str, Any], ap: Append) -> None:
    """Write key attributes that the image lacks (the image's value wins when both have one)."""
    for name, av in keys.items():
        if name not in image:  # column names are injective: same name, same column
            key = _top_key(name)
            try:
                value = plain_json(av)
            except _MalformedValue as exc:
                raise MalformedRecord(f"malformed attribute value at {_column_of(key)[:200]!r}: {exc}") from None
            ap(key)
            ap(value)
