"""The run's one HTTP client, for registry and chart-repository traffic alike.

Every request goes through `HttpSession.request`, which owns what must be decided in one place:

1. the connection pool, connect and read timeouts, and a total deadline per request;
2. the forward proxy from the environment (`fluxmirror.http.proxy`);
3. TLS per hop: the caller's `tls(url)` decides for each URL, so a redirect to another host gets
   that host's settings, never the first one's (aiohttp's own redirects would reuse the first
   `ssl=`, which is why they are never used);
4. `Authorization` per hop: the caller's `authorize(url)` decides for each URL, so a credential
   goes only where its owner says it may (callers compare `Origin`s);
5. redirects, followed here one hop at a time for GET and HEAD, at most `MAX_REDIRECTS`;
6. exception mapping: aiohttp and socket errors become `TransportError` or `TLSError`, worded as
   Go's HTTP client words them (`Get "<url>": dial tcp …: connect: connection refused`), including
   those raised while the caller reads the body inside the `async with`;
7. observation: with a `TrafficObserver` (only when metrics are asked for), every hop is reported
   once it ends, with its host, method, status and body bytes each way (docs/metrics.md).
"""

from __future__ import annotations

import errno
import os
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final

import aiohttp
from yarl import URL

from fluxmirror.gocompat.oserror import errno_text
from fluxmirror.gocompat.strconv import go_quote
from fluxmirror.http.errors import RedirectError, TLSError, TransportError
from fluxmirror.http.observer import Exchange, TrafficObserver
from fluxmirror.http.proxy import ProxySettings
from fluxmirror.http.status import REDIRECT_STATUSES
from fluxmirror.http.urls import redact_url, tls_key
from fluxmirror.scrub import scrub

__all__ = ["MAX_REDIRECTS", "Authorize", "Body", "HttpSession", "Response", "TLSChoice"]

MAX_REDIRECTS: Final = 10
CONNECT_TIMEOUT: Final = 30.0
READ_TIMEOUT: Final = 300.0
_UNBOUNDED_TOTAL: Final = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)

Body = bytes | AsyncIterator[bytes] | None
Response = aiohttp.ClientResponse  # what callers read status, headers, links and the body from
Authorize = Callable[[URL], Awaitable[str | None]]
TLSChoice = Callable[[URL], ssl.SSLContext | bool]


def _verify(_: URL) -> bool:
    return True


