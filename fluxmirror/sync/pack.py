"""Packing a layout into a deterministic tar (docs/airgap.md#export): one file, volumes, or a
stream, with blobs from the layout or, deferred by the export, from their source registry.

The member order is fixed before a byte is written: `oci-layout`, every manifest, `index.json`,
then the blobs in canonical index order, every header ustar with mtime 0, uid/gid 0 and mode
0644. So the same content always gives the same bytes, and, into a file, every member's offset is
known in advance: blobs are fetched several at a time, each written at its own place, while the
sidecar's sha256 is computed in order over the completed prefix. Into a pipe they go one after the
other.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from fluxmirror.errors import FluxMirrorError
from fluxmirror.layout import REF_NAME, LayoutBlobSource, LayoutDirectory, LayoutError, TarWriter, ustar
from fluxmirror.layout.names import INDEX_JSON, LAYOUT_FILE, LAYOUT_VERSION, blob_name, encode_index
from fluxmirror.layout.streams import write_pipelined, write_verified
from fluxmirror.layout.tarball import Sink
from fluxmirror.oci.blobs import resuming_read
from fluxmirror.oci.copy import Origin
from fluxmirror.oci.manifests import Descriptor, parse_manifest
from fluxmirror.oci.pacing import Bandwidth

__all__ = ["VOLUMES_ANNOTATION", "Volume", "VolumeTooSmall", "canonical_key", "ordered", "pack", "sha256_of"]

_MAX_MANIFEST: Final = 4 << 20
_PARALLEL_HASH: Final = 64 << 10
_HASH_READ: Final = 4 << 20


def _walk(layout: LayoutDirectory, deferred: Mapping[str, object]) -> tuple[list[str], list[Descriptor]]:
    """The manifests (in index order, children before none) and the other blobs, each once: those
    in the layout and those `deferred` to their origin (a blob in a base receipt is neither)."""
    manifests: list[str] = []
    blobs: dict[str, Descriptor] = {}

    def visit(digest: str, media_type: str) -> None:
        if digest in manifests:
            return
        manifest = parse_manifest(layout.read_small(digest, _MAX_MANIFEST), media_type, digest=digest)
        manifests.append(digest)
        for child in manifest.children:
            visit(child.digest, child.media_type)
        for blob in manifest.blobs:
            if blob.digest in deferred or layout.has_blob(blob.digest, blob.size):
                blobs.setdefault(blob.digest, blob)

    for entry in ordered(layout.index()):
        visit(entry.digest, entry.media_type)
    return manifests, list(blobs.values())


def ordered(entries: list[Descriptor]) -> list[Descriptor]:
    """A canonical order, whatever order jobs finished in, so the same content always makes the same
    archive."""
    return sorted(entries, key=canonical_key)


def canonical_key(entry: Descriptor) -> tuple[bool, str, str]:
    """Named entries first, by name; then untagged ones (referrers), by digest."""
    return REF_NAME not in entry.annotations, entry.annotations.get(REF_NAME, ""), entry.digest


VOLUMES_ANNOTATION: Final = "dev.fluxmirror.volumes"
"""On every volume's `index.json`: which volume holds each blob, so an import of one volume can
name the volume a missing blob is in."""


@dataclass(frozen=True, slots=True)
class Volume:
    """One written volume: its file name, size, sha256, and how many blobs it holds."""

    name: str
    bytes: int
    sha256: str
    blobs: int


class VolumeTooSmall(FluxMirrorError):
    """A blob does not fit a volume of `--split-size`."""


def _member_size(name: str, size: int) -> int:
    return len(ustar.build(name, size)) + size + ustar.padding(size)


def _volumes(
    manifests: list[tuple[str, bytes]], index_size: int, blobs: list[Descriptor], split: int
) -> list[list[Descriptor]]:
    """Blobs spread over volumes of at most `split` bytes, in order, each volume also holding
    `oci-layout`, every manifest and `index.json`; a blob that fits no volume is an error naming the
    smallest split that works."""
    fixed = _member_size(LAYOUT_FILE, len(LAYOUT_VERSION)) + _member_size(INDEX_JSON, index_size)
    fixed += sum(_member_size(blob_name(digest), len(raw)) for digest, raw in manifests) + len(ustar.END_OF_ARCHIVE)
    volumes: list[list[Descriptor]] = [[]]
    used = fixed
    for blob in blobs:
        size = _member_size(blob_name(blob.digest), blob.size)
        if fixed + size > split:
            smallest = fixed + size
            raise VolumeTooSmall(
                f"blob {blob.digest} ({blob.size} bytes) does not fit a volume of --split-size {split}: "
                f"use at least --split-size {smallest}"
            )
        if used + size > split:
            volumes.append([])
            used = fixed
        volumes[-1].append(blob)
        used += size
    return volumes


class _HashingSink:
    """A sink that hashes (sha256) and counts what passes through it to the file or pipe below. The
    hash of a large write runs on its own thread while the write proceeds (both release the GIL), so
    the tar's sidecar digest costs no extra pass and little extra time."""

    def __init__(self, inner: Sink, hashing: ThreadPoolExecutor) -> None:
        self.inner = inner
        self.hasher = hashlib.sha256()
        self.size = 0
        self._hashing = hashing

    def write(self, data: bytes, /) -> object:
        self.size += len(data)
        if len(data) < _PARALLEL_HASH:
            self.hasher.update(data)
            return self.inner.write(data)
        hashed = self._hashing.submit(self.hasher.update, data)
        try:
            return self.inner.write(data)
        finally:
            hashed.result()

    def flush(self) -> object:
        return self.inner.flush()


