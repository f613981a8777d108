"""The job of one selected artifact tag: compare digests, copy when missing (or drifted, with
overwrite), then mirror the tag's referrers when the entry asks for them.

The comparison comes first and holds none of the entry's `--concurrency` copy slots
(docs/sync.md#compare-phase): its two lookups wait only for the per-host compare limit
(`LookupLimits`), so a re-sync of thousands of up-to-date tags is bound by round trips, not by
`--concurrency`. A tag the comparison settles (up to date, drifted, a dry run's forecast) is done
there; one that must be written, or whose referrers must be mirrored, or whose comparison failed,
then takes a copy slot and runs its attempts from that comparison, each later attempt comparing
afresh. While a tag to copy waits for its slot, it fetches the source manifest its copy starts
with (docs/sync.md#manifest-lookahead).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

import msgspec

from fluxmirror.api.report import Status, TagResult
from fluxmirror.errors import FluxMirrorError
from fluxmirror.oci.copy import CopySession
from fluxmirror.oci.errors import OCIError
from fluxmirror.oci.manifests import Manifest
from fluxmirror.sync.destinations import Destination
from fluxmirror.sync.job import (
    WRITES,
    CopySlots,
    JobFailure,
    JobSettings,
    deadline_row,
    decide,
    elapsed_since,
    row,
    run_with_retries,
)
from fluxmirror.sync.logfmt import kv
from fluxmirror.sync.plan import ArtifactEntry, PlannedTag
from fluxmirror.sync.referrers import ReferrerFailure, mirror_referrers

__all__ = ["LookupLimits", "run_tag_job"]

log = logging.getLogger(__name__)


class LookupLimits:
    """At most `per_host` digest lookups at once against each registry, across the whole run."""

    def __init__(self, per_host: int) -> None:
        self._per_host = per_host
        self._limits: dict[str, asyncio.Semaphore] = {}

    def __call__(self, registry: str) -> asyncio.Semaphore:
        if registry not in self._limits:
            self._limits[registry] = asyncio.Semaphore(self._per_host)
        return self._limits[registry]


@dataclass(frozen=True, slots=True)
class _Comparison:
    digest: str  # the source's
    existing: str | None  # the destination's; None when missing
    manifest: Manifest | None = None  # the source's, when fetched while waiting for a copy slot


@dataclass(frozen=True, slots=True)
class _Tag:
    """What every step of one tag's job works with."""

    session: CopySession
    lookups: LookupLimits
    destination: Destination
    entry: ArtifactEntry
    planned: PlannedTag
    settings: JobSettings


async def run_tag_job(
    session: CopySession,
    lookups: LookupLimits,
    destination: Destination,
    entry: ArtifactEntry,
    planned: PlannedTag,
    settings: JobSettings,
    slots: CopySlots,
) -> TagResult:
    """Run the job to a final row, holding one of the entry's copy `slots` only when the
    comparison does not settle it; never raises for registry failures."""
    tag, job = planned.tag, _Tag(session, lookups, destination, entry, planned, settings)
    job_id = f"{entry.source}:{tag}"
    log.info(kv("mirroring tag", src=job_id, dst=f"{entry.destination}:{tag}"))
    started = time.monotonic()
    try:
        async with asyncio.timeout(settings.timeout.total_seconds()):  # the comparison alone, as a first attempt
            first = await _first_comparison(job)
    except TimeoutError:
        result = deadline_row(tag, job_id, settings)
    else:
        if isinstance(first, _Comparison) and not _needs_slot(job, first):
            result = await _attempt(job, first)
        else:
            first = await _take_slot(job, first, slots)
            try:
                result = await run_with_retries(_attempts(job, first), row_id=tag, job_id=job_id, settings=settings)
            finally:
                slots.copying.release()
    if result.status != Status.FAILED:  # a failure has its row and its live line; the log says only successes
        log.info(kv("tag done", src=job_id, status=result.status, elapsed=elapsed_since(started)))
    if planned.verification is not None:  # kept even when the copy failed: the signature was verified
        result = msgspec.structs.replace(result, verification=planned.verification)
    return result


def _needs_slot(job: _Tag, comparison: _Comparison) -> bool:
    """Whether the rest of the job writes anything: a copy, or the referrer step."""
    return decide(comparison.digest, comparison.existing, job.settings) in WRITES or job.planned.referrers is not None


async def _take_slot(job: _Tag, first: _Comparison | JobFailure, slots: CopySlots) -> _Comparison | JobFailure:
    """Acquire a copy slot. While waiting for it, in one of the entry's lookahead places, fetch the
    source manifest that a copy starts with, so the copy does not begin with that round trip; the
    place is given up once the slot is taken, so at most `--concurrency` manifests wait."""
    async with slots.ahead:
        first = await _with_manifest(job, first)
        await slots.copying.acquire()
    return first


