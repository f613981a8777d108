"""Proof that the forward proxy (tests/harness/forwardproxy.py) proxies, checked with independent clients.

skopeo (Go's ``http.ProxyFromEnvironment``, the behaviour fluxmirror copies), curl and aiohttp reach
``registry.test`` and ``charts.test`` through it, and fail without it, so a product test that sees
a ``.test`` server answer knows the product went through the proxy.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from harness import TEST_USER, Credentials, images, skopeo
from harness.chartrepo import ChartRepositoryFactory
from harness.forwardproxy import REALM, ForwardProxy, ProxiedRequest, proxy_environment
from harness.pki import CHARTS_NAME, PKI, REGISTRY_NAME
from harness.registry import Registry

pytestmark = [pytest.mark.registry, pytest.mark.usefixtures("no_proxy_environment")]

PROXY_USER = Credentials("proxy-user", "pr0xy p@ss:w/rd")
"""Characters that must be percent-encoded in a proxy URL's userinfo, and decoded again by the client."""


def curl(*args: str) -> tuple[int, str, bytes]:
    """curl's exit code, ``<status> <CONNECT status>`` and body; -sS keeps errors on stderr."""
    completed = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "20",
            "--output",
            "-",
            "--write-out",
            "%{stderr}%{http_code} %{http_connect}",
            *args,
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return completed.returncode, completed.stderr.decode().splitlines()[-1], completed.stdout


def tunnel(authority: str, status: int = 200, *, proxy_auth: bool = False) -> ProxiedRequest:
    return ProxiedRequest("CONNECT", authority, True, None, None, proxy_auth, status)


def test_skopeo_pushes_and_pulls_through_connect_tunnels(
    tmp_path: Path, forward_proxy: ForwardProxy, registry_tls: Registry, unique_repo: str
) -> None:
    image = images.make_image([3000, 70_000], seed=61)
    layout = images.write_oci_layout(tmp_path / "layout", image, "v1")
    exposed = forward_proxy.expose(registry_tls)
    assert exposed.host == f"{REGISTRY_NAME}:{registry_tls.host.rsplit(':', 1)[1]}"
    env = proxy_environment(HTTPS_PROXY=forward_proxy.url())
    ca = registry_tls.cert_dir

    skopeo.copy(
        f"oci:{layout}:v1", exposed.docker_ref(unique_repo, "v1"), dest_tls_verify=True, dest_cert_dir=ca, env=env
    )
    skopeo.copy(
        exposed.docker_ref(unique_repo, "v1"),
        exposed.docker_ref(unique_repo + "-again", "v2"),
        src_tls_verify=True,
        src_cert_dir=ca,
        dest_tls_verify=True,
        dest_cert_dir=ca,
        env=env,
    )
    pulled = skopeo.inspect_raw(exposed.docker_ref(unique_repo + "-again", "v2"), tls_verify=True, cert_dir=ca, env=env)

    assert pulled == image.raw
    assert images.get_manifest(registry_tls, unique_repo + "-again", "v2").digest == image.digest  # directly
    requests = forward_proxy.requests
    assert requests and set(requests) == {tunnel(exposed.host)}


def test_without_the_proxy_the_test_name_resolves_nowhere(forward_proxy: ForwardProxy, registry_tls: Registry) -> None:
    exposed = forward_proxy.expose(registry_tls)
    with pytest.raises(skopeo.SkopeoError) as failure:
        skopeo.list_tags(exposed.docker_ref("t/anything", None), tls_verify=True, cert_dir=registry_tls.cert_dir)
    assert REGISTRY_NAME in failure.value.stderr
    assert forward_proxy.requests == []


