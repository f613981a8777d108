"""Numbers as Go's YAML and JSON libraries read and print them, for the few places a chart's bytes depend on it.

Helm decodes `Chart.yaml` through sigs.k8s.io/yaml: go-yaml v2 decides what a plain scalar is, and a
number that lands in a string field is printed back with `strconv.FormatFloat(f, 'g', -1, 32)`, so
`appVersion: 1.10` becomes `"1.1"`. Numbers kept as numbers (`import-values`) come out of
`encoding/json` as float64. Both printers use the shortest digits that round-trip, which is only
exact when computed against the float's own rounding interval, hence the fractions below.
"""

from __future__ import annotations

import math
import re
import struct
from fractions import Fraction
from typing import Final

from fluxmirror.selection.tags import underscores_ok

__all__ = ["format_float32_g", "format_json_float64", "parse_float", "parse_int", "parse_uint"]

_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_UINT64_MAX: Final = (1 << 64) - 1
_DIGITS: Final = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}
_PREFIXES: Final = {"x": 16, "X": 16, "o": 8, "O": 8, "b": 2, "B": 2}
# go-yaml's yamlStyleFloat, applied after underscores were removed.
_YAML_FLOAT: Final = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
# What strconv.ParseFloat accepts for a scalar starting with ".", underscores checked separately.
_DOT_FLOAT: Final = re.compile(r"\.[0-9_]+(?:[eE][-+]?[0-9_]+)?")


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
    """`strconv.ParseInt(text, 0, 64)`: optional sign, Go base prefixes, int64 range."""
    sign, body = 1, text
    if body[:1] in ("+", "-"):
        sign, body = (-1 if body[0] == "-" else 1), body[1:]
    magnitude = _magnitude(body)
    if magnitude is None:
        return None
    value = sign * magnitude
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def parse_uint(text: str) -> int | None:
    """`strconv.ParseUint(text, 0, 64)`: no sign at all, uint64 range."""
    magnitude = _magnitude(text)
    return magnitude if magnitude is not None and magnitude <= _UINT64_MAX else None


def parse_float(text: str, *, leading_dot: bool) -> float | None:
    """go-yaml's float test: `.5`-style scalars go to ParseFloat as written, others after dropping `_`.

    Overflow is not a float for go-yaml (ParseFloat reports a range error), so the scalar stays a string.
    """
    if leading_dot:
        if _DOT_FLOAT.fullmatch(text) is None or not underscores_ok(text):
            return None
        text = text.replace("_", "")
    elif _YAML_FLOAT.fullmatch(text) is None:
        return None
    value = float(text)
    return None if math.isinf(value) else value


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


def _shortest(value: float, single: bool) -> tuple[str, int]:
    """Shortest digits that read back as `value` (> 0) and the decimal point position: 0.DIGITS × 10^dp.

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


def _format_e(negative: bool, digits: str, dp: int) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exponent = dp - 1
    sign = "-" if exponent < 0 else "+"
    return f"{'-' if negative else ''}{mantissa}e{sign}{abs(exponent):02d}"


def _format_f(negative: bool, digits: str, dp: int) -> str:
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
    digits, dp = _shortest(abs(value), single=True)
    if dp - 1 < -4 or dp - 1 >= 6:
        return _format_e(negative, digits, dp)
    return _format_f(negative, digits, dp)


def format_json_float64(value: float) -> str:
    """`encoding/json`'s float64 text: fixed notation, exponent below 1e-6 and from 1e21 (`e-7`, `e+21`)."""
    negative = math.copysign(1.0, value) < 0
    if value == 0:
        return "-0" if negative else "0"
    digits, dp = _shortest(abs(value), single=False)
    if 1e-6 <= abs(value) < 1e21:
        return _format_f(negative, digits, dp)
    text = _format_e(negative, digits, dp)
    return re.sub(r"e-0([0-9])$", r"e-\1", text)
