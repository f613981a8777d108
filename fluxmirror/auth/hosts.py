"""Credentials configured under `hosts` (docs/sync.md#which-credential, docs/sync.md#token-sources).

A listed host takes priority over the ambient Docker config. Its token comes from one source:
`value` (static), `fromPath` (re-read on every use, so rotated projected tokens are picked up),
or `jwkPath`/`jwkValue` (a JWT signed here: without `exp` a fresh 60 s token every time, with
`exp` a cached one re-minted at half its lifetime). Without `username` the token is a bearer
credential sent on every request; with `username` it is the password of a username/password pair.

`sync` reads and parses every JWK once, when it builds its `HostsCredentials`, before anything is
synced (the reference builds its signers at start-up): a key that cannot be read or used ends the
run in one line (`auth host "<host>": read jwkPath: …`), with no report.

Provider-based sources and transport TLS are not built yet; `config.support.check_supported`
refuses a config that needs them when it is loaded, rather than at the first request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from fluxmirror.api.config import Credential as CredentialSpec
from fluxmirror.api.config import Host
from fluxmirror.api.duration import Duration
from fluxmirror.auth.credentials import Credential, CredentialSource
from fluxmirror.errors import FluxMirrorError
from fluxmirror.gocompat.oserror import path_error

if TYPE_CHECKING:
    from fluxmirror.auth.jwk import SigningKey

__all__ = ["HostCredentialError", "HostsCredentials", "TokenMinter"]

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


class TokenMinter:
    """Produces the token of one host's `credential`, with the lifetimes of docs/sync.md#token-sources."""

    def __init__(self, host: Host) -> None:
        assert host.credential is not None
        self.host = host.host
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

    async def token(self) -> str:
        spec = self._spec
        if spec.value:
            return spec.value
        if spec.fromPath:
            return await asyncio.to_thread(self._read_token_file, spec.fromPath)
        return await self._signed()

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
            key = self._key if self._key is not None else await asyncio.to_thread(self._load_key)
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

    async def credential(self, username: str) -> Credential:
        token = await self.token()
        return Credential(username=username, password=token) if username else Credential(registry_token=token)


class HostsCredentials:
    """The sync credential source: configured hosts first, everything else from `fallback`.

    Building it loads every host's JWK, in config order, so that a key which cannot be read or
    parsed raises HostCredentialError here, before anything is synced.
    """

    def __init__(self, hosts: Sequence[Host], fallback: CredentialSource) -> None:
        self._fallback = fallback
        self._minters: dict[str, tuple[TokenMinter, str]] = {}
        for host in hosts:
            if host.credential is None:
                continue
            minter = TokenMinter(host)
            minter.load_key()
            self._minters[host.host] = (minter, host.username)

    async def resolve(self, registry: str, repository: str) -> Credential:
        configured = self._minters.get(registry)
        if configured is None:
            return await self._fallback.resolve(registry, repository)
        minter, username = configured
        return await minter.credential(username)
