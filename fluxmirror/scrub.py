"""Keeping secrets out of text that a server supplies.

A registry or token server that echoes the request in its error body would otherwise put the
`Authorization` header, or a token, into a report row. Every secret the run handles is remembered
here when it is created (credentials when resolved, tokens when minted), and `scrub` removes all
of them, and anything shaped like an `Authorization` value, from server-supplied text before it
becomes part of a message.
"""

from __future__ import annotations

import re
import threading
from typing import Final

__all__ = ["REDACTED", "remember", "scrub"]

REDACTED: Final = "REDACTED"
_MIN_SECRET: Final = 4  # shorter values would blank out ordinary words
_AUTHORIZATION = re.compile(r"\b(Basic|Bearer)(\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_lock = threading.Lock()
_known: set[str] = set()


def remember(*secrets: str) -> None:
    """Mark values as secrets for the rest of the process (credentials may be resolved in threads)."""
    with _lock:
        _known.update(secret for secret in secrets if len(secret) >= _MIN_SECRET)


def scrub(text: str) -> str:
    """`text` with every remembered secret and every `Basic …`/`Bearer …` value replaced by `REDACTED`."""
    with _lock:
        known = sorted(_known, key=len, reverse=True)  # a secret containing another goes first
    for secret in known:
        text = text.replace(secret, REDACTED)
    return _AUTHORIZATION.sub(rf"\1\2{REDACTED}", text)
