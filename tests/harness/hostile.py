"""A hostile registry: one misbehaviour per repository path, for "Trust nothing from the network".

No well-behaved registry lies, trickles or echoes secrets on cue, so this one does. It speaks just
enough of the distribution API (ping, tags, manifests, blobs, referrers, upload sessions) for
fluxmirror to walk into each behaviour, and behaves well everywhere else: every tag of every other
repository resolves to one small, valid artifact whose blobs it serves. A real ``docker-registry``
stays the well-behaved half (the destination) in the tests.

Next to it run the **attacker** (``localhost:<port>``, another host), which answers the few
requests a leaked link leads to and records whether they carried an ``Authorization``; the
**mute host** (``mute_host``), a listening socket nobody reads, so connections open and requests
are sent but not even the ping is ever answered (item 5); and, with a PKI, an **untrusted TLS
host** whose certificate fluxmirror has no reason to trust.

| repository path | behaviour | proves (issue item) |
| --- | --- | --- |
| ``plain/app`` | well-behaved: tag ``1.0.0`` names the artifact | (control: auth and realm tests) |
| ``lying/length`` | manifest GET declares the full Content-Length, sends half, closes | 1: a short body is an error |
| ``lying/digest`` | manifest HEAD/GET name a digest the bytes do not hash to | 1: bodies are checked |
| ``dotdot/app`` | tags ``1.0.0`` and ``../../../prod/app/manifests/latest`` | 2: tags reach URLs unchecked |
| ``prod/app`` | where that tag lands after dot-segment removal; serves the artifact | 2 |
| ``query/app`` | tag ``a?b=c`` (becomes tag ``a`` on the wire) | 2 |
| ``stringtags/app`` | ``"tags": "v1"``, a string (becomes tags ``v`` and ``1``) | 2, 4 |
| ``subject/app`` | referrers API lists a referrer whose ``subject.digest`` is a path | 2: digests reach URLs |
| ``otherrepo/link`` | tag list page 1 links (relative ``Link``) into ``otherrepo/elsewhere`` | 2: Link names checked |
| ``otherrepo/elsewhere`` | another repository's tag list: ``9.9.9-elsewhere`` | 2 |
| ``otherrepo/upload`` | as a destination: upload ``Location`` inside ``prod/app`` on this host | 2: Location names checked |
| ``crosslink/tags`` | tag list page 1 links (absolute ``Link``) to the attacker | 3: credentials follow Link |
| ``crosslink/referrers`` | referrers page 1 links to the attacker | 3 |
| ``crosslink/upload`` | as a destination: upload POST's ``Location`` is on the attacker | 3: credentials follow Location |
| (any other upload) | PATCH and PUT of an upload session are accepted anywhere | (destination plumbing) |
| ``badlist/notjson`` | tag list is HTML | 4: a bad tag list crashes the run |
| ``badlist/array`` | tag list is a JSON array | 4 |
| ``badlist/nonstring`` | tags are a number, null and an object | 4 |
| ``badlist/bigdigits`` | one 5000-digit tag (semver parsing meets CPython's int limit) | 4 |
| ``badlist/surrogate`` | one tag ``"\\ud800"`` (a lone surrogate escape) | 4 |
| ``backtrack/app`` | tags ``1.0.0`` and ``BACKTRACK_TAG``, 126 digits then ``x`` (a valid tag) | 6: a backtracking selector stalls planning |
| ``slow/body`` | tag list headers at once, then its body one byte a second | 5: unbounded requests |
| ``slow/headers`` | status line and headers one byte a second, never ending | 5 |
| ``slow/silent`` | tag list request read, never answered | 5 |
| ``endless/pages`` | every tag list page links to a new, distinct next page | 5: unbounded paging |
| ``huge/tags`` | a 100 MB tag list (chunked, no Content-Length) | 5: unbounded bodies |
| ``echo/app`` | every request: 400 whose text body echoes the request headers | 8: secrets in errors |
| ``echo/token`` | (bearer mode) a token request for it: 401 echoing the request headers | 8 |
| ``ansi/message`` | tag list: 400 whose error message holds ESC sequences and U+202E | 8: raw control characters |
| ``ansi/tags`` | tags ``1.0.0``, ``\\x1b[2Jcleared`` and ``\\u202egpj.exe`` | 8 |
| ``tls/redirect`` | blob GETs redirect (307) to the untrusted TLS host | 12: TLS error reported as is |

Auth is per server, because a client learns it from the ping: anonymous, Basic, or Bearer with
the token endpoint on this server (``/token``) or, with ``realm_on_attacker``, on the attacker.
Every request to the registry, the attacker and the TLS host is recorded (``harness.faultproxy.Recorder``: headers without the
Authorization value, which is kept only as a flag and its scheme).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import ssl
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from aiohttp import web

from harness import Credentials
from harness.background import BackgroundLoop, listen
from harness.closing import Closing
from harness.faultproxy import RecordedRequest, Recorder, Tally
from harness.images import OCI_INDEX, OCI_MANIFEST, Blob, Manifest, make_artifact, sha256_digest
from harness.pki import PKI

__all__ = [
    "ANSI_TAGS",
    "BACKTRACK_TAG",
    "BIDI",
    "DOTDOT_TAG",
    "ESC",
    "HOSTILE_SUBJECT",
    "HOSTILE_USER",
    "HUGE_TAG_LIST_BYTES",
    "QUERY_TAG",
    "HostileRegistry",
]

HOSTILE_USER = Credentials("hostile-user", "h0stile-Secret-pw")
"""The credential the Basic and Bearer variants accept; distinct from TEST_USER so a leak is unambiguous."""
DOTDOT_TAG: Final = "../../../prod/app/manifests/latest"
QUERY_TAG: Final = "a?b=c"
BACKTRACK_TAG: Final = "1" * 126 + "x"
"""A valid tag on which a nested quantifier such as ``^(\\d+\\.?)+$`` backtracks 2^126 times in Python's ``re``."""
HOSTILE_SUBJECT: Final = "x:/../../../../prod/app/manifests/latest"
"""A ``subject.digest`` whose referrers tag, under a two-segment repository, resolves to ``prod/app:latest``."""
ESC: Final = "\x1b"
BIDI: Final = "\u202e"
ANSI_TAGS: Final = (f"{ESC}[2Jcleared", f"{BIDI}gpj.exe")
ANSI_MESSAGE: Final = f"{ESC}[31mdenied{ESC}[0m {BIDI}txt.exe"
HUGE_TAG_LIST_BYTES: Final = 100 * 1024 * 1024
TRICKLE_SECONDS: Final = 1.0
"""The pause between trickled bytes: each byte resets a per-read timeout, so only a total deadline ends it."""
SERVICE: Final = "hostile"
REFERRER_TYPE: Final = "application/vnd.fluxmirror.hostile.signature.v1"
_ROUTE = re.compile(r"^/v2/(?P<repo>.+)/(?P<kind>tags/list|manifests|blobs/uploads|blobs|referrers)(?:/(?P<ref>.*))?$")
_MAX_STALL = 600.0  # a stalling handler gives up after this long even if the client never leaves

