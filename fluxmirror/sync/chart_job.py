"""The job of one selected chart version: download the archive, compare it with the chart layer at
the destination, and publish it as a Helm OCI artifact when missing (or drifted, with overwrite).

The archive is always downloaded first, also in `--dry-run` and when up to date, because its
digest is what the destination is compared with (docs/sync.md#chart-drift).
"""

from __future__ import annotations

import asyncio
import logging
import time

from fluxmirror.api.report import Status, TagResult
from fluxmirror.errors import FluxMirrorError
from fluxmirror.helm.chart import load_chart
from fluxmirror.helm.fetch import MAX_CHART_BYTES, FetchError, HelmFetcher, resolve_reference
from fluxmirror.helm.publish import destination_tag
from fluxmirror.oci.manifests import sha256_digest
from fluxmirror.sync.chart_plan import ChartEntry, ChartPlan
from fluxmirror.sync.destinations import Destination
from fluxmirror.sync.job import WRITES, JobFailure, JobSettings, decide, elapsed_since, row, run_with_retries
from fluxmirror.sync.logfmt import kv

__all__ = ["run_chart_job"]

log = logging.getLogger(__name__)


async def run_chart_job(
    destination: Destination,
    fetcher: HelmFetcher,
    entry: ChartEntry,
    plan: ChartPlan,
    version: str,
    settings: JobSettings,
) -> TagResult:
    """Run the job to a final row; never raises for download or registry failures."""
    chart = f"{entry.name}@{version}"
    reference = entry.destination_ref(version)
    log.info(kv("mirroring chart", chart=chart, dst=reference))
    started = time.monotonic()
    result = await run_with_retries(
        lambda: _attempt(destination, fetcher, entry, plan, version, settings),
        row_id=version,
        job_id=f"{entry.source}:{version}",
        settings=settings,
    )
    if result.status != Status.FAILED:  # as `tag done`: successes only
        log.info(kv("chart done", chart=chart, dst=reference, status=result.status, elapsed=elapsed_since(started)))
    return result


async def _download(fetcher: HelmFetcher, entry: ChartEntry, plan: ChartPlan, version: str) -> tuple[bytes, str]:
    """The archive and its digest, checked against the index's `digest` when it has one."""
    name = entry.name
    found = plan.index.lookup(name, version)
    if found is None:
        raise FetchError(f'lookup chart "{name}"@"{version}" in index: no chart version found')
    if not found.urls:
        raise FetchError(f'chart "{name}"@"{version}" has no URLs in index')
    data = await fetcher.get(
        entry.access, resolve_reference(entry.access.source, found.urls[0]), MAX_CHART_BYTES, entry.tls
    )
    expected = found.digest.strip().lower().removeprefix("sha256:")
    actual = sha256_digest(data)
    if expected and actual != f"sha256:{expected}":
        raise FetchError(f'chart "{name}"@"{version}": downloaded archive is {actual}, index says sha256:{expected}')
    return data, actual


async def _attempt(
    destination: Destination,
    fetcher: HelmFetcher,
    entry: ChartEntry,
    plan: ChartPlan,
    version: str,
    settings: JobSettings,
) -> TagResult:
    tag = destination_tag(version)
    try:
        data, digest = await _download(fetcher, entry, plan, version)
        existing = await destination.chart_digest(tag)
    except FluxMirrorError as exc:  # a row that failed while comparing has no digest, as in the reference
        raise JobFailure(exc, "") from exc
    status = decide(digest, existing, settings)
    if status == Status.DRIFTED:
        log.info(
            kv(
                "destination chart drifted from source; skipping (overwrite=false)",
                chart=entry.name,
                version=version,
                src_digest=digest,
                dst_digest=existing,
            )
        )
    if status in WRITES:
        try:
            chart = await asyncio.to_thread(load_chart, data)
            pushed = await destination.write_chart(tag, chart.config, data)
        except FluxMirrorError as exc:
            raise JobFailure(exc, digest) from exc
        log.info("%s:%s: digest: %s size: %d", entry.destination_repository, tag, pushed.digest, pushed.size)
    return row(version, status, digest)
