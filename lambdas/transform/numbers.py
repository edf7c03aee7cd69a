"""Exact DynamoDB number (``N``) handling.

DynamoDB sends numbers as decimal strings with up to 38 significant digits (it strips leading
and trailing zeros and writes no exponent). Going through ``float`` would round them, so every
number is emitted as a JSON number token with exactly the digits DynamoDB sent:

* plain integers become ``int``: Python ints are exact at any length and the C encoder writes
  their digits back verbatim;
* everything else becomes a *raw token*: the JSON number text as ASCII ``bytes``. ``bytes`` is
  the one type a flattened item never otherwise contains and the stdlib encoder cannot write,
  so exactly these reach the encoder's ``default`` hook and are spliced in verbatim (see
  ``flatten.encode_line``). This is also cheaper than a float round trip, which would need two
  shortest-repr conversions per value.

Input is validated, not trusted: anything that is not a decimal number (NaN, Infinity,
whitespace, "_" separators, non-ASCII digits, empty) raises :class:`InvalidNumber`. A leading
"+", leading zeros, a bare "." (".5", "5.") and exponents are accepted and normalised only as far
as JSON's grammar requires; the digits are never changed.
"""

from __future__ import annotations

import re

__all__ = ["InvalidNumber", "number_value"]

_NUMBER_RE = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:([eE])([+-]?[0-9]+))?", re.ASCII)

# int() refuses strings longer than sys.int_info.default_max_str_digits (4300): longer (not
# DynamoDB-legal, but syntactically valid) integers are written as raw tokens instead.
_MAX_INT_DIGITS = 1000


class InvalidNumber(ValueError):
    """The ``N`` string is not a number."""


def number_value(s: object) -> int | bytes:
    """``int`` or raw JSON number token (ASCII bytes) carrying exactly the digits of ``s``."""
    if type(s) is not str:
        raise InvalidNumber("number is not a string")
    if s.isdigit() and s.isascii():
        if len(s) <= _MAX_INT_DIGITS:
            return int(s)
    else:
        # Fast path for what DynamoDB actually sends: -?digits(.digits)? without leading zeros.
        whole, dot, frac = s.partition(".")
        digits = whole[1:] if whole[:1] == "-" else whole
        if digits.isdigit() and digits.isascii() and (digits[0] != "0" or len(digits) == 1):
            if not dot:
                if digits != "0" and len(digits) <= _MAX_INT_DIGITS:  # int("-0") would drop the sign
                    return int(s)
            elif frac.isdigit() and frac.isascii():
                return s.encode("ascii")  # already a valid JSON number token
    return _slow_number(s)


def _slow_number(s: str) -> int | bytes:
    m = _NUMBER_RE.fullmatch(s)
    if m is None:
        raise InvalidNumber("not a number")
    sign, int_part, frac, exp_mark, exp = m.groups()
    if not int_part and not frac:
        raise InvalidNumber("not a number")
    # JSON has no leading "+", no leading zeros, and needs a digit on both sides of ".".
    token_int = int_part.lstrip("0") or "0"
    token = ("-" if sign == "-" else "") + token_int
    if frac:
        token += "." + frac
    if exp_mark:
        token += exp_mark + exp
    if frac is None and exp_mark is None and len(token_int) <= _MAX_INT_DIGITS and token != "-0":
        return int(token)
    return token.encode("ascii")
