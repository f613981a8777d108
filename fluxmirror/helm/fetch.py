"""HTTP(S) downloads from a Helm repository: the index and chart archives (docs/sync.md#chart-downloads).

Credentials from `repositories.yaml` go only where Helm sends them: to the repository's own
origin (scheme, host and effective port), or everywhere with `pass_credentials_all`; the run's
`HttpSession` asks on every redirect hop. TLS settings of the matched entry apply to every request
of that entry, as Helm's getter applies them. Every body is read whole up to its cap, every request
bounded in time, and URLs in errors lose their query values and user info, which may carry tokens.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass
from typing import Final
from urllib.parse import urljoin, urlsplit, urlunsplit

from yarl import URL

from fluxmirror.errors import FluxMirrorError
from fluxmirror.helm.repositories import HelmRepository
from fluxmirror.http.body import read_body
from fluxmirror.http.errors import StatusError
from fluxmirror.http.session import HttpSession
from fluxmirror.http.urls import Origin, redact_url

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
_TIMEOUT: Final = 60.0
_USER_AGENT: Final = "flux-mirror"


class FetchError(FluxMirrorError):
    """A chart or its repository settings cannot be used (missing from the index, wrong digest,
    half a client certificate); network failures are `fluxmirror.http.errors.NetworkError`s."""


def resolve_reference(repository_url: str, reference: str) -> str:
    """`reference` as Helm resolves it: absolute as is; relative against the repository URL taken
    as a directory, with the repository URL's query string copied onto the result."""
    if urlsplit(reference).scheme:
        return reference
    base = urlsplit(repository_url)
    directory = base.path if base.path.endswith("/") else base.path + "/"
    resolved = urlsplit(urljoin(urlunsplit((base.scheme, base.netloc, directory, "", "")), reference))
    return urlunsplit((resolved.scheme, resolved.netloc, resolved.path, base.query or resolved.query, ""))


@dataclass(frozen=True, slots=True)
class RepositoryAccess:
    """How to reach one chart source: its URL, and the matched repositories.yaml entry (if any)."""

    source: str
    repository: HelmRepository | None = None

    def authorization(self, url: URL | str) -> str | None:
        """The `Authorization` value for a request to `url`, if credentials may go there."""
        entry = self.repository
        if entry is None or not entry.has_credentials:
            return None
        if entry.pass_credentials_all or Origin.of(url) == Origin.of(self.source):
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
    """Chart downloads over the run's shared HTTP session."""

    def __init__(self, session: HttpSession) -> None:
        self._session = session

    async def get(self, access: RepositoryAccess, url: str, limit: int, tls: ssl.SSLContext | None) -> bytes:
        """The body of a 200 answer to GET `url`, at most `limit` bytes."""

        async def authorize(hop: URL) -> str | None:
            return access.authorization(hop)

        async with self._session.request(
            "GET",
            url,
            headers={"User-Agent": _USER_AGENT},
            authorize=authorize,
            tls=lambda _hop: tls if tls is not None else True,
            follow_redirects=True,
            time_limit=_TIMEOUT,
        ) as response:
            if response.status != 200:
                raise StatusError(
                    f"GET {redact_url(url)}: status {response.status}", method="GET", url=url, status=response.status
                )
            return await read_body(response, limit)
