"""A client for one registry: ping, authorize, send, and the tag and manifest calls.

Every request goes through `request`, which pings the registry once (choosing the scheme and
learning its auth challenge; concurrent requests share one ping in flight, which a run starts for
every registry at once, docs/sync.md#pings), lets the run's `HttpSession` send it with the `Authorization` the
scopes need (attached only to URLs of the registry's own origin, so a `Link`, `Location` or
redirect to another host never receives it), retries once on a 401 with a fresh token, and
retries transient failures of replayable requests (honouring `Retry-After`). With `--adaptive`,
each attempt first takes a slot at the registry's gate and holds it until its response is
released, and every answer is fed back to the gate (fluxmirror.oci.adaptive).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Final
from urllib.parse import urlencode

from yarl import URL

from fluxmirror import __version__
from fluxmirror.auth.credentials import CredentialSource
from fluxmirror.gocompat.strconv import go_quote
from fluxmirror.http.body import read_body, read_prefix
from fluxmirror.http.errors import NetworkError, StatusError, TLSError
from fluxmirror.http.session import Body, HttpSession, Response, TLSChoice
from fluxmirror.http.status import retry_after
from fluxmirror.http.urls import Origin, redact_url
from fluxmirror.oci.adaptive import AdaptiveLimits, HostGate, Slot, slot
from fluxmirror.oci.auth import Authenticator, Challenge, TokenRequest, parse_challenge, pull_scope, push_scope
from fluxmirror.oci.digests import digest_of
from fluxmirror.oci.errors import MAX_ERROR_BODY, DigestMismatchError, OCIError, RegistryError
from fluxmirror.oci.manifests import Descriptor, Manifest, parse_manifest
from fluxmirror.oci.mediatypes import MANIFEST_ACCEPT
from fluxmirror.oci.reference import DOCKER_HUB, DOCKER_HUB_API, is_digest, is_tag

__all__ = [
    "MAX_MANIFEST_BYTES",
    "MAX_TAG_LIST_BYTES",
    "MAX_TAG_PAGES",
    "USER_AGENT",
    "Registries",
    "RegistryClient",
    "blob_path",
    "is_loopback",
    "is_private",
    "manifest_path",
]

USER_AGENT: Final = f"flux-mirror/{__version__} (fluxmirror)"
MAX_MANIFEST_BYTES: Final = 4 * 1024 * 1024
MAX_TOKEN_BYTES: Final = 1024 * 1024
MAX_TAG_LIST_BYTES: Final = 50 * 1024 * 1024
MAX_TAG_PAGES: Final = 10_000
_PLAIN_HTTP_HINT: Final = "; if the registry speaks plain HTTP, pass --insecure"


_PRIVATE_NETWORKS: Final = tuple(
    ipaddress.IPv4Network(block) for block in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)


def _host(registry: str) -> str:
    """The host of `host[:port]` or `[v6][:port]`, lower-cased."""
    host = registry[1 : registry.find("]")] if registry.startswith("[") else registry.split(":", 1)[0]
    return host.lower()


def is_loopback(registry: str) -> bool:
    """`localhost[:port]`, `*.localhost`, `127.0.0.0/8` and `[::1]` (the registry host, port optional)."""
    host = _host(registry)
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_private(registry: str) -> bool:
    """`*.local` names and RFC 1918 IPv4 addresses (10/8, 172.16/12, 192.168/16), port optional: the
    registries go-containerregistry, besides loopback, also tries over plain HTTP."""
    host = _host(registry)
    if host.endswith(".local"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return isinstance(address, ipaddress.IPv4Address) and any(address in block for block in _PRIVATE_NETWORKS)


def manifest_path(repository: str, reference: str) -> str:
    """The manifest URL path of a tag or digest, refusing anything else: references come from
    registries, and one such as `../../other/manifests/x` would otherwise address another repository."""
    if not (is_tag(reference) or is_digest(reference)):
        raise OCIError(f"invalid tag or digest {go_quote(reference)}")
    return f"/v2/{repository}/manifests/{reference}"


def blob_path(repository: str, digest: str) -> str:
    """The blob URL path of a digest, refusing anything that is not one (see `manifest_path`)."""
    if not is_digest(digest):
        raise OCIError(f"invalid digest {go_quote(digest)}")
    return f"/v2/{repository}/blobs/{digest}"


def _tag_page(body: bytes, url: str) -> list[str]:
    """The `tags` of one tag-list page. The stdlib decoder is used because, like Go's, it accepts
    lone surrogate escapes (such a tag is then dropped by the tag grammar, not the whole listing)."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise OCIError(f"invalid tag list from {redact_url(url)}: {exc}") from None
    tags = document.get("tags") if isinstance(document, dict) else None
    if not isinstance(document, dict) or not isinstance(tags, list | None):
        raise OCIError(f"invalid tag list from {redact_url(url)}: expected an object with a list of tags")
    if tags is None:
        return []
    if not all(isinstance(tag, str) for tag in tags):
        raise OCIError(f"invalid tag list from {redact_url(url)}: every tag must be a string")
    return tags


