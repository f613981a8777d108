"""The parts of a chart `.tgz` that decide its metadata, read with the checks Helm's archive loader applies.

Helm buffers every file of the archive; only `Chart.yaml` and `requirements.yaml` at the chart root
feed the config blob, so only those are read into memory. Every header is still walked, because Helm
refuses the whole chart when any entry is an absolute path, climbs out with `..`, sits outside the
chart directory, or pushes the decompressed total past 100 MiB — a chart Helm would refuse must not
be republished. Error texts are Go's (`gzip: invalid header`, `archive/tar: invalid tar header`, …).
"""

from __future__ import annotations

import gzip
import io
import posixpath
import re
import tarfile
import zlib
from dataclasses import dataclass
from typing import Final

from fluxmirror.gocompat.strconv import go_quote

__all__ = ["MAX_CHART_BYTES", "MAX_FILE_BYTES", "ArchiveError", "RootFiles", "read_root_files"]

MAX_CHART_BYTES: Final = 100 * 1024 * 1024  # Helm's MaxDecompressedChartSize: all file data together
MAX_FILE_BYTES: Final = 5 * 1024 * 1024  # Helm 3's MaxDecompressedFileSize, kept for the files read here
# The decompressed stream also carries headers and padding; anything far beyond the data budget is a bomb.
_MAX_STREAM_BYTES: Final = 2 * MAX_CHART_BYTES

_DRIVE_PATH: Final = re.compile(r"[a-zA-Z]:/")
_UTF8_BOM: Final = b"\xef\xbb\xbf"
_HEADER_ONLY: Final = frozenset({tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE})
_ZERO_BLOCK: Final = bytes(tarfile.BLOCKSIZE)


class ArchiveError(ValueError):
    """The archive cannot be read, or Helm would refuse it; the text is Helm's (or Go's) reason."""


@dataclass(frozen=True, slots=True)
class RootFiles:
    """What the metadata is built from, in archive order (a tar may repeat a name; Helm reads each)."""

    chart_yaml: tuple[bytes, ...]
    requirements_yaml: tuple[bytes, ...]
    has_requirements_lock: bool  # Helm creates empty metadata for it, so "Chart.yaml is missing" no longer fires


class _Bounded(io.RawIOBase):
    """The decompressed stream, refusing to go past the stream budget (reads and forward seeks alike).

    It keeps the bytes of the latest read: when tarfile's walk ends, that is the header it stopped at.
    """

    def __init__(self, stream: gzip.GzipFile) -> None:
        super().__init__()
        self._stream = stream
        self.last_read = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        room = _MAX_STREAM_BYTES + 1 - self._stream.tell()
        data = self._stream.read(room if size < 0 else min(size, room))
        if self._stream.tell() > _MAX_STREAM_BYTES:
            raise ArchiveError(f"decompressed chart is larger than the maximum size {MAX_CHART_BYTES}")
        self.last_read = data
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self._stream.tell() + offset
        if whence not in (io.SEEK_SET, io.SEEK_CUR) or target > _MAX_STREAM_BYTES:
            raise ArchiveError(f"decompressed chart is larger than the maximum size {MAX_CHART_BYTES}")
        return self._stream.seek(target)

    def tell(self) -> int:
        return self._stream.tell()


def _check_gzip_header(data: bytes) -> None:
    # What Go's gzip.NewReader says before any tar parsing starts.
    if not data:
        raise ArchiveError("EOF")
    if len(data) < 10:
        raise ArchiveError("unexpected EOF")
    if data[:3] != b"\x1f\x8b\x08":
        raise ArchiveError("gzip: invalid header")


