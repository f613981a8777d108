"""Regression tests for runs that do not end politely: SIGKILL mid-transfer, and two runs at once.

Neither needs a hostile server: a killed run is what a node failure or an OOM kill does to a
CronJob, and two overlapping runs are what a slow run and the next schedule do. The destination
must never show a tag whose content is incomplete, and the next run must finish the job.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from harness import images, skopeo
from harness.pacingproxy import PacingProxy
from harness.registry import Registry, RegistryFactory
from harness.runner import Run, entry, start, sync

pytestmark = [pytest.mark.registry, pytest.mark.timeout(120)]


def test_sigkill_mid_transfer_leaves_no_tag_and_the_next_run_completes(
    tmp_path: Path, registry: Registry, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    destination = registry_factory()
    image = images.make_image([1_000_000, 1_000_000], seed=61)  # random bytes: about 2 MB after gzip
    images.push(registry, unique_repo, "1.0.0", image)
    # Pieces larger than any manifest, so only blob downloads are slow (about 1.5 MB/s): the kill
    # lands while a layer is in flight.
    with PacingProxy(registry, piece=(4096, 8192), delay=(0.003, 0.006)) as slow:
        config = [entry(slow.as_registry(), destination, unique_repo)]
        process = start(tmp_path, config)
        try:
            deadline = time.monotonic() + 30
            while not images.uploads_in_progress(destination, unique_repo):
                assert process.poll() is None, f"the run ended (exit {process.returncode}) before any upload began"
                assert time.monotonic() < deadline, "no upload started within 30s"
                time.sleep(0.01)
            process.send_signal(signal.SIGKILL)
        finally:
            process.kill()
            process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL
        assert images.tags_of(destination, unique_repo) == [], "a tag was written before its content"

        again = sync(tmp_path, config)
    assert (again.code, again.stderr) == (0, "")
    assert again.rows() == [{"tag": "1.0.0", "status": "copied", "digest": image.digest}]
    assert skopeo.inspect_raw(destination.docker_ref(unique_repo, "1.0.0")) == image.raw
    for blob in image.blobs:
        assert images.get_blob(destination, unique_repo, blob.digest) == blob.data


def test_two_concurrent_runs_leave_no_broken_tag_and_a_rerun_converges(
    tmp_path: Path, registry: Registry, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    """Both runs push the same blobs at the same moment. distribution 2.8's filesystem driver rewrites
    a blob's link file in place when the second upload commits, so a manifest PUT or blob HEAD racing
    it can fail (`MANIFEST_BLOB_UNKNOWN`, or a 500); skopeo copies hit it too. So a row may fail, but
    only as a reported row: no crash, no tag whose content is incomplete, and the next run finishes."""
    destination = registry_factory()
    content: dict[str, images.Pushable] = {
        "2.0.0": images.make_index(
            [images.make_image([100_000], seed=seed) for seed in (64, 65)], ["linux/amd64", "linux/arm64"]
        ),
        "1.1.0": images.make_image([200_000], seed=63, media_type=images.DOCKER),
        "1.0.0": images.make_image([300_000, 50_000], seed=62),
    }
    for tag, pushed in content.items():
        images.push(registry, unique_repo, tag, pushed)
    config = [entry(registry, destination, unique_repo, selector={"limit": 0})]
    expected = [(tag, pushed.digest) for tag, pushed in content.items()]
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs: list[Run] = list(pool.map(lambda _: sync(tmp_path, config), range(2)))
    for run in runs:
        assert "Traceback" not in run.stderr, "crashed: " + " | ".join(run.stderr.strip().splitlines()[-2:])
        assert [(row["tag"], row["digest"]) for row in run.rows()] == expected
        failed = [row for row in run.rows() if row["status"] == "failed"]
        assert all(row["error"] for row in failed)
        assert {row["status"] for row in run.rows()} <= {"copied", "skipped", "failed"}
        assert run.code == (1 if failed else 0)
    for tag in images.tags_of(destination, unique_repo):
        assert skopeo.inspect_raw(destination.docker_ref(unique_repo, tag)) == content[tag].raw
        skopeo.copy(destination.docker_ref(unique_repo, tag), f"oci:{tmp_path / 'check'}:{tag}", all_images=True)

    rerun = sync(tmp_path, config)
    assert (rerun.code, rerun.stderr) == (0, "")
    assert [(row["tag"], row["digest"]) for row in rerun.rows()] == expected
    assert {row["status"] for row in rerun.rows()} <= {"copied", "skipped"}
    for tag, pushed in content.items():
        assert skopeo.inspect_raw(destination.docker_ref(unique_repo, tag)) == pushed.raw
