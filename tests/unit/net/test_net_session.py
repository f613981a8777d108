"""HttpSession: redirects hop by hop with per-hop Authorization and TLS, deadlines, and one exception mapping."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time

import pytest
from aiohttp import web
from harness.scripted import ScriptedServer, Serve, ServeRaw
from yarl import URL

from fluxmirror.http.errors import RedirectError, TLSError, TransportError
from fluxmirror.http.session import MAX_REDIRECTS, HttpSession
from fluxmirror.http.urls import Origin


def _redirect(location: str, status: int = 302) -> web.Response:
    return web.Response(status=status, headers={"Location": location})


class _Authorizer:
    """An `authorize` callback that answers for one origin only and records every hop it is asked about."""

    def __init__(self, home: str, value: str = "Bearer home-token") -> None:
        self.home = Origin.of(home)
        self.value = value
        self.asked: list[str] = []

    async def __call__(self, url: URL) -> str | None:
        self.asked.append(str(url))
        return self.value if Origin.of(url) == self.home else None


async def test_redirects_are_followed_hop_by_hop_with_authorization_only_where_given(
    http: HttpSession, serve: Serve
) -> None:
    async def elsewhere(request: web.Request) -> web.StreamResponse:
        return web.Response(text="final")

    other = serve(elsewhere)

    async def home(request: web.Request) -> web.StreamResponse:
        if request.path == "/start":
            return _redirect("/second?x=1", 301)
        return _redirect(f"{other.url}/final", 307)

    server = serve(home)
    authorize = _Authorizer(server.url)

    async with http.request("GET", server.url + "/start", authorize=authorize, follow_redirects=True) as response:
        assert (response.status, await response.text()) == (200, "final")
        assert str(response.url) == f"{other.url}/final"

    assert authorize.asked == [f"{server.url}/start", f"{server.url}/second?x=1", f"{other.url}/final"]
    assert [(seen.target, seen.authorization) for seen in server.seen] == [
        ("/start", "Bearer home-token"),
        ("/second?x=1", "Bearer home-token"),
    ]
    assert [(seen.target, seen.authorization) for seen in other.seen] == [("/final", None)]


async def test_a_caller_supplied_authorization_header_is_not_what_decides(http: HttpSession, serve: Serve) -> None:
    """`authorize` returning None leaves the request without Authorization on every hop."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return _redirect("/b") if request.path == "/a" else web.Response(text="ok")

    server = serve(handler)

    async def nobody(url: URL) -> str | None:
        return None

    async with http.request("GET", server.url + "/a", authorize=nobody, follow_redirects=True) as response:
        assert response.status == 200
    assert [seen.authorization for seen in server.seen] == [None, None]


def _chain(serve: Serve) -> ScriptedServer:
    """`/hops/<n>` redirects to `/hops/<n-1>`; `/hops/0` answers 200."""

    async def handler(request: web.Request) -> web.StreamResponse:
        left = int(request.path.rsplit("/", 1)[1])
        return web.Response(text="arrived") if left == 0 else _redirect(f"/hops/{left - 1}")

    return serve(handler)


async def test_ten_redirects_are_followed(http: HttpSession, serve: Serve) -> None:
    server = _chain(serve)
    async with http.request("GET", f"{server.url}/hops/{MAX_REDIRECTS}", follow_redirects=True) as response:
        assert (response.status, await response.text()) == (200, "arrived")
    assert len(server.seen) == MAX_REDIRECTS + 1


