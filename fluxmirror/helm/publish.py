"""A chart as a Helm OCI artifact: the exact manifest Helm writes, its push, and drift inspection.

The manifest is built from fixed parts with no timestamp annotation, so the same chart archive
always gives the same manifest digest (docs/sync.md#chart-manifest). Drift compares chart-layer digests,
not manifest digests, so a chart that `helm push` published (with its creation annotation) is
still recognised as the same chart (docs/sync.md#chart-drift).
"""

from __future__ import annotations

from typing import Final

from fluxmirror.errors import FluxMirrorError
from fluxmirror.oci.blobs import BytesSource, transfer_blob
from fluxmirror.oci.client import RegistryClient
from fluxmirror.oci.errors import OCIError
from fluxmirror.oci.manifests import Descriptor, parse_manifest, sha256_digest
from fluxmirror.oci.mediatypes import OCI_MANIFEST
from fluxmirror.oci.pacing import Bandwidth
from fluxmirror.oci.reference import Repository

__all__ = [
    "CHART_LAYER_MEDIA_TYPE",
    "CONFIG_MEDIA_TYPE",
    "chart_manifest",
    "destination_tag",
    "published_chart_digest",
    "push_chart",
]

CONFIG_MEDIA_TYPE: Final = "application/vnd.cncf.helm.config.v1+json"
CHART_LAYER_MEDIA_TYPE: Final = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


def destination_tag(version: str) -> str:
    """OCI tags cannot hold `+`; Helm writes build metadata with `_` instead."""
    return version.replace("+", "_")


def chart_manifest(config: bytes, chart: bytes) -> bytes:
    """The manifest bytes, exactly as Helm lays them out."""
    return (
        f'{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",'
        f'"config":{{"mediaType":"{CONFIG_MEDIA_TYPE}","digest":"{sha256_digest(config)}","size":{len(config)}}},'
        f'"layers":[{{"mediaType":"{CHART_LAYER_MEDIA_TYPE}","digest":"{sha256_digest(chart)}","size":{len(chart)}}}]}}'
    ).encode()


async def published_chart_digest(client: RegistryClient, repository: Repository, tag: str) -> str | None:
    """The chart-layer digest currently tagged `tag`, or None when the tag does not exist."""
    reference = f"{repository}:{tag}"
    try:
        manifest = await client.get_manifest(repository.path, tag)
    except FluxMirrorError as exc:
        raise exc.prefixed(f"get manifest {reference}") from exc
    if manifest is None:
        return None
    config_type = manifest.config.media_type if manifest.config is not None else ""
    if config_type != CONFIG_MEDIA_TYPE:
        raise OCIError(f'inspect {reference}: not a helm chart (config mediaType "{config_type}")')
    layer = next((blob for blob in manifest.blobs[1:] if blob.media_type == CHART_LAYER_MEDIA_TYPE), None)
    if layer is None:
        raise OCIError(f"inspect {reference}: no helm chart content layer (mediaType {CHART_LAYER_MEDIA_TYPE})")
    return layer.digest


async def push_chart(
    client: RegistryClient,
    repository: Repository,
    tag: str,
    config: bytes,
    chart: bytes,
    *,
    chunk_size: int = 0,
    bandwidth: Bandwidth | None = None,
) -> Descriptor:
    """Push config blob, chart blob (each skipped when present, each body paced by `bandwidth`),
    then the manifest; returns its descriptor.

    A failure is named by the push that failed: `push helm config to <ref>: …`,
    `push helm chart layer to <ref>: …`, `push helm manifest to <ref>: …`."""
    reference = f"{repository}:{tag}"
    for data, media_type, part in (
        (config, CONFIG_MEDIA_TYPE, "config"),
        (chart, CHART_LAYER_MEDIA_TYPE, "chart layer"),
    ):
        blob = Descriptor(media_type=media_type, digest=sha256_digest(data), size=len(data))
        try:
            await transfer_blob(
                BytesSource(data), client, repository.path, blob, chunk_size=chunk_size, bandwidth=bandwidth
            )
        except FluxMirrorError as exc:
            raise exc.prefixed(f"push helm {part} to {reference}") from exc
    manifest = parse_manifest(chart_manifest(config, chart), OCI_MANIFEST)
    try:
        await client.put_manifest(repository.path, tag, manifest)
    except FluxMirrorError as exc:
        raise exc.prefixed(f"push helm manifest to {reference}") from exc
    return manifest.descriptor()
