"""Manifest parsing: which children and blobs a copy must move, for every manifest media type."""

from __future__ import annotations

import hashlib
import json

import pytest

from fluxmirror.oci.errors import ManifestError
from fluxmirror.oci.manifests import parse_manifest
from fluxmirror.oci.mediatypes import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1_SIGNED,
    MANIFEST_ACCEPT,
    OCI_INDEX,
    OCI_MANIFEST,
)


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def encode(document: dict[str, object]) -> bytes:
    return json.dumps(document, indent=3).encode()


IMAGE = {
    "schemaVersion": 2,
    "mediaType": OCI_MANIFEST,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest("c"), "size": 2},
    "layers": [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest("l1"), "size": 10},
        {
            "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            "digest": digest("foreign"),
            "size": 99,
            "urls": ["https://example.com/layer"],
        },
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest("l2"), "size": 20},
    ],
    "annotations": {"org.opencontainers.image.version": "1.0"},
}


def test_image_blobs_skip_foreign_layers_and_digest_is_of_the_exact_bytes() -> None:
    raw = encode(IMAGE)
    manifest = parse_manifest(raw, OCI_MANIFEST)
    assert [blob.digest for blob in manifest.blobs] == [digest("c"), digest("l1"), digest("l2")]
    assert manifest.digest == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert (manifest.is_index, manifest.children, manifest.raw) == (False, (), raw)
    assert manifest.annotations == {"org.opencontainers.image.version": "1.0"}


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST])
def test_index_children(media_type: str) -> None:
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest("a"),
                "size": 5,
                "platform": {"os": "linux", "architecture": "amd64"},
            },
            {"mediaType": OCI_MANIFEST, "digest": digest("b"), "size": 6},
        ],
    }
    manifest = parse_manifest(encode(document), media_type)
    assert manifest.is_index and manifest.blobs == ()
    assert [child.digest for child in manifest.children] == [digest("a"), digest("b")]


def test_artifact_with_subject_and_artifact_type() -> None:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest("{}"), "size": 2},
        "layers": [{"mediaType": "application/spdx+json", "digest": digest("sbom"), "size": 3}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": digest("subject"), "size": 7},
    }
    manifest = parse_manifest(encode(document))
    assert manifest.artifact_type == "application/vnd.example.sbom"
    assert manifest.subject is not None and manifest.subject.digest == digest("subject")


def test_schema1_uses_fs_layers_once_and_the_registry_digest() -> None:
    document = {
        "schemaVersion": 1,
        "name": "library/x",
        "tag": "1",
        "fsLayers": [{"blobSum": digest("l1")}, {"blobSum": digest("l2")}, {"blobSum": digest("l1")}],
        "signatures": [],
    }
    manifest = parse_manifest(encode(document), DOCKER_SCHEMA1_SIGNED, digest=digest("registry"))
    assert manifest.media_type == DOCKER_SCHEMA1_SIGNED
    assert [blob.digest for blob in manifest.blobs] == [digest("l1"), digest("l2")]
    assert manifest.digest == digest("registry")


@pytest.mark.parametrize(
    ("content_type", "document", "expected"),
    [
        ("application/json", {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST}, DOCKER_MANIFEST),
        ("", {"schemaVersion": 2, "manifests": []}, OCI_MANIFEST),
        ("", {"schemaVersion": 2, "manifests": [{"digest": digest("a")}]}, OCI_INDEX),
        (f"{OCI_INDEX}; charset=utf-8", {"schemaVersion": 2}, OCI_INDEX),
    ],
    ids=["generic-content-type", "no-type-no-children", "untyped-index", "parameters"],
)
def test_media_type_from_header_then_body(content_type: str, document: dict[str, object], expected: str) -> None:
    assert parse_manifest(encode(document), content_type).media_type == expected


def test_garbage_is_a_manifest_error() -> None:
    with pytest.raises(ManifestError, match=r"^parse manifest: "):
        parse_manifest(b"<html>not json</html>")


def test_accept_header_order() -> None:
    assert MANIFEST_ACCEPT == (
        "application/vnd.docker.distribution.manifest.v1+json,"
        "application/vnd.docker.distribution.manifest.v1+prettyjws,"
        "application/vnd.docker.distribution.manifest.v2+json,"
        "application/vnd.oci.image.manifest.v1+json,"
        "application/vnd.docker.distribution.manifest.list.v2+json,"
        "application/vnd.oci.image.index.v1+json"
    )
