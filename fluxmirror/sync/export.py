"""`export` (docs/airgap.md): the sync planner and jobs, writing into an OCI image layout instead of
the destination registries; as a directory, or as one deterministic tar.

A directory is filled in place: blobs verified and renamed, `index.json` merged under the layout's
lock, so a re-run skips what is there and two exporters never lose each other's tags. A tar is
written in one pass over the payload: the jobs run against a staging layout of this run's own that
receives manifests only (blobs are deferred, remembered with their origin), then the tar is
written: `oci-layout`, every manifest, `index.json`, then the blobs in index order, each streamed
from its source registry and verified on the way, every header fixed (mtime 0, uid 0, mode 0644),
so the same content gives a byte-identical file and an importer can plan from its first kilobytes.
A `<FILE>.sha256` sidecar in `sha256sum -c` format goes beside it, hashed as the tar is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

import msgspec

from fluxmirror.api.archive import Archive, ArchiveBlobs, ArchiveVolume
from fluxmirror.api.config import Config
from fluxmirror.api.report import Result
from fluxmirror.errors import FluxMirrorError
from fluxmirror.layout import REF_NAME, LayoutBlobSource, LayoutDirectory, LayoutError, TarWriter, ustar
from fluxmirror.layout.names import INDEX_JSON, LAYOUT_FILE, LAYOUT_VERSION, blob_name, encode_index
from fluxmirror.layout.tarball import Sink
from fluxmirror.oci.blobs import resuming_read
from fluxmirror.oci.copy import Origin
from fluxmirror.oci.manifests import Descriptor, parse_manifest
from fluxmirror.sync.destinations import LayoutExport
from fluxmirror.sync.engine import Cancellation, CredentialsFactory, run_sync
from fluxmirror.sync.events import Progress
from fluxmirror.sync.options import SyncOptions
from fluxmirror.sync.receipts import BASE_ANNOTATION, read_receipt, write_receipt

__all__ = ["canonical_key", "export", "is_tar_target"]

_MAX_MANIFEST: Final = 4 << 20
_T = TypeVar("_T")
_PARALLEL_HASH: Final = 64 << 10


def is_tar_target(target: str) -> bool:
    return target.endswith(".tar")


async def export(
    config: Config,
    options: SyncOptions,
    target: str,
    credentials: CredentialsFactory,
    progress: Progress,
    cancellation: Cancellation,
    *,
    pipe: Sink | None = None,
    split_size: int | None = None,
    bases: Sequence[str] = (),
    receipt_out: str | None = None,
) -> tuple[list[Result], Archive]:
    """Run the export into `target` (a directory, or a `.tar` file, in volumes of at most
    `split_size` bytes when given, or one tar into `pipe`, staged in a temporary directory); the
    results and the archive block. `bases` are receipts of what the far side has: only blobs outside
    them are written. `receipt_out` receives the receipt of what this export ships."""
    shown = target  # what the archive block names: the directory, the tar, or "-"
    tar = pipe is not None or is_tar_target(target)
    receipts = [await asyncio.to_thread(read_receipt, path) for path in bases]
    far_side = frozenset(digest for receipt in receipts for digest in receipt.digests)
    base_annotation = {BASE_ANNOTATION: ",".join(r.index_digest for r in receipts)} if receipts else None
    with contextlib.ExitStack() as staging:
        if pipe is not None:  # manifests only, in a directory of this run's own
            root = Path(staging.enter_context(tempfile.TemporaryDirectory(prefix="fluxmirror-export-")))
        elif tar:  # beside the tar, so its parts are renamed into place; a killed run's is swept
            await asyncio.to_thread(_sweep_stale_staging, Path(target))
            beside = tempfile.TemporaryDirectory(prefix=_staging_prefix(Path(target)), dir=Path(target).parent)
            root = Path(staging.enter_context(beside))
        else:
            root = Path(target)
        layout = await asyncio.to_thread(LayoutDirectory, root, lock_timeout=options.timeout.total_seconds())
        written = LayoutExport(layout, far_side, defer_blobs=tar)
        packed: list[tuple[list[Volume], str]] = []

        async def write_tar() -> None:  # while the run's connections are open: deferred blobs stream now
            if tar and not options.dry_run:
                destination = Path(target) if pipe is None else pipe
                packed.append(
                    await _interruptible(
                        cancellation, pack(layout, destination, split_size, base_annotation, written.deferred)
                    )
                )

        # One exporter at a time per layout: a second waits up to --timeout, then fails in one line.
        with contextlib.ExitStack() as held:
            await asyncio.to_thread(held.enter_context, layout.lock(options.timeout.total_seconds()))
            results = await run_sync(
                config, options, credentials, progress, cancellation, export=written, finish=write_tar
            )
        blobs = ArchiveBlobs(
            written=written.blobs_written, bytesWritten=written.bytes_written, inBase=written.blobs_in_base
        )
        if receipt_out is not None:
            await asyncio.to_thread(write_receipt, Path(receipt_out), layout, _ordered(layout.index()))
        index = await asyncio.to_thread((root / INDEX_JSON).read_bytes)
        if not packed:
            return results, Archive(path=shown, format="layout", indexDigest=_sha256(index), blobs=blobs)
        [(volumes, root_digest)] = packed
    if split_size is None:
        [one] = volumes
        return results, Archive(
            path=shown, format="tar", indexDigest=root_digest, bytes=one.bytes, sha256=one.sha256, blobs=blobs
        )
    listed = [ArchiveVolume(name=v.name, bytes=v.bytes, sha256=v.sha256, blobs=v.blobs) for v in volumes]
    return results, Archive(path=shown, format="tar", indexDigest=root_digest, blobs=blobs, volumes=listed)


def _staging_prefix(target: Path) -> str:
    return f".{target.name}.staging-"


def _sweep_stale_staging(target: Path) -> None:
    """Remove the staging directories that killed exports of `target` left (their layout lock is
    free); one whose lock is held belongs to an export still running."""
    for stale in target.parent.glob(_staging_prefix(target) + "*"):
        if not (stale / LAYOUT_FILE).is_file():
            continue  # not a layout yet: an export that is starting
        with contextlib.suppress(LayoutError, OSError), LayoutDirectory(stale, create=False).lock(0):
            shutil.rmtree(stale)


class ExportInterrupted(FluxMirrorError):
    """A signal arrived while the tar was being written: no archive was left behind."""


async def _interruptible(cancellation: Cancellation, work: Awaitable[_T]) -> _T:
    """`work`, stopped by the run's cancellation (a CronJob's deadline) as a job would be."""
    try:
        with cancellation.stoppable():
            return await work
    except asyncio.CancelledError:
        if not cancellation.requested:
            raise
        raise ExportInterrupted("export interrupted while writing the archive: nothing was written") from None


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

    for entry in _ordered(layout.index()):
        visit(entry.digest, entry.media_type)
    return manifests, list(blobs.values())


def _ordered(entries: list[Descriptor]) -> list[Descriptor]:
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
    deferred by the export, its origin, resumed with `Range` and verified as it streams."""

    layout: LayoutBlobSource
    deferred: Mapping[str, tuple[Origin, Descriptor]]

    def chunks(self, blob: Descriptor) -> tuple[AsyncIterator[bytes], bool]:
        """The blob's bytes, and whether they still need verifying."""
        found = self.deferred.get(blob.digest)
        if found is None:
            return self.layout.read(blob.digest, 0), False
        origin, _ = found
        return resuming_read(origin.blobs(), blob, 0, blob.size), True


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
) -> tuple[list[Volume], str]:
    """Write `layout` as a deterministic tar at `target` (or as volumes `target.000`, `.001`, … of at
    most `split` bytes, each a complete layout holding every manifest), each written through `.part`,
    renamed when complete, with its `.sha256` sidecar; or, when `target` is a stream (stdout), as one
    tar into it. Blobs `deferred` stream from their origin. Returns the volumes and the index's digest."""
    deferred = deferred or {}
    manifest_digests, blobs = await asyncio.to_thread(_walk, layout, deferred)
    manifests = [
        (digest, await asyncio.to_thread(layout.read_small, digest, _MAX_MANIFEST)) for digest in manifest_digests
    ]
    entries = _ordered(layout.index())
    contents = _Contents(manifests, entries, dict(annotations or {}))
    source = _PackSource(layout.blob_source(), deferred)
    with ThreadPoolExecutor(1, thread_name_prefix="fluxmirror-tar-sha256") as hashing:
        if not isinstance(target, Path):
            sink = _HashingSink(target, hashing)
            index = await _write_volume(sink, contents, blobs, source)
            return [Volume("-", sink.size, sink.hasher.hexdigest(), len(blobs))], _sha256(index)
        return await _write_files(target, split, contents, blobs, source, hashing, layout.root)


async def _write_files(
    target: Path,
    split: int | None,
    contents: _Contents,
    blobs: list[Descriptor],
    source: _PackSource,
    hashing: ThreadPoolExecutor,
    workdir: Path,
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
            with part.open("wb") as file:
                sink = _HashingSink(file, hashing)
                index = await _write_volume(sink, contents, group, source)
            part.replace(path)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        digest = sink.hasher.hexdigest()
        path.with_name(name + ".sha256").write_text(f"{digest}  {name}\n")
        written.append(Volume(name, sink.size, digest, len(group)))
    return written, _sha256(index)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _map_allowance(blobs: list[Descriptor]) -> int:
    """Room in `index.json` for the volume map: a digest, a volume name and JSON punctuation per blob."""
    return 64 + sum(len(blob.digest) + 40 for blob in blobs)
