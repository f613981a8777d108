"""A client for one registry: ping, authorize, send, and the tag and manifest calls.

Every request goes through `request`, which pings the registry once (choosing the scheme and
learning its auth challenge), attaches the `Authorization` the scopes need, retries once on a
401 with a fresh token, follows redirects without sending credentials to any other host, and
retries transient failures of replayable requests (honouring `Retry-After`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Final
from urllib.parse import urlencode, urljoin, urlsplit

import aiohttp

from fluxmirror.auth.credentials import CredentialSource
from fluxmirror.httputil import REDIRECT_STATUSES
from fluxmirror.oci.auth import Authenticator, Challenge, TokenRequest, parse_challenge, pull_scope, push_scope
from fluxmirror.oci.errors import (
    MAX_ERROR_BODY,
    DigestMismatchError,
    OCIError,
    RegistryError,
    TransportError,
    registry_url,
)
from fluxmirror.oci.manifests import Descriptor, Manifest, parse_manifest
from fluxmirror.oci.mediatypes import MANIFEST_ACCEPT
from fluxmirror.oci.reference import DOCKER_HUB, DOCKER_HUB_API
from fluxmirror.oci.transport import Body, Transport

__all__ = ["MAX_MANIFEST_BYTES", "Registries", "RegistryClient"]

MAX_MANIFEST_BYTES: Final = 4 * 1024 * 1024
_MAX_REDIRECTS: Final = 5
_MAX_RETRY_AFTER: Final = 60.0


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return min(max(float(value), 0.0), _MAX_RETRY_AFTER)
    except ValueError:
        return None


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    return await response.content.read(limit)


class RegistryClient:
    """One registry (`host[:port]`), reached through the run's shared transport."""

    def __init__(
        self,
        transport: Transport,
        registry: str,
        credentials: CredentialSource,
        *,
        retry_delays: Sequence[float] = (1.0, 3.0),
    ) -> None:
        self.registry = registry
        self._transport = transport
        self._credentials = credentials
        self._retry_delays = tuple(retry_delays)
        self._base_url = ""
        self._auth: Authenticator | None = None
        self._ready = asyncio.Lock()

    @property
    def base_url(self) -> str:
        return self._base_url

    async def _ping(self) -> Authenticator:
        async with self._ready:
            if self._auth is not None:
                return self._auth
            failure: OCIError | None = None
            host = DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry
            for scheme in self._transport.schemes(self.registry):
                url = f"{scheme}://{host}/v2/"
                try:
                    challenge = await self._challenge(url)
                except (TransportError, RegistryError) as exc:
                    failure = failure or exc  # the HTTPS failure says more than a plain-HTTP fallback's
                    continue
                self._base_url = f"{scheme}://{host}"
                self._auth = Authenticator(self.registry, challenge, self._credentials, self._fetch_token)
                return self._auth
            assert failure is not None
            raise failure

    async def _challenge(self, url: str) -> Challenge | None:
        async with self._transport.send("GET", url, registry=self.registry) as response:
            if response.status not in (200, 401):
                raise RegistryError("GET", url, response.status, await _read_capped(response, MAX_ERROR_BODY))
            return parse_challenge(response.headers.get("WWW-Authenticate", ""))

    async def _fetch_token(self, request: TokenRequest) -> bytes:
        headers = {"Authorization": request.authorization} if request.authorization else {}
        data = None
        if request.form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            data = urlencode(list(request.form)).encode()
        async with self._transport.send(
            request.method, request.url, registry=self.registry, headers=headers, data=data, params=request.params
        ) as response:
            body = await _read_capped(response, MAX_MANIFEST_BYTES)
            if response.status != 200:
                raise RegistryError(request.method, request.url, response.status, body)
            return body

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
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Yield the response of an accepted request; any other status raises RegistryError."""
        auth = await self._ping()
        replayable = data is None or isinstance(data, bytes)
        delays = iter(self._retry_delays if replayable else ())
        while True:
            stack = AsyncExitStack()
            try:
                response = await self._open(stack, auth, method, path, repository, scopes, headers, data, params, ok)
            except (RegistryError, TransportError) as exc:
                await stack.aclose()
                delay = next(delays, None) if exc.temporary else None
                if delay is None:
                    raise
                retry_after = exc.retry_after if isinstance(exc, RegistryError) else None
                await asyncio.sleep(retry_after if retry_after is not None else delay)
                continue
            async with stack:
                yield response
            return

    async def _open(
        self,
        stack: AsyncExitStack,
        auth: Authenticator,
        method: str,
        path: str,
        repository: str,
        scopes: Sequence[str],
        headers: Mapping[str, str] | None,
        data: Body,
        params: Any,
        ok: Collection[int],
    ) -> aiohttp.ClientResponse:
        url = urljoin(self._base_url, path)
        home = _origin(url)
        reauthorized = False
        for _ in range(_MAX_REDIRECTS + 1):
            send_headers = dict(headers or {})
            authorization = await auth.authorization(repository, scopes) if _origin(url) == home else None
            if authorization:
                send_headers["Authorization"] = authorization
            attempt = AsyncExitStack()
            response = await attempt.enter_async_context(
                self._transport.send(
                    method, url, registry=self.registry, headers=send_headers, data=data, params=params
                )
            )
            if response.status in ok:
                stack.push_async_exit(attempt)
                return response
            body = await _read_capped(response, MAX_ERROR_BODY)
            await attempt.aclose()
            replayable = data is None or isinstance(data, bytes)
            if response.status == 401 and not reauthorized and replayable and _origin(url) == home:
                auth.rechallenge(response.headers.get("WWW-Authenticate", ""), scopes)
                reauthorized = True
                continue
            if response.status in REDIRECT_STATUSES and method in ("GET", "HEAD") and "Location" in response.headers:
                url = urljoin(url, response.headers["Location"])
                params = None
                continue
            raise RegistryError(method, url, response.status, body, retry_after=_retry_after(response))
        raise OCIError(f"{method} {path}: too many redirects")

    # Tags ---------------------------------------------------------------------------------------

    async def list_tags(self, repository: str, page_size: int = 1000) -> list[str]:
        """Every tag, following `Link` pagination, in registry order.

        A `next` link back to a page already read would otherwise loop forever on a broken registry
        (the plan phase has no deadline), so it fails the listing instead."""
        tags: list[str] = []
        path: str | None = f"/v2/{repository}/tags/list?n={page_size}"
        seen: set[str] = set()
        while path is not None:
            async with self.request("GET", path, repository=repository, scopes=[pull_scope(repository)]) as response:
                document = await response.json(content_type=None)
                link = response.links.get("next")
                seen.add(str(response.url))  # absolute, like the `Link` targets aiohttp resolves
            tags.extend(document.get("tags") or [])
            path = str(link["url"]) if link else None
            if path in seen:
                raise OCIError(f"tag list pagination loops back to {registry_url(path)}")
        return tags

    # Manifests ----------------------------------------------------------------------------------

    async def _manifest_response(
        self, method: str, repository: str, reference: str
    ) -> tuple[Mapping[str, str], bytes] | None:
        """Headers and (for GET) the capped body of a manifest request; None when it is 404."""
        try:
            async with self.request(
                method,
                f"/v2/{repository}/manifests/{reference}",
                repository=repository,
                scopes=[pull_scope(repository)],
                headers={"Accept": MANIFEST_ACCEPT},
            ) as response:
                body = await _read_capped(response, MAX_MANIFEST_BYTES + 1) if method == "GET" else b""
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
            size=int(headers.get("Content-Length", "0") or 0),
        )

    async def get_manifest(self, repository: str, reference: str) -> Manifest | None:
        """The manifest's exact bytes, digest-checked; None on 404."""
        found = await self._manifest_response("GET", repository, reference)
        if found is None:
            return None
        headers, raw = found
        content_type = headers.get("Content-Type", "")
        header_digest = headers.get("Docker-Content-Digest", "")
        if len(raw) > MAX_MANIFEST_BYTES:
            raise OCIError(f"manifest {self.registry}/{repository}:{reference} exceeds {MAX_MANIFEST_BYTES} bytes")
        manifest = parse_manifest(raw, content_type)
        expected = reference if reference.startswith("sha256:") else header_digest
        if manifest.media_type.startswith("application/vnd.docker.distribution.manifest.v1"):
            return parse_manifest(raw, content_type, digest=header_digest or manifest.digest)
        if expected.startswith("sha256:") and expected != manifest.digest:
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
        except OCIError:
            pass
        manifest = await self.get_manifest(repository, reference)
        return manifest.digest if manifest is not None else None

    async def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        """PUT the exact bytes under a tag or digest."""
        async with self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            repository=repository,
            scopes=[push_scope(repository)],
            headers={"Content-Type": manifest.media_type},
            data=manifest.raw,
            ok=(200, 201, 202),
        ) as response:
            returned = response.headers.get("Docker-Content-Digest", "")
        if returned and returned != manifest.digest and not manifest.media_type.endswith("prettyjws"):
            raise DigestMismatchError(
                f"push {self.registry}/{repository}:{reference}: registry stored {returned}, expected {manifest.digest}"
            )


class Registries:
    """The run's clients, one per registry, sharing one transport and one credential source."""

    def __init__(
        self, transport: Transport, credentials: CredentialSource, *, retry_delays: Sequence[float] = (1.0, 3.0)
    ) -> None:
        self._transport = transport
        self._credentials = credentials
        self._retry_delays = retry_delays
        self._clients: dict[str, RegistryClient] = {}

    def client(self, registry: str) -> RegistryClient:
        if registry not in self._clients:
            self._clients[registry] = RegistryClient(
                self._transport, registry, self._credentials, retry_delays=self._retry_delays
            )
        return self._clients[registry]
