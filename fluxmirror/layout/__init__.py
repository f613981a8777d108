"""OCI image layouts, as a directory or a tar of one: the storage of air-gap export and import.

A pure storage library: no registry I/O, nothing printed. `export` writes through it and `import`
reads blobs out of it with the same `BlobSource` protocol the registry copy uses
(docs/development.md#layering: it imports only `oci`).
"""

from __future__ import annotations

from fluxmirror.layout.directory import LayoutBlobSource, LayoutDirectory
from fluxmirror.layout.errors import LayoutError
from fluxmirror.layout.names import CONTAINERD_NAME, REF_NAME, ref_descriptor
from fluxmirror.layout.tarball import Member, TarBlobSource, TarLayout, TarStream, TarWriter

__all__ = [
    "CONTAINERD_NAME",
    "REF_NAME",
    "LayoutBlobSource",
    "LayoutDirectory",
    "LayoutError",
    "Member",
    "TarBlobSource",
    "TarLayout",
    "TarStream",
    "TarWriter",
    "ref_descriptor",
]
