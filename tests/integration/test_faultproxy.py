"""Proof that each fault-proxy rule does exactly what it says to a real distribution 2.8 registry.

Clients here are plain ``http.client`` (via ``harness.images.raw_request``) and aiohttp, never the
product, so a product test that uses the proxy can trust what it injects.
"""

from __future__ import annotations

import asyncio
import http.client
import random
import socket
import time
from urllib.parse import urlsplit

import aiohttp
import pytest
from harness import images
from harness.faultproxy import (
    AddHeaders,
    BufferUpload,
    CorruptDownload,
    CutDownload,
    CutUpload,
    FaultProxy,
    RedirectToBlobHost,
    Respond,
    Stall,
    Throttle,
)
from harness.images import RegistryError, raw_request
from harness.registry import Registry

pytestmark = pytest.mark.registry


def _pushed_blob(registry: Registry, repo: str, size: int, seed: int) -> images.Blob:
    """One ``size``-byte blob stored in ``repo`` (pushed directly, not through any proxy)."""
    artifact = images.make_artifact(seed=seed, layer_sizes=[size])
    images.push(registry, repo, "v1", artifact, auth=registry.credentials)
    return artifact.layers[0]


def _target(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def test_unruled_traffic_is_byte_identical(fault_proxy: FaultProxy, registry: Registry, unique_repo: str) -> None:
    image = images.make_image([3000, 70_000], seed=11)
    proxied = fault_proxy.as_registry()

    assert images.push(proxied, unique_repo, "v1", image) == image.digest

    through_proxy = images.get_manifest(proxied, unique_repo, "v1")
    direct = images.get_manifest(registry, unique_repo, "v1")
    assert through_proxy.data == direct.data == image.raw
    assert through_proxy.digest == direct.digest == image.digest
    for blob in image.blobs:
        assert images.get_blob(proxied, unique_repo, blob.digest) == blob.data
    head = raw_request("HEAD", f"{fault_proxy.url}/v2/{unique_repo}/blobs/{image.layers[1].digest}")
    assert (head.status, head.headers["Content-Length"], head.body) == (200, str(image.layers[1].size), b"")
    started = raw_request("POST", f"{fault_proxy.url}/v2/{unique_repo}/blobs/uploads/")
    assert started.status == 202
    assert started.headers["Location"].startswith(f"{fault_proxy.url}/v2/{unique_repo}/blobs/uploads/")
    records = fault_proxy.requests
    assert {r.method for r in records} == {"HEAD", "POST", "PUT", "GET"}
    assert all(r.rule is None and r.status is not None for r in records)
    assert (
        sum(r.request_bytes for r in records if r.method == "PUT")
        == sum(b.size for b in image.blobs) + image.document.size
    )


def test_authorization_is_recorded_as_a_flag_only(fault_proxy: FaultProxy) -> None:
    assert (
        raw_request("GET", f"{fault_proxy.url}/v2/", headers={"Authorization": "Bearer do-not-keep-me"}).status == 200
    )
    assert raw_request("GET", f"{fault_proxy.url}/v2/").status == 200

    with_auth, without_auth = fault_proxy.requests
    assert (with_auth.had_authorization, with_auth.auth_scheme) == (True, "Bearer")
    assert (without_auth.had_authorization, without_auth.auth_scheme) == (False, None)
    assert "authorization" not in {key.lower() for key in with_auth.headers}
    assert "do-not-keep-me" not in repr(with_auth)


def test_respond_503_twice_then_the_registry_answers(
    fault_proxy: FaultProxy, registry: Registry, unique_repo: str
) -> None:
    image = images.make_image([100], seed=12)
    images.push(registry, unique_repo, "v1", image)
    rule = fault_proxy.add(Respond(503, method="GET", path=r"/manifests/", times=2))
    url = f"{fault_proxy.url}/v2/{unique_repo}/manifests/v1"
    accept = {"Accept": images.ACCEPT_ALL}

    head = raw_request("HEAD", url, headers=accept)  # other methods are not matched
    answers = [raw_request("GET", url, headers=accept) for _ in range(3)]

    assert head.status == 200
    assert [a.status for a in answers] == [503, 503, 200]
    assert answers[2].body == image.raw
    assert [r.rule for r in fault_proxy.requests] == [None, rule, rule, None]


async def test_respond_429_carries_retry_after(fault_proxy: FaultProxy) -> None:
    body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}'
    fault_proxy.add(Respond(429, headers={"Retry-After": "1", "Content-Type": "application/json"}, body=body))

    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fault_proxy.url}/v2/") as limited:
            assert (limited.status, limited.headers["Retry-After"], await limited.read()) == (429, "1", body)
        async with session.get(f"{fault_proxy.url}/v2/") as passed:
            assert passed.status == 200


