"""What reading (`get`) and writing (`store`) through docker-credential-helpers share: finding the
helper executable, and summarising its output for an error message without echoing a secret."""

from __future__ import annotations

import shutil
from typing import Final

__all__ = ["HelperMissingError", "find_helper", "first_line", "helper_program", "require_helper"]

_MAX_DETAIL: Final = 200


class HelperMissingError(LookupError):
    """No `docker-credential-<name>` on the search path; `str()` is Docker's wording."""


def helper_program(name: str) -> str:
    return f"docker-credential-{name}"


def find_helper(name: str, search_path: str | None = None) -> str | None:
    """The helper's path on `search_path` (the process's PATH when None), or None."""
    return shutil.which(helper_program(name), path=search_path)


def require_helper(name: str, search_path: str | None = None) -> str:
    executable = find_helper(name, search_path)
    if executable is None:
        raise HelperMissingError(f"{helper_program(name)}: executable file not found in $PATH")
    return executable


def first_line(data: bytes) -> str:
    """The first non-blank line of helper output, capped, for a one-line error."""
    lines = data.decode(errors="replace").strip().splitlines()
    return lines[0].strip()[:_MAX_DETAIL] if lines else ""
