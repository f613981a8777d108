"""The referrer step of a tag's job: mirror each snapshotted referrer by digest (docs/sync.md#referrer-step).

A referrer missing at the destination is always copied, overwrite or not: it is usually a
signature published after the tag was first mirrored. A referrer is addressed by digest, so it
is either present or missing; should a registry ever answer with another digest, the tag rules
apply (drifted, or overwritten with overwrite). The first failure stops the step: its row is
appended as `failed` and the error fails the tag.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fluxmirror.api.report import ReferrerResult, Status
from fluxmirror.errors import FluxMirrorError
from fluxmirror.oci.copy import CopySession
from fluxmirror.oci.errors import OCIError
from fluxmirror.oci.manifests import Descriptor
from fluxmirror.sync.destinations import Destination
from fluxmirror.sync.job import WRITES, JobSettings, decide, reason_for
from fluxmirror.sync.logfmt import kv
from fluxmirror.sync.plan import ArtifactEntry

__all__ = ["ReferrerFailure", "mirror_referrers"]

log = logging.getLogger(__name__)


class ReferrerFailure(Exception):
    """A referrer could not be mirrored; `rows` ends with its `failed` row."""

    def __init__(self, error: FluxMirrorError, rows: list[ReferrerResult]) -> None:
        super().__init__(str(error))
        self.error = error
        self.rows = rows


async def mirror_referrers(
    session: CopySession,
    destination: Destination,
    entry: ArtifactEntry,
    referrers: Sequence[Descriptor],
    settings: JobSettings,
) -> list[ReferrerResult]:
    """One row per referrer, in the source listing's order."""
    rows: list[ReferrerResult] = []
    for referrer in referrers:
        try:
            status = await _mirror_one(session, destination, entry, referrer, settings)
        except FluxMirrorError as exc:
            rows.append(
                ReferrerResult(digest=referrer.digest, artifactType=referrer.artifact_type, status=Status.FAILED)
            )
            raise ReferrerFailure(exc, rows) from exc
        rows.append(
            ReferrerResult(
                digest=referrer.digest, artifactType=referrer.artifact_type, status=status, reason=reason_for(status)
            )
        )
    return rows


async def _mirror_one(
    session: CopySession, destination: Destination, entry: ArtifactEntry, referrer: Descriptor, settings: JobSettings
) -> str:
    """The referrer's status; failures are raised already named by what failed."""
    source = entry.source_repository
    digest = referrer.digest
    try:
        existing = await destination.digest_of(digest)
    except FluxMirrorError as exc:
        raise exc.prefixed(f"compare referrer {digest}") from exc
    status = decide(digest, existing, settings)
    if status == Status.DRIFTED:
        log.info(
            kv(
                "destination referrer drifted; skipping (overwrite=false)",
                src_repo=entry.source,
                dst_repo=entry.destination,
                digest=digest,
                dst_digest=existing,
            )
        )
    if status not in WRITES:
        return status
    context = f"copy referrer {entry.source}@{digest} -> {entry.destination}@{digest}"
    try:
        manifest = await session.registries.client(source.registry).get_manifest(source.path, digest)
        if manifest is None:
            raise OCIError("MANIFEST_UNKNOWN: manifest unknown")
        await destination.write(source, manifest, digest)
    except FluxMirrorError as exc:
        raise exc.prefixed(context) from exc
    return status
