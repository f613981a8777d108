"""Go's `encoding/json` output: JSON bytes as `json.Marshal` writes them, for documents other tools
compare byte for byte (the sync report, referrer indexes, JWKs, Helm chart config blobs).

Go escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings (HTML-safe output) and otherwise emits
raw UTF-8. Those characters can only occur inside strings of an encoded document, so replacing
them after encoding is exact. Key order is the caller's: dicts are written in insertion order.
A float64 is written with the shortest digits that read back, in fixed notation between 1e-6 and
1e21 and with a short exponent outside (`1e-7`, `1e+21`), which `format_float64` reproduces.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

import msgspec

from fluxmirror.gocompat.strconv import format_e, format_f, shortest_decimal

__all__ = ["format_json_float64", "go_json", "html_escape"]

_ESCAPES: Final = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)
_TWO_DIGIT_NEGATIVE_EXPONENT: Final = re.compile(r"e-0([0-9])$")


def html_escape(document: bytes) -> bytes:
    """Apply Go's HTML-safe string escaping to an already encoded JSON document."""
    for raw, escaped in _ESCAPES:
        document = document.replace(raw, escaped)
    return document


def go_json(value: Any, *, indent: int = 0) -> bytes:
    """`json.Marshal` (indent 0) or `json.MarshalIndent(v, "", <indent spaces>)` of `value`."""
    document = msgspec.json.encode(value)
    if indent:
        document = msgspec.json.format(document, indent=indent)
    return html_escape(document)


def format_json_float64(value: float) -> str:
    """`encoding/json`'s float64 text: fixed notation, exponent below 1e-6 and from 1e21 (`e-7`, `e+21`)."""
    negative = math.copysign(1.0, value) < 0
    if value == 0:
        return "-0" if negative else "0"
    digits, dp = shortest_decimal(abs(value), single=False)
    if 1e-6 <= abs(value) < 1e21:
        return format_f(negative, digits, dp)
    return _TWO_DIGIT_NEGATIVE_EXPONENT.sub(r"e-\1", format_e(negative, digits, dp))
