"""Go's *fs.PathError wording for OS errors."""

from __future__ import annotations

import errno

from fluxmirror.gocompat.oserror import path_error


def test_path_error_reads_like_go() -> None:
    exc = PermissionError(errno.EACCES, "Permission denied", "keys/privkey.json")
    assert path_error("open", "ignored", exc) == "open keys/privkey.json: permission denied"


def test_path_error_without_errno_or_filename() -> None:
    assert path_error("read", "config.yaml", OSError("Something broke")) == "read config.yaml: something broke"
