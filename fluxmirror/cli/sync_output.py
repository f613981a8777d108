"""Running the engine for `sync` and putting its outcome on the right streams (docs/sync.md#output-streams).

| mode                 | stdout                      | stderr                    |
| text                 | live lines + summary line   | spinner (TTY only)        |
| text --verbose       | nothing                     | log lines                 |
| json / yaml          | the report                  | log lines with --verbose  |
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

import uvloop

from fluxmirror.api.config import Config
from fluxmirror.api.duration import Duration
from fluxmirror.auth.dockerconfig import DockerConfigCredentials
from fluxmirror.auth.hosts import HostsCredentials
from fluxmirror.cli.progress import TextProgress
from fluxmirror.sync.engine import run_sync
from fluxmirror.sync.events import Progress, SilentProgress
from fluxmirror.sync.logfmt import configure_verbose_logging
from fluxmirror.sync.options import SyncOptions
from fluxmirror.sync.output import render_json, render_yaml, summary_line
from fluxmirror.sync.report import build_report, log_summary, process_exit_code

__all__ = ["run_and_print"]


def run_and_print(
    config: Config, options: SyncOptions, *, output: str, verbose: bool, spinner: bool, drift_exit_code: int
) -> int:
    """Run the sync, print what the output mode asks for, and return the process exit code."""
    text_mode = output == "text"
    progress: Progress = (
        TextProgress(sys.stdout, sys.stderr, spinner=spinner) if text_mode and not verbose else SilentProgress()
    )
    undo_logging = configure_verbose_logging(sys.stderr) if verbose else None
    started = time.monotonic()
    try:
        credentials = HostsCredentials(config.hosts, DockerConfigCredentials())
        results = uvloop.run(run_sync(config, options, credentials, progress))
    finally:
        progress.stop()
    duration = Duration.from_seconds(time.monotonic() - started)
    report = build_report(results, duration=duration, finished_at=datetime.now(UTC))
    try:
        if verbose and text_mode:  # the report carries the totals in json/yaml mode
            log_summary(results, report.report.summary, duration)
        if output == "json":
            sys.stdout.buffer.write(render_json(report))
        elif output == "yaml":
            sys.stdout.write(render_yaml(report))
        elif not verbose:
            sys.stdout.write(summary_line(report.report.summary, duration) + "\n")
        sys.stdout.flush()
    finally:
        if undo_logging is not None:
            undo_logging()
    return process_exit_code(report.report.summary.exitCode, drift_exit_code)
