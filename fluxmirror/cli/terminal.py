"""Text bound for a terminal: what a registry or chart repository wrote (an error body, a name) must
not move the cursor, rewrite a line, recolour the screen or reorder text, so control characters and
bidirectional overrides are written as escapes. Line breaks the renderers put in stay as they are."""

from __future__ import annotations

from typing import Final

__all__ = ["terminal_safe"]

_C0_AND_DEL: Final = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F] if code != 0x0A}
_C1: Final = {code: f"\\u{code:04x}" for code in range(0x80, 0xA0)}
_BIDI: Final = {
    code: f"\\u{code:04x}" for code in [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
}
_ESCAPES: Final = str.maketrans(_C0_AND_DEL | _C1 | _BIDI)


def terminal_safe(text: str) -> str:
    """`text` with C0/C1 controls (but the newline), DEL and bidi controls written as `\\xNN`/`\\uNNNN`."""
    return text.translate(_ESCAPES)
