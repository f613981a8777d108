"""Item 1 of "Trust nothing from the network": bodies are read whole, whatever pieces they arrive in.

On loopback a registry's answer lands in one socket read, so reading "the body" with a single
``read(n)`` passes every other test. Here a ``PacingProxy`` (tests/harness/pacingproxy.py) delivers
each body in 100–500 byte pieces a few milliseconds apart, in front of the real docker-registry, the
token server and a chart repository; every copy must still be exact. The hostile registry adds
bodies that lie about their length or digest, which must fail the row and write nothing.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import TEST_USER, images, skopeo
from harness.chartrepo import ChartRepository
from harness.charts import build_chart
from harness.hostile import HostileRegistry
from harness.pacingproxy import PacingProxy
from harness.referrers import SBOM, SIGSTORE, fallback_index, index_entry, publish_referrers, referrer, rows
from harness.registry import Registry, RegistryFactory
from harness.runner import Run, entry, sync
from harness.tokenserver import TokenServer
from registry.fixtures import OCIRegistryFactory

pytestmark = [pytest.mark.registry, pytest.mark.timeout(180)]

KIB = 1024
PADDING = {"org.fluxmirror.test.padding": "p" * (20 * KIB)}
"""An annotation that takes a manifest well past 16 KiB, far more than one paced piece."""


@pytest.fixture(scope="module")
def target(registry_factory: RegistryFactory) -> Registry:
    return registry_factory()


@pytest.fixture
def paced(registry: Registry) -> Iterator[PacingProxy]:
    """The session's registry with every response body paced."""
    with PacingProxy(registry) as proxy:
        yield proxy


def assert_entry_completed(run: Run, number: int = 0) -> None:
    """The entry was planned: a plan failure shows its whole error."""
    result = run.report["report"]["results"][number]
    assert result["status"] == "completed", result.get("error")


def largest_body(proxy: PacingProxy, fragment: str) -> int:
    """The largest body the proxy delivered for requests whose path contains ``fragment``."""
    return max((r.response_bytes for r in proxy.requests if fragment in r.path and r.method == "GET"), default=0)


def test_manifest_and_index_over_16_kib_arrive_whole(
    tmp_path: Path, registry: Registry, paced: PacingProxy, target: Registry, unique_repo: str
) -> None:
    image = images.make_image([300], seed=51, annotations=PADDING)
    index = images.make_index(
        [images.make_image([200], seed=seed) for seed in (52, 53)], ["linux/amd64", "linux/arm64"], annotations=PADDING
    )
    assert len(image.raw) > 16 * KIB and len(index.raw) > 16 * KIB
    images.push(registry, unique_repo, "1.0.0", image)
    images.push(registry, unique_repo, "2.0.0", index)
    run = sync(tmp_path, [entry(paced.as_registry(), target, unique_repo, selector={"limit": 0})])
    assert_entry_completed(run)
    assert [(row["tag"], row["status"], row.get("error", "")) for row in run.rows()] == [
        ("2.0.0", "copied", ""),
        ("1.0.0", "copied", ""),
    ]
    assert (run.code, run.stderr) == (0, "")
    assert [row["digest"] for row in run.rows()] == [index.digest, image.digest]
    assert skopeo.inspect_raw(target.docker_ref(unique_repo, "2.0.0")) == index.raw
    assert skopeo.inspect_raw(target.docker_ref(unique_repo, "1.0.0")) == image.raw
    assert largest_body(paced, "/manifests/") > 16 * KIB  # the big documents did cross the proxy


def test_tag_list_of_more_than_1000_tags_is_read_across_pages(
    tmp_path: Path, oci_registry_factory: OCIRegistryFactory, target: Registry, unique_repo: str
) -> None:
    """1100 tags: a full first page of 1000 (about 10 KB) and a second one, both paced. The source is
    the in-memory registry, which pages tag lists like distribution 3; docker-registry 2.8 ignores
    ``n`` on tag lists and would answer all 1100 in one page."""
    source = oci_registry_factory().registry
    artifact = images.make_artifact(seed=54)
    images.push(source, unique_repo, "t0000", artifact)
    client = images.Client(source)
    for number in range(1, 1100):
        client.request(
            "PUT",
            f"/v2/{unique_repo}/manifests/t{number:04d}",
            body=artifact.raw,
            headers={"Content-Type": artifact.media_type},
            ok=(201,),
        )
    selector = {"regex": {"pattern": "^t(0000|0999|1000|1099)$"}, "sortBy": "alphabetical", "limit": 0}
    with PacingProxy(source) as paced:
        run = sync(tmp_path, [entry(paced.as_registry(), target, unique_repo, selector=selector)])
        pages = [r.query for r in paced.requests if r.path.endswith("/tags/list")]
    assert_entry_completed(run)
    assert pages == ["n=1000", "n=1000&last=t0999"]
    assert [(row["tag"], row["status"], row.get("error", "")) for row in run.rows()] == [
        ("t1099", "copied", ""),
        ("t1000", "copied", ""),
        ("t0999", "copied", ""),
        ("t0000", "copied", ""),
    ]
    assert (run.code, run.stderr) == (0, "")
    assert sorted(images.list_tags(target, unique_repo)) == ["t0000", "t0999", "t1000", "t1099"]


