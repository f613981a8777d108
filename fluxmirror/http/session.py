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
6. exception mapping: aiohttp and socket errors become `TransportError` or `TLSError`,
   including those raised while the caller reads the body inside the `async with`.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final

import aiohttp
from yarl import URL

from fluxmirror.http.errors import RedirectError, TLSError, TransportError
from fluxmirror.http.proxy import ProxySettings
from fluxmirror.http.status import REDIRECT_STATUSES
from fluxmirror.http.urls import redact_url
from fluxmirror.scrub import scrub

__all__ = ["MAX_REDIRECTS", "Authorize", "Body", "HttpSession", "Response", "TLSChoice"]

MAX_REDIRECTS: Final = 10
CONNECT_TIMEOUT: Final = 30.0
READ_TIMEOUT: Final = 300.0

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
    ) -> None:
        self._user_agent = user_agent
        self._max_connections = max_connections
        self._proxies = ProxySettings.from_environment(os.environ if environ is None else environ)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, limit_per_host=self._max_connections, ttl_dns_cache=300
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT),
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
        for _ in range(MAX_REDIRECTS + 1):
            send_headers = dict(headers or {})
            authorization = await authorize(target) if authorize is not None else None
            if authorization:
                send_headers["Authorization"] = authorization
            try:
                async with self._session.request(
                    method,
                    target,
                    headers=send_headers,
                    data=data,
                    params=params,
                    allow_redirects=False,
                    ssl=tls(target),
                    proxy=self._proxies.proxy_for(target),
                    timeout=_remaining(deadline),
                ) as response:
                    location = response.headers.get("Location") if follow else None
                    if location is None or response.status not in REDIRECT_STATUSES:
                        yield response
                        return
                    target = _redirect_target(method, response.url, location)
                    params = None  # already part of the URL that answered
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise map_client_error(method, target, exc) from exc
        raise RedirectError(f"{method} {redact_url(url)}: stopped after {MAX_REDIRECTS} redirects")


def _remaining(deadline: float | None) -> aiohttp.ClientTimeout | None:
    if deadline is None:
        return None
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
    """The one place an aiohttp or socket failure becomes a fluxmirror error."""
    where = f"{method} {redact_url(url)}"
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return TLSError(f"{where}: {_one_line(exc)}")
    if isinstance(exc, TimeoutError):
        return TransportError(f"{where}: timeout")
    if isinstance(exc, aiohttp.ClientHttpProxyError):  # its text would show the proxy URL, password included
        return TransportError(f"{where}: proxy answered {exc.status} {exc.message}".rstrip())
    if isinstance(exc, aiohttp.InvalidURL):
        return TransportError(f"{where}: invalid URL", temporary=False)
    return TransportError(f"{where}: {_one_line(exc)}")


def _one_line(exc: BaseException) -> str:
    """The exception's text on one line, without any secret the run knows (it may quote a URL)."""
    return scrub(" ".join(str(exc).split())) or type(exc).__name__
