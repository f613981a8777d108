"""One run's metrics (docs/metrics.md#metrics): counted while the run goes, completed by its report.

`RunMetrics` is the run's `RunObserver` (sync.events): the HTTP session reports each hop and the
registry client and the jobs report their retries. Counting is plain dictionary arithmetic on the
event loop, with no locks on the hot path; the Prometheus metric families are built only when the
private registry is collected, once, at the end of the run.

Every metric describes this one run (a CronJob's process): counters start at zero with the
process, as any restarted process's do, and the gauges say how the run ended.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from fluxmirror.api.report import EntryStatus, ReportBody, Status
from fluxmirror.http.observer import Exchange

__all__ = ["NO_ANSWER", "RunMetrics"]

NO_ANSWER: Final = "error"
"""The `status` label of a request that got no answer (refused, reset, timed out)."""
_TOO_MANY_REQUESTS: Final = 429


@dataclass(frozen=True, slots=True)
class _Outcome:
    report: ReportBody | None  # None: the run stopped before it had a report (a credential failed)
    duration_seconds: float
    finished_at: float  # Unix time

    @property
    def succeeded(self) -> bool:
        """A run succeeded when nothing failed: no tag row and no plan. Drift is not a failure of the
        run (it is counted in `fluxmirror_tags_total{status="drifted"}`), whatever --drift-exit-code says."""
        return self.report is not None and self.report.summary.failed == 0


class RunMetrics:
    """What one run did, as Prometheus metric families in `registry` (a private registry: the
    library's global one would add the process collectors of whatever imported it)."""

    def __init__(self) -> None:
        self._requests: Counter[tuple[str, str, str]] = Counter()
        self._sent: Counter[str] = Counter()
        self._received: Counter[str] = Counter()
        self._too_many: Counter[str] = Counter()
        self._retries: Counter[str] = Counter()
        self._job_retries = 0
        self._lowest_limits: dict[str, int] = {}
        self._outcome: _Outcome | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    # The RunObserver side, called on the event loop while the run goes.

    def exchanged(self, exchange: Exchange) -> None:
        host = exchange.host
        status = NO_ANSWER if exchange.status is None else str(exchange.status)
        self._requests[host, exchange.method, status] += 1
        self._sent[host] += exchange.sent
        self._received[host] += exchange.received
        self._too_many[host] += int(exchange.status == _TOO_MANY_REQUESTS)

    def retrying(self, host: str) -> None:
        self._retries[host] += 1

    def job_retrying(self) -> None:
        self._job_retries += 1

    def limited(self, host: str, limit: int) -> None:
        self._lowest_limits[host] = min(limit, self._lowest_limits.get(host, limit))

    # The end of the run.

    def finished(self, report: ReportBody | None, *, duration_seconds: float, finished_at: float) -> None:
        """The run is over: `report` is its report (None when it stopped without one), `finished_at`
        the Unix time it ended."""
        self._outcome = _Outcome(report, duration_seconds, finished_at)

    def collect(self) -> Iterator[Metric]:
        """The metric families, as the registry asks for them (prometheus-client's `Collector`)."""
        hosts = sorted(self._sent)
        requests = CounterMetricFamily(
            "fluxmirror_http_requests",
            "HTTP requests sent (each redirect hop is one), by host, method and status; status is "
            f'"{NO_ANSWER}" when no answer came.',
            labels=["host", "method", "status"],
        )
        for (host, method, status), count in sorted(self._requests.items()):
            requests.add_metric([host, method, status], count)
        yield requests
        yield _per_host("fluxmirror_http_sent_bytes", "Request body bytes sent, by host.", hosts, self._sent)
        yield _per_host(
            "fluxmirror_http_received_bytes", "Response body bytes received, by host.", hosts, self._received
        )
        yield _per_host(
            "fluxmirror_http_too_many_requests",
            "Answers with status 429 Too Many Requests, by host.",
            hosts,
            self._too_many,
        )
        yield _per_host(
            "fluxmirror_http_retries",
            "Registry requests sent again after a transient failure (a connection failure, 429, 5xx), by host.",
            hosts,
            self._retries,
        )
        yield CounterMetricFamily(
            "fluxmirror_job_retries",
            "Job attempts (a tag or chart version each) run again after a failed attempt.",
            value=self._job_retries,
        )
        if self._lowest_limits:
            lowest = GaugeMetricFamily(
                "fluxmirror_adaptive_lowest_limit",
                "With --adaptive: the lowest limit on requests in flight to the host during the run.",
                labels=["host"],
            )
            for host, limit in sorted(self._lowest_limits.items()):
                lowest.add_metric([host], limit)
            yield lowest
        if self._outcome is not None:
            yield from _outcome_families(self._outcome)


def _per_host(name: str, documentation: str, hosts: list[str], counts: Counter[str]) -> CounterMetricFamily:
    """A counter with a sample for every host the run spoke to, zero included, so a query never
    has to tell "none" from "not there"."""
    family = CounterMetricFamily(name, documentation, labels=["host"])
    for host in hosts:
        family.add_metric([host], counts[host])
    return family


def _outcome_families(outcome: _Outcome) -> Iterator[Metric]:
    """How the run ended, from its report; entries and tags only when there is one."""
    if outcome.report is not None:
        entries = CounterMetricFamily(
            "fluxmirror_entries", "Config entries by outcome: completed, or failed to plan.", labels=["status"]
        )
        by_entry = Counter(result.status for result in outcome.report.results)
        for status in EntryStatus.ALL:
            entries.add_metric([status], by_entry[status])
        yield entries
        tags = CounterMetricFamily(
            "fluxmirror_tags",
            "Tag and chart-version rows by status, as the report's summary counts them (referrers never count; "
            "failed entries are in fluxmirror_entries_total).",
            labels=["status"],
        )
        by_tag = Counter(row.status for result in outcome.report.results for row in result.tags)
        for status in Status.ALL:
            tags.add_metric([status], by_tag[status])
        yield tags
    yield GaugeMetricFamily("fluxmirror_run_duration_seconds", "Wall time of the run.", value=outcome.duration_seconds)
    yield GaugeMetricFamily(
        "fluxmirror_last_run_timestamp_seconds", "Unix time the run ended.", value=outcome.finished_at
    )
    yield GaugeMetricFamily(
        "fluxmirror_last_run_success",
        "1 when the run ended with no failed tag and no failed entry (drift is not a failure), else 0.",
        value=1 if outcome.succeeded else 0,
    )
    if outcome.succeeded:
        yield GaugeMetricFamily(
            "fluxmirror_last_success_timestamp_seconds",
            "Unix time the run ended; written by successful runs only.",
            value=outcome.finished_at,
        )
