"""Optional auth for the in-memory registry: Basic, Bearer tokens from a realm it serves itself, or
Bearer tokens it validates itself.

Distribution's two schemes as a client meets them: a 401 carrying a ``WWW-Authenticate`` challenge
(with the ``scope`` the request needs, as distribution names it), a token endpoint that takes Basic
credentials plus ``service`` and ``scope`` parameters and answers ``{"token", "expires_in"}``, and
a request whose token lacks a scope answered like one without a token. Tokens are opaque random
strings held in memory: ``revoke()`` forgets those issued so far (as if they had expired), and
``refuse_tokens`` makes the registry reject every token (as if it did not trust the issuer).

The token endpoint normally demands one fixed pair of Basic credentials; ``token(verify=...)``
hands the decision to a callable instead (an ACR-like registry accepts any refresh token its own
exchange issued), and ``service``/``token_path`` name the realm the way that registry does.

``bearer(validator)`` stands for a registry that validates a self-contained token (an OIDC ID
token, an Entra access token, a JWT-SVID) on every request: no token endpoint, no scopes, and every
presented token is recorded so a test can show that exactly the minted token arrived each time.

Scopes are granted as asked (there is one user and no ACL); GET and HEAD need ``pull``, every other
method ``pull`` and ``push``; ``/v2/`` needs a valid credential and no scope.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from aiohttp import web
from harness import Credentials

__all__ = ["SERVICE", "TOKEN_PATH", "PasswordCheck", "RegistryAuth", "TokenGrant", "TokenValidator", "needed_actions"]

SERVICE: Final = "oci-registry"
TOKEN_PATH: Final = "/token"
TOKEN_SECONDS: Final = 300


def needed_actions(method: str) -> tuple[str, ...]:
    return ("pull",) if method in ("GET", "HEAD") else ("pull", "push")


@dataclass(frozen=True)
class TokenGrant:
    """One answered token request: the scopes asked for (in order) and the token issued."""

    scopes: tuple[str, ...]
    service: str
    user: str | None  # None: anonymous
    token: str


PasswordCheck = Callable[[str, str], bool]
"""``(username, password) -> accepted`` for the token endpoint's Basic credentials."""
TokenValidator = Callable[[str], bool]
"""``token -> accepted`` for a registry that validates Bearer tokens itself."""

_PRESENTED_KEY: Final = web.RequestKey("registry.auth.presented", bool)


