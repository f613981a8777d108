"""Go's `strconv.Quote`, for messages and log values that must read exactly as the reference's.

Error texts of Helm and Go (`%q`) and the verbose log's quoted values all come from it, and users
and scripts match on them.
"""

from __future__ import annotations

from typing import Final

__all__ = ["go_quote"]

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
