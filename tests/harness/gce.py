"""A Compute Engine metadata server on loopback, for the `gcp` credential provider and `gar` hosts.

google-auth finds Application Default Credentials on a GCE VM by pinging the metadata server, then
asks it for ID tokens (``…/identity?audience=…``) and OAuth access tokens (``…/token``). It reads
the server's address from ``GCE_METADATA_HOST`` / ``GCE_METADATA_IP`` once, at import, so only a
subprocess started with ``environment()`` can be pointed here — which is how the CLI runs in tests
anyway. ``environment()`` also shuts out every other ADC source on the developer's machine (a key
file, gcloud's own configuration), so a pass proves the token came from here.

ID tokens are minted by a shared ``JwtIssuer`` (so a registry-side check can verify them for the
audience); access tokens are opaque random strings, each recorded, so a registry-side check can tell
"this password is an access token the metadata server issued". The real server refuses requests
without ``Metadata-Flavor: Google`` (403) and answers with that header; so does this one.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from harness.background import BackgroundLoop, listen
from harness.jwtissuer import JwtIssuer

__all__ = [
    "DEFAULT_ACCESS_EXPIRES_IN",
    "DEFAULT_ID_LIFETIME",
    "EMAIL",
    "ISSUER",
    "PROJECT_ID",
    "AccessToken",
    "GCEMetadata",
    "MetadataRequest",
]

ISSUER = "https://accounts.google.com"
EMAIL = "mirror@example-project.iam.gserviceaccount.com"
PROJECT_ID = "example-project"
DEFAULT_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
DEFAULT_ID_LIFETIME = 3600.0
DEFAULT_ACCESS_EXPIRES_IN = 3599
_FLAVOR = {"Metadata-Flavor": "Google"}
_ACCOUNT = "/computeMetadata/v1/instance/service-accounts/{account}/"


@dataclass(frozen=True)
class MetadataRequest:
    """One request as the server saw it, with its answer's status."""

    method: str
    path: str
    query: dict[str, str]  # last value of each parameter
    flavor: str | None  # the Metadata-Flavor header
    status: int


@dataclass(frozen=True)
class AccessToken:
    """One OAuth access token as issued."""

    token: str
    expires_in: int
    scopes: tuple[str, ...]  # as asked for (``scopes=a,b``); empty when the client named none


