"""Manifests as bytes plus just enough structure to walk them; the bytes are what gets copied.

A manifest is never re-serialised: its digest is the hash of the exact bytes the source served,
and those same bytes are pushed, so digests survive the mirror.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import msgspec

from fluxmirror.gocompat.strconv import go_quote
from fluxmirror.oci.errors import ManifestError
from fluxmirror.oci.mediatypes import (
    DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    is_foreign_layer,
)
from fluxmirror.oci.reference import is_digest

__all__ = ["Descriptor", "Manifest", "parse_manifest", "sha256_digest"]


class Descriptor(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    """An OCI content descriptor; unknown members are tolerated, as registries add their own."""

    media_type: str = ""
    digest: str = ""
    size: int = 0
    urls: list[str] = msgspec.field(default_factory=list)
    annotations: dict[str, str] = msgspec.field(default_factory=dict)
    artifact_type: str = ""


class _FsLayer(msgspec.Struct, rename="camel"):
    blob_sum: str = ""


class _Document(msgspec.Struct, rename="camel"):
    schema_version: int = 0
    media_type: str = ""
    artifact_type: str = ""
    config: Descriptor | None = None
    layers: list[Descriptor] = msgspec.field(default_factory=list)
    manifests: list[Descriptor] = msgspec.field(default_factory=list)
    subject: Descriptor | None = None
    annotations: dict[str, str] = msgspec.field(default_factory=dict)
    fs_layers: list[_FsLayer] = msgspec.field(default_factory=list)


_DECODER = msgspec.json.Decoder(_Document)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Manifest:
    """Exact manifest bytes with their media type and digest, and the parsed parts the copy needs."""

    raw: bytes
    media_type: str
    digest: str
    children: tuple[Descriptor, ...]
    blobs: tuple[Descriptor, ...]
    config: Descriptor | None
    subject: Descriptor | None
    artifact_type: str
    annotations: dict[str, str]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def size(self) -> int:
        return len(self.raw)

    def descriptor(self) -> Descriptor:
        return Descriptor(media_type=self.media_type, digest=self.digest, size=self.size)


def _media_type(document: _Document, content_type: str) -> str:
    declared = content_type.split(";", 1)[0].strip()
    if declared in MANIFEST_TYPES:
        return declared
    if document.media_type:
        return document.media_type
    if document.schema_version == 1:
        return DOCKER_SCHEMA1_SIGNED if declared == DOCKER_SCHEMA1_SIGNED else DOCKER_SCHEMA1
    return OCI_INDEX if document.manifests else OCI_MANIFEST


def _check_digests(document: _Document) -> None:
    """Every digest a manifest names must be one: they become URL paths of later requests."""
    named = [*document.layers, *document.manifests]
    named += [descriptor for descriptor in (document.config, document.subject) if descriptor is not None]
    digests = [descriptor.digest for descriptor in named] + [layer.blob_sum for layer in document.fs_layers]
    for digest in digests:
        if digest and not is_digest(digest):
            raise ManifestError(f"parse manifest: invalid digest {go_quote(digest)}")


def parse_manifest(raw: bytes, content_type: str = "", digest: str = "") -> Manifest:
    """Parse manifest bytes; `digest` defaults to the SHA-256 of `raw` (schema 1 passes the registry's)."""
    try:
        document = _DECODER.decode(raw)
    except msgspec.DecodeError as exc:
        raise ManifestError(f"parse manifest: {exc}") from None
    _check_digests(document)
    media_type = _media_type(document, content_type)
    blobs: list[Descriptor] = []
    if document.config is not None and document.config.digest:
        blobs.append(document.config)
    blobs.extend(layer for layer in document.layers if not is_foreign_layer(layer.media_type))
    seen: set[str] = set()
    for layer in document.fs_layers:
        if layer.blob_sum and layer.blob_sum not in seen:
            seen.add(layer.blob_sum)
            blobs.append(Descriptor(digest=layer.blob_sum))
    return Manifest(
        raw=raw,
        media_type=media_type,
        digest=digest or sha256_digest(raw),
        children=tuple(document.manifests) if media_type in INDEX_TYPES else (),
        blobs=tuple(blobs),
        config=document.config,
        subject=document.subject,
        artifact_type=document.artifact_type,
        annotations=dict(document.annotations),
    )
