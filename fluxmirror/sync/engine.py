"""The sync executor: entries one after another, each entry's jobs concurrently.

Rows come back in plan order (highest tag first) whatever order jobs finish in; live events go to
the `Progress` as they happen. A failed plan fails only its own entry.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fluxmirror.api.config import Config
from fluxmirror.api.duration import Duration
from fluxmirror.api.report import EntryStatus, Result, Status, TagResult
from fluxmirror.auth.credentials import CredentialSource
from fluxmirror.oci.client import Registries
from fluxmirror.oci.copy import CopySession
from fluxmirror.oci.transport import Transport
from fluxmirror.sync.artifact_job import run_tag_job
from fluxmirror.sync.events import JobOutcome, Progress
from fluxmirror.sync.job import JobSettings
from fluxmirror.sync.logfmt import kv
from fluxmirror.sync.options import SyncOptions
from fluxmirror.sync.plan import ArtifactEntry, PlanError, PlannedTag, plan_artifact

__all__ = ["run_sync"]

log = logging.getLogger(__name__)
_KIB = 1024


def _copy_session(config: Config, registries: Registries, options: SyncOptions) -> CopySession:
    chunk_sizes = {host.host.strip(): host.maxChunkSize * _KIB for host in config.hosts if host.maxChunkSize > 0}
    return CopySession(
        registries,
        chunk_size_for=lambda registry: chunk_sizes.get(registry, 0),
        blob_parallelism=options.concurrency if options.concurrency > 1 else 4,
    )


async def run_sync(
    config: Config, options: SyncOptions, credentials: CredentialSource, progress: Progress
) -> list[Result]:
    """Mirror every entry of `config`; returns one report result per entry, in config order."""
    entries = [ArtifactEntry.of(spec) for spec in config.artifacts]
    log.info(
        kv(
            "sync started",
            entries=len(entries),
            concurrency=options.concurrency,
            retries=options.retries,
            timeout=options.timeout,
        )
    )
    progress.start(len(entries))
    results: list[Result] = []
    connections = max(64, options.concurrency * 8)
    async with Transport(insecure=options.insecure, max_connections=connections) as transport:
        session = _copy_session(config, Registries(transport, credentials), options)
        for entry in entries:
            results.append(await _run_entry(entry, session, options, progress))
            progress.entry_finished()
    return results


async def _run_entry(entry: ArtifactEntry, session: CopySession, options: SyncOptions, progress: Progress) -> Result:
    started = time.monotonic()
    try:
        tags = await plan_artifact(entry, session.registries, options.concurrency)
    except PlanError as exc:
        log.info(kv("plan failed", entry=entry.source, err=str(exc)))
        progress.plan_failed(entry.source, str(exc))
        return Result(
            source=entry.source, destination=entry.destination, status=EntryStatus.FAILED, error=str(exc), tags=[]
        )
    log.info(kv("entry started", source=entry.source, jobs=len(tags)))
    settings = JobSettings(
        retries=options.retries,
        timeout=options.timeout,
        overwrite=options.overwrite or entry.spec.overwrite,
        dry_run=options.dry_run,
    )
    limit = asyncio.Semaphore(options.concurrency)

    async def job(planned: PlannedTag) -> TagResult:
        async with limit:
            row = await run_tag_job(session, entry, planned, settings)
        progress.job_finished(
            JobOutcome(
                entry=entry.source,
                ident=row.tag,
                status=row.status,
                destination=f"{entry.destination}:{row.tag}",
                error=row.error,
            )
        )
        return row

    rows = list(await asyncio.gather(*(job(planned) for planned in tags)))
    wall = Duration.from_seconds(time.monotonic() - started).round_to(Duration(1_000_000))
    failures = sum(1 for row in rows if row.status == Status.FAILED)
    log.info(kv("entry finished", source=entry.source, wall=wall, jobs=len(rows), failures=failures))
    return Result(source=entry.source, destination=entry.destination, status=EntryStatus.COMPLETED, tags=rows)
