"""Credentials configured under `hosts` (docs/sync.md#which-credential, docs/sync.md#token-sources,
docs/providers.md).

A listed host takes priority over the ambient Docker config. Each listed host has one source:

- `credential` with `value` (static), `fromPath` (re-read on every use, so rotated projected tokens
  are picked up) or `jwkPath`/`jwkValue` (a JWT signed here: without `exp` a fresh 60 s token every
  time, with `exp` a cached one re-minted at half its lifetime): `TokenMinter`;
- `credential.provider` (github, forgejo, gcp, azure, aws, jwt-svid): a token minted for the
  audience from an ambient identity, kept until half its lifetime: `ProviderToken`;
- `provider` (ecr, acr, gar): the cloud registry's own username and password, kept until half
  their lifetime: `CloudLogin`.

A token is a bearer credential sent on every request when the host has no `username`, and the
password of a username/password pair when it has one; cloud registry logins are always a pair.

`sync` reads and parses every JWK when it builds its `HostsCredentials`, and mints every provider
credential in `prefetch` before anything is synced (fail fast, as the reference does for cloud
registries): a key that cannot be used or an identity that cannot mint ends the run in one line,
with no report. Later re-mints that fail fail the requests that needed them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

from fluxmirror.api.config import Credential as CredentialSpec
from fluxmirror.api.config import Host
from fluxmirror.api.duration import Duration
from fluxmirror.auth.blocking import run_blocking
from fluxmirror.auth.credentials import Credential, CredentialSource
from fluxmirror.auth.expiring import Expiring, NearExpiryError
from fluxmirror.errors import FluxMirrorError
from fluxmirror.gocompat.oserror import path_error

if TYPE_CHECKING:
    from fluxmirror.auth.jwk import SigningKey
    from fluxmirror.auth.providers import RegistryLogin, RegistryProvider, TokenProvider
    from fluxmirror.http.session import HttpSession

__all__ = ["CloudLogin", "HostCredentialError", "HostSource", "HostsCredentials", "ProviderToken", "TokenMinter"]

DEFAULT_JWT_LIFETIME: Final = Duration.parse("60s")


class HostCredentialError(FluxMirrorError):
    """A configured credential could not be produced; the message names the host, never the secret."""


class _KeyProblem(Exception):
    """Why a JWK could not be loaded: `action` is "read" or "parse", `field` "jwkPath" or "jwkValue"."""

    def __init__(self, action: str, field: str, detail: str) -> None:
        super().__init__(detail)
        self.action = action
        self.field = field
        self.detail = detail


def _read_signing_key(spec: CredentialSpec) -> SigningKey:
    # Imported here: cryptography costs every sync ~15 ms of start-up, and only JWK credentials need it.
    from fluxmirror.auth.jwk import JWKError, load_signing_key

    field = "jwkPath" if spec.jwkPath else "jwkValue"
    if spec.jwkPath:
        try:
            data = Path(spec.jwkPath).read_bytes()
        except OSError as exc:
            # Go's os.ReadFile opens a directory and then fails to read it.
            operation = "read" if isinstance(exc, IsADirectoryError) else "open"
            raise _KeyProblem("read", field, path_error(operation, spec.jwkPath, exc)) from None
    else:
        data = spec.jwkValue.encode()
    try:
        return load_signing_key(data)
    except JWKError as exc:
        raise _KeyProblem("parse", field, str(exc)) from None


class HostSource(Protocol):
    """Where one listed host's credential comes from."""

    host: str

    async def credential(self) -> Credential:
        """The credential to present now (minted, read or cached)."""
        ...

    async def prefetch(self) -> None:
        """Mint what must exist before anything is synced; a no-op for static sources."""
        ...


def _as_credential(token: str, username: str) -> Credential:
    """A token as a bearer credential, or as the password of `username` when one is configured."""
    return Credential(username=username, password=token) if username else Credential(registry_token=token)


class TokenMinter:
    """Produces the token of one host's `credential` (`value`, `fromPath`, `jwkPath`/`jwkValue`),
    with the lifetimes of docs/sync.md#token-sources."""

    def __init__(self, host: Host) -> None:
        assert host.credential is not None
        self.host = host.host
        self._username = host.username
        self._spec: CredentialSpec = host.credential
        self._key: SigningKey | None = None
        self._cached: tuple[str, float] | None = None
        self._lock = asyncio.Lock()

    @property
    def signs(self) -> bool:
        """Whether the token is a JWT signed with a `jwkPath`/`jwkValue` key."""
        return bool(self._spec.jwkPath or self._spec.jwkValue)

    def load_key(self) -> None:
        """Read and parse the JWK now, once, and keep it for every token; a no-op for other sources.

        Raises HostCredentialError `auth host "<host>": read jwkPath: <reason>` or
        `auth host "<host>": parse jwkValue: <reason>`, never quoting key material.
        """
        if not self.signs or self._key is not None:
            return
        try:
            self._key = _read_signing_key(self._spec)
        except _KeyProblem as problem:
            raise HostCredentialError(
                f'auth host "{self.host}": {problem.action} {problem.field}: {problem.detail}'
            ) from None

    async def prefetch(self) -> None:
        """Nothing to mint ahead: the key was loaded when the source was built."""

    async def token(self) -> str:
        spec = self._spec
        if spec.value:
            return spec.value
        if spec.fromPath:
            return await run_blocking(self._read_token_file, spec.fromPath)
        return await self._signed()

    async def credential(self) -> Credential:
        return _as_credential(await self.token(), self._username)

    def _read_token_file(self, path: str) -> str:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = path_error("open", path, exc) if isinstance(exc, OSError) else "not UTF-8 text"
            raise HostCredentialError(f'host "{self.host}": credential.fromPath: {reason}') from None
        if not token:
            raise HostCredentialError(f'host "{self.host}": token file "{path}" is empty')
        return token

    async def _signed(self) -> str:
        async with self._lock:
            now = time.time()
            if self._cached is not None and self._cached[1] > now:
                return self._cached[0]
            key = self._key if self._key is not None else await run_blocking(self._load_key)
            self._key = key
            from fluxmirror.auth.jwk import sign_jwt  # loaded by _load_key, off the event loop

            lifetime = self._spec.exp or DEFAULT_JWT_LIFETIME
            token = sign_jwt(
                key,
                issuer=self._spec.iss,
                subject=self._spec.sub,
                audience=self._spec.aud or self.host,
                lifetime_seconds=lifetime.total_seconds(),
                now=now,
            )
            if self._spec.exp is not None:
                self._cached = (token, now + lifetime.total_seconds() / 2)
            return token

    def _load_key(self) -> SigningKey:
        # On a worker thread, for `login` and `secret`, which build their minters one by one.
        try:
            return _read_signing_key(self._spec)
        except _KeyProblem as problem:
            raise HostCredentialError(f'host "{self.host}": credential.{problem.field}: {problem.detail}') from None


