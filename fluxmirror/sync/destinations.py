"""Where a job writes: a registry repository (`sync`) or an OCI image layout (`export`).

The jobs decide what to write the same way for both (compare digests, then copy, overwrite or
skip, docs/sync.md#copy-sequence); only the writing differs, so it sits behind one small seam. A
layout destination addresses its content by the full destination reference (`registry/repo:tag`
in `org.opencontainers.image.ref.name`), so an archive says where each image is going
(docs/airgap.md#format).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from fluxmirror.errors import FluxMirrorError
from fluxmirror.helm.publish import CHART_LAYER_MEDIA_TYPE, chart_manifest, published_chart_digest, push_chart
from fluxmirror.layout import REF_NAME, LayoutDirectory, ref_descriptor
from fluxmirror.oci.blobs import resuming_read
from fluxmirror.oci.copy import CopySession, Origin, RegistryOrigin, copy_manifest
from fluxmirror.oci.digests import digest_of
from fluxmirror.oci.manifests import Descriptor, Manifest, parse_manifest
from fluxmirror.oci.mediatypes import OCI_MANIFEST
from fluxmirror.oci.pacing import Bandwidth
from fluxmirror.oci.reference import Repository

__all__ = ["Destination", "LayoutDestination", "LayoutExport", "RegistryDestination"]

_MAX_MANIFEST = 4 << 20


class Destination(Protocol):
    """One entry's destination repository, as the jobs see it."""

    repository: Repository

    async def digest_of(self, reference: str) -> str | None:
        """The digest of the manifest tagged `reference` (a tag, or a digest for referrers), or None."""
        ...

    async def write(self, source: Repository, manifest: Manifest, reference: str) -> None:
        """Copy `manifest` (read from `source`) and its tree, ending with `reference`."""
        ...

    async def chart_digest(self, tag: str) -> str | None:
        """The chart-layer digest of the chart tagged `tag`, or None."""
        ...

    async def write_chart(self, tag: str, config: bytes, chart: bytes) -> Descriptor:
        """Publish an OCI chart as `tag`; returns its manifest's descriptor."""
        ...


class RegistryDestination:
    """A registry repository: the copy and publish code of `sync`."""

    def __init__(self, session: CopySession, repository: Repository) -> None:
        self.session = session
        self.repository = repository
        self._client = session.registries.client(repository.registry)

    async def digest_of(self, reference: str) -> str | None:
        return await self._client.resolve_digest(self.repository.path, reference)

    async def write(self, source: Repository, manifest: Manifest, reference: str) -> None:
        await copy_manifest(self.session, source, self.repository, manifest, reference)

    async def chart_digest(self, tag: str) -> str | None:
        return await published_chart_digest(self._client, self.repository, tag)

    async def write_chart(self, tag: str, config: bytes, chart: bytes) -> Descriptor:
        return await push_chart(
            self._client,
            self.repository,
            tag,
            config,
            chart,
            chunk_size=self.session.chunk_size_for(self.repository.registry),
            bandwidth=self.session.bandwidth,
        )


