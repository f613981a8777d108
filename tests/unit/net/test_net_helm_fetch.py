"""Chart downloads: a 200 body read whole, statuses as StatusError, repositories.yaml credentials only
where Helm sends them, and bodies bounded by their cap."""

from __future__ import annotations

import asyncio
import base64

import pytest
from aiohttp import web
from harness.scripted import ScriptedServer, Serve

from fluxmirror.helm.fetch import HelmFetcher, RepositoryAccess
from fluxmirror.helm.repositories import HelmRepository
from fluxmirror.http.errors import BodyError, StatusError
from fluxmirror.http.session import HttpSession

BASIC = "Basic " + base64.b64encode(b"chartuser:chart-pa55").decode()


def _access(server: ScriptedServer, *, pass_credentials_all: bool = False) -> RepositoryAccess:
    entry = HelmRepository(
        name="charts",
        url=server.url + "/charts",
        username="chartuser",
        password="chart-pa55",
        pass_credentials_all=pass_credentials_all,
    )
    return RepositoryAccess(source=server.url + "/charts", repository=entry)


async def test_a_200_body_is_read_whole(http: HttpSession, serve: Serve) -> None:
    archive = bytes(range(256)) * 400

    async def pieces(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for start in range(0, len(archive), 7000):
            await response.write(archive[start : start + 7000])
            await asyncio.sleep(0.002)
        return response

    server = serve(pieces)
    access = _access(server)
    assert await HelmFetcher(http).get(access, server.url + "/charts/app-1.0.0.tgz", 1 << 20, None) == archive
    [seen] = server.seen
    assert (seen.target, seen.authorization, seen.headers["User-Agent"]) == (
        "/charts/app-1.0.0.tgz",
        BASIC,
        "flux-mirror",
    )


@pytest.mark.parametrize(("status", "temporary"), [(404, False), (401, False), (403, False), (429, True), (503, True)])
async def test_a_status_other_than_200_is_a_status_error(
    http: HttpSession, serve: Serve, status: int, temporary: bool
) -> None:
    async def refuse(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, text="no")

    server = serve(refuse)
    url = f"http://chartuser:chart-pa55@{server.host}/charts/index.yaml?token=s3cret&x=1"
    with pytest.raises(StatusError) as caught:
        await HelmFetcher(http).get(RepositoryAccess(source=server.url + "/charts"), url, 1 << 20, None)

    error = caught.value
    redacted = f"{server.url}/charts/index.yaml?token=REDACTED&x=REDACTED"
    assert str(error) == f"GET {redacted}: status {status}"
    assert (error.method, error.url, error.status, error.temporary) == ("GET", redacted, status, temporary)
    assert "s3cret" not in repr(error.__dict__) and "chart-pa55" not in repr(error.__dict__)


@pytest.mark.parametrize("status", [204, 206, 304])
async def test_other_2xx_and_3xx_answers_are_not_a_chart(http: HttpSession, serve: Serve, status: int) -> None:
    async def odd(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status)

    server = serve(odd)
    with pytest.raises(StatusError, match=f": status {status}$"):
        await HelmFetcher(http).get(RepositoryAccess(source=server.url), server.url + "/index.yaml", 1 << 20, None)


@pytest.mark.parametrize("pass_credentials_all", [False, True], ids=["origin-only", "pass-credentials-all"])
async def test_credentials_go_to_the_repository_origin_only_unless_passed_to_all(
    http: HttpSession, serve: Serve, pass_credentials_all: bool
) -> None:
    async def cdn_handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"chart bytes")

    cdn = serve(cdn_handler)  # same address, another port: another origin

    async def repository(request: web.Request) -> web.StreamResponse:
        if request.path == "/charts/app-1.0.0.tgz":
            return web.Response(status=302, headers={"Location": f"{cdn.url}/blobs/app-1.0.0.tgz"})
        return web.Response(status=302, headers={"Location": "/charts/app-1.0.0.tgz"})

    server = serve(repository)
    access = _access(server, pass_credentials_all=pass_credentials_all)

    body = await HelmFetcher(http).get(access, server.url + "/charts/download/app", 1 << 20, None)

    assert body == b"chart bytes"
    assert [(s.target, s.authorization) for s in server.seen] == [
        ("/charts/download/app", BASIC),
        ("/charts/app-1.0.0.tgz", BASIC),
    ]
    assert [(s.target, s.authorization) for s in cdn.seen] == [
        ("/blobs/app-1.0.0.tgz", BASIC if pass_credentials_all else None)
    ]


async def test_a_chart_url_on_another_origin_gets_no_credentials(http: HttpSession, serve: Serve) -> None:
    """An index may list absolute chart URLs elsewhere; the entry's credentials stay home."""

    async def ok(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"tgz")

    home, elsewhere = serve(ok), serve(ok)
    await HelmFetcher(http).get(_access(home), elsewhere.url + "/app-1.0.0.tgz", 1 << 20, None)
    assert [s.authorization for s in elsewhere.seen] == [None]


async def test_no_entry_means_no_credentials(http: HttpSession, serve: Serve) -> None:
    async def ok(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"index")

    server = serve(ok)
    await HelmFetcher(http).get(RepositoryAccess(source=server.url), server.url + "/index.yaml", 1 << 20, None)
    assert [s.authorization for s in server.seen] == [None]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_body_over_the_cap_is_a_body_error(http: HttpSession, serve: Serve, declared: bool) -> None:
    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        if declared:
            response.content_length = 4096
        await response.prepare(request)
        for _ in range(4):
            await response.write(b"x" * 1024)
        return response

    server = serve(big)
    with pytest.raises(BodyError, match="exceeds the limit of 4095 bytes") as caught:
        await HelmFetcher(http).get(RepositoryAccess(source=server.url), server.url + "/index.yaml", 4095, None)
    assert not caught.value.temporary
    assert str(caught.value).startswith(f"GET {server.url}/index.yaml: ")
