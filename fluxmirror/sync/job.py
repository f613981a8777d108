"""One job: mirror one selected tag, with retries inside one `--timeout` deadline.

An attempt compares the source and destination digests and copies when the tag is missing (or
drifted, with overwrite). Only transient failures are retried, 200 ms × 2ⁿ apart, re-running the
whole attempt (clarifications §2.2); a digest mismatch or a refused push fails at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from fluxmirror.api.duration import Duration
from fluxmirror.api.report import Reason, Status, TagResult
from fluxmirror.errors import FluxMirrorError
from fluxmirror.oci.copy import CopySession, copy_manifest
from fluxmirror.oci.errors import OCIError
from fluxmirror.sync.logfmt import kv
from fluxmirror.sync.plan import ArtifactEntry

__all__ = ["JobSettings", "run_tag_job"]

log = logging.getLogger(__name__)
_BACKOFF_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class JobSettings:
    retries: int
    timeout: Duration
    overwrite: bool
    dry_run: bool


class _JobFailure(Exception):
    """An attempt failed; carries the source digest if it was resolved first."""

    def __init__(self, error: FluxMirrorError, digest: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.digest = digest


async def _attempt(session: CopySession, entry: ArtifactEntry, tag: str, settings: JobSettings) -> TagResult:
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
        raise _JobFailure(exc, digest) from exc


async def _resolve(lookup: Awaitable[str | None], reference: str) -> str | None:
    """A digest lookup whose failures name the reference, as `digest <ref>: <err>`."""
    try:
        return await lookup
    except OCIError as exc:
        failure = OCIError(f"digest {reference}: {exc}")
        failure.temporary = exc.temporary
        raise failure from exc


def _temporary(error: FluxMirrorError) -> bool:
    return isinstance(error, OCIError) and error.temporary


async def run_tag_job(session: CopySession, entry: ArtifactEntry, tag: str, settings: JobSettings) -> TagResult:
    """Run the job to a final row; never raises for registry failures."""
    log.info(kv("mirroring tag", src=f"{entry.source}:{tag}", dst=f"{entry.destination}:{tag}"))
    started = time.monotonic()
    result = await _with_retries(session, entry, tag, settings)
    elapsed = Duration.from_seconds(time.monotonic() - started).round_to(Duration(1_000_000))
    log.info(kv("tag done", src=f"{entry.source}:{tag}", status=result.status, elapsed=elapsed))
    return result


async def _with_retries(session: CopySession, entry: ArtifactEntry, tag: str, settings: JobSettings) -> TagResult:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.timeout.total_seconds()
    attempts = 0
    last: _JobFailure | None = None
    try:
        async with asyncio.timeout_at(deadline):
            while True:
                attempts += 1
                try:
                    return await _attempt(session, entry, tag, settings)
                except _JobFailure as failure:
                    last = failure
                if not _temporary(last.error) or attempts > settings.retries:
                    return _failed(tag, last.digest, str(last.error))
                backoff = _BACKOFF_SECONDS * 2 ** (attempts - 1)
                if loop.time() + backoff >= deadline:
                    return _exhausted(tag, attempts, last)
                log.info(
                    kv(
                        "job failed, retrying",
                        id=f"{entry.source}:{tag}",
                        attempt=attempts,
                        backoff=Duration.from_seconds(backoff),
                        err=str(last.error),
                    )
                )
                await asyncio.sleep(backoff)
    except TimeoutError:
        if last is None:
            return _failed(
                tag, "", f"mirror {entry.source}:{tag}: context deadline exceeded (--timeout {settings.timeout})"
            )
        return _exhausted(tag, attempts, last)


def _exhausted(tag: str, attempts: int, last: _JobFailure) -> TagResult:
    return _failed(
        tag, last.digest, f"attempts exhausted ({attempts}) after context deadline exceeded; last: {last.error}"
    )


def _failed(tag: str, digest: str, error: str) -> TagResult:
    return TagResult(tag=tag, status=Status.FAILED, digest=digest, error=error)
