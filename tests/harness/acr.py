"""An Azure Container Registry stand-in, reached as ``mirror.azurecr.io`` through a forward proxy.

The `acr` provider accepts only ``*.azurecr.io``-shaped hosts and speaks https on port 443, so the
in-memory registry (`registry.server`) is served over TLS with the test PKI's server certificate
(which names ``ACR_NAME``) and exposed by a `harness.forwardproxy.ForwardProxy` route
``mirror.azurecr.io:443 -> 127.0.0.1:<port>``. What ACR adds to a plain token-auth registry:

* ``POST /oauth2/exchange?api-version=…`` with form ``grant_type=access_token``, ``service=<host>``
  and ``access_token=<Entra token>``: the token must verify with the Entra fake's issuer for the
  audience ``https://containerregistry.azure.net`` (else 401 and a JSON error); the answer is
  ``{"refresh_token": <JWT>}`` minted by this registry's own issuer, valid ``refresh_lifetime``
  seconds (a knob, default 3 h like ACR's).
* the token endpoint (``/oauth2/token``, ACR's realm) takes Basic
  ``00000000-0000-0000-0000-000000000000:<refresh token>`` and accepts it only if this registry's
  exchange issued the refresh token and it has not expired.

Every exchange and every token-endpoint login is recorded with what it carried, so a test can show
that the Entra token minted for the CLI became the refresh token that reached the token endpoint.
"""

from __future__ import annotations

import dataclasses
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import jwt
from aiohttp import web
from registry.auth import RegistryAuth
from registry.server import OCIRegistry

from harness.closing import Closing
from harness.entra import ACR_AUDIENCE
from harness.forwardproxy import ForwardProxy, proxy_environment
from harness.jwtissuer import JwtIssuer
from harness.pki import ACR_NAME, PKI
from harness.registry import Registry

__all__ = ["ACR_USERNAME", "AcrExchange", "AcrLogin", "AcrRegistry"]

ACR_USERNAME: Final = "00000000-0000-0000-0000-000000000000"
"""The username ACR expects with a refresh token as the password."""
REFRESH_LIFETIME: Final = 3 * 3600.0
EXCHANGE_PATH: Final = "/oauth2/exchange"
TOKEN_PATH: Final = "/oauth2/token"


@dataclass(frozen=True)
class AcrExchange:
    """One ``POST /oauth2/exchange``: what it carried and the refresh token issued (None: refused)."""

    api_version: str | None
    grant_type: str | None
    service: str | None
    access_token: str | None
    status: int
    refresh_token: str | None


@dataclass(frozen=True)
class AcrLogin:
    """One Basic login at the token endpoint and whether it was accepted."""

    username: str
    refresh_token: str
    accepted: bool


