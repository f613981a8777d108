"""A fault-injecting reverse proxy in front of a real registry, for the engine's failure tests.

No real component fails on cue, so this proxy does it: every request is streamed to the real
registry and back unchanged unless a rule matches, and a rule changes only what crosses the
wire (a canned answer, a cut connection, a flipped byte, a cross-host redirect, a body paced out
in small pieces).  Whatever a test sees apart from its rules is therefore distribution's own
behaviour.

The servers run on a private event loop in a daemon thread, so synchronous tests and asyncio
tests (whose loop must not be blocked by the proxy) can both use it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import random
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
import yarl
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from harness.background import STOP_TIMEOUT, BackgroundLoop, listen
from harness.closing import Closing
from harness.registry import Registry, client_ssl_context

BLOB_PATH = r"/blobs/[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"
UPLOAD_PATH = r"/blobs/uploads/[^/]+$"

# Headers about one connection, not the message; Host is the proxy's own and aiohttp sets the upstream's.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer"})
_HOP_BY_HOP |= {"transfer-encoding", "upgrade", "host"}
# aiohttp would otherwise invent these for the upstream request; forward only what the client sent.
_NO_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


@dataclass(frozen=True, kw_only=True)
class Rule:
    """Which requests a fault applies to, and how many times before it is spent.

    ``method`` (None: any) must equal the request method, ``path`` is searched as a regex in
    the decoded path, ``query`` (None: any) in the decoded query string.
    """

    method: str | None = None
    path: str = ""
    query: str | None = None
    times: int = 1

    def matches(self, method: str, path: str, query: str) -> bool:
        return (
            (self.method is None or self.method.upper() == method)
            and re.search(self.path, path) is not None
            and (self.query is None or re.search(self.query, query) is not None)
        )


@dataclass(frozen=True)
class Respond(Rule):
    """Answer without asking the registry, e.g. 503, or 429 with ``Retry-After``."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, kw_only=True)
class Throttle(Rule):
    """Answer ``status`` (with ``headers``, e.g. ``Retry-After``) whenever ``limit`` requests are
    already in flight to the registry, as a registry or gateway limiting concurrent requests does.

    In flight means passed on and not yet answered in full; the requests this rule (or any other
    canned answer) turned away do not count. It never runs out by default.
    """

    limit: int
    status: int = 429
    headers: Mapping[str, str] = field(default_factory=dict)
    times: int = 1_000_000_000


@dataclass(frozen=True)
class AddHeaders(Rule):
    """Pass the request on and add ``headers`` to the registry's answer (``RateLimit-Remaining``, say)."""

    headers: Mapping[str, str]


@dataclass(frozen=True)
class Stall(Rule):
    """Hold the request ``seconds`` before passing it on, like a registry too busy to answer."""

    seconds: float


@dataclass(frozen=True)
class CutUpload(Rule):
    """The registry receives exactly ``after_bytes`` of the body, then the client's connection dies.

    The upstream request is chunked and ends cleanly after ``after_bytes``, so the registry
    really stores those bytes; its answer is swallowed and the client connection is aborted.
    """

    after_bytes: int
    method: str | None = field(default="PATCH", kw_only=True)
    path: str = field(default=UPLOAD_PATH, kw_only=True)


@dataclass(frozen=True, kw_only=True)
class BufferUpload(Rule):
    """Read each matching request's whole body before passing the request on, and pass nothing on
    when the client goes away first, as a front proxy that buffers request bodies does (nginx's
    default, ``proxy_request_buffering on``): the registry never sees a PATCH cut short."""

    method: str | None = "PATCH"
    path: str = UPLOAD_PATH
    times: int = 1_000_000_000


@dataclass(frozen=True, kw_only=True)
class _BlobGetRule(Rule):
    method: str | None = "GET"
    path: str = BLOB_PATH


@dataclass(frozen=True)
class CutDownload(_BlobGetRule):
    """The client receives the registry's status, headers and first ``after_bytes`` body bytes, then a cut."""

    after_bytes: int


@dataclass(frozen=True)
class CorruptDownload(_BlobGetRule):
    """The response body arrives complete but with the byte at ``offset`` xor-ed with 0xFF."""

    offset: int


@dataclass(frozen=True)
class RedirectToBlobHost(_BlobGetRule):
    """307 to the blob host under the name ``localhost``: a different host, so credentials must not follow."""


