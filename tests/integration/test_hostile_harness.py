"""The hostile-network harness checked on its own, with independent clients: a test that blames
fluxmirror must first be sure the pacing proxy and the hostile registry do what they claim."""

from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path

import aiohttp
import pytest
from harness import images
from harness.chartrepo import ChartRepository
from harness.fixtures_hostile import HostileFactory
from harness.hostile import DOTDOT_TAG, HOSTILE_SUBJECT, HOSTILE_USER, QUERY_TAG, HostileRegistry
from harness.pacingproxy import PacingProxy
from harness.registry import Registry
from harness.runner import sync

pytestmark = [pytest.mark.registry, pytest.mark.timeout(60)]


async def test_pacing_splits_a_body_across_reads_and_keeps_every_byte(registry: Registry, unique_repo: str) -> None:
    artifact = images.make_artifact(seed=71, annotations={"padding": "p" * 20_000})
    images.push(registry, unique_repo, "1.0.0", artifact)
    with PacingProxy(registry) as proxy:
        url = f"{proxy.url}/v2/{unique_repo}/manifests/1.0.0"
        async with aiohttp.ClientSession() as session:
            async with session.get(url, headers={"Accept": artifact.media_type}) as response:
                first = await response.content.read(1 << 20)  # "the body", as a careless client reads it
            async with session.get(url, headers={"Accept": artifact.media_type}) as response:
                whole = await response.read()
        assert 0 < len(first) < len(artifact.raw)  # pieces of 100-500 bytes, a few ms apart
        assert whole == artifact.raw
        assert proxy.requests[-1].response_bytes == len(artifact.raw)


def test_pacing_fronts_a_chart_repository(chart_repo: ChartRepository) -> None:
    hosted = chart_repo.add("demo", "1.0.0")
    with PacingProxy(chart_repo) as proxy:
        index = images.raw_request("GET", f"{proxy.chart_url()}/index.yaml")
        archive = images.raw_request("GET", f"{proxy.chart_url()}/demo-1.0.0.tgz")
    assert (index.status, index.body) == (200, chart_repo.index_bytes())
    assert (archive.status, archive.body) == (200, hosted.data)


def get(registry: HostileRegistry, path: str, **headers: str) -> images.Response:
    return images.raw_request("GET", registry.url + path, headers=headers)


def test_hostile_names_and_tag_lists_are_served_as_documented(hostile: HostileRegistry) -> None:
    assert get(hostile, "/v2/").status == 200
    tags = {
        repository: json.loads(get(hostile, f"/v2/{repository}/tags/list").body)
        for repository in ("dotdot/app", "query/app", "stringtags/app", "badlist/array", "badlist/nonstring")
    }
    assert tags["dotdot/app"]["tags"] == ["1.0.0", DOTDOT_TAG]
    assert tags["query/app"]["tags"] == [QUERY_TAG]
    assert tags["stringtags/app"]["tags"] == "v1"
    assert tags["badlist/array"] == ["1.0.0"]
    assert tags["badlist/nonstring"]["tags"] == [7, None, {"a": 1}]
    assert get(hostile, "/v2/badlist/surrogate/tags/list").body.endswith(b'["\\ud800"]}')
    manifest = get(hostile, "/v2/prod/app/manifests/latest")  # where the `..` tag lands
    assert (manifest.body, manifest.headers["Docker-Content-Digest"]) == (hostile.artifact.raw, hostile.artifact.digest)
    for blob in hostile.artifact.blobs:
        assert get(hostile, f"/v2/dotdot/app/blobs/{blob.digest}").body == blob.data
    referrers = json.loads(get(hostile, f"/v2/subject/app/referrers/{hostile.artifact.digest}").body)
    [described] = referrers["manifests"]
    served = get(hostile, f"/v2/subject/app/manifests/{described['digest']}")
    assert json.loads(served.body)["subject"]["digest"] == HOSTILE_SUBJECT
    assert images.sha256_digest(served.body) == described["digest"]


