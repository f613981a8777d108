"""A real HTTP(S) Helm chart repository served from memory, for the chart-mirroring tests.

It behaves like a static chart host (GitHub Pages, S3, ChartMuseum's file routes): GET/HEAD of
``<base path>index.yaml`` and of the tarballs, nothing else. The knobs a product test needs are
all real wire behaviour — Basic auth with a ``WWW-Authenticate`` challenge, TLS with the session
PKI's server certificate, a required client certificate, a base path so relative chart URLs must be
resolved against a directory, and a required query parameter so the repository URL's query has to
be carried onto every request. Every request is recorded, Authorization and User-Agent included,
so a test can prove credentials never went to a second host.

Like the fault proxy, the aiohttp server runs on a private event loop in a daemon thread, so
synchronous tests and asyncio tests (whose loop must not be blocked) can both use it.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from harness import Credentials
from harness.background import BackgroundLoop, listen
from harness.charts import DEFAULT_DESCRIPTION, build_chart, build_index, chart_digest, chart_filename, index_entry
from harness.closing import Closing
from harness.pki import PKI

INDEX_CONTENT_TYPE = "application/x-yaml"
CHART_CONTENT_TYPE = "application/gzip"
REALM = "fluxmirror-charts"


@dataclass(frozen=True)
class ChartRequest:
    """One request as the repository saw it, with the answer's status.

    Unlike the fault proxy's log this keeps the Authorization value: chart-repository tests must
    tell *which* credentials reached *which* host, and the test credentials are not secrets.
    """

    method: str
    path: str  # decoded path
    query: str  # raw query string, without "?"
    headers: CIMultiDictProxy[str]  # as received, case-insensitive
    status: int
    client_cert: str | None  # commonName of the verified client certificate, if one was presented

    @property
    def target(self) -> str:
        """Path plus query, as on the request line."""
        return self.path + (f"?{self.query}" if self.query else "")

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")

    @property
    def user_agent(self) -> str | None:
        return self.headers.get("User-Agent")


@dataclass(frozen=True)
class HostedChart:
    """What ``ChartRepository.add`` published: the tarball, its index entry and where it is served."""

    name: str
    version: str
    data: bytes
    url: str  # absolute URL of the tarball on the server that hosts it (with that server's required query)
    entry: Mapping[str, Any]  # the index entry as generated

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of the tarball: what the product reports as the chart's source digest."""
        return chart_digest(self.data)


@dataclass
class _Fault:
    status: int
    body: bytes
    headers: Mapping[str, str]
    remaining: int | None  # None: every time


@dataclass
class _File:
    data: bytes
    content_type: str


@dataclass
class _State:
    """Everything a request reads; mutated by the test thread under ``ChartRepository._lock``."""

    entries: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    files: dict[str, _File] = field(default_factory=dict)
    faults: dict[str, _Fault] = field(default_factory=dict)
    index: _File | None = None  # set explicitly; None: generated from ``entries``