class GCEMetadata:
    """The metadata server on ``127.0.0.1:<free port>`` until ``close``.

    Knobs (``reset`` restores them): ``id_lifetime`` (seconds an ID token lives),
    ``access_expires_in`` (the ``expires_in`` of access tokens), ``email``, ``scopes`` (what the
    service-account document lists).
    """

    def __init__(self, issuer: JwtIssuer) -> None:
        if issuer.issuer != ISSUER:
            raise ValueError(f"metadata-server ID tokens are issued by {ISSUER!r}, not {issuer.issuer!r}")
        self.issuer = issuer
        self.id_lifetime = DEFAULT_ID_LIFETIME
        self.access_expires_in = DEFAULT_ACCESS_EXPIRES_IN
        self.email = EMAIL
        self.scopes: tuple[str, ...] = DEFAULT_SCOPES
        self._lock = threading.Lock()
        self._requests: list[MetadataRequest] = []
        self._access_tokens: list[AccessToken] = []
        # gcloud's configuration directory for subprocesses: empty, so no gcloud login is found.
        self.cloudsdk_config = tempfile.mkdtemp(prefix="fake-gcloud-config-")
        sock = listen()
        self.port: int = sock.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self._background = BackgroundLoop(f"gce-metadata-{self.port}")
        app = web.Application(middlewares=[self._flavor])
        app.router.add_get("/", self._ping)
        for account in ("default", "{email}"):
            base = _ACCOUNT.format(account=account)
            app.router.add_route("*", base + "identity", self._identity)
            app.router.add_route("*", base + "token", self._token)
            app.router.add_get(base, self._account)
        app.router.add_get("/computeMetadata/v1/project/project-id", self._project)
        app.router.add_get("/computeMetadata/v1/universe/universe-domain", self._universe)
        try:
            self._background.serve(app, sock)
        except BaseException:
            self._background.close()
            raise

    def environment(self) -> dict[str, str]:
        """Point google-auth here and away from every other source of Application Default Credentials."""
        return {
            "GCE_METADATA_HOST": self.host,
            "GCE_METADATA_IP": self.host,
            "GCE_METADATA_ROOT": "",
            "GCE_METADATA_MTLS_MODE": "none",
            "NO_GCE_CHECK": "false",
            "GOOGLE_APPLICATION_CREDENTIALS": "",  # google-auth treats an empty value as unset
            "GOOGLE_API_CERTIFICATE_CONFIG": "",
            "CLOUDSDK_CONFIG": self.cloudsdk_config,
            "NO_PROXY": "127.0.0.1,localhost",
        }

    # -- records ---------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[MetadataRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def access_tokens(self) -> list[AccessToken]:
        """Every access token issued, in order."""
        with self._lock:
            return list(self._access_tokens)

    def issued_access_token(self, token: str) -> bool:
        """Whether ``token`` is an access token this server handed out."""
        return any(secrets.compare_digest(token, issued.token) for issued in self.access_tokens)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._access_tokens.clear()
        self.id_lifetime = DEFAULT_ID_LIFETIME
        self.access_expires_in = DEFAULT_ACCESS_EXPIRES_IN
        self.email = EMAIL
        self.scopes = DEFAULT_SCOPES

    def close(self) -> None:
        self._background.close()
        shutil.rmtree(self.cloudsdk_config, ignore_errors=True)

    # -- serving ---------------------------------------------------------------------------------------

    @web.middleware
    async def _flavor(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        flavor = request.headers.get("Metadata-Flavor")
        account = request.match_info.get("email")
        if flavor != "Google":
            response: web.StreamResponse = web.Response(
                status=403, text="Missing required header: Metadata-Flavor: Google"
            )
        elif account is not None and account != self.email:
            response = web.Response(status=404, text="no such service account")
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = exc
        response.headers.update(_FLAVOR)
        record = MetadataRequest(request.method, request.path, dict(request.query), flavor, response.status)
        with self._lock:
            self._requests.append(record)
        return response

    async def _ping(self, request: web.Request) -> web.Response:
        return web.Response(text="")

    async def _identity(self, request: web.Request) -> web.Response:
        audience = request.query.get("audience")
        if not audience:
            return web.Response(status=400, text="non-empty audience parameter required")
        claims: dict[str, object] = {"azp": self.email}
        if request.query.get("format") == "full":
            claims |= {"email": self.email, "email_verified": True}
        token = self.issuer.mint(subject=_subject(self.email), audience=audience, lifetime=self.id_lifetime, **claims)
        return web.Response(text=token, content_type="text/plain")

    async def _token(self, request: web.Request) -> web.Response:
        scopes = tuple(scope for scope in request.query.get("scopes", "").split(",") if scope)
        issued = AccessToken("ya29.fake-" + secrets.token_urlsafe(32), self.access_expires_in, scopes)
        with self._lock:
            self._access_tokens.append(issued)
        return web.json_response(
            {"access_token": issued.token, "expires_in": issued.expires_in, "token_type": "Bearer"}
        )

    async def _account(self, request: web.Request) -> web.Response:
        return web.json_response({"aliases": ["default"], "email": self.email, "scopes": list(self.scopes)})

    async def _project(self, request: web.Request) -> web.Response:
        return web.Response(text=PROJECT_ID, content_type="text/plain")

    async def _universe(self, request: web.Request) -> web.Response:
        return web.Response(text="googleapis.com", content_type="text/plain")


def _subject(email: str) -> str:
    """A stable numeric subject per service account, as Google's tokens carry."""
    return str(int.from_bytes(email.encode()[:8].ljust(8, b"\0"), "big"))
