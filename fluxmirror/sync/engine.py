"""The sync executor: entries one after another (artifacts, then charts), or `--parallel-entries` of
them side by side, each entry's jobs concurrently.

Results come back in config order and rows in plan order (highest tag or version first) whatever
order entries and jobs finish in; live events go to the `Progress` as they happen. A failed plan
fails only its own entry. Every registry the config names is pinged at once when the run starts
(docs/sync.md#pings), and a tag's comparison holds no copy slot (docs/sync.md#compare-phase).

A run can be cancelled (docs/sync.md#signals): `Cancellation.cancel()`, which the CLI calls on
SIGINT or SIGTERM, stops the plan and the jobs in flight, as Go's cancelled context does. Every job
then ends as a failed row (`mirror <job>: context canceled`), every entry not yet planned as a
failed entry (`context canceled`), and `run_sync` still returns every result for the report.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from fluxmirror.api.config import Chart, Config
from fluxmirror.api.report import EntryStatus, Result, Status, TagResult
from fluxmirror.auth.credentials import CredentialSource
from fluxmirror.errors import unexpected
from fluxmirror.helm.fetch import HelmFetcher
from fluxmirror.http.session import HttpSession, TLSChoice
from fluxmirror.oci.adaptive import AdaptiveLimits
from fluxmirror.oci.client import USER_AGENT, Registries
from fluxmirror.oci.copy import CopySession
from fluxmirror.oci.pacing import Bandwidth
from fluxmirror.oci.reference import Repository
from fluxmirror.oci.resumable import NO_JOURNAL
from fluxmirror.sync.artifact_job import LookupLimits, run_tag_job
from fluxmirror.sync.destinations import Destination, LayoutDestination, LayoutExport, RegistryDestination
from fluxmirror.sync.events import JobOutcome, Progress
from fluxmirror.sync.job import CANCELED, CopySlots, JobSettings, canceled_row, elapsed_since
from fluxmirror.sync.logfmt import kv
from fluxmirror.sync.options import SyncOptions
from fluxmirror.sync.plan import ArtifactEntry, PlanError, plan_artifact
from fluxmirror.sync.shard import pick
from fluxmirror.sync.uploads import StateDirJournal
from fluxmirror.sync.verify import TrustedRoots

if TYPE_CHECKING:
    from fluxmirror.http.tls import HostTLS
    from fluxmirror.sync.chart_plan import ChartEntry

__all__ = ["RESUMABLE_CHUNK", "Cancellation", "CredentialsFactory", "copy_session", "host_tls", "run_sync"]

log = logging.getLogger(__name__)
_KIB = 1024
# The chunk a run with --state-dir uploads in, so a killed run loses at most the chunk in flight: big
# enough that a PATCH (and the ranged source GET feeding it) costs little per byte, small enough to
# be little to lose on a thin link.
RESUMABLE_CHUNK = 16 * 1024 * 1024


class Cancellation:
    """The run's cancellation point: `cancel()` stops the plan and every job in flight at once, and
    keeps any later plan or job from starting (each then ends as a failed result, never raises).

    Only tasks inside `stoppable()` are cancelled, so the engine decides where a `CancelledError`
    can land: in a planning step, a job waiting for its turn, or a job's attempts (which
    `run_with_retries` turns into the failed row).
    """

    def __init__(self) -> None:
        self._requested = False
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def requested(self) -> bool:
        return self._requested

    def cancel(self) -> None:
        """Cancel the run; safe to call from a signal handler on the loop, and more than once."""
        self._requested = True
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()

    @contextmanager
    def stoppable(self) -> Iterator[None]:
        """Let `cancel` reach the current task while inside; once requested, raises `CancelledError` at once."""
        if self._requested:
            raise asyncio.CancelledError
        task = asyncio.current_task()
        assert task is not None  # only ever entered from a coroutine
        self._tasks.add(task)
        try:
            yield
        finally:
            self._tasks.discard(task)


@dataclass(frozen=True, slots=True)
class _Job:
    """A planned job: its row id (tag or chart version), its live-line destination, and how to run
    it, given its entry's `--concurrency` copy slots, one of which it holds while it writes."""

    ident: str
    destination: str
    run: Callable[[JobSettings, CopySlots], Awaitable[TagResult]]


