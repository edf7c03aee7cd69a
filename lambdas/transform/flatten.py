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

How, and why this way: the walk appends the line's JSON text, piece by piece, to one list that
the caller joins once. Every column is written once, as ``,"column":value``; no dict is built and
no encoder runs a second pass. A string is escaped once by the C escaper; an ``N`` string is
already a JSON number token, so it is checked and copied; column keys are escaped once per
process and cached. Each typed value is taken apart with ``dict.popitem()``, the cheapest way
CPython has, so **the walk consumes the parsed image**: the caller parses every record afresh
and throws the parse away. This keeps the transform cheaper than the plain JSON round trip it
replaces (see benchmarks/).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .b64 import InvalidBase64, decode_strict
from .numbers import InvalidNumber, number_token

__all__ = [
    "SEPARATOR",
    "MalformedRecord",
    "add_missing_keys",
    "flatten_image",
    "top_level_column",
]

SEPARATOR = "."

# The C string escaper (the one json.dumps(ensure_ascii=False) uses): UTF-8 stays UTF-8.
_json_string: Callable[[str], str] = json.encoder.encode_basestring


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


# --- key text caches -----------------------------------------------------------------------------
# Attribute names repeat across records, so the JSON text of their keys is built once. A warm
# container keeps the caches, so they are bounded for hostile data: at most _CACHE_MAX entries
# each, and only key texts of at most _CACHED_KEY_CHARS characters (deep paths of long names
# would otherwise make a single record cache megabytes). Past a bound, keys are built every time.

_CACHE_MAX = 4096
_CACHED_KEY_CHARS = 256
_TOP_KEYS: dict[str, str] = {}  # attribute name -> ',"column":'
_OBJECT_KEYS: dict[str, str] = {}  # key of a map inside a list -> '"key":'
_NESTED_KEYS: dict[str, dict[str, str]] = {}  # prefix ',"parent.' -> {name: ',"parent.name":'}
_nested_key_count = 0
_CHILD_PREFIXES: dict[str, str] = {}  # ',"parent":' -> ',"parent.'


def _top_key(name: str) -> str:
    key = f",{_json_string(top_level_column(name))}:"
    if len(_TOP_KEYS) < _CACHE_MAX and len(key) <= _CACHED_KEY_CHARS:
        _TOP_KEYS[name] = key
    return key


def _object_key(name: str) -> str:
    key = f"{_json_string(name)}:"
    if len(_OBJECT_KEYS) < _CACHE_MAX and len(key) <= _CACHED_KEY_CHARS:
        _OBJECT_KEYS[name] = key
    return key


_UNCACHED: dict[str, str] = {}  # handed out for prefixes that are not cached; stays empty


def _nested_keys(prefix: str) -> dict[str, str]:
    keys = _NESTED_KEYS.get(prefix)
    if keys is None:
        if len(_NESTED_KEYS) >= _CACHE_MAX or len(prefix) > _CACHED_KEY_CHARS:
            return _UNCACHED
        keys = _NESTED_KEYS[prefix] = {}
    return keys


def _nested_key(keys: dict[str, str], prefix: str, name: str) -> str:
    global _nested_key_count
    component = _escape_component(name) if ("%" in name or "." in name) else name
    key = f'{prefix}{_json_string(component)[1:-1]}":'  # JSON escaping is per character
    # One entry bound for all prefixes together.
    if keys is not _UNCACHED and _nested_key_count < _CACHE_MAX and len(key) <= _CACHED_KEY_CHARS:
        keys[name] = key
        _nested_key_count += 1
    return key


def _child_prefix(key: str) -> str:
    prefix = _CHILD_PREFIXES.get(key)
    if prefix is None:
        prefix = key[:-2] + SEPARATOR
        if len(_CHILD_PREFIXES) < _CACHE_MAX and len(key) <= _CACHED_KEY_CHARS:
            _CHILD_PREFIXES[key] = prefix
    return prefix


def _column_of(key: str) -> str:
    """The column name inside a key text ``,"column":`` (for error messages)."""
    return json.loads(key[1:-1])


