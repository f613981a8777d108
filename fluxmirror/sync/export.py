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
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from fluxmirror.api.archive import Archive, ArchiveBlobs
from fluxmirror.api.config import Config
from fluxmirror.api.report import Result
from fluxmirror.layout import REF_NAME, LayoutDirectory, TarWriter
from fluxmirror.layout.names import INDEX_JSON, blob_name
from fluxmirror.oci.manifests import Descriptor, parse_manifest
from fluxmirror.sync.destinations import LayoutExport
from fluxmirror.sync.engine import Cancellation, CredentialsFactory, run_sync
from fluxmirror.sync.events import Progress
from fluxmirror.sync.options import SyncOptions

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
) -> tuple[list[Result], Archive]:
    """Run the export into `target` (a directory, or a `.tar` file); the results and the archive block."""
    tar = is_tar_target(target)
    root = Path(f"{target}.staging") if tar else Path(target)
    layout = await asyncio.to_thread(LayoutDirectory, root, lock_timeout=options.timeout.total_seconds())
    # One exporter at a time per layout: a second waits up to --timeout, then fails in one line.
    with contextlib.ExitStack() as held:
        await asyncio.to_thread(held.enter_context, layout.lock(options.timeout.total_seconds()))
        written = LayoutExport(layout)
        results = await run_sync(config, options, credentials, progress, cancellation, export=written)
    blobs = ArchiveBlobs(written=written.blobs_written, bytesWritten=written.bytes_written)
    index = await asyncio.to_thread((root / INDEX_JSON).read_bytes)
    archive = Archive(
        path=target, format="layout", indexDigest="sha256:" + hashlib.sha256(index).hexdigest(), blobs=blobs
    )
    if not tar or options.dry_run:
        return results, archive
    size, sha256, root_digest = await pack(layout, Path(target))
    await asyncio.to_thread(shutil.rmtree, root)
    return results, Archive(path=target, format="tar", indexDigest=root_digest, bytes=size, sha256=sha256, blobs=blobs)


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


async def pack(layout: LayoutDirectory, target: Path) -> tuple[int, str, str]:
    """Write `layout` as a deterministic tar at `target` (through `<target>.part`, renamed when
    complete) and its `.sha256` sidecar; returns the tar's size and sha256, and its index's digest."""
    manifests, blobs = await asyncio.to_thread(_walk, layout)
    part = target.with_name(target.name + ".part")
    with part.open("wb") as stream:
        writer = TarWriter(stream)
        for digest in manifests:
            writer.add_bytes(blob_name(digest), await asyncio.to_thread(layout.read_small, digest, _MAX_MANIFEST))
        index = writer.add_index(_ordered(layout.index()))
        source = layout.blob_source()
        for blob in blobs:
            await writer.add_stream(blob_name(blob.digest), blob.size, source.read(blob.digest, 0))
        writer.close()
    digest, size = await asyncio.to_thread(_sha256_of, part)
    part.replace(target)
    target.with_name(target.name + ".sha256").write_text(f"{digest}  {target.name}\n")
    return size, digest, "sha256:" + hashlib.sha256(index).hexdigest()


def _sha256_of(path: Path) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    for chunk in _chunks(path):
        hasher.update(chunk)
        size += len(chunk)
    return hasher.hexdigest(), size
