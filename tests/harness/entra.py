"""A fake Microsoft Entra ID, so the `azure` and `acr` providers run the real azure-identity offline.

azure-identity decides everything from the environment, which a test cannot redirect from inside
the product, so this fake serves the two paths an environment can point at loopback:

* **Managed identity** (IMDS) over plain http: ``AZURE_POD_IDENTITY_AUTHORITY_HOST`` replaces
  ``http://169.254.169.254``, and the credential asks
  ``GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=<scope minus /.default>``
  with ``Metadata: true``.
* **Workload identity** over https (azure-identity refuses an ``http`` authority): MSAL posts the
  federated token (read from ``AZURE_FEDERATED_TOKEN_FILE``) as a client assertion to
  ``POST /<tenant>/oauth2/v2.0/token``. With the authority given by ``AZURE_AUTHORITY_HOST`` MSAL
  asks nothing else (no instance or OpenID discovery); the discovery documents are served anyway,
  and recorded, in case a later MSAL asks for them.

Access tokens are ES256 JWTs from ``issuer`` (a `harness.jwtissuer.JwtIssuer`) with ``aud`` = the
resource, so the registry side of a test (the ACR fake's exchange, a bearer-validating registry)
can verify exactly what was minted. Every request is recorded, discovery and refusals included.

``environment(mode)`` gives a subprocess what it needs to reach this fake in one mode and pins the
other mode's variables so the developer's own Azure setup cannot leak in. Some variables cannot be
neutralised by a value, because azure-identity or MSAL test them with ``is not None`` / ``in
os.environ`` (an empty string would select a client-secret credential or App Service, or make
EnvironmentCredential warn about an incomplete configuration): those are ``MUST_BE_ABSENT``; the
``entra`` fixture removes them from the test process, whose environment the CLI subprocess
inherits, and ``environment`` sets only those its mode needs.
"""

from __future__ import annotations

import secrets
import shutil
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import jwt
from aiohttp import web

from harness.background import BackgroundLoop, listen
from harness.closing import Closing
from harness.jwtissuer import JwtIssuer
from harness.pki import PKI

__all__ = [
    "ACR_AUDIENCE",
    "CLIENT_ID",
    "MUST_BE_ABSENT",
    "TENANT_ID",
    "EntraID",
    "EntraRequest",
    "Mode",
    "resource_of",
]

Mode = Literal["managed", "workload"]

TENANT_ID: Final = "72f988bf-0000-4000-8000-00000000c0de"
CLIENT_ID: Final = "0f3c5e2a-1111-4222-8333-444455556666"
"""The workload identity's application (client) ID, also the managed identity's principal in tokens."""
ACR_AUDIENCE: Final = "https://containerregistry.azure.net"
"""The resource an ACR exchange accepts tokens for (scope ``<this>/.default``)."""
TOKEN_LIFETIME: Final = 3600.0
IMDS_PATH: Final = "/metadata/identity/oauth2/token"
NO_IDENTITY_PREFIX: Final = "/no-identity"
"""In workload mode IMDS is pinned under this prefix, where it answers like a VM without an identity."""
CLIENT_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

MUST_BE_ABSENT: Final = (
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZUREPS_HOST_ENVIRONMENT",
)
"""Variables azure-identity or MSAL act on when merely present (``is not None``, ``in os.environ``):
an empty value is no neutral setting for them, so they must be absent from a subprocess's
environment (the ``entra`` fixture deletes them from the test process). Workload mode sets the
first three."""

_BLANKED: Final = (
    "AZURE_TOKEN_CREDENTIALS",
    "AZURE_REGIONAL_AUTHORITY_NAME",
    "AZURE_IDENTITY_DISABLE_MULTITENANTAUTH",
    "AZURE_KUBERNETES_TOKEN_PROXY",
    "AZURE_KUBERNETES_SNI_NAME",
    "AZURE_KUBERNETES_CA_FILE",
    "AZURE_KUBERNETES_CA_DATA",
    "REGION_NAME",
)
"""Variables read by truthiness only: an empty value neutralises them."""


def resource_of(scope: str) -> str:
    """The v1 resource of a v2 scope, as azure-identity derives it: ``<resource>/.default`` -> ``<resource>``."""
    return scope.removesuffix("/.default")


@dataclass(frozen=True)
class EntraRequest:
    """One request the fake answered.

    ``mode`` is ``managed`` (IMDS), ``workload`` (the v2 token endpoint) or ``discovery``;
    ``resource`` is the IMDS ``resource`` or the token endpoint's ``scope`` minus ``/.default``;
    ``assertion`` is the federated token a workload request carried; ``token`` what was issued
    (None when refused, then ``status`` says how).
    """

    mode: Literal["managed", "workload", "discovery"]
    method: str
    path: str
    resource: str | None
    client_id: str | None
    assertion: str | None
    status: int
    token: str | None