async def test_throttle_turns_requests_away_only_while_the_limit_is_in_flight(
    fault_proxy: FaultProxy, registry: Registry, unique_repo: str
) -> None:
    images.push(registry, unique_repo, "v1", images.make_image([10], seed=14))
    fault_proxy.add(Stall(method="GET", path=r"/tags/list$", seconds=0.5))
    fault_proxy.add(Throttle(limit=1, headers={"Retry-After": "2"}))
    tags = f"{fault_proxy.url}/v2/{unique_repo}/tags/list"

    async with aiohttp.ClientSession() as session:
        async with asyncio.TaskGroup() as group:
            stalled = group.create_task(session.get(tags))
            await asyncio.sleep(0.2)  # the stalled request is in flight
            async with session.get(f"{fault_proxy.url}/v2/") as refused:
                assert (refused.status, refused.headers["Retry-After"]) == (429, "2")
            async with session.get(f"{fault_proxy.url}/v2/") as refused_again:  # a refused one never counted
                assert refused_again.status == 429
        async with stalled.result() as first:
            assert first.status == 200
        async with session.get(f"{fault_proxy.url}/v2/") as admitted:
            assert admitted.status == 200
    assert [r.status for r in fault_proxy.requests] == [429, 429, 200, 200]


def test_add_headers_passes_the_request_on_and_adds_to_the_registrys_answer(
    fault_proxy: FaultProxy, registry: Registry, unique_repo: str
) -> None:
    images.push(registry, unique_repo, "v1", images.make_image([10], seed=15))
    fault_proxy.add(AddHeaders(method="GET", path=r"/tags/list$", headers={"RateLimit-Remaining": "0"}))
    tags = f"{fault_proxy.url}/v2/{unique_repo}/tags/list"

    first, second = raw_request("GET", tags), raw_request("GET", tags)

    assert (first.status, first.headers["RateLimit-Remaining"], first.body) == (200, "0", second.body)
    assert "RateLimit-Remaining" not in second.headers  # spent after one use, like every rule
    assert b'"v1"' in first.body


def test_query_matcher_selects_requests(fault_proxy: FaultProxy, registry: Registry, unique_repo: str) -> None:
    images.push(registry, unique_repo, "v1", images.make_image([10], seed=13))
    fault_proxy.add(Respond(500, path=r"/tags/list$", query=r"(^|&)n=1(&|$)"))

    assert raw_request("GET", f"{fault_proxy.url}/v2/{unique_repo}/tags/list?n=10").status == 200
    assert raw_request("GET", f"{fault_proxy.url}/v2/{unique_repo}/tags/list?n=1").status == 500
    assert raw_request("GET", f"{fault_proxy.url}/v2/{unique_repo}/tags/list?n=1").status == 200


def test_cut_upload_stores_the_prefix_and_distribution_refuses_the_stale_location(
    fault_proxy: FaultProxy, registry: Registry, unique_repo: str
) -> None:
    data = random.Random(14).randbytes(64 * 1024)
    rule = fault_proxy.add(CutUpload(4000))
    location = raw_request("POST", f"{fault_proxy.url}/v2/{unique_repo}/blobs/uploads/").headers["Location"]
    connection = http.client.HTTPConnection(fault_proxy.host, timeout=10)

    with pytest.raises(ConnectionError):
        connection.request(
            "PATCH",
            _target(location),
            body=data,
            headers={"Content-Type": "application/octet-stream", "Content-Range": f"0-{len(data) - 1}"},
        )
        connection.getresponse()
    connection.close()

    cut = fault_proxy.requests[-1]
    assert (cut.rule, cut.status, cut.request_bytes, cut.headers["Content-Length"]) == (
        rule,
        None,
        4000,
        str(len(data)),
    )
    upload_id = urlsplit(location).path.rsplit("/", 1)[1]
    stored = registry.root_dir / "docker/registry/v2/repositories" / unique_repo / "_uploads" / upload_id / "data"
    assert stored.read_bytes() == data[:4000]
    # distribution 2.8 signs the offset into the Location's _state; the client's copy says 0, so it cannot resume.
    status = raw_request("GET", location)
    assert status.status == 404
    assert b"BLOB_UPLOAD_INVALID" in status.body
    # What remains possible is starting over, which goes through the proxy unharmed.
    restarted = raw_request("POST", f"{fault_proxy.url}/v2/{unique_repo}/blobs/uploads/").headers["Location"]
    digest = images.sha256_digest(data)
    assert raw_request("PUT", f"{restarted}&digest={digest}", body=data).status == 201
    assert images.get_blob(registry, unique_repo, digest) == data