@dataclass(frozen=True, kw_only=True)
class Pace(Rule):
    """Every matching response body arrives in pieces of ``piece`` bytes, ``delay`` seconds apart.

    Sizes and delays are drawn uniformly from the ranges (seeded, so a run is repeatable); the
    bytes and headers are the registry's own. A client that takes one ``read`` for the whole body
    gets only the first piece, which is what a slow link or a busy registry does too. By default
    the rule never runs out; like every rule it applies only when it is the first match.
    """

    piece: tuple[int, int] = (100, 500)
    delay: tuple[float, float] = (0.001, 0.005)
    seed: int = 0
    times: int = 1_000_000_000


@dataclass(frozen=True)
class RecordedRequest:
    """One exchange as a server saw it; the Authorization value itself is never kept."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # as received, without Authorization
    had_authorization: bool
    auth_scheme: str | None  # "Basic", "Bearer", ... when had_authorization
    status: int | None  # what the client received; None when cut before any response
    request_bytes: int  # body bytes read from the client (and forwarded, unless a rule answered)
    response_bytes: int  # body bytes sent to the client
    rule: Rule | None
    started: float  # time.monotonic() when the request's headers arrived
    finished: float  # time.monotonic() when the exchange was over (answered, cut or failed)

    def overlaps(self, other: RecordedRequest) -> bool:
        """Whether the two exchanges were under way at the same time (the proxies share one clock)."""
        return self.started < other.finished and other.started < self.finished


@dataclass
class _Armed:
    rule: Rule
    remaining: int


@dataclass
class Tally:
    """The mutable half of a record while the exchange is in flight."""

    status: int | None = None
    request_bytes: int = 0
    response_bytes: int = 0
    rule: Rule | None = None


class Recorder:
    """Thread-safe request log whose readers wait for in-flight exchanges.

    A client can hold the whole response before the handler returns, so a test that reads
    the log right after its call must wait for the handler to finish recording.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._active = 0
        self._generation = 0
        self._in_flight: list[str] = []
        self._records: list[RecordedRequest] = []

    def clear(self) -> None:
        """Forget every exchange so far; those still in flight (a killed client's) are never logged."""
        with self._condition:
            self._generation += 1
            self._records = []
            self._active = 0
            self._condition.notify_all()

    async def record(
        self, request: web.Request, serve: Callable[[web.Request, Tally], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """The aiohttp handler: ``serve`` the request, then log it whatever happened."""
        with self._condition:
            self._active += 1
            self._in_flight.append(f"{request.method} {request.path}")
            generation = self._generation
        tally, started = Tally(), time.monotonic()
        try:
            return await serve(request, tally)
        finally:
            self._append(request, tally, generation, started)

    def _append(self, request: web.Request, tally: Tally, generation: int, started: float) -> None:
        authorization = request.headers.get("Authorization")
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=request.query_string,
            headers={key: value for key, value in request.headers.items() if key.lower() != "authorization"},
            had_authorization=authorization is not None,
            auth_scheme=authorization.split(" ", 1)[0] if authorization else None,
            status=tally.status,
            request_bytes=tally.request_bytes,
            response_bytes=tally.response_bytes,
            rule=tally.rule,
            started=started,
            finished=time.monotonic(),
        )
        with self._condition:
            self._in_flight.remove(f"{request.method} {request.path}")
            if generation == self._generation:
                self._records.append(record)
                self._active -= 1
            self._condition.notify_all()

    @property
    def in_flight(self) -> list[str]:
        """The exchanges under way as ``<METHOD> <path>``, without waiting for them (as ``requests`` does)."""
        with self._condition:
            return list(self._in_flight)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._condition:
            self._condition.wait_for(lambda: self._active == 0, timeout=STOP_TIMEOUT)
            return list(self._records)


class BlobHost(Recorder):
    """A second origin that serves blobs without asking for credentials, like a CDN behind a redirect."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port
        self.host = f"localhost:{port}"
        self.url = f"http://{self.host}"


class FaultProxy(Closing):
    """Forwards to ``upstream`` on ``127.0.0.1:<free port>`` and misbehaves only where a rule says so."""

    def __init__(self, upstream: Registry, *, blob_host: bool = True) -> None:
        self._upstream = upstream
        self._armed: list[_Armed] = []
        self._lock = threading.Lock()
        self._recorder = Recorder()
        self._relaying = 0  # requests passed on to the registry and not yet answered in full (Throttle)
        sockets = [listen() for _ in range(2 if blob_host else 1)]
        self.host = f"127.0.0.1:{sockets[0].getsockname()[1]}"
        self.url = f"http://{self.host}"
        self.blob_host = BlobHost(sockets[1].getsockname()[1]) if blob_host else None
        self._background = BackgroundLoop(f"faultproxy-{self.host}")
        self._session: aiohttp.ClientSession | None = None
        try:
            self._start(sockets)
        except BaseException:
            self.close()
            raise

    def add(self, rule: Rule) -> Rule:
        if isinstance(rule, RedirectToBlobHost) and self.blob_host is None:
            raise ValueError("RedirectToBlobHost needs FaultProxy(..., blob_host=True)")
        with self._lock:
            self._armed.append(_Armed(rule, rule.times))
        return rule

    def clear(self) -> None:
        """Disarm every rule and forget the exchanges so far: a clean slate for a second run."""
        with self._lock:
            self._armed.clear()
        self._recorder.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._recorder.requests

    @property
    def in_flight(self) -> list[str]:
        return self._recorder.in_flight

    def as_registry(self) -> Registry:
        """The upstream's description with the proxy's address, for clients that take a ``Registry``."""
        return dataclasses.replace(self._upstream, host=self.host, url=self.url)

    def close(self) -> None:
        self._background.close(self._close_session)

    def _start(self, sockets: list[socket.socket]) -> None:
        self._background.call(self._open_session())
        servers = [(self._recorder, self._serve)]
        if self.blob_host is not None:
            servers.append((self.blob_host, self._serve_blob_host))
        for sock, (recorder, serve) in zip(sockets, servers, strict=True):
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", functools.partial(recorder.record, serve=serve))
            self._background.serve(app, sock)

    async def _open_session(self) -> None:
        context = client_ssl_context(self._upstream)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context if context is not None else True),
            auto_decompress=False,
            skip_auto_headers=_NO_AUTO_HEADERS,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )

    async def _close_session(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _take(self, request: web.Request) -> Rule | None:
        """The first armed rule that matches, with one use consumed."""
        with self._lock:
            for armed in self._armed:
                if isinstance(armed.rule, Throttle) and self._relaying < armed.rule.limit:
                    continue
                if armed.remaining > 0 and armed.rule.matches(request.method, request.path, request.query_string):
                    armed.remaining -= 1
                    return armed.rule
        return None

    async def _serve(self, request: web.Request, tally: Tally) -> web.StreamResponse:
        rule = tally.rule = self._take(request)
        if isinstance(rule, Respond | Throttle):
            body = rule.body if isinstance(rule, Respond) else b""
            tally.status, tally.response_bytes = rule.status, len(body)
            return web.Response(status=rule.status, headers=dict(rule.headers), body=body)
        if isinstance(rule, RedirectToBlobHost):
            assert self.blob_host is not None
            tally.status = 307
            return web.Response(status=307, headers={"Location": self.blob_host.url + request.raw_path})
        with self._lock:
            self._relaying += 1
        try:
            if isinstance(rule, Stall):
                await asyncio.sleep(rule.seconds)
            return await self._relay(
                request, tally, _forwarded_headers(request.headers, drop_cut=isinstance(rule, CutUpload))
            )
        finally:
            with self._lock:
                self._relaying -= 1

    async def _serve_blob_host(self, request: web.Request, tally: Tally) -> web.StreamResponse:
        """Fetch from the upstream with its own credentials (Basic), whatever the client sent."""
        headers = _forwarded_headers(request.headers, drop_cut=False)
        headers.popall("Authorization", None)
        if self._upstream.credentials is not None:
            headers["Authorization"] = self._upstream.credentials.basic_header()
        return await self._relay(request, tally, headers)

    async def _relay(self, request: web.Request, tally: Tally, headers: CIMultiDict[str]) -> web.StreamResponse:
        """Stream the request upstream and the answer back, applying the download/upload rule in ``tally``."""
        assert self._session is not None
        rule = tally.rule
        cut_upload = rule.after_bytes if isinstance(rule, CutUpload) else None
        body: AsyncIterator[bytes] | bytes | None = None
        if isinstance(rule, BufferUpload):
            body = await _buffered_body(request, tally)
            if body is None:
                return _cut(request)
        elif request.body_exists or cut_upload is not None:
            body = _read_body(request, tally, cut_upload)
        target = yarl.URL(self._upstream.url + request.raw_path, encoded=True)
        async with self._session.request(
            request.method, target, headers=headers, data=body, allow_redirects=False
        ) as upstream:
            if cut_upload is not None:
                await upstream.read()
                return _cut(request)
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            response.headers.extend(self._response_headers(upstream.headers))
            if isinstance(rule, AddHeaders):
                response.headers.update(rule.headers)
            await response.prepare(request)
            tally.status = upstream.status
            limit = rule.after_bytes if isinstance(rule, CutDownload) else None
            pacer = _Pacer(rule) if isinstance(rule, Pace) else None
            async for received in upstream.content.iter_any():
                chunk = received if limit is None else received[: limit - tally.response_bytes]
                if isinstance(rule, CorruptDownload) and 0 <= rule.offset - tally.response_bytes < len(chunk):
                    at = rule.offset - tally.response_bytes
                    chunk = chunk[:at] + bytes([chunk[at] ^ 0xFF]) + chunk[at + 1 :]
                if pacer is not None:
                    await pacer.write(response, chunk, tally)
                else:
                    await response.write(chunk)
                    tally.response_bytes += len(chunk)
                if limit is not None and tally.response_bytes >= limit:
                    break
            if limit is not None:
                await response.write(b"")  # sends the headers if no body byte carried them
                await _drain(request)
                return _cut(request)
            return response

    def _response_headers(self, headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
        """Upstream headers minus hop-by-hop ones, with absolute Locations at the upstream moved to the proxy."""
        result: CIMultiDict[str] = CIMultiDict()
        for key, value in headers.items():
            if key.lower() in _HOP_BY_HOP:
                continue
            if key.lower() == "location" and (
                value == self._upstream.url or value.startswith(self._upstream.url + "/")
            ):
                value = self.url + value[len(self._upstream.url) :]
            result.add(key, value)
        return result


class _Pacer:
    """Writes one response's body in ``Pace``-sized pieces with ``Pace``-long pauses between them."""

    def __init__(self, rule: Pace) -> None:
        self._rule = rule
        self._random = random.Random(rule.seed)

    async def write(self, response: web.StreamResponse, data: bytes, tally: Tally) -> None:
        """Counted piece by piece: a client that hangs up mid-body has still received the pieces before."""
        view = memoryview(data)
        while view:
            piece = bytes(view[: self._random.randint(*self._rule.piece)])
            await response.write(piece)
            tally.response_bytes += len(piece)
            view = view[len(piece) :]
            await asyncio.sleep(self._random.uniform(*self._rule.delay))


def _forwarded_headers(headers: CIMultiDictProxy[str], *, drop_cut: bool) -> CIMultiDict[str]:
    """Request headers minus hop-by-hop ones; a cut upload also loses the lengths it would now contradict."""
    dropped = _HOP_BY_HOP | ({"content-length", "content-range"} if drop_cut else set())
    return CIMultiDict((key, value) for key, value in headers.items() if key.lower() not in dropped)


async def _read_body(request: web.Request, tally: Tally, limit: int | None) -> AsyncIterator[bytes]:
    """The client's body as it arrives, ending after ``limit`` bytes if given.

    Never yields an empty chunk: aiohttp would send it as the chunked body's terminator.
    """
    async for received in request.content.iter_any():
        chunk = received if limit is None else received[: limit - tally.request_bytes]
        if chunk:
            tally.request_bytes += len(chunk)
            yield chunk
        if limit is not None and tally.request_bytes >= limit:
            return


async def _buffered_body(request: web.Request, tally: Tally) -> bytes | None:
    """The client's whole body, or None when the client went away before sending all of it."""
    pieces = []
    try:
        async for piece in request.content.iter_any():
            pieces.append(piece)
            tally.request_bytes += len(piece)
    except (ConnectionError, aiohttp.ClientPayloadError):
        return None
    if request.content_length is not None and tally.request_bytes < request.content_length:
        return None
    return b"".join(pieces)


async def _drain(request: web.Request) -> None:
    """Wait until written bytes have left the process: aborting a transport discards its buffer."""
    transport = request.transport
    while transport is not None and not transport.is_closing() and transport.get_write_buffer_size():
        await asyncio.sleep(0.001)


def _cut(request: web.Request) -> web.StreamResponse:
    """Drop the client connection like a network failure; aiohttp then quietly fails to finish the response."""
    if request.transport is not None:
        request.transport.abort()
    return web.StreamResponse()