class ChartRepository(Closing):
    """A chart repository on ``127.0.0.1:<free port>`` until ``close`` (or the ``with`` block ends).

    ``url`` is the repository URL as a user would configure it: no trailing slash (the product must
    treat it as a directory) and, with ``required_query``, the query every request must carry.
    ``hostname`` is the name put in URLs (the server always binds 127.0.0.1; the PKI's certificate
    is valid for ``127.0.0.1`` and ``pki.SERVER_NAMES``), so two servers can differ by host name
    too; ``hostname="charts.test"`` makes one reachable only through ``harness.forwardproxy``.

    Request checks run in this order: required query (403), Basic auth (401 with a challenge),
    fault rules, then the files. TLS and the client certificate are checked in the handshake.
    """

    def __init__(
        self,
        *,
        pki: PKI | None = None,
        tls: bool = False,
        require_client_cert: bool = False,
        credentials: Credentials | None = None,
        base_path: str = "/",
        required_query: Mapping[str, str] | None = None,
        hostname: str = "127.0.0.1",
    ) -> None:
        tls = tls or require_client_cert
        if tls and pki is None:
            raise ValueError("TLS needs the session PKI")
        self.pki = pki
        self.tls = tls
        self.require_client_cert = require_client_cert
        self.credentials = credentials
        self.base_path = "/" + base_path.strip("/") + "/" if base_path.strip("/") else "/"
        self.required_query = dict(required_query or {})
        self._lock = threading.Lock()
        self._state = _State()
        self._requests: list[ChartRequest] = []
        sock = listen()
        self.port: int = sock.getsockname()[1]
        self.origin = f"{'https' if tls else 'http'}://{hostname}:{self.port}"
        self._background = BackgroundLoop(f"chartrepo-{self.port}")
        try:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._background.serve(app, sock, self._server_ssl_context())
        except BaseException:
            self.close()
            raise

    # -- addresses ---------------------------------------------------------------------------------

    @property
    def query(self) -> str:
        """The required query as it appears in URLs (empty when none is required)."""
        return urlencode(self.required_query)

    @property
    def url(self) -> str:
        """The repository URL to configure as a chart ``source``."""
        return self.origin + self.base_path.rstrip("/") + (f"?{self.query}" if self.query else "")

    @property
    def index_url(self) -> str:
        return self.file_url("index.yaml")

    def file_url(self, relative: str) -> str:
        """Absolute URL of a file under the base path, with the required query appended."""
        return self.origin + self._path(relative) + (f"?{self.query}" if self.query else "")

    def _path(self, relative: str) -> str:
        """A path relative to the base path; one starting with ``/`` is taken as absolute."""
        return relative if relative.startswith("/") else self.base_path + relative

    # -- content -----------------------------------------------------------------------------------

    def add(
        self,
        name: str,
        version: str,
        data: bytes | None = None,
        *,
        app_version: str | None = None,
        api_version: str | None = "v2",
        description: str | None = DEFAULT_DESCRIPTION,
        filename: str | None = None,
        urls: Sequence[str] | None = None,
        absolute: bool = False,
        hosted_on: ChartRepository | None = None,
        digest: str | None = None,
        omit_digest: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> HostedChart:
        """Publish (or replace) one chart version; the generated index changes with it.

        ``data`` defaults to ``build_chart(name, version, ...)`` with the same metadata. The tarball
        is stored as ``filename`` (default ``<name>-<version>.tgz``) under the base path of
        ``hosted_on`` (default: this server). The index URL is ``urls`` verbatim if given, else
        absolute when ``absolute`` or hosted elsewhere, else the relative file name, like
        ``helm repo index`` without ``--url``. ``digest``/``omit_digest``/``extra`` shape the entry
        as in ``charts.index_entry``.
        """
        if data is None:
            data = build_chart(name, version, app_version=app_version, description=description, api_version=api_version)
        host = hosted_on if hosted_on is not None else self
        file = filename if filename is not None else chart_filename(name, version)
        host.put_file(file, data, content_type=CHART_CONTENT_TYPE)
        if urls is None:
            urls = [host.file_url(file)] if absolute or host is not self else [file]
        entry = index_entry(
            name,
            version,
            data=data,
            urls=urls,
            digest=digest,
            omit_digest=omit_digest,
            app_version=app_version,
            api_version=api_version,
            description=description,
            extra=extra,
        )
        with self._lock:
            self._state.entries[(name, version)] = entry
        return HostedChart(name=name, version=version, data=data, url=host.file_url(file), entry=entry)

    def remove(self, name: str, version: str) -> None:
        """Drop a version from the generated index and its tarball, if this server hosts it."""
        with self._lock:
            self._state.entries.pop((name, version), None)
            self._state.files.pop(self._path(chart_filename(name, version)), None)

    def put_file(self, relative: str, data: bytes, *, content_type: str = "application/octet-stream") -> str:
        """Serve ``data`` at a path relative to the base path (or absolute); returns its absolute URL."""
        with self._lock:
            self._state.files[self._path(relative)] = _File(data, content_type)
        return self.file_url(relative)

    def set_index(self, data: bytes | str | None, *, content_type: str = INDEX_CONTENT_TYPE) -> None:
        """Serve these exact index bytes from now on; ``None`` goes back to the generated index."""
        with self._lock:
            self._state.index = (
                None if data is None else _File(data.encode() if isinstance(data, str) else data, content_type)
            )

    def index_bytes(self) -> bytes:
        """What GET index.yaml answers right now."""
        with self._lock:
            return self._index().data

    def _index(self) -> _File:
        if self._state.index is not None:
            return self._state.index
        return _File(build_index(self._state.entries.values()), INDEX_CONTENT_TYPE)

    # -- faults ------------------------------------------------------------------------------------

    def fail(
        self,
        path: str,
        status: int,
        *,
        times: int | None = None,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer requests for ``path`` (relative to the base path, or absolute) with ``status``.

        ``times`` limits how often (default: until ``clear_faults``). Applied after the query and
        auth checks, so it stands for the application failing, not the transport.
        """
        with self._lock:
            self._state.faults[self._path(path)] = _Fault(status, body, dict(headers or {}), times)

    def corrupt(self, name: str, version: str, *, offset: int | None = None) -> None:
        """Serve the tarball with one byte flipped (default: the middle) while the index keeps the true digest."""
        path = self._path(chart_filename(name, version))
        with self._lock:
            stored = self._state.files[path]
            at = len(stored.data) // 2 if offset is None else offset
            flipped = stored.data[:at] + bytes([stored.data[at] ^ 0xFF]) + stored.data[at + 1 :]
            self._state.files[path] = _File(flipped, stored.content_type)

    def clear_faults(self) -> None:
        with self._lock:
            self._state.faults.clear()

    # -- request log -------------------------------------------------------------------------------

    @property
    def requests(self) -> list[ChartRequest]:
        """Every request so far, in arrival order (recorded before the response is sent)."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- Helm client configuration -----------------------------------------------------------------

    def repositories_entry(
        self,
        name: str = "charts",
        *,
        url: str | None = None,
        with_credentials: bool = True,
        with_ca: bool = True,
        with_client_cert: bool = True,
        pass_credentials_all: bool = False,
        insecure_skip_tls_verify: bool = False,
    ) -> dict[str, Any]:
        """A ``repositories.yaml`` item that lets Helm (and the product) reach this repository.

        Credentials, ``caFile`` and the client pair are filled in when the server needs them and
        the matching ``with_*`` flag is left on; switch one off to test what happens without it.
        """
        entry: dict[str, Any] = {
            "name": name,
            "url": self.url if url is None else url,
            "pass_credentials_all": pass_credentials_all,
            "insecure_skip_tls_verify": insecure_skip_tls_verify,
        }
        if with_credentials and self.credentials is not None:
            entry.update(username=self.credentials.username, password=self.credentials.password)
        if self.pki is not None and self.tls and with_ca:
            entry["caFile"] = str(self.pki.ca_path)
        if self.pki is not None and self.require_client_cert and with_client_cert:
            entry.update(certFile=str(self.pki.client_cert_path), keyFile=str(self.pki.client_key_path))
        return entry

    def client_ssl_context(self, *, client_cert: bool = True) -> ssl.SSLContext | None:
        """A context trusting the test CA (and presenting the client pair for mTLS); None for plain HTTP."""
        if not self.tls or self.pki is None:
            return None
        context = ssl.create_default_context(cafile=str(self.pki.ca_path))
        if self.require_client_cert and client_cert:
            context.load_cert_chain(self.pki.client_cert_path, self.pki.client_key_path)
        return context

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        self._background.close()

    def _server_ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        assert self.pki is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.pki.server_cert_path, self.pki.server_key_path)
        if self.require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=str(self.pki.ca_path))
        return context

    # -- serving -----------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            response = self._respond(request)
            self._requests.append(
                ChartRequest(
                    method=request.method,
                    path=request.path,
                    query=request.rel_url.raw_query_string,
                    headers=CIMultiDictProxy(CIMultiDict(request.headers)),
                    status=response.status,
                    client_cert=_client_common_name(request),
                )
            )
        return response

    def _respond(self, request: web.Request) -> web.Response:
        """The answer for one request; runs under the lock, so it sees one consistent state."""
        if any(request.query.get(key) != value for key, value in self.required_query.items()):
            return web.Response(status=403, text="missing or wrong required query parameter\n")
        if self.credentials is not None and not self.credentials.matches_basic(request.headers.get("Authorization")):
            return web.Response(
                status=401, text="unauthorized\n", headers={"WWW-Authenticate": f'Basic realm="{REALM}"'}
            )
        fault = self._state.faults.get(request.path)
        if fault is not None and fault.remaining != 0:
            if fault.remaining is not None:
                fault.remaining -= 1
            return web.Response(status=fault.status, body=fault.body, headers=dict(fault.headers))
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, headers={"Allow": "GET, HEAD"})
        file = self._index() if request.path == self._path("index.yaml") else self._state.files.get(request.path)
        if file is None:
            return web.Response(status=404, text="404 page not found\n")
        return web.Response(body=file.data, content_type=file.content_type)


class ChartRepositoryFactory:
    """Starts repositories with whatever auth/TLS/path combination a test needs; closes them all at once."""

    def __init__(self, pki: PKI) -> None:
        self._pki = pki
        self._repositories: list[ChartRepository] = []

    def __call__(
        self,
        *,
        credentials: Credentials | None = None,
        tls: bool = False,
        require_client_cert: bool = False,
        base_path: str = "/",
        required_query: Mapping[str, str] | None = None,
        hostname: str = "127.0.0.1",
    ) -> ChartRepository:
        repository = ChartRepository(
            pki=self._pki,
            tls=tls,
            require_client_cert=require_client_cert,
            credentials=credentials,
            base_path=base_path,
            required_query=required_query,
            hostname=hostname,
        )
        self._repositories.append(repository)
        return repository

    def close(self) -> None:
        while self._repositories:
            self._repositories.pop().close()


def _client_common_name(request: web.Request) -> str | None:
    peer = request.transport.get_extra_info("peercert") if request.transport is not None else None
    for rdn in (peer or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None
