"""How blobs travel: chunked uploads, cross-repository mounts, and recovery from injected faults."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from harness import images, skopeo
from harness.faultproxy import (
    BLOB_PATH,
    CorruptDownload,
    CutDownload,
    CutUpload,
    FaultProxy,
    Pace,
    RedirectToBlobHost,
    Respond,
)
from harness.registry import Registry, RegistryFactory
from harness.runner import entry, sync

from fluxmirror.oci.blobs import WHOLE_MAX

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def origin(registry_factory: RegistryFactory) -> Registry:
    """A second plain registry: the far side of every proxied transfer."""
    return registry_factory()


def uploads(proxy: FaultProxy, repo: str, method: str) -> list[str]:
    return [r.query for r in proxy.requests if r.method == method and r.path.startswith(f"/v2/{repo}/blobs/uploads/")]


def test_max_chunk_size_splits_uploads(
    tmp_path: Path, origin: Registry, fault_proxy: FaultProxy, unique_repo: str
) -> None:
    artifact = images.make_artifact(seed=41, layer_sizes=(10 * 1024 + 5,))
    images.push(origin, unique_repo, "1.0.0", artifact)
    destination = fault_proxy.as_registry()
    run = sync(
        tmp_path, [entry(origin, destination, unique_repo)], hosts=[{"host": destination.host, "maxChunkSize": 4}]
    )
    assert (run.code, run.rows()[0]["status"]) == (0, "copied")
    ranges = [r.headers.get("Content-Range") for r in fault_proxy.requests if r.method == "PATCH"]
    assert ranges.count("0-4095") == 1 and "4096-8191" in ranges and "8192-10244" in ranges
    assert all(r.request_bytes <= 4096 for r in fault_proxy.requests if r.method == "PATCH")
    assert images.get_blob(destination, unique_repo, artifact.layers[0].digest) == artifact.layers[0].data


def test_blob_already_pushed_in_the_run_is_mounted(
    tmp_path: Path, origin: Registry, fault_proxy: FaultProxy, unique_repo: str
) -> None:
    image = images.make_image([20_000, 30_000], seed=42)
    images.push(origin, unique_repo, "1.0.0", image)
    destination = fault_proxy.as_registry()
    second = f"{unique_repo}-second"
    run = sync(tmp_path, [entry(origin, destination, unique_repo), entry(origin, destination, unique_repo, second)])
    assert [r["tags"][0]["status"] for r in run.report["report"]["results"]] == ["copied", "copied"]
    mounts = [r for r in fault_proxy.requests if r.method == "POST" and r.path == f"/v2/{second}/blobs/uploads/"]
    assert {r.status for r in mounts} == {201} and len(mounts) == len(image.blobs)
    assert all(f"from={unique_repo}".replace("/", "%2F") in r.query or f"from={unique_repo}" in r.query for r in mounts)
    assert uploads(fault_proxy, second, "PATCH") == []
    assert skopeo.inspect_raw(destination.docker_ref(second, "1.0.0")) == image.raw


def test_transient_errors_then_success(
    tmp_path: Path, origin: Registry, fault_proxy: FaultProxy, unique_repo: str
) -> None:
    artifact = images.make_artifact(seed=43)
    images.push(origin, unique_repo, "1.0.0", artifact)
    fault_proxy.add(Respond(503, method="POST", path="/blobs/uploads/"))
    fault_proxy.add(Respond(429, {"Retry-After": "1"}, method="PUT", path="/manifests/"))
    destination = fault_proxy.as_registry()
    run = sync(tmp_path, [entry(origin, destination, unique_repo)])
    assert (run.code, run.rows()[0]["status"]) == (0, "copied")
    statuses = [(r.method, r.status) for r in fault_proxy.requests if r.method in ("POST", "PUT")]
    assert ("POST", 503) in statuses and ("PUT", 429) in statuses
    assert images.get_manifest(destination, unique_repo, "1.0.0").digest == artifact.digest


def test_upload_cut_mid_blob_recovers_with_digest_intact(
    tmp_path: Path, origin: Registry, fault_proxy: FaultProxy, unique_repo: str
) -> None:
    artifact = images.make_artifact(seed=44, layer_sizes=(WHOLE_MAX + 300_000,))
    images.push(origin, unique_repo, "1.0.0", artifact)
    fault_proxy.add(CutUpload(100_000))
    destination = fault_proxy.as_registry()
    run = sync(tmp_path, [entry(origin, destination, unique_repo)])
    assert (run.code, run.rows()[0]["status"]) == (0, "copied")
    upload_calls = [(r.method, r.status) for r in fault_proxy.requests if "/blobs/uploads/" in r.path]
    after_cut = upload_calls[upload_calls.index(("PATCH", None)) :]
    # The client asks where the upload stands; distribution 2.8 signs the offset into the upload
    # URL, so the cut session is lost (404) and a new one is opened.
    assert ("GET", 404) in after_cut
    assert ("POST", 202) in after_cut[after_cut.index(("GET", 404)) :]
    layer = artifact.layers[0]
    assert images.get_blob(destination, unique_repo, layer.digest) == layer.data


def test_a_small_blob_cut_mid_put_goes_again_in_a_new_session(
    tmp_path: Path, origin: Registry, fault_proxy: FaultProxy, unique_repo: str
) -> None:
    """A small blob rides its committing PUT. A PUT cut mid-way cannot be continued, so the cut
    session is cancelled and the blob, read again from the source, goes in a new session: within
    the same attempt, so the job is not retried."""
    artifact = images.make_artifact(seed=49, layer_sizes=(300_000,))
    images.push(origin, unique_repo, "1.0.0", artifact)
    layer = artifact.layers[0]
    fault_proxy.add(CutUpload(100_000, method="PUT", query=layer.digest))
    destination = fault_proxy.as_registry()
    run = sync(tmp_path, [entry(origin, destination, unique_repo)], "--verbose", output="text")
    assert run.code == 0
    assert "job failed, retrying" not in run.stderr
    puts = [(r.status, r.request_bytes) for r in fault_proxy.requests if r.method == "PUT" and layer.digest in r.query]
    assert puts == [(None, 100_000), (201, layer.size)]
    [cut, fresh] = [r.path for r in fault_proxy.requests if r.method == "PUT" and layer.digest in r.query]
    assert ("DELETE", cut) in [(r.method, r.path) for r in fault_proxy.requests] and fresh != cut
    assert images.get_blob(destination, unique_repo, layer.digest) == layer.data
    assert images.get_manifest(destination, unique_repo, "1.0.0").digest == artifact.digest


def test_download_cut_mid_blob_resumes_with_range(
    tmp_path: Path, origin: Registry, fault_proxy: FaultProxy, unique_repo: str
) -> None:
    artifact = images.make_artifact(seed=45, layer_sizes=(250_000,))
    source = fault_proxy.as_registry()
    images.push(source, unique_repo, "1.0.0", artifact)
    layer = artifact.layers[0]
    fault_proxy.add(CutDownload(60_000, path=layer.digest))
    run = sync(tmp_path, [entry(source, origin, unique_repo)])
    assert (run.code, run.rows()[0]["status"]) == (0, "copied")
    gets = [r.headers.get("Range") for r in fault_proxy.requests if r.method == "GET" and layer.digest in r.path]
    assert gets[0] is None and gets[1] is not None and gets[1].startswith("bytes=")
    assert images.get_blob(origin, unique_repo, layer.digest) == layer.data


def test_corrupted_blob_fails_and_pushes_nothing_under_the_tag(
    tmp_path: Path, origin: Registry, fault_proxy: FaultProxy, unique_repo: str
) -> None:
    artifact = images.make_artifact(seed=46, layer_sizes=(5000,))
    source = fault_proxy.as_registry()
    images.push(source, unique_repo, "1.0.0", artifact)
    layer = artifact.layers[0]
    fault_proxy.add(CorruptDownload(1234, path=layer.digest, times=10))
    run = sync(tmp_path, [entry(source, origin, unique_repo)])
    assert run.code == 1
    row = run.rows()[0]
    assert (row["status"], row["digest"]) == ("failed", artifact.digest)
    assert f"blob {layer.digest}: content hashes to sha256:" in row["error"]
    # As in Go, the job retries any failure, a mismatch too: --retries 3 (the default) is four
    # attempts, each downloading the layer once more and committing none of them.
    downloads = [r for r in fault_proxy.requests if r.method == "GET" and r.path.endswith(layer.digest)]
    assert [r.rule is not None for r in downloads] == [True] * 4
    with pytest.raises(images.RegistryError):
        images.get_manifest(origin, unique_repo, "1.0.0")
    with pytest.raises(images.RegistryError):
        images.get_blob(origin, unique_repo, layer.digest)


DENIED = json.dumps({"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]})


@pytest.mark.parametrize(("retries", "status"), [("1", "copied"), ("0", "failed")])
def test_a_refusal_once_is_ridden_out_by_a_job_retry(
    tmp_path: Path, origin: Registry, fault_proxy: FaultProxy, unique_repo: str, retries: str, status: str
) -> None:
    """As in Go, a job retries any failure, not only a transient one, so a 403 while IAM permissions
    propagate (a "denied" blip) is ridden out. The request itself is not repeated: the HTTP client
    repeats transient statuses only, and a 403 is not one."""
    artifact = images.make_artifact(seed=48)
    images.push(origin, unique_repo, "1.0.0", artifact)
    fault_proxy.add(
        Respond(403, {"Content-Type": "application/json"}, DENIED.encode(), method="PUT", path="/manifests/", times=1)
    )
    destination = fault_proxy.as_registry()
    run = sync(tmp_path, [entry(origin, destination, unique_repo)], "--retries", retries, "--verbose")
    (row,) = run.rows()
    puts = [r.status for r in fault_proxy.requests if r.method == "PUT" and "/manifests/" in r.path]
    retried = f"job failed, retrying id={origin.host}/{unique_repo}:1.0.0 attempt=1 backoff=200ms err="
    if status == "copied":
        assert (run.code, row["status"], row["digest"]) == (0, "copied", artifact.digest)
        assert puts == [403, 201]
        assert retried in run.stderr
        assert images.get_manifest(destination, unique_repo, "1.0.0").digest == artifact.digest
    else:
        assert (run.code, row["status"], row["digest"]) == (1, "failed", artifact.digest)
        assert "DENIED: requested access to the resource is denied" in row["error"]
        assert puts == [403]
        assert "job failed, retrying" not in run.stderr
        with pytest.raises(images.RegistryError):
            images.get_manifest(destination, unique_repo, "1.0.0")


def test_redirect_to_another_host_gets_no_credentials(
    tmp_path: Path, registry_htpasswd: Registry, origin: Registry, unique_repo: str
) -> None:
    credentials = registry_htpasswd.credentials
    assert credentials is not None
    artifact = images.make_artifact(seed=47)
    images.push(registry_htpasswd, unique_repo, "1.0.0", artifact, auth=credentials)
    with FaultProxy(upstream=registry_htpasswd) as proxy:
        proxy.add(RedirectToBlobHost(times=10))
        source = proxy.as_registry()
        auth = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
        config = tmp_path / "docker"
        config.mkdir()
        (config / "config.json").write_text(json.dumps({"auths": {source.host: {"auth": auth}}}))
        run = sync(tmp_path, [entry(source, origin, unique_repo)], env={"DOCKER_CONFIG": str(config)})
        assert (run.code, run.rows()[0]["status"]) == (0, "copied")
        assert proxy.blob_host is not None
        redirected = proxy.blob_host.requests
        assert redirected and not any(r.had_authorization for r in redirected)
        assert any(r.had_authorization for r in proxy.requests if "/blobs/sha256:" in r.path)
    assert images.get_manifest(origin, unique_repo, "1.0.0").digest == artifact.digest


def test_tag_list_pagination_looping_back_fails_the_entry(
    tmp_path: Path, origin: Registry, fault_proxy: FaultProxy, unique_repo: str
) -> None:
    first = f"/v2/{unique_repo}/tags/list?n=1000"
    second = f"/v2/{unique_repo}/tags/list?last=b&n=1000"
    for page, tags, following in ((first, ["a", "b"], second), (second, ["c"], first)):
        fault_proxy.add(
            Respond(
                200,
                {"Content-Type": "application/json", "Link": f'<{following}>; rel="next"'},
                json.dumps({"name": unique_repo, "tags": tags}).encode(),
                method="GET",
                path=f"^{page.partition('?')[0]}$",
                query=f"^{page.partition('?')[2]}$",
            )
        )
    source = fault_proxy.as_registry()
    run = sync(tmp_path, [entry(source, origin, unique_repo)])
    result = run.report["report"]["results"][0]
    assert (run.code, result["status"], result["tags"]) == (1, "failed", [])
    assert (
        result["error"]
        == f"list tags {source.host}/{unique_repo}: tag list pagination loops back to {source.url}{first}"
    )
    assert [r.query for r in fault_proxy.requests if r.path.endswith("/tags/list")] == ["n=1000", "last=b&n=1000"]


def test_a_job_past_its_deadline_abandons_its_upload(
    tmp_path: Path, origin: Registry, fault_proxy: FaultProxy, unique_repo: str
) -> None:
    """The transfer stops with its job: the upload session is DELETEd at the destination, nothing
    keeps streaming, no tag is written, and no orphaned task complains on stderr."""
    artifact = images.make_artifact(seed=43, layer_sizes=(2 * 1024 * 1024,))
    images.push(origin, unique_repo, "1.0.0", artifact)
    destination = fault_proxy.as_registry()
    with FaultProxy(upstream=origin) as slow_source:
        # about 20 s for the layer, far past the job's 2 s
        slow_source.add(Pace(method="GET", path=BLOB_PATH, piece=(16 * 1024, 16 * 1024), delay=(0.15, 0.15)))
        run = sync(
            tmp_path, [entry(slow_source.as_registry(), destination, unique_repo)], "--timeout", "2s", "--retries", "0"
        )
        served = sum(r.response_bytes for r in slow_source.requests if r.method == "GET" and "/blobs/" in r.path)
    assert run.code == 1
    (row,) = run.rows()
    assert row["status"] == "failed" and "context deadline exceeded" in row["error"]
    assert "Task exception was never retrieved" not in run.stderr and "Traceback" not in run.stderr
    deleted = [
        r
        for r in fault_proxy.requests
        if r.method == "DELETE" and r.path.startswith(f"/v2/{unique_repo}/blobs/uploads/")
    ]
    # answered before the run ended; distribution 2.8 answers 404 when the cut PATCH left its
    # signed upload state stale, which is as gone as a 204
    assert [r.status for r in deleted] in ([204], [404])
    assert served < len(artifact.layers[0].data) // 2  # the download stopped with the job
    with pytest.raises(images.RegistryError):
        images.get_manifest(destination, unique_repo, "1.0.0")