def test_skopeo_pushes_to_a_plain_http_registry_with_absolute_uri_requests(
    tmp_path: Path, forward_proxy: ForwardProxy, registry: Registry, unique_repo: str
) -> None:
    """Uploads carry streamed bodies (PATCH, PUT) through the plain-http path, not just GETs."""
    image = images.make_image([5000, 300_000], seed=62)
    layout = images.write_oci_layout(tmp_path / "layout", image, "v1")
    exposed = forward_proxy.expose(registry)

    # tls-verify=false: skopeo's https attempt (direct, since only HTTP_PROXY is set) cannot resolve
    # the name, so it falls back to http, which goes through the proxy.
    skopeo.copy(
        f"oci:{layout}:v1", exposed.docker_ref(unique_repo, "v1"), env=proxy_environment(HTTP_PROXY=forward_proxy.url())
    )

    assert images.get_manifest(registry, unique_repo, "v1").digest == image.digest
    for blob in image.blobs:
        assert images.get_blob(registry, unique_repo, blob.digest) == blob.data
    requests = forward_proxy.requests
    assert {(r.authority, r.connect, r.had_authorization) for r in requests} == {(exposed.host, False, False)}
    assert {"GET", "HEAD", "POST", "PATCH", "PUT"} <= {r.method for r in requests}
    assert all(r.path is not None and r.path.startswith("/v2/") for r in requests)
    assert all(r.status < 400 for r in requests if r.method != "HEAD")  # HEAD: 404 for blobs not there yet


async def test_aiohttp_streams_a_chunked_upload_through_the_proxy(
    forward_proxy: ForwardProxy, registry: Registry, unique_repo: str
) -> None:
    blob = images.Blob(images.TEST_BLOB_TYPE, bytes(range(256)) * 1024)
    exposed = forward_proxy.expose(registry)

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, blob.size, 10_000):
            yield blob.data[start : start + 10_000]

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{exposed.url}/v2/{unique_repo}/blobs/uploads/", proxy=forward_proxy.url()) as started:
            assert started.status == 202
            location = started.headers["Location"]
        assert location.startswith(f"{exposed.url}/v2/{unique_repo}/blobs/uploads/")  # the Host header was passed on
        async with session.put(
            location, params={"digest": blob.digest}, data=pieces(), proxy=forward_proxy.url()
        ) as finished:
            assert finished.status == 201, await finished.text()
            assert finished.headers["Connection"] == "close"

    assert images.get_blob(registry, unique_repo, blob.digest) == blob.data
    put = forward_proxy.requests[-1]
    assert (put.method, put.status, put.connect) == ("PUT", 201, False)
    assert put.path is not None and put.path.startswith(location.removeprefix(exposed.url))


async def test_a_plain_http_chart_repository_through_aiohttp_and_curl(
    forward_proxy: ForwardProxy, chart_repo_factory: ChartRepositoryFactory
) -> None:
    repository = chart_repo_factory(hostname=CHARTS_NAME, credentials=TEST_USER)
    chart = repository.add("demo", "1.2.3")
    authority = forward_proxy.route(CHARTS_NAME, repository.port)
    assert repository.url == f"http://{authority}"

    auth = {"Authorization": TEST_USER.basic_header()}
    async with (
        aiohttp.ClientSession() as session,
        session.get(repository.index_url, proxy=forward_proxy.url(), headers=auth) as response,
    ):
        assert (response.status, await response.read()) == (200, repository.index_bytes())
    code, status, body = curl("--proxy", forward_proxy.url(), "--user", TEST_USER.skopeo(), chart.url)
    assert (code, status, hashlib.sha256(body).hexdigest()) == (0, "200 000", chart.digest.removeprefix("sha256:"))
    code, status, _ = curl("--proxy", forward_proxy.url(), repository.index_url)
    assert (code, status) == (0, "401 000")  # the repository's own answer, passed through

    assert [
        (r.method, r.authority, r.connect, r.path, r.had_authorization, r.status) for r in forward_proxy.requests
    ] == [
        ("GET", authority, False, "/index.yaml", True, 200),
        ("GET", authority, False, "/demo-1.2.3.tgz", True, 200),
        ("GET", authority, False, "/index.yaml", False, 401),
    ]
    assert [(r.path, r.status) for r in repository.requests] == [
        ("/index.yaml", 200),
        ("/demo-1.2.3.tgz", 200),
        ("/index.yaml", 401),
    ]
    assert all("Proxy-Authorization" not in r.headers for r in repository.requests)


