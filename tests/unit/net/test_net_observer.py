"""The observation seam (fluxmirror.http.observer): what HttpSession reports per hop, and the retries
the registry client reports through it, against servers scripted for each case."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web
from harness.scripted import Serve

from fluxmirror.http.errors import TransportError
from fluxmirror.http.observer import Exchange
from fluxmirror.http.session import HttpSession
from fluxmirror.oci.client import USER_AGENT, RegistryClient
from fluxmirror.oci.errors import RegistryError

from .conftest import TINY_DELAYS, StaticCredentials


class Recorder:
    """A TrafficObserver that keeps what it is told."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self.retries: list[str] = []

    def exchanged(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)

    def retrying(self, host: str) -> None:
        self.retries.append(host)

    def limited(self, host: str, limit: int) -> None:
        raise AssertionError("no --adaptive here")


@pytest_asyncio.fixture(loop_scope="function")
async def watched() -> AsyncIterator[tuple[HttpSession, Recorder]]:
    recorder = Recorder()
    async with HttpSession(user_agent=USER_AGENT, environ={}, observer=recorder) as session:
        yield session, recorder


async def test_each_hop_is_reported_with_its_own_host_and_the_body_bytes_that_arrived(
    watched: tuple[HttpSession, Recorder], serve: Serve
) -> None:
    http, recorder = watched

    async def blob_host(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"x" * 5000)

    other = serve(blob_host)

    async def home(request: web.Request) -> web.StreamResponse:
        return web.Response(status=307, headers={"Location": f"{other.url}/blob"}, text="moved")

    server = serve(home)
    async with http.request("GET", f"{server.url}/start", follow_redirects=True) as response:
        assert len(await response.read()) == 5000
        assert recorder.exchanges[-1].host == server.host  # the redirect hop, reported before the next one

    assert [(e.host, e.method, e.status, e.sent) for e in recorder.exchanges] == [
        (server.host, "GET", 307, 0),
        (other.host, "GET", 200, 0),
    ]
    assert recorder.exchanges[1].received == 5000


async def test_a_streamed_body_counts_what_was_sent_and_a_whole_one_its_length(
    watched: tuple[HttpSession, Recorder], serve: Serve
) -> None:
    http, recorder = watched

    async def accept(request: web.Request) -> web.StreamResponse:
        return web.Response(status=202)

    server = serve(accept)

    async def pieces() -> AsyncIterator[bytes]:
        for size in (1000, 2000, 3):
            yield b"y" * size

    async with http.request("PATCH", f"{server.url}/upload", data=pieces()) as response:
        assert response.status == 202
    async with http.request("PUT", f"{server.url}/manifest", data=b"{}" * 50) as response:
        assert response.status == 202

    assert [(e.method, e.status, e.sent, e.received) for e in recorder.exchanges] == [
        ("PATCH", 202, 3003, 0),
        ("PUT", 202, 100, 0),
    ]
    assert [len(seen.body) for seen in server.seen] == [3003, 100]


async def test_a_request_that_got_no_answer_is_reported_without_a_status(
    watched: tuple[HttpSession, Recorder],
) -> None:
    http, recorder = watched
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]

    with pytest.raises(TransportError):
        async with http.request("PUT", f"http://127.0.0.1:{port}/x", data=b"never sent"):
            pass

    assert recorder.exchanges == [Exchange(host=f"127.0.0.1:{port}", method="PUT", status=None, sent=0, received=0)]


async def test_a_body_cut_while_the_caller_reads_is_reported_once_with_its_status(
    watched: tuple[HttpSession, Recorder], serve: Serve
) -> None:
    http, recorder = watched

    async def cut(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "10000"})
        await response.prepare(request)
        await response.write(b"z" * 4000)
        assert request.transport is not None
        request.transport.close()
        return response

    server = serve(cut)
    with pytest.raises(TransportError):
        async with http.request("GET", f"{server.url}/blob") as response:
            await response.read()

    [exchange] = recorder.exchanges
    assert (exchange.status, exchange.received) == (200, 4000)


async def test_the_registry_client_reports_each_retry_of_a_transient_failure(
    watched: tuple[HttpSession, Recorder], serve: Serve
) -> None:
    http, recorder = watched

    async def throttled(request: web.Request) -> web.StreamResponse:
        if request.path == "/v2/":
            return web.json_response({})
        return web.Response(status=429, headers={"Retry-After": "0"})

    server = serve(throttled)
    client = RegistryClient(http, server.host, StaticCredentials(), retry_delays=TINY_DELAYS)

    with pytest.raises(RegistryError):
        await client.list_tags("app")

    assert recorder.retries == [server.host] * len(TINY_DELAYS)
    tag_requests = [e.status for e in recorder.exchanges if e.method == "GET" and e.host == server.host]
    assert tag_requests.count(429) == len(TINY_DELAYS) + 1
