"""Where content lives inside an OCI image layout, and the `index.json` document.

A layout addresses a blob as `blobs/<algorithm>/<encoded>` (image-spec `image-layout.md`); the
name is derived from the digest, and a name read back from an archive is accepted only if it is a
valid digest by the OCI grammar (with the fixed encodings of sha256, sha512 and blake3), so a
member can never address a path outside `blobs/`. The directory and the tar writer encode
`index.json` the same way, so the same entries give the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import msgspec

from fluxmirror.layout.errors import LayoutError
from fluxmirror.oci.manifests import Descriptor, Manifest
from fluxmirror.oci.mediatypes import OCI_INDEX
from fluxmirror.oci.reference import is_digest

__all__ = [
    "CONTAINERD_NAME",
    "INDEX_JSON",
    "LAYOUT_FILE",
    "LAYOUT_VERSION",
    "REF_NAME",
    "blob_name",
    "decode_index",
    "decode_version",
    "digest_of_name",
    "encode_index",
    "index_descriptors",
    "merge_entries",
    "ref_descriptor",
]

REF_NAME: Final = "org.opencontainers.image.ref.name"
CONTAINERD_NAME: Final = "io.containerd.image.name"
LAYOUT_FILE: Final = "oci-layout"
INDEX_JSON: Final = "index.json"
LAYOUT_VERSION: Final = b'{"imageLayoutVersion":"1.0.0"}'


def blob_name(digest: str) -> str:
    """`blobs/<algorithm>/<encoded>` for a valid digest; anything else is a LayoutError."""
    if not is_digest(digest):
        raise LayoutError(f"invalid digest {digest!r}")
    algorithm, _, encoded = digest.partition(":")
    return f"blobs/{algorithm}/{encoded}"


def digest_of_name(name: str) -> str | None:
    """The digest a `blobs/<algorithm>/<encoded>` member name addresses, or None if it is no blob name."""
    parts = name.split("/")
    if len(parts) != 3 or parts[0] != "blobs":
        return None
    digest = f"{parts[1]}:{parts[2]}"
    return digest if is_digest(digest) else None


def ref_descriptor(manifest: Manifest, reference: str) -> Descriptor:
    """The `index.json` entry for `manifest` under its full destination reference
    (`registry/repo:tag`), in both the OCI and the containerd annotation so skopeo, umoci and
    `ctr import` all find it."""
    return Descriptor(
        media_type=manifest.media_type,
        digest=manifest.digest,
        size=manifest.size,
        annotations={REF_NAME: reference, CONTAINERD_NAME: reference},
    )


def decode_version(raw: bytes) -> str:
    """The `imageLayoutVersion` of an `oci-layout` file ("" when it has none)."""
    try:
        document = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return ""
    version = document.get("imageLayoutVersion") if isinstance(document, dict) else None
    return version if isinstance(version, str) else ""


def decode_index(raw: bytes, where: str) -> dict[str, Any]:
    """`index.json` as a plain document, entries kept whole (platforms and fields fluxmirror does
    not model survive a rewrite); `where` names the layout in errors."""
    try:
        document = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise LayoutError(f"{where}: index.json is not JSON: {exc}") from None
    entries = document.get("manifests") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise LayoutError(f"{where}: index.json is not an image index")
    index: dict[str, Any] = document
    return index


def index_descriptors(document: dict[str, Any], where: str) -> list[Descriptor]:
    """The descriptors of an `index.json` document, annotations kept, each digest checked."""
    try:
        descriptors = msgspec.convert(document["manifests"], list[Descriptor])
    except msgspec.ValidationError as exc:
        raise LayoutError(f"{where}: index.json: {exc}") from None
    for descriptor in descriptors:
        if not is_digest(descriptor.digest):
            raise LayoutError(f"{where}: index.json names an invalid digest {descriptor.digest!r}")
    return descriptors


def encode_index(entries: Iterable[Descriptor | dict[str, Any]], annotations: dict[str, str] | None = None) -> bytes:
    """`index.json` bytes: an OCI image index holding `entries` in the order given."""
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(entries)}
    if annotations:
        document["annotations"] = annotations
    return msgspec.json.encode(document)


def _key(entry: dict[str, Any]) -> tuple[str, str]:
    annotations = entry.get("annotations")
    name = annotations.get(REF_NAME) if isinstance(annotations, dict) else None
    return ("ref", str(name)) if name is not None else ("digest", str(entry.get("digest", "")))


def merge_entries(existing: Sequence[dict[str, Any]], added: Iterable[Descriptor]) -> list[dict[str, Any]]:
    """`existing` with `added` merged in: an entry replaces the one with the same `ref.name` (in
    place), an untagged entry replaces the untagged one with the same digest, anything else is
    appended. Later duplicates win, and no two entries share a key afterwards."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in existing:
        merged[_key(entry)] = entry
    for descriptor in added:
        entry = msgspec.to_builtins(descriptor)
        merged[_key(entry)] = entry
    return list(merged.values())
