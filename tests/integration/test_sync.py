"""`fluxmirror sync` end to end: the real CLI against real registries, cross-checked with skopeo."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from harness import images, skopeo
from harness.registry import Registry, RegistryFactory
from harness.runner import entry, sync

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def target(registry_factory: RegistryFactory) -> Registry:
    return registry_factory()


def test_images_and_index_copied_with_identical_digests(
    tmp_path: Path, registry: Registry, target: Registry, unique_repo: str
) -> None:
    oci = images.make_image([2000, 50_000], seed=1)
    docker = images.make_image([3000], seed=2, media_type=images.DOCKER)
    index = images.make_index([images.make_image([100], seed=s) for s in (3, 4)], ["linux/amd64", "linux/arm64"])
    for tag, content in (("1.0.0", oci), ("1.1.0", docker), ("2.0.0", index)):
        images.push(registry, unique_repo, tag, content)
    run = sync(tmp_path, [entry(registry, target, unique_repo, selector={"limit": 0})])
    assert (run.code, run.stderr) == (0, "")
    assert [(row["tag"], row["status"], row["digest"]) for row in run.rows()] == [
        ("2.0.0", "copied", index.digest),
        ("1.1.0", "copied", docker.digest),
        ("1.0.0", "copied", oci.digest),
    ]
    for tag, content in (("1.0.0", oci), ("1.1.0", docker), ("2.0.0", index)):
        assert skopeo.inspect_raw(target.docker_ref(unique_repo, tag)) == content.raw
    assert run.summary == {
        "entries": 1, "copied": 3, "overwritten": 0, "skipped": 0, "drifted": 0,
        "wouldCopy": 0, "wouldOverwrite": 0, "failed": 0, "exitCode": 0,
    }  # fmt: skip
    again = sync(tmp_path, [entry(registry, target, unique_repo, selector={"limit": 0})])
    assert again.code == 0
    assert [(row["status"], row["reason"]) for row in again.rows()] == [("skipped", "up-to-date")] * 3


def test_selector_picks_highest_and_report_keeps_plan_order(
    tmp_path: Path, registry: Registry, target: Registry, unique_repo: str
) -> None:
    for number, tag in enumerate(["1.2.0", "1.10.0", "2.0.0-rc.1", "latest", "1.9.3"]):
        images.push(registry, unique_repo, tag, images.make_artifact(seed=100 + number))
    run = sync(tmp_path, [entry(registry, target, unique_repo, selector={"semver": ">=1.0.0", "limit": 2})])
    assert [row["tag"] for row in run.rows()] == ["1.10.0", "1.9.3"]
    assert images.list_tags(target, unique_repo) == ["1.10.0", "1.9.3"]


def test_drift_is_reported_then_overwritten(
    tmp_path: Path, registry: Registry, target: Registry, unique_repo: str
) -> None:
    source = images.make_artifact(seed=7)
    other = images.make_artifact(seed=8)
    images.push(registry, unique_repo, "1.0.0", source)
    images.push(target, unique_repo, "1.0.0", other)
    config = [entry(registry, target, unique_repo)]
    drifted = sync(tmp_path, config)
    assert drifted.code == 2 and drifted.summary["exitCode"] == 2
    assert drifted.rows() == [{"tag": "1.0.0", "status": "drifted", "digest": source.digest}]
    assert images.get_manifest(target, unique_repo, "1.0.0").digest == other.digest
    tolerated = sync(tmp_path, config, "--drift-exit-code", "0")
    assert (tolerated.code, tolerated.summary["exitCode"]) == (0, 2)
    preview = sync(tmp_path, config, "--dry-run", "--overwrite")
    assert (preview.code, preview.rows()[0]["status"]) == (0, "would-overwrite")
    overwritten = sync(tmp_path, config, "--overwrite")
    assert (overwritten.code, overwritten.rows()[0]["status"]) == (0, "overwritten")
    assert images.get_manifest(target, unique_repo, "1.0.0").digest == source.digest


def test_dry_run_writes_nothing(
    tmp_path: Path, registry: Registry, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    empty = registry_factory()
    images.push(registry, unique_repo, "1.0.0", images.make_image([500], seed=9))
    run = sync(tmp_path, [entry(registry, empty, unique_repo)], "--dry-run")
    assert run.code == 0
    assert [(row["status"], row["digest"][:7]) for row in run.rows()] == [("would-copy", "sha256:")]
    assert run.summary["wouldCopy"] == 1
    assert images.catalog(empty) == []


def test_missing_source_fails_the_entry_and_others_still_run(
    tmp_path: Path, registry: Registry, target: Registry, unique_repo: str
) -> None:
    images.push(registry, unique_repo, "1.0.0", images.make_artifact(seed=10))
    run = sync(tmp_path, [entry(registry, target, "t/does-not-exist"), entry(registry, target, unique_repo)])
    assert run.code == 1 and run.summary["failed"] == 1 and run.summary["copied"] == 1
    failed = run.report["report"]["results"][0]
    assert failed["status"] == "failed" and failed["tags"] == []
    assert failed["error"].startswith(f"list tags {registry.host}/t/does-not-exist: GET http://{registry.host}/v2/")
    assert "NAME_UNKNOWN" in failed["error"]


def test_text_output_lines_and_summary(tmp_path: Path, registry: Registry, target: Registry, unique_repo: str) -> None:
    images.push(registry, unique_repo, "3.0.0", images.make_artifact(seed=11))
    run = sync(tmp_path, [entry(registry, target, unique_repo), entry(registry, target, "t/nope")], output="text")
    source = f"{registry.host}/{unique_repo}"
    lines = run.stdout.splitlines()
    assert lines[:2] == [f"✓ {source}:3.0.0 (copied)", f"→ {target.host}/{unique_repo}:3.0.0"]
    assert lines[2].startswith(f"✗ {registry.host}/t/nope — plan failed: list tags {registry.host}/t/nope: ")
    assert lines[3].startswith("Summary: 1 copied, 1 failed in ") and lines[3].endswith(".")
    assert (run.code, run.stderr) == (1, "")


def test_yaml_output(tmp_path: Path, registry: Registry, target: Registry, unique_repo: str) -> None:
    images.push(registry, unique_repo, "1.0.0", images.make_artifact(seed=12))
    run = sync(tmp_path, [entry(registry, target, unique_repo)], output="yaml")
    document = yaml.safe_load(run.stdout)
    assert "$schema" not in document
    assert document["report"]["results"][0]["tags"][0]["status"] == "copied"


def test_verbose_streams_the_log_on_stderr(
    tmp_path: Path, registry: Registry, target: Registry, unique_repo: str
) -> None:
    image = images.make_image([1000], seed=13)
    images.push(registry, unique_repo, "1.0.0", image)
    run = sync(tmp_path, [entry(registry, target, unique_repo)], "--verbose", output="text")
    assert run.stdout == ""
    log = run.stderr
    assert f"mirroring tag src={registry.host}/{unique_repo}:1.0.0 dst={target.host}/{unique_repo}:1.0.0" in log
    for blob in image.blobs:
        assert f"pushed blob: {blob.digest}" in log
    assert "tag done" in log and "status=copied" in log
    assert "sync complete entries=1 copied=1" in log


def test_empty_sort_by_means_semver(tmp_path: Path, registry: Registry, target: Registry, unique_repo: str) -> None:
    for number, tag in enumerate(["1.2.0", "1.10.0", "latest"]):
        images.push(registry, unique_repo, tag, images.make_artifact(seed=200 + number))
    run = sync(tmp_path, [entry(registry, target, unique_repo, selector={"sortBy": "", "limit": 0})])
    assert (run.code, run.stderr) == (0, "")
    assert [row["tag"] for row in run.rows()] == ["1.10.0", "1.2.0"]
