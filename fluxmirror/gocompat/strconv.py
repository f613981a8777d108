"""Go's `strconv`: `Quote`, the number parsers and the shortest float formatting, as Go prints and reads them.

fluxmirror needs them wherever the reference's output or decisions depend on Go's number and string
rules: error texts and verbose log values are `%q`-quoted (`Quote`), users and scripts match on them;
`sortBy: numerical` ranks tags by `ParseFloat`; go-yaml decides with `ParseInt`/`ParseUint` (base 0)
what a plain YAML scalar is; and a YAML number that lands in one of Helm's string fields is printed
back with `FormatFloat(f, 'g', -1, 32)` (`appVersion: 1.10` becomes `"1.1"`).

Python's own conversions are no stand-in: `float` trims whitespace, reads non-ASCII digits and signed
NaN and rejects hex floats; `int` has no `0` octal prefix; `repr` picks different digits for float32.
Shortest formatting is only exact when computed against the float's own rounding interval, hence the
fractions below.
"""

from __future__ import annotations

import math
import re
import struct
from fractions import Fraction
from typing import Final

__all__ = [
    "format_e",
    "format_f",
    "format_float32_g",
    "go_quote",
    "parse_go_float",
    "parse_int",
    "parse_uint",
    "shortest_decimal",
    "underscores_ok",
]

# ---- Quote -------------------------------------------------------------------------------------

_SHORT_ESCAPES: Final = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
}
_ESCAPED_BYTES: Final = range(0xDC80, 0xDD00)
"""Surrogates Python's `surrogateescape` uses for undecodable bytes; Go prints such bytes as `\\xNN`."""


def _escape(char: str) -> str:
    code = ord(char)
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if char.isprintable():  # the same classes as Go's unicode.IsPrint
        return char
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if code in _ESCAPED_BYTES:
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code < 0xE000:
        return "\\ufffd"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def go_quote(text: str) -> str:
    """Go's `strconv.Quote`: double quotes, Go escapes, printable non-ASCII kept as is."""
    return '"' + "".join(_escape(char) for char in text) + '"'


# ---- parsing -----------------------------------------------------------------------------------

_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_UINT64_MAX: Final = (1 << 64) - 1
_DIGITS: Final = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}
_PREFIXES: Final = {"x": 16, "X": 16, "o": 8, "O": 8, "b": 2, "B": 2}

_SPECIAL_FLOAT: Final = re.compile(r"[+-]?(?:inf|infinity)|nan", re.ASCII | re.IGNORECASE)
_HEX_FLOAT: Final = re.compile(r"[+-]?0[xX](?P<mantissa>[0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?)[pP][+-]?[0-9][0-9_]*")
_DECIMAL_FLOAT: Final = re.compile(r"[+-]?(?P<mantissa>[0-9_]*(?:\.[0-9_]*)?)(?:[eE][+-]?[0-9][0-9_]*)?")


def underscores_ok(text: str) -> bool:
    """Go's rule for `_` in a number literal: only between digits, or right after a base prefix."""
    body = text[1:] if text[:1] in ("+", "-") else text
    saw, start, hex_digits = "^", 0, False
    if len(body) >= 2 and body[0] == "0" and body[1] in "bBoOxX":
        saw, start, hex_digits = "0", 2, body[1] in "xX"
    for char in body[start:]:
        if char.isascii() and (char.isdigit() or (hex_digits and char in "abcdefABCDEF")):
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def parse_go_float(text: str) -> float | None:
    """`strconv.ParseFloat(text, 64)`: the value, or None where Go returns an error.

    Go also fails on finite literals that overflow to infinity, and takes `_` only between digits.
    """
    if _SPECIAL_FLOAT.fullmatch(text):
        return float(text)
    hex_float = _HEX_FLOAT.fullmatch(text)
    match = hex_float or _DECIMAL_FLOAT.fullmatch(text)
    if match is None or not match["mantissa"].strip("._"):
        return None
    if "_" in text and not underscores_ok(text):
        return None
    plain = text.replace("_", "")
    try:
        value = float.fromhex(plain) if hex_float else float(plain)
    except OverflowError:
        return None
    return None if math.isinf(value) else value


def _magnitude(body: str) -> int | None:
    """A Go base-0 unsigned literal (`0x1f`, `0o17`, `0b101`, `017`, `42`), or None."""
    base, digits = 10, body
    if len(body) >= 2 and body[0] == "0" and body[1] in _PREFIXES:
        base, digits = _PREFIXES[body[1]], body[2:]
    elif len(body) >= 2 and body[0] == "0":
        base, digits = 8, body[1:]
    if not digits or any(c not in _DIGITS[base] for c in digits):
        return None
    return int(digits, base)


