"""`keygen`: write a fresh Ed25519 JWK pair to disk without ever clobbering or half-writing a key.

Paths are joined and cleaned lexically, like Go's `filepath.Join`, and OS errors are worded like Go's,
so messages and printed paths match the reference tool.
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fluxmirror.auth.jwk import generate_ed25519_key_set, new_uuid6
from fluxmirror.errors import KeygenError
from fluxmirror.gocompat.oserror import path_error

__all__ = ["KeyPairPaths", "write_key_pair"]

_PRIVATE_FILE: Final = "privkey.json"
_PUBLIC_FILE: Final = "pubkey.json"
_DIR_MODE: Final = 0o755
_PRIVATE_MODE: Final = 0o600
_PUBLIC_MODE: Final = 0o644


@dataclass(frozen=True)
class KeyPairPaths:
    """Where the pair landed, spelled as the user should see it (`keys/registry/privkey.json`)."""

    private: str
    public: str


def _clean(path: str) -> str:
    """Go's `filepath.Clean`: unlike `os.path.normpath` it also folds a leading `//` into `/`."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part != "..":
            parts.append(part)
        elif parts and parts[-1] != "..":
            parts.pop()
        elif not rooted:
            parts.append("..")
    cleaned = "/".join(parts)
    return "/" + cleaned if rooted else cleaned or "."


def _mkdir_all(directory: Path) -> None:
    """Go's `os.MkdirAll`: unlike `Path.mkdir(parents=True)`, every directory it creates gets 0755."""
    if directory.is_dir():
        return
    if directory.exists():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(directory))
    if directory.parent != directory:
        _mkdir_all(directory.parent)
    try:
        directory.mkdir(_DIR_MODE)
    except OSError:
        # Lost a race with another creator: fine, as long as a directory is there now.
        if not directory.is_dir():
            raise


def _write_exclusive(path: str, data: bytes, mode: int, what: str) -> None:
    """Create `path` (failing if it exists), force `mode` past the umask, and remove it if writing fails."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    except OSError as exc:
        raise KeygenError(f"write {what}: {path_error('open', path, exc)}") from None
    step = "chmod"
    try:
        os.fchmod(fd, mode)
        step = "write"
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        os.close(fd)
        with contextlib.suppress(OSError):
            Path(path).unlink()
        raise KeygenError(f"write {what}: {path_error(step, path, exc)}") from None
    os.close(fd)


def write_key_pair(output_dir: str) -> KeyPairPaths:
    """Write `privkey.json` (0600) and `pubkey.json` (0644), sharing one new UUIDv6 `kid`, into `output_dir`.

    Both files are checked before anything is written, and the private file is rolled back if the
    public one cannot be written, so a failed run leaves no stray key behind.
    """
    if not output_dir:
        raise KeygenError("output directory is required")
    directory = _clean(output_dir)
    paths = KeyPairPaths(
        private=_clean(f"{directory}/{_PRIVATE_FILE}"),
        public=_clean(f"{directory}/{_PUBLIC_FILE}"),
    )
    try:
        _mkdir_all(Path(directory))
    except OSError as exc:
        raise KeygenError(f"create output directory: {path_error('mkdir', directory, exc)}") from None
    for path in (paths.private, paths.public):
        if os.path.lexists(path):
            raise KeygenError(f"{path} already exists, refusing to overwrite")
    private_set, public_set = generate_ed25519_key_set(new_uuid6())
    _write_exclusive(paths.private, private_set, _PRIVATE_MODE, "private key set")
    try:
        _write_exclusive(paths.public, public_set, _PUBLIC_MODE, "public key set")
    except KeygenError:
        with contextlib.suppress(OSError):
            Path(paths.private).unlink()
        raise
    return paths