def _api_host(registry: str) -> str:
    """Where a registry's API is reached: Docker Hub's is not at `docker.io`."""
    return DOCKER_HUB_API if registry == DOCKER_HUB else registry


def _int_header(headers: Mapping[str, str], name: str) -> int:
    value = headers.get(name, "")
    return int(value) if value.isascii() and value.isdigit() else 0


class RegistryClient:
    """One registry (`host[:port]`), reached through the run's shared HTTP session."""

    def __init__(
        self,
        session: HttpSession,
        registry: str,
        credentials: CredentialSource,
        *,
        insecure: bool = False,
        tls: TLSChoice | None = None,
        retry_delays: Sequence[float] = (1.0, 3.0),
        request_timeout: float | None = None,
        gate: HostGate | None = None,
    ) -> None:
        self.registry = registry
        # --adaptive: this host's concurrency limit, which every request waits for (docs/sync.md#adaptive).
        self.gate = gate
        self._session = session
        self._credentials = credentials
        self._insecure = insecure
        self._tls: TLSChoice = tls or (lambda _url: not insecure)
        self._retry_delays = tuple(retry_delays)
        self._timeout = request_timeout
        self._base_url = ""
        self._origin: Origin | None = None
        self._auth: Authenticator | None = None
        self._pinging: asyncio.Task[Authenticator] | None = None
        # Whether the registry answers the referrers API: None until asked (fluxmirror.oci.referrers).
        self.referrers_api: bool | None = None

    @property
    def base_url(self) -> str:
        return self._base_url

    def schemes(self) -> tuple[str, ...]:
        """Schemes to try, in order (docs/sync.md#schemes): plain HTTP for loopback, `*.local` and
        RFC 1918 registries, or any with `--insecure`, and then only after HTTPS failed, as
        go-containerregistry does."""
        plain = self._insecure or is_loopback(self.registry) or is_private(self.registry)
        return ("https", "http") if plain else ("https",)

    def _may_carry_credentials(self, url: URL) -> bool:
        """Credentials travel over plain HTTP only to loopback, or anywhere with `--insecure`: a
        `*.local` or private-address registry reached over plain HTTP gets none."""
        return url.scheme == "https" or self._insecure or is_loopback(url.raw_authority)

    def start_ping(self) -> None:
        """Ping now, without waiting: the requests that follow join the ping in flight."""
        if self._auth is None and self._pinging is None:
            self._pinging = asyncio.ensure_future(self._ping_once())
            self._pinging.add_done_callback(self._pinged)

    def stop_ping(self) -> None:
        """Stop a ping still in flight (the run is over)."""
        if self._pinging is not None:
            self._pinging.cancel()

    async def _ping(self) -> Authenticator:
        """The registry's authenticator, from the one ping every request shares. The ping is
        shielded: a request that gives up (its job cancelled) leaves it running for the others; a
        failed ping fails every request waiting for it, and the next request pings again."""
        if self._auth is not None:
            return self._auth
        self.start_ping()
        assert self._pinging is not None
        return await asyncio.shield(self._pinging)

    def _pinged(self, task: asyncio.Task[Authenticator]) -> None:
        if self._pinging is task:
            self._pinging = None
        if not task.cancelled():
            task.exception()  # a failure reaches the requests that waited; nobody waiting is no error

    async def _ping_once(self) -> Authenticator:
        failure: NetworkError | None = None
        host = _api_host(self.registry)
        schemes = self.schemes()
        for scheme in schemes:
            url = f"{scheme}://{host}/v2/"
            try:
                challenge = await self._challenge(url)
            except TLSError as exc:
                failure = failure or (exc if "http" in schemes else TLSError(f"{exc}{_PLAIN_HTTP_HINT}"))
                continue
            except NetworkError as exc:
                failure = failure or exc  # the HTTPS failure says more than a plain-HTTP fallback's
                continue
            self._base_url = f"{scheme}://{host}"
            self._origin = Origin.of(self._base_url)
            self._auth = Authenticator(self.registry, challenge, self._credentials, self._fetch_token)
            return self._auth
        assert failure is not None
        raise failure

    async def _challenge(self, url: str) -> Challenge | None:
        """Ping `/v2/` for the challenge. A bearer credential (a `hosts[]` token without `username`,
        or a Docker config `registrytoken`) goes on this request too, as on every other one to the
        registry: a registry that validates such tokens may refuse even the ping without it."""
        credential = await self._credentials.resolve(self.registry, "")
        home = Origin.of(url)

        async def authorize(hop: URL) -> str | None:
            if credential.registry_token and Origin.of(hop) == home and self._may_carry_credentials(hop):
                return f"Bearer {credential.registry_token}"
            return None

        async with self._session.request(
            "GET", url, authorize=authorize, tls=self._tls, follow_redirects=True, time_limit=self._timeout
        ) as response:
            if response.status not in (200, 401):
                body = await read_prefix(response, MAX_ERROR_BODY)
                raise RegistryError("GET", url, response.status, body, retry_after=retry_after(response.headers))
            return parse_challenge(response.headers.get("WWW-Authenticate", ""))

    async def _fetch_token(self, request: TokenRequest) -> bytes:
        """Ask the realm for a token. The Basic credential goes only to the realm's own origin, and
        never over plain HTTP to a host that is not loopback (unless `--insecure`)."""
        realm = Origin.of(request.url)

        async def authorize(hop: URL) -> str | None:
            if request.authorization and Origin.of(hop) == realm and self._may_carry_credentials(hop):
                return request.authorization
            return None

        headers: dict[str, str] = {}
        data = None
        if request.form is not None:
            if not self._may_carry_credentials(URL(request.url)):
                raise OCIError(
                    f"{self.registry}: refusing to send a refresh token over plain HTTP to {redact_url(request.url)}"
                )
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            data = urlencode(list(request.form)).encode()
        async with self._session.request(
            request.method,
            request.url,
            headers=headers,
            data=data,
            params=request.params or None,
            authorize=authorize,
            tls=self._tls,
            follow_redirects=True,
            time_limit=self._timeout,
        ) as response:
            if response.status != 200:
                body = await read_prefix(response, MAX_ERROR_BODY)
                raise RegistryError(request.method, str(response.url), response.status, body)
            return await read_body(response, MAX_TOKEN_BYTES)

    @asynccontextmanager
    async def request(
        self,
        method: str,
        path: str,
        *,
        repository: str,
        scopes: Sequence[str],
        headers: Mapping[str, str] | None = None,
        data: Body = None,
        params: Any = None,
        ok: Collection[int] = (200,),
    ) -> AsyncIterator[Response]:
        """Yield the response of an accepted request; any other status raises RegistryError.

        `path` is relative to the registry, or an absolute URL from a `Link` or `Location`."""
        auth = await self._ping()
        replayable = data is None or isinstance(data, bytes)
        delays = iter(self._retry_delays if replayable else ())
        while True:
            stack = AsyncExitStack()
            try:
                place = await stack.enter_async_context(slot(self.gate))  # held until the response is released
                response = await self._open(
                    stack, place, auth, method, path, repository, scopes, headers, data, params, ok
                )
            except NetworkError as exc:
                await stack.aclose()
                delay = next(delays, None) if exc.temporary else None
                if delay is None:
                    raise
                advised = exc.retry_after if isinstance(exc, StatusError) else None
                await asyncio.sleep(advised if advised is not None else delay)
                self._session.retrying(URL(self._base_url).join(URL(path)))
                continue
            except BaseException:
                await stack.aclose()
                raise
            async with stack:
                yield response
            return

    async def _open(
        self,
        stack: AsyncExitStack,
        place: Slot,
        auth: Authenticator,
        method: str,
        path: str,
        repository: str,
        scopes: Sequence[str],
        headers: Mapping[str, str] | None,
        data: Body,
        params: Any,
        ok: Collection[int],
    ) -> Response:
        url = URL(self._base_url).join(URL(path))
        home = self._origin
        if Origin.of(url) == home and not url.path.startswith(f"/v2/{repository}/"):
            # A `Link` or `Location` naming another repository would carry this one's credentials there.
            raise OCIError(f"{method} {redact_url(url)}: outside repository {repository}")

        async def authorize(hop: URL) -> str | None:
            if Origin.of(hop) != home or not self._may_carry_credentials(hop):
                return None
            return await auth.authorization(repository, scopes)

        reauthorized = False
        while True:
            attempt = AsyncExitStack()
            response = await attempt.enter_async_context(
                self._session.request(
                    method,
                    url,
                    headers=headers,
                    data=data,
                    params=params,
                    authorize=authorize,
                    tls=self._tls,
                    follow_redirects=True,
                    time_limit=self._timeout,
                )
            )
            place.heard(response.status, response.headers)
            if response.status in ok:
                stack.push_async_exit(attempt)
                return response
            async with attempt:
                body = await read_prefix(response, MAX_ERROR_BODY)
            replayable = data is None or isinstance(data, bytes)
            if (
                response.status == 401
                and Origin.of(response.url) == home
                and not self._may_carry_credentials(response.url)
            ):
                raise OCIError(
                    f"{method} {redact_url(response.url)}: the registry asks for credentials, which are never sent"
                    " over plain HTTP to a host that is not loopback; pass --insecure to send them"
                )
            if response.status == 401 and not reauthorized and replayable and Origin.of(response.url) == home:
                auth.rechallenge(response.headers.get("WWW-Authenticate", ""), scopes)
                reauthorized = True
                continue
            raise RegistryError(
                method, str(response.url), response.status, body, retry_after=retry_after(response.headers)
            )

    # Tags ---------------------------------------------------------------------------------------

    async def list_tags(self, repository: str, page_size: int = 1000) -> list[str]:
        """Every tag, following `Link` pagination, in registry order.

        Bounded against a broken or hostile registry: each page is read whole up to
        `MAX_TAG_LIST_BYTES`, at most `MAX_TAG_PAGES` pages are read, and a `next` link back to a
        page already read fails the listing (the plan phase has no job deadline)."""
        tags: list[str] = []
        path: str | None = f"/v2/{repository}/tags/list?n={page_size}"
        seen: set[str] = set()
        for _ in range(MAX_TAG_PAGES):
            if path is None:
                return tags
            async with self.request("GET", path, repository=repository, scopes=[pull_scope(repository)]) as response:
                body = await read_body(response, MAX_TAG_LIST_BYTES)
                link = response.links.get("next")
                seen.add(str(response.url))  # absolute, like the `Link` targets aiohttp resolves
            tags.extend(_tag_page(body, str(response.url)))
            path = str(link["url"]) if link else None
            if path in seen:
                raise OCIError(f"tag list pagination loops back to {redact_url(path)}")
        if path is None:
            return tags
        raise OCIError(f"tag list of {self.registry}/{repository} has more than {MAX_TAG_PAGES} pages")

    # Manifests ----------------------------------------------------------------------------------

    async def _manifest_response(
        self, method: str, repository: str, reference: str
    ) -> tuple[Mapping[str, str], bytes] | None:
        """Headers and (for GET) the whole body of a manifest request; None when it is 404."""
        try:
            async with self.request(
                method,
                manifest_path(repository, reference),
                repository=repository,
                scopes=[pull_scope(repository)],
                headers={"Accept": MANIFEST_ACCEPT},
            ) as response:
                body = await read_body(response, MAX_MANIFEST_BYTES) if method == "GET" else b""
                return response.headers, body
        except RegistryError as exc:
            if exc.status == 404:
                return None
            raise

    async def head_manifest(self, repository: str, reference: str) -> Descriptor | None:
        """The manifest's descriptor, or None when the registry says 404."""
        found = await self._manifest_response("HEAD", repository, reference)
        if found is None:
            return None
        headers = found[0]
        return Descriptor(
            media_type=headers.get("Content-Type", "").split(";")[0],
            digest=headers.get("Docker-Content-Digest", ""),
            size=_int_header(headers, "Content-Length"),
        )

    async def get_manifest(self, repository: str, reference: str) -> Manifest | None:
        """The manifest's exact bytes, digest-checked; None on 404."""
        found = await self._manifest_response("GET", repository, reference)
        if found is None:
            return None
        headers, raw = found
        content_type = headers.get("Content-Type", "")
        header_digest = headers.get("Docker-Content-Digest", "")
        manifest = parse_manifest(raw, content_type)
        if manifest.media_type.startswith("application/vnd.docker.distribution.manifest.v1"):
            return parse_manifest(raw, content_type, digest=header_digest or manifest.digest)
        # By digest, the bytes must hash to it; by tag, to what the registry says, by the algorithm
        # either names (docs/sync.md#digests).
        expected = reference if ":" in reference else header_digest
        if not expected:
            return manifest
        algorithm = expected.partition(":")[0]
        if algorithm != "sha256":
            manifest = parse_manifest(raw, content_type, digest=digest_of(raw, algorithm))
        if expected != manifest.digest:
            raise DigestMismatchError(
                f"manifest {self.registry}/{repository}@{expected}: content hashes to {manifest.digest}"
            )
        return manifest

    async def resolve_digest(self, repository: str, reference: str) -> str | None:
        """HEAD for the digest; when HEAD fails for any other reason than 404, GET and hash."""
        try:
            descriptor = await self.head_manifest(repository, reference)
            if descriptor is None:
                return None
            if descriptor.digest:
                return descriptor.digest
        except (NetworkError, OCIError):
            pass
        manifest = await self.get_manifest(repository, reference)
        return manifest.digest if manifest is not None else None

    async def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        """PUT the exact bytes under a tag or digest."""
        async with self.request(
            "PUT",
            manifest_path(repository, reference),
            repository=repository,
            scopes=[push_scope(repository)],
            headers={"Content-Type": manifest.media_type},
            data=manifest.raw,
            ok=(200, 201, 202),
        ) as response:
            returned = response.headers.get("Docker-Content-Digest", "")
        if not returned or manifest.media_type.endswith("prettyjws"):
            return
        # The registry names what it stored by its own algorithm (sha256 for a sha512 manifest pushed
        # by tag): the same bytes must hash to it.
        algorithm = returned.partition(":")[0]
        expected = (
            manifest.digest if manifest.digest.startswith(f"{algorithm}:") else digest_of(manifest.raw, algorithm)
        )
        if returned != expected:
            raise DigestMismatchError(
                f"push {self.registry}/{repository}:{reference}: registry stored {returned}, expected {expected}"
            )