def parse_int(text: str) -> int | None:
    """`strconv.ParseInt(text, 0, 64)` without underscores: optional sign, Go base prefixes, int64 range."""
    sign, body = 1, text
    if body[:1] in ("+", "-"):
        sign, body = (-1 if body[0] == "-" else 1), body[1:]
    magnitude = _magnitude(body)
    if magnitude is None:
        return None
    value = sign * magnitude
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def parse_uint(text: str) -> int | None:
    """`strconv.ParseUint(text, 0, 64)` without underscores: no sign at all, uint64 range."""
    magnitude = _magnitude(text)
    return magnitude if magnitude is not None and magnitude <= _UINT64_MAX else None


# ---- formatting --------------------------------------------------------------------------------


def _to_float32(value: float) -> float:
    try:
        return float(struct.unpack("<f", struct.pack("<f", value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


def _neighbours(value: float, single: bool) -> tuple[Fraction, Fraction, bool]:
    """The adjacent floats of the same width and whether the mantissa is even (bounds inclusive)."""
    if single:
        bits = struct.unpack("<I", struct.pack("<f", value))[0]
        below = float(struct.unpack("<f", struct.pack("<I", bits - 1))[0])
        above = float(struct.unpack("<f", struct.pack("<I", bits + 1))[0])
    else:
        bits = struct.unpack("<Q", struct.pack("<d", value))[0]
        below, above = math.nextafter(value, 0.0), math.nextafter(value, math.inf)
    exact_below = Fraction(below)
    # Past the largest finite float the gap above is taken to equal the gap below.
    exact_above = 2 * Fraction(value) - exact_below if math.isinf(above) else Fraction(above)
    return exact_below, exact_above, bits % 2 == 0


def shortest_decimal(value: float, *, single: bool) -> tuple[str, int]:
    """Shortest digits that read back as `value` (> 0, finite) and the decimal point position:
    0.DIGITS × 10^dp, as Go's `FormatFloat(…, -1, 32 or 64)` chooses them.

    At the first length where truncating or rounding up stays inside the rounding interval, Go keeps
    the one allowed candidate, or the nearer of both.
    """
    below, above, inclusive = _neighbours(value, single)
    exact = Fraction(value)
    low, high = (exact + below) / 2, (exact + above) / 2
    dp = math.floor(math.log10(value)) + 1
    while Fraction(10) ** dp <= exact:
        dp += 1
    while Fraction(10) ** (dp - 1) > exact:
        dp -= 1
    for length in range(1, 40):
        scale = Fraction(10) ** (length - dp)
        down = math.floor(exact * scale)
        ok_down = Fraction(down) / scale > low or (inclusive and Fraction(down) / scale == low)
        ok_up = Fraction(down + 1) / scale < high or (inclusive and Fraction(down + 1) / scale == high)
        if not (ok_down or ok_up):
            continue
        excess = exact * scale - down  # how far past the truncated candidate, in units of its last digit
        nearer_up = excess > Fraction(1, 2) or (excess == Fraction(1, 2) and down % 2 == 1)
        chosen = down + 1 if ok_up and (not ok_down or nearer_up) else down
        digits = str(chosen)
        if len(digits) > length:  # 9.99… rounded up to 10
            dp += 1
        return digits.rstrip("0"), dp
    raise AssertionError("a finite float always has a round-tripping decimal form")


def format_e(negative: bool, digits: str, dp: int) -> str:
    """Go's `%e` layout of shortest digits: `d.ddde±XX` (at least two exponent digits)."""
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exponent = dp - 1
    sign = "-" if exponent < 0 else "+"
    return f"{'-' if negative else ''}{mantissa}e{sign}{abs(exponent):02d}"


def format_f(negative: bool, digits: str, dp: int) -> str:
    """Go's `%f` layout of shortest digits: no exponent, as many decimals as the digits need."""
    whole = (digits[:dp] + "0" * (dp - len(digits))) if dp > 0 else "0"
    decimals = max(len(digits) - dp, 0)
    fraction = "".join(digits[i] if 0 <= i < len(digits) else "0" for i in range(dp, dp + decimals))
    return f"{'-' if negative else ''}{whole}{'.' + fraction if fraction else ''}"


def format_float32_g(value: float) -> str:
    """`strconv.FormatFloat(value, 'g', -1, 32)`: how a YAML float reaches a string field."""
    value = _to_float32(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    negative = math.copysign(1.0, value) < 0
    if value == 0:
        return "-0" if negative else "0"
    digits, dp = shortest_decimal(abs(value), single=True)
    if dp - 1 < -4 or dp - 1 >= 6:
        return format_e(negative, digits, dp)
    return format_f(negative, digits, dp)
