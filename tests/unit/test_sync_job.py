"""Job retries (docs/sync.md#job-retries) and the run's cancellation (docs/sync.md#signals), without a registry.

As in the reference, a job is tried again after ANY failure, not only a transient one: users ride
out a 401/403 while IAM permissions propagate. Only the job's deadline and the run's cancellation
stop it early, and each has its own row error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import pytest

from fluxmirror.api.config import API_VERSION, KIND, Artifact, Config
from fluxmirror.api.duration import Duration
from fluxmirror.api.report import EntryStatus, Result, Status, TagResult
from fluxmirror.auth.credentials import Credential
from fluxmirror.errors import FluxMirrorError
from fluxmirror.http.session import HttpSession
from fluxmirror.oci.errors import DigestMismatchError
from fluxmirror.sync import engine, job
from fluxmirror.sync.engine import Cancellation, _Job, _run_entry
from fluxmirror.sync.events import JobOutcome
from fluxmirror.sync.job import CopySlots, JobFailure, JobSettings, run_with_retries
from fluxmirror.sync.options import SyncOptions

DIGEST = "sha256:" + "a" * 64
DENIED = "PUT https://r.example/v2/app/manifests/1.0.0: DENIED: requested access to the resource is denied"


def settings(retries: int = 3, timeout: float = 60) -> JobSettings:
    return JobSettings(retries=retries, timeout=Duration.from_seconds(timeout), overwrite=False, dry_run=False)


class Script:
    """An attempt that fails with the given errors in turn, then copies; counts its calls."""

    def __init__(self, *failures: FluxMirrorError) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> TagResult:
        self.calls += 1
        if self.failures:
            raise JobFailure(self.failures.pop(0), DIGEST)
        return TagResult(tag="1.0.0", status=Status.COPIED, digest=DIGEST)


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job, "_BACKOFF_SECONDS", 0.001)


async def retry(attempt: Callable[[], Awaitable[TagResult]], job_settings: JobSettings) -> TagResult:
    return await run_with_retries(attempt, row_id="1.0.0", job_id="r.example/app:1.0.0", settings=job_settings)


@pytest.mark.usefixtures("fast_backoff")
@pytest.mark.parametrize(
    "error",
    [
        FluxMirrorError(DENIED),  # a 403 while IAM permissions propagate
        DigestMismatchError("blob sha256:b: content hashes to sha256:c"),
        FluxMirrorError("GET https://r.example/v2/: status 503", temporary=True),
    ],
    ids=["refusal", "digest-mismatch", "transient"],
)
async def test_any_failure_is_retried(error: FluxMirrorError) -> None:
    attempt = Script(error)
    row = await retry(attempt, settings(retries=1))
    assert (row.status, attempt.calls) == (Status.COPIED, 2)


@pytest.mark.usefixtures("fast_backoff")
async def test_retries_zero_means_one_attempt_and_the_row_keeps_the_error() -> None:
    attempt = Script(FluxMirrorError(DENIED))
    row = await retry(attempt, settings(retries=0))
    assert (attempt.calls, row) == (1, TagResult(tag="1.0.0", status=Status.FAILED, digest=DIGEST, error=DENIED))


@pytest.mark.usefixtures("fast_backoff")
async def test_attempts_are_retries_plus_one_and_the_last_error_is_reported() -> None:
    attempt = Script(*(FluxMirrorError(f"denied {n}") for n in range(10)))
    row = await retry(attempt, settings(retries=3))
    assert (attempt.calls, row.status, row.error, row.digest) == (4, Status.FAILED, "denied 3", DIGEST)


async def test_each_retry_is_logged_with_its_backoff(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fluxmirror")
    attempt = Script(FluxMirrorError("denied"), FluxMirrorError("denied"))
    started = asyncio.get_running_loop().time()
    row = await retry(attempt, settings(retries=2))
    assert row.status == Status.COPIED
    assert asyncio.get_running_loop().time() - started >= 0.6  # 200 ms, then 400 ms
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("job failed")] == [
        "job failed, retrying id=r.example/app:1.0.0 attempt=1 backoff=200ms err=denied",
        "job failed, retrying id=r.example/app:1.0.0 attempt=2 backoff=400ms err=denied",
    ]


async def test_the_deadline_ends_the_job_without_a_retry() -> None:
    calls = 0

    async def hangs() -> TagResult:
        nonlocal calls
        calls += 1
        await asyncio.sleep(60)
        raise AssertionError("unreachable")

    row = await retry(hangs, settings(timeout=0.05))
    assert (calls, row.error) == (1, "mirror r.example/app:1.0.0: context deadline exceeded (--timeout 50ms)")


async def test_no_room_for_the_next_attempt_exhausts_the_job() -> None:
    attempt = Script(FluxMirrorError("denied"))
    row = await retry(attempt, settings(timeout=0.1))  # the first backoff (200 ms) does not fit
    assert (attempt.calls, row.error, row.digest) == (
        1,
        "attempts exhausted (1) after context deadline exceeded; last: denied",
        DIGEST,
    )


async def test_cancelled_in_its_first_attempt_the_job_fails_with_context_canceled() -> None:
    started = asyncio.Event()

    async def hangs() -> TagResult:
        started.set()
        await asyncio.sleep(60)
        raise AssertionError("unreachable")

    task = asyncio.ensure_future(retry(hangs, settings()))
    await started.wait()
    task.cancel()
    assert await task == TagResult(
        tag="1.0.0", status=Status.FAILED, error="mirror r.example/app:1.0.0: context canceled"
    )


async def test_cancelled_after_a_failed_attempt_the_job_keeps_the_last_error() -> None:
    attempt = Script(FluxMirrorError("denied"))
    task = asyncio.ensure_future(retry(attempt, settings()))
    while attempt.calls == 0:
        await asyncio.sleep(0.01)
    task.cancel()  # in the 200 ms backoff
    row = await task
    assert (attempt.calls, row.status, row.digest) == (1, Status.FAILED, DIGEST)
    assert row.error == "attempts exhausted (1) after context canceled; last: denied"


# --- the engine's cancellation point -------------------------------------------------------------


class Recorder:
    """A `Progress` that keeps what it was told."""

    def __init__(self) -> None:
        self.jobs: list[JobOutcome] = []
        self.plan_failures: list[tuple[str, str]] = []

    def start(self, entries: int) -> None:
        pass

    def job_finished(self, outcome: JobOutcome) -> None:
        self.jobs.append(outcome)

    def plan_failed(self, entry: str, error: str) -> None:
        self.plan_failures.append((entry, error))

    def entry_finished(self) -> None:
        pass

    def stop(self) -> None:
        pass


OPTIONS = SyncOptions(concurrency=1, retries=3, timeout=Duration.from_seconds(60))


def hanging_job(ident: str, started: asyncio.Event) -> _Job:
    """A job whose one attempt never ends, run through the real retry loop."""

    async def attempt() -> TagResult:
        started.set()
        await asyncio.sleep(60)
        raise AssertionError("unreachable")

    async def run(job_settings: JobSettings, slots: CopySlots) -> TagResult:
        async with slots.copying:
            return await run_with_retries(attempt, row_id=ident, job_id=f"src:{ident}", settings=job_settings)

    return _Job(ident, f"dst:{ident}", run)


async def entry_run(
    plan: Callable[[], Awaitable[Sequence[_Job]]], cancellation: Cancellation, progress: Recorder
) -> Result:
    return await _run_entry("src", "dst", plan, False, OPTIONS, progress, cancellation)


async def test_cancel_fails_the_running_job_and_the_waiting_one_which_never_starts() -> None:
    cancellation, progress = Cancellation(), Recorder()
    first, second = asyncio.Event(), asyncio.Event()

    async def plan() -> Sequence[_Job]:
        return [hanging_job("2.0.0", first), hanging_job("1.0.0", second)]

    task = asyncio.ensure_future(entry_run(plan, cancellation, progress))
    await first.wait()  # concurrency 1: 1.0.0 waits for its turn
    cancellation.cancel()
    result = await task
    assert not second.is_set()
    assert result.status == EntryStatus.COMPLETED
    assert [(row.tag, row.status, row.error) for row in result.tags] == [
        ("2.0.0", Status.FAILED, "mirror src:2.0.0: context canceled"),
        ("1.0.0", Status.FAILED, "mirror src:1.0.0: context canceled"),
    ]
    assert {(o.ident, o.error) for o in progress.jobs} == {
        ("2.0.0", "mirror src:2.0.0: context canceled"),
        ("1.0.0", "mirror src:1.0.0: context canceled"),
    }


async def test_cancel_fails_the_plan_in_progress_and_every_later_one_without_planning_it() -> None:
    cancellation, progress = Cancellation(), Recorder()
    planning = asyncio.Event()
    planned_later = False

    async def slow_plan() -> Sequence[_Job]:
        planning.set()
        await asyncio.sleep(60)
        raise AssertionError("unreachable")

    async def later_plan() -> Sequence[_Job]:
        nonlocal planned_later
        planned_later = True
        return []

    task = asyncio.ensure_future(entry_run(slow_plan, cancellation, progress))
    await planning.wait()
    cancellation.cancel()
    failed = Result(source="src", destination="dst", status=EntryStatus.FAILED, error="context canceled", tags=[])
    assert await task == failed
    assert await entry_run(later_plan, cancellation, progress) == failed
    assert not planned_later
    assert progress.plan_failures == [("src", "context canceled"), ("src", "context canceled")]
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0  # only the engine's own tasks were cancelled


async def test_a_run_cancelled_before_it_starts_still_returns_a_result_per_entry() -> None:
    cancellation = Cancellation()
    cancellation.cancel()
    config = Config(
        apiVersion=API_VERSION,
        kind=KIND,
        artifacts=[Artifact(source=f"127.0.0.1:1/{name}", destination="127.0.0.1:1/bb") for name in ("aa", "cc")],
    )

    async def no_credentials(http: HttpSession) -> NoCredentials:
        return NoCredentials()

    results = await engine.run_sync(config, OPTIONS, no_credentials, Recorder(), cancellation)
    assert [(r.source, r.status, r.error) for r in results] == [
        ("127.0.0.1:1/aa", EntryStatus.FAILED, "context canceled"),
        ("127.0.0.1:1/cc", EntryStatus.FAILED, "context canceled"),
    ]


class NoCredentials:
    async def resolve(self, registry: str, repository: str) -> Credential:
        raise AssertionError("a cancelled run asks for no credential")


class JobRetries:
    """The one RunObserver method jobs call; the traffic side is never reached here."""

    def __init__(self) -> None:
        self.count = 0

    def job_retrying(self) -> None:
        self.count += 1

    def exchanged(self, exchange: object) -> None:
        raise AssertionError("no HTTP here")

    def retrying(self, host: str) -> None:
        raise AssertionError("no HTTP here")

    def limited(self, host: str, limit: int) -> None:
        raise AssertionError("no HTTP here")


@pytest.mark.usefixtures("fast_backoff")
@pytest.mark.parametrize(("failures", "retries", "told"), [(0, 3, 0), (2, 3, 2), (3, 1, 1)])
async def test_each_retry_of_a_job_is_told_to_the_runs_observer(failures: int, retries: int, told: int) -> None:
    observer = JobRetries()
    job_settings = JobSettings.of(SyncOptions(retries=retries, observer=observer))
    await retry(Script(*[FluxMirrorError(DENIED)] * failures), job_settings)
    assert observer.count == told