async def _with_manifest(job: _Tag, first: _Comparison | JobFailure) -> _Comparison | JobFailure:
    """The comparison with the source manifest, when it says to copy. Fetched as a lookup (the
    source's compare limit, the job's `--timeout`); if that fails, the copy's own attempt asks
    again and reports what it gets, so nothing is lost but the head start."""
    if not isinstance(first, _Comparison) or decide(first.digest, first.existing, job.settings) not in WRITES:
        return first
    try:
        async with (
            asyncio.timeout(job.settings.timeout.total_seconds()),
            job.lookups(job.entry.source_repository.registry),
        ):
            manifest = await _source_manifest(job, first.digest)
    except (FluxMirrorError, TimeoutError) as exc:
        log.info(kv("manifest lookahead failed", src=f"{job.entry.source}@{first.digest}", err=exc))
        return first
    return first if manifest is None else _Comparison(first.digest, first.existing, manifest)


async def _source_manifest(job: _Tag, digest: str) -> Manifest | None:
    source = job.entry.source_repository
    return await job.session.registries.client(source.registry).get_manifest(source.path, digest)


async def _first_comparison(job: _Tag) -> _Comparison | JobFailure:
    try:
        return await _compare(job)
    except JobFailure as failure:  # the first attempt's failure: the job's retries take it from here
        return failure


def _attempts(job: _Tag, first: _Comparison | JobFailure) -> Callable[[], Awaitable[TagResult]]:
    """The job's attempts: the first continues from the comparison already made, the others compare again."""
    pending = [first]

    async def attempt() -> TagResult:
        comparison = pending.pop() if pending else await _compare(job)
        if isinstance(comparison, JobFailure):
            raise comparison
        return await _attempt(job, comparison)

    return attempt


async def _attempt(job: _Tag, comparison: _Comparison) -> TagResult:
    tag_row = await _mirror_tag(job, comparison)
    if job.planned.referrers is None:
        return tag_row
    try:
        referrers = await mirror_referrers(job.session, job.destination, job.entry, job.planned.referrers, job.settings)
    except ReferrerFailure as failure:
        raise JobFailure(failure.error, tag_row.digest, failure.rows) from failure
    return msgspec.structs.replace(tag_row, referrers=referrers)


async def _mirror_tag(job: _Tag, comparison: _Comparison) -> TagResult:
    entry, tag = job.entry, job.planned.tag
    source = entry.source_repository
    digest, existing = comparison.digest, comparison.existing
    status = decide(digest, existing, job.settings)
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
            manifest = comparison.manifest or await _source_manifest(job, digest)
            if manifest is None:
                raise OCIError(f"get manifest {entry.source}@{digest}: MANIFEST_UNKNOWN: manifest unknown")
            await job.destination.write(source, manifest, tag)
        except FluxMirrorError as exc:
            copy = f"copy {entry.source}:{tag} -> {entry.destination}:{tag}"
            raise JobFailure(exc.prefixed(copy), digest) from exc
    return row(tag, status, digest)


async def _compare(job: _Tag) -> _Comparison:
    """The source digest and the destination's. Both lookups at once: an up-to-date tag then costs
    one round trip, not two. A verified tag's source digest is the one its signature covers,
    resolved at plan time: it is not asked again, and the tag cannot be moved in between. A row
    that failed here has no digest, as in the reference."""
    entry, tag, verified = job.entry, job.planned.tag, job.planned.digest
    source, destination = entry.source_repository, job.destination
    client = job.session.registries.client(source.registry)
    found, existing = await asyncio.gather(
        _known(verified)
        if verified
        else _resolve(
            job.lookups(source.registry), partial(client.resolve_digest, source.path, tag), f"{entry.source}:{tag}"
        ),
        _resolve(
            job.lookups(destination.repository.registry),
            partial(destination.digest_of, tag),
            f"{entry.destination}:{tag}",
        ),
        return_exceptions=True,
    )
    try:
        if isinstance(found, BaseException):
            raise found
        if not found:
            raise OCIError(f"digest {entry.source}:{tag}: MANIFEST_UNKNOWN: manifest unknown")
        if isinstance(existing, BaseException):
            raise existing
    except FluxMirrorError as exc:
        raise JobFailure(exc, "") from exc
    return _Comparison(found, existing)


async def _known(digest: str) -> str:
    return digest


async def _resolve(limit: asyncio.Semaphore, lookup: Callable[[], Awaitable[str | None]], reference: str) -> str | None:
    """A digest lookup, `limit` bounding those at once against its host, whose failures name the
    reference, as `digest <ref>: <err>`."""
    async with limit:
        try:
            return await lookup()
        except FluxMirrorError as exc:
            raise exc.prefixed(f"digest {reference}") from exc
