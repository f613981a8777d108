"""Optional auth for the in-memory registry: Basic, or Bearer tokens from a realm it serves itself.

Distribution's two schemes as a client meets them: a 401 carrying a ``WWW-Authenticate`` challenge
(with the ``scope`` the request needs, as distribution names it), a token endpoint that takes Basic
credentials plus ``service`` and ``scope`` parameters and answers ``{"token", "expires_in"}``, and
a request whose token lacks a scope answered like one without a token. Tokens are opaque random
strings held in memory: ``revoke()`` forgets those issued so far (as if they had expired), and
``refuse_tokens`` makes the registry reject every token (as if it did not trust the issuer).

Scopes are granted as asked (there is one user and no ACL); GET and HEAD need ``pull``, every other
method ``pull`` and ``push``; ``/v2/`` needs a valid credential and no scope.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Final, Literal

from aiohttp import web
from harness import Credentials

__all__ = ["SERVICE", "TOKEN_PATH", "RegistryAuth", "TokenGrant", "needed_actions"]

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


class RegistryAuth:
    """What the registry demands; build with ``basic(...)`` or ``token(...)``."""

    def __init__(self, scheme: Literal["basic", "token"], credentials: Credentials | None) -> None:
        if scheme == "basic" and credentials is None:
            raise ValueError("Basic auth needs credentials")
        self.scheme = scheme
        self.credentials = credentials
        self.refuse_tokens = False
        self._lock = threading.Lock()
        self._tokens: dict[str, frozenset[tuple[str, str]]] = {}
        self._grants: list[TokenGrant] = []

    @classmethod
    def basic(cls, credentials: Credentials) -> RegistryAuth:
        """Every request must carry ``credentials`` as Basic."""
        return cls("basic", credentials)

    @classmethod
    def token(cls, credentials: Credentials | None = None) -> RegistryAuth:
        """Every request must carry a Bearer token from ``/token``; the token endpoint demands
        ``credentials`` as Basic, or answers anyone when they are None."""
        return cls("token", credentials)

    @property
    def grants(self) -> list[TokenGrant]:
        with self._lock:
            return list(self._grants)

    def revoke(self) -> None:
        """Forget every token issued so far."""
        with self._lock:
            self._tokens.clear()

    def reset(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._grants.clear()
        self.refuse_tokens = False

    # --- the registry side ----------------------------------------------------------------

    def allows(self, request: web.Request, name: str | None, actions: tuple[str, ...]) -> bool:
        """Whether ``request`` may do ``actions`` on repository ``name`` (None: only authenticate)."""
        authorization = request.headers.get("Authorization", "")
        if self.scheme == "basic":
            assert self.credentials is not None
            return secrets.compare_digest(authorization, self.credentials.basic_header())
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or self.refuse_tokens:
            return False
        with self._lock:
            granted = self._tokens.get(token)
        if granted is None:
            return False
        return name is None or all((name, action) in granted for action in actions)

    def challenge(self, request: web.Request, name: str | None, actions: tuple[str, ...]) -> str:
        if self.scheme == "basic":
            return 'Basic realm="oci-registry"'
        realm = f"{request.scheme}://{request.host}{TOKEN_PATH}"
        header = f'Bearer realm="{realm}",service="{SERVICE}"'
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
                return web.json_response(
                    {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials", "detail": None}]},
                    status=401,
                    headers={"WWW-Authenticate": 'Basic realm="token"'},
                )
            user = self.credentials.username
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