class Registries:
    """The run's clients, one per registry, sharing one HTTP session and one credential source (and,
    with `--adaptive`, one gate holding each registry's concurrency limit)."""

    def __init__(
        self,
        session: HttpSession,
        credentials: CredentialSource,
        *,
        insecure: bool = False,
        tls: TLSChoice | None = None,
        retry_delays: Sequence[float] = (1.0, 3.0),
        request_timeout: float | None = None,
        adaptive: AdaptiveLimits | None = None,
    ) -> None:
        self._session = session
        self._credentials = credentials
        self._insecure = insecure
        self._tls = tls
        self._retry_delays = retry_delays
        self._timeout = request_timeout
        self.adaptive = adaptive
        self._clients: dict[str, RegistryClient] = {}

    def start_pings(self, registries: Iterable[str]) -> None:
        """Ping every one of `registries` at once, without waiting (docs/sync.md#pings)."""
        for registry in registries:
            self.client(registry).start_ping()

    def stop_pings(self) -> None:
        """Stop the pings still in flight: the run is over."""
        for client in self._clients.values():
            client.stop_ping()

    def client(self, registry: str) -> RegistryClient:
        if registry not in self._clients:
            self._clients[registry] = RegistryClient(
                self._session,
                registry,
                self._credentials,
                insecure=self._insecure,
                tls=self._tls,
                retry_delays=self._retry_delays,
                request_timeout=self._timeout,
                gate=self.adaptive.gate(_api_host(registry)) if self.adaptive is not None else None,
            )
        return self._clients[registry]