def test_chunked_upload_resumes_from_reported_range_through_proxy(fault_proxy: FaultProxy, unique_repo: str) -> None:
    data = random.Random(15).randbytes(50_000)
    location = raw_request("POST", f"{fault_proxy.url}/v2/{unique_repo}/blobs/uploads/").headers["Location"]
    connection = http.client.HTTPConnection(fault_proxy.host, timeout=10)
    connection.request("PATCH", _target(location), body=iter([data[:20_000]]), encode_chunked=True)
    first = connection.getresponse()
    first.read()
    connection.close()
    assert (first.status, first.headers["Range"]) == (202, "0-19999")

    status = raw_request("GET", first.headers["Location"])
    assert (status.status, status.headers["Range"]) == (204, "0-19999")
    rest = raw_request(
        "PATCH",
        status.headers["Location"],
        body=data[20_000:],
        headers={"Content-Type": "application/octet-stream", "Content-Range": f"20000-{len(data) - 1}"},
    )
    assert (rest.status, rest.headers["Range"]) == (202, f"0-{len(data) - 1}")
    digest = images.sha256_digest(data)
    done = raw_request("PUT", f"{rest.headers['Location']}&digest={digest}")
    assert (done.status, done.headers["Docker-Content-Digest"]) == (201, digest)
    assert images.get_blob(fault_proxy.as_registry(), unique_repo, digest) == data
    assert "Transfer-Encoding" in next(r for r in fault_proxy.requests if r.method == "PATCH").headers


def test_buffer_upload_never_passes_on_a_dead_clients_chunk_so_distribution_resumes_after_the_last_whole_one(
    fault_proxy: FaultProxy, unique_repo: str
) -> None:
    """What --state-dir relies on behind a buffering proxy: the Location a completed PATCH returned
    still works from another connection after a client died halfway through the next chunk."""
    data = random.Random(16).randbytes(64 * 1024)
    rule = fault_proxy.add(BufferUpload())
    location = raw_request("POST", f"{fault_proxy.url}/v2/{unique_repo}/blobs/uploads/").headers["Location"]
    octets = {"Content-Type": "application/octet-stream"}
    first = raw_request("PATCH", location, body=data[:20_000], headers=octets | {"Content-Range": "0-19999"})
    assert (first.status, first.headers["Range"]) == (202, "0-19999")

    with socket.create_connection(("127.0.0.1", int(fault_proxy.host.rsplit(":", 1)[1]))) as dying:
        head = f"PATCH {_target(first.headers['Location'])} HTTP/1.1\r\nHost: {fault_proxy.host}\r\n"
        head += f"Content-Type: application/octet-stream\r\nContent-Range: 20000-{len(data) - 1}\r\n"
        dying.sendall(f"{head}Content-Length: {len(data) - 20_000}\r\n\r\n".encode() + data[20_000:30_000])
    for _ in range(500):  # logged once the proxy has seen the connection end
        if len(fault_proxy.requests) == 3:
            break
        time.sleep(0.01)
    dead = fault_proxy.requests[-1]
    assert (dead.rule, dead.status, dead.request_bytes) == (rule, None, 10_000)

    status = raw_request("GET", first.headers["Location"])
    assert (status.status, status.headers["Range"]) == (204, "0-19999")
    rest = raw_request(
        "PATCH",
        status.headers["Location"],
        body=data[20_000:],
        headers=octets | {"Content-Range": f"20000-{len(data) - 1}"},
    )
    digest = images.sha256_digest(data)
    assert raw_request("PUT", f"{rest.headers['Location']}&digest={digest}").status == 201
    assert images.get_blob(fault_proxy.as_registry(), unique_repo, digest) == data


