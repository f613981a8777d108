"""Turn the engine's results into exit codes, the summary, the Report envelope and verbose totals.

The CLI, the text summary line, the structured report and the verbose log all use these counts:
tag rows only (referrer rows never count), with plan-failed entries added to `failed`, as
docs/sync.md#counting and docs/sync.md#exit-codes state. Everything is pure except `log_summary`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

from fluxmirror import __version__
from fluxmirror.api.archive import ARCHIVE_API_VERSION, ARCHIVE_SCHEMA_URLS, Archive, ArchiveReport, ArchiveReportBody
from fluxmirror.api.duration import Duration
from fluxmirror.api.report import (
    API_VERSION,
    KIND,
    SCHEMA_URL,
    EntryStatus,
    Report,
    ReportBody,
    Result,
    Status,
    Summary,
)
from fluxmirror.sync.logfmt import kv
from fluxmirror.sync.output import MILLISECOND
from fluxmirror.sync.shard import Shard

__all__ = ["REPORTER", "build_report", "log_summary", "process_exit_code", "semantic_exit_code", "summarize"]

log = logging.getLogger(__name__)

REPORTER: Final = f"flux-mirror/{__version__}"
"""Producer identity; release builds of the reference also omit a leading `v`."""

_EXIT_CLEAN: Final = 0
_EXIT_FAILED: Final = 1
_EXIT_DRIFTED: Final = 2
_NANOS_PER_MILLI: Final = 1_000_000


def _tag_counts(results: Sequence[Result]) -> Counter[str]:
    return Counter(tag.status for result in results for tag in result.tags)


def _plan_failures(results: Sequence[Result]) -> int:
    return sum(1 for result in results if result.status == EntryStatus.FAILED)


def _exit_code(counts: Counter[str], plan_failures: int) -> int:
    if counts[Status.FAILED] or plan_failures:
        return _EXIT_FAILED
    if counts[Status.DRIFTED]:
        return _EXIT_DRIFTED
    return _EXIT_CLEAN


def semantic_exit_code(results: Sequence[Result]) -> int:
    """0 clean, 1 if any tag row failed or any entry could not be planned, else 2 on drift.

    Failure beats drift because a broken mirror is more urgent than a stale one; referrer rows and
    dry-run forecasts (`would-*`) never change the code.
    """
    return _exit_code(_tag_counts(results), _plan_failures(results))


def process_exit_code(semantic: int, drift_exit_code: int) -> int:
    """The code the process exits with: drift-only runs use `--drift-exit-code` instead of 2.

    The report keeps the semantic code, so consumers see drift even when CI is told to stay green.
    """
    return drift_exit_code if semantic == _EXIT_DRIFTED else semantic


def summarize(results: Sequence[Result]) -> Summary:
    """Aggregate tag-row counts per status; `failed` also counts plan-failed entries."""
    counts = _tag_counts(results)
    plan_failures = _plan_failures(results)
    return Summary(
        entries=len(results),
        copied=counts[Status.COPIED],
        overwritten=counts[Status.OVERWRITTEN],
        skipped=counts[Status.SKIPPED],
        drifted=counts[Status.DRIFTED],
        wouldCopy=counts[Status.WOULD_COPY],
        wouldOverwrite=counts[Status.WOULD_OVERWRITE],
        failed=counts[Status.FAILED] + plan_failures,
        exitCode=_exit_code(counts, plan_failures),
    )


def build_report(results: Sequence[Result], *, duration: Duration, finished_at: datetime) -> Report:
    """The versioned envelope for `-o json` / `-o yaml`.

    `finished_at` is when the report is produced (end of the run) and is written as RFC 3339 UTC
    in whole seconds; a naive datetime is taken as local time. `durationMs` is the duration
    rounded to milliseconds, the same value the summary line and the verbose `sync complete` line
    show (`4.213s` ↔ `4213`). `$schema` is always set here; the YAML renderer drops it.
    """
    return Report(
        apiVersion=API_VERSION,
        kind=KIND,
        schema=SCHEMA_URL,
        report=ReportBody(
            reporter=REPORTER,
            timestamp=finished_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            durationMs=duration.round_to(MILLISECOND).nanoseconds // _NANOS_PER_MILLI,
            summary=summarize(results),
            results=list(results),
        ),
    )


def build_archive_report(
    kind: str, results: Sequence[Result], archive: Archive, *, duration: Duration, finished_at: datetime
) -> ArchiveReport:
    """The `ExportReport`/`ImportReport` envelope: the sync body, unchanged, plus `archive`."""
    body = build_report(results, duration=duration, finished_at=finished_at).report
    return ArchiveReport(
        apiVersion=ARCHIVE_API_VERSION,
        kind=kind,
        schema=ARCHIVE_SCHEMA_URLS[kind],
        report=ArchiveReportBody(
            reporter=body.reporter,
            timestamp=body.timestamp,
            durationMs=body.durationMs,
            summary=body.summary,
            results=body.results,
            archive=archive,
        ),
    )


def archive_line(archive: Archive, moved: str) -> str:
    """The text-mode closing line of `export` and `import`: where, what moved, and the root digest."""
    size = f", {archive.bytes} bytes" if archive.bytes else ""
    return f"Archive: {archive.path} ({archive.format}{size}), {moved}, index {archive.indexDigest}."


def _count_values(counts: Mapping[str, int]) -> dict[str, int]:
    """The per-status keys of the verbose totals; `would-*` only when non-zero (dry runs)."""
    values = {status: counts[status] for status in (Status.COPIED, Status.OVERWRITTEN, Status.SKIPPED, Status.DRIFTED)}
    values.update({status: counts[status] for status in (Status.WOULD_COPY, Status.WOULD_OVERWRITE) if counts[status]})
    return values


def log_summary(results: Sequence[Result], summary: Summary, duration: Duration, shard: Shard | None = None) -> None:
    """Log the verbose closing lines of text mode: one `entry summary` per entry, then the
    `sync complete` total (with `-o json|yaml` the report carries them, and they are not logged).

    A plan-failed entry counts one failure, so the entry lines add up to the total. The duration is
    rounded to milliseconds and left out when zero, as the reference does; a sharded run ends the
    total with `shard=<i>/<n>`.
    """
    for result in results:
        counts = _tag_counts([result])
        failed = counts[Status.FAILED] + (1 if result.status == EntryStatus.FAILED else 0)
        log.info(kv("entry summary", source=result.source, **_count_values(counts), failed=failed))
    totals = {
        Status.COPIED: summary.copied,
        Status.OVERWRITTEN: summary.overwritten,
        Status.SKIPPED: summary.skipped,
        Status.DRIFTED: summary.drifted,
        Status.WOULD_COPY: summary.wouldCopy,
        Status.WOULD_OVERWRITE: summary.wouldOverwrite,
    }
    elapsed = duration.round_to(MILLISECOND)
    tail: dict[str, object] = {"duration": elapsed} if elapsed.nanoseconds > 0 else {}
    if shard is not None:
        tail["shard"] = shard
    log.info(kv("sync complete", entries=summary.entries, **_count_values(totals), failed=summary.failed, **tail))
