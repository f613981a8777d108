"""Running one job to a final row: retries inside one `--timeout` deadline (docs/sync.md#job-retries).

A job is one selected tag or chart version. An attempt either returns the row or raises
`JobFailure`; as in the reference, any failure is tried again, 200 ms × 2ⁿ apart, each retry
re-running the whole attempt, until the attempts (`--retries` + 1) are used up. Only the job's
deadline and the run's cancellation (a signal, docs/sync.md#signals) end it early. Whether a
single request is worth repeating is the HTTP client's business (transient statuses only); what
an attempt does lives with its kind (`artifact_job`, `chart_job`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fluxmirror.api.duration import Duration
from fluxmirror.api.report import Reason, ReferrerResult, Status, TagResult
from fluxmirror.errors import FluxMirrorError
from fluxmirror.sync.logfmt import kv
from fluxmirror.sync.options import SyncOptions

__all__ = [
    "CANCELED",
    "WRITES",
    "CopySlots",
    "JobFailure",
    "JobSettings",
    "canceled_row",
    "deadline_row",
    "decide",
    "elapsed_since",
    "reason_for",
    "row",
    "run_with_retries",
]

log = logging.getLogger(__name__)
_BACKOFF_SECONDS = 0.2
CANCELED = "context canceled"
"""Go's `context.Canceled` text: what a job or plan stopped by a signal reports."""


@dataclass(frozen=True, slots=True)
class CopySlots:
    """An entry's `--concurrency` copy slots (`copying`), and as many places (`ahead`) for jobs
    waiting for one to fetch the source manifest their copy starts with, so that a copy begins with
    its blobs rather than a round trip, and no more than `--concurrency` fetched manifests wait in
    memory (docs/sync.md#manifest-lookahead)."""

    copying: asyncio.Semaphore
    ahead: asyncio.Semaphore

    @classmethod
    def of(cls, concurrency: int) -> CopySlots:
        return cls(asyncio.Semaphore(concurrency), asyncio.Semaphore(concurrency))


@dataclass(frozen=True, slots=True)
class JobSettings:
    retries: int
    timeout: Duration
    overwrite: bool
    dry_run: bool
    on_retry: Callable[[], None] | None = None  # told of each retry, for the run's metrics

    @classmethod
    def of(cls, options: SyncOptions, *, overwrite: bool = False) -> JobSettings:
        """The settings of one entry's jobs: `overwrite` is the entry's own (`--overwrite` forces it)."""
        return cls(
            retries=options.retries,
            timeout=options.timeout,
            overwrite=options.overwrite or overwrite,
            dry_run=options.dry_run,
            on_retry=None if options.observer is None else options.observer.job_retrying,
        )


# The outcomes that mean "write it now"; every other outcome of `decide` leaves the destination alone.
WRITES = frozenset({Status.COPIED, Status.OVERWRITTEN})


def decide(source_digest: str, destination_digest: str | None, settings: JobSettings) -> str:
    """The row status a comparison leads to (config.md "Overwrite and drift behavior"), shared by
    tags, referrers and chart versions: a missing destination (None) is copied, an equal one
    skipped, a different one drifted unless overwriting; a dry run forecasts the write instead."""
    if destination_digest == source_digest:
        return Status.SKIPPED
    if destination_digest is not None and not settings.overwrite:
        return Status.DRIFTED
    if settings.dry_run:
        return Status.WOULD_COPY if destination_digest is None else Status.WOULD_OVERWRITE
    return Status.COPIED if destination_digest is None else Status.OVERWRITTEN


def reason_for(status: str) -> str:
    """A row's reason: a comparison only ever skips because the destination is up to date."""
    return Reason.UP_TO_DATE if status == Status.SKIPPED else ""


def row(ident: str, status: str, digest: str) -> TagResult:
    """A finished tag or chart-version row."""
    return TagResult(tag=ident, status=status, digest=digest, reason=reason_for(status))


class JobFailure(Exception):
    """An attempt failed; carries what the failed row keeps: the source digest and referrer rows so far."""

    def __init__(self, error: FluxMirrorError, digest: str, referrers: list[ReferrerResult] | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.digest = digest
        self.referrers = referrers or []

    def row(self, ident: str, error: str) -> TagResult:
        return TagResult(tag=ident, status=Status.FAILED, digest=self.digest, error=error, referrers=self.referrers)


def elapsed_since(started: float) -> Duration:
    """Job wall time as the verbose log prints it, rounded to milliseconds."""
    return Duration.from_seconds(time.monotonic() - started).round_to(Duration(1_000_000))


async def run_with_retries(
    attempt: Callable[[], Awaitable[TagResult]], *, row_id: str, job_id: str, settings: JobSettings
) -> TagResult:
    """Run `attempt` until it succeeds, its attempts are used up, the deadline passes or the run is
    cancelled; never raises for job failures.

    `row_id` is the row's tag or chart version; `job_id` names the job in logs and in deadline and
    cancellation errors. A job is only ever cancelled by the run's cancellation (the engine's
    `Cancellation`, on a signal), so a `CancelledError` here ends the job as a failed row too.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.timeout.total_seconds()
    attempts = 0
    last: JobFailure | None = None
    try:
        async with asyncio.timeout_at(deadline):
            while True:
                attempts += 1
                try:
                    return await attempt()
                except JobFailure as failure:
                    last = failure
                if attempts > settings.retries:
                    return last.row(row_id, str(last.error))
                backoff = _BACKOFF_SECONDS * 2 ** (attempts - 1)
                if loop.time() + backoff >= deadline:
                    return _exhausted(row_id, attempts, last)
                log.info(
                    kv(
                        "job failed, retrying",
                        id=job_id,
                        attempt=attempts,
                        backoff=Duration.from_seconds(backoff),
                        err=str(last.error),
                    )
                )
                await asyncio.sleep(backoff)
                if settings.on_retry is not None:
                    settings.on_retry()
    except TimeoutError:
        if last is None:
            return deadline_row(row_id, job_id, settings)
        return _exhausted(row_id, attempts, last)
    except asyncio.CancelledError:
        if last is None:
            return canceled_row(row_id, job_id)
        return _exhausted(row_id, attempts, last, CANCELED)


def deadline_row(row_id: str, job_id: str, settings: JobSettings) -> TagResult:
    """The row of a job whose deadline passed in its first attempt."""
    return TagResult(
        tag=row_id,
        status=Status.FAILED,
        error=f"mirror {job_id}: context deadline exceeded (--timeout {settings.timeout})",
    )


def canceled_row(row_id: str, job_id: str) -> TagResult:
    """The row of a job the run's cancellation stopped in its first attempt, or before it started."""
    return TagResult(tag=row_id, status=Status.FAILED, error=f"mirror {job_id}: {CANCELED}")


def _exhausted(row_id: str, attempts: int, last: JobFailure, cause: str = "context deadline exceeded") -> TagResult:
    return last.row(row_id, f"attempts exhausted ({attempts}) after {cause}; last: {last.error}")