def run_connections(options: SyncOptions) -> int:
    """The run's HTTP connection pool: the most requests it ever has in flight, and so the
    ceiling each registry's `--adaptive` limit starts at and never grows past."""
    return max(64, options.concurrency * 8)


def run_registries(
    http: HttpSession, source: CredentialSource, options: SyncOptions, tls: TLSChoice | None
) -> Registries:
    """The run's registry clients. Every registry request is bounded by --timeout too, so planning
    (which no job deadline covers) cannot be held forever by a registry that trickles or never
    answers; with --adaptive they share one gate of per-host limits (docs/sync.md#adaptive)."""
    return Registries(
        http,
        source,
        insecure=options.insecure,
        tls=tls,
        request_timeout=options.timeout.total_seconds(),
        adaptive=AdaptiveLimits(run_connections(options), observer=options.observer) if options.adaptive else None,
    )


def copy_session(config: Config | None, registries: Registries, options: SyncOptions) -> CopySession:
    """The run's copy state: `hosts[].maxChunkSize` per registry, blob parallelism from --concurrency,
    with `--state-dir` the upload journal, uploads going in `RESUMABLE_CHUNK`s where no
    `maxChunkSize` says otherwise (docs/sync.md#resume), and the run's one bandwidth cap from
    --max-bandwidth."""
    hosts = config.hosts if config is not None else []
    chunk_sizes = {host.host: host.maxChunkSize * _KIB for host in hosts if host.maxChunkSize > 0}
    default_chunk = RESUMABLE_CHUNK if options.state_dir is not None else 0
    return CopySession(
        registries,
        chunk_size_for=lambda registry: chunk_sizes.get(registry, default_chunk),
        blob_parallelism=options.concurrency if options.concurrency > 1 else 4,
        journal=StateDirJournal(options.state_dir) if options.state_dir is not None else NO_JOURNAL,
        bandwidth=Bandwidth(options.max_bandwidth) if options.max_bandwidth is not None else None,
    )


class _Run:
    """One sync run's shared parts, and how each kind of entry is planned into jobs."""

    def __init__(self, session: CopySession, fetcher: HelmFetcher, options: SyncOptions) -> None:
        self.session = session
        self.fetcher = fetcher
        self.options = options
        self.lookups = LookupLimits(options.compare_concurrency)
        # Fetched once, by the first entry with `verify` (docs/verify.md#trusted-root).
        self.trusted_roots = TrustedRoots(options.trusted_root)
        self.export: LayoutExport | None = None  # set for `export`: jobs write to the layout

    def destination(self, repository: Repository) -> Destination:
        if self.export is not None:
            return LayoutDestination(self.export, self.session, repository)
        return RegistryDestination(self.session, repository)

    async def artifact_jobs(self, entry: ArtifactEntry) -> list[_Job]:
        planned = await plan_artifact(
            entry, self.session.registries, self.options.concurrency, self.trusted_roots, self.options.state_dir
        )
        return [
            _Job(
                tag.tag,
                f"{entry.destination}:{tag.tag}",
                partial(_decided, tag.decided)
                if tag.decided
                else partial(
                    run_tag_job, self.session, self.lookups, self.destination(entry.destination_repository), entry, tag
                ),
            )
            for tag in planned
        ]

    async def chart_jobs(self, entry: ChartEntry) -> list[_Job]:
        from fluxmirror.sync.chart_job import run_chart_job  # imported once charts exist, see _chart_entries
        from fluxmirror.sync.chart_plan import plan_chart

        plan = await plan_chart(entry, self.fetcher)
        return [
            _Job(
                version,
                entry.destination_ref(version),
                partial(
                    _in_slot,
                    partial(
                        run_chart_job,
                        self.destination(entry.destination_repository),
                        self.fetcher,
                        entry,
                        plan,
                        version,
                    ),
                ),
            )
            for version in plan.versions
        ]


