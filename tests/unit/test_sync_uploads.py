"""The upload journal under --state-dir (docs/sync.md#resume): private files replaced whole, one per
session, and a file that is unreadable, corrupt or about another upload ignored with a log line."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from fluxmirror.oci.resumable import RecordedUpload, UploadKey
from fluxmirror.sync.uploads import StateDirJournal

KEY = UploadKey("registry.example:5000", "team/app", "sha256:" + "ab" * 32, 10_000)
OTHER = UploadKey("registry.example:5000", "team/other", KEY.digest, KEY.size)
SESSION = RecordedUpload("https://registry.example:5000/v2/team/app/blobs/uploads/u1?_state=signed", 4096)


def _files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


async def test_a_record_is_kept_privately_until_forgotten(tmp_path: Path) -> None:
    state = tmp_path / "state"
    journal = StateDirJournal(str(state))

    assert await journal.recall(KEY) is None
    assert await journal.record(KEY, SESSION)
    assert await journal.record(KEY, RecordedUpload(SESSION.location, 8192))  # replaced, not added

    assert await journal.recall(KEY) == RecordedUpload(SESSION.location, 8192)
    assert await journal.recall(OTHER) is None
    [path] = _files(tmp_path)
    assert path.parent == state / "uploads"
    assert [stat.S_IMODE(p.stat().st_mode) for p in (state, state / "uploads", path)] == [0o700, 0o700, 0o600]
    await journal.forget(KEY)
    await journal.forget(KEY)  # forgetting what is not there is fine
    assert _files(tmp_path) == []


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b'{"registry": 1}', b"[]"],
    ids=["empty", "torn", "wrong-types", "not-an-object"],
)
async def test_a_corrupt_record_is_ignored_with_a_log_line(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    journal = StateDirJournal(str(tmp_path))
    await journal.record(KEY, SESSION)
    [path] = _files(tmp_path)
    path.write_bytes(content)

    with caplog.at_level(logging.INFO, logger="fluxmirror"):
        assert await journal.recall(KEY) is None

    [line] = caplog.messages
    assert line.startswith(f"ignoring upload state path={path} err=")
    assert await journal.record(KEY, SESSION)  # the next record replaces it
    assert await journal.recall(KEY) == SESSION


async def test_a_record_of_another_upload_is_never_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A file copied or renamed into another key's place names its own blob: it is not used for this one."""
    journal = StateDirJournal(str(tmp_path))
    await journal.record(OTHER, SESSION)
    [other] = _files(tmp_path)
    await journal.record(KEY, SESSION)
    mine = next(path for path in _files(tmp_path) if path != other)
    os.replace(other, mine)

    with caplog.at_level(logging.INFO, logger="fluxmirror"):
        assert await journal.recall(KEY) is None
    assert caplog.messages == [f'ignoring upload state path={mine} err="it records another upload"']


async def test_a_state_dir_that_cannot_be_written_keeps_nothing_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    journal = StateDirJournal(str(blocked))

    with caplog.at_level(logging.INFO, logger="fluxmirror"):
        assert not await journal.record(KEY, SESSION)
        assert await journal.recall(KEY) is None

    assert caplog.messages[0].startswith(f"upload not recorded digest={KEY.digest} err=")
    assert _files(tmp_path) == [blocked]
