"""`includeReferrers` against a registry with the OCI 1.1 referrers API (tests/registry), as source,
as destination, and mixed with the real docker-registry, which only has the referrers tag schema."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from harness import images
from harness.referrers import (
    IN_TOTO,
    SBOM,
    SIGSTORE,
    TYPES,
    fallback_index,
    fallback_tag,
    publish_referrers,
    referrer,
    rows,
)
from harness.registry import Registry, RegistryFactory
from harness.runner import entry, sync
from registry import OCIRegistry
from registry.fixtures import OCIRegistryFactory

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def plain(registry_factory: RegistryFactory) -> Registry:
    return registry_factory()


def api_referrers(registry: Registry, repo: str, digest: str) -> list[dict[str, Any]]:
    """The registry's own referrers listing, every page, read with urllib (not the product)."""
    found: list[dict[str, Any]] = []
    url: str | None = f"{registry.url}/v2/{repo}/referrers/{digest}"
    while url:
        with urllib.request.urlopen(url, timeout=10) as response:
            found.extend(json.loads(response.read())["manifests"])
            link = response.headers.get("Link", "")
        url = registry.url + link[1 : link.index(">")] if link else None
    return found


def signed_image(
    registry: Registry, repo: str, seed: int, count: int = 3
) -> tuple[images.Manifest, list[images.Manifest]]:
    image = images.make_image([256], seed=seed)
    images.push(registry, repo, "1.0.0", image)
    attached = [referrer(image, TYPES[n % len(TYPES)], seed + 1 + n) for n in range(count)]
    for manifest in attached:
        images.push(registry, repo, None, manifest)
    return image, attached


def manifest_puts(server: OCIRegistry) -> list[str]:
    return [target for method, target in server.requests if method == "PUT" and "/manifests/" in target]


def test_api_to_api_pushes_referrers_without_fallback_tags(
    tmp_path: Path, oci_registry_factory: OCIRegistryFactory, unique_repo: str
) -> None:
    source, destination = oci_registry_factory(), oci_registry_factory()
    image, attached = signed_image(source.registry, unique_repo, 10)
    run = sync(tmp_path, [entry(source.registry, destination.registry, unique_repo, includeReferrers=True)])
    assert (run.code, run.stderr) == (0, "")
    assert rows(run.rows()) == [[(m.digest, t, "copied", "") for m, t in zip(attached, TYPES, strict=True)]]
    assert [
        (d["digest"], d["artifactType"]) for d in api_referrers(destination.registry, unique_repo, image.digest)
    ] == [(d["digest"], d["artifactType"]) for d in api_referrers(source.registry, unique_repo, image.digest)]
    assert not [target for target in manifest_puts(destination) if fallback_tag(image.digest) in target]
    for manifest in attached:
        assert images.get_manifest(destination.registry, unique_repo, manifest.digest).data == manifest.raw

    late = referrer(image, SIGSTORE, 20)
    images.push(source.registry, unique_repo, None, late)
    destination.reset()
    again = sync(tmp_path, [entry(source.registry, destination.registry, unique_repo, includeReferrers=True)])
    assert [status for *_, status, _ in rows(again.rows())[0]] == ["skipped", "skipped", "skipped", "copied"]
    assert manifest_puts(destination) == [f"/v2/{unique_repo}/manifests/{late.digest}"]


def test_paged_source_listing_is_followed_to_the_end(
    tmp_path: Path, oci_registry_factory: OCIRegistryFactory, unique_repo: str
) -> None:
    source, destination = oci_registry_factory(referrers_page_size=2), oci_registry_factory()
    image, attached = signed_image(source.registry, unique_repo, 30, count=5)
    run = sync(tmp_path, [entry(source.registry, destination.registry, unique_repo, includeReferrers=True)])
    assert run.code == 0
    assert [digest for digest, *_ in rows(run.rows())[0]] == [m.digest for m in attached]
    assert {d["digest"] for d in api_referrers(destination.registry, unique_repo, image.digest)} == {
        m.digest for m in attached
    }


def test_api_source_to_plain_registry_maintains_the_fallback_index(
    tmp_path: Path, referrers_registry: OCIRegistry, plain: Registry, unique_repo: str
) -> None:
    image, attached = signed_image(referrers_registry.registry, unique_repo, 40)
    run = sync(tmp_path, [entry(referrers_registry.registry, plain, unique_repo, includeReferrers=True)])
    assert run.code == 0
    listed = fallback_index(plain, unique_repo, image)["manifests"]
    assert [(d["digest"], d["artifactType"]) for d in listed] == sorted(
        (m.digest, t) for m, t in zip(attached, TYPES, strict=True)
    )


def test_fallback_source_to_api_registry_lets_the_registry_index_them(
    tmp_path: Path, registry: Registry, referrers_registry: OCIRegistry, unique_repo: str
) -> None:
    image = images.make_image([256], seed=50)
    images.push(registry, unique_repo, "1.0.0", image)
    attached = [referrer(image, SBOM, 51), referrer(image, IN_TOTO, 52)]
    publish_referrers(registry, unique_repo, image, attached)
    run = sync(tmp_path, [entry(registry, referrers_registry.registry, unique_repo, includeReferrers=True)])
    assert run.code == 0
    assert rows(run.rows()) == [[(attached[0].digest, SBOM, "copied", ""), (attached[1].digest, IN_TOTO, "copied", "")]]
    assert {d["digest"] for d in api_referrers(referrers_registry.registry, unique_repo, image.digest)} == {
        m.digest for m in attached
    }
    assert not [t for t in manifest_puts(referrers_registry) if fallback_tag(image.digest) in t]
