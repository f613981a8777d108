"""Go's `*fs.PathError` wording for OS errors (`open keys/privkey.json: permission denied`).

fluxmirror reads and writes the same files as `flux mirror` (config, keys, Docker config), and its
file errors must read the same: `<op> <path>: <lower-case strerror>`, not Python's
`[Errno 13] Permission denied: '…'`.
"""

from __future__ import annotations

import os

__all__ = ["errno_text", "path_error"]


def errno_text(errno: int) -> str:
    """What Go's `syscall.Errno` prints: the C library's text with a lower-case first letter
    (`connection refused`, `no route to host`)."""
    reason = os.strerror(errno)
    return f"{reason[:1].lower()}{reason[1:]}"


def path_error(op: str, path: str, exc: OSError) -> str:
    """The message Go's `*PathError{Op: op, Path: path, Err: errno}` prints for `exc`."""
    reason = errno_text(exc.errno) if exc.errno else str(exc)
    return f"{op} {exc.filename or path}: {reason[:1].lower()}{reason[1:]}"
