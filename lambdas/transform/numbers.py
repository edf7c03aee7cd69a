"""Exact DynamoDB number (``N``) handling.

DynamoDB sends numbers as decimal strings with up to 38 significant digits (it strips leading
and trailing zeros and writes no exponent). Going through ``float`` would round them, so every
number is written into the output line as a JSON number token with exactly the digits DynamoDB
sent. What DynamoDB sends is already a valid JSON number token, so the common case is a check and
a copy: no conversion at all.

Input is validated, not trusted: anything that is not a decimal number (NaN, Infinity,
whitespace, "_" separators, non-ASCII digits, empty) raises :class:`InvalidNumber`. A leading
"+", leading zeros, a bare "." (".5", "5.") and exponents are accepted and normalised only as far
as JSON's grammar requires; the digits are never changed.
"""

from __future__ import annotations

import re

__all__ = ["InvalidNumber", "number_token"]

_NUMBER_RE = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:([eE])([+-]?[0-9]+))?", re.ASCII)


class InvalidNumber(ValueError):
    """The ``N`` string is not a number."""


def number_token(s: object) -> str:
    """The JSON number token for the ``N`` string ``s``, carrying exactly its digits."""
    if type(s) is not str:
        raise InvalidNumber("number is not a string")
    # What DynamoDB sends, -?digits(.digits)? without leading zeros, is already a JSON token.
    whole, dot, frac = s.partition(".")
    digits = whole[1:] if whole[:1] == "-" else whole
    if digits.isdigit() and s.isascii() and (digits[0] != "0" or len(digits) == 1) and (not dot or frac.isdigit()):
        return s
    return _normalised_token(s)


def _normalised_token(s: str) -> str:
    m = _NUMBER_RE.fullmatch(s)
    if m is None:
        raise InvalidNumber("not a number")
    sign, int_part, frac, exp_mark, exp = m.groups()
    if not int_part and not frac:
        raise InvalidNumber("not a number")
    # JSON has no leading "+", no leading zeros, and needs a digit on both sides of ".".
    token = ("-" if sign == "-" else "") + (int_part.lstrip("0") or "0")
    if frac:
        token += "." + frac
    if exp_mark:
        token += exp_mark + exp
    return token
