"""Exit codes, summary counts and the report envelope built from the engine's results."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone

import pytest

from fluxmirror import __version__
from fluxmirror.api.duration import Duration
from fluxmirror.api.report import API_VERSION, KIND, SCHEMA_URL, ReferrerResult, Result, Summary, TagResult
from fluxmirror.sync.output import summary_line
from fluxmirror.sync.report import (
    REPORTER,
    build_report,
    log_summary,
    process_exit_code,
    semantic_exit_code,
    summarize,
)
from fluxmirror.sync.shard import Shard


def entry(*statuses: str, referrers: tuple[str, ...] = ()) -> Result:
    """A completed entry with one tag row per status; every row carries the given referrer rows."""
    tags = [
        TagResult(
            tag=f"1.{index}.0",
            status=status,
            error="boom" if status == "failed" else "",
            referrers=[ReferrerResult(digest=f"sha256:{n}", status=s) for n, s in enumerate(referrers)],
        )
        for index, status in enumerate(statuses)
    ]
    return Result(source="ghcr.io/a/b", destination="localhost:5050/b", status="completed", tags=tags)


def plan_failed() -> Result:
    return Result(source="ghcr.io/a/c", destination="localhost:5050/c", status="failed", error="denied", tags=[])


@pytest.mark.parametrize(
    ("results", "code"),
    [
        pytest.param([], 0, id="no entries"),
        pytest.param([entry()], 0, id="nothing matched"),
        pytest.param([entry("copied", "skipped", "overwritten")], 0, id="clean"),
        pytest.param([entry("would-copy", "would-overwrite")], 0, id="dry-run forecasts never count"),
        pytest.param([entry("drifted")], 2, id="drift"),
        pytest.param([entry("copied"), entry("drifted")], 2, id="drift in a later entry"),
        pytest.param([entry("failed")], 1, id="failed tag"),
        pytest.param([entry("drifted", "failed")], 1, id="failure beats drift"),
        pytest.param([entry("drifted"), entry("failed")], 1, id="failure beats drift across entries"),
        pytest.param([plan_failed()], 1, id="plan failure"),
        pytest.param([entry("drifted"), plan_failed()], 1, id="plan failure beats drift"),
        pytest.param([entry("copied", referrers=("failed",))], 0, id="referrer failure does not count"),
        pytest.param([entry("skipped", referrers=("drifted",))], 0, id="referrer drift does not count"),
        pytest.param([entry("drifted", referrers=("failed",))], 2, id="referrer failure does not beat drift"),
    ],
)
def test_semantic_exit_code(results: list[Result], code: int) -> None:
    assert semantic_exit_code(results) == code
    assert summarize(results).exitCode == code


@pytest.mark.parametrize(
    ("semantic", "drift_exit_code", "code"),
    [(0, 2, 0), (0, 7, 0), (1, 2, 1), (1, 0, 1), (1, 7, 1), (2, 2, 2), (2, 0, 0), (2, 7, 7), (2, 255, 255)],
)
def test_process_exit_code_replaces_only_drift(semantic: int, drift_exit_code: int, code: int) -> None:
    assert process_exit_code(semantic, drift_exit_code) == code


def test_summarize_counts_tag_rows_only() -> None:
    results = [
        entry("copied", "copied", "skipped", "drifted", referrers=("copied", "failed", "drifted")),
        entry("overwritten", "would-copy", "would-overwrite", "would-copy", "failed"),
        plan_failed(),
        entry(),
    ]
    assert summarize(results) == Summary(
        entries=4,
        copied=2,
        overwritten=1,
        skipped=1,
        drifted=1,
        wouldCopy=2,
        wouldOverwrite=1,
        failed=2,
        exitCode=1,
    )


def test_summarize_empty_run() -> None:
    zero = Summary(
        entries=0, copied=0, overwritten=0, skipped=0, drifted=0, wouldCopy=0, wouldOverwrite=0, failed=0, exitCode=0
    )
    assert summarize([]) == zero


def test_summary_exit_code_ignores_drift_exit_code() -> None:
    """The report keeps the semantic 2 even when the process exits 0 on drift."""
    summary = summarize([entry("drifted")])
    assert summary.exitCode == 2
    assert process_exit_code(summary.exitCode, 0) == 0


def test_build_report_envelope() -> None:
    results = [entry("copied"), plan_failed()]
    finished = datetime(2026, 6, 6, 22, 12, 25, 987654, tzinfo=timezone(timedelta(hours=2)))
    report = build_report(results, duration=Duration(16_724_999_999), finished_at=finished)
    assert report.apiVersion == API_VERSION
    assert report.kind == KIND
    assert report.schema == SCHEMA_URL
    body = report.report
    assert body.reporter == REPORTER == f"flux-mirror/{__version__}"
    assert not body.reporter.startswith("flux-mirror/v")
    assert body.timestamp == "2026-06-06T20:12:25Z"
    assert body.durationMs == 16725
    assert body.summary == summarize(results)
    assert body.results == results


@pytest.mark.parametrize(
    ("nanoseconds", "milliseconds"),
    [
        (0, 0),
        (499_999, 0),
        (500_000, 1),
        (999_999, 1),
        (1_000_000, 1),
        (1_999_999, 2),
        (812_400_000, 812),
        (4_212_500_000, 4213),
        (3_600_000_000_000, 3_600_000),
    ],
)
def test_build_report_duration_is_rounded_to_whole_milliseconds(nanoseconds: int, milliseconds: int) -> None:
    """Rounded half up, as the summary line and `sync complete` round it, so all three agree."""
    report = build_report([], duration=Duration(nanoseconds), finished_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert report.report.durationMs == milliseconds
    assert report.report.results == []


@pytest.mark.parametrize("nanoseconds", [1_999_999, 4_212_999_999, 812_500_000])
def test_report_summary_line_and_log_show_one_duration(caplog: pytest.LogCaptureFixture, nanoseconds: int) -> None:
    duration = Duration(nanoseconds)
    report = build_report([], duration=duration, finished_at=datetime(2026, 1, 1, tzinfo=UTC))
    shown = Duration(report.report.durationMs * 1_000_000)
    assert summary_line(report.report.summary, duration) == f"Summary: nothing to mirror in {shown}."
    assert logged_summary(caplog, [], duration) == [
        f"sync complete entries=0 copied=0 overwritten=0 skipped=0 drifted=0 failed=0 duration={shown}"
    ]


def logged_summary(
    caplog: pytest.LogCaptureFixture, results: list[Result], duration: Duration, shard: Shard | None = None
) -> list[str]:
    with caplog.at_level(logging.INFO, logger="fluxmirror"):
        log_summary(results, summarize(results), duration, shard)
    return [record.getMessage() for record in caplog.records]


def test_log_summary_lines(caplog: pytest.LogCaptureFixture) -> None:
    results = [entry("copied", "skipped", "failed", referrers=("copied",)), plan_failed(), entry("drifted")]
    assert logged_summary(caplog, results, Duration(4_213_400_000)) == [
        "entry summary source=ghcr.io/a/b copied=1 overwritten=0 skipped=1 drifted=0 failed=1",
        "entry summary source=ghcr.io/a/c copied=0 overwritten=0 skipped=0 drifted=0 failed=1",
        "entry summary source=ghcr.io/a/b copied=0 overwritten=0 skipped=0 drifted=1 failed=0",
        "sync complete entries=3 copied=1 overwritten=0 skipped=1 drifted=1 failed=2 duration=4.213s",
    ]


def test_log_summary_shows_forecasts_only_when_present(caplog: pytest.LogCaptureFixture) -> None:
    results = [entry("would-copy", "would-copy"), entry("would-overwrite", "skipped")]
    assert logged_summary(caplog, results, Duration(812_000_000)) == [
        "entry summary source=ghcr.io/a/b copied=0 overwritten=0 skipped=0 drifted=0 would-copy=2 failed=0",
        "entry summary source=ghcr.io/a/b copied=0 overwritten=0 skipped=1 drifted=0 would-overwrite=1 failed=0",
        "sync complete entries=2 copied=0 overwritten=0 skipped=1 drifted=0 would-copy=2 would-overwrite=1 "
        "failed=0 duration=812ms",
    ]


def test_log_summary_omits_zero_duration(caplog: pytest.LogCaptureFixture) -> None:
    assert logged_summary(caplog, [], Duration(400_000)) == [
        "sync complete entries=0 copied=0 overwritten=0 skipped=0 drifted=0 failed=0"
    ]


def test_log_summary_of_a_shard_ends_with_it(caplog: pytest.LogCaptureFixture) -> None:
    assert logged_summary(caplog, [entry("copied")], Duration(812_000_000), Shard(2, 3)) == [
        "entry summary source=ghcr.io/a/b copied=1 overwritten=0 skipped=0 drifted=0 failed=0",
        "sync complete entries=1 copied=1 overwritten=0 skipped=0 drifted=0 failed=0 duration=812ms shard=2/3",
    ]
    caplog.clear()
    assert logged_summary(caplog, [], Duration(0), Shard(0, 1)) == [
        "sync complete entries=0 copied=0 overwritten=0 skipped=0 drifted=0 failed=0 shard=0/1"
    ]
