"""Go's duration syntax (`48h`, `1h30m`, `500ms`), parsed and printed exactly as Go's `time` package does.

Config fields (`exp`, `minAge`), the `--timeout` flag and report fields (`age`, `minAge`) all use it,
so a user moving from `flux mirror` sees the same accepted inputs, errors and rendering.
"""

from __future__ import annotations

import functools
import json

__all__ = ["Duration"]

_NS = 1
_US = 1000 * _NS
_MS = 1000 * _US
_S = 1000 * _MS
_M = 60 * _S
_H = 60 * _M
_UNITS = {"ns": _NS, "us": _US, "µs": _US, "μs": _US, "ms": _MS, "s": _S, "m": _M, "h": _H}
_MAX = (1 << 63) - 1
_MAX_DIGITS = len(str(1 << 63))


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _invalid(text: str) -> ValueError:
    return ValueError(f"time: invalid duration {_quote(text)}")


def _leading_fraction(digits: str) -> tuple[int, float]:
    """Go's leadingFraction: the digits that fit in 63 bits and their scale; the rest are ignored."""
    numerator, scale = 0, 1.0
    for char in digits:
        following = numerator * 10 + int(char)
        if numerator > _MAX // 10 or following > 1 << 63:
            break
        numerator, scale = following, scale * 10
    return numerator, scale


def _leading_digits(text: str) -> tuple[str, str]:
    end = 0
    while end < len(text) and text[end].isascii() and text[end].isdigit():
        end += 1
    return text[:end], text[end:]


@functools.total_ordering
class Duration:
    """An immutable span of time in whole nanoseconds, like Go's `time.Duration`."""

    __slots__ = ("nanoseconds",)
    nanoseconds: int

    def __init__(self, nanoseconds: int = 0) -> None:
        object.__setattr__(self, "nanoseconds", int(nanoseconds))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Duration is immutable")

    @classmethod
    def from_seconds(cls, seconds: float) -> Duration:
        return cls(round(seconds * _S))

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse like Go's `time.ParseDuration`, raising ValueError with Go's message."""
        rest = text
        negative = False
        if rest[:1] in ("-", "+"):
            negative = rest[0] == "-"
            rest = rest[1:]
        if rest == "0":
            return cls(0)
        if not rest:
            raise _invalid(text)
        total = 0
        while rest:
            if not (rest[0] == "." or (rest[0].isascii() and rest[0].isdigit())):
                raise _invalid(text)
            whole, rest = _leading_digits(rest)
            fraction = ""
            if rest[:1] == ".":
                fraction, rest = _leading_digits(rest[1:])
                if not whole and not fraction:
                    raise _invalid(text)
            unit_end = 0
            while unit_end < len(rest) and not (rest[unit_end] == "." or rest[unit_end].isdigit()):
                unit_end += 1
            if unit_end == 0:
                raise ValueError(f"time: missing unit in duration {_quote(text)}")
            unit_name, rest = rest[:unit_end], rest[unit_end:]
            unit = _UNITS.get(unit_name)
            if unit is None:
                raise ValueError(f"time: unknown unit {_quote(unit_name)} in duration {_quote(text)}")
            significant = whole.lstrip("0")
            if len(significant) > _MAX_DIGITS:  # Go's leadingInt overflows, whatever the unit
                raise _invalid(text)
            value = int(significant or "0") * unit
            if fraction:
                numerator, scale = _leading_fraction(fraction)
                value += int(numerator * (unit / scale))
            total += value
            if total > 1 << 63:
                raise _invalid(text)
        if not negative and total > _MAX:
            raise _invalid(text)
        return cls(-total if negative else total)

    def total_seconds(self) -> float:
        return self.nanoseconds / _S

    def round_to(self, unit: Duration) -> Duration:
        """Round half away from zero to a multiple of `unit`, like Go's `Duration.Round`."""
        step = unit.nanoseconds
        if step <= 0:
            return self
        magnitude = abs(self.nanoseconds)
        rounded = (magnitude + step // 2) // step * step
        return Duration(rounded if self.nanoseconds >= 0 else -rounded)

    def __str__(self) -> str:
        """Render like Go's `Duration.String`: `0s`, `812ms`, `4.213s`, `1h30m0s`."""
        value = abs(self.nanoseconds)
        sign = "-" if self.nanoseconds < 0 else ""
        if value == 0:
            return "0s"
        if value < _S:
            if value < _US:
                return f"{sign}{value}ns"
            precision, unit = (3, "µs") if value < _MS else (6, "ms")
            fraction, whole = _fraction(value, precision)
            return f"{sign}{whole}{fraction}{unit}"
        fraction, seconds = _fraction(value, 9)
        minutes, seconds = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        text = f"{seconds}{fraction}s"
        if minutes or hours:
            text = f"{minutes}m{text}"
        if hours:
            text = f"{hours}h{text}"
        return sign + text

    def __repr__(self) -> str:
        return f"Duration({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Duration) and other.nanoseconds == self.nanoseconds

    def __lt__(self, other: Duration) -> bool:
        return self.nanoseconds < other.nanoseconds

    def __hash__(self) -> int:
        return hash(self.nanoseconds)


def _fraction(value: int, precision: int) -> tuple[str, int]:
    whole, digits = divmod(value, 10**precision)
    text = f"{digits:0{precision}d}".rstrip("0")
    return ("." + text if text else ""), whole
