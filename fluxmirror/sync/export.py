"""`export` (docs/airgap.md): the sync planner and jobs, writing into an OCI image layout instead of
the destination registries; as a directory, or as one deterministic tar.

A directory is filled in place: blobs verified and renamed, `index.json` merged under the layout's
lock, so a re-run skips what is there and two exporters never lose each other's tags. A tar is
built from a directory staged beside it (`<FILE>.staging`, removed afterwards): `oci-layout`, every
manifest, `index.json`, then the other blobs in index order, every header fixed (mtime 0, uid 0,
mode 0644), so the same content gives a byte-identical file and an importer can plan from its
first kilobytes. A `<FILE>.sha256` sidecar in `sha256sum -c` format goes beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from fluxmirror.api.archive import Archive, ArchiveBlobs, ArchiveVolume
from fluxmirror.api.config import Config
from fluxmirror.api.report import Result
from fluxmirror.errors import FluxMirrorError
from fluxmirror.layout import REF_NAME, LayoutDirectory, TarWriter, ustar
from fluxmirror.layout.names import INDEX_JSON, LAYOUT_FILE, LAYOUT_VERSION, blob_name, encode_index
from fluxmirror.oci.manifests import Descriptor, parse_manifest
from fluxmirror.sync.destinations import LayoutExport
from fluxmirror.sync.engine import Cancellation, CredentialsFactory, run_sync
from fluxmirror.sync.events import Progress
from fluxmirror.sync.options import SyncOptions
from fluxmirror.sync.receipts import BASE_ANNOTATION, read_receipt, write_receipt

__all__ = ["canonical_key", "export", "is_tar_target"]

_MAX_MANIFEST: Final = 4 << 20
_READ: Final = 1 << 20


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
    split_size: int | None = None,
    bases: Sequence[str] = (),
    receipt_out: str | None = None,
) -> tuple[list[Result], Archive]:
    """Run the export into `target` (a directory, or a `.tar` file, in volumes of at most
    `split_size` bytes when given); the results and the archive block. `bases` are receipts of what
    the far side has: only blobs outside them are written. `receipt_out` receives the receipt of what
    this export ships."""
    receipts = [await asyncio.to_thread(read_receipt, path) for path in bases]
    far_side = frozenset(digest for receipt in receipts for digest in receipt.digests)
    base_annotation = {BASE_ANNOTATION: ",".join(r.index_digest for r in receipts)} if receipts else None
    tar = is_tar_target(target)
    root = Path(f"{target}.staging") if tar else Path(target)
    layout = await asyncio.to_thread(LayoutDirectory, root, lock_timeout=options.timeout.total_seconds())
    # One exporter at a time per layout: a second waits up to --timeout, then fails in one line.
    with contextlib.ExitStack() as held:
        await asyncio.to_thread(held.enter_context, layout.lock(options.timeout.total_seconds()))
        written = LayoutExport(layout, far_side)
        results = await run_sync(config, options, credentials, progress, cancellation, export=written)
    blobs = ArchiveBlobs(
        written=written.blobs_written, bytesWritten=written.bytes_written, inBase=written.blobs_in_base
    )
    if receipt_out is not None:
        await asyncio.to_thread(write_receipt, Path(receipt_out), layout, _ordered(layout.index()))
    index = await asyncio.to_thread((root / INDEX_JSON).read_bytes)
    archive = Archive(
        path=target, format="layout", indexDigest="sha256:" + hashlib.sha256(index).hexdigest(), blobs=blobs
    )
    if not tar or options.dry_run:
        return results, archive
    volumes, root_digest = await pack(layout, Path(target), split_size, base_annotation)
    await asyncio.to_thread(shutil.rmtree, root)
    if split_size is None:
        [single] = volumes
        return results, Archive(
            path=target, format="tar", indexDigest=root_digest, bytes=single.bytes, sha256=single.sha256, blobs=blobs
        )
    listed = [ArchiveVolume(name=v.name, bytes=v.bytes, sha256=v.sha256, blobs=v.blobs) for v in volumes]
    return results, Archive(path=target, format="tar", indexDigest=root_digest, blobs=blobs, volumes=listed)


def _walk(layout: LayoutDirectory) -> tuple[list[str], list[Descriptor]]:
    """The manifests (in index order, children before none) and the other blobs, each once."""
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
            if layout.has_blob(blob.digest, blob.size):  # a blob in a base receipt is not in the archive
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


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(_READ):
            yield chunk


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


async def pack(
    layout: LayoutDirectory, target: Path, split: int | None = None, annotations: dict[str, str] | None = None
) -> tuple[list[Volume], str]:
    """Write `layout` as a deterministic tar at `target` (or as volumes `target.000`, `.001`, … of at
    most `split` bytes, each a complete layout holding every manifest), each written through `.part`,
    renamed when complete, with its `.sha256` sidecar; returns the volumes and the index's digest."""
    manifest_digests, blobs = await asyncio.to_thread(_walk, layout)
    manifests = [
        (digest, await asyncio.to_thread(layout.read_small, digest, _MAX_MANIFEST)) for digest in manifest_digests
    ]
    entries = _ordered(layout.index())
    single = encode_index(entries)
    groups = [blobs] if split is None else _volumes(manifests, len(single) + _map_allowance(blobs), blobs, split)
    names = [target.name] if split is None else [f"{target.name}.{number:03d}" for number in range(len(groups))]
    annotations = dict(annotations or {})
    if split is not None:
        where = {blob.digest: names[number] for number, group in enumerate(groups) for blob in group}
        annotations[VOLUMES_ANNOTATION] = msgspec.json.encode(where).decode()
    source = layout.blob_source()
    written: list[Volume] = []
    index = single
    for name, group in zip(names, groups, strict=True):
        path = target.with_name(name)
        part = path.with_name(name + ".part")
        with part.open("wb") as stream:
            writer = TarWriter(stream)
            for digest, raw in manifests:
                writer.add_bytes(blob_name(digest), raw)
            index = writer.add_index(entries, annotations or None)
            for blob in group:
                await writer.add_stream(blob_name(blob.digest), blob.size, source.read(blob.digest, 0))
            writer.close()
        digest, size = await asyncio.to_thread(_sha256_of, part)
        part.replace(path)
        path.with_name(name + ".sha256").write_text(f"{digest}  {name}\n")
        written.append(Volume(name, size, digest, len(group)))
    return written, "sha256:" + hashlib.sha256(index).hexdigest()


def _MAP_ALLOWANCE(blobs: list[Descriptor]) -> int:
    """Room in `index.json` for the volume map: a digest, a volume name and JSON punctuation per blob."""
    return 64 + sum(len(blob.digest) + 40 for blob in blobs)


def _map_allowance(blobs: list[Descriptor]) -> int:
    """Room in `index.json` for the volume map: a digest, a volume name and JSON punctuation per blob."""
    return 64 + sum(len(blob.digest) + 40 for blob in blobs)


def _sha256_of(path: Path) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    for chunk in _chunks(path):
        hasher.update(chunk)
        size += len(chunk)
    return hasher.hexdigest(), size