# --- the strict path -------------------------------------------------------------------------------
# Validates everything and names the problem. The loops further down only shortcut the common
# cases and defer to it for anything else.


def _check_b64(v: object) -> str:
    if type(v) is not str:
        raise _MalformedValue("B value is not a string")
    try:
        decode_strict(v)  # the same rule as the record's data, on every Python version
    except InvalidBase64:
        raise _MalformedValue("B value is not valid base64") from None
    return v


def _number(v: object) -> str:
    try:
        return number_token(v)
    except InvalidNumber:
        raise _MalformedValue("N value is not a number") from None


def _string_array(v: list[str]) -> str:
    return "[" + ",".join(map(_json_string, v)) + "]"


_NOT_ONE_TAG = "attribute value is not an object with exactly one type tag"


def _write_typed(tag: object, v: Any, parts: list[str]) -> None:
    ap = parts.append
    # Ordered by how often each tag reaches this path (S, N and M rarely do).
    if tag == "BOOL":
        if type(v) is not bool:
            raise _MalformedValue("BOOL value is not a boolean")
        ap("true" if v else "false")
    elif tag == "L":
        if type(v) is not list:
            raise _MalformedValue("L value is not an array")
        _write_array(v, parts)
    elif tag == "NULL":
        if v is not True:
            raise _MalformedValue("NULL value is not true")
        ap("null")
    elif tag == "SS":
        try:
            if type(v) is not list:
                raise TypeError
            ap(_string_array(v))  # TypeError for a non-string element
        except TypeError:
            raise _MalformedValue("SS value is not an array of strings") from None
    elif tag == "NS":
        if type(v) is not list:
            raise _MalformedValue("NS value is not an array")
        ap(
            "["
            + ",".join([x if type(x) is str and x.isdigit() and x.isascii() and x[0] != "0" else _number(x) for x in v])
            + "]"
        )
    elif tag == "S":
        if type(v) is not str:
            raise _MalformedValue("S value is not a string")
        ap(_json_string(v))
    elif tag == "N":
        ap(_number(v))
    elif tag == "M":
        if type(v) is not dict:
            raise _MalformedValue("M value is not an object")
        _write_object(v, parts)
    elif tag == "B":
        ap(_json_string(_check_b64(v)))
    elif tag == "BS":
        if type(v) is not list:
            raise _MalformedValue("BS value is not an array")
        ap(_string_array([_check_b64(x) for x in v]))
    else:
        raise _MalformedValue("unknown type tag")


# --- the hot loops -----------------------------------------------------------------------------------
# They inline S, N, M and BOOL (nearly all values in real items).
# * popitem() takes a typed value apart. Anything that is not a dict with exactly one key raises
#   there or leaves the dict non-empty: malformed.
# * After that, an exception in a shortcut only means "not the common case" (a non-string S or
#   N, an N that is not a plain integer...) and the value goes to _write_typed(), which names the
#   problem if there is one. A shortcut that fails after writing a key always ends in a malformed
#   value, so the record (and its half-written text) is discarded.
# * An N string of ASCII digits without a leading zero is its own JSON token; number_token()
#   checks and, where JSON requires it, normalises everything else.
# Try blocks cost nothing until they fire.

_SHORTCUT_MISSES = (AttributeError, TypeError, ValueError)
# popitem() of anything but a non-empty dict (a dict left non-empty had more than one tag).
_NOT_A_TYPED_VALUE = (AttributeError, KeyError, TypeError)


def _write_object(m: dict[str, Any], parts: list[str]) -> None:
    """A map inside a list: a nested JSON object with its keys as they are."""
    if not m:
        parts.append("{}")
        return
    ap = parts.append
    ap("{")
    for name, av in m.items():
        ap(_OBJECT_KEYS.get(name) or _object_key(name))
        try:
            tag, v = av.popitem()
        except _NOT_A_TYPED_VALUE:
            raise _MalformedValue(_NOT_ONE_TAG) from None
        if av:
            raise _MalformedValue(_NOT_ONE_TAG)
        try:
            if tag == "S":
                ap(_json_string(v))
                ap(",")
                continue
            if tag == "N":
                ap(v if v.isdigit() and v.isascii() and v[0] != "0" else number_token(v))
                ap(",")
                continue
        except _SHORTCUT_MISSES:
            pass
        _write_typed(tag, v, parts)
        ap(",")
    parts[-1] = "}"  # the last ","


