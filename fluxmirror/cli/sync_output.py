"""Running the engine for `sync` and putting its outcome on the right streams (docs/sync.md#output-streams).

| mode                 | stdout                      | stderr                    |
| text                 | live lines + summary line   | spinner (TTY only)        |
| text --verbose       | nothing                     | log lines                 |
| json / yaml          | the report                  | log lines with --verbose  |

When stdout carries an archive (`export --to -`), what the table puts on stdout goes to stderr.

SIGINT and SIGTERM (a CronJob's deadline, an eviction) cancel the run (docs/sync.md#signals): the
jobs in flight and those not yet started end as failed rows, and the outcome is still printed. A
second signal exits at once, without a report. The handlers are installed on the loop for its
whole life, and the dispositions from before are put back when it is gone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Protocol, TextIO

import uvloop

from fluxmirror.api.archive import ArchiveReport
from fluxmirror.api.config import Config
from fluxmirror.api.duration import Duration
from fluxmirror.api.report import Report, Result
from fluxmirror.auth.credentials import CredentialSource
from fluxmirror.auth.dockerconfig import DockerConfigCredentials
from fluxmirror.auth.hosts import HostsCredentials
from fluxmirror.cli.progress import TextProgress
from fluxmirror.http.session import HttpSession
from fluxmirror.sync.engine import Cancellation, CredentialsFactory, run_sync
from fluxmirror.sync.events import Progress, SilentProgress
from fluxmirror.sync.logfmt import configure_verbose_logging
from fluxmirror.sync.options import SyncOptions
from fluxmirror.sync.output import render_json, render_yaml, summary_line
from fluxmirror.sync.report import build_report, log_summary, process_exit_code

if TYPE_CHECKING:
    from fluxmirror.cli.metrics import RunMetricsOutputs

__all__ = ["CANCEL_SIGNALS", "Command", "SyncCommand", "run_and_print"]

CANCEL_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
_EXIT_AT_ONCE: Final = 1


class Command(Protocol):
    """What a report-printing command runs (`sync`, `export`, `import`) and how its report reads."""

    async def run(
        self, credentials: CredentialsFactory, progress: Progress, cancellation: Cancellation
    ) -> list[Result]: ...

    def report(self, results: list[Result], duration: Duration, finished_at: datetime) -> Report | ArchiveReport: ...

    def closing_lines(self) -> list[str]:
        """Text-mode lines after the summary line (the archive's, for export and import)."""
        ...

    @property
    def data_on_stdout(self) -> bool:
        """stdout carries the command's data (`export --to -`): the outcome goes to stderr."""
        ...


class SyncCommand:
    """`sync`: the engine's run, the reference's Report."""

    def __init__(self, config: Config, options: SyncOptions) -> None:
        self.config = config
        self.options = options

    async def run(
        self, credentials: CredentialsFactory, progress: Progress, cancellation: Cancellation
    ) -> list[Result]:
        return await run_sync(self.config, self.options, credentials, progress, cancellation)

    def report(self, results: list[Result], duration: Duration, finished_at: datetime) -> Report:
        return build_report(results, duration=duration, finished_at=finished_at)

    def closing_lines(self) -> list[str]:
        return []

    data_on_stdout = False


def run_and_print(
    config: Config | None,
    options: SyncOptions,
    *,
    output: str,
    verbose: bool,
    spinner: bool,
    drift_exit_code: int,
    command: Command | None = None,
    metrics: RunMetricsOutputs | None = None,
) -> int:
    """Run the command (`sync` unless given), print what the output mode asks for, deliver the
    run's metrics when asked, and return the process exit code."""
    if command is None:
        assert config is not None, "sync needs its config"
        command = SyncCommand(config, options)
    text_mode = output == "text"
    out = sys.stderr if command.data_on_stdout else sys.stdout
    progress: Progress = (
        TextProgress(out, sys.stderr, spinner=spinner) if text_mode and not verbose else SilentProgress()
    )
    undo_logging = configure_verbose_logging(sys.stderr) if verbose else None
    # uvloop leaves its own handlers installed when its loop closes (signals would then be lost),
    # so the dispositions from before the run are put back by hand.
    previous = {signum: signal.getsignal(signum) for signum in CANCEL_SIGNALS} if _main_thread() else {}
    try:
        return uvloop.run(
            _run_and_print(
                config,
                options,
                command,
                progress,
                out,
                output=output,
                verbose=verbose,
                drift_exit_code=drift_exit_code,
                metrics=metrics,
            )
        )
    finally:
        for signum, disposition in previous.items():
            if disposition is not None:
                signal.signal(signum, disposition)
        progress.stop()
        if undo_logging is not None:
            undo_logging()


def _main_thread() -> bool:
    """Signal handlers can only be installed from the main thread (the CLI's; not every test's)."""
    return threading.current_thread() is threading.main_thread()


async def _run_and_print(
    config: Config | None,
    options: SyncOptions,
    command: Command,
    progress: Progress,
    out: TextIO,
    *,
    output: str,
    verbose: bool,
    drift_exit_code: int,
    metrics: RunMetricsOutputs | None,
) -> int:
    """The run and its printing, both on the loop, so the signal handlers cover the report too: a
    signal arriving while it is written is handled once it is out (the writes never yield). The
    metrics go out after the outcome is printed, so a signal then ends the process at once with the
    run's exit code; a run that stops with an error still delivers its metrics, as a failed run."""
    cancellation = Cancellation()
    loop = asyncio.get_running_loop()
    on_signal = _SignalHandler(cancellation, progress)
    if _main_thread():
        for signum in CANCEL_SIGNALS:
            loop.add_signal_handler(signum, on_signal, signum)
    started = time.monotonic()

    async def credentials(http: HttpSession) -> CredentialSource:
        hosts = HostsCredentials(config.hosts if config is not None else [], DockerConfigCredentials(), http)
        await hosts.prefetch(options.timeout.total_seconds())
        return hosts

    try:
        results = await command.run(credentials, progress, cancellation)
    except Exception:
        if metrics is not None:
            progress.stop()
            await metrics.deliver(None, duration_seconds=time.monotonic() - started, finished_at=time.time())
        raise
    finally:
        progress.stop()
    duration = Duration.from_seconds(time.monotonic() - started)
    finished_at = datetime.now(UTC)
    report = command.report(results, duration, finished_at)
    if verbose and output == "text":  # the report carries the totals in json/yaml mode
        log_summary(results, report.report.summary, duration, options.shard)
    if output == "json":
        out.buffer.write(render_json(report))
    elif output == "yaml":
        out.write(render_yaml(report))
    elif not verbose:
        out.write(summary_line(report.report.summary, duration, options.shard) + "\n")
        out.writelines(line + "\n" for line in command.closing_lines())
    out.flush()
    code = process_exit_code(report.report.summary.exitCode, drift_exit_code)
    on_signal.printed(code)
    if metrics is not None:
        await metrics.deliver(
            report.report, duration_seconds=duration.total_seconds(), finished_at=finished_at.timestamp()
        )
    return code


class _SignalHandler:
    """The first SIGINT or SIGTERM cancels the run; the next one ends the process at once.

    Exiting at once is what a user pressing Ctrl-C twice asks for; it leaves the destination as a
    SIGKILL would (whole tags only: a manifest is pushed after its blobs), without the report.
    Once the outcome is printed, any signal ends the process at once with the run's exit code
    (only the loop's teardown is left).
    """

    def __init__(self, cancellation: Cancellation, progress: Progress) -> None:
        self._cancellation = cancellation
        self._progress = progress
        self._received = False
        self._exit_code: int | None = None

    def printed(self, exit_code: int) -> None:
        """The outcome is out; `exit_code` is what the process ends with."""
        self._exit_code = exit_code

    def __call__(self, signum: int) -> None:
        if self._exit_code is not None:
            os._exit(self._exit_code)
        if not self._received:
            self._received = True
            self._cancellation.cancel()
            return
        self._progress.stop()
        line = f"✗ interrupted again ({signal.Signals(signum).name}): exiting without a report\n"
        try:
            sys.stdout.flush()
            sys.stderr.write(line)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stream must not keep the process alive
        os._exit(_EXIT_AT_ONCE)
