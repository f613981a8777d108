"""An in-memory OCI distribution registry with the OCI 1.1 referrers API, served by aiohttp.

Debian's docker-registry (distribution 2.8) predates ``GET /v2/<name>/referrers/<digest>``,
so tests of referrer mirroring need a registry that has it.  This one implements the
distribution API as the spec states it and refuses what a real registry refuses (a manifest
pushed before its blobs, a digest that does not match), so a client that works here is not
merely working against a lenient fake.  Auth is optional (``registry.auth``: Basic, Bearer
tokens from a realm it serves itself, or Bearer tokens it validates).  TLS is optional too (an
``ssl_context``), and ``endpoints`` adds non-registry paths the same host serves, such as a cloud
registry's credential exchange.  Deliberately absent: content negotiation (manifests are served as
pushed) and manifests readable through the blob endpoint.

Like ``harness.faultproxy``, it runs on a private event loop in a daemon thread, so both
synchronous tests and asyncio tests (whose loop must stay free) can use it.
"""

from __future__ import annotations

import json
import re
import shutil
import ssl
import tempfile
import threading
import traceback
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, NamedTuple
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from harness.background import BackgroundLoop, listen
from harness.registry import Registry
from multidict import CIMultiDict, CIMultiDictProxy

from registry.auth import RegistryAuth, needed_actions
from registry.storage import DIGEST, OCI_INDEX, DistributionError, Storage, check_digest

MAX_BODY = 64 * 1024 * 1024
# The distribution spec's repository-name and tag grammars.
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME = rf"{_COMPONENT}(?:/{_COMPONENT})*"
TAG = r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"

Handler = Callable[[web.Request, dict[str, str]], Awaitable[web.StreamResponse]]
Endpoint = Callable[[web.Request], Awaitable[web.StreamResponse]]
"""A non-registry path the registry's host also serves (no registry auth applies to it)."""


class LoggedRequest(NamedTuple):
    """One request as received; compares equal to a plain ``(method, target)`` tuple."""

    method: str
    target: str  # raw path with query string, exactly as sent


class Exchange(NamedTuple):
    """One request with its headers, for tests about what a client sent (``Authorization``, ``Range``)."""

    method: str
    target: str
    headers: CIMultiDict[str]

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")


class _Journal:
    """The request log tests read (thread-safe) plus a text log at ``Registry.log_path``.

    A request is logged before its handler runs, so once a client holds the answer the
    entry is already there.
    """

    def __init__(self, log_path: Path) -> None:
        self._lock = threading.Lock()
        self._requests: list[LoggedRequest] = []
        self._exchanges: list[Exchange] = []
        self._file: IO[str] = log_path.open("a", buffering=1)

    def record(self, method: str, target: str, headers: CIMultiDictProxy[str] | None = None) -> None:
        with self._lock:
            self._requests.append(LoggedRequest(method, target))
            self._exchanges.append(Exchange(method, target, CIMultiDict(headers or {})))

    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._requests)

    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._exchanges.clear()

    def write(self, line: str) -> None:
        if not self._file.closed:
            self._file.write(line.rstrip("\n") + "\n")

    def close(self) -> None:
        self._file.close()


