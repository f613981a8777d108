"""A layout as one tar: a deterministic writer, a seekable reader and a one-pass pipe reader.

The writer puts `oci-layout` first, then the manifests, then `index.json`, then the configs and
layers in the order given, every header fixed (ustar.py): the same content gives the same bytes,
and an import can plan from the first kilobytes of a multi-gigabyte archive (airgap.md §2.2).

The seekable reader never extracts: a header scan (one 512-byte `pread` per member, bodies skipped)
maps each member to its offset, and blobs are streamed from there, several at once, as oras-go's
`tarfs` does. The pipe reader makes one pass with large buffered reads. Both accept only what a
layout holds: `oci-layout`, `index.json`, `blobs/<alg>/<encoded>` and its directories. A link,
device, absolute name or `..` refuses the whole archive (it is hostile or not a layout); another
plain file (a `manifest.json` for `docker load`) is kept in `extras` and otherwise ignored, as the
spec asks. A truncated archive is one LayoutError line.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final, Protocol

from fluxmirror.layout import ustar
from fluxmirror.layout.errors import LayoutError
from fluxmirror.layout.names import (
    INDEX_JSON,
    LAYOUT_FILE,
    LAYOUT_VERSION,
    blob_name,
    decode_index,
    decode_version,
    digest_of_name,
    encode_index,
    index_descriptors,
)
from fluxmirror.layout.streams import write_pipelined, write_verified
from fluxmirror.oci.digests import check_content
from fluxmirror.oci.manifests import Descriptor

__all__ = ["READ_CHUNK", "Member", "TarBlobSource", "TarLayout", "TarStream", "TarWriter", "scan"]

READ_CHUNK: Final = 1024 * 1024
MAX_PAX: Final = 1024 * 1024
_KINDS: Final = {b"1": "a hard link", b"2": "a symbolic link", b"3": "a device", b"4": "a device", b"6": "a FIFO"}


@dataclass(frozen=True, slots=True)
class Member:
    """A layout member: its name, where its body starts in the archive and its size."""

    name: str
    offset: int
    size: int

    @property
    def digest(self) -> str | None:
        """The digest a blob member addresses (None for `oci-layout`, `index.json` and extras)."""
        return digest_of_name(self.name)


def _accept(header: ustar.Header, where: str) -> str | None:
    """The member name to keep, None for a member to skip (a directory), or a LayoutError."""
    name = header.name.removeprefix("./")
    parts = name.rstrip("/").split("/")
    if name.startswith("/") or ".." in parts:
        raise LayoutError(f"{where}: refusing a hostile archive: member {header.name!r} points outside the layout")
    if header.kind == ustar.DIRECTORY:
        return None
    if header.kind not in ustar.REGULAR:
        kind = _KINDS.get(header.kind, f"of type {header.kind!r}")
        raise LayoutError(f"{where}: refusing a hostile archive: member {header.name!r} is {kind}, not a regular file")
    if parts[0] == "blobs" and digest_of_name(name) is None:
        raise LayoutError(f"{where}: member {header.name!r} is not a blob name (blobs/<algorithm>/<encoded>)")
    return name


def _pax_name(records: Mapping[str, str], header: ustar.Header) -> ustar.Header:
    name = records.get("path", header.name)
    try:
        size = int(records["size"]) if "size" in records else header.size
    except ValueError:
        raise ustar.HeaderError("invalid pax size record") from None
    return ustar.Header(name, size, header.kind)


def scan(fd: int, where: str) -> tuple[dict[str, Member], tuple[str, ...]]:
    """Map every layout member of the tar open at `fd` to its offset and size, reading only headers
    (and pax records); the other plain files come back as extras."""
    end = os.fstat(fd).st_size
    members: dict[str, Member] = {}
    extras: list[str] = []
    offset = 0
    pax: dict[str, str] = {}
    long_name: str | None = None
    try:
        while True:
            block = os.pread(fd, ustar.BLOCK, offset)
            if len(block) < ustar.BLOCK:
                raise LayoutError(f"{where}: truncated tar: it ends at byte {end} without the end-of-archive blocks")
            header = ustar.parse(block)
            if header is None:
                return members, tuple(extras)
            body = offset + ustar.BLOCK
            if long_name is not None:
                header, long_name = ustar.Header(long_name, header.size, header.kind), None
            if pax:
                header, pax = _pax_name(pax, header), {}
            if body + header.size > end:
                raise LayoutError(
                    f"{where}: truncated tar: member {header.name!r} needs {header.size} bytes at byte {body}, "
                    f"but the archive ends at byte {end}"
                )
            offset = body + header.size + ustar.padding(header.size)
            if header.kind in (ustar.PAX_HEADER, ustar.PAX_GLOBAL, ustar.GNU_LONG_NAME):
                if header.size > MAX_PAX:
                    raise LayoutError(f"{where}: a tar extension header of {header.size} bytes is too large")
                data = os.pread(fd, header.size, body)
                if header.kind == ustar.PAX_HEADER:
                    pax = ustar.pax_records(data)
                elif header.kind == ustar.GNU_LONG_NAME:
                    long_name = data.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")
                continue
            _add(members, extras, header, body, where)
    except ustar.HeaderError as exc:
        raise LayoutError(f"{where}: byte {offset}: {exc}") from None


def _add(members: dict[str, Member], extras: list[str], header: ustar.Header, body: int, where: str) -> None:
    name = _accept(header, where)
    if name is None:
        return
    if name in members or name in extras:
        raise LayoutError(f"{where}: member {name!r} appears twice")
    if name in (LAYOUT_FILE, INDEX_JSON) or name.startswith("blobs/"):
        members[name] = Member(name, body, header.size)
    else:
        extras.append(name)


class TarBlobSource:
    """A BlobSource over the blobs of a seekable layout tar: reads from each member's offset on a
    worker thread (`pread`, so any number of blobs stream at once from one descriptor)."""

    def __init__(self, layout: TarLayout) -> None:
        self.layout = layout

    async def read(self, digest: str, offset: int) -> AsyncIterator[bytes]:
        member = self.layout.member(digest)
        position, end = member.offset + offset, member.offset + member.size
        while position < end:
            chunk = await asyncio.to_thread(os.pread, self.layout.fd, min(READ_CHUNK, end - position), position)
            if not chunk:
                raise LayoutError(f"{self.layout.where}: truncated tar: blob {digest} ends early")
            position += len(chunk)
            yield chunk


class TarLayout:
    """A seekable layout tar, read in place: `index()`, small blobs by digest, and a BlobSource.

    Opening scans the headers (blocking; `await TarLayout.open(path)` does it on a thread)."""

    def __init__(self, path: Path) -> None:
        self.where = str(path)
        try:
            self.fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise LayoutError(f"{path}: cannot open: {exc.strerror or exc}") from None
        try:
            self.members, self.extras = scan(self.fd, self.where)
            for name in (LAYOUT_FILE, INDEX_JSON):
                if name not in self.members:
                    raise LayoutError(f"{path}: not an OCI image layout archive (no {name} member)")
            version = decode_version(self._read(self.members[LAYOUT_FILE], 4096))
            if version != "1.0.0":
                raise LayoutError(f"{path}: unsupported OCI image layout version {version!r}")
        except BaseException:
            os.close(self.fd)
            raise

    @classmethod
    async def open(cls, path: Path) -> TarLayout:
        return await asyncio.to_thread(cls, path)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> TarLayout:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def member(self, digest: str) -> Member:
        member = self.members.get(blob_name(digest))
        if member is None:
            raise LayoutError(f"{self.where}: blob {digest} is not in the archive")
        return member

    def has_blob(self, digest: str, size: int) -> bool:
        member = self.members.get(blob_name(digest))
        return member is not None and member.size == size

    def _read(self, member: Member, limit: int) -> bytes:
        if member.size > limit:
            raise LayoutError(f"{self.where}: {member.name} is larger than {limit} bytes")
        return os.pread(self.fd, member.size, member.offset)

    def index_bytes(self) -> bytes:
        """`index.json` as stored (its sha256 is the archive's root)."""
        return self._read(self.members[INDEX_JSON], 64 * 1024 * 1024)

    def index(self) -> list[Descriptor]:
        """The manifests `index.json` lists, annotations kept."""
        return index_descriptors(decode_index(self.index_bytes(), self.where), self.where)

    def read_small(self, digest: str, limit: int) -> bytes:
        """A manifest or config read whole (at most `limit` bytes) and checked against its digest."""
        data = self._read(self.member(digest), limit)
        check_content(data, digest, f"{self.where}: blob {digest}")
        return data

    def blob_source(self) -> TarBlobSource:
        return TarBlobSource(self)


class Sink(Protocol):
    """Where a `TarWriter` writes: a file, stdout, or a wrapper that hashes on the way."""

    def write(self, data: bytes, /) -> object: ...

    def flush(self) -> object: ...


class TarWriter:
    """Writes a deterministic layout tar to a binary stream the caller owns (a file or stdout).

    Order: `oci-layout` (written at once), the manifests (`add_bytes`), `index.json` (`add_index`),
    then configs and layers (`add_bytes` or `add_stream`), then `close()`. Content is verified
    against the digest in its name as it is written; after a mismatch the archive is invalid and
    the writer refuses further use (the caller discards the output). A name already written is
    skipped (returns False), so a blob shared by several images is stored once."""

    def __init__(self, stream: Sink) -> None:
        self.stream = stream
        self.written: set[str] = set()
        self.index_written = False
        self.failed = False
        self._member(LAYOUT_FILE, LAYOUT_VERSION)

    def _member(self, name: str, data: bytes) -> None:
        self.stream.write(ustar.build(name, len(data)) + data + bytes(ustar.padding(len(data))))
        self.written.add(name)

    def _check(self, name: str) -> str:
        if self.failed:
            raise ValueError("TarWriter: an earlier blob failed verification; the archive is invalid")
        digest = digest_of_name(name)
        if digest is None:
            raise ValueError(f"TarWriter: {name!r} is not a blob name")
        return digest

    def add_bytes(self, name: str, data: bytes) -> bool:
        """Add a blob held in memory (a manifest or config), after checking it against its name."""
        digest = self._check(name)
        if name in self.written:
            return False
        check_content(data, digest, f"blob {digest}")
        self._member(name, data)
        return True

    def add_index(self, entries: Iterable[Descriptor], annotations: dict[str, str] | None = None) -> bytes:
        """Write `index.json` listing `entries` in order; returns its bytes (its sha256 is the
        archive's root)."""
        if self.index_written:
            raise ValueError("TarWriter: index.json is already written")
        data = encode_index(entries, annotations)
        self._member(INDEX_JSON, data)
        self.index_written = True
        return data

    async def add_stream(self, name: str, size: int, chunks: AsyncIterator[bytes], *, verify: bool = True) -> bool:
        """Stream a blob (after `index.json`), hashing it by its digest's algorithm as it is written
        (`verify=False`: content this process verified already, such as a staged layout's blob)."""
        digest = self._check(name)
        if not self.index_written:
            raise ValueError("TarWriter: streamed blobs go after index.json (add_index first)")
        if name in self.written:
            return False
        await asyncio.to_thread(self.stream.write, ustar.build(name, size))
        try:
            if verify:
                await write_verified(self.stream.write, digest, size, chunks)
            else:
                await write_pipelined(self.stream.write, size, chunks)
        except BaseException:
            self.failed = True
            raise
        await asyncio.to_thread(self.stream.write, bytes(ustar.padding(size)))
        self.written.add(name)
        return True

    def close(self) -> None:
        """Write the end-of-archive blocks and flush; the stream stays open."""
        if not self.index_written:
            raise ValueError("TarWriter: an archive needs index.json")
        self.stream.write(ustar.END_OF_ARCHIVE)
        self.stream.flush()


class TarStream:
    """One pass over a layout tar from a pipe, in member order: `async for member in stream`; each
    member's body is read with `body()` or `read_small()` before the next, or skipped. Reads are
    1 MiB on a worker thread, so thousands of tiny members cost no thread hop each."""

    def __init__(self, file: BinaryIO, where: str = "-") -> None:
        self.file = file
        self.where = where
        self._buffer = b""
        self._position = 0
        self._consumed = 0  # archive offset of _buffer[0]
        self._remaining = 0  # unread body bytes of the current member
        self.extras: list[str] = []
        self._seen: set[str] = set()

    @property
    def offset(self) -> int:
        return self._consumed + self._position

    async def _fill(self, count: int) -> bool:
        """Make `count` bytes available in the buffer; False at the end of the input."""
        while len(self._buffer) - self._position < count:
            chunk = await asyncio.to_thread(self.file.read, READ_CHUNK)
            if not chunk:
                return False
            self._consumed += self._position
            self._buffer = self._buffer[self._position :] + chunk
            self._position = 0
        return True

    async def _take(self, count: int, what: str) -> bytes:
        if not await self._fill(count):
            raise LayoutError(f"{self.where}: truncated tar: {what} ends early, at byte {self.offset}")
        data = self._buffer[self._position : self._position + count]
        self._position += count
        return data

    async def _skip(self, count: int, what: str) -> None:
        while count:
            if self._position >= len(self._buffer) and not await self._fill(1):
                raise LayoutError(f"{self.where}: truncated tar: {what} ends early, at byte {self.offset}")
            step = min(count, len(self._buffer) - self._position)
            self._position += step
            count -= step

    async def body(self) -> AsyncIterator[bytes]:
        """The current member's body in pieces of at most 1 MiB, as they arrive."""
        while self._remaining:
            if self._position >= len(self._buffer) and not await self._fill(1):
                raise LayoutError(f"{self.where}: truncated tar: a member ends early, at byte {self.offset}")
            step = min(self._remaining, len(self._buffer) - self._position, READ_CHUNK)
            piece = self._buffer[self._position : self._position + step]
            self._position += step
            self._remaining -= step
            yield piece

    async def read_small(self, member: Member, limit: int) -> bytes:
        """The current member's whole body (at most `limit` bytes), checked against its digest if it is a blob."""
        if member.size > limit:
            raise LayoutError(f"{self.where}: {member.name} is larger than {limit} bytes")
        data = await self._take(member.size, member.name)
        self._remaining = 0
        if member.digest is not None:
            check_content(data, member.digest, f"{self.where}: blob {member.digest}")
        return data

    async def __aiter__(self) -> AsyncIterator[Member]:
        pax: dict[str, str] = {}
        long_name: str | None = None
        padding = 0
        while True:
            await self._skip(self._remaining + padding, "a member")
            self._remaining = 0
            start = self.offset
            block = await self._take(ustar.BLOCK, "the archive (no end-of-archive blocks)")
            try:
                header = ustar.parse(block)
                if header is None:
                    return
                if long_name is not None:
                    header, long_name = ustar.Header(long_name, header.size, header.kind), None
                if pax:
                    header, pax = _pax_name(pax, header), {}
                padding = ustar.padding(header.size)
                if header.kind in (ustar.PAX_HEADER, ustar.PAX_GLOBAL, ustar.GNU_LONG_NAME):
                    if header.size > MAX_PAX:
                        raise LayoutError(f"{self.where}: a tar extension header of {header.size} bytes is too large")
                    data = await self._take(header.size, "a tar extension header")
                    if header.kind == ustar.PAX_HEADER:
                        pax = ustar.pax_records(data)
                    elif header.kind == ustar.GNU_LONG_NAME:
                        long_name = data.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")
                    continue
            except ustar.HeaderError as exc:
                raise LayoutError(f"{self.where}: byte {start}: {exc}") from None
            self._remaining = header.size
            name = _accept(header, self.where)
            if name is None:
                continue
            if name in self._seen:
                raise LayoutError(f"{self.where}: member {name!r} appears twice")
            self._seen.add(name)
            if name in (LAYOUT_FILE, INDEX_JSON) or name.startswith("blobs/"):
                yield Member(name, self.offset, header.size)
            else:
                self.extras.append(name)
