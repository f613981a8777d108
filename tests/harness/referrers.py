"""Referrer content for tests: artifacts with a `subject`, and the referrers tag schema's index
(`sha256-<hex>`) as a signer writes it to a registry without the referrers API."""

from __future__ import annotations

import json
from typing import Any

from harness import images
from harness.registry import Registry

SBOM = "application/spdx+json"
IN_TOTO = "application/vnd.in-toto+json"
SIGSTORE = "application/vnd.dev.sigstore.bundle.v0.3+json"
TYPES = (SBOM, IN_TOTO, SIGSTORE)  # the artifact types of the `signed` fixture, in listing order


def fallback_tag(digest: str) -> str:
    return digest.replace(":", "-", 1)


def referrer(subject: images.Pushable, artifact_type: str, seed: int, **extra: Any) -> images.Manifest:
    return images.make_artifact(
        seed=seed, artifact_type=artifact_type, layer_media_type=artifact_type, subject=subject, **extra
    )


def index_entry(manifest: images.Manifest) -> dict[str, Any]:
    """A fallback-index descriptor, keys in the order fluxmirror (like Go's ocispec) writes them."""
    document = json.loads(manifest.raw)
    described: dict[str, Any] = {"mediaType": manifest.media_type, "digest": manifest.digest, "size": len(manifest.raw)}
    if document.get("annotations"):
        described["annotations"] = document["annotations"]
    described["artifactType"] = document.get("artifactType") or document["config"]["mediaType"]
    return described


def publish_referrers(registry: Registry, repo: str, subject: images.Pushable, found: list[images.Manifest]) -> None:
    """Push referrers by digest and the subject's `sha256-<hex>` index, as a signer would on a 2.8 registry."""
    for manifest in found:
        images.push(registry, repo, None, manifest)
    document = {"schemaVersion": 2, "mediaType": images.OCI_INDEX, "manifests": [index_entry(m) for m in found]}
    index = images.Index(images.Blob(images.OCI_INDEX, json.dumps(document).encode()), tuple(found))
    images.push(registry, repo, fallback_tag(subject.digest), index)


def fallback_index(registry: Registry, repo: str, subject: images.Pushable) -> dict[str, Any]:
    fetched = images.get_manifest(registry, repo, fallback_tag(subject.digest), accept=images.OCI_INDEX)
    assert fetched.media_type == images.OCI_INDEX
    document: dict[str, Any] = json.loads(fetched.data)
    return document


def rows(run_rows: list[dict[str, Any]]) -> list[list[tuple[str, str, str, str]]]:
    return [
        [(r["digest"], r.get("artifactType", ""), r["status"], r.get("reason", "")) for r in row.get("referrers", [])]
        for row in run_rows
    ]