@dataclass(frozen=True, slots=True)
class _Contents:
    """What every volume of a pack holds besides its blobs: the manifests, the index entries and
    the index's annotations."""

    manifests: list[tuple[str, bytes]]
    entries: list[Descriptor]
    annotations: dict[str, str]


@dataclass(frozen=True, slots=True)
class _PackSource:
    """Where `pack` reads each blob: the layout (verified when it was written there) or, for a blob
    deferred by the export, its origin, resumed with `Range`, verified as it streams and paced by
    the run's `bandwidth` (a staged blob crossed the network, if at all, when it was staged)."""

    layout: LayoutBlobSource
    deferred: Mapping[str, tuple[Origin, Descriptor]]
    bandwidth: Bandwidth | None

    def chunks(self, blob: Descriptor) -> tuple[AsyncIterator[bytes], bool]:
        """The blob's bytes, and whether they still need verifying."""
        found = self.deferred.get(blob.digest)
        if found is None:
            return self.layout.read(blob.digest, 0), False
        origin, _ = found
        return resuming_read(origin.blobs(), blob, 0, blob.size, bandwidth=self.bandwidth), True


async def _write_volume(sink: Sink, contents: _Contents, group: list[Descriptor], source: _PackSource) -> bytes:
    """One complete layout tar into `sink`: `oci-layout`, manifests, `index.json`, then `group`'s
    blobs; returns the `index.json` written."""
    writer = TarWriter(sink)
    for digest, raw in contents.manifests:
        writer.add_bytes(blob_name(digest), raw)
    index = writer.add_index(contents.entries, contents.annotations or None)
    for blob in group:
        chunks, verify = source.chunks(blob)
        await writer.add_stream(blob_name(blob.digest), blob.size, chunks, verify=verify)
    writer.close()
    return index


async def pack(
    layout: LayoutDirectory,
    target: Path | Sink,
    split: int | None = None,
    annotations: dict[str, str] | None = None,
    deferred: Mapping[str, tuple[Origin, Descriptor]] | None = None,
    *,
    parallel: int = 4,
    bandwidth: Bandwidth | None = None,
) -> tuple[list[Volume], str]:
    """Write `layout` as a deterministic tar at `target` (or as volumes `target.000`, `.001`, … of at
    most `split` bytes, each a complete layout holding every manifest), each written in the
    layout's directory as `.part`, fetching `parallel` blobs at a time, renamed into place when
    complete, with its `.sha256` sidecar; or, when `target` is a stream (stdout), as one tar into
    it, blob after blob. Blobs `deferred` stream from their origin, paced by `bandwidth`. Returns the
    volumes and the index's digest."""
    deferred = deferred or {}
    manifest_digests, blobs = await asyncio.to_thread(_walk, layout, deferred)
    manifests = [
        (digest, await asyncio.to_thread(layout.read_small, digest, _MAX_MANIFEST)) for digest in manifest_digests
    ]
    entries = ordered(layout.index())
    contents = _Contents(manifests, entries, dict(annotations or {}))
    source = _PackSource(layout.blob_source(), deferred, bandwidth)
    if isinstance(target, Path):
        return await _write_files(target, split, contents, blobs, source, layout.root, parallel)
    with ThreadPoolExecutor(1, thread_name_prefix="fluxmirror-tar-sha256") as hashing:
        sink = _HashingSink(target, hashing)
        index = await _write_volume(sink, contents, blobs, source)
    return [Volume("-", sink.size, sink.hasher.hexdigest(), len(blobs))], sha256_of(index)


