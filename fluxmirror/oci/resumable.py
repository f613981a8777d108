"""What an upload leaves behind for a later run to resume (`--state-dir`, docs/sync.md#resume).

An upload session is remembered by the destination registry, repository and blob (digest and size):
its latest `Location` and how many bytes the registry had acknowledged when it was recorded. Where
the record is kept is not this layer's business: `transfer_blob` is handed an `UploadJournal`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["NO_JOURNAL", "RecordedUpload", "UploadJournal", "UploadKey"]


@dataclass(frozen=True, slots=True)
class UploadKey:
    """Which upload a record belongs to; a record is never used for another blob or place."""

    registry: str
    repository: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class RecordedUpload:
    """Where the session continues (the `Location` a completed PATCH returned) and how many bytes
    the registry had acknowledged then."""

    location: str
    offset: int


class UploadJournal(Protocol):
    """Upload sessions remembered across runs. A journal never fails a transfer: a record it cannot
    read is none, and one it cannot write is reported as not kept (the upload then starts over
    next time)."""

    async def recall(self, key: UploadKey) -> RecordedUpload | None:
        """The record of `key`'s session, if there is a usable one."""
        ...

    async def record(self, key: UploadKey, upload: RecordedUpload) -> bool:
        """Replace `key`'s record; whether it was kept."""
        ...

    async def forget(self, key: UploadKey) -> None:
        """Drop `key`'s record, if there is one."""
        ...


class _NoJournal:
    """Nothing is remembered: the journal of a run without `--state-dir`."""

    async def recall(self, key: UploadKey) -> RecordedUpload | None:
        return None

    async def record(self, key: UploadKey, upload: RecordedUpload) -> bool:
        return False

    async def forget(self, key: UploadKey) -> None:
        return None


NO_JOURNAL: UploadJournal = _NoJournal()
