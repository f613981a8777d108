"""Proof that the in-memory referrers registry (tests/registry) behaves like a real one.

It stands in for a registry with the OCI 1.1 referrers API, so it must be as strict as
distribution where distribution is strict (blobs before manifests, digests verified, blobs
linked per repository), and its pushes must satisfy an independent client, skopeo.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from harness import images, skopeo
from harness.images import OCI_INDEX, TEST_ARTIFACT_TYPE, Response, raw_request, sha256_digest
from registry.fixtures import OCIRegistryFactory
from registry.server import OCIRegistry

SBOM_TYPE = "application/vnd.example.sbom.v1+json"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"


def _call(server: OCIRegistry, method: str, target: str, **kwargs: Any) -> Response:
    return raw_request(method, server.url + target, **kwargs)


def _error_code(response: Response) -> str:
    return str(json.loads(response.body)["errors"][0]["code"])


def _next_link(response: Response) -> str | None:
    match = re.fullmatch(r'<([^>]+)>;\s*rel="next"', response.headers.get("Link", ""))
    return match.group(1) if match else None


def _referrer_pages(server: OCIRegistry, target: str) -> list[Response]:
    """Every page of a referrers listing, following ``Link`` the way a client must."""
    pages: list[Response] = []
    next_target: str | None = target
    while next_target is not None:
        response = _call(server, "GET", next_target)
        assert response.status == 200
        assert response.headers["Content-Type"] == OCI_INDEX
        pages.append(response)
        next_target = _next_link(response)
    return pages


def _manifests(response: Response) -> list[dict[str, Any]]:
    index = json.loads(response.body)
    assert (index["schemaVersion"], index["mediaType"]) == (2, OCI_INDEX)
    return list(index["manifests"])


def _put_manifest(server: OCIRegistry, repo: str, reference: str, obj: images.Pushable) -> Response:
    headers = {"Content-Type": obj.media_type}
    return _call(server, "PUT", f"/v2/{repo}/manifests/{reference}", body=obj.raw, headers=headers)


def test_base_endpoint_and_unknown_routes(referrers_registry: OCIRegistry) -> None:
    base = _call(referrers_registry, "GET", "/v2/")
    assert (base.status, json.loads(base.body)) == (200, {})
    assert base.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert _call(referrers_registry, "GET", "/v2/a/b/nonsense").status == 404
    assert referrers_registry.registry.url == f"http://{referrers_registry.registry.host}"
    assert referrers_registry.registry.host.startswith("127.0.0.1:")


def test_image_and_index_read_back_identically(referrers_registry: OCIRegistry, unique_repo: str) -> None:
    registry = referrers_registry.registry
    amd64 = images.make_image([100, 300], seed=1)
    arm64 = images.make_image([100], seed=2, platform="linux/arm64/v8")
    docker = images.make_image([50], seed=3, media_type=images.DOCKER)
    index = images.make_index([amd64, arm64])
    repo = f"{unique_repo}/deeper/name"  # multi-component names

    assert images.push(registry, repo, "multi", index) == index.digest
    assert images.push(registry, repo, "docker", docker) == docker.digest

    for ref, obj in [("multi", index), (index.digest, index), (arm64.digest, arm64), ("docker", docker)]:
        fetched = images.get_manifest(registry, repo, ref)
        assert (fetched.data, fetched.digest, fetched.media_type) == (obj.raw, obj.digest, obj.media_type)
    for blob in (*amd64.blobs, *arm64.blobs, *docker.blobs):
        assert images.get_blob(registry, repo, blob.digest) == blob.data
    head = _call(referrers_registry, "HEAD", f"/v2/{repo}/manifests/multi")
    assert (head.status, head.body) == (200, b"")
    assert head.headers["Content-Length"] == str(len(index.raw))
    assert head.headers["Docker-Content-Digest"] == index.digest
    assert images.list_tags(registry, repo) == ["docker", "multi"]


def test_unknown_things_are_404_with_spec_codes(referrers_registry: OCIRegistry, unique_repo: str) -> None:
    image = images.make_image([10], seed=4)
    images.push(referrers_registry.registry, unique_repo, "v1", image)

    missing_manifest = _call(referrers_registry, "GET", f"/v2/{unique_repo}/manifests/nope")
    assert (missing_manifest.status, _error_code(missing_manifest)) == (404, "MANIFEST_UNKNOWN")
    missing_blob = _call(referrers_registry, "GET", f"/v2/{unique_repo}/blobs/{sha256_digest(b'x')}")
    assert (missing_blob.status, _error_code(missing_blob)) == (404, "BLOB_UNKNOWN")
    missing_repo = _call(referrers_registry, "GET", f"/v2/{unique_repo}-never/tags/list")
    assert (missing_repo.status, _error_code(missing_repo)) == (404, "NAME_UNKNOWN")
    missing_upload = _call(referrers_registry, "GET", f"/v2/{unique_repo}/blobs/uploads/no-such-session")
    assert (missing_upload.status, _error_code(missing_upload)) == (404, "BLOB_UPLOAD_UNKNOWN")


def test_tags_are_sorted_and_paged_with_link(referrers_registry: OCIRegistry, unique_repo: str) -> None:
    image = images.make_image([10], seed=5)
    for tag in ["v3", "v1", "latest", "v2", "a"]:
        images.push(referrers_registry.registry, unique_repo, tag, image)

    first = _call(referrers_registry, "GET", f"/v2/{unique_repo}/tags/list?n=2")
    assert json.loads(first.body) == {"name": unique_repo, "tags": ["a", "latest"]}
    assert _next_link(first) == f"/v2/{unique_repo}/tags/list?n=2&last=latest"
    last = _call(referrers_registry, "GET", f"/v2/{unique_repo}/tags/list?n=2&last=v2")
    assert (json.loads(last.body)["tags"], _next_link(last)) == (["v3"], None)
    assert images.list_tags(referrers_registry.registry, unique_repo) == ["a", "latest", "v1", "v2", "v3"]


def test_delete_by_digest_removes_manifest_and_its_tags(referrers_registry: OCIRegistry, unique_repo: str) -> None:
    kept, gone = images.make_image([10], seed=6), images.make_image([10], seed=7)
    images.push(referrers_registry.registry, unique_repo, "kept", kept)
    images.push(referrers_registry.registry, unique_repo, "gone", gone)
    images.push(referrers_registry.registry, unique_repo, "gone-too", gone)

    images.delete_manifest(referrers_registry.registry, unique_repo, gone.digest)

    assert images.list_tags(referrers_registry.registry, unique_repo) == ["kept"]
    assert _call(referrers_registry, "HEAD", f"/v2/{unique_repo}/manifests/{gone.digest}").status == 404


def test_referrers_list_descriptors_in_push_order(referrers_registry: OCIRegistry, unique_repo: str) -> None:
    registry = referrers_registry.registry
    image = images.make_image([10], seed=8)
    signature = images.make_artifact(seed=9, subject=image, annotations={"org.example.kind": "signature"})
    helm_style = images.make_artifact(seed=10, artifact_type=None, config_media_type=HELM_CONFIG, subject=image)
    unrelated = images.make_artifact(seed=11, subject=images.make_image([10], seed=12))
    images.push(registry, unique_repo, "v1", image)
    images.push(registry, unique_repo, None, signature)

    put = _put_manifest(referrers_registry, unique_repo, signature.digest, signature)  # again, for the headers
    assert put.status == 201
    assert put.headers["OCI-Subject"] == image.digest
    assert put.headers["Docker-Content-Digest"] == signature.digest
    assert put.headers["Location"] == f"/v2/{unique_repo}/manifests/{signature.digest}"
    for artifact in (helm_style, unrelated):  # unrelated's subject was never pushed: allowed
        images.push(registry, unique_repo, None, artifact)
    assert "OCI-Subject" not in _put_manifest(referrers_registry, unique_repo, "v1", image).headers

    (page,) = _referrer_pages(referrers_registry, f"/v2/{unique_repo}/referrers/{image.digest}")
    assert "OCI-Filters-Applied" not in page.headers
    assert _manifests(page) == [
        {
            "mediaType": images.OCI_MANIFEST,
            "digest": signature.digest,
            "size": len(signature.raw),
            "artifactType": TEST_ARTIFACT_TYPE,
            "annotations": {"org.example.kind": "signature"},
        },
        {
            "mediaType": images.OCI_MANIFEST,
            "digest": helm_style.digest,
            "size": len(helm_style.raw),
            "artifactType": HELM_CONFIG,  # no artifactType: the config's media type
        },
    ]
    unrelated_subject = json.loads(unrelated.raw)["subject"]["digest"]
    (other,) = _referrer_pages(referrers_registry, f"/v2/{unique_repo}/referrers/{unrelated_subject}")
    assert [d["digest"] for d in _manifests(other)] == [unrelated.digest]


def test_referrers_of_unknown_subject_or_repository_are_an_empty_index(
    referrers_registry: OCIRegistry, unique_repo: str
) -> None:
    for repo in (unique_repo, f"{unique_repo}-never-pushed"):
        (page,) = _referrer_pages(referrers_registry, f"/v2/{repo}/referrers/{sha256_digest(b'nothing')}")
        assert _manifests(page) == []
    malformed = _call(referrers_registry, "GET", f"/v2/{unique_repo}/referrers/sha256:xyz")
    assert (malformed.status, _error_code(malformed)) == (400, "DIGEST_INVALID")


def test_referrers_are_per_repository(referrers_registry: OCIRegistry, unique_repo: str) -> None:
    image = images.make_image([10], seed=13)
    signature = images.make_artifact(seed=14, subject=image)
    images.push(referrers_registry.registry, unique_repo, "v1", image)
    images.push(referrers_registry.registry, unique_repo, None, signature)
    images.push(referrers_registry.registry, f"{unique_repo}-other", "v1", image)

    (page,) = _referrer_pages(referrers_registry, f"/v2/{unique_repo}-other/referrers/{image.digest}")
    assert _manifests(page) == []


def test_artifact_type_filter_sets_filters_applied(referrers_registry: OCIRegistry, unique_repo: str) -> None:
    image = images.make_image([10], seed=15)
    signature = images.make_artifact(seed=16, subject=image)
    sbom = images.make_artifact(seed=17, artifact_type=SBOM_TYPE, subject=image)
    images.push(referrers_registry.registry, unique_repo, "v1", image)
    for artifact in (signature, sbom):
        images.push(referrers_registry.registry, unique_repo, None, artifact)

    only_sbom = urlencode({"artifactType": SBOM_TYPE})
    (page,) = _referrer_pages(referrers_registry, f"/v2/{unique_repo}/referrers/{image.digest}?{only_sbom}")

    assert page.headers["OCI-Filters-Applied"] == "artifactType"
    assert [(d["digest"], d["artifactType"]) for d in _manifests(page)] == [(sbom.digest, SBOM_TYPE)]


def test_referrers_paging_follows_link_to_every_referrer(
    oci_registry_factory: OCIRegistryFactory, unique_repo: str
) -> None:
    server = oci_registry_factory(referrers_page_size=2)
    image = images.make_image([10], seed=18)
    artifacts = [
        images.make_artifact(seed=100 + i, artifact_type=SBOM_TYPE if i % 2 else TEST_ARTIFACT_TYPE, subject=image)
        for i in range(5)
    ]
    images.push(server.registry, unique_repo, "v1", image)
    for artifact in artifacts:
        images.push(server.registry, unique_repo, None, artifact)

    pages = _referrer_pages(server, f"/v2/{unique_repo}/referrers/{image.digest}")

    assert [len(_manifests(page)) for page in pages] == [2, 2, 1]
    assert [d["digest"] for page in pages for d in _manifests(page)] == [a.digest for a in artifacts]
    only_test_type = urlencode({"artifactType": TEST_ARTIFACT_TYPE})
    filtered = _referrer_pages(server, f"/v2/{unique_repo}/referrers/{image.digest}?{only_test_type}")
    assert [len(_manifests(page)) for page in filtered] == [2, 1]
    assert all(page.headers["OCI-Filters-Applied"] == "artifactType" for page in filtered)
    assert [d["digest"] for page in filtered for d in _manifests(page)] == [a.digest for a in artifacts[::2]]


def test_registry_without_referrers_api_answers_404(oci_registry_factory: OCIRegistryFactory, unique_repo: str) -> None:
    server = oci_registry_factory(referrers_api=False)
    image = images.make_image([10], seed=19)
    images.push(server.registry, unique_repo, "v1", image)

    assert _call(server, "GET", f"/v2/{unique_repo}/referrers/{image.digest}").status == 404


def test_manifest_before_its_blobs_or_children_is_refused(referrers_registry: OCIRegistry, unique_repo: str) -> None:
    image = images.make_image([10], seed=20)
    index = images.make_index([image])

    early = _put_manifest(referrers_registry, unique_repo, "v1", image)
    assert (early.status, _error_code(early)) == (400, "MANIFEST_BLOB_UNKNOWN")
    orphan_index = _put_manifest(referrers_registry, unique_repo, "multi", index)
    assert (orphan_index.status, _error_code(orphan_index)) == (400, "MANIFEST_UNKNOWN")
    images.push(referrers_registry.registry, f"{unique_repo}-elsewhere", "v1", image)
    still_not_here = _put_manifest(referrers_registry, unique_repo, "v1", image)
    assert (still_not_here.status, _error_code(still_not_here)) == (400, "MANIFEST_BLOB_UNKNOWN")
    wrong_digest = _put_manifest(referrers_registry, f"{unique_repo}-elsewhere", sha256_digest(b"other"), image)
    assert (wrong_digest.status, _error_code(wrong_digest)) == (400, "DIGEST_INVALID")
    assert _call(referrers_registry, "GET", f"/v2/{unique_repo}/tags/list").status == 404


def test_blobs_are_linked_per_repository_and_mountable(referrers_registry: OCIRegistry, unique_repo: str) -> None:
    image = images.make_image([10], seed=21)
    source, target = f"{unique_repo}-source", unique_repo
    images.push(referrers_registry.registry, source, "v1", image)
    layer = image.layers[0].digest
    assert _call(referrers_registry, "HEAD", f"/v2/{target}/blobs/{layer}").status == 404

    mounted = _call(referrers_registry, "POST", f"/v2/{target}/blobs/uploads/?mount={layer}&from={source}")

    assert mounted.status == 201
    assert (mounted.headers["Location"], mounted.headers["Docker-Content-Digest"]) == (
        f"/v2/{target}/blobs/{layer}",
        layer,
    )
    head = _call(referrers_registry, "HEAD", f"/v2/{target}/blobs/{layer}")
    assert (head.status, head.headers["Content-Length"]) == (200, str(image.layers[0].size))
    absent = sha256_digest(b"not anywhere")
    fallback = _call(referrers_registry, "POST", f"/v2/{target}/blobs/uploads/?mount={absent}&from={source}")
    assert fallback.status == 202
    assert fallback.headers["Location"].startswith(f"/v2/{target}/blobs/uploads/")


def test_blob_range_requests(referrers_registry: OCIRegistry, unique_repo: str) -> None:
    data = bytes(range(100))
    digest = sha256_digest(data)
    created = _call(referrers_registry, "POST", f"/v2/{unique_repo}/blobs/uploads/?digest={digest}", body=data)
    assert (created.status, created.headers["Docker-Content-Digest"]) == (201, digest)
    target = f"/v2/{unique_repo}/blobs/{digest}"

    middle = _call(referrers_registry, "GET", target, headers={"Range": "bytes=10-19"})
    assert (middle.status, middle.body, middle.headers["Content-Range"]) == (206, data[10:20], "bytes 10-19/100")
    tail = _call(referrers_registry, "GET", target, headers={"Range": "bytes=90-"})
    assert (tail.status, tail.body, tail.headers["Content-Range"]) == (206, data[90:], "bytes 90-99/100")
    beyond = _call(referrers_registry, "GET", target, headers={"Range": "bytes=100-"})
    assert (beyond.status, beyond.headers["Content-Range"]) == (416, "bytes */100")
    whole = _call(referrers_registry, "GET", target)
    assert (whole.status, whole.body, whole.headers["Docker-Content-Digest"]) == (200, data, digest)
    assert whole.headers["Content-Type"] == "application/octet-stream"


def test_chunked_upload_session(referrers_registry: OCIRegistry, unique_repo: str) -> None:
    data = b"0123456789abcdef"
    started = _call(referrers_registry, "POST", f"/v2/{unique_repo}/blobs/uploads/")
    assert (started.status, started.headers["Range"]) == (202, "0-0")
    location = started.headers["Location"]
    assert location == f"/v2/{unique_repo}/blobs/uploads/{started.headers['Docker-Upload-UUID']}"

    first = _call(referrers_registry, "PATCH", location, body=data[:10], headers={"Content-Range": "0-9"})
    assert (first.status, first.headers["Range"]) == (202, "0-9")
    gap = _call(referrers_registry, "PATCH", location, body=data[12:], headers={"Content-Range": "12-15"})
    assert gap.status == 416
    status = _call(referrers_registry, "GET", first.headers["Location"])
    assert (status.status, status.headers["Range"]) == (204, "0-9")
    done = _call(referrers_registry, "PUT", f"{location}?digest={sha256_digest(data)}", body=data[10:])
    assert (done.status, done.headers["Location"]) == (201, f"/v2/{unique_repo}/blobs/{sha256_digest(data)}")
    assert images.get_blob(referrers_registry.registry, unique_repo, sha256_digest(data)) == data

    again = _call(referrers_registry, "POST", f"/v2/{unique_repo}/blobs/uploads/").headers["Location"]
    wrong = _call(referrers_registry, "PUT", f"{again}?digest={sha256_digest(b'else')}", body=b"payload")
    assert (wrong.status, _error_code(wrong)) == (400, "DIGEST_INVALID")
    gone = _call(referrers_registry, "GET", again)
    assert (gone.status, _error_code(gone)) == (404, "BLOB_UPLOAD_UNKNOWN")


def test_request_log_records_and_resets(referrers_registry: OCIRegistry, unique_repo: str) -> None:
    assert referrers_registry.requests == []
    _call(referrers_registry, "GET", f"/v2/{unique_repo}/tags/list?n=1")
    assert _call(referrers_registry, "HEAD", "/v2/").status == 200

    assert referrers_registry.requests == [("GET", f"/v2/{unique_repo}/tags/list?n=1"), ("HEAD", "/v2/")]
    referrers_registry.reset()
    assert referrers_registry.requests == []
    assert "GET /v2/" in referrers_registry.registry.log()


@pytest.mark.registry
def test_skopeo_copies_in_and_reads_back_exact_bytes(
    referrers_registry: OCIRegistry, unique_repo: str, tmp_path: Path
) -> None:
    image = images.make_image([4096, 1], seed=22)
    layout = images.write_oci_layout(tmp_path / "layout", image, "src")
    registry = referrers_registry.registry

    skopeo.copy(f"oci:{layout}:src", registry.docker_ref(unique_repo, "from-skopeo"))

    assert skopeo.inspect_raw(registry.docker_ref(unique_repo, "from-skopeo")) == image.raw
    assert skopeo.inspect_raw(registry.docker_ref(unique_repo, image.digest), config=True) == image.config.data
    assert images.get_manifest(registry, unique_repo, "from-skopeo").digest == image.digest
    for blob in image.blobs:
        assert images.get_blob(registry, unique_repo, blob.digest) == blob.data
    assert skopeo.list_tags(registry.docker_ref(unique_repo, None)) == ["from-skopeo"]


@pytest.mark.registry
def test_skopeo_copies_an_index_between_repositories(referrers_registry: OCIRegistry, unique_repo: str) -> None:
    index = images.make_index([images.make_image([64], seed=23), images.make_image([64], seed=24)])
    registry = referrers_registry.registry
    images.push(registry, f"{unique_repo}-src", "v1", index)

    skopeo.copy(
        registry.docker_ref(f"{unique_repo}-src", "v1"), registry.docker_ref(unique_repo, "v1"), all_images=True
    )

    assert skopeo.inspect_raw(registry.docker_ref(unique_repo, "v1")) == index.raw
    for child in index.children:
        assert images.get_manifest(registry, unique_repo, child.digest).data == child.raw