def test_cut_download_then_range_request_gets_the_rest(
    fault_proxy: FaultProxy, registry: Registry, unique_repo: str
) -> None:
    blob = _pushed_blob(registry, unique_repo, 100_000, seed=16)
    rule = fault_proxy.add(CutDownload(30_000))
    connection = http.client.HTTPConnection(fault_proxy.host, timeout=10)
    connection.request("GET", f"/v2/{unique_repo}/blobs/{blob.digest}")
    response = connection.getresponse()

    assert (response.status, response.headers["Content-Length"]) == (200, "100000")
    with pytest.raises(http.client.IncompleteRead) as truncated:
        response.read()
    connection.close()
    assert truncated.value.partial == blob.data[:30_000]

    rest = raw_request(
        "GET", f"{fault_proxy.url}/v2/{unique_repo}/blobs/{blob.digest}", headers={"Range": "bytes=30000-"}
    )
    assert (rest.status, rest.headers["Content-Range"]) == (206, "bytes 30000-99999/100000")
    assert rest.body == blob.data[30_000:]
    cut, resumed = fault_proxy.requests
    assert (cut.rule, cut.status, cut.response_bytes) == (rule, 200, 30_000)
    assert (resumed.rule, resumed.status, resumed.response_bytes) == (None, 206, 70_000)


def test_corrupt_download_flips_exactly_one_byte(fault_proxy: FaultProxy, registry: Registry, unique_repo: str) -> None:
    blob = _pushed_blob(registry, unique_repo, 40_000, seed=17)
    fault_proxy.add(CorruptDownload(12_345, times=2))
    proxied = fault_proxy.as_registry()

    corrupted = raw_request("GET", f"{fault_proxy.url}/v2/{unique_repo}/blobs/{blob.digest}").body

    assert len(corrupted) == blob.size
    assert [i for i, (a, b) in enumerate(zip(corrupted, blob.data, strict=True)) if a != b] == [12_345]
    assert corrupted[12_345] == blob.data[12_345] ^ 0xFF
    with pytest.raises(RegistryError, match="different content"):
        images.get_blob(proxied, unique_repo, blob.digest)
    assert images.get_blob(proxied, unique_repo, blob.digest) == blob.data


def test_redirect_to_blob_host_changes_host_name_and_serves_without_auth(
    registry_htpasswd: Registry, unique_repo: str
) -> None:
    assert registry_htpasswd.credentials is not None
    authorization = {"Authorization": registry_htpasswd.credentials.basic_header()}
    blob = _pushed_blob(registry_htpasswd, unique_repo, 20_000, seed=18)
    path = f"/v2/{unique_repo}/blobs/{blob.digest}"
    with FaultProxy(registry_htpasswd) as proxy:
        assert proxy.blob_host is not None
        rule = proxy.add(RedirectToBlobHost())

        redirected = raw_request("GET", proxy.url + path, headers=authorization)
        location = redirected.headers["Location"]
        followed = raw_request("GET", location)
        leaked = raw_request("GET", location, headers=authorization)  # a careless client, for contrast

        assert (redirected.status, location) == (307, f"http://localhost:{proxy.blob_host.port}{path}")
        assert urlsplit(location).hostname != urlsplit(proxy.url).hostname
        assert (followed.status, followed.body) == (200, blob.data)
        assert leaked.status == 200
        assert [(r.rule, r.status, r.had_authorization) for r in proxy.requests] == [(rule, 307, True)]
        assert [(r.status, r.had_authorization, r.response_bytes) for r in proxy.blob_host.requests] == [
            (200, False, blob.size),
            (200, True, blob.size),
        ]


async def test_aiohttp_drops_authorization_on_the_cross_host_redirect(
    fault_proxy: FaultProxy, registry: Registry, unique_repo: str
) -> None:
    blob = _pushed_blob(registry, unique_repo, 5000, seed=19)
    fault_proxy.add(RedirectToBlobHost())
    assert fault_proxy.blob_host is not None

    async with aiohttp.ClientSession() as session:
        url = f"{fault_proxy.url}/v2/{unique_repo}/blobs/{blob.digest}"
        async with session.get(url, headers={"Authorization": "Basic c2VjcmV0OnNlY3JldA=="}) as response:
            assert (response.status, await response.read()) == (200, blob.data)

    assert [r.had_authorization for r in fault_proxy.requests] == [True]
    assert [r.had_authorization for r in fault_proxy.blob_host.requests] == [False]
