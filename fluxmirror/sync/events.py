"""What the sync engine tells the outside world while it runs.

The engine never prints; it calls a `Progress` so the CLI can draw live lines and a spinner (text
mode), or nothing at all (json/yaml, verbose). Diagnostics go to the `fluxmirror` logger instead.
A `RunObserver`, when the CLI gives one (`--metrics-file`, `--pushgateway`), is told of every HTTP
hop and every retry (docs/metrics.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fluxmirror.http.observer import TrafficObserver

__all__ = ["JobOutcome", "Progress", "RunObserver", "SilentProgress"]


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """A finished job (one tag or chart version), as the live line shows it.

    `entry` is the report's entry source, `ident` the tag or chart version, `destination` the
    destination reference (`<repo>:<tag>`, with charts' `+` written as `_`).
    """

    entry: str
    ident: str
    status: str
    destination: str
    error: str = ""


class Progress(Protocol):
    def start(self, entries: int) -> None:
        """The run begins with this many entries."""

    def job_finished(self, outcome: JobOutcome) -> None:
        """A job ended (in completion order)."""

    def plan_failed(self, entry: str, error: str) -> None:
        """An entry could not be planned; it has no jobs."""

    def entry_finished(self) -> None:
        """One more entry is done (planned and run, or plan-failed)."""

    def stop(self) -> None:
        """The run is over; clear anything drawn."""


class SilentProgress:
    """Progress for structured output and tests: shows nothing."""

    def start(self, entries: int) -> None:
        pass

    def job_finished(self, outcome: JobOutcome) -> None:
        pass

    def plan_failed(self, entry: str, error: str) -> None:
        pass

    def entry_finished(self) -> None:
        pass

    def stop(self) -> None:
        pass


class RunObserver(TrafficObserver, Protocol):
    """Watches a run for its metrics: the HTTP traffic (from the run's `HttpSession`) and the jobs'
    retries (docs/sync.md#job-retries)."""

    def job_retrying(self) -> None:
        """A job's attempt failed and the whole attempt is about to run again."""