async def _write_files(
    target: Path,
    split: int | None,
    contents: _Contents,
    blobs: list[Descriptor],
    source: _PackSource,
    workdir: Path,
    parallel: int,
) -> tuple[list[Volume], str]:
    """`pack` into a file, or into volumes of at most `split` bytes, each with its sidecar, each
    written in `workdir` and renamed into place when complete."""
    manifests, entries = contents.manifests, contents.entries
    single = len(encode_index(entries))
    groups = [blobs] if split is None else _volumes(manifests, single + _map_allowance(blobs), blobs, split)
    names = [target.name] if split is None else [f"{target.name}.{number:03d}" for number in range(len(groups))]
    if split is not None:
        where = {blob.digest: names[number] for number, group in enumerate(groups) for blob in group}
        contents.annotations[VOLUMES_ANNOTATION] = msgspec.json.encode(where).decode()
    written: list[Volume] = []
    index = b""
    for name, group in zip(names, groups, strict=True):
        path = target.with_name(name)
        part = workdir / f"{name}.part"  # the run's own staging directory, beside the target
        try:
            index, size, digest = await _PlacedVolume.write(part, contents, group, source, parallel)
            part.replace(path)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        path.with_name(name + ".sha256").write_text(f"{digest}  {name}\n")
        written.append(Volume(name, size, digest, len(group)))
    return written, sha256_of(index)


class _PlacedVolume:
    """One volume written into a file with every member at its precomputed offset: the front
    (`oci-layout`, manifests, `index.json`) and each blob's header at once, the blobs' bodies as
    they arrive, `parallel` at a time; the padding and end-of-archive blocks are the zeros of the
    file's preallocated length. The sha256 follows the completed prefix, in order."""

    def __init__(self, fd: int, contents: _Contents, group: list[Descriptor], source: _PackSource) -> None:
        front = io.BytesIO()
        writer = TarWriter(front)
        for digest, raw in contents.manifests:
            writer.add_bytes(blob_name(digest), raw)
        self.index = writer.add_index(contents.entries, contents.annotations or None)
        self.front = front.getvalue()
        self.fd = fd
        self.group = group
        self.source = source
        self.headers = [ustar.build(blob_name(blob.digest), blob.size) for blob in group]
        self.starts: list[int] = []
        offset = len(self.front)
        for blob, header in zip(group, self.headers, strict=True):
            self.starts.append(offset)
            offset += len(header) + blob.size + ustar.padding(blob.size)
        self.size = offset + len(ustar.END_OF_ARCHIVE)
        self.complete = [False] * len(group)
        self.progressed = asyncio.Event()
        self.hasher = hashlib.sha256()

    @classmethod
    async def write(
        cls, part: Path, contents: _Contents, group: list[Descriptor], source: _PackSource, parallel: int
    ) -> tuple[bytes, int, str]:
        """Write the volume to `part`; its `index.json`, size and sha256."""
        fd = await asyncio.to_thread(os.open, part, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            volume = cls(fd, contents, group, source)
            await asyncio.to_thread(volume.lay_out)
            limit = asyncio.Semaphore(parallel)
            tasks = [asyncio.ensure_future(volume.fetch(number, limit)) for number in range(len(group))]
            tasks.append(asyncio.ensure_future(volume.hash_in_order()))
            try:
                await asyncio.gather(*tasks)
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.wait(tasks)
                raise
        finally:
            await asyncio.to_thread(os.close, fd)
        return volume.index, volume.size, volume.hasher.hexdigest()

    def lay_out(self) -> None:
        os.ftruncate(self.fd, self.size)
        os.pwrite(self.fd, self.front, 0)
        for start, header in zip(self.starts, self.headers, strict=True):
            os.pwrite(self.fd, header, start)

    async def fetch(self, number: int, limit: asyncio.Semaphore) -> None:
        blob = self.group[number]
        position = self.starts[number] + len(self.headers[number])

        def write(chunk: bytes) -> None:
            nonlocal position
            os.pwrite(self.fd, chunk, position)
            position += len(chunk)

        async with limit:
            chunks, verify = self.source.chunks(blob)
            if verify:
                await write_verified(write, blob.digest, blob.size, chunks)
            else:
                await write_pipelined(write, blob.size, chunks)
        self.complete[number] = True
        self.progressed.set()

    async def hash_in_order(self) -> None:
        ends = [*self.starts, self.size - len(ustar.END_OF_ARCHIVE)]
        await asyncio.to_thread(self._hash, 0, ends[0])
        for number in range(len(self.group)):
            while not self.complete[number]:
                self.progressed.clear()
                await self.progressed.wait()
            await asyncio.to_thread(self._hash, ends[number], ends[number + 1])
        self.hasher.update(ustar.END_OF_ARCHIVE)

    def _hash(self, start: int, end: int) -> None:
        while start < end:
            data = os.pread(self.fd, min(_HASH_READ, end - start), start)
            if not data:
                raise LayoutError(f"the archive being written ends at byte {start}, before {end}")
            self.hasher.update(data)
            start += len(data)


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _map_allowance(blobs: list[Descriptor]) -> int:
    """Room in `index.json` for the volume map: a digest, a volume name and JSON punctuation per blob."""
    return 64 + sum(len(blob.digest) + 40 for blob in blobs)