class ProviderToken:
    """One host's `credential.provider` token for its audience (`aud`, else the host), kept until
    half its lifetime, read from its unverified `exp` (docs/providers.md#refresh)."""

    def __init__(self, host: Host, provider: TokenProvider, *, clock: Callable[[], float] = time.time) -> None:
        assert host.credential is not None
        self.host = host.host
        self._username = host.username
        self._audience = host.credential.aud or host.host
        self._provider = provider
        self._tokens: Expiring[str] = Expiring(self._mint, what="minted token", clock=clock)

    async def _mint(self) -> tuple[str, float]:
        from fluxmirror.auth.providers.base import jwt_expiry

        token = await self._provider.mint(self._audience)
        return token, jwt_expiry(token)

    async def token(self) -> str:
        from fluxmirror.auth.providers import ProviderError

        try:
            return await self._tokens.get()
        except (ProviderError, NearExpiryError) as exc:
            raise HostCredentialError(f'failed to obtain CI JWT for host "{self.host}": {exc}') from None

    async def prefetch(self) -> None:
        await self.token()

    async def credential(self) -> Credential:
        return _as_credential(await self.token(), self._username)


class CloudLogin:
    """One `provider` host's native registry credentials, kept until half their lifetime."""

    def __init__(self, host: Host, provider: RegistryProvider, *, clock: Callable[[], float] = time.time) -> None:
        self.host = host.host
        self._name = host.provider
        self._provider = provider
        self._logins: Expiring[RegistryLogin] = Expiring(self._login, what=f"{host.provider} credentials", clock=clock)

    async def _login(self) -> tuple[RegistryLogin, float]:
        login = await self._provider.login()
        return login, login.expires

    async def credential(self) -> Credential:
        from fluxmirror.auth.providers import ProviderError

        try:
            login = await self._logins.get()
        except (ProviderError, NearExpiryError) as exc:
            raise HostCredentialError(f'get {self._name} registry credentials for "{self.host}": {exc}') from None
        return Credential(username=login.username, password=login.password)

    async def prefetch(self) -> None:
        await self.credential()


def host_source(host: Host, http: HttpSession) -> HostSource | None:
    """The source of one listed host's credential, or None for a host without one (TLS-only).

    A provider's SDK is imported here, and a registry provider checks its host's shape here, so a
    config naming a provider whose extra is missing, or an ECR provider for a host that is not an
    ECR registry, fails before anything is minted: `get ecr registry credentials for "<host>": …`.
    """
    if host.provider.strip():
        from fluxmirror.auth.providers import ProviderError, registry_provider

        try:
            return CloudLogin(host, registry_provider(host.provider, host.host, http))
        except ProviderError as exc:
            raise HostCredentialError(f'get {host.provider} registry credentials for "{host.host}": {exc}') from None
    if host.credential is None:
        return None
    if host.credential.provider.strip():
        from fluxmirror.auth.providers import token_provider

        return ProviderToken(host, token_provider(host.credential.provider, http))
    return TokenMinter(host)


class HostsCredentials:
    """The sync credential source: configured hosts first, everything else from `fallback`.

    Building it loads every host's JWK, in config order, so that a key which cannot be read or
    parsed raises HostCredentialError here, before anything is synced; `prefetch` then mints every
    provider credential, concurrently, and raises the first failure in config order.
    """

    def __init__(self, hosts: Sequence[Host], fallback: CredentialSource, http: HttpSession) -> None:
        self._fallback = fallback
        self._sources: dict[str, HostSource] = {}
        for host in hosts:
            source = host_source(host, http)
            if source is None:
                continue
            if isinstance(source, TokenMinter):
                source.load_key()
            self._sources[host.host] = source

    async def prefetch(self, time_limit: float) -> None:
        """Mint every provider credential now, within `time_limit` seconds for all of them."""
        sources = list(self._sources.values())
        try:
            async with asyncio.timeout(time_limit):
                outcomes = await asyncio.gather(*(source.prefetch() for source in sources), return_exceptions=True)
        except TimeoutError:
            pending = ", ".join(f'"{source.host}"' for source in sources if not isinstance(source, TokenMinter))
            budget = Duration.from_seconds(time_limit)
            raise HostCredentialError(f"mint credentials for {pending}: timed out after {budget}") from None
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def resolve(self, registry: str, repository: str) -> Credential:
        source = self._sources.get(registry)
        if source is None:
            return await self._fallback.resolve(registry, repository)
        return await source.credential()
