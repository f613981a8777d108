"""Upload sessions remembered across runs, under `--state-dir` (docs/sync.md#resume).

One file per session in flight, `<state-dir>/uploads/<key>`, where the key hashes the destination
registry, repository and blob digest. It holds those, the blob's size, the latest upload
`Location` the registry returned and the bytes it had acknowledged then; it is replaced after each
completed chunk and removed once the blob is committed, found already present, or the session is
stale. The `Location` is the registry's own (distribution signs its upload state into it); no
credential of ours is ever in it, but it lets whoever reads it write to that session, so files are
0600 in 0700 directories (`fluxmirror.sync.statedir`).

A file that cannot be read, does not parse, or names another blob is ignored with a log line (the
upload starts over, and its own record replaces the file); a state directory that cannot be written
only costs the next run the resume.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

import msgspec

from fluxmirror.oci.resumable import RecordedUpload, UploadKey
from fluxmirror.sync.logfmt import kv
from fluxmirror.sync.statedir import write_private

__all__ = ["StateDirJournal"]

log = logging.getLogger(__name__)


class _Entry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    registry: str
    repository: str
    digest: str
    size: int
    location: str
    offset: int


_DECODER = msgspec.json.Decoder(_Entry)


class StateDirJournal:
    """The `UploadJournal` of a run with `--state-dir`."""

    def __init__(self, state_dir: str) -> None:
        self._root = Path(state_dir)
        self._directory = self._root / "uploads"

    def _path(self, key: UploadKey) -> Path:
        name = hashlib.sha256(f"{key.registry}\0{key.repository}\0{key.digest}".encode()).hexdigest()
        return self._directory / name

    async def recall(self, key: UploadKey) -> RecordedUpload | None:
        return await asyncio.to_thread(self._read, key)

    async def record(self, key: UploadKey, upload: RecordedUpload) -> bool:
        return await asyncio.to_thread(self._write, key, upload)

    async def forget(self, key: UploadKey) -> None:
        await asyncio.to_thread(self._remove, key)

    def _read(self, key: UploadKey) -> RecordedUpload | None:
        path = self._path(key)
        try:
            entry = _DECODER.decode(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, msgspec.DecodeError) as exc:
            log.info(kv("ignoring upload state", path=path, err=str(exc)))
            return None
        if UploadKey(entry.registry, entry.repository, entry.digest, entry.size) != key or not (
            0 <= entry.offset <= entry.size
        ):
            log.info(kv("ignoring upload state", path=path, err="it records another upload"))
            return None
        return RecordedUpload(entry.location, entry.offset)

    def _write(self, key: UploadKey, upload: RecordedUpload) -> bool:
        entry = _Entry(key.registry, key.repository, key.digest, key.size, upload.location, upload.offset)
        try:
            write_private(self._path(key), msgspec.json.encode(entry), root=self._root)
        except OSError as exc:
            log.info(kv("upload not recorded", digest=key.digest, err=str(exc)))
            return False
        return True

    def _remove(self, key: UploadKey) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            log.info(kv("upload record not removed", digest=key.digest, err=str(exc)))
