"""OS errors worded like Go's `*PathError` (`open keys/privkey.json: permission denied`), so file
errors read the same as in `flux mirror`."""

from __future__ import annotations

import os

__all__ = ["path_error"]


def path_error(op: str, path: str, exc: OSError) -> str:
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return f"{op} {exc.filename or path}: {reason[:1].lower()}{reason[1:]}"
