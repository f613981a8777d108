"""Google's STS and IAM Credentials on loopback, for `gcp` ID tokens from workload identity federation.

A federation file (``type: external_account``, what google-github-actions/auth writes) holds no
secret: google-auth reads a subject token (here a file), exchanges it at STS (``token_url``) for a
federated access token, and the product asks IAM Credentials ``generateIdToken`` for the service
account the file impersonates, with that federated token as Bearer. google-auth builds the IAM
Credentials URL itself (``https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/
<email>:generateIdToken``) and no variable moves it, so this fake serves both APIs over TLS with the
test PKI's server certificate (which names ``sts.googleapis.com`` and
``iamcredentials.googleapis.com``), behind its own ``harness.forwardproxy.ForwardProxy`` that routes
those two names here. ``environment()`` gives a subprocess that proxy, the test CA, the federation
file and no other source of Application Default Credentials (GCE metadata at a refusing port, an
empty gcloud configuration), so a pass proves the token came through the exchange.

Each API checks what the real one would and refuses otherwise: STS the RFC 8693 grant, the subject
token written to the file and the pool provider's audience; IAM Credentials a Bearer token STS
issued, the service account and a non-empty audience. ID tokens are minted by a shared
``JwtIssuer`` for the requested audience, so the registry side can verify them. Every request is
recorded, refused and unknown ones (404) included, with the host it was sent to.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from harness.background import BackgroundLoop, listen
from harness.forwardproxy import ForwardProxy
from harness.jwtissuer import JwtIssuer
from harness.pki import IAM_CREDENTIALS_NAME, PKI, STS_NAME

__all__ = [
    "AUDIENCE",
    "EMAIL",
    "GRANT_TYPE",
    "ID_TOKEN_PATH",
    "TOKEN_PATH",
    "GoogleFederation",
    "GoogleRequest",
]

EMAIL: Final = "mirror@example-project.iam.gserviceaccount.com"
AUDIENCE: Final = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/p/providers/x"
GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TOKEN_TYPE: Final = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TOKEN_TYPE: Final = "urn:ietf:params:oauth:token-type:access_token"
TOKEN_PATH: Final = "/v1/token"
ID_TOKEN_PATH: Final = "/v1/projects/-/serviceAccounts/{email}:generateIdToken"
DEFAULT_ID_LIFETIME: Final = 3600.0
ACCESS_EXPIRES_IN: Final = 3600
_HTTPS_PORT: Final = 443
_SUBJECT: Final = "107356798420133960871"  # the service account's unique (numeric) ID, as Google's `sub`
_SUBJECT_ISSUER: Final = "https://token.actions.githubusercontent.com"
_IMPERSONATION_URL: Final = (
    "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{email}:generateAccessToken"
)


@dataclass(frozen=True)
class GoogleRequest:
    """One request as the fake saw it: ``host`` is its Host header without the port, ``body`` the
    decoded form (STS) or JSON object (IAM Credentials), ``status`` the answer's."""

    host: str
    method: str
    path: str
    authorization: str | None
    body: dict[str, Any]
    status: int