class RegistryApp:
    """The HTTP side: one dispatcher over spec-grammar routes, errors in the spec's JSON form."""

    def __init__(
        self,
        storage: Storage,
        journal: _Journal,
        *,
        referrers_api: bool,
        referrers_page_size: int | None,
        auth: RegistryAuth | None = None,
        endpoints: Mapping[str, Endpoint] | None = None,
        keep_partial_chunks: bool = False,
    ) -> None:
        if referrers_page_size is not None and referrers_page_size < 1:
            raise ValueError("referrers_page_size must be None or at least 1")
        self._storage = storage
        self._journal = journal
        self._auth = auth
        self._endpoints = dict(endpoints or {})
        self._page_size = referrers_page_size
        self._keep_partial_chunks = keep_partial_chunks
        manifest: dict[str, Handler] = {"GET": self._get_manifest, "HEAD": self._get_manifest}
        manifest |= {"PUT": self._put_manifest, "DELETE": self._delete_manifest}
        upload: dict[str, Handler] = {"GET": self._upload_status, "PATCH": self._patch_upload}
        upload |= {"PUT": self._put_upload, "DELETE": self._cancel_upload}
        blob: dict[str, Handler] = {"GET": self._get_blob, "HEAD": self._get_blob, "DELETE": self._delete_blob}
        routes: list[tuple[str, dict[str, Handler]]] = [
            (r"/v2/?", {"GET": self._base, "HEAD": self._base}),
            (r"/v2/_catalog", {"GET": self._catalog}),
            (rf"/v2/(?P<name>{NAME})/tags/list", {"GET": self._tags}),
            (rf"/v2/(?P<name>{NAME})/manifests/(?P<reference>{TAG}|{DIGEST})", manifest),
            (rf"/v2/(?P<name>{NAME})/blobs/uploads/?", {"POST": self._start_upload}),
            (rf"/v2/(?P<name>{NAME})/blobs/uploads/(?P<upload_id>[^/]+)", upload),
            (rf"/v2/(?P<name>{NAME})/blobs/(?P<digest>{DIGEST})", blob),
        ]
        if referrers_api:  # without it the path is simply unknown, as on distribution 2.8
            routes.append((rf"/v2/(?P<name>{NAME})/referrers/(?P<digest>{DIGEST})", {"GET": self._referrers}))
        self._routes = [(re.compile(pattern), handlers) for pattern, handlers in routes]

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._observe])
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    @web.middleware
    async def _observe(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self._journal.record(request.method, request.raw_path, request.headers)
        try:
            response = await handler(request)
        except DistributionError as error:
            response = web.json_response(error.body(), status=error.status, headers=error.headers)
        except web.HTTPException as error:
            self._journal.write(f"{request.method} {request.raw_path} -> {error.status}")
            raise
        except Exception:
            self._journal.write(f"{request.method} {request.raw_path} -> 500\n{traceback.format_exc()}")
            raise
        response.headers["Docker-Distribution-API-Version"] = "registry/2.0"
        self._journal.write(f"{request.method} {request.raw_path} -> {response.status}")
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        endpoint = self._endpoints.get(request.path)
        if endpoint is not None:
            return await endpoint(request)
        if self._auth is not None and request.path == self._auth.token_path:
            return await self._auth.issue(request)
        for pattern, handlers in self._routes:
            match = pattern.fullmatch(request.path)
            if match is not None:
                handler = handlers.get(request.method)
                if handler is None:
                    raise DistributionError(405, "UNSUPPORTED", f"{request.method} not allowed here")
                params = match.groupdict()
                self._authorize(request, params.get("name"))
                return await handler(request, params)
        return web.Response(status=404, text="404 page not found\n")

    def _authorize(self, request: web.Request, name: str | None) -> None:
        actions = needed_actions(request.method)
        if self._auth is not None and not self._auth.allows(request, name, actions):
            challenge = self._auth.challenge(request, name, actions)
            raise DistributionError(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": challenge})

    # --- handlers -------------------------------------------------------------------------

    async def _base(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        return web.json_response({})

    async def _catalog(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        return _listing(request, "/v2/_catalog", {}, "repositories", self._storage.repository_names())

    async def _tags(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        name = params["name"]
        return _listing(request, f"/v2/{name}/tags/list", {"name": name}, "tags", self._storage.tags(name))

    async def _get_manifest(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        stored = self._storage.manifest(params["name"], params["reference"])
        headers = {"Content-Type": stored.media_type, "Docker-Content-Digest": stored.digest}
        return web.Response(body=stored.data, headers=headers)

    async def _put_manifest(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        name = params["name"]
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip() or None
        stored = self._storage.put_manifest(name, params["reference"], await request.read(), content_type)
        headers = {"Location": f"/v2/{name}/manifests/{stored.digest}", "Docker-Content-Digest": stored.digest}
        if stored.subject is not None:
            headers["OCI-Subject"] = stored.subject
        return web.Response(status=201, headers=headers)

    async def _delete_manifest(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        self._storage.delete_manifest(params["name"], params["reference"])
        return web.Response(status=202)

    async def _get_blob(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        digest = check_digest(params["digest"])
        data = self._storage.blob(params["name"], digest)
        headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest}
        headers["Accept-Ranges"] = "bytes"
        span = _range(request.headers.get("Range"), len(data)) if request.method == "GET" else None
        if span is None:
            return web.Response(body=data, headers=headers)
        start, end = span
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        return web.Response(status=206, body=data[start : end + 1], headers=headers)

    async def _delete_blob(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        self._storage.delete_blob(params["name"], check_digest(params["digest"]))
        return web.Response(status=202)

    async def _start_upload(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        """Mount (when ``from`` has the blob), monolithic upload (``digest``), or a new session."""
        name, query = params["name"], request.query
        if "mount" in query:
            digest = check_digest(query["mount"])
            source = query.get("from")
            # without pull on ``from`` there is nothing to mount: distribution then opens an upload
            readable = self._auth is None or (source is not None and self._auth.allows(request, source, ("pull",)))
            if source is not None and readable and self._storage.mount(name, digest, source):
                return _blob_created(name, digest)
        elif "digest" in query:
            return _blob_created(name, self._storage.put_blob(name, await request.read(), query["digest"]))
        upload_id = self._storage.start_upload(name)
        return web.Response(status=202, headers=_upload_headers(name, upload_id, 0))

    async def _upload_status(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        name, upload_id = params["name"], params["upload_id"]
        upload = self._storage.upload(name, upload_id)
        return web.Response(status=204, headers=_upload_headers(name, upload_id, len(upload.data)))

    async def _patch_upload(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        """Append a chunk; a ``Content-Range`` must continue exactly where the session ends.

        By default the whole chunk is read before it is appended, so a PATCH cut short leaves
        nothing. With ``keep_partial_chunks`` bytes are appended as they arrive, as a registry that
        writes the request body straight to storage does: a cut PATCH leaves what arrived, and the
        session's status (``GET``) reports that real offset."""
        name, upload_id = params["name"], params["upload_id"]
        if not self._keep_partial_chunks:
            chunk = await request.read()  # first: from here on no await, so sessions change atomically
            upload = self._storage.upload(name, upload_id)
            _check_continues(request.headers.get("Content-Range"), len(upload.data), len(chunk))
            upload.data += chunk
        else:
            upload = self._storage.upload(name, upload_id)
            _check_continues(request.headers.get("Content-Range"), len(upload.data), request.content_length)
            try:
                async for piece in request.content.iter_any():
                    upload.data += piece
            except (ConnectionError, aiohttp.ClientPayloadError) as cut:
                self._journal.write(f"PATCH {request.raw_path} cut at {len(upload.data)} bytes: {cut!r}")
                raise
        return web.Response(status=202, headers=_upload_headers(name, upload_id, len(upload.data)))

    async def _put_upload(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        name, upload_id = params["name"], params["upload_id"]
        chunk = await request.read()  # first: from here on no await, so sessions change atomically
        upload = self._storage.upload(name, upload_id)
        upload.data += chunk
        expected = request.query.get("digest")
        if expected is None:
            raise DistributionError(400, "DIGEST_INVALID", "the closing PUT needs ?digest=")
        return _blob_created(name, self._storage.finish_upload(name, upload_id, expected))

    async def _cancel_upload(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        self._storage.cancel_upload(params["name"], params["upload_id"])
        return web.Response(status=204)

    async def _referrers(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        """Always 200 with an image index, even for an unknown subject or repository (OCI 1.1).

        Paging continues after the push sequence number of the last entry served, so pushes
        and deletions between pages neither repeat nor skip the others.
        """
        name, subject = params["name"], check_digest(params["digest"])
        artifact_type = request.query.get("artifactType") or None
        after = request.query.get("after", "0")
        if not after.isdigit():
            raise DistributionError(400, "PAGINATION_NUMBER_INVALID", f"bad continuation {after!r}")
        found = [m for m in self._storage.referrers(name, subject, artifact_type) if m.seq > int(after)]
        headers = {"Content-Type": OCI_INDEX}
        if artifact_type is not None:
            headers["OCI-Filters-Applied"] = "artifactType"
        if self._page_size is not None and len(found) > self._page_size:
            found = found[: self._page_size]
            query = ({"artifactType": artifact_type} if artifact_type else {}) | {"after": str(found[-1].seq)}
            headers["Link"] = f'</v2/{name}/referrers/{subject}?{urlencode(query)}>; rel="next"'
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [m.descriptor() for m in found]}
        return web.Response(body=json.dumps(index).encode(), headers=headers)


def _listing(request: web.Request, path: str, extra: dict[str, str], key: str, items: list[str]) -> web.StreamResponse:
    """A sorted list paged the distribution way: ``n``, ``last`` and a ``Link`` to the rest."""
    last = request.query.get("last")
    if last:
        items = [item for item in items if item > last]
    headers: dict[str, str] = {}
    if "n" in request.query:
        if not request.query["n"].isdigit():
            raise DistributionError(400, "PAGINATION_NUMBER_INVALID", f"bad n {request.query['n']!r}")
        n = int(request.query["n"])
        if len(items) > n:
            items = items[:n]
            if items:
                headers["Link"] = f'<{path}?{urlencode({"n": n, "last": items[-1]})}>; rel="next"'
    return web.json_response(extra | {key: items}, headers=headers)


def _check_continues(claimed: str | None, held: int, length: int | None) -> None:
    """A PATCH's ``Content-Range``, if it has one, must start where the session ends and span ``length``."""
    if claimed is None:
        return
    match = re.fullmatch(r"(?:bytes )?(\d+)-(\d+)", claimed.strip())
    if match is None or int(match[1]) != held or int(match[2]) - int(match[1]) + 1 != length:
        raise DistributionError(416, "RANGE_INVALID", f"Content-Range {claimed!r} does not continue {held} bytes")


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one ``bytes=a-b`` / ``bytes=a-`` span asked for; other forms are ignored (RFC 9110)."""
    match = re.fullmatch(r"bytes=(\d+)-(\d*)", (header or "").strip())
    if match is None:
        return None
    start, end = int(match[1]), int(match[2]) if match[2] else size - 1
    if start >= size or end < start:
        raise DistributionError(
            416, "RANGE_INVALID", f"{header!r} outside {size} bytes", {"Content-Range": f"bytes */{size}"}
        )
    return start, min(end, size - 1)


def _blob_created(name: str, digest: str) -> web.Response:
    return web.Response(status=201, headers={"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest})


def _upload_headers(name: str, upload_id: str, size: int) -> dict[str, str]:
    return {
        "Location": f"/v2/{name}/blobs/uploads/{upload_id}",
        "Docker-Upload-UUID": upload_id,
        "Range": f"0-{max(size - 1, 0)}",  # distribution's form, also for an empty session
    }


class OCIRegistry:
    """A running registry on ``127.0.0.1:<free port>``; ``.registry`` is what harness helpers take.

    ``base_dir`` holds the text log (``Registry.log_path``); without one a temporary
    directory is made and removed on ``close``.  Content lives only in memory.  With
    ``ssl_context`` it serves https (``ca_path``, the CA that verifies its certificate, goes into
    ``.registry``); ``endpoints`` maps extra paths to handlers. ``keep_partial_chunks`` keeps
    what arrived of a PATCH cut short, so an upload's status reports its real offset.
    """

    def __init__(
        self,
        base_dir: Path | None = None,
        *,
        referrers_api: bool = True,
        referrers_page_size: int | None = None,
        auth: RegistryAuth | None = None,
        ssl_context: ssl.SSLContext | None = None,
        ca_path: Path | None = None,
        endpoints: Mapping[str, Endpoint] | None = None,
        keep_partial_chunks: bool = False,
    ) -> None:
        self._owned_dir = base_dir is None
        base = Path(tempfile.mkdtemp(prefix="oci-registry-")) if base_dir is None else base_dir
        (base / "storage").mkdir(parents=True, exist_ok=True)
        self._journal = _Journal(base / "registry.log")
        self.auth = auth
        self.storage = Storage()  # what was pushed, for tests that cannot read it back through auth
        self._app = RegistryApp(
            self.storage,
            self._journal,
            referrers_api=referrers_api,
            referrers_page_size=referrers_page_size,
            auth=auth,
            endpoints=endpoints,
            keep_partial_chunks=keep_partial_chunks,
        )
        sock = listen()
        self.port: int = sock.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"{'https' if ssl_context is not None else 'http'}://{self.host}"
        self.registry = Registry(
            host=self.host,
            url=self.url,
            root_dir=base / "storage",
            log_path=base / "registry.log",
            credentials=auth.credentials if auth is not None else None,
            ca_path=ca_path,
        )
        self._background = BackgroundLoop(f"oci-registry-{self.host}")
        try:
            self._background.serve(self._app.application(), sock, ssl_context)
        except BaseException:
            sock.close()
            self.close()
            raise

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request so far (since ``reset``) as ``(method, raw path with query)``."""
        return self._journal.requests()

    @property
    def exchanges(self) -> list[Exchange]:
        """Every request so far (since ``reset``) with the headers it carried."""
        return self._journal.exchanges()

    def reset(self) -> None:
        """Forget the request log; stored content stays."""
        self._journal.clear()

    def close(self) -> None:
        try:
            self._background.close()
        finally:
            self._journal.close()
            if self._owned_dir:
                shutil.rmtree(self.registry.root_dir.parent, ignore_errors=True)

    def __enter__(self) -> OCIRegistry:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
