"""The job of one selected artifact tag: compare digests, copy when missing (or drifted, with
overwrite), then mirror the tag's referrers when the entry asks for them."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable

import msgspec

from fluxmirror.api.report import Reason, Status, TagResult
from fluxmirror.errors import FluxMirrorError
from fluxmirror.oci.copy import CopySession, copy_manifest
from fluxmirror.oci.errors import OCIError
from fluxmirror.sync.job import JobFailure, JobSettings, elapsed_since, run_with_retries
from fluxmirror.sync.logfmt import kv
from fluxmirror.sync.plan import ArtifactEntry, PlannedTag
from fluxmirror.sync.referrers import ReferrerFailure, mirror_referrers

__all__ = ["run_tag_job"]

log = logging.getLogger(__name__)


async def run_tag_job(
    session: CopySession, entry: ArtifactEntry, planned: PlannedTag, settings: JobSettings
) -> TagResult:
    """Run the job to a final row; never raises for registry failures."""
    tag = planned.tag
    log.info(kv("mirroring tag", src=f"{entry.source}:{tag}", dst=f"{entry.destination}:{tag}"))
    started = time.monotonic()
    result = await run_with_retries(
        lambda: _attempt(session, entry, planned, settings),
        row_id=tag,
        job_id=f"{entry.source}:{tag}",
        settings=settings,
    )
    log.info(kv("tag done", src=f"{entry.source}:{tag}", status=result.status, elapsed=elapsed_since(started)))
    return result


async def _attempt(session: CopySession, entry: ArtifactEntry, planned: PlannedTag, settings: JobSettings) -> TagResult:
    row = await _mirror_tag(session, entry, planned.tag, settings)
    if planned.referrers is None:
        return row
    try:
        referrers = await mirror_referrers(session, entry, planned.referrers, settings)
    except ReferrerFailure as failure:
        raise JobFailure(failure.error, row.digest, failure.rows) from failure
    return msgspec.structs.replace(row, referrers=referrers)


async def _mirror_tag(session: CopySession, entry: ArtifactEntry, tag: str, settings: JobSettings) -> TagResult:
    source, destination = entry.source_repository, entry.destination_repository
    source_client = session.registries.client(source.registry)
    destination_client = session.registries.client(destination.registry)
    digest = ""
    try:
        digest = await _resolve(source_client.resolve_digest(source.path, tag), f"{entry.source}:{tag}") or ""
        if not digest:
            raise OCIError(f"digest {entry.source}:{tag}: MANIFEST_UNKNOWN: manifest unknown")
        existing = await _resolve(
            destination_client.resolve_digest(destination.path, tag), f"{entry.destination}:{tag}"
        )
        if existing == digest:
            return TagResult(tag=tag, status=Status.SKIPPED, digest=digest, reason=Reason.UP_TO_DATE)
        if existing is not None and not settings.overwrite:
            log.info(
                kv(
                    "destination tag drifted from source; skipping (overwrite=false)",
                    src=f"{entry.source}:{tag}",
                    src_digest=digest,
                    dst=f"{entry.destination}:{tag}",
                    dst_digest=existing,
                )
            )
            return TagResult(tag=tag, status=Status.DRIFTED, digest=digest)
        if settings.dry_run:
            status = Status.WOULD_COPY if existing is None else Status.WOULD_OVERWRITE
            return TagResult(tag=tag, status=status, digest=digest)
        manifest = await source_client.get_manifest(source.path, digest)
        if manifest is None:
            raise OCIError(f"get manifest {entry.source}@{digest}: MANIFEST_UNKNOWN: manifest unknown")
        await copy_manifest(session, source, destination, manifest, tag)
        return TagResult(tag=tag, status=Status.COPIED if existing is None else Status.OVERWRITTEN, digest=digest)
    except FluxMirrorError as exc:
        raise JobFailure(exc, digest) from exc


async def _resolve(lookup: Awaitable[str | None], reference: str) -> str | None:
    """A digest lookup whose failures name the reference, as `digest <ref>: <err>`."""
    try:
        return await lookup
    except OCIError as exc:
        raise exc.prefixed(f"digest {reference}") from exc
