"""`--metrics-file` and `--pushgateway` for `sync`, `export` and `import` (docs/metrics.md).

The flags are checked with the others, before the run; the metrics machinery (prometheus-client)
is imported only when one of them is given, so a run without them starts as fast as before. At the
end of the run the metrics are written and pushed once; a failure of either is one warning line on
stderr and never changes the exit code (docs/metrics.md#failures).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from fluxmirror.cli.terminal import terminal_safe
from fluxmirror.errors import MetricsError

if TYPE_CHECKING:
    from pathlib import Path

    from fluxmirror.api.report import ReportBody
    from fluxmirror.metrics.pushgateway import Pushgateway
    from fluxmirror.metrics.run import RunMetrics
    from fluxmirror.sync.shard import Shard

__all__ = ["MetricsFileOption", "PushgatewayOption", "RunMetricsOutputs", "metrics_outputs"]

MetricsFileOption = Annotated[
    str | None,
    typer.Option(
        "--metrics-file",
        metavar="PATH",
        help="Write the run's metrics here for node-exporter's textfile collector (replaced atomically).",
        show_default=False,
    ),
]
PushgatewayOption = Annotated[
    str | None,
    typer.Option(
        "--pushgateway",
        metavar="URL",
        help="Push the run's metrics to this Prometheus Pushgateway (job fluxmirror).",
        show_default=False,
    ),
]
WARNING = "⚠️ "


def metrics_outputs(
    metrics_file: str | None, pushgateway: str | None, command: str, shard: Shard | None
) -> RunMetricsOutputs | None:
    """Where the metrics of `command` (of `shard`, when sharded) go, checked now; None when neither
    flag is given."""
    if metrics_file is None and pushgateway is None:
        return None
    return RunMetricsOutputs(metrics_file, pushgateway, command, shard)


class RunMetricsOutputs:
    """The run's metrics (`recorder`, the run's observer) and where they go at its end."""

    def __init__(self, metrics_file: str | None, pushgateway: str | None, command: str, shard: Shard | None) -> None:
        from fluxmirror.metrics.pushgateway import Pushgateway, run_grouping
        from fluxmirror.metrics.run import RunMetrics
        from fluxmirror.metrics.textfile import checked_path

        self.textfile: Path | None = None if metrics_file is None else checked_path(metrics_file, "--metrics-file")
        self.pushgateway: Pushgateway | None = None if pushgateway is None else Pushgateway.parse(pushgateway)
        self.grouping = run_grouping(command, None if shard is None else shard.index)
        self.recorder: RunMetrics = RunMetrics()

    async def deliver(self, report: ReportBody | None, *, duration_seconds: float, finished_at: float) -> None:
        """Record how the run ended (`report` None: it stopped without one; `finished_at` in Unix
        time), then write the file and push; each failure is one warning line on stderr."""
        from fluxmirror.metrics.pushgateway import push
        from fluxmirror.metrics.textfile import write_textfile
        from fluxmirror.oci.client import USER_AGENT

        self.recorder.finished(report, duration_seconds=duration_seconds, finished_at=finished_at)
        failures: list[MetricsError] = []
        if self.textfile is not None:
            try:
                await write_textfile(self.recorder.registry, self.textfile)
            except MetricsError as exc:
                failures.append(exc)
        if self.pushgateway is not None:
            try:
                await push(self.recorder.registry, self.pushgateway, self.grouping, user_agent=USER_AGENT)
            except MetricsError as exc:
                failures.append(exc)
        for failure in failures:
            print(f"{WARNING}{terminal_safe(failure.message)}", file=sys.stderr, flush=True)