def _write_array(items: list[Any], parts: list[str]) -> None:
    if not items:
        parts.append("[]")
        return
    ap = parts.append
    ap("[")
    for av in items:
        try:
            tag, v = av.popitem()
        except _NOT_A_TYPED_VALUE:
            raise _MalformedValue(_NOT_ONE_TAG) from None
        if av:
            raise _MalformedValue(_NOT_ONE_TAG)
        try:
            if tag == "S":
                ap(_json_string(v))
                ap(",")
                continue
            if tag == "N":
                ap(v if v.isdigit() and v.isascii() and v[0] != "0" else number_token(v))
                ap(",")
                continue
        except _SHORTCUT_MISSES:
            pass
        else:
            if tag == "M" and type(v) is dict:
                _write_object(v, parts)
                ap(",")
                continue
        _write_typed(tag, v, parts)
        ap(",")
    parts[-1] = "]"  # the last ","


_TOP_PREFIX = ',"'  # the key text before a top-level column name


def _column_key(keys: dict[str, str], prefix: str, name: str) -> str:
    """Key text for ``name`` under ``prefix`` when ``keys`` (the prefix's cache) lacks it."""
    if keys is _TOP_KEYS:
        return _top_key(name)  # top-level names also follow the reserved-"_" rule
    return _nested_key(keys, prefix, name)


def _flatten_map(m: dict[str, Any], prefix: str, keys: dict[str, str], parts: list[str]) -> None:
    """Columns of map ``m``; ``prefix`` is the key text so far (``,"`` or ``,"parent.``) and
    ``keys`` caches the key texts under it."""
    ap = parts.append
    key = ""
    try:
        for name, av in m.items():
            key = keys.get(name) or _column_key(keys, prefix, name)
            try:
                tag, v = av.popitem()
            except _NOT_A_TYPED_VALUE:
                raise _MalformedValue(_NOT_ONE_TAG) from None
            if av:
                raise _MalformedValue(_NOT_ONE_TAG)
            try:
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
                # Outside the try: an error while flattening must not fall back to _write_typed().
                if tag == "M" and type(v) is dict:
                    if v:
                        child = _CHILD_PREFIXES.get(key) or _child_prefix(key)
                        _flatten_map(v, child, _NESTED_KEYS.get(child) or _nested_keys(child), parts)
                    else:
                        ap(key)
                        ap("{}")  # lossless: an empty map is a value of its own
                    continue
                if tag == "BOOL" and type(v) is bool:
                    ap(key)
                    ap("true" if v else "false")
                    continue
            ap(key)
            _write_typed(tag, v, parts)
    except _MalformedValue as exc:
        column = _column_of(key or prefix + '":')
        raise MalformedRecord(f"malformed attribute value at {column[:200]!r}: {exc}") from None


def flatten_image(image: dict[str, Any], parts: list[str]) -> None:
    """Append the columns of the typed item ``image`` to ``parts`` as ``,"column":value`` text.

    Consumes ``image``: every typed value in it is emptied.
    """
    _flatten_map(image, _TOP_PREFIX, _TOP_KEYS, parts)


def add_missing_keys(keys: dict[str, Any], image: dict[str, Any], parts: list[str]) -> None:
    """Append the columns of key attributes that the image lacks (the image's value wins when
    both have one). They go through the image's own walk, so a map value is flattened like any
    other (DynamoDB keys are S, N or B, but the record is input, not trusted)."""
    # Column names are injective: a name the image has gives a column it already wrote.
    for name in keys:
        if name not in image:
            break
    else:
        return  # the usual case, checked without building anything
    _flatten_map({n: av for n, av in keys.items() if n not in image}, _TOP_PREFIX, _TOP_KEYS, parts)