def test_an_https_chart_repository_through_a_curl_tunnel(
    forward_proxy: ForwardProxy, chart_repo_factory: ChartRepositoryFactory, pki: PKI
) -> None:
    """The server certificate is valid for ``charts.test``: curl verifies it by that name."""
    repository = chart_repo_factory(hostname=CHARTS_NAME, tls=True)
    authority = forward_proxy.route(CHARTS_NAME, repository.port)

    code, status, body = curl("--proxy", forward_proxy.url(), "--cacert", str(pki.ca_path), repository.index_url)

    assert (code, status, body) == (0, "200 200", repository.index_bytes())
    assert forward_proxy.requests == [tunnel(authority)]
    assert [r.path for r in repository.requests] == ["/index.yaml"]


def test_proxy_authentication(
    no_proxy_environment: None,
    chart_repo_factory: ChartRepositoryFactory,
    registry_tls: Registry,
    unique_repo: str,
) -> None:
    repository = chart_repo_factory(hostname=CHARTS_NAME)
    images.push(registry_tls, unique_repo, "v1", images.make_artifact(seed=63))
    with ForwardProxy(credentials=PROXY_USER) as proxy:
        authority = proxy.route(CHARTS_NAME, repository.port)
        exposed = proxy.expose(registry_tls)
        assert proxy.url(PROXY_USER) == f"http://proxy-user:pr0xy%20p%40ss%3Aw%2Frd@{proxy.host}"

        code, status, _ = curl("--proxy", proxy.url(), repository.index_url)
        assert (code, status) == (0, "407 000")
        code, status, _ = curl("--proxy", proxy.url(Credentials(PROXY_USER.username, "wrong")), repository.index_url)
        assert (code, status) == (0, "407 000")
        code, status, _ = curl("--proxy", proxy.url(PROXY_USER), repository.index_url)
        assert (code, status) == (0, "200 000")
        ref, ca = exposed.docker_ref(unique_repo, None), registry_tls.cert_dir
        with pytest.raises(skopeo.SkopeoError):
            skopeo.list_tags(ref, tls_verify=True, cert_dir=ca, env=proxy_environment(HTTPS_PROXY=proxy.url()))
        # Go sends the proxy URL's userinfo, percent-decoded, as Proxy-Authorization on CONNECT.
        assert skopeo.list_tags(
            ref, tls_verify=True, cert_dir=ca, env=proxy_environment(HTTPS_PROXY=proxy.url(PROXY_USER))
        ) == ["v1"]
        requests = proxy.requests

    assert [(r.connect, r.had_proxy_authorization, r.status) for r in requests[:3]] == [
        (False, False, 407),
        (False, True, 407),
        (False, True, 200),
    ]
    assert {r.authority for r in requests[:3]} == {authority}
    assert {(r.had_proxy_authorization, r.status) for r in requests[3:] if r.connect} == {(False, 407), (True, 200)}
    assert repository.requests[0].headers.get("Proxy-Authorization") is None  # never passed upstream


def test_a_407_carries_the_challenge(no_proxy_environment: None) -> None:
    with ForwardProxy(credentials=PROXY_USER) as proxy:
        completed = subprocess.run(
            ["curl", "-sS", "--include", "--proxy", proxy.url(), f"http://{CHARTS_NAME}:1/index.yaml"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    assert completed.stdout.startswith(b"HTTP/1.1 407 Proxy Authentication Required\r\n")
    assert f'Proxy-Authenticate: Basic realm="{REALM}"\r\n'.encode() in completed.stdout


def test_targets_without_a_route_get_502(forward_proxy: ForwardProxy, registry: Registry) -> None:
    """Loopback included: a client that proxied its loopback traffic would be caught, not served."""
    port = registry.host.rsplit(":", 1)[1]
    for target in (f"http://elsewhere.test:{port}/v2/", f"http://{registry.host}/v2/"):
        assert curl("--proxy", forward_proxy.url(), target)[:2] == (0, "502 000")
    code, status, _ = curl("--proxy", forward_proxy.url(), f"https://elsewhere.test:{port}/v2/")
    assert (code, status) == (56, "000 502")  # curl: CONNECT refused
    assert [(r.method, r.authority, r.status) for r in forward_proxy.requests] == [
        ("GET", f"elsewhere.test:{port}", 502),
        ("GET", registry.host, 502),
        ("CONNECT", f"elsewhere.test:{port}", 502),
    ]
