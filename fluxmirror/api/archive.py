"""The reports of `export` and `import` (docs/airgap.md#report): the sync report's body, unchanged,
plus an `archive` block, in an envelope of fluxmirror's own (`fluxmirror.dev/v1alpha1`), so `jq`
scripts written for sync reports work as they are and the reference's Report schema is untouched.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from fluxmirror.api.report import ReportBody

__all__ = [
    "ARCHIVE_API_VERSION",
    "ARCHIVE_SCHEMA_URLS",
    "EXPORT_KIND",
    "IMPORT_KIND",
    "Archive",
    "ArchiveBlobs",
    "ArchiveReport",
    "ArchiveReportBody",
    "ArchiveVolume",
]

ARCHIVE_API_VERSION: Final = "fluxmirror.dev/v1alpha1"
EXPORT_KIND: Final = "ExportReport"
IMPORT_KIND: Final = "ImportReport"
ARCHIVE_SCHEMA_URLS: Final = {
    EXPORT_KIND: "https://fluxmirror.dev/schemas/export-report-v1alpha1.json",
    IMPORT_KIND: "https://fluxmirror.dev/schemas/import-report-v1alpha1.json",
}


def _doc(text: str, *, enum: tuple[str, ...] | None = None) -> msgspec.Meta:
    return msgspec.Meta(description=text, extra_json_schema={"enum": list(enum)} if enum else None)


class _Struct(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """Strict keys, optional fields omitted when empty, as in the sync report."""


class ArchiveBlobs(_Struct):
    written: Annotated[int, _doc("Blobs written to the archive (export).")] = 0
    bytesWritten: Annotated[int, _doc("Bytes of the blobs written (export).")] = 0
    inBase: Annotated[int, _doc("Blobs left out because a base receipt vouches for them (export).")] = 0
    pushed: Annotated[int, _doc("Blobs uploaded to a registry (import).")] = 0
    bytesPushed: Annotated[int, _doc("Bytes of the blobs uploaded (import).")] = 0


class ArchiveVolume(_Struct, kw_only=True):
    name: Annotated[str, _doc("Volume file name (FILE.tar.000, …).")]
    bytes: Annotated[int, _doc("Size of the volume.")]
    sha256: Annotated[str, _doc("sha256 of the volume (also in its .sha256 sidecar).")]
    blobs: Annotated[int, _doc("Blobs (configs and layers) the volume holds; every volume holds every manifest.")]


class Archive(_Struct, kw_only=True):
    path: Annotated[str, _doc("The layout directory or tar file.")]
    format: Annotated[str, _doc("`layout` (a directory) or `tar`.", enum=("layout", "tar"))]
    indexDigest: Annotated[str, _doc("sha256 of the archive's index.json: its root.")] = ""
    bytes: Annotated[int, _doc("Size of the tar file.")] = 0
    sha256: Annotated[str, _doc("sha256 of the tar file (also in its .sha256 sidecar).")] = ""
    blobs: ArchiveBlobs = msgspec.field(default_factory=ArchiveBlobs)
    verified: Annotated[bool | None, _doc("import --verify-only: whether every byte hashed as named.")] = None
    volumes: list[ArchiveVolume] = []


class ArchiveReportBody(ReportBody, kw_only=True):
    archive: Archive


class ArchiveReport(_Struct, kw_only=True):
    apiVersion: Annotated[str, _doc("Report API version.", enum=(ARCHIVE_API_VERSION,))]
    kind: Annotated[str, _doc("Report kind.", enum=(EXPORT_KIND, IMPORT_KIND))]
    schema: Annotated[str, _doc("JSON Schema URL (JSON output only).")] = msgspec.field(default="", name="$schema")
    report: ArchiveReportBody
