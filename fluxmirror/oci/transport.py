"""HTTP for registries: one pooled aiohttp session, the scheme rules, and exception mapping.

Scheme rules (clarifications §2): HTTPS everywhere; a registry on loopback, or any registry with
`--insecure`, may also be spoken to over plain HTTP (HTTPS is tried first, as go-containerregistry
does). `--insecure` also disables certificate verification. aiohttp exceptions never leave this
module: they become `TransportError`, raised `from` the original.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final

import aiohttp

from fluxmirror import __version__
from fluxmirror.oci.errors import TransportError, registry_url

__all__ = ["USER_AGENT", "Body", "Transport", "is_loopback"]

USER_AGENT: Final = f"flux-mirror/{__version__} (fluxmirror)"
Body = bytes | AsyncIterator[bytes] | None
_PLAIN_HTTP_HINT: Final = "; if the registry speaks plain HTTP, pass --insecure"


def is_loopback(registry: str) -> bool:
    """`localhost[:port]`, `*.localhost`, `127.0.0.0/8` and `[::1]` (the registry host, port optional)."""
    host = registry[1 : registry.find("]")] if registry.startswith("[") else registry.split(":", 1)[0]
    host = host.lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Transport:
    """The run's HTTP client; use as `async with Transport(...) as transport`."""

    def __init__(
        self,
        *,
        insecure: bool = False,
        max_connections: int = 64,
        ssl_context_for: Callable[[str], ssl.SSLContext | None] | None = None,
    ) -> None:
        self.insecure = insecure
        self._max_connections = max_connections
        self._ssl_context_for = ssl_context_for
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Transport:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, limit_per_host=self._max_connections, ttl_dns_cache=300
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300),
            auto_decompress=False,
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def schemes(self, registry: str) -> tuple[str, ...]:
        """Schemes to try, in order, for a registry."""
        return ("https", "http") if self.insecure or is_loopback(registry) else ("https",)

    def _ssl(self, registry: str) -> ssl.SSLContext | bool:
        if self.insecure:
            return False
        custom = self._ssl_context_for(registry) if self._ssl_context_for else None
        return custom if custom is not None else True

    @asynccontextmanager
    async def send(
        self,
        method: str,
        url: str,
        *,
        registry: str,
        headers: Mapping[str, str] | None = None,
        data: Body = None,
        params: Any = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send one request (no redirects followed) and yield the response with its body unread."""
        if self._session is None:
            raise RuntimeError("Transport used outside `async with`")
        try:
            async with self._session.request(
                method,
                url,
                headers=headers,
                data=data,
                params=params,
                allow_redirects=False,
                ssl=self._ssl(registry),
            ) as response:
                yield response
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"{method} {registry_url(url)}: {self._reason(exc, registry)}") from exc

    def _reason(self, exc: BaseException, registry: str) -> str:
        if isinstance(exc, asyncio.TimeoutError):
            return "timeout"
        text = str(exc) or type(exc).__name__
        if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError) and "http" not in self.schemes(registry):
            return text + _PLAIN_HTTP_HINT
        return text
