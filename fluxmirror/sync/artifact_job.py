"""The job of one selected artifact tag: compare digests, copy when missing (or drifted, with
overwrite), then mirror the tag's referrers when the entry asks for them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable

import msgspec

from fluxmirror.api.report import Status, TagResult
from fluxmirror.errors import FluxMirrorError
from fluxmirror.oci.copy import CopySession
from fluxmirror.oci.errors import OCIError
from fluxmirror.sync.destinations import Destination
from fluxmirror.sync.job import WRITES, JobFailure, JobSettings, decide, elapsed_since, row, run_with_retries
from fluxmirror.sync.logfmt import kv
from fluxmirror.sync.plan import ArtifactEntry, PlannedTag
from fluxmirror.sync.referrers import ReferrerFailure, mirror_referrers

__all__ = ["run_tag_job"]

log = logging.getLogger(__name__)


async def run_tag_job(
    session: CopySession, destination: Destination, entry: ArtifactEntry, planned: PlannedTag, settings: JobSettings
) -> TagResult:
    """Run the job to a final row; never raises for registry failures."""
    tag = planned.tag
    log.info(kv("mirroring tag", src=f"{entry.source}:{tag}", dst=f"{entry.destination}:{tag}"))
    started = time.monotonic()
    result = await run_with_retries(
        lambda: _attempt(session, destination, entry, planned, settings),
        row_id=tag,
        job_id=f"{entry.source}:{tag}",
        settings=settings,
    )
    if result.status != Status.FAILED:  # a failure has its row and its live line; the log says only successes
        log.info(kv("tag done", src=f"{entry.source}:{tag}", status=result.status, elapsed=elapsed_since(started)))
    if planned.verification is not None:  # kept even when the copy failed: the signature was verified
        result = msgspec.structs.replace(result, verification=planned.verification)
    return result


async def _attempt(
    session: CopySession, destination: Destination, entry: ArtifactEntry, planned: PlannedTag, settings: JobSettings
) -> TagResult:
    tag_row = await _mirror_tag(session, destination, entry, planned, settings)
    if planned.referrers is None:
        return tag_row
    try:
        referrers = await mirror_referrers(session, destination, entry, planned.referrers, settings)
    except ReferrerFailure as failure:
        raise JobFailure(failure.error, tag_row.digest, failure.rows) from failure
    return msgspec.structs.replace(tag_row, referrers=referrers)


async def _mirror_tag(
    session: CopySession, destination: Destination, entry: ArtifactEntry, planned: PlannedTag, settings: JobSettings
) -> TagResult:
    source = entry.source_repository
    source_client = session.registries.client(source.registry)
    tag = planned.tag
    try:
        digest, existing = await _compare(session, destination, entry, tag, planned.digest)
    except FluxMirrorError as exc:  # a row that failed while comparing has no digest, as in the reference
        raise JobFailure(exc, "") from exc
    status = decide(digest, existing, settings)
    if status == Status.DRIFTED:
        log.info(
            kv(
                "destination tag drifted from source; skipping (overwrite=false)",
                src=f"{entry.source}:{tag}",
                src_digest=digest,
                dst=f"{entry.destination}:{tag}",
                dst_digest=existing,
            )
        )
    if status in WRITES:
        try:
            manifest = await source_client.get_manifest(source.path, digest)
            if manifest is None:
                raise OCIError(f"get manifest {entry.source}@{digest}: MANIFEST_UNKNOWN: manifest unknown")
            await destination.write(source, manifest, tag)
        except FluxMirrorError as exc:
            copy = f"copy {entry.source}:{tag} -> {entry.destination}:{tag}"
            raise JobFailure(exc.prefixed(copy), digest) from exc
    return row(tag, status, digest)


async def _compare(
    session: CopySession, destination: Destination, entry: ArtifactEntry, tag: str, verified: str
) -> tuple[str, str | None]:
    """The source digest and the destination's (None: missing). Both lookups at once: an up-to-date
    tag then costs one round trip, not two. A verified tag's source digest is the one its signature
    covers, resolved at plan time: it is not asked again, and the tag cannot be moved in between."""
    source = entry.source_repository
    found, existing = await asyncio.gather(
        _known(verified)
        if verified
        else _resolve(
            session.registries.client(source.registry).resolve_digest(source.path, tag), f"{entry.source}:{tag}"
        ),
        _resolve(destination.digest_of(tag), f"{entry.destination}:{tag}"),
        return_exceptions=True,
    )
    if isinstance(found, BaseException):
        raise found
    if not found:
        raise OCIError(f"digest {entry.source}:{tag}: MANIFEST_UNKNOWN: manifest unknown")
    if isinstance(existing, BaseException):
        raise existing
    return found, existing


async def _known(digest: str) -> str:
    return digest


async def _resolve(lookup: Awaitable[str | None], reference: str) -> str | None:
    """A digest lookup whose failures name the reference, as `digest <ref>: <err>`."""
    try:
        return await lookup
    except FluxMirrorError as exc:
        raise exc.prefixed(f"digest {reference}") from exc