Handler = Callable[[web.Request, re.Match[str], Tally], Awaitable[web.StreamResponse]]


def _with_subject(base: Manifest, digest: str, size: int) -> Manifest:
    """``base`` with a ``subject`` naming ``digest``: a referrer whose subject is whatever we say."""
    document = json.loads(base.raw)
    document["subject"] = {"mediaType": OCI_MANIFEST, "digest": digest, "size": size}
    raw = json.dumps(document, separators=(",", ":")).encode()
    return Manifest(Blob(OCI_MANIFEST, raw), base.config, base.layers)


def _index(*manifests: Manifest) -> bytes:
    entries = [
        {"mediaType": m.media_type, "digest": m.digest, "size": len(m.raw), "artifactType": REFERRER_TYPE}
        for m in manifests
    ]
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()


def _echo(request: web.Request) -> bytes:
    """What an over-helpful server says when it refuses: everything it was sent, secrets included."""
    lines = [f"{request.method} {request.path_qs} refused; you sent:"]
    lines += [f"{key}: {value}" for key, value in request.headers.items()]
    return "\n".join(lines).encode()


def _closing(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


def _respond(tally: Tally, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> web.Response:
    tally.status, tally.response_bytes = status, len(body)
    return web.Response(status=status, body=body, headers=dict(headers or {}))


def _json(tally: Tally, document: object, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    body = json.dumps(document).encode()
    return _respond(tally, status, body, {"Content-Type": "application/json", **(headers or {})})


def _unknown(tally: Tally, code: str = "MANIFEST_UNKNOWN", message: str = "manifest unknown") -> web.Response:
    return _json(tally, {"errors": [{"code": code, "message": message}]}, 404)


def _cut(request: web.Request) -> web.StreamResponse:
    """Drop the connection: nothing sensible can follow a stalled or half-written answer."""
    if request.transport is not None:
        request.transport.abort()
    return web.StreamResponse()


class HostileRegistry(Closing):
    """The hostile registry on ``127.0.0.1:<port>`` and its attacker on ``localhost:<port>``, until ``close``.

    ``credentials`` turns on Basic auth, or with ``bearer`` the token flow (opaque tokens issued
    by ``/token`` here, or by the attacker with ``realm_on_attacker``). ``pki`` adds the untrusted
    TLS host that ``tls/redirect`` points blob downloads at.
    """

    def __init__(
        self,
        *,
        credentials: Credentials | None = None,
        bearer: bool = False,
        realm_on_attacker: bool = False,
        pki: PKI | None = None,
    ) -> None:
        if (bearer or realm_on_attacker) and credentials is None:
            raise ValueError("bearer mode needs the credentials its token endpoint accepts")
        self.credentials = credentials
        self.bearer = bearer or realm_on_attacker
        self.realm_on_attacker = realm_on_attacker
        self.artifact = make_artifact(seed=0x4057, layer_sizes=(512,))
        self.referrer = _with_subject(
            make_artifact(seed=0x4058, artifact_type=REFERRER_TYPE, layer_sizes=(64,)),
            HOSTILE_SUBJECT,
            len(self.artifact.raw),
        )
        self._manifests = {m.digest: m.document for m in (self.artifact, self.referrer)}
        self._blobs = {b.digest: b.data for m in (self.artifact, self.referrer) for b in m.blobs}
        self._lock = threading.Lock()
        self._tokens: set[str] = set()
        self.pages_served = 0  # endless/pages
        self._recorder = Recorder()
        self._attacker = Recorder()
        self._untrusted = Recorder()
        sockets = [listen(), listen(), *([listen()] if pki is not None else [])]
        self._mute = listen()  # never accepted by anyone: the kernel completes handshakes, nothing answers
        self.mute_host = f"127.0.0.1:{self._mute.getsockname()[1]}"
        self.host = f"127.0.0.1:{sockets[0].getsockname()[1]}"
        self.url = f"http://{self.host}"
        self.attacker_host = f"localhost:{sockets[1].getsockname()[1]}"
        self.attacker_url = f"http://{self.attacker_host}"
        self.untrusted_url = f"https://localhost:{sockets[2].getsockname()[1]}" if pki is not None else None
        self._special: dict[tuple[str, str], Handler] = {
            ("lying/length", "manifests"): self._short_manifest,
            ("lying/digest", "manifests"): self._misnamed_manifest,
            ("subject/app", "referrers"): self._subject_referrers,
            ("crosslink/tags", "tags/list"): self._crosslink_tags,
            ("crosslink/referrers", "referrers"): self._crosslink_referrers,
            ("crosslink/upload", "manifests"): self._destination_manifest,
            ("crosslink/upload", "blobs"): self._missing,
            ("crosslink/upload", "blobs/uploads"): self._upload_elsewhere,
            ("otherrepo/link", "tags/list"): self._link_elsewhere,
            ("otherrepo/upload", "manifests"): self._destination_manifest,
            ("otherrepo/upload", "blobs"): self._missing,
            ("otherrepo/upload", "blobs/uploads"): self._upload_elsewhere,
            ("slow/body", "tags/list"): self._trickle_body,
            ("slow/headers", "tags/list"): self._trickle_headers,
            ("slow/silent", "tags/list"): self._silent,
            ("endless/pages", "tags/list"): self._endless_pages,
            ("huge/tags", "tags/list"): self._huge_tags,
            ("ansi/message", "tags/list"): self._ansi_error,
            ("tls/redirect", "blobs"): self._redirect_to_untrusted,
        }
        self._tag_lists: dict[str, bytes] = {
            "plain/app": b'{"name":"plain/app","tags":["1.0.0"]}',
            "lying/length": b'{"name":"lying/length","tags":["1.0.0"]}',
            "lying/digest": b'{"name":"lying/digest","tags":["1.0.0"]}',
            "dotdot/app": json.dumps({"name": "dotdot/app", "tags": ["1.0.0", DOTDOT_TAG]}).encode(),
            "query/app": json.dumps({"name": "query/app", "tags": [QUERY_TAG]}).encode(),
            "stringtags/app": b'{"name":"stringtags/app","tags":"v1"}',
            "subject/app": b'{"name":"subject/app","tags":["1.0.0"]}',
            "crosslink/referrers": b'{"name":"crosslink/referrers","tags":["1.0.0"]}',
            "badlist/notjson": b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            "badlist/array": b'["1.0.0"]',
            "badlist/nonstring": b'{"name":"badlist/nonstring","tags":[7,null,{"a":1}]}',
            "badlist/bigdigits": b'{"name":"badlist/bigdigits","tags":["' + b"1" * 5000 + b'"]}',
            "badlist/surrogate": b'{"name":"badlist/surrogate","tags":["\\ud800"]}',
            "backtrack/app": json.dumps({"name": "backtrack/app", "tags": ["1.0.0", BACKTRACK_TAG]}).encode(),
            "ansi/tags": json.dumps({"name": "ansi/tags", "tags": ["1.0.0", *ANSI_TAGS]}).encode(),
            "tls/redirect": b'{"name":"tls/redirect","tags":["1.0.0"]}',
            "otherrepo/elsewhere": b'{"name":"otherrepo/elsewhere","tags":["9.9.9-elsewhere"]}',
        }
        self._background = BackgroundLoop(f"hostile-{self.host}")
        try:
            servers: list[tuple[Recorder, Callable[[web.Request, Tally], Awaitable[web.StreamResponse]]]] = [
                (self._recorder, self._serve),
                (self._attacker, self._serve_attacker),
            ]
            for sock, (recorder, serve) in zip(sockets, servers, strict=False):
                self._background.serve(self._app(recorder, serve), sock)
            if pki is not None:
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.load_cert_chain(pki.server_cert_path, pki.server_key_path)
                self._background.serve(self._app(self._untrusted, self._serve_untrusted), sockets[2], context)
        except BaseException:
            self.close()
            raise

    # -- what the tests read ----------------------------------------------------------------------

    def ref(self, repository: str) -> str:
        """``host/repository``, as an ``artifacts[].source`` or ``destination``."""
        return f"{self.host}/{repository}"

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._recorder.requests

    @property
    def attacker_requests(self) -> list[RecordedRequest]:
        """Everything that reached the attacker; ``had_authorization`` says whether a credential came along."""
        return self._attacker.requests

    @property
    def untrusted_requests(self) -> list[RecordedRequest]:
        """Requests that got through a TLS handshake with the untrusted host (there should be none)."""
        return self._untrusted.requests

    @property
    def issued_tokens(self) -> list[str]:
        with self._lock:
            return sorted(self._tokens)

    def close(self) -> None:
        self._mute.close()
        self._background.close()

    # -- serving ----------------------------------------------------------------------------------

    @staticmethod
    def _app(
        recorder: Recorder, serve: Callable[[web.Request, Tally], Awaitable[web.StreamResponse]]
    ) -> web.Application:
        app = web.Application()

        async def handle(request: web.Request) -> web.StreamResponse:
            return await recorder.record(request, serve)

        app.router.add_route("*", "/{tail:.*}", handle)
        return app

    async def _serve(self, request: web.Request, tally: Tally) -> web.StreamResponse:
        if request.path == "/token" and self.bearer and not self.realm_on_attacker:
            return self._token(request, tally, echo_scope="echo/token")
        if request.path.startswith("/v2/") and not self._authorized(request):
            return self._challenge(request, tally)
        if request.path == "/v2/":
            return _json(tally, {})
        route = _ROUTE.match(request.path)
        if route is None:
            return _respond(tally, 404)
        repository, kind = route["repo"], route["kind"]
        if repository == "echo/app":
            return _respond(tally, 400, _echo(request), {"Content-Type": "text/plain"})
        special = self._special.get((repository, kind))
        if special is not None:
            return await special(request, route, tally)
        if kind == "tags/list":
            body = self._tag_lists.get(repository)
            if body is None:
                return _unknown(tally, "NAME_UNKNOWN", "repository name not known to registry")
            return _respond(tally, 200, body, {"Content-Type": "application/json"})
        if kind == "manifests":
            return self._manifest(request, route["ref"] or "", tally)
        if kind == "blobs":
            data = self._blobs.get(route["ref"] or "")
            if data is None:
                return _respond(tally, 404)
            body = b"" if request.method == "HEAD" else data
            headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": route["ref"] or ""}
            if request.method == "HEAD":
                tally.status = 200
                return web.Response(status=200, headers={**headers, "Content-Length": str(len(data))})
            return _respond(tally, 200, data, headers)
        if kind == "blobs/uploads" and request.method in ("PATCH", "PUT"):
            return await self._accept_upload(request, tally)
        return _respond(tally, 404)

    def _manifest(
        self, request: web.Request, reference: str, tally: Tally, *, header_digest: str | None = None
    ) -> web.Response:
        """A known manifest by digest; any tag names the artifact."""
        document = self._manifests.get(reference) if reference.startswith("sha256:") else self.artifact.document
        if document is None:
            return _unknown(tally)
        headers = {"Content-Type": document.media_type, "Docker-Content-Digest": header_digest or document.digest}
        if request.method == "HEAD":
            tally.status = 200
            return web.Response(status=200, headers={**headers, "Content-Length": str(document.size)})
        return _respond(tally, 200, document.data, headers)

    # -- auth -------------------------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        if self.credentials is None:
            return True
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if self.bearer:
            with self._lock:
                return scheme.lower() == "bearer" and value.strip() in self._tokens
        return self.credentials.matches_basic(request.headers.get("Authorization"))

    def _challenge(self, request: web.Request, tally: Tally) -> web.Response:
        if self.bearer:
            realm = (self.attacker_url if self.realm_on_attacker else self.url) + "/token"
            challenge = f'Bearer realm="{realm}",service="{SERVICE}"'
        else:
            challenge = 'Basic realm="hostile"'
        body = {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}
        return _json(tally, body, 401, {"WWW-Authenticate": challenge})

    def _token(self, request: web.Request, tally: Tally, *, echo_scope: str | None) -> web.Response:
        """The token endpoint: Basic credentials in, an opaque token out; a scope naming ``echo_scope``
        gets a 401 that echoes the request, credentials and all."""
        assert self.credentials is not None
        scopes = " ".join(request.query.getall("scope", []))
        if echo_scope is not None and f":{echo_scope}:" in scopes:
            return _respond(tally, 401, _echo(request), {"Content-Type": "text/plain"})
        if not self.credentials.matches_basic(request.headers.get("Authorization")):
            return _json(tally, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}, 401)
        token = "hostile-token-" + secrets.token_hex(16)
        with self._lock:
            self._tokens.add(token)
        return _json(tally, {"token": token, "expires_in": 300})

    # -- behaviours (see the table above) -----------------------------------------------------------

    async def _short_manifest(self, request: web.Request, route: re.Match[str], tally: Tally) -> web.StreamResponse:
        """Full Content-Length, half the bytes, then the connection closes."""
        if request.method == "HEAD":
            return self._manifest(request, route["ref"] or "", tally)
        document = self.artifact.document
        response = web.StreamResponse(
            headers={"Content-Type": document.media_type, "Docker-Content-Digest": document.digest}
        )
        response.content_length = document.size
        tally.status = 200
        await response.prepare(request)
        half = document.data[: document.size // 2]
        await response.write(half)
        tally.response_bytes = len(half)
        await asyncio.sleep(0.05)
        if request.transport is not None:
            request.transport.close()  # close, not abort: the half already written still goes out
        return response

    async def _misnamed_manifest(self, request: web.Request, route: re.Match[str], tally: Tally) -> web.StreamResponse:
        """The artifact's bytes, whatever was asked for, always named by the referrer's digest."""
        return self._manifest(request, "latest", tally, header_digest=self.referrer.digest)

    async def _subject_referrers(self, request: web.Request, route: re.Match[str], tally: Tally) -> web.StreamResponse:
        if route["ref"] != self.artifact.digest:
            return _respond(tally, 200, _index(), {"Content-Type": OCI_INDEX})
        return _respond(tally, 200, _index(self.referrer), {"Content-Type": OCI_INDEX})

    async def _crosslink_tags(self, request: web.Request, route: re.Match[str], tally: Tally) -> web.StreamResponse:
        link = f'<{self.attacker_url}/v2/crosslink/tags/tags/list?last=1.0.0&n=1000>; rel="next"'
        return _json(tally, {"name": "crosslink/tags", "tags": ["1.0.0"]}, headers={"Link": link})

    async def _crosslink_referrers(
        self, request: web.Request, route: re.Match[str], tally: Tally
    ) -> web.StreamResponse:
        link = f'<{self.attacker_url}{request.path}?page=2>; rel="next"'
        return _respond(tally, 200, _index(), {"Content-Type": OCI_INDEX, "Link": link})

    async def _destination_manifest(
        self, request: web.Request, route: re.Match[str], tally: Tally
    ) -> web.StreamResponse:
        """An empty destination: nothing to HEAD or GET; a PUT is accepted as is."""
        if request.method == "PUT":
            body = await request.read()
            return _respond(tally, 201, headers={"Docker-Content-Digest": sha256_digest(body)})
        return _unknown(tally)

    async def _missing(self, request: web.Request, route: re.Match[str], tally: Tally) -> web.StreamResponse:
        return _respond(tally, 404)

    async def _upload_elsewhere(self, request: web.Request, route: re.Match[str], tally: Tally) -> web.StreamResponse:
        """Open an upload session somewhere else: on the attacker, or inside ``prod/app`` on this host."""
        if request.method != "POST":
            return await self._accept_upload(request, tally)
        session = f"/blobs/uploads/{secrets.token_hex(8)}"
        if route["repo"] == "crosslink/upload":
            location = f"{self.attacker_url}/v2/crosslink/upload{session}"
        else:
            location = f"/v2/prod/app{session}"
        return _respond(tally, 202, headers={"Location": location, "Range": "0-0", "Docker-Upload-UUID": "hostile"})

    async def _accept_upload(self, request: web.Request, tally: Tally) -> web.StreamResponse:
        """PATCH and PUT of any upload session succeed; the bytes are read and dropped."""
        tally.request_bytes = len(await request.read())
        if request.method == "PATCH":
            return _respond(
                tally, 202, headers={"Location": request.path, "Range": f"0-{max(tally.request_bytes - 1, 0)}"}
            )
        return _respond(tally, 201, headers={"Docker-Content-Digest": request.query.get("digest", "")})

    async def _link_elsewhere(self, request: web.Request, route: re.Match[str], tally: Tally) -> web.StreamResponse:
        link = '</v2/otherrepo/elsewhere/tags/list?last=1.0.0&n=1000>; rel="next"'
        return _json(tally, {"name": "otherrepo/link", "tags": ["1.0.0"]}, headers={"Link": link})

    async def _trickle_body(self, request: web.Request, route: re.Match[str], tally: Tally) -> web.StreamResponse:
        """A valid tag list with honest headers whose body takes ten minutes to arrive."""
        body = b'{"name":"slow/body","tags":["1.0.0"]' + b" " * 600 + b"}"
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(body)
        tally.status = 200
        await response.prepare(request)
        for byte in body:
            if _closing(request):
                break
            try:
                await response.write(bytes([byte]))
            except ConnectionError:
                break
            tally.response_bytes += 1
            await asyncio.sleep(TRICKLE_SECONDS)
        return response

    async def _trickle_headers(self, request: web.Request, route: re.Match[str], tally: Tally) -> web.StreamResponse:
        """A status line and a header that never end, one byte a second, written under aiohttp's feet."""
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Trickle: "
        sent = 0
        loop = asyncio.get_running_loop()
        started = loop.time()
        while not _closing(request) and loop.time() - started < _MAX_STALL:
            assert request.transport is not None
            request.transport.write(head[sent : sent + 1] if sent < len(head) else b"z")
            sent += 1
            await asyncio.sleep(TRICKLE_SECONDS)
        tally.response_bytes = sent
        return _cut(request)

    async def _silent(self, request: web.Request, route: re.Match[str], tally: Tally) -> web.StreamResponse:
        """The request is read; the answer never comes."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while not _closing(request) and loop.time() - started < _MAX_STALL:
            await asyncio.sleep(0.1)
        return _cut(request)

    async def _endless_pages(self, request: web.Request, route: re.Match[str], tally: Tally) -> web.StreamResponse:
        """Page n holds tag ``p<n>`` and links to page n+1, each link distinct from all before."""
        last = request.query.get("last", "")
        number = int(last[1:]) + 1 if last.startswith("p") and last[1:].isdigit() else 0
        with self._lock:
            self.pages_served += 1
        link = f'</v2/endless/pages/tags/list?last=p{number}&n=1000>; rel="next"'
        return _json(tally, {"name": "endless/pages", "tags": [f"p{number}"]}, headers={"Link": link})

    async def _huge_tags(self, request: web.Request, route: re.Match[str], tally: Tally) -> web.StreamResponse:
        """``HUGE_TAG_LIST_BYTES`` of valid tag list, streamed chunked: no Content-Length to refuse early."""
        chunk = ("".join(f'"t{i:07d}",' for i in range(80_000))).encode()  # about 880 KB of distinct tags
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        tally.status = 200
        await response.prepare(request)
        try:
            await response.write(b'{"name":"huge/tags","tags":[')
            while tally.response_bytes < HUGE_TAG_LIST_BYTES and not _closing(request):
                await response.write(chunk)
                tally.response_bytes += len(chunk)
            await response.write(b'"end"]}')
            await response.write_eof()
        except ConnectionError:
            pass
        return response

    async def _ansi_error(self, request: web.Request, route: re.Match[str], tally: Tally) -> web.StreamResponse:
        return _json(tally, {"errors": [{"code": "DENIED", "message": ANSI_MESSAGE}]}, 400)

    async def _redirect_to_untrusted(
        self, request: web.Request, route: re.Match[str], tally: Tally
    ) -> web.StreamResponse:
        if self.untrusted_url is None:
            raise RuntimeError("tls/redirect needs HostileRegistry(pki=...)")
        return _respond(tally, 307, headers={"Location": f"{self.untrusted_url}{request.path}"})

    # -- the other hosts ----------------------------------------------------------------------------

    async def _serve_attacker(self, request: web.Request, tally: Tally) -> web.StreamResponse:
        """Plausible answers, so a client that leaked a credential here carries on as if nothing happened."""
        if request.path == "/token" and self.realm_on_attacker:
            return self._token(request, tally, echo_scope=None)
        await request.read()
        if request.path.endswith("/tags/list"):
            return _json(tally, {"name": "attacker", "tags": []})
        if "/referrers/" in request.path:
            return _respond(tally, 200, _index(), {"Content-Type": OCI_INDEX})
        if "/blobs/uploads/" in request.path and request.method == "PATCH":
            return _respond(tally, 202, headers={"Location": request.path, "Range": "0-0"})
        if "/blobs/uploads/" in request.path and request.method == "PUT":
            return _respond(tally, 201, headers={"Docker-Content-Digest": request.query.get("digest", "")})
        return _respond(tally, 404)

    async def _serve_untrusted(self, request: web.Request, tally: Tally) -> web.StreamResponse:
        return _respond(tally, 404)