class GoogleFederation:
    """STS and IAM Credentials over TLS on ``127.0.0.1:<free port>``, and a proxy to them, until ``close``.

    Knobs (``reset`` restores them): ``id_lifetime`` (seconds an ID token lives), ``email`` (the
    service account IAM Credentials knows). ``subject_token`` is what ``write_credentials`` puts in
    the subject token file, and what STS accepts.
    """

    def __init__(self, pki: PKI, issuer: JwtIssuer) -> None:
        self.issuer = issuer
        self.id_lifetime = DEFAULT_ID_LIFETIME
        self.email = EMAIL
        self._subject_issuer = JwtIssuer(_SUBJECT_ISSUER)
        self.subject_token = self._new_subject_token()
        self._lock = threading.Lock()
        self._requests: list[GoogleRequest] = []
        self._access_tokens: list[str] = []
        self._directory = tempfile.mkdtemp(prefix="fake-google-federation-")
        self.cloudsdk_config = str(Path(self._directory) / "gcloud")
        Path(self.cloudsdk_config).mkdir()
        self.ca_path = str(pki.ca_path)
        # Bound but never listening, for GCE_METADATA_HOST: the metadata server is refused at once.
        self._refusing = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._refusing.bind(("127.0.0.1", 0))
        sock = listen()
        self.port: int = sock.getsockname()[1]
        self._background = BackgroundLoop(f"google-federation-{self.port}")
        self.proxy: ForwardProxy | None = None
        app = web.Application()
        app.router.add_post(TOKEN_PATH, self._token)
        app.router.add_post("/v1/projects/-/serviceAccounts/{target}", self._generate_id_token)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.server_cert_path, pki.server_key_path)
        try:
            self._background.serve(app, sock, context)
            self.proxy = ForwardProxy(
                {f"{name}:{_HTTPS_PORT}": ("127.0.0.1", self.port) for name in (STS_NAME, IAM_CREDENTIALS_NAME)}
            )
        except BaseException:
            self.close()
            raise

    # -- for clients -----------------------------------------------------------------------------------

    def write_credentials(self, directory: Path, *, impersonate: bool = True) -> Path:
        """A federation file as google-github-actions/auth writes it, and its subject token file, in
        ``directory``; without ``impersonate`` it names no service account."""
        subject = directory / "github-oidc-token"
        subject.write_text(self.subject_token, encoding="ascii")
        info: dict[str, Any] = {
            "type": "external_account",
            "audience": AUDIENCE,
            "subject_token_type": JWT_TOKEN_TYPE,
            "token_url": f"https://{STS_NAME}{TOKEN_PATH}",
            "credential_source": {"file": str(subject)},
        }
        if impersonate:
            info["service_account_impersonation_url"] = _IMPERSONATION_URL.format(email=self.email)
        path = directory / "gha-creds.json"
        path.write_text(json.dumps(info, indent=2), encoding="utf-8")
        return path

    def environment(self, credentials: Path) -> dict[str, str]:
        """ADC from ``credentials`` only, Google's APIs through the proxy, the test CA trusted.

        Both spellings of each proxy variable, as in ``CloudRegistry.environment``."""
        assert self.proxy is not None
        refused = f"127.0.0.1:{self._refusing.getsockname()[1]}"
        loopback = "127.0.0.1,localhost"
        return {
            "GOOGLE_APPLICATION_CREDENTIALS": str(credentials),
            "GCE_METADATA_HOST": refused,
            "GCE_METADATA_IP": refused,
            "GCE_METADATA_ROOT": "",
            "GCE_METADATA_MTLS_MODE": "none",
            "NO_GCE_CHECK": "false",
            "GOOGLE_API_CERTIFICATE_CONFIG": "",
            "GOOGLE_API_USE_CLIENT_CERTIFICATE": "false",
            "GOOGLE_SDK_EXPERIMENTAL_PYTHON_REGIONAL_ACCESS_BOUNDARY_LOOKUP_ENABLED": "",
            "CLOUDSDK_CONFIG": self.cloudsdk_config,
            "HTTPS_PROXY": self.proxy.url(),
            "https_proxy": self.proxy.url(),
            "NO_PROXY": loopback,
            "no_proxy": loopback,
            "REQUESTS_CA_BUNDLE": self.ca_path,
            "SSL_CERT_FILE": self.ca_path,
        }

    # -- records ---------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[GoogleRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def exchanges(self) -> list[GoogleRequest]:
        """The STS token exchanges, refused ones included."""
        return [r for r in self.requests if r.path == TOKEN_PATH]

    @property
    def id_token_requests(self) -> list[GoogleRequest]:
        """The generateIdToken requests, refused ones included."""
        return [r for r in self.requests if r.path.endswith(":generateIdToken")]

    @property
    def access_tokens(self) -> list[str]:
        """Every federated access token STS issued, in order."""
        with self._lock:
            return list(self._access_tokens)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._access_tokens.clear()
        self.id_lifetime = DEFAULT_ID_LIFETIME
        self.email = EMAIL
        self.subject_token = self._new_subject_token()
        if self.proxy is not None:
            self.proxy.clear_requests()

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.close()
        self._background.close()
        self._refusing.close()
        shutil.rmtree(self._directory, ignore_errors=True)

    # -- serving ---------------------------------------------------------------------------------------

    def _new_subject_token(self) -> str:
        return self._subject_issuer.mint(
            subject="repo:example/mirror:ref:refs/heads/main", audience=f"https:{AUDIENCE}", lifetime=600
        )

    def _record(self, request: web.Request, body: dict[str, Any], response: web.Response) -> web.Response:
        record = GoogleRequest(
            _hostname(request),
            request.method,
            request.path,
            request.headers.get("Authorization"),
            body,
            response.status,
        )
        with self._lock:
            self._requests.append(record)
        return response

    async def _token(self, request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        problem = None
        if _hostname(request) != STS_NAME:
            problem = f"this is {STS_NAME}, not {request.host}"
        elif form.get("grant_type") != GRANT_TYPE:
            problem = f"unsupported grant_type {form.get('grant_type')!r}"
        elif form.get("subject_token_type") != JWT_TOKEN_TYPE:
            problem = f"unsupported subject_token_type {form.get('subject_token_type')!r}"
        elif form.get("requested_token_type", ACCESS_TOKEN_TYPE) != ACCESS_TOKEN_TYPE:
            problem = f"unsupported requested_token_type {form.get('requested_token_type')!r}"
        elif form.get("audience") != AUDIENCE:
            problem = f"invalid audience {form.get('audience')!r}"
        elif not secrets.compare_digest(form.get("subject_token", ""), self.subject_token):
            problem = "the subject token is not the one the provider issued"
        if problem is not None:
            error = {"error": "invalid_grant", "error_description": problem}
            return self._record(request, form, web.json_response(error, status=400))
        token = "ya29.federated-" + secrets.token_urlsafe(32)
        with self._lock:
            self._access_tokens.append(token)
        answer = {
            "access_token": token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": ACCESS_EXPIRES_IN,
        }
        return self._record(request, form, web.json_response(answer))

    async def _generate_id_token(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self._record(request, {}, _google_error(400, "INVALID_ARGUMENT", "the body is not a JSON object"))
        account, _, method = request.match_info["target"].partition(":")
        bearer = request.headers.get("Authorization", "")
        token = bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else ""
        if _hostname(request) != IAM_CREDENTIALS_NAME or method != "generateIdToken":
            response = _google_error(404, "NOT_FOUND", f"no such method on {request.host}")
        elif not token or not any(secrets.compare_digest(token, issued) for issued in self.access_tokens):
            response = _google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        elif account != self.email:
            response = _google_error(
                403, "PERMISSION_DENIED", f"Permission 'iam.serviceAccounts.getOpenIdToken' denied on {account}"
            )
        elif not isinstance(body.get("audience"), str) or not body["audience"]:
            response = _google_error(400, "INVALID_ARGUMENT", "audience is required")
        else:
            claims: dict[str, object] = {"azp": self.email}
            if body.get("includeEmail") is True:
                claims |= {"email": self.email, "email_verified": True}
            minted = self.issuer.mint(subject=_SUBJECT, audience=body["audience"], lifetime=self.id_lifetime, **claims)
            response = web.json_response({"token": minted})
        return self._record(request, body, response)

    async def _unknown(self, request: web.Request) -> web.Response:
        await request.read()
        return self._record(request, {}, _google_error(404, "NOT_FOUND", f"{request.method} {request.path}"))


def _google_error(code: int, status: str, message: str) -> web.Response:
    """An error in the shape Google's JSON APIs answer (google-auth quotes it in its exception)."""
    return web.json_response({"error": {"code": code, "message": message, "status": status}}, status=code)


def _hostname(request: web.Request) -> str:
    """The Host header without a port (``sts.googleapis.com:443`` is ``sts.googleapis.com``)."""
    host = request.host or ""
    name, _, port = host.rpartition(":")
    return name if name and port.isdigit() else host