def test_hostile_bodies_lie_as_documented(hostile: HostileRegistry) -> None:
    connection = http.client.HTTPConnection(hostile.host, timeout=10)
    connection.request("GET", "/v2/lying/length/manifests/1.0.0")
    response = connection.getresponse()
    assert int(response.headers["Content-Length"]) == len(hostile.artifact.raw)
    with pytest.raises(http.client.IncompleteRead) as short:
        response.read()
    assert short.value.partial == hostile.artifact.raw[: len(hostile.artifact.raw) // 2]
    misnamed = get(hostile, "/v2/lying/digest/manifests/1.0.0")
    assert misnamed.body == hostile.artifact.raw
    assert misnamed.headers["Docker-Content-Digest"] == hostile.referrer.digest != hostile.artifact.digest


def test_cross_host_links_point_at_the_attacker_which_records_credentials(hostile_factory: HostileFactory) -> None:
    hostile = hostile_factory(credentials=HOSTILE_USER)
    assert get(hostile, "/v2/").headers["WWW-Authenticate"] == 'Basic realm="hostile"'
    link = get(hostile, "/v2/crosslink/tags/tags/list", Authorization=HOSTILE_USER.basic_header()).headers["Link"]
    assert link.startswith(f"<{hostile.attacker_url}/v2/")
    next_page = link[1 : link.index(">")]
    assert images.raw_request("GET", next_page, headers={"Authorization": "Basic c3RvbGVu"}).status == 200
    [stolen] = hostile.attacker_requests
    assert (stolen.had_authorization, stolen.auth_scheme) == (True, "Basic")
    upload = images.raw_request(
        "POST",
        f"{hostile.url}/v2/crosslink/upload/blobs/uploads/",
        headers={"Authorization": HOSTILE_USER.basic_header()},
    )
    assert (upload.status, upload.headers["Location"].startswith(hostile.attacker_url)) == (202, True)


def test_echo_repeats_every_credential_and_bearer_mode_issues_tokens(hostile_factory: HostileFactory) -> None:
    hostile = hostile_factory(credentials=HOSTILE_USER, bearer=True)
    challenge = get(hostile, "/v2/").headers["WWW-Authenticate"]
    assert challenge == f'Bearer realm="{hostile.url}/token",service="hostile"'
    basic = HOSTILE_USER.basic_header()
    refused = get(hostile, "/token?service=hostile&scope=repository:echo/token:pull", Authorization=basic)
    assert (refused.status, basic.encode() in refused.body) == (401, True)
    token = json.loads(get(hostile, "/token?service=hostile&scope=repository:echo/app:pull", Authorization=basic).body)
    echoed = get(hostile, "/v2/echo/app/tags/list", Authorization=f"Bearer {token['token']}")
    assert (echoed.status, token["token"].encode() in echoed.body) == (400, True)
    assert hostile.issued_tokens == [token["token"]]


def test_stalling_behaviours_stall(hostile: HostileRegistry) -> None:
    """The first bytes of a trickled head arrive a second apart; the mute host never answers."""
    host, port = hostile.host.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /v2/slow/headers/tags/list HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        received = b""
        while len(received) < 3:
            received += sock.recv(16)
        assert received.startswith(b"HTT"[: len(received)])
        assert time.monotonic() - started >= 1.5
    mute_host, mute_port = hostile.mute_host.split(":")
    with socket.create_connection((mute_host, int(mute_port)), timeout=5) as mute:
        mute.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        mute.settimeout(0.5)
        with pytest.raises(TimeoutError):
            mute.recv(16)


def test_runner_measures_time_and_memory(
    tmp_path: Path, hostile: HostileRegistry, registry: Registry, unique_repo: str
) -> None:
    run = sync(tmp_path, [{"source": hostile.ref("plain/app"), "destination": f"{registry.host}/{unique_repo}"}])
    assert run.code == 0
    assert 0 < run.elapsed < 60
    assert 10 << 20 < run.max_rss < 1 << 30  # a Python process, measured on its own