class LayoutExport:
    """The run's layout: what it holds by reference (read once at start, kept current), and the
    writing of manifest trees into it. Blobs and manifests go in before the `index.json` entry
    that names them, so an interrupted export never lists what it does not hold."""

    def __init__(
        self, layout: LayoutDirectory, far_side: frozenset[str] = frozenset(), *, defer_blobs: bool = False
    ) -> None:
        self.layout = layout
        self.far_side = far_side  # digests the base receipts vouch for: not written (docs/airgap.md#deltas)
        self.blobs_in_base = 0
        # With `defer_blobs` (a tar export: docs/airgap.md#export), blobs are not written here but
        # remembered with their origin, and stream from it straight into the tar once every
        # manifest is known: the payload crosses the disk once.
        self.deferred: dict[str, tuple[Origin, Descriptor]] | None = {} if defer_blobs else None
        self._references = {
            descriptor.annotations[REF_NAME]: descriptor.digest
            for descriptor in layout.index()
            if REF_NAME in descriptor.annotations
        }
        self.blobs_written = 0
        self.bytes_written = 0

    def digest_of(self, reference: str) -> str | None:
        return self._references.get(reference)

    def holds(self, digest: str) -> bool:
        return self.layout.blob_path(digest).is_file()

    async def write_tree(self, origin: Origin, manifest: Manifest, bandwidth: Bandwidth | None) -> None:
        """Every blob and child of `manifest`, then the manifest itself; blobs paced by the run's
        `bandwidth`."""
        if manifest.is_index:
            for child in manifest.children:
                if not self.holds(child.digest):
                    found = await origin.manifest(child.digest)
                    if found is None:
                        raise FluxMirrorError(f"manifest {origin}@{child.digest} referenced by an index is missing")
                    await self.write_tree(origin, found, bandwidth)
        else:
            await asyncio.gather(*(self._write_blob(origin, blob, bandwidth) for blob in manifest.blobs))
        await asyncio.to_thread(self.layout.write_small, manifest.digest, manifest.raw)

    async def _write_blob(self, origin: Origin, blob: Descriptor, bandwidth: Bandwidth | None) -> None:
        if blob.digest in self.far_side:
            self.blobs_in_base += 1
            return
        if self.layout.has_blob(blob.digest, blob.size):
            return
        if self.deferred is not None:
            if blob.digest in self.deferred:
                return
            self.deferred[blob.digest] = (origin, blob)
        else:
            body = resuming_read(origin.blobs(), blob, 0, blob.size, bandwidth=bandwidth)
            await self.layout.write_blob(blob.digest, blob.size, body)
        self.blobs_written += 1
        self.bytes_written += blob.size

    async def name(self, manifest: Manifest, reference: str | None) -> None:
        """List `manifest` in `index.json`: under its full reference, or untagged (a referrer)."""
        if reference is None:
            descriptor = Descriptor(media_type=manifest.media_type, digest=manifest.digest, size=manifest.size)
        else:
            descriptor = ref_descriptor(manifest, reference)
        await asyncio.to_thread(self.layout.add_to_index, [descriptor])
        if reference is not None:
            self._references[reference] = manifest.digest


class LayoutDestination:
    """One entry's destination repository inside the export's layout."""

    def __init__(self, export: LayoutExport, session: CopySession, repository: Repository) -> None:
        self.export = export
        self.session = session
        self.repository = repository

    def _reference(self, tag: str) -> str:
        return f"{self.repository}:{tag}"

    async def digest_of(self, reference: str) -> str | None:
        if ":" in reference:  # a referrer, by digest: present or not
            return reference if self.export.holds(reference) else None
        return self.export.digest_of(self._reference(reference))

    async def write(self, source: Repository, manifest: Manifest, reference: str) -> None:
        await self.export.write_tree(RegistryOrigin(self.session.registries, source), manifest, self.session.bandwidth)
        await self.export.name(manifest, None if ":" in reference else self._reference(reference))

    async def chart_digest(self, tag: str) -> str | None:
        digest = self.export.digest_of(self._reference(tag))
        if digest is None:
            return None
        raw = await asyncio.to_thread(self.export.layout.read_small, digest, _MAX_MANIFEST)
        manifest = parse_manifest(raw, OCI_MANIFEST)
        layer = next((blob for blob in manifest.blobs[1:] if blob.media_type == CHART_LAYER_MEDIA_TYPE), None)
        return layer.digest if layer is not None else None

    async def write_chart(self, tag: str, config: bytes, chart: bytes) -> Descriptor:
        layout = self.export.layout
        for data in (config, chart):
            await asyncio.to_thread(layout.write_small, digest_of(data), data)
        manifest = parse_manifest(chart_manifest(config, chart), OCI_MANIFEST)
        await asyncio.to_thread(layout.write_small, manifest.digest, manifest.raw)
        await self.export.name(manifest, self._reference(tag))
        return manifest.descriptor()
