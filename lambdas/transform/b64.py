"""Strict base64, with the same verdict on every Python the transform runs on.

The rule (RFC 4648 section 4, standard alphabet, canonical padding):

* the length is a multiple of 4;
* ``=`` appears only as the last one or two characters;
* every other character is one of ``A-Z a-z 0-9 + /`` (no whitespace, no URL-safe alphabet);
* non-zero pad bits (``"QR=="``, which decodes like ``"QQ=="``) are accepted and ignored.

Why written out: ``binascii.a2b_base64(strict_mode=True)`` changes between releases. 3.11 and
3.12 accept ``"QUJD="`` and ``"AAAA===="`` (excess padding after a full quad; CPython gh-118314,
fixed in 3.13), and CPython's main branch now also refuses non-zero pad bits (gh-146311).
:func:`_decode_by_rule` states the rule on its own, asking binascii only to decode in its lenient
mode, which has always ignored pad bits.

That scans the text once more than binascii does, so the common case takes a shortcut first:
after the length and trailing-padding checks, whatever strict mode accepts is canonical (checked
exhaustively on 3.11, 3.12 and 3.13 for short strings; tests/unit/transform/test_base64.py).
Anything strict mode refuses is decided by the rule, so a version that refuses more (pad bits)
still gets the same answer.
"""

from __future__ import annotations

import binascii

__all__ = ["InvalidBase64", "decode_strict"]

_a2b = binascii.a2b_base64


class InvalidBase64(ValueError):
    """The text is not strict base64."""


def decode_strict(text: object) -> bytes:
    """The bytes of the strict base64 string ``text``; :class:`InvalidBase64` otherwise."""
    if type(text) is not str:
        raise InvalidBase64("not a string")
    # What strict mode lets through on 3.11/3.12: a length that is not a multiple of 4, or a
    # full quad followed by more "=" (a multiple of 4 then has "=" third from the end, which is
    # never canonical; indexing is cheaper than endswith's argument parsing).
    n = len(text)
    if n & 3 or (n and text[n - 3] == "="):
        raise InvalidBase64("bad padding")
    try:
        return _a2b(text, strict_mode=True)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII text
        return _decode_by_rule(text)


def _decode_by_rule(text: str) -> bytes:
    """The rule alone, for any ``str``."""
    n = len(text)
    pads = 2 if text.endswith("==") else 1 if text.endswith("=") else 0
    # Any "=" before the trailing pads: padding inside the text, or more than two of them.
    if n & 3 or text.find("=", 0, n - pads) != -1:
        raise InvalidBase64("bad padding")
    try:
        raw = _a2b(text)  # lenient mode: skips characters outside the alphabet
    except (binascii.Error, ValueError):
        raise InvalidBase64("not base64") from None
    # With the padding above, n - pads alphabet characters decode to exactly this many bytes;
    # every skipped character makes the result shorter (or the decode fail).
    if len(raw) != (n >> 2) * 3 - pads:
        raise InvalidBase64("character outside the base64 alphabet")
    return raw