async def test_the_eleventh_redirect_is_refused(http: HttpSession, serve: Serve) -> None:
    server = _chain(serve)
    url = f"{server.url}/hops/{MAX_REDIRECTS + 1}?token=s3cret"
    with pytest.raises(RedirectError) as caught:
        async with http.request("GET", url, follow_redirects=True):
            pytest.fail("no response should be yielded")
    assert str(caught.value) == f"GET {server.url}/hops/11?token=REDACTED: stopped after 10 redirects"
    assert len(server.seen) == MAX_REDIRECTS + 1
    assert not caught.value.temporary


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("ftp://127.0.0.1/x", "redirect to a non-HTTP location"),
        ("file:///etc/passwd", "redirect to a non-HTTP location"),
        ("javascript:alert(1)", "redirect to a non-HTTP location"),
        ("data:,hello", "redirect to a non-HTTP location"),
        ("https:", "redirect to a non-HTTP location"),  # no host
        ("http://[::1", "redirect to an invalid Location: "),
    ],
)
async def test_a_redirect_to_something_not_http_is_refused(
    http: HttpSession, serve: Serve, location: str, message: str
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return _redirect(location)

    server = serve(handler)
    with pytest.raises(RedirectError) as caught:
        async with http.request("GET", server.url + "/r", follow_redirects=True):
            pytest.fail("no response should be yielded")
    assert str(caught.value).startswith(f"GET {server.url}/r: {message}")
    assert len(server.seen) == 1


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_requests_with_bodies_are_not_redirected(http: HttpSession, serve: Serve, method: str) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return _redirect("/elsewhere", 307)

    server = serve(handler)
    async with http.request(method, server.url + "/upload", data=b"payload", follow_redirects=True) as response:
        assert (response.status, response.headers["Location"]) == (307, "/elsewhere")
    assert [(seen.method, seen.target, seen.body) for seen in server.seen] == [(method, "/upload", b"payload")]


async def test_head_redirects_are_followed_and_get_ones_only_when_asked(http: HttpSession, serve: Serve) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return _redirect("/there", 303) if request.path == "/here" else web.Response(text="there")

    server = serve(handler)
    async with http.request("HEAD", server.url + "/here", follow_redirects=True) as response:
        assert response.status == 200
    async with http.request("GET", server.url + "/here") as response:
        assert (response.status, response.headers["Location"]) == (303, "/there")
    assert [(seen.method, seen.target) for seen in server.seen] == [
        ("HEAD", "/here"),
        ("HEAD", "/there"),
        ("GET", "/here"),
    ]


async def test_tls_is_chosen_per_hop(
    http: HttpSession, serve: Serve, server_tls: ssl.SSLContext, client_trusting_test_ca: ssl.SSLContext
) -> None:
    """A plain-HTTP origin redirects to a TLS one whose CA only the second hop's choice trusts."""

    async def secure_handler(request: web.Request) -> web.StreamResponse:
        return web.Response(text="over tls")

    secure = serve(secure_handler, ssl_context=server_tls)

    async def plain_handler(request: web.Request) -> web.StreamResponse:
        return _redirect(f"{secure.url}/blob")

    plain = serve(plain_handler)
    chosen: list[str] = []

    def tls(url: URL) -> ssl.SSLContext | bool:
        chosen.append(str(url))
        return client_trusting_test_ca if url.scheme == "https" else True

    async with http.request("GET", plain.url + "/start", tls=tls, follow_redirects=True) as response:
        assert await response.text() == "over tls"
    assert chosen == [f"{plain.url}/start", f"{secure.url}/blob"]


async def test_an_untrusted_certificate_is_a_tls_error_that_is_not_temporary(
    http: HttpSession, serve: Serve, server_tls: ssl.SSLContext
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(text="never")

    server = serve(handler, ssl_context=server_tls)
    with pytest.raises(TLSError) as caught:
        async with http.request("GET", server.url + "/v2/?token=abc"):
            pytest.fail("no response should be yielded")
    assert isinstance(caught.value, TransportError)
    assert not caught.value.temporary
    assert str(caught.value) == (
        f'Get "{server.url}/v2/?token=REDACTED": '
        "tls: failed to verify certificate: x509: certificate signed by unknown authority"
    )
    assert server.seen == []


async def test_a_trickling_body_is_cut_by_the_time_limit(http: HttpSession, serve: Serve) -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for _ in range(50):
                await response.write(b"x")
                await asyncio.sleep(0.2)
        return response

    server = serve(trickle)
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        async with http.request("GET", server.url + "/slow", time_limit=1.0) as response:
            await response.read()
    elapsed = time.monotonic() - started
    assert str(caught.value) == f'Get "{server.url}/slow": context deadline exceeded'
    assert caught.value.temporary
    assert 0.9 <= elapsed < 1.6


async def test_the_time_limit_spans_every_hop(http: HttpSession, serve: Serve) -> None:
    """Each hop takes 0.3 s: the second would fit in 0.5 s on its own, but not after the first."""

    async def slow_chain(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.3)
        return _redirect(f"/n{len(request.path)}")

    server = serve(slow_chain)
    with pytest.raises(TransportError, match=r": context deadline exceeded$"):
        async with http.request("GET", server.url + "/", follow_redirects=True, time_limit=0.5):
            pytest.fail("no response should be yielded")
    assert len(server.seen) == 2


async def test_connection_refused_is_a_temporary_transport_error(http: HttpSession) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransportError) as caught:
        async with http.request("GET", f"http://127.0.0.1:{port}/v2/"):
            pytest.fail("no response should be yielded")
    assert caught.value.temporary
    assert type(caught.value) is TransportError
    assert (
        str(caught.value)
        == f'Get "http://127.0.0.1:{port}/v2/": dial tcp 127.0.0.1:{port}: connect: connection refused'
    )
    assert isinstance(caught.value.__cause__, OSError)


async def test_a_server_closing_mid_body_is_a_transport_error_raised_while_reading(
    http: HttpSession, serve_raw: ServeRaw
) -> None:
    """The failure comes with the body, inside the caller's block, and leaves it mapped."""
    server = serve_raw([b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n", b"x" * 1000, 0.05])
    statuses: list[int] = []
    with pytest.raises(TransportError, match="received 1000 of 4096 bytes") as caught:
        async with http.request("GET", server.url + "/blob") as response:
            statuses.append(response.status)
            await response.read()
    assert statuses == [200]
    assert caught.value.temporary
    assert str(caught.value).startswith(f'Get "{server.url}/blob": ')


async def test_exceptions_of_the_callers_own_code_pass_unchanged(http: HttpSession, serve: Serve) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok")

    server = serve(handler)
    with pytest.raises(KeyError):
        async with http.request("GET", server.url):
            raise KeyError("mine")


async def test_a_proxy_with_an_unknown_scheme_fails_as_a_transport_error() -> None:
    async with HttpSession(user_agent="t", environ={"HTTP_PROXY": "foo://127.0.0.1"}) as http:
        with pytest.raises(TransportError):
            async with http.request("GET", "http://registry.invalid/v2/"):
                pytest.fail("no response should be yielded")


def test_a_request_without_a_time_limit_keeps_its_connect_and_read_timeouts() -> None:
    """aiohttp reads `timeout=None` as no timeout at all; an unbounded total must not unbound the rest."""
    from fluxmirror.http import session

    hop = session._remaining(None)
    assert (hop.total, hop.sock_connect, hop.sock_read) == (None, session.CONNECT_TIMEOUT, session.READ_TIMEOUT)
