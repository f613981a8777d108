"""A forward HTTP proxy on loopback, so tests can prove a client honours HTTP(S)_PROXY.

Clients never proxy ``localhost`` or loopback IPs (Go's httpproxy hard-codes that), so a proxied
target needs a name: the proxy resolves targets through a **route table** the test fills in, e.g.
``registry.test:38211 -> 127.0.0.1:38211``. ``.test`` names resolve nowhere else (RFC 6761), so a
request that reached such a server went through this proxy, and only through it.

It speaks the two forms clients use (RFC 9110 §9.3.6, RFC 9112 §3.2.2):

* ``CONNECT host:port`` opens a byte tunnel, for https: TLS runs end to end through it, so the
  proxy sees the authority and nothing else (no path, no Authorization).
* ``GET http://host:port/path HTTP/1.1`` (any method) is forwarded in origin form, for plain http:
  the proxy sees the whole request, credentials included, as every HTTP proxy does.

Plain-http exchanges are one per connection (``Connection: close`` both ways), which lets the
response body be relayed verbatim until the upstream closes instead of re-framing it; clients
honour that and open a new connection for the next request. Request bodies are relayed as they
arrive, following their Content-Length or chunked framing.

With ``credentials`` every request must carry ``Proxy-Authorization: Basic`` (what Go sends for
a proxy URL's userinfo) or gets 407; a target that is not routed gets 502. Every request is
recorded, refused ones included, *before* its answer is sent: once a client has its answer, the
log already holds the request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from harness import Credentials
from harness.background import STOP_TIMEOUT, BackgroundLoop, listen
from harness.closing import Closing
from harness.pki import REGISTRY_NAME
from harness.registry import Registry

__all__ = ["PROXY_VARIABLES", "REALM", "ForwardProxy", "ProxiedRequest", "proxy_environment"]

REALM = "fluxmirror-proxy"
PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
)
"""Every variable some client reads for its proxy; tests start with none of them set."""


def proxy_environment(**variables: str) -> dict[str, str]:
    """Every proxy variable, empty unless given: for a subprocess whose base environment is not clean.

    Go (skopeo, flux) treats an empty variable as unset, so this pins the choice to ``variables``
    whatever the parent environment holds.
    """
    return {name: "" for name in PROXY_VARIABLES} | variables


_CHUNK = 64 * 1024
# Headers about one connection, not the message (RFC 9110 §7.6.1), plus the proxy's own.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-authenticate",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    }
)
_REASONS = {400: "Bad Request", 407: "Proxy Authentication Required", 502: "Bad Gateway"}

Headers = list[tuple[str, str]]


@dataclass(frozen=True)
class ProxiedRequest:
    """One request as the proxy saw it, with what it answered.

    ``authority`` is ``host:port`` as the client asked for it (lower-cased; port 80 filled in for
    a plain-http URL without one). ``path`` and ``had_authorization`` exist only for plain http:
    inside a CONNECT tunnel the proxy cannot see them, hence None.
    """

    method: str
    authority: str
    connect: bool
    path: str | None  # origin-form target (path plus query) of a plain-http request
    had_authorization: bool | None
    had_proxy_authorization: bool
    status: int  # 200 for an opened tunnel, the upstream's status, or the proxy's own 400/407/502


@dataclass(frozen=True)
class _Head:
    """A request or status line and its header fields, as read off the wire."""

    line: str
    headers: Headers

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def end_to_end(self) -> Headers:
        """The headers a proxy passes on: minus hop-by-hop ones and any the Connection header names."""
        named = {token.strip().lower() for token in (self.header("Connection") or "").split(",")}
        return [(key, value) for key, value in self.headers if key.lower() not in _HOP_BY_HOP | named]


class ForwardProxy(Closing):
    """A forward proxy on ``127.0.0.1:<free port>`` until ``close`` (or the ``with`` block ends)."""

    def __init__(
        self, routes: Mapping[str, tuple[str, int]] | None = None, *, credentials: Credentials | None = None
    ) -> None:
        self.credentials = credentials
        self._routes = {authority.lower(): address for authority, address in (routes or {}).items()}
        self._lock = threading.Lock()
        self._requests: list[ProxiedRequest] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        sock = listen()
        self.port: int = sock.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self._background = BackgroundLoop(f"forwardproxy-{self.port}")
        try:
            self._server = self._background.call(self._start(sock))
        except BaseException:
            self._background.close()
            raise

    # -- configuration -----------------------------------------------------------------------------

    def url(self, credentials: Credentials | None = None) -> str:
        """The proxy URL for HTTP(S)_PROXY, with ``credentials`` as percent-encoded userinfo."""
        if credentials is None:
            return f"http://{self.host}"
        return f"http://{quote(credentials.username, safe='')}:{quote(credentials.password, safe='')}@{self.host}"

    def route(self, name: str, port: int, address: tuple[str, int] | None = None) -> str:
        """Make ``name:port`` reachable through the proxy, at ``address`` (default ``127.0.0.1:port``).

        Returns the authority, ``name:port``, to use in URLs and configs.
        """
        authority = f"{name}:{port}".lower()
        with self._lock:
            self._routes[authority] = address or ("127.0.0.1", port)
        return authority

    def expose(self, registry: Registry, name: str = REGISTRY_NAME) -> Registry:
        """Route ``name:<port>`` to ``registry`` and return its description under that name.

        The view is for configs and for clients that go through this proxy; pushing or checking
        content directly still takes the original (loopback) description.
        """
        port = int(registry.host.rsplit(":", 1)[1])
        authority = self.route(name, port, ("127.0.0.1", port))
        scheme = "https" if registry.tls else "http"
        return dataclasses.replace(registry, host=authority, url=f"{scheme}://{authority}")

    # -- request log -------------------------------------------------------------------------------

    @property
    def requests(self) -> list[ProxiedRequest]:
        """Every request so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        self._background.close(self._stop)

    async def _start(self, sock: socket.socket) -> asyncio.Server:
        return await asyncio.start_server(self._handle, sock=sock, limit=_CHUNK)

    async def _stop(self) -> None:
        """Stop accepting, cut every open connection (tunnels would otherwise live on), reap handlers."""
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT)
        await self._server.wait_closed()

    # -- serving -----------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            head = await _read_head(reader)
            if head is not None:
                method, _, rest = head.line.partition(" ")
                target = rest.partition(" ")[0]
                if method.upper() == "CONNECT":
                    await self._tunnel(head, target.lower(), reader, writer)
                else:
                    await self._forward(head, method, target, reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # either side went away; there is nobody left to answer
        finally:
            await _close(writer)  # not abort: that would drop the tail of a response still buffered
            self._writers.discard(writer)
            self._tasks.discard(task)

    async def _tunnel(
        self, head: _Head, authority: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        upstream, status = await self._admit(head, authority)
        self._record(head, "CONNECT", authority, connect=True, path=None, status=status)
        if upstream is None:
            await _refuse(writer, status)
            return
        upstream_reader, upstream_writer = upstream
        self._writers.add(upstream_writer)
        try:
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            await writer.drain()
            await _splice(reader, writer, upstream_reader, upstream_writer)
        finally:
            await _close(upstream_writer)
            self._writers.discard(upstream_writer)

    async def _forward(
        self, head: _Head, method: str, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        url = urlsplit(target)
        if url.scheme.lower() != "http" or not url.hostname:
            self._record(head, method, url.netloc.lower(), connect=False, path=target, status=400)
            await _refuse(writer, 400)  # origin-form or https: this is a proxy, not an origin server
            return
        host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
        authority = f"{host}:{url.port or 80}"
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        upstream, status = await self._admit(head, authority)
        if upstream is None:
            self._record(head, method, authority, connect=False, path=path, status=status)
            await _refuse(writer, status)
            return
        upstream_reader, upstream_writer = upstream
        self._writers.add(upstream_writer)
        body: asyncio.Task[None] | None = None
        try:
            headers = head.end_to_end()
            if not any(key.lower() == "host" for key, _ in headers):
                headers.append(("Host", authority))
            upstream_writer.write(_serialize(f"{method} {path} HTTP/1.1", [*headers, ("Connection", "close")]))
            # Concurrently, so a client waiting on "Expect: 100-continue" gets its interim answer.
            body = asyncio.create_task(_copy_body(head, reader, upstream_writer))
            response = await _read_head(upstream_reader)
            while response is not None and _status(response) < 200:  # interim responses pass as they are
                writer.write(_serialize(response.line, response.headers))
                response = await _read_head(upstream_reader)
            if response is None:
                raise asyncio.IncompleteReadError(b"", None)
            self._record(head, method, authority, connect=False, path=path, status=_status(response))
            writer.write(_serialize(response.line, [*response.end_to_end(), ("Connection", "close")]))
            await _copy_to_eof(upstream_reader, writer)
        finally:
            if body is not None:  # done, or moot: the upstream has answered and closed
                body.cancel()
                await asyncio.gather(body, return_exceptions=True)
            await _close(upstream_writer)
            self._writers.discard(upstream_writer)

    async def _admit(
        self, head: _Head, authority: str
    ) -> tuple[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None, int]:
        """Authenticate, route and connect: the upstream streams and 200, or None and the refusal's status."""
        if self.credentials is not None and not self.credentials.matches_basic(head.header("Proxy-Authorization")):
            return None, 407
        with self._lock:
            address = self._routes.get(authority)
        if address is None:
            return None, 502
        try:
            return await asyncio.open_connection(*address, limit=_CHUNK), 200
        except OSError:
            return None, 502

    def _record(
        self, head: _Head, method: str, authority: str, *, connect: bool, path: str | None, status: int
    ) -> None:
        request = ProxiedRequest(
            method=method.upper(),
            authority=authority,
            connect=connect,
            path=path,
            had_authorization=None if connect else head.header("Authorization") is not None,
            had_proxy_authorization=head.header("Proxy-Authorization") is not None,
            status=status,
        )
        with self._lock:
            self._requests.append(request)


async def _read_head(reader: asyncio.StreamReader) -> _Head | None:
    """The start line and header fields up to the blank line; None if the peer closed first."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise
        return None
    line, *fields = raw.decode("latin-1").split("\r\n")[:-2]
    headers = [(key.strip(), value.strip()) for key, _, value in (field.partition(":") for field in fields)]
    return _Head(line, headers)


def _status(head: _Head) -> int:
    return int(head.line.split(" ", 2)[1])


def _serialize(line: str, headers: Headers) -> bytes:
    return "".join([line + "\r\n", *(f"{key}: {value}\r\n" for key, value in headers), "\r\n"]).encode("latin-1")


async def _refuse(writer: asyncio.StreamWriter, status: int) -> None:
    headers = [("Content-Length", "0"), ("Connection", "close")]
    if status == 407:
        headers.insert(0, ("Proxy-Authenticate", f'Basic realm="{REALM}"'))
    writer.write(_serialize(f"HTTP/1.1 {status} {_REASONS[status]}", headers))
    await writer.drain()


async def _copy_body(head: _Head, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Relay a request body in its own framing: chunked as chunks, else Content-Length bytes (RFC 9112 §6.3)."""
    if "chunked" in (head.header("Transfer-Encoding") or "").lower():
        while True:
            size_line = await reader.readuntil(b"\r\n")
            writer.write(size_line)
            size = int(size_line.split(b";", 1)[0], 16)
            if size == 0:
                break
            await _copy_exactly(reader, writer, size + 2)  # the data and its CRLF
        while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
            writer.write(trailer)
        writer.write(b"\r\n")
    else:
        await _copy_exactly(reader, writer, int(head.header("Content-Length") or 0))
    await writer.drain()


async def _copy_exactly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: int) -> None:
    while count > 0:
        chunk = await reader.read(min(_CHUNK, count))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", count)
        writer.write(chunk)
        await writer.drain()
        count -= len(chunk)


async def _copy_to_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while chunk := await reader.read(_CHUNK):
        writer.write(chunk)
        await writer.drain()


async def _splice(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
) -> None:
    """Copy both ways until both sides are done; an end of stream is passed on as a half-close."""

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _copy_to_eof(reader, writer)
        if writer.can_write_eof():
            writer.write_eof()

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(pump(client_reader, upstream_writer))
            group.create_task(pump(upstream_reader, client_writer))
    except* OSError:
        pass  # a reset on either side ends the tunnel; the caller closes both connections


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close after flushing what is buffered; a peer that already went away is no error."""
    writer.close()
    with suppress(OSError):
        await writer.wait_closed()
