"""A GitHub/Forgejo Actions OIDC token endpoint on loopback, for the `github`/`forgejo` credential providers.

A CI runner hands a job two environment variables: a URL (``ACTIONS_ID_TOKEN_REQUEST_URL``) and a
bearer token for it (``ACTIONS_ID_TOKEN_REQUEST_TOKEN``); the job asks that URL for an ID token with
its own ``audience`` query parameter. This fake answers exactly that exchange, minting with a shared
``JwtIssuer`` so the registry side of a test can verify that the token it was shown is the one minted
here, for the audience the client asked for. Every request is recorded, refused ones included, so a
test can check the query the client built (the audience replaced, other parameters kept) and count
mints.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs

from aiohttp import web

from harness.background import BackgroundLoop, listen
from harness.jwtissuer import JwtIssuer

__all__ = ["DEFAULT_AUDIENCE", "DEFAULT_LIFETIME", "SUBJECT", "ActionsOIDC", "OIDCRequest"]

SUBJECT = "repo:example/app:ref:refs/heads/main"
DEFAULT_LIFETIME = 300.0
DEFAULT_AUDIENCE = "https://github.com/example"
TOKEN_PATH = "/_apis/token"


@dataclass(frozen=True)
class OIDCRequest:
    """One request as the endpoint saw it, with what it answered."""

    query: str  # the raw query string, as sent
    audience: str | None  # the (first) ``audience`` parameter
    authorization: str | None  # the Authorization header, verbatim
    status: int
    token: str | None  # the JWT answered, for a 200


class ActionsOIDC:
    """The token endpoint on ``127.0.0.1:<free port>`` until ``close``.

    Knobs (``reset`` restores them): ``lifetime`` (seconds a minted token lives), ``status`` (answer
    every request with this status instead, e.g. 500, body ``simulated failure``).
    """

    def __init__(self, issuer: JwtIssuer) -> None:
        self.issuer = issuer
        self.request_token = secrets.token_urlsafe(24)
        self.lifetime = DEFAULT_LIFETIME
        self.status: int | None = None
        self._lock = threading.Lock()
        self._requests: list[OIDCRequest] = []
        sock = listen()
        self.port: int = sock.getsockname()[1]
        self._background = BackgroundLoop(f"actions-oidc-{self.port}")
        app = web.Application()
        app.router.add_get(TOKEN_PATH, self._token)
        try:
            self._background.serve(app, sock)
        except BaseException:
            self._background.close()
            raise

    @property
    def url(self) -> str:
        """What a runner puts in ``ACTIONS_ID_TOKEN_REQUEST_URL``: a stale audience the client must replace."""
        return f"http://127.0.0.1:{self.port}{TOKEN_PATH}?api-version=2.0&audience=old"

    def environment(self) -> dict[str, str]:
        return {
            "ACTIONS_ID_TOKEN_REQUEST_URL": self.url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.request_token,
            "NO_PROXY": "127.0.0.1,localhost",
        }

    @property
    def requests(self) -> list[OIDCRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def tokens(self) -> list[str]:
        """Every token answered, in order."""
        return [request.token for request in self.requests if request.token is not None]

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
        self.lifetime = DEFAULT_LIFETIME
        self.status = None

    def close(self) -> None:
        self._background.close()

    async def _token(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization")
        audiences = parse_qs(request.query_string, keep_blank_values=True).get("audience")
        audience = audiences[0] if audiences else None
        token: str | None = None
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(presented.strip(), self.request_token):
            response = web.Response(status=401, text="bad request token")
        elif self.status is not None:
            response = web.Response(status=self.status, text="simulated failure")
        else:
            # Without an audience GitHub defaults to the owner's URL; clients here always send one.
            token = self.issuer.mint(subject=SUBJECT, audience=audience or DEFAULT_AUDIENCE, lifetime=self.lifetime)
            response = web.json_response({"value": token})
        record = OIDCRequest(request.query_string, audience, authorization, response.status, token)
        with self._lock:
            self._requests.append(record)
        return response
