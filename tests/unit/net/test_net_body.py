"""Bodies are read whole, to their end or their cap, and checked against what the server announced."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from aiohttp import web
from harness.scripted import Handler, Serve, ServeRaw

from fluxmirror.http.body import read_body, read_prefix
from fluxmirror.http.errors import BodyError, TransportError
from fluxmirror.http.session import HttpSession


def _pieces(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(1, 300)) for _ in range(count)]


def _stream(pieces: list[bytes], *, delay: float, declare_length: bool) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        if declare_length:
            response.content_length = sum(map(len, pieces))
        await response.prepare(request)
        for piece in pieces:
            await response.write(piece)
            await asyncio.sleep(delay)
        await response.write_eof()
        return response

    return handler


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
async def test_a_body_in_many_small_delayed_pieces_is_read_whole(
    http: HttpSession, serve: Serve, declare_length: bool
) -> None:
    pieces = _pieces(seed=1, count=60)
    server = serve(_stream(pieces, delay=0.003, declare_length=declare_length))
    async with http.request("GET", server.url + "/blob") as response:
        assert await read_body(response, 1 << 20) == b"".join(pieces)


async def test_a_body_of_exactly_the_cap_is_accepted(http: HttpSession, serve: Serve) -> None:
    pieces = _pieces(seed=2, count=10)
    size = sum(map(len, pieces))
    server = serve(_stream(pieces, delay=0, declare_length=False))
    async with http.request("GET", server.url) as response:
        assert len(await read_body(response, size)) == size


async def test_a_declared_length_over_the_cap_fails_before_reading(http: HttpSession, serve_raw: ServeRaw) -> None:
    """The answer comes at once although the server sends nothing after its headers for a while."""
    server = serve_raw([b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 3.0, b"x" * 1000])
    started = time.monotonic()
    async with http.request("GET", server.url + "/index.yaml?token=s3cret") as response:
        with pytest.raises(BodyError) as caught:
            await read_body(response, 100)
    assert time.monotonic() - started < 1.0
    assert str(caught.value) == (
        f"GET {server.url}/index.yaml?token=REDACTED: response body of 1000 bytes exceeds the limit of 100 bytes"
    )
    assert not caught.value.temporary


async def test_a_chunked_body_over_the_cap_fails(http: HttpSession, serve: Serve) -> None:
    server = serve(_stream([b"a" * 60, b"b" * 60], delay=0, declare_length=False))
    async with http.request("GET", server.url + "/x") as response:
        with pytest.raises(
            BodyError, match=r"^GET http://127\.0\.0\.1:\d+/x: response body exceeds the limit of 100 bytes$"
        ) as caught:
            await read_body(response, 100)
    assert not caught.value.temporary


async def test_content_length_longer_than_the_body_is_a_temporary_transport_error(
    http: HttpSession, serve_raw: ServeRaw
) -> None:
    server = serve_raw([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", b"x" * 10])
    with pytest.raises(TransportError, match="received 10 of 100 bytes") as caught:
        async with http.request("GET", server.url + "/m") as response:
            await read_body(response, 1000)
    assert caught.value.temporary
    assert str(caught.value).startswith(f'Get "{server.url}/m": ')


async def test_content_length_shorter_than_the_body_never_yields_more_than_announced(
    http: HttpSession, serve_raw: ServeRaw
) -> None:
    """Bytes after the announced length cannot be body. Depending on when they arrive, aiohttp either
    returns the announced bytes (as Go does) or fails the exchange, seeing them where the next
    response should start, as a temporary TransportError; a longer body is never accepted."""
    server = serve_raw([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"hello, and more than announced"])
    try:
        async with http.request("GET", server.url) as response:
            body = await read_body(response, 1000)
    except TransportError as exc:
        assert "Bad status line" in str(exc) and exc.temporary
    else:
        assert body == b"hello"


async def test_content_length_shorter_than_a_late_surplus_reads_the_announced_bytes(
    http: HttpSession, serve_raw: ServeRaw
) -> None:
    """When the surplus comes after the body was read, the body is exactly the announced bytes."""
    server = serve_raw([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 0.3, b"surplus"])
    async with http.request("GET", server.url) as response:
        assert await read_body(response, 1000) == b"hello"


async def test_a_connection_closed_mid_chunk_is_a_transport_error(http: HttpSession, serve_raw: ServeRaw) -> None:
    server = serve_raw([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", b"10\r\nonly-part"])
    with pytest.raises(TransportError) as caught:
        async with http.request("GET", server.url) as response:
            await read_body(response, 1000)
    assert caught.value.temporary


@pytest.mark.parametrize(("limit", "expected"), [(0, b""), (4, b"0123"), (10, b"0123456789"), (64, b"0123456789")])
async def test_read_prefix_caps_without_failing(http: HttpSession, serve: Serve, limit: int, expected: bytes) -> None:
    server = serve(_stream([b"01", b"234", b"56789"], delay=0.002, declare_length=False))
    async with http.request("GET", server.url) as response:
        assert await read_prefix(response, limit) == expected


async def test_read_prefix_of_a_long_error_body(http: HttpSession, serve: Serve) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=500, body=b"E" * 200_000)

    server = serve(handler)
    async with http.request("GET", server.url) as response:
        assert response.status == 500
        assert await read_prefix(response, 64 * 1024) == b"E" * (64 * 1024)
