"""HTTP(S) downloads from a Helm repository: the index and chart archives (clarifications §1.5/§1.6).

Credentials from `repositories.yaml` go only where Helm sends them: to the repository's own
scheme and host (port included), or everywhere with `pass_credentials_all`. Redirects are
followed here, one hop at a time, so that rule is applied again on every hop. TLS settings of
the matched entry apply to every request of that entry. Every body is capped, every request
bounded in time, and URLs in errors lose their query values and user info, which may carry tokens.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass
from typing import Final
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp

from fluxmirror.errors import FluxMirrorError
from fluxmirror.helm.repositories import HelmRepository
from fluxmirror.httputil import REDIRECT_STATUSES, TRANSIENT_STATUSES, redact_url

__all__ = [
    "MAX_CHART_BYTES",
    "MAX_INDEX_BYTES",
    "FetchError",
    "HelmFetcher",
    "RepositoryAccess",
    "resolve_reference",
]

MAX_INDEX_BYTES: Final = 50 * 1024 * 1024
MAX_CHART_BYTES: Final = 100 * 1024 * 1024
_TIMEOUT: Final = aiohttp.ClientTimeout(total=60)
_USER_AGENT: Final = "flux-mirror"
_MAX_REDIRECTS: Final = 10


class FetchError(FluxMirrorError):
    """A download failed; `temporary` marks connection failures and transient statuses (5xx, 429, …)."""


def resolve_reference(repository_url: str, reference: str) -> str:
    """`reference` as Helm resolves it: absolute as is; relative against the repository URL taken
    as a directory, with the repository URL's query string copied onto the result."""
    if urlsplit(reference).scheme:
        return reference
    base = urlsplit(repository_url)
    directory = base.path if base.path.endswith("/") else base.path + "/"
    resolved = urlsplit(urljoin(urlunsplit((base.scheme, base.netloc, directory, "", "")), reference))
    return urlunsplit((resolved.scheme, resolved.netloc, resolved.path, base.query or resolved.query, ""))


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme.lower(), f"{(parts.hostname or '').lower()}:{port}"


@dataclass(frozen=True, slots=True)
class RepositoryAccess:
    """How to reach one chart source: its URL, and the matched repositories.yaml entry (if any)."""

    source: str
    repository: HelmRepository | None = None

    def authorization(self, url: str) -> str | None:
        """The `Authorization` value for a request to `url`, if credentials may go there."""
        entry = self.repository
        if entry is None or not entry.has_credentials:
            return None
        if entry.pass_credentials_all or _origin(url) == _origin(self.source):
            token = base64.b64encode(f"{entry.username}:{entry.password}".encode()).decode("ascii")
            return f"Basic {token}"
        return None

    def ssl_context(self) -> ssl.SSLContext | None:
        """None means the default verification; built once per entry by the caller."""
        entry = self.repository
        if entry is None or not (entry.cert_file or entry.key_file or entry.ca_file or entry.insecure_skip_tls_verify):
            return None
        if bool(entry.cert_file) != bool(entry.key_file):
            raise FetchError(f'helm repository "{entry.name}" must set both certFile and keyFile for client TLS')
        context = ssl.create_default_context()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            if entry.ca_file:
                context.load_verify_locations(cafile=entry.ca_file)  # added to the system roots
            if entry.cert_file:
                context.load_cert_chain(entry.cert_file, entry.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise FetchError(f'helm repository "{entry.name}": load TLS files: {exc}') from exc
        if entry.insecure_skip_tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


class HelmFetcher:
    """One HTTP session for the run's chart downloads."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HelmFetcher:
        self._session = aiohttp.ClientSession(
            timeout=_TIMEOUT, auto_decompress=False, trust_env=False, headers={"User-Agent": _USER_AGENT}
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(self, access: RepositoryAccess, url: str, limit: int, tls: ssl.SSLContext | None) -> bytes:
        """The body of a 200 answer to GET `url`, at most `limit` bytes."""
        assert self._session is not None, "use HelmFetcher as an async context manager"
        requested = url
        for _ in range(_MAX_REDIRECTS + 1):
            try:
                authorization = access.authorization(url)
                async with self._session.get(
                    url,
                    headers={"Authorization": authorization} if authorization else None,
                    allow_redirects=False,
                    ssl=tls if tls is not None else True,
                ) as response:
                    if response.status in REDIRECT_STATUSES and "Location" in response.headers:
                        url = urljoin(url, response.headers["Location"])
                        continue
                    if response.status != 200:
                        failure = FetchError(f"GET {redact_url(requested)}: status {response.status}")
                        failure.temporary = response.status in TRANSIENT_STATUSES
                        raise failure
                    body = await response.content.read(limit + 1)
            except (TimeoutError, aiohttp.ClientError) as exc:
                failure = FetchError(f"GET {redact_url(requested)}: {_describe(exc)}")
                failure.temporary = not isinstance(exc, aiohttp.ClientSSLError | aiohttp.InvalidURL)
                raise failure from exc
            if len(body) > limit:
                raise FetchError(f"response from {redact_url(requested)} exceeds {limit} bytes")
            return body
        raise FetchError(f"GET {redact_url(requested)}: stopped after {_MAX_REDIRECTS} redirects")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "request timed out after 60s"
    return " ".join(str(exc).split()) or type(exc).__name__
