"""`includeReferrers` end to end on the real docker-registry, which has no referrers API: the source
is read through the referrers tag schema and the destination's fallback index is kept by us."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import images, skopeo
from harness.referrers import (
    IN_TOTO,
    SBOM,
    SIGSTORE,
    TYPES,
    fallback_index,
    fallback_tag,
    index_entry,
    publish_referrers,
    referrer,
    rows,
)
from harness.registry import Registry, RegistryFactory
from harness.runner import entry, sync

pytestmark = pytest.mark.registry

Signed = tuple[images.Manifest, list[images.Manifest]]
"""An image and the referrers attached to it."""


@pytest.fixture(scope="module")
def target(registry_factory: RegistryFactory) -> Registry:
    return registry_factory()


@pytest.fixture
def signed(registry: Registry, unique_repo: str) -> Signed:
    """An image tagged 1.0.0 with an SBOM, an in-toto attestation and a sigstore bundle attached."""
    image = images.make_image([300], seed=41)
    images.push(registry, unique_repo, "1.0.0", image)
    attached = [
        referrer(image, SBOM, 42, annotations={"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}),
        referrer(image, IN_TOTO, 43),
        referrer(image, SIGSTORE, 44),
    ]
    publish_referrers(registry, unique_repo, image, attached)
    return image, attached


def test_referrers_copied_then_skipped_and_new_one_added(
    tmp_path: Path, registry: Registry, target: Registry, unique_repo: str, signed: Signed
) -> None:
    image, attached = signed
    config = [entry(registry, target, unique_repo, includeReferrers=True)]
    run = sync(tmp_path, config)
    assert (run.code, run.stderr) == (0, "")
    assert [(r["tag"], r["status"], r["digest"]) for r in run.rows()] == [("1.0.0", "copied", image.digest)]
    assert rows(run.rows()) == [[(m.digest, t, "copied", "") for m, t in zip(attached, TYPES, strict=True)]]
    assert run.summary["copied"] == 1  # referrer rows never count
    for manifest in attached:
        assert skopeo.inspect_raw(target.docker_ref(unique_repo, manifest.digest)) == manifest.raw
    expected = sorted((index_entry(m) for m in attached), key=lambda d: d["digest"])
    assert fallback_index(target, unique_repo, image) == {
        "schemaVersion": 2,
        "mediaType": images.OCI_INDEX,
        "manifests": expected,
    }

    again = sync(tmp_path, config)
    assert again.code == 0
    assert [(r["status"], r["reason"]) for r in again.rows()] == [("skipped", "up-to-date")]
    assert rows(again.rows()) == [
        [(m.digest, t, "skipped", "up-to-date") for m, t in zip(attached, TYPES, strict=True)]
    ]

    late = referrer(image, SIGSTORE, 45)
    publish_referrers(registry, unique_repo, image, [*attached, late])
    third = sync(tmp_path, config, "-o", "json")
    assert [status for *_, status, _ in rows(third.rows())[0]] == ["skipped", "skipped", "skipped", "copied"]
    assert {d["digest"] for d in fallback_index(target, unique_repo, image)["manifests"]} == {
        m.digest for m in [*attached, late]
    }


def test_dry_run_forecasts_referrers_and_writes_nothing(
    tmp_path: Path, registry: Registry, target: Registry, unique_repo: str, signed: Signed
) -> None:
    _, attached = signed
    run = sync(tmp_path, [entry(registry, target, unique_repo, includeReferrers=True)], "--dry-run")
    assert run.code == 0
    assert [r["status"] for r in run.rows()] == ["would-copy"]
    assert [status for *_, status, _ in rows(run.rows())[0]] == ["would-copy"] * len(attached)
    assert unique_repo not in images.catalog(target)


def test_without_include_referrers_rows_have_none(
    tmp_path: Path, registry: Registry, target: Registry, unique_repo: str, signed: Signed
) -> None:
    run = sync(tmp_path, [entry(registry, target, unique_repo)])
    assert run.code == 0
    assert "referrers" not in run.rows()[0]
    assert images.list_tags(target, unique_repo) == ["1.0.0"]


def test_existing_destination_fallback_entries_are_kept(
    tmp_path: Path, registry: Registry, target: Registry, unique_repo: str, signed: Signed
) -> None:
    image, attached = signed
    images.push(target, unique_repo, "1.0.0", image)
    local = referrer(image, "application/vnd.example.local-only", 50)
    publish_referrers(target, unique_repo, image, [local])
    run = sync(tmp_path, [entry(registry, target, unique_repo, includeReferrers=True)])
    assert run.code == 0
    assert [r["status"] for r in run.rows()] == ["skipped"]
    listed = [d["digest"] for d in fallback_index(target, unique_repo, image)["manifests"]]
    assert listed == sorted(m.digest for m in [*attached, local])


def test_referrer_failure_fails_its_tag_with_partial_rows(
    tmp_path: Path, registry: Registry, target: Registry, unique_repo: str
) -> None:
    image = images.make_image([200], seed=61)
    images.push(registry, unique_repo, "1.0.0", image)
    present = referrer(image, SBOM, 62)
    missing = referrer(image, SIGSTORE, 63)
    publish_referrers(registry, unique_repo, image, [present, missing])
    images.delete_manifest(registry, unique_repo, missing.digest)
    run = sync(tmp_path, [entry(registry, target, unique_repo, includeReferrers=True)], "--retries", "0")
    assert run.code == 1
    [row] = run.rows()
    assert (row["status"], row["digest"]) == ("failed", image.digest)
    assert row["error"].startswith(
        f"copy referrer {registry.host}/{unique_repo}@{missing.digest} -> {target.host}/{unique_repo}@{missing.digest}: "
    )
    assert "MANIFEST_UNKNOWN" in row["error"]
    assert rows(run.rows()) == [[(present.digest, SBOM, "copied", ""), (missing.digest, SIGSTORE, "failed", "")]]
    assert run.summary["failed"] == 1


def test_referrers_tag_that_is_not_an_index_fails_the_entry_at_plan_time(
    tmp_path: Path, registry: Registry, target: Registry, unique_repo: str
) -> None:
    image = images.make_image([200], seed=71)
    images.push(registry, unique_repo, "1.0.0", image)
    images.push(registry, unique_repo, fallback_tag(image.digest), images.make_artifact(seed=72))
    run = sync(tmp_path, [entry(registry, target, unique_repo, includeReferrers=True)])
    assert run.code == 1
    result = run.report["report"]["results"][0]
    assert (result["status"], result["tags"]) == ("failed", [])
    assert result["error"].startswith(f"snapshot referrers for {registry.host}/{unique_repo}:1.0.0: ")
    assert "not an OCI image index" in result["error"]
