"""Files under `--state-dir`: private, and replaced whole or not at all.

A file is written to a temporary name beside it and renamed over the old one, so a run killed at
any moment leaves the previous content or the new one, never a torn file. Files are 0600 and the
directories created for them 0700, since what is kept there (verification verdicts, upload
`Location`s) is as sensitive as the config.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_private"]


def write_private(path: Path, data: bytes, *, root: Path) -> None:
    """Replace `path`, somewhere under `root`, with `data`; raises OSError. Missing directories from
    `root` down are created 0700 (those above `root` as `mkdir -p` would)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    below = path.parent.relative_to(root).parts
    for depth in range(len(below) + 1):
        root.joinpath(*below[:depth]).mkdir(mode=0o700, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
