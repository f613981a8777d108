"""`export` (docs/airgap.md): the sync planner and jobs, writing into an OCI image layout instead of
the destination registries; as a directory, or as one deterministic tar.

A directory is filled in place: blobs verified and renamed, `index.json` merged under the layout's
lock, so a re-run skips what is there and two exporters never lose each other's tags. A tar is
written in one pass over the payload: the jobs run against a staging layout of this run's own that
receives manifests only (blobs are deferred, remembered with their origin), then `sync.pack`
writes the tar, each blob streamed from its source registry and verified on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TypeVar

from fluxmirror.api.archive import Archive, ArchiveBlobs, ArchiveVolume
from fluxmirror.api.config import Config
from fluxmirror.api.report import Result
from fluxmirror.errors import FluxMirrorError
from fluxmirror.layout import LayoutDirectory, LayoutError
from fluxmirror.layout.names import INDEX_JSON, LAYOUT_FILE
from fluxmirror.layout.tarball import Sink
from fluxmirror.oci.copy import CopySession
from fluxmirror.sync.destinations import LayoutExport
from fluxmirror.sync.engine import Cancellation, CredentialsFactory, run_sync
from fluxmirror.sync.events import Progress
from fluxmirror.sync.options import SyncOptions
from fluxmirror.sync.pack import Volume, ordered, pack, sha256_of
from fluxmirror.sync.receipts import BASE_ANNOTATION, read_receipt, write_receipt

__all__ = ["ExportInterrupted", "export", "is_tar_target"]

_T = TypeVar("_T")


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

        async def write_tar(session: CopySession) -> None:
            """While the run's connections are open: deferred blobs stream now, under its cap."""
            if tar and not options.dry_run:
                destination = Path(target) if pipe is None else pipe
                packing = pack(
                    layout,
                    destination,
                    split_size,
                    base_annotation,
                    written.deferred,
                    parallel=options.concurrency,
                    bandwidth=session.bandwidth,
                )
                packed.append(await _interruptible(cancellation, packing))

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
            await asyncio.to_thread(write_receipt, Path(receipt_out), layout, ordered(layout.index()))
        index = await asyncio.to_thread((root / INDEX_JSON).read_bytes)
        if not packed:
            return results, Archive(path=shown, format="layout", indexDigest=sha256_of(index), blobs=blobs)
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
