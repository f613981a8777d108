"""Copy a manifest and everything it references to a registry repository, digest-preserving.

Order is what keeps a destination whole: every blob of a manifest is in place and verified before
the manifest is pushed, every child of an index is pushed (by digest) before the index, and the
tag is written last. Within one copy, blobs move in parallel; across the whole run, a blob already
placed in another repository of the destination registry is mounted instead of re-sent, and two
jobs needing the same blob in the same repository share one transfer.

What is copied comes from an `Origin`: a registry repository (`RegistryOrigin`, for `sync`), or
anything else that can hand out manifests by digest and stream blobs (an archive, for `import`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from fluxmirror.oci.blobs import BlobSource, Placement, RegistrySource, transfer_blob
from fluxmirror.oci.client import Registries, RegistryClient
from fluxmirror.oci.errors import OCIError
from fluxmirror.oci.manifests import Descriptor, Manifest
from fluxmirror.oci.pacing import Bandwidth
from fluxmirror.oci.reference import Repository
from fluxmirror.oci.referrers import FallbackIndexes
from fluxmirror.oci.resumable import NO_JOURNAL, UploadJournal

__all__ = ["CopySession", "Origin", "RegistryOrigin", "copy_from", "copy_manifest"]

log = logging.getLogger(__name__)


class Origin(Protocol):
    """Where a copy reads from: manifests by digest and a stream per blob. `repository` is set when
    the origin is a registry repository, whose blobs a destination on the same registry can mount."""

    @property
    def repository(self) -> Repository | None: ...

    async def manifest(self, digest: str) -> Manifest | None: ...

    def blobs(self) -> BlobSource: ...


@dataclass(frozen=True, slots=True)
class RegistryOrigin:
    """A registry repository as the origin of a copy."""

    registries: Registries
    repository: Repository

    async def manifest(self, digest: str) -> Manifest | None:
        return await self.registries.client(self.repository.registry).get_manifest(self.repository.path, digest)

    def blobs(self) -> BlobSource:
        return RegistrySource(self.registries.client(self.repository.registry), self.repository.path)

    def __str__(self) -> str:
        return str(self.repository)


@dataclass(slots=True)
class _SharedTransfer:
    """One blob transfer and how many jobs are waiting for it: jobs needing the same blob in the same
    repository share it, and it is cancelled when the last of them is (a job past its deadline)."""

    task: asyncio.Task[Placement]
    waiters: int = 0


@dataclass
class CopySession:
    """Run-wide transfer state shared by every copy: the clients, upload settings (with the journal
    that remembers upload sessions across runs), the run's one `bandwidth` cap (None: uncapped),
    and what moved."""

    registries: Registries
    chunk_size_for: Callable[[str], int] = lambda _registry: 0
    blob_parallelism: int = 4
    journal: UploadJournal = NO_JOURNAL
    bandwidth: Bandwidth | None = None
    fallback_indexes: FallbackIndexes = field(default_factory=FallbackIndexes)
    _placed: dict[tuple[str, str], str] = field(default_factory=dict)
    _inflight: dict[tuple[str, str, str], _SharedTransfer] = field(default_factory=dict)

    def mount_source(self, origin: Origin, destination: Repository, digest: str) -> str | None:
        """A repository on the destination registry that can lend the blob, if any."""
        source = origin.repository
        if source is not None and source.registry == destination.registry and source.path != destination.path:
            return source.path
        known = self._placed.get((destination.registry, digest))
        return known if known is not None and known != destination.path else None

    async def place_blob(self, origin: Origin, destination: Repository, blob: Descriptor) -> None:
        key = (destination.registry, destination.path, blob.digest)
        transfer = self._inflight.get(key)
        if transfer is None or transfer.task.cancelling():
            transfer = _SharedTransfer(asyncio.ensure_future(self._transfer(origin, destination, blob)))
            self._inflight[key] = transfer
            transfer.task.add_done_callback(partial(self._finished, key, transfer))
        transfer.waiters += 1
        try:
            placement = await asyncio.shield(transfer.task)
        except asyncio.CancelledError:
            if transfer.waiters == 1:  # no other job waits for it: stop the transfer with this job,
                transfer.task.cancel()  # and let it abandon its upload session (bounded) before the
                await asyncio.wait({transfer.task})  # run can end and close the connections
            raise
        finally:
            transfer.waiters -= 1
        self._placed.setdefault((destination.registry, blob.digest), destination.path)
        log.info("%s blob: %s", placement.value, blob.digest)

    def _finished(self, key: tuple[str, str, str], transfer: _SharedTransfer, task: asyncio.Task[Placement]) -> None:
        if self._inflight.get(key) is transfer:
            self._inflight.pop(key)
        if not task.cancelled():
            task.exception()  # its waiters re-raise it; a transfer nobody awaits any more is not an error

    async def _transfer(self, origin: Origin, destination: Repository, blob: Descriptor) -> Placement:
        return await transfer_blob(
            origin.blobs(),
            self.registries.client(destination.registry),
            destination.path,
            blob,
            mount_from=self.mount_source(origin, destination, blob.digest),
            chunk_size=self.chunk_size_for(destination.registry),
            journal=self.journal,
            bandwidth=self.bandwidth,
        )


async def _bounded(limit: asyncio.Semaphore, work: Awaitable[None]) -> None:
    async with limit:
        await work


async def _push_tree(
    session: CopySession,
    limit: asyncio.Semaphore,
    origin: Origin,
    destination: Repository,
    manifest: Manifest,
    reference: str,
) -> None:
    destination_client = session.registries.client(destination.registry)
    if manifest.is_index:
        await asyncio.gather(
            *(
                _copy_child(session, limit, origin, destination_client, destination, child)
                for child in manifest.children
            )
        )
    else:
        await asyncio.gather(
            *(_bounded(limit, session.place_blob(origin, destination, blob)) for blob in manifest.blobs)
        )
    await destination_client.put_manifest(destination.path, reference, manifest)
    if manifest.subject is not None:
        await session.fallback_indexes.record(destination_client, destination.path, manifest)
    log.info(
        "%s/%s:%s: digest: %s size: %d",
        destination.registry,
        destination.path,
        reference,
        manifest.digest,
        manifest.size,
    )


async def _copy_child(
    session: CopySession,
    limit: asyncio.Semaphore,
    origin: Origin,
    destination_client: RegistryClient,
    destination: Repository,
    child: Descriptor,
) -> None:
    if await destination_client.head_manifest(destination.path, child.digest) is not None:
        log.info("existing manifest: %s@%s", destination.path, child.digest)
        return
    manifest = await origin.manifest(child.digest)
    if manifest is None:
        raise OCIError(f"manifest {origin}@{child.digest} referenced by an index is missing at the source")
    await _push_tree(session, limit, origin, destination, manifest, child.digest)


async def copy_from(
    session: CopySession, origin: Origin, destination: Repository, manifest: Manifest, reference: str
) -> None:
    """Copy `manifest` (already read from `origin`) and its tree, then push it as `reference` (tag or digest)."""
    at = "@" if ":" in reference else ":"
    log.info("Copying from %s%s%s to %s%s%s", origin, at, reference, destination, at, reference)
    limit = asyncio.Semaphore(session.blob_parallelism)
    await _push_tree(session, limit, origin, destination, manifest, reference)


async def copy_manifest(
    session: CopySession, source: Repository, destination: Repository, manifest: Manifest, reference: str
) -> None:
    """Copy `manifest` (already fetched from `source`) and its tree to `destination`, as `reference`."""
    await copy_from(session, RegistryOrigin(session.registries, source), destination, manifest, reference)