class HttpSession:
    """One pooled aiohttp session for the run; use as `async with HttpSession(...) as session`."""

    def __init__(
        self,
        *,
        user_agent: str,
        max_connections: int = 64,
        environ: Mapping[str, str] | None = None,
        observer: TrafficObserver | None = None,
    ) -> None:
        self._user_agent = user_agent
        self._max_connections = max_connections
        self._proxies = ProxySettings.from_environment(os.environ if environ is None else environ)
        self._observer = observer
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, limit_per_host=self._max_connections, ttl_dns_cache=300
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=_UNBOUNDED_TOTAL,
            auto_decompress=False,
            headers={"User-Agent": self._user_agent},
            trust_env=False,  # proxies are decided by ProxySettings, per hop
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @asynccontextmanager
    async def request(
        self,
        method: str,
        url: str | URL,
        *,
        headers: Mapping[str, str] | None = None,
        data: Body = None,
        params: Any = None,
        authorize: Authorize | None = None,
        tls: TLSChoice = _verify,
        follow_redirects: bool = False,
        time_limit: float | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Yield the final response (after redirects, when followed) with its body unread.

        `time_limit` (seconds) bounds the whole exchange, every hop and the body included. Redirects are
        followed only when asked, and only for GET and HEAD, whose requests can be replayed."""
        if self._session is None:
            raise RuntimeError("HttpSession used outside `async with`")
        deadline = None if time_limit is None else time.monotonic() + time_limit
        target = url if isinstance(url, URL) else URL(url)
        follow = follow_redirects and method in ("GET", "HEAD")
        meter = _SentBytes(data) if self._observer is not None else None
        body = data if meter is None else meter.body
        for _ in range(MAX_REDIRECTS + 1):
            send_headers = dict(headers or {})
            authorization = await authorize(target) if authorize is not None else None
            if authorization:
                send_headers["Authorization"] = authorization
            answered: Response | None = None
            try:
                async with self._session.request(
                    method,
                    target,
                    headers=send_headers,
                    data=body,
                    params=params,
                    allow_redirects=False,
                    ssl=tls(target),
                    proxy=self._proxies.proxy_for(target),
                    timeout=_remaining(deadline),
                ) as response:
                    answered = response
                    location = response.headers.get("Location") if follow else None
                    if location is None or response.status not in REDIRECT_STATUSES:
                        try:
                            yield response
                        finally:
                            self._observe(meter, method, target, response)
                        return
                    self._observe(meter, method, target, response)
                    target = _redirect_target(method, response.url, location)
                    params = None  # already part of the URL that answered
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                if answered is None:
                    self._observe(meter, method, target, None)
                raise map_client_error(method, target, exc) from exc
        raise RedirectError(f"{method} {redact_url(url)}: stopped after {MAX_REDIRECTS} redirects")

    def retrying(self, url: URL) -> None:
        """A caller is about to send a request to `url` again after a transient failure."""
        if self._observer is not None:
            self._observer.retrying(tls_key(url))

    def _observe(self, meter: _SentBytes | None, method: str, url: URL, response: Response | None) -> None:
        """Report a hop that ended; `response` is None when none came."""
        if self._observer is None or meter is None:
            return
        self._observer.exchanged(
            Exchange(
                host=tls_key(url),
                method=method,
                status=None if response is None else response.status,
                sent=meter.hop_ended(answered=response is not None),
                received=0 if response is None else response.content.total_bytes,
            )
        )


class _SentBytes:
    """The request body's bytes per hop, for the observer: an iterated body (a streamed upload) is
    counted as aiohttp takes each piece; a body in one piece counts once the hop was answered, since
    a connection that failed may not have carried any of it. Used only when someone observes."""

    def __init__(self, data: Body) -> None:
        self._whole = len(data) if isinstance(data, bytes) else 0
        self._streamed = 0
        self.body: Body = data if data is None or isinstance(data, bytes) else self._counted(data)

    async def _counted(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self._streamed += len(chunk)
            yield chunk

    def hop_ended(self, *, answered: bool) -> int:
        """The bytes sent on the hop that just ended; the next hop counts from zero."""
        sent = self._streamed + (self._whole if answered else 0)
        self._streamed = 0
        return sent


def _remaining(deadline: float | None) -> aiohttp.ClientTimeout:
    """The hop's timeouts: connect and read always bounded, the total by what is left of the deadline
    (aiohttp reads a `timeout=None` as no timeout at all, so None is never passed)."""
    if deadline is None:
        return _UNBOUNDED_TOTAL
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return aiohttp.ClientTimeout(total=left, sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)


def _redirect_target(method: str, current: URL, location: str) -> URL:
    try:
        target = current.join(URL(location))
    except ValueError as exc:
        raise RedirectError(f"{method} {redact_url(current)}: redirect to an invalid Location: {exc}") from None
    if target.scheme not in ("http", "https") or not target.host:
        raise RedirectError(f"{method} {redact_url(current)}: redirect to a non-HTTP location")
    return target


def map_client_error(method: str, url: URL, exc: BaseException) -> TransportError:
    """The one place an aiohttp or socket failure becomes a fluxmirror error, worded as `flux mirror`
    words it (docs/sync.md#error-texts), since people grep and alert on these texts.

    Go's HTTP client reports a failed exchange as `<Method> "<url>": <cause>` (`Get "https://r/v2/":
    …`), and go-containerregistry passes that on as is; its own `GET <url>: <status>` form is for
    answers, not for failed connections. The cause is put in the words of Go's `net` and `crypto/tls`
    packages: `dial tcp 127.0.0.1:5000: connect: connection refused`,
    `tls: failed to verify certificate: x509: certificate signed by unknown authority`, … The URL is
    redacted, and what Go would show but Python cannot know is left out (the resolver's address of a
    failed lookup, the local address of a reset socket, the names a mismatched certificate is valid for).
    """
    where = f"{method[:1]}{method[1:].lower()} {go_quote(redact_url(url))}"
    tls = _tls_failure(exc)
    if tls is not None:
        return TLSError(f"{where}: {_tls_cause(tls, url.host or '')}")
    if isinstance(exc, aiohttp.ClientSSLError):  # a TLS failure aiohttp gives no ssl error for
        return TLSError(f"{where}: tls: {_one_line(exc)}")
    if isinstance(exc, aiohttp.ClientHttpProxyError):  # its text would show the proxy URL, password included
        return TransportError(f"{where}: proxy answered {exc.status} {exc.message}".rstrip())
    if isinstance(exc, aiohttp.InvalidURL):
        return TransportError(f"{where}: invalid URL", temporary=False)
    return TransportError(f"{where}: {_network_cause(exc, url)}")


def _network_cause(exc: BaseException, url: URL) -> str:
    """A connection failure as Go's `net` package says it. Socket errors are C errno texts in Go as
    in Python (`connection refused`, `no route to host`); a failed read or write is named by its
    system call, without the socket addresses Go puts in front (`read tcp <local>-><remote>: `)."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # `sock_connect` ran out
        return f"dial tcp {_host_port(url.host or '', url.port or 0)}: i/o timeout"
    if isinstance(exc, aiohttp.SocketTimeoutError):  # `sock_read` ran out: nothing arrived for that long
        return "read: i/o timeout"
    if isinstance(exc, TimeoutError):  # the request's own deadline (`--timeout`), a Go context's
        return "context deadline exceeded"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"dial tcp: lookup {exc.host}: {_lookup_failure(exc.os_error)}"
    # A reset, also one during a TLS handshake (while reading) or of a body, which aiohttp names
    # only in the text it builds for that case.
    if (isinstance(exc, OSError) and exc.errno == errno.ECONNRESET) or (
        isinstance(exc, aiohttp.ClientPayloadError) and "ConnectionResetError" in str(exc)
    ):
        return "read: connection reset by peer"
    if isinstance(exc, aiohttp.ClientConnectorError):
        failure = f"connect: {errno_text(exc.errno)}" if exc.errno else _one_line(exc.os_error)
        dial = f"dial tcp {_dialed_address(exc)}: {failure}"
        return f"proxyconnect tcp: {dial}" if isinstance(exc, aiohttp.ClientProxyConnectionError) else dial
    if isinstance(exc, aiohttp.ServerDisconnectedError):  # closed before an answer: Go's io.EOF
        return "EOF"
    # aiohttp's own error for writing to a connection the server closed, and the kernel's
    if isinstance(exc, aiohttp.ClientConnectionResetError) or (isinstance(exc, OSError) and exc.errno == errno.EPIPE):
        return "write: broken pipe"
    return _one_line(exc)


# asyncio's text for a refused connection names the address it dialled; with several addresses
# (IPv6 and IPv4) the first failure comes first, and Go's dialer reports its first failure too.
_CONNECT_CALL: Final = re.compile(r"Connect call failed \('([^']*)', (\d+)")
_NO_SUCH_HOST: Final = frozenset(
    code for code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)) if code is not None
)


def _host_port(host: str, port: int | str) -> str:
    """Go's `net.JoinHostPort`: an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _dialed_address(exc: aiohttp.ClientConnectorError) -> str:
    """The address that refused, as Go names it: the resolved IP and port; the URL's when unknown."""
    found = _CONNECT_CALL.search(str(exc.os_error))
    return _host_port(found[1], found[2]) if found else _host_port(exc.host, exc.port or 0)


def _lookup_failure(error: OSError) -> str:
    """Go's `lookup <host>: no such host` form, the one without a resolver address; other resolver
    failures keep the C library's words."""
    if error.errno in _NO_SUCH_HOST:
        return "no such host"
    reason = error.strerror or _one_line(error)
    return f"{reason[:1].lower()}{reason[1:]}"


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind `exc`: a refused certificate or handshake, or an alert the server sent.
    A TLS 1.3 server sends its alert (a client certificate it wants) after the client finished the
    handshake, so aiohttp reports it as a failed read with the TLS error as its cause. A TLS
    connection that merely ended is not a TLS failure."""
    if isinstance(exc, aiohttp.ClientSSLError):  # before ssl.SSLError: aiohttp's wrappers subclass it
        return exc.os_error if isinstance(exc.os_error, ssl.SSLError) else None
    if isinstance(exc, ssl.SSLError):
        return exc
    cause = exc.__cause__
    if isinstance(exc, aiohttp.ClientOSError) and isinstance(cause, ssl.SSLError):
        return None if isinstance(cause, ssl.SSLEOFError | ssl.SSLZeroReturnError) else cause
    return None


def _tls_cause(error: ssl.SSLError, host: str) -> str:
    """Go's `crypto/tls` wording: `tls: failed to verify certificate: x509: …` for a certificate the
    client refused, `remote error: tls: <alert>` for an alert the server sent, else OpenSSL's reason."""
    if isinstance(error, ssl.SSLCertVerificationError):
        if getattr(error, "verbatim", False):  # a SPIFFE authorization failure: go-spiffe's text as is
            return _one_line(error)
        return f"tls: failed to verify certificate: {_x509_failure(error, host)}"
    reason = error.reason or ""
    alert = _TLS_ALERT.fullmatch(reason)
    if alert is not None:
        return f"remote error: tls: {_GO_ALERTS.get(alert[1], alert[1].lower().replace('_', ' '))}"
    return f"tls: {reason.lower().replace('_', ' ')}" if reason else f"tls: {_one_line(error)}"


def _x509_failure(error: ssl.SSLCertVerificationError, host: str) -> str:
    """Go's `crypto/x509` error for an OpenSSL verification result. Go's texts name details OpenSSL
    does not report (the names a certificate is valid for, its validity period); those are left out."""
    code = error.verify_code
    if code in _UNKNOWN_AUTHORITY:
        return "x509: certificate signed by unknown authority"
    if code in _OUT_OF_VALIDITY:
        return "x509: certificate has expired or is not yet valid"
    if code in _NAME_MISMATCH:
        return f"x509: certificate is not valid for {host}"
    if code == _INVALID_PURPOSE:
        return "x509: certificate specifies an incompatible key usage"
    return f"x509: {error.verify_message or _one_line(error)}"


# OpenSSL's X509_V_ERR_* codes: no path to a trusted root (an unknown issuer, a self-signed leaf or
# root, a leaf whose issuer is missing), outside the validity period, a host or IP address the
# certificate does not name, and a key usage that does not allow serving TLS.
_UNKNOWN_AUTHORITY: Final = frozenset({2, 18, 19, 20, 21})
_OUT_OF_VALIDITY: Final = frozenset({9, 10})
_NAME_MISMATCH: Final = frozenset({62, 64})
_INVALID_PURPOSE: Final = 26
# OpenSSL names a received alert `SSLV3_ALERT_…`, `TLSV1_ALERT_…` or `TLSV13_ALERT_…`; Go's texts
# are the alert names in lower case, except these.
_TLS_ALERT: Final = re.compile(r"(?:SSLV3|TLSV1|TLSV13)_ALERT_(\w+)")
_GO_ALERTS: Final = {
    "BAD_RECORD_MAC": "bad record MAC",
    "CERTIFICATE_EXPIRED": "expired certificate",
    "CERTIFICATE_REVOKED": "revoked certificate",
    "CERTIFICATE_UNKNOWN": "unknown certificate",
    "DECODE_ERROR": "error decoding message",
    "DECRYPT_ERROR": "error decrypting message",
    "INSUFFICIENT_SECURITY": "insufficient security level",
    "PROTOCOL_VERSION": "protocol version not supported",
    "UNKNOWN_CA": "unknown certificate authority",
    "UNKNOWN_PSK_IDENTITY": "unknown PSK identity",
    "USER_CANCELLED": "user canceled",
}


def _one_line(exc: BaseException) -> str:
    """The exception's text on one line, without any secret the run knows (it may quote a URL)."""
    return scrub(" ".join(str(exc).split())) or type(exc).__name__