def test_referrers_fallback_index_over_16_kib_arrives_whole(
    tmp_path: Path, registry: Registry, paced: PacingProxy, target: Registry, unique_repo: str
) -> None:
    """The source has no referrers API, so the referrers are read from the `sha256-<hex>` index,
    which (like one of the referrers) is past 16 KiB."""
    image = images.make_image([300], seed=55)
    images.push(registry, unique_repo, "1.0.0", image)
    attached = [referrer(image, SBOM, 56, annotations=PADDING), referrer(image, SIGSTORE, 57)]
    publish_referrers(registry, unique_repo, image, attached)
    assert len(json.dumps(fallback_index(registry, unique_repo, image))) > 16 * KIB
    run = sync(tmp_path, [entry(paced.as_registry(), target, unique_repo, includeReferrers=True)])
    assert_entry_completed(run)
    assert [(row["tag"], row["status"], row.get("error", "")) for row in run.rows()] == [("1.0.0", "copied", "")]
    assert (run.code, run.stderr) == (0, "")
    assert rows(run.rows()) == [[(m.digest, t, "copied", "") for m, t in zip(attached, (SBOM, SIGSTORE), strict=True)]]
    for manifest in attached:
        assert skopeo.inspect_raw(target.docker_ref(unique_repo, manifest.digest)) == manifest.raw
    expected = sorted((index_entry(m) for m in attached), key=lambda d: d["digest"])
    assert fallback_index(target, unique_repo, image)["manifests"] == expected


@pytest.fixture(scope="module")
def paced_token_registry(
    registry_factory: RegistryFactory, _session_token_server: TokenServer
) -> Iterator[tuple[Registry, PacingProxy]]:
    """A token-auth registry whose challenge names a realm behind a pacing proxy: the token
    response (a JWT carrying its certificate chain, about 1.5 KB) arrives in pieces."""
    with PacingProxy(_session_token_server.realm) as proxy:
        realm = f"{proxy.url}/token"
        yield registry_factory(token_server=_session_token_server, config={"auth": {"token": {"realm": realm}}}), proxy


def test_token_response_arrives_whole(
    tmp_path: Path, paced_token_registry: tuple[Registry, PacingProxy], target: Registry, unique_repo: str
) -> None:
    source, token_proxy = paced_token_registry
    artifact = images.make_artifact(seed=58)
    images.push(source, unique_repo, "1.0.0", artifact, auth=TEST_USER)
    docker = tmp_path / "docker"
    docker.mkdir()
    auth = base64.b64encode(f"{TEST_USER.username}:{TEST_USER.password}".encode()).decode()
    (docker / "config.json").write_text(json.dumps({"auths": {source.host: {"auth": auth}}}))
    run = sync(tmp_path, [entry(source, target, unique_repo)], env={"DOCKER_CONFIG": str(docker)})
    assert_entry_completed(run)
    assert [(row["tag"], row["status"], row["digest"]) for row in run.rows()] == [("1.0.0", "copied", artifact.digest)]
    assert (run.code, run.stderr) == (0, "")
    assert largest_body(token_proxy, "/token") > 1000  # several pieces


def test_chart_index_over_120_kib_and_archive_over_64_kib_arrive_whole(
    tmp_path: Path, chart_repo: ChartRepository, target: Registry, unique_repo: str
) -> None:
    payload = random.Random(59).randbytes(80 * KIB)  # incompressible: the archive stays past 64 KiB
    archive = build_chart("demo", "1.0.0", app_version="1.0", files={"files/payload.bin": payload})
    hosted = chart_repo.add("demo", "1.0.0", archive)
    for number in range(600):
        chart_repo.add("a-filler", f"0.{number // 100}.{number % 100}")  # sorts first: a cut index loses demo
    assert len(hosted.data) > 64 * KIB and len(chart_repo.index_bytes()) > 120 * KIB
    with PacingProxy(chart_repo) as proxy:
        charts = [{"name": "demo", "source": proxy.chart_url(), "destination": f"oci://{target.host}/{unique_repo}"}]
        run = sync(tmp_path, [], charts=charts)
        delivered = largest_body(proxy, "index.yaml"), largest_body(proxy, ".tgz")
    assert_entry_completed(run)
    assert [(row["tag"], row["status"], row.get("error", "")) for row in run.rows()] == [("1.0.0", "copied", "")]
    assert run.rows()[0]["digest"] == hosted.digest
    assert (run.code, run.stderr) == (0, "")
    assert images.get_blob(target, f"{unique_repo}/demo", hosted.digest) == hosted.data
    assert delivered == (len(chart_repo.index_bytes()), len(hosted.data))  # both crossed the proxy, whole


@pytest.mark.parametrize("repository", ["lying/length", "lying/digest"])
def test_manifest_body_that_lies_fails_the_row_and_writes_nothing(
    tmp_path: Path, hostile: HostileRegistry, target: Registry, unique_repo: str, repository: str
) -> None:
    """A manifest cut short under a full Content-Length, or served under another digest, is never pushed."""
    run = sync(
        tmp_path,
        [{"source": hostile.ref(repository), "destination": f"{target.host}/{unique_repo}"}],
        "--retries",
        "0",
    )
    assert "Traceback" not in run.stderr, "crashed: " + " | ".join(run.stderr.strip().splitlines()[-2:])
    [row] = run.rows()
    assert (run.code, row["status"]) == (1, "failed")
    assert unique_repo not in images.catalog(target)
