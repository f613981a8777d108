"""Go's `*fs.PathError` wording for OS errors (`open keys/privkey.json: permission denied`).

fluxmirror reads and writes the same files as `flux mirror` (config, keys, Docker config), and its
file errors must read the same: `<op> <path>: <lower-case strerror>`, not Python's
`[Errno 13] Permission denied: '…'`.
"""

from __future__ import annotations

import os

__all__ = ["path_error"]


def path_error(op: str, path: str, exc: OSError) -> str:
    """The message Go's `*PathError{Op: op, Path: path, Err: errno}` prints for `exc`."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return f"{op} {exc.filename or path}: {reason[:1].lower()}{reason[1:]}"