def _go_reason(exc: Exception) -> str:
    """Python's reading errors, worded as Go's gzip/flate/tar readers word the same failure."""
    text = str(exc)
    if isinstance(exc, EOFError) or "unexpected end of data" in text or "truncated" in text:
        return "unexpected EOF"
    if isinstance(exc, zlib.error) or "zlib error" in text:
        return "flate: corrupt input"
    if isinstance(exc, gzip.BadGzipFile):
        return "gzip: invalid checksum" if "CRC" in text or "length" in text else "gzip: invalid header"
    if text == "empty file":
        return "no files in chart archive"
    return "archive/tar: invalid tar header"


def _check_end(stream: _Bounded) -> None:
    """Fail where Go's tar reader fails: tarfile ends its walk quietly at a header it cannot read (past
    the first), and after a single zero block, which Go only accepts when the stream ends there or a
    second zero block follows."""
    block = stream.last_read
    if block == _ZERO_BLOCK:
        block = stream.read(tarfile.BLOCKSIZE)
        if block == _ZERO_BLOCK:
            return
    if not block:
        return
    raise ArchiveError("unexpected EOF" if len(block) < tarfile.BLOCKSIZE else "archive/tar: invalid tar header")


def _chart_path(name: str) -> str:
    """The path inside the chart (first component stripped, Windows separators honoured), checked as Helm does."""
    delimiter = "\\" if "\\" in name else "/"
    parts = name.split(delimiter)
    path = delimiter.join(parts[1:]).replace(delimiter, "/")
    if path.startswith("/"):
        raise ArchiveError("chart illegally contains absolute paths")
    path = posixpath.normpath(path) if path else "."
    if path == ".":
        raise ArchiveError(f"chart illegally contains content outside the base directory: {go_quote(name)}")
    if path.startswith(".."):
        raise ArchiveError("chart illegally references parent directory")
    if _DRIVE_PATH.match(path):
        raise ArchiveError("chart contains illegally named files")
    if parts[0] == "Chart.yaml":
        raise ArchiveError("chart yaml not in base directory")
    return path


def _is_dir(member: tarfile.TarInfo) -> bool:
    # Go's FileInfo().IsDir(): the type flag, or directory bits in the mode field.
    return member.isdir() or (member.mode & ~0o7777) == 0o040000


def _read(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    if member.size > MAX_FILE_BYTES:
        raise ArchiveError(
            f"decompressed chart file {go_quote(member.name)} is larger than the maximum file size {MAX_FILE_BYTES}"
        )
    if member.type in _HEADER_ONLY:
        return b""
    handle = archive.extractfile(member)
    data = handle.read() if handle is not None else b""
    return data.removeprefix(_UTF8_BOM)


def read_root_files(data: bytes) -> RootFiles:
    """Walk the whole archive with Helm's checks; keep the root `Chart.yaml`/`requirements.yaml` bytes."""
    _check_gzip_header(data)
    chart_yaml: list[bytes] = []
    requirements_yaml: list[bytes] = []
    has_lock = False
    remaining = MAX_CHART_BYTES
    files = 0
    try:
        with (
            gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as stream,
            tarfile.open(fileobj=(bounded := _Bounded(stream)), mode="r:", encoding="utf-8") as archive,
        ):
            for member in archive:
                if _is_dir(member):
                    continue
                path = _chart_path(member.name)
                size = 0 if member.type in _HEADER_ONLY else member.size
                if size > remaining:
                    raise ArchiveError(f"decompressed chart is larger than the maximum size {MAX_CHART_BYTES}")
                remaining -= size
                files += 1
                if path == "Chart.yaml":
                    chart_yaml.append(_read(archive, member))
                elif path == "requirements.yaml":
                    requirements_yaml.append(_read(archive, member))
                elif path == "requirements.lock":
                    has_lock = True
            _check_end(bounded)
    except ArchiveError:
        raise
    except (OSError, EOFError, zlib.error, tarfile.TarError) as exc:
        raise ArchiveError(_go_reason(exc)) from None
    if files == 0:
        raise ArchiveError("no files in chart archive")
    return RootFiles(tuple(chart_yaml), tuple(requirements_yaml), has_lock)
