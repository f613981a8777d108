"""The sync Report document (`report.md`) as msgspec structs.

Field order is the wire order. Optional fields default to empty and are omitted when empty
(`omit_defaults`), while `results`, `tags` and every summary count have no default, so they are
always written, as consumers rely on a stable key set.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

__all__ = [
    "API_VERSION",
    "KIND",
    "SCHEMA_URL",
    "EntryStatus",
    "Reason",
    "ReferrerResult",
    "Report",
    "ReportBody",
    "Result",
    "Status",
    "Summary",
    "TagResult",
    "Verification",
]

API_VERSION: Final = "mirror.plugin.fluxcd.io/v1beta1"
KIND: Final = "Report"
SCHEMA_URL: Final = "https://raw.githubusercontent.com/fluxcd/flux-mirror/main/docs/report-v1beta1.json"


class Status:
    """Row statuses shared by tags and referrers."""

    COPIED: Final = "copied"
    OVERWRITTEN: Final = "overwritten"
    SKIPPED: Final = "skipped"
    DRIFTED: Final = "drifted"
    WOULD_COPY: Final = "would-copy"
    WOULD_OVERWRITE: Final = "would-overwrite"
    FAILED: Final = "failed"
    ALL: Final = (COPIED, OVERWRITTEN, SKIPPED, DRIFTED, WOULD_COPY, WOULD_OVERWRITE, FAILED)


class Reason:
    """Why a row was skipped."""

    UP_TO_DATE: Final = "up-to-date"
    SIGNATURE_TOO_NEW: Final = "signature-too-new"
    ALL: Final = (UP_TO_DATE, SIGNATURE_TOO_NEW)


class EntryStatus:
    COMPLETED: Final = "completed"
    FAILED: Final = "failed"
    ALL: Final = (COMPLETED, FAILED)


def _doc(text: str, *, enum: tuple[str, ...] | None = None) -> msgspec.Meta:
    return msgspec.Meta(description=text, extra_json_schema={"enum": list(enum)} if enum else None)


class _Struct(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """Common struct options: strict keys, optional fields omitted when empty."""


class Verification(_Struct):
    provider: Annotated[str, _doc("Verification provider, e.g. cosign.")]
    issuer: Annotated[str, _doc("OIDC issuer of the signing certificate.")] = ""
    identity: Annotated[str, _doc("Subject alternative name of the signing certificate.")] = ""
    integratedTime: Annotated[str, _doc("Earliest transparency-log time, RFC 3339 UTC.")] = ""
    age: Annotated[str, _doc("Signature age (Go duration), on a signature-too-new skip.")] = ""
    minAge: Annotated[str, _doc("Configured verify.minAge (Go duration), on a signature-too-new skip.")] = ""


class ReferrerResult(_Struct):
    digest: Annotated[str, _doc("Referrer manifest digest.")]
    artifactType: Annotated[str, _doc("The referrer's artifactType, when set.")] = ""
    status: Annotated[str, _doc("Outcome.", enum=Status.ALL)] = ""
    reason: Annotated[str, _doc("Why it was skipped.", enum=Reason.ALL)] = ""


class TagResult(_Struct):
    tag: Annotated[str, _doc("Tag (artifacts) or chart version (charts).")]
    status: Annotated[str, _doc("Outcome.", enum=Status.ALL)]
    digest: Annotated[str, _doc("Source digest, when resolved.")] = ""
    reason: Annotated[str, _doc("Why it was skipped.", enum=Reason.ALL)] = ""
    error: Annotated[str, _doc("Error message of a failed row.")] = ""
    referrers: list[ReferrerResult] = []
    verification: Verification | None = None


class Result(_Struct, kw_only=True):
    source: Annotated[str, _doc("Source repository of the config entry.")]
    destination: Annotated[str, _doc("Destination repository of the config entry.")]
    status: Annotated[str, _doc("Entry outcome.", enum=EntryStatus.ALL)]
    error: Annotated[str, _doc("Plan-time error of a failed entry.")] = ""
    tags: list[TagResult]


class Summary(_Struct):
    entries: int
    copied: int
    overwritten: int
    skipped: int
    drifted: int
    wouldCopy: int
    wouldOverwrite: int
    failed: int
    exitCode: Annotated[int, _doc("Semantic exit code: 0 clean, 1 failures, 2 drift.")]


class ReportBody(_Struct):
    reporter: Annotated[str, _doc("Producer identity, flux-mirror/<version>.")]
    timestamp: Annotated[str, _doc("End of the run, RFC 3339 UTC.")]
    durationMs: Annotated[int, _doc("Run wall time in milliseconds.")]
    summary: Summary
    results: list[Result]


class Report(_Struct, kw_only=True):
    apiVersion: Annotated[str, _doc("Report API version.", enum=(API_VERSION,))]
    kind: Annotated[str, _doc("Report kind.", enum=(KIND,))]
    schema: Annotated[str, _doc("JSON Schema URL (JSON output only).")] = msgspec.field(default="", name="$schema")
    report: ReportBody