CredentialsFactory = Callable[[HttpSession], Awaitable[CredentialSource]]
"""Builds the run's credentials once its HTTP session is open (providers mint through it); may
raise a `FluxMirrorError` to stop the run before any entry starts."""


async def _decided(row: TagResult, settings: JobSettings, slots: CopySlots) -> TagResult:
    """A row settled at plan time (a verification that failed or was deferred): nothing to run."""
    del settings, slots
    return row


async def _in_slot(
    run: Callable[[JobSettings], Awaitable[TagResult]], settings: JobSettings, slots: CopySlots
) -> TagResult:
    """A job that holds its copy slot throughout (a chart's: its comparison needs the archive)."""
    async with slots.copying:
        return await run(settings)


async def run_sync(
    config: Config,
    options: SyncOptions,
    credentials: CredentialsFactory,
    progress: Progress,
    cancellation: Cancellation | None = None,
    *,
    export: LayoutExport | None = None,
    finish: Callable[[CopySession], Awaitable[None]] | None = None,
) -> list[Result]:
    """Mirror every entry of `config` (into `export`'s layout instead of the destinations, for
    `export`); returns one report result per entry, in config order, also when `cancellation`
    stops the run part-way. `finish` runs after the jobs, while the run's connections are still
    open, with the run's copy session (a tar export streams its deferred blobs then, under the
    run's bandwidth cap)."""
    if cancellation is None:
        cancellation = Cancellation()
    async with HttpSession(
        user_agent=USER_AGENT, max_connections=run_connections(options), observer=options.observer
    ) as http:
        # First, before anything is logged or planned: a key that cannot sign or an identity that
        # cannot mint ends the run here, in one line.
        source = await credentials(http)
        # Every entry is built, so a broken config fails every shard alike; then the shard's are kept.
        artifacts = pick(options.shard, [ArtifactEntry.of(spec) for spec in config.artifacts], _destination_repository)
        charts = pick(options.shard, await _chart_entries(config.charts), _destination_repository)
        sharded = {"shard": options.shard} if options.shard is not None else {}
        log.info(
            kv(
                "sync started",
                entries=len(artifacts) + len(charts),
                concurrency=options.concurrency,
                retries=options.retries,
                timeout=options.timeout,
                **sharded,
            )
        )
        progress.start(len(artifacts) + len(charts))
        tls = await host_tls(config, options)
        registries = run_registries(http, source, options, tls)
        if not cancellation.requested:
            registries.start_pings(_registries(artifacts, charts, export))
        try:
            run = _Run(copy_session(config, registries, options), HelmFetcher(http), options)
            run.export = export
            if any(artifact.spec.verify is not None for artifact in artifacts):
                # Overlaps the first entry's tag listing; with a verification cache, sigstore-python
                # is loaded only if a signature is not in it.
                run.trusted_roots.start(parse=options.state_dir is None)
            results = await _run_all(run, artifacts, charts, options, progress, cancellation)
            if finish is not None:
                await finish(run.session)
            return results
        finally:
            registries.stop_pings()
            if tls is not None:
                await asyncio.to_thread(tls.close)  # the SPIFFE X.509 source, if one was opened


def _destination_repository(entry: ArtifactEntry | ChartEntry) -> Repository:
    """What an entry is sharded by: the repository it writes, for a chart `<destination>/<name>`."""
    return entry.destination_repository


def _registries(
    artifacts: Sequence[ArtifactEntry], charts: Sequence[ChartEntry], export: LayoutExport | None
) -> list[str]:
    """Every registry the run will speak to, in config order: artifact sources, and the
    destinations unless the run writes a layout instead."""
    sources = [artifact.source_repository.registry for artifact in artifacts]
    destinations = [
        *(artifact.destination_repository.registry for artifact in artifacts),
        *(chart.destination_repository.registry for chart in charts),
    ]
    return list(dict.fromkeys([*sources, *(destinations if export is None else [])]))


