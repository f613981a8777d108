"""SIGTERM and SIGINT cancel a run and still get its report (docs/sync.md#signals).

Kubernetes sends SIGTERM when a CronJob's `activeDeadlineSeconds` passes or its pod is evicted; a
user sends SIGINT with Ctrl-C. Either way the jobs in flight stop, those not yet started never
start, every one of them is a failed row saying `context canceled`, entries not yet planned fail
with `context canceled`, the outcome is printed as usual and the exit code is 1. The source's blob
downloads are paced slow so that the signal lands mid-transfer; the destination must then hold no
tag for a cancelled job, and its abandoned upload must have been DELETEd.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import images
from harness.faultproxy import BLOB_PATH, UPLOAD_PATH, FaultProxy, Pace, Stall
from harness.registry import Registry, RegistryFactory
from harness.runner import entry, finish, start

pytestmark = [pytest.mark.registry, pytest.mark.timeout(120)]

LAYER = 2 * 1024 * 1024
"""About 20 s at the paced rate: the run is always mid-transfer when the signal comes."""


@pytest.fixture(scope="module")
def origin(registry_factory: RegistryFactory) -> Registry:
    """The registry behind the slow source proxy."""
    return registry_factory()


@pytest.fixture
def slow_source(origin: Registry) -> Iterator[FaultProxy]:
    with FaultProxy(upstream=origin) as proxy:
        proxy.add(Pace(method="GET", path=BLOB_PATH, piece=(16 * 1024, 16 * 1024), delay=(0.15, 0.15)))
        yield proxy


def push_tags(origin: Registry, repo: str, *tags: str) -> None:
    for seed, tag in enumerate(tags, start=90):
        images.push(origin, repo, tag, images.make_artifact(seed=seed, layer_sizes=(LAYER,)))


def interrupt_mid_upload(
    process: subprocess.Popen[bytes], destination: Registry, repo: str, *signums: signal.Signals
) -> None:
    """Send ``signums`` (back to back) once an upload to ``destination/repo`` has begun streaming."""
    deadline = time.monotonic() + 30
    while not images.uploads_in_progress(destination, repo):
        assert process.poll() is None, f"the run ended (exit {process.returncode}) before any upload began"
        assert time.monotonic() < deadline, "no upload started within 30s"
        time.sleep(0.01)
    time.sleep(0.3)  # bytes are flowing through the PATCH now
    for signum in signums:
        process.send_signal(signum)


def deleted_uploads(proxy: FaultProxy, repo: str) -> list[int | None]:
    return [
        r.status for r in proxy.requests if r.method == "DELETE" and r.path.startswith(f"/v2/{repo}/blobs/uploads/")
    ]


def test_sigterm_fails_running_and_waiting_jobs_and_later_entries_and_prints_the_report(
    tmp_path: Path,
    origin: Registry,
    slow_source: FaultProxy,
    registry: Registry,
    fault_proxy: FaultProxy,
    unique_repo: str,
) -> None:
    push_tags(origin, unique_repo, "1.0.0", "1.1.0")
    source, destination = slow_source.as_registry(), fault_proxy.as_registry()
    later_repo = f"{unique_repo}-later"
    config = [
        entry(source, destination, unique_repo, selector={"limit": 0}),
        entry(source, destination, unique_repo, later_repo),
    ]
    # One job at a time: 1.1.0 (highest first) is in flight, 1.0.0 waits for its turn.
    process = start(tmp_path, config, "--concurrency", "1", capture=True)
    try:
        interrupt_mid_upload(process, registry, unique_repo, signal.SIGTERM)
        run = finish(process, timeout=20)
    finally:
        process.kill()
    assert (run.code, run.stderr) == (1, "")
    assert run.elapsed < 10, f"took {run.elapsed:.1f}s to stop"
    src = f"{source.host}/{unique_repo}"
    running, later = run.report["report"]["results"]
    assert running["status"] == "completed"
    assert running["tags"] == [
        {"tag": "1.1.0", "status": "failed", "error": f"mirror {src}:1.1.0: context canceled"},
        {"tag": "1.0.0", "status": "failed", "error": f"mirror {src}:1.0.0: context canceled"},
    ]
    assert later == {
        "source": src,
        "destination": f"{destination.host}/{later_repo}",
        "status": "failed",
        "error": "context canceled",
        "tags": [],
    }
    assert run.summary == {
        "entries": 2,
        "copied": 0,
        "overwritten": 0,
        "skipped": 0,
        "drifted": 0,
        "wouldCopy": 0,
        "wouldOverwrite": 0,
        "failed": 3,
        "exitCode": 1,
    }
    # Nothing half-pushed: no manifest or tag for the cancelled job, its upload session deleted
    # (distribution 2.8 answers 404 when the cut PATCH left its signed upload state stale).
    assert images.tags_of(registry, unique_repo) == [] and images.tags_of(registry, later_repo) == []
    assert not [r for r in fault_proxy.requests if r.method == "PUT" and "/manifests/" in r.path]
    assert deleted_uploads(fault_proxy, unique_repo) and set(deleted_uploads(fault_proxy, unique_repo)) <= {204, 404}
    served = sum(r.response_bytes for r in slow_source.requests if r.method == "GET" and "/blobs/" in r.path)
    assert served < LAYER // 2, "the download went on after the signal"


def test_sigint_in_text_mode_prints_the_lines_and_the_summary(
    tmp_path: Path, origin: Registry, slow_source: FaultProxy, registry: Registry, unique_repo: str
) -> None:
    push_tags(origin, unique_repo, "1.0.0")
    source = slow_source.as_registry()
    process = start(tmp_path, [entry(source, registry, unique_repo)], output="text", capture=True)
    try:
        interrupt_mid_upload(process, registry, unique_repo, signal.SIGINT)
        run = finish(process, output="text", timeout=20)
    finally:
        process.kill()
    assert (run.code, run.stderr) == (1, "")
    src = f"{source.host}/{unique_repo}"
    lines = run.stdout.splitlines()
    assert lines[:2] == [
        f"✗ {src}:1.0.0 — mirror {src}:1.0.0: context canceled",
        f"→ {registry.host}/{unique_repo}:1.0.0",
    ]
    assert len(lines) == 3 and re.fullmatch(r"Summary: 1 failed in [0-9.]+m?s\.", lines[2]), lines
    assert images.tags_of(registry, unique_repo) == []


def test_a_second_signal_exits_at_once_with_one_line(
    tmp_path: Path, origin: Registry, slow_source: FaultProxy, registry: Registry, unique_repo: str
) -> None:
    """The destination holds the DELETE of the abandoned upload, so the run is still stopping (for up
    to 5 s) when the second signal comes; it ends the process there, without the report."""
    push_tags(origin, unique_repo, "1.0.0")
    with FaultProxy(upstream=registry) as destination:
        destination.add(Stall(30, method="DELETE", path=UPLOAD_PATH))
        config = [entry(slow_source.as_registry(), destination.as_registry(), unique_repo)]
        process = start(tmp_path, config, capture=True)
        try:
            interrupt_mid_upload(process, registry, unique_repo, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while not [r for r in destination.in_flight if r.startswith(f"DELETE /v2/{unique_repo}/blobs/uploads/")]:
                assert process.poll() is None, f"the run ended (exit {process.returncode}) before its DELETE"
                assert time.monotonic() < deadline, "the upload was not abandoned within 10s"
                time.sleep(0.01)
            process.send_signal(signal.SIGINT)
            run = finish(process, timeout=20)
        finally:
            process.kill()
    assert (run.code, run.stdout) == (1, "")
    assert run.stderr == "✗ interrupted again (SIGINT): exiting without a report\n"
    assert run.elapsed < 4, f"took {run.elapsed:.1f}s to exit"
    assert images.tags_of(registry, unique_repo) == []


def test_sigterm_while_planning_fails_that_entry_and_the_later_ones(
    tmp_path: Path, origin: Registry, slow_source: FaultProxy, registry: Registry, unique_repo: str
) -> None:
    """As Go's cancelled context does: the plan in progress fails with `context canceled`, and every
    later entry's plan fails with it at once (nothing of theirs is asked for)."""
    push_tags(origin, unique_repo, "1.0.0")
    slow_source.add(Pace(method="GET", path="/tags/list$", piece=(1, 1), delay=(0.5, 0.5)))  # a minute or so
    source = slow_source.as_registry()
    later_repo = f"{unique_repo}-later"
    config = [entry(source, registry, unique_repo), entry(source, registry, unique_repo, later_repo)]
    process = start(tmp_path, config, capture=True)
    try:
        deadline = time.monotonic() + 30
        while f"GET /v2/{unique_repo}/tags/list" not in slow_source.in_flight:
            assert process.poll() is None, f"the run ended (exit {process.returncode}) before planning"
            assert time.monotonic() < deadline, "no tag listing within 30s"
            time.sleep(0.01)
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        run = finish(process, timeout=20)
    finally:
        process.kill()
    assert (run.code, run.stderr) == (1, "")
    results = run.report["report"]["results"]
    assert [(r["destination"], r["status"], r["error"], r["tags"]) for r in results] == [
        (f"{registry.host}/{unique_repo}", "failed", "context canceled", []),
        (f"{registry.host}/{later_repo}", "failed", "context canceled", []),
    ]
    assert (run.summary["failed"], run.summary["exitCode"]) == (2, 1)
    assert len([r for r in slow_source.requests if r.path.endswith("/tags/list")]) == 1
