"""JSON bytes as Go's `encoding/json` writes them, for documents other tools compare byte for byte.

Go escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings (HTML-safe output) and otherwise emits
raw UTF-8. Those characters can only occur inside strings of an encoded document, so replacing
them after encoding is exact. Key order is the caller's: dicts are written in insertion order.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

__all__ = ["go_json", "html_escape"]

_ESCAPES: Final = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


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