async def _run_all(
    run: _Run,
    artifacts: Sequence[ArtifactEntry],
    charts: Sequence[ChartEntry],
    options: SyncOptions,
    progress: Progress,
    cancellation: Cancellation,
) -> list[Result]:
    """Every entry's result, in config order. `--parallel-entries` entries run at once (one by
    default, as the reference runs them); they start in config order as places free up."""
    planners: list[tuple[str, str, bool, Callable[[], Awaitable[Sequence[_Job]]]]] = [
        *((a.source, a.destination, a.spec.overwrite, partial(run.artifact_jobs, a)) for a in artifacts),
        *((c.source, c.destination, c.spec.overwrite, partial(run.chart_jobs, c)) for c in charts),
    ]
    places = asyncio.Semaphore(options.parallel_entries)

    async def entry(
        source: str, destination: str, overwrite: bool, plan: Callable[[], Awaitable[Sequence[_Job]]]
    ) -> Result:
        async with places:
            result = await _run_entry(source, destination, plan, overwrite, options, progress, cancellation)
        progress.entry_finished()
        return result

    return list(await asyncio.gather(*(entry(*planner) for planner in planners)))


async def host_tls(config: Config, options: SyncOptions) -> HostTLS | None:
    """Per-host TLS contexts, built off the loop (files are read); the TLS machinery, cryptography
    included, is imported only for a config that has `tls` settings."""
    if not any(host.tls is not None for host in config.hosts):
        return None
    from fluxmirror.sync.host_tls import host_tls

    return await asyncio.to_thread(host_tls, config.hosts, insecure=options.insecure)


async def _chart_entries(charts: Sequence[Chart]) -> list[ChartEntry]:
    """The Helm machinery is imported only for a config with charts: it costs every other sync
    about 30 ms of start-up, a twentieth of a re-sync with nothing to copy."""
    if not charts:
        return []
    from fluxmirror.sync.chart_plan import build_chart_entries

    return await build_chart_entries(charts)


async def _run_entry(
    source: str,
    destination: str,
    plan: Callable[[], Awaitable[Sequence[_Job]]],
    overwrite: bool,
    options: SyncOptions,
    progress: Progress,
    cancellation: Cancellation,
) -> Result:
    started = time.monotonic()

    async def planning() -> Sequence[_Job]:
        with cancellation.stoppable():
            return await plan()

    try:
        # A task of its own, so that cancelling the plan never cancels the run's task.
        jobs = await asyncio.ensure_future(planning())
    except asyncio.CancelledError:
        if not cancellation.requested:
            raise
        # As Go's cancelled context fails a plan, this one's or a later entry's: no job is run.
        return _plan_failed(source, destination, CANCELED, progress)
    except Exception as exc:  # a PlanError, or a defect: either way only this entry fails
        error = str(exc) if isinstance(exc, PlanError) else unexpected(exc)
        return _plan_failed(source, destination, error, progress)
    log.info(kv("entry started", source=source, jobs=len(jobs)))
    settings = JobSettings.of(options, overwrite=overwrite)
    slots = CopySlots.of(options.concurrency)

    async def run(job: _Job) -> TagResult:
        try:
            with cancellation.stoppable():
                row = await job.run(settings, slots)
        except asyncio.CancelledError:
            if not cancellation.requested:
                raise
            row = canceled_row(job.ident, f"{source}:{job.ident}")  # it never started (or stopped outside its attempts)
        except Exception as exc:  # a defect: the row says so and the other jobs go on
            row = TagResult(tag=job.ident, status=Status.FAILED, error=unexpected(exc))
        progress.job_finished(
            JobOutcome(entry=source, ident=job.ident, status=row.status, destination=job.destination, error=row.error)
        )
        return row

    rows = list(await asyncio.gather(*(run(job) for job in jobs)))
    failures = sum(1 for row in rows if row.status == Status.FAILED)
    log.info(kv("entry finished", source=source, wall=elapsed_since(started), jobs=len(rows), failures=failures))
    return Result(source=source, destination=destination, status=EntryStatus.COMPLETED, tags=rows)


def _plan_failed(source: str, destination: str, error: str, progress: Progress) -> Result:
    log.info(kv("plan failed", entry=source, err=error))
    progress.plan_failed(source, error)
    return Result(source=source, destination=destination, status=EntryStatus.FAILED, error=error, tags=[])
