"""Registry authorization: the `WWW-Authenticate` challenge flow of the distribution spec.

One `Authenticator` per registry turns a credential (from any `CredentialSource`) into the
`Authorization` header a request needs:

1. a registry token (or the config's bearer credential) is sent as `Bearer` on every request;
2. a `Basic` challenge gets `Basic <user:password>`;
3. a `Bearer` challenge gets a token from the realm for the request's scopes: an OAuth2
   refresh-token POST for identity tokens, otherwise a GET with Basic credentials (or anonymous).
   Tokens are cached per scope set until shortly before they expire, and concurrent requests
   for the same scopes share one token request.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import msgspec

from fluxmirror.auth.credentials import Credential, CredentialSource
from fluxmirror.oci.errors import OCIError
from fluxmirror.scrub import remember

__all__ = ["Authenticator", "Challenge", "TokenRequest", "parse_challenge", "pull_scope", "push_scope"]

CLIENT_ID = "fluxmirror"
_PARAM = re.compile(r'\s*([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')
_DEFAULT_TOKEN_SECONDS = 60.0


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


@dataclass(frozen=True, slots=True)
class Challenge:
    """A parsed `WWW-Authenticate` challenge: `scheme` is lower-case (`basic`, `bearer`)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_challenge(header: str) -> Challenge | None:
    """Parse the first challenge of a `WWW-Authenticate` header; None when there is none."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if match is None or match.end() == position:
            break
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
        position = match.end()
    return Challenge(scheme.lower(), params)


class _TokenResponse(msgspec.Struct):
    token: str = ""
    access_token: str = ""
    expires_in: float = 0.0


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """An HTTP request to the token endpoint, sent by the transport the authenticator is given."""

    method: str
    url: str
    params: Sequence[tuple[str, str]]
    form: Sequence[tuple[str, str]] | None
    authorization: str | None


TokenFetcher = Callable[[TokenRequest], Awaitable[bytes]]


def _basic(credential: Credential) -> str:
    return "Basic " + base64.b64encode(f"{credential.username}:{credential.password}".encode()).decode()


class Authenticator:
    """Authorization headers for one registry, after its `/v2/` ping revealed the challenge."""

    def __init__(
        self, registry: str, challenge: Challenge | None, credentials: CredentialSource, fetch: TokenFetcher
    ) -> None:
        self._registry = registry
        self._challenge = challenge
        self._credentials = credentials
        self._fetch = fetch
        self._tokens: dict[frozenset[str], tuple[str, float]] = {}
        self._pending: dict[frozenset[str], asyncio.Future[str]] = {}

    async def authorization(self, repository: str, scopes: Sequence[str]) -> str | None:
        """The `Authorization` value for a request needing `scopes`, or None when none is needed."""
        credential = await self._credentials.resolve(self._registry, repository)
        if credential.registry_token:
            return f"Bearer {credential.registry_token}"
        challenge = self._challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            return None if credential.is_anonymous else _basic(credential)
        if challenge.scheme != "bearer":
            raise OCIError(f'{self._registry}: unsupported authentication scheme "{challenge.scheme}"')
        return "Bearer " + await self._token(frozenset(scopes), credential)

    def rechallenge(self, header: str, scopes: Sequence[str]) -> None:
        """A 401 came back: forget the token for `scopes` and adopt the new challenge."""
        self._tokens.pop(frozenset(scopes), None)
        challenge = parse_challenge(header)
        if challenge is not None and challenge.scheme in ("basic", "bearer"):
            self._challenge = challenge

    async def _token(self, scopes: frozenset[str], credential: Credential) -> str:
        cached = self._tokens.get(scopes)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        pending = self._pending.get(scopes)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending[scopes] = future
        try:
            token = await self._request_token(scopes, credential)
            future.set_result(token)
            return token
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # consumed here; waiters re-raise their own copy
            raise
        finally:
            del self._pending[scopes]

    async def _request_token(self, scopes: frozenset[str], credential: Credential) -> str:
        assert self._challenge is not None
        realm = self._challenge.realm
        if not realm:
            raise OCIError(f"{self._registry}: bearer challenge without a realm")
        service = self._challenge.params.get("service", "")
        ordered = sorted(scopes)
        if credential.identity_token:
            form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", credential.identity_token),
                ("service", service),
                ("scope", " ".join(ordered)),
                ("client_id", CLIENT_ID),
            ]
            request = TokenRequest("POST", realm, (), form, None)
        else:
            params = [("service", service)] if service else []
            params += [("scope", scope) for scope in ordered]
            authorization = None if credential.is_anonymous else _basic(credential)
            request = TokenRequest("GET", realm, params, None, authorization)
        started = time.monotonic()
        body = await self._fetch(request)
        try:
            response = msgspec.json.decode(body, type=_TokenResponse)
        except msgspec.DecodeError as exc:
            raise OCIError(f"{self._registry}: token response from {realm} is not valid: {exc}") from None
        token = response.token or response.access_token
        if not token:
            raise OCIError(f"{self._registry}: token response from {realm} has no token")
        remember(token)
        lifetime = response.expires_in if response.expires_in > 0 else _DEFAULT_TOKEN_SECONDS
        self._tokens[scopes] = (token, started + lifetime * 0.9)
        return token
