"""Receipts: what the far side of an air gap has, so the next export ships only what is new
(docs/airgap.md#deltas).

A receipt is a tiny layout tar (`oci-layout`, the manifests, `index.json`, no other blob): the
manifests an import found or pushed (`import --receipt-out`), or those an export shipped
(`export --receipt-out`). `export --base RECEIPT` counts every blob and child manifest those
manifests name as present on the far side and writes only the rest; manifests are always written,
so every archive describes itself. There are no sequence numbers: an archive names its bases' index
digests (annotation `dev.fluxmirror.archive.base`), and an import that meets a blob that is neither
in the archive nor at the destination fails only the tags that need it, naming that base.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from fluxmirror.layout import TarLayout, TarWriter
from fluxmirror.layout.names import blob_name
from fluxmirror.oci.manifests import Descriptor, parse_manifest

__all__ = ["BASE_ANNOTATION", "Base", "ManifestReader", "manifest_tree", "read_receipt", "write_receipt"]

BASE_ANNOTATION: Final = "dev.fluxmirror.archive.base"
_MAX_MANIFEST: Final = 4 << 20


class ManifestReader(Protocol):
    def read_small(self, digest: str, limit: int) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Base:
    """A receipt: its index digest, and every digest (manifests, configs, layers) it vouches for."""

    index_digest: str
    digests: frozenset[str]


def manifest_tree(reader: ManifestReader, roots: Iterable[Descriptor]) -> tuple[list[tuple[str, bytes]], set[str]]:
    """The manifests under `roots` (bytes, each once, parents before children) and every digest
    they name, the manifests' own included."""
    manifests: list[tuple[str, bytes]] = []
    named: set[str] = set()

    def visit(digest: str, media_type: str) -> None:
        if digest in named:
            return
        raw = reader.read_small(digest, _MAX_MANIFEST)
        manifest = parse_manifest(raw, media_type, digest=digest)
        manifests.append((digest, raw))
        named.add(digest)
        for child in manifest.children:
            visit(child.digest, child.media_type)
        named.update(blob.digest for blob in manifest.blobs)

    for root in roots:
        visit(root.digest, root.media_type)
    return manifests, named


def read_receipt(path: str) -> Base:
    """The receipt at `path` (a layout tar of manifests)."""
    with TarLayout(Path(path)) as receipt:
        index = receipt.index_bytes()
        _, named = manifest_tree(receipt, receipt.index())
    return Base("sha256:" + hashlib.sha256(index).hexdigest(), frozenset(named))


def write_receipt(path: Path, reader: ManifestReader, entries: Sequence[Descriptor]) -> None:
    """A receipt of `entries` (and the manifests under them), through `.part`, renamed when complete."""
    manifests, _ = manifest_tree(reader, entries)
    part = path.with_name(path.name + ".part")
    with part.open("wb") as stream:
        writer = TarWriter(stream)
        for digest, raw in manifests:
            writer.add_bytes(blob_name(digest), raw)
        writer.add_index(entries)
        writer.close()
    part.replace(path)