class AcrRegistry(Closing):
    """The registry on a TLS loopback port plus its proxy route as ``name:443``.

    ``registry`` is the description for configs and proxied clients (host ``mirror.azurecr.io``);
    ``direct`` reaches the loopback port itself, for seeding content. Knobs: ``refresh_lifetime``
    (seconds, default 3 h), ``refuse_exchange`` (answer every exchange 401). ``proxy`` is the
    given forward proxy, or one this registry owns and closes.
    """

    def __init__(
        self,
        pki: PKI,
        entra_issuer: JwtIssuer,
        directory: Path | None = None,
        *,
        name: str = ACR_NAME,
        proxy: ForwardProxy | None = None,
    ) -> None:
        self.pki = pki
        self.name = name
        self.entra_issuer = entra_issuer
        self.issuer = JwtIssuer(f"https://{name}")
        self.refresh_lifetime = REFRESH_LIFETIME
        self.refuse_exchange = False
        self._lock = threading.Lock()
        self._exchanges: list[AcrExchange] = []
        self._logins: list[AcrLogin] = []
        self.auth = RegistryAuth.token(verify=self._verify_login, service=name, token_path=TOKEN_PATH)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.server_cert_path, pki.server_key_path)
        self.server = OCIRegistry(
            directory,
            auth=self.auth,
            ssl_context=context,
            ca_path=pki.ca_path,
            endpoints={EXCHANGE_PATH: self._exchange},
        )
        self.direct: Registry = self.server.registry
        self._owns_proxy = proxy is None
        try:
            self.proxy = proxy or ForwardProxy()
        except BaseException:
            self.server.close()
            raise
        self.proxy.route(name, 443, ("127.0.0.1", self.server.port))
        self.registry: Registry = dataclasses.replace(self.direct, host=name, url=f"https://{name}")

    # -- what a test reads and sets -----------------------------------------------------------------

    @property
    def exchanges(self) -> list[AcrExchange]:
        with self._lock:
            return list(self._exchanges)

    @property
    def logins(self) -> list[AcrLogin]:
        """Every Basic login at the token endpoint (``auth.grants`` has the scopes it was granted)."""
        with self._lock:
            return list(self._logins)

    def environment(self) -> dict[str, str]:
        """Proxy every https request through ``proxy`` except loopback, and trust the test CA.

        Every other proxy variable is blanked (Go and Python treat an empty one as unset), both
        spellings are set because urllib (aiohttp, requests) prefers the lower-case one.
        """
        ca = str(self.pki.ca_path)
        url = self.proxy.url()
        no_proxy = "127.0.0.1,localhost"
        return proxy_environment(HTTPS_PROXY=url, https_proxy=url, NO_PROXY=no_proxy, no_proxy=no_proxy) | {
            "SSL_CERT_FILE": ca,
            "REQUESTS_CA_BUNDLE": ca,
        }

    def reset(self) -> None:
        """Forget requests, exchanges, logins and issued tokens (stored content stays); restore the knobs."""
        with self._lock:
            self._exchanges.clear()
            self._logins.clear()
        self.issuer.reset()
        self.auth.reset()
        self.server.reset()
        self.proxy.clear_requests()
        self.refresh_lifetime = REFRESH_LIFETIME
        self.refuse_exchange = False

    def close(self) -> None:
        try:
            if self._owns_proxy:
                self.proxy.close()
        finally:
            self.server.close()

    # -- the registry side --------------------------------------------------------------------------

    def _verify_login(self, username: str, password: str) -> bool:
        accepted = username == ACR_USERNAME and self.issuer.accepts(password, self.name)
        with self._lock:
            self._logins.append(AcrLogin(username, password, accepted))
        return accepted

    async def _exchange(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return web.Response(status=405, text="405 method not allowed\n")
        form = await request.post()
        field = {key: value for key, value in form.items() if isinstance(value, str)}
        grant_type, service, access_token = field.get("grant_type"), field.get("service"), field.get("access_token")

        def answer(status: int, body: dict[str, object], refresh_token: str | None = None) -> web.Response:
            entry = AcrExchange(
                request.query.get("api-version"), grant_type, service, access_token, status, refresh_token
            )
            with self._lock:
                self._exchanges.append(entry)
            return web.json_response(body, status=status)

        def error(status: int, code: str, message: str) -> web.Response:
            return answer(status, {"errors": [{"code": code, "message": message, "detail": None}]})

        if grant_type != "access_token" or not access_token:
            return error(400, "UNSUPPORTED", "grant_type=access_token and an access_token are required")
        if service != self.name:
            return error(400, "DENIED", f"service {service!r} is not this registry ({self.name})")
        try:
            claims = self.entra_issuer.verify(access_token, ACR_AUDIENCE)
        except jwt.InvalidTokenError as exc:
            return error(401, "UNAUTHORIZED", f"the access token is not valid for {ACR_AUDIENCE}: {exc}")
        if self.refuse_exchange:
            return error(401, "UNAUTHORIZED", "the identity has no access to this registry")
        refresh_token = self.issuer.mint(
            subject=str(claims.get("oid") or claims["sub"]),
            audience=self.name,
            lifetime=self.refresh_lifetime,
            grant_type="refresh_token",
            tenant=claims.get("tid"),
        )
        return answer(200, {"refresh_token": refresh_token}, refresh_token)