class EntraID(Closing):
    """Entra ID on two loopback listeners: IMDS on http, the tenant's v2 endpoints on https.

    Knobs (plain attributes): ``lifetime`` (seconds an access token is valid, default 3600),
    ``refuse`` (answer every token request as Entra does for a missing identity or a rejected
    assertion). ``federated_token`` is the JWT written to the federated token file; an assertion
    must equal it.
    """

    def __init__(
        self,
        pki: PKI,
        directory: Path | None = None,
        *,
        tenant_id: str = TENANT_ID,
        client_id: str = CLIENT_ID,
        issuer: JwtIssuer | None = None,
    ) -> None:
        self.pki = pki
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.issuer = issuer or JwtIssuer(f"https://sts.windows.net/{tenant_id}/")
        self.lifetime = TOKEN_LIFETIME
        self.refuse = False
        self._owned_dir = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="entra-")) if directory is None else directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_dir = self.directory / "azure-config"
        self.config_dir.mkdir(exist_ok=True)
        self.federated_token_file = self.directory / "federated-token"
        self._federation = JwtIssuer("https://kubernetes.default.svc.cluster.local")
        self.federated_token = self._write_federated_token()
        self._lock = threading.Lock()
        self._requests: list[EntraRequest] = []

        http_sock, https_sock = listen(), listen()
        self.http_port: int = http_sock.getsockname()[1]
        self.https_port: int = https_sock.getsockname()[1]
        self.imds_url = f"http://127.0.0.1:{self.http_port}"
        self.authority_url = f"https://localhost:{self.https_port}"
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.server_cert_path, pki.server_key_path)
        self._background = BackgroundLoop(f"entra-{self.https_port}")
        try:
            self._background.serve(self._imds_app(), http_sock)
            self._background.serve(self._login_app(), https_sock, context)
        except BaseException:
            http_sock.close()
            https_sock.close()
            self._background.close()
            raise

    # -- what a test reads and sets -----------------------------------------------------------------

    @property
    def requests(self) -> list[EntraRequest]:
        with self._lock:
            return list(self._requests)

    def token_requests(self, mode: Mode | None = None) -> list[EntraRequest]:
        """Token requests (no discovery), of one mode if given."""
        return [r for r in self.requests if r.mode != "discovery" and (mode is None or r.mode == mode)]

    @property
    def issued(self) -> list[str]:
        """Every access token issued, in order."""
        return [r.token for r in self.requests if r.token is not None]

    def reset(self) -> None:
        """Forget requests and mints, restore the knobs, and write a fresh federated token."""
        with self._lock:
            self._requests.clear()
        self.issuer.reset()
        self.lifetime = TOKEN_LIFETIME
        self.refuse = False
        self.federated_token = self._write_federated_token()

    def environment(self, mode: Mode = "managed") -> dict[str, str]:
        """The variables a subprocess needs to get tokens from this fake in ``mode``.

        Both modes pin both endpoints here: ``AZURE_AUTHORITY_HOST`` is this fake's https
        authority, and ``AZURE_POD_IDENTITY_AUTHORITY_HOST`` its IMDS — in workload mode under a
        prefix that answers "no identity" (400, which azure-identity reports as unavailable
        without retrying), so a real IMDS is never probed. The Azure CLI and azd see an empty
        config directory, proxies are bypassed for loopback, and the test CA is trusted by
        requests (``REQUESTS_CA_BUNDLE``) and OpenSSL (``SSL_CERT_FILE``). ``MUST_BE_ABSENT``
        variables are not here (but for the three workload mode sets): they must be missing from
        the base environment.
        """
        ca = str(self.pki.ca_path)
        env = {name: "" for name in _BLANKED} | {
            "AZURE_CONFIG_DIR": str(self.config_dir),
            "AZD_CONFIG_DIR": str(self.config_dir),
            "AZURE_AUTHORITY_HOST": self.authority_url,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "REQUESTS_CA_BUNDLE": ca,
            "SSL_CERT_FILE": ca,
        }
        if mode == "managed":
            return env | {"AZURE_POD_IDENTITY_AUTHORITY_HOST": self.imds_url}
        return env | {
            "AZURE_POD_IDENTITY_AUTHORITY_HOST": self.imds_url + NO_IDENTITY_PREFIX,
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_CLIENT_ID": self.client_id,
            "AZURE_FEDERATED_TOKEN_FILE": str(self.federated_token_file),
        }

    def close(self) -> None:
        self._background.close()
        if self._owned_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    # -- internals ----------------------------------------------------------------------------------

    def _write_federated_token(self) -> str:
        """A projected service-account token, as the AKS webhook writes it (Entra only compares it here)."""
        token = self._federation.mint(
            subject="system:serviceaccount:flux-system:flux-mirror",
            audience="api://AzureADTokenExchange",
            lifetime=3600,
        )
        self.federated_token_file.write_text(token)
        return token

    def _record(self, entry: EntraRequest) -> None:
        with self._lock:
            self._requests.append(entry)

    def _mint(self, resource: str) -> str:
        return self.issuer.mint(
            subject=self.client_id,
            audience=resource,
            lifetime=self.lifetime,
            tid=self.tenant_id,
            appid=self.client_id,
            oid=self.client_id,
            ver="1.0",
        )

    def _imds_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(IMDS_PATH, self._imds)
        app.router.add_get(NO_IDENTITY_PREFIX + IMDS_PATH, self._imds_without_identity)
        return app

    def _login_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self._openid_configuration)
        app.router.add_get("/common/discovery/instance", self._instance_discovery)
        return app

    async def _imds(self, request: web.Request) -> web.Response:
        resource = request.query.get("resource")
        client_id = request.query.get("client_id")

        def refuse(status: int, error: str, description: str) -> web.Response:
            self._record(
                EntraRequest("managed", request.method, request.path_qs, resource, client_id, None, status, None)
            )
            return web.json_response({"error": error, "error_description": description}, status=status)

        if request.headers.get("Metadata") != "true":
            return refuse(400, "invalid_request", "Required metadata header not specified")
        if request.query.get("api-version") != "2018-02-01" or not resource:
            return refuse(400, "invalid_request", "api-version 2018-02-01 and a resource are required")
        if self.refuse:
            return refuse(400, "invalid_request", "Identity not found")
        token = self._mint(resource)
        now = int(time.time())
        self._record(EntraRequest("managed", request.method, request.path_qs, resource, client_id, None, 200, token))
        # IMDS sends every number as a string; azure-identity/MSAL read expires_in (int() of it).
        return web.json_response(
            {
                "access_token": token,
                "client_id": client_id or self.client_id,
                "expires_in": str(int(self.lifetime)),
                "expires_on": str(now + int(self.lifetime)),
                "ext_expires_in": str(int(self.lifetime)),
                "not_before": str(now),
                "resource": resource,
                "token_type": "Bearer",
            }
        )

    async def _imds_without_identity(self, request: web.Request) -> web.Response:
        resource, client_id = request.query.get("resource"), request.query.get("client_id")
        self._record(EntraRequest("managed", request.method, request.path_qs, resource, client_id, None, 400, None))
        return web.json_response({"error": "invalid_request", "error_description": "Identity not found"}, status=400)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        field = {key: value for key, value in form.items() if isinstance(value, str)}
        scope = field.get("scope", "")
        resources = [resource_of(s) for s in scope.split() if s not in ("openid", "profile", "offline_access")]
        resource = resources[0] if resources else None
        client_id, assertion = field.get("client_id"), field.get("client_assertion")

        def answer(status: int, body: dict[str, object], token: str | None = None) -> web.Response:
            self._record(
                EntraRequest("workload", request.method, request.path_qs, resource, client_id, assertion, status, token)
            )
            return web.json_response(body, status=status)

        def aad_error(status: int, error: str, code: int, description: str) -> web.Response:
            return answer(
                status,
                {
                    "error": error,
                    "error_description": f"AADSTS{code}: {description}",
                    "error_codes": [code],
                    "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
                    "trace_id": secrets.token_hex(16),
                    "correlation_id": secrets.token_hex(16),
                },
            )

        if request.match_info["tenant"] != self.tenant_id:
            return aad_error(400, "invalid_request", 90002, f"Tenant '{request.match_info['tenant']}' not found.")
        if field.get("grant_type") != "client_credentials" or resource is None:
            return aad_error(400, "invalid_request", 900144, "grant_type client_credentials and a scope are required.")
        if client_id != self.client_id:
            return aad_error(400, "unauthorized_client", 700016, f"Application '{client_id}' was not found.")
        if field.get("client_assertion_type") != CLIENT_ASSERTION_TYPE or assertion is None:
            return aad_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        if self.refuse or not secrets.compare_digest(assertion, self.federated_token):
            return aad_error(
                401, "invalid_client", 700211, "No matching federated identity record found for presented assertion."
            )
        token = self._mint(resource)
        expires = int(self.lifetime)
        return answer(
            200,
            {"token_type": "Bearer", "expires_in": expires, "ext_expires_in": expires, "access_token": token},
            token,
        )

    async def _openid_configuration(self, request: web.Request) -> web.Response:
        self._record(EntraRequest("discovery", request.method, request.path_qs, None, None, None, 200, None))
        base = f"{self.authority_url}/{request.match_info['tenant']}"
        return web.json_response(
            {
                "issuer": f"{base}/v2.0",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
            }
        )

    async def _instance_discovery(self, request: web.Request) -> web.Response:
        self._record(EntraRequest("discovery", request.method, request.path_qs, None, None, None, 200, None))
        host = f"localhost:{self.https_port}"
        return web.json_response(
            {
                "tenant_discovery_endpoint": f"{self.authority_url}/{self.tenant_id}/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
            }
        )

    def claims(self, token: str) -> dict[str, object]:
        """The claims of an access token this fake issued (any audience); raises if it did not issue it."""
        decoded: dict[str, object] = jwt.decode(
            token, self.issuer.key.public_key(), algorithms=["ES256"], options={"verify_aud": False}
        )
        return decoded
