"""Manifest and layer media types the client reads and writes (docs/sync.md#media-types)."""

from __future__ import annotations

from typing import Final

__all__ = [
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "DOCKER_SCHEMA1",
    "DOCKER_SCHEMA1_SIGNED",
    "INDEX_TYPES",
    "MANIFEST_ACCEPT",
    "MANIFEST_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "is_foreign_layer",
]

DOCKER_SCHEMA1: Final = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED: Final = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"

MANIFEST_TYPES: Final = (
    DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED,
    DOCKER_MANIFEST,
    OCI_MANIFEST,
    DOCKER_LIST,
    OCI_INDEX,
)
MANIFEST_ACCEPT: Final = ",".join(MANIFEST_TYPES)
INDEX_TYPES: Final = frozenset({DOCKER_LIST, OCI_INDEX})

_FOREIGN_LAYERS: Final = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)


def is_foreign_layer(media_type: str) -> bool:
    """Foreign (non-distributable) layers are fetched from their `urls`, never copied."""
    return media_type in _FOREIGN_LAYERS