class RegistryAuth:
    """What the registry demands; build with ``basic(...)``, ``token(...)`` or ``bearer(...)``."""

    def __init__(
        self,
        scheme: Literal["basic", "token", "bearer"],
        credentials: Credentials | None,
        *,
        verify: PasswordCheck | None = None,
        validator: TokenValidator | None = None,
        service: str = SERVICE,
        token_path: str = TOKEN_PATH,
    ) -> None:
        if scheme == "basic" and credentials is None:
            raise ValueError("Basic auth needs credentials")
        if scheme == "bearer" and validator is None:
            raise ValueError("Bearer validation needs a validator")
        if credentials is not None and verify is not None:
            raise ValueError("the token endpoint checks fixed credentials or calls verify, not both")
        self.scheme = scheme
        self.credentials = credentials
        self.service = service
        self.token_path = token_path
        self.refuse_tokens = False
        self._verify = verify
        self._validator = validator
        self._lock = threading.Lock()
        self._tokens: dict[str, frozenset[tuple[str, str]]] = {}
        self._grants: list[TokenGrant] = []
        self._presented: list[str | None] = []

    @classmethod
    def basic(cls, credentials: Credentials) -> RegistryAuth:
        """Every request must carry ``credentials`` as Basic."""
        return cls("basic", credentials)

    @classmethod
    def token(
        cls,
        credentials: Credentials | None = None,
        *,
        verify: PasswordCheck | None = None,
        service: str = SERVICE,
        token_path: str = TOKEN_PATH,
    ) -> RegistryAuth:
        """Every request must carry a Bearer token from ``token_path``; the token endpoint demands
        ``credentials`` as Basic, or Basic credentials ``verify`` accepts, or answers anyone when
        both are None."""
        return cls("token", credentials, verify=verify, service=service, token_path=token_path)

    @classmethod
    def bearer(cls, validator: TokenValidator) -> RegistryAuth:
        """Every request (``/v2/`` included) must carry ``Authorization: Bearer <t>`` with
        ``validator(t)`` true; there is no token endpoint (the challenge's realm answers 404)."""
        return cls("bearer", None, validator=validator)

    @property
    def grants(self) -> list[TokenGrant]:
        with self._lock:
            return list(self._grants)

    @property
    def presented(self) -> list[str | None]:
        """``bearer`` scheme: the Bearer token of every request that needed auth, in arrival order
        (None for a request without one), refused requests included."""
        with self._lock:
            return list(self._presented)

    def revoke(self) -> None:
        """Forget every token issued so far."""
        with self._lock:
            self._tokens.clear()

    def reset(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._grants.clear()
            self._presented.clear()
        self.refuse_tokens = False

    # --- the registry side ----------------------------------------------------------------

    def allows(self, request: web.Request, name: str | None, actions: tuple[str, ...]) -> bool:
        """Whether ``request`` may do ``actions`` on repository ``name`` (None: only authenticate)."""
        authorization = request.headers.get("Authorization", "")
        if self.scheme == "basic":
            assert self.credentials is not None
            return secrets.compare_digest(authorization, self.credentials.basic_header())
        scheme, _, token = authorization.partition(" ")
        is_bearer = scheme.lower() == "bearer" and bool(token)
        if self.scheme == "bearer":
            assert self._validator is not None
            if _PRESENTED_KEY not in request:  # once per request, though a mount asks twice
                request[_PRESENTED_KEY] = True
                with self._lock:
                    self._presented.append(token if is_bearer else None)
            return is_bearer and not self.refuse_tokens and self._validator(token)
        if not is_bearer or self.refuse_tokens:
            return False
        with self._lock:
            granted = self._tokens.get(token)
        if granted is None:
            return False
        return name is None or all((name, action) in granted for action in actions)

    def challenge(self, request: web.Request, name: str | None, actions: tuple[str, ...]) -> str:
        if self.scheme == "basic":
            return 'Basic realm="oci-registry"'
        realm = f"{request.scheme}://{request.host}{self.token_path}"
        header = f'Bearer realm="{realm}",service="{self.service}"'
        if name is not None:
            header += f',scope="repository:{name}:{",".join(actions)}"'
        return header

    # --- the token endpoint ---------------------------------------------------------------

    async def issue(self, request: web.Request) -> web.StreamResponse:
        if self.scheme != "token" or request.method != "GET":
            return web.Response(status=404, text="404 page not found\n")
        user = None
        if self.credentials is not None:
            if request.headers.get("Authorization") != self.credentials.basic_header():
                return _bad_credentials()
            user = self.credentials.username
        elif self._verify is not None:
            pair = _basic_pair(request.headers.get("Authorization"))
            if pair is None or not self._verify(*pair):
                return _bad_credentials()
            user = pair[0]
        scopes = tuple(scope for value in request.query.getall("scope", []) for scope in value.split())
        granted: set[tuple[str, str]] = set()
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind == "repository" and name:
                granted |= {(name, action) for action in actions.split(",") if action}
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._tokens[token] = frozenset(granted)
            self._grants.append(TokenGrant(scopes, request.query.get("service", ""), user, token))
        return web.json_response({"token": token, "expires_in": TOKEN_SECONDS})


def _bad_credentials() -> web.Response:
    return web.json_response(
        {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials", "detail": None}]},
        status=401,
        headers={"WWW-Authenticate": 'Basic realm="token"'},
    )


def _basic_pair(header: str | None) -> tuple[str, str] | None:
    """``(username, password)`` of a Basic ``Authorization`` header (RFC 7617), None if it is not one."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None
