"""Credentials from the ambient Docker config and its credential helpers (docs/sync.md#docker-config).

Hosts without a `hosts` entry authenticate the way `docker pull` would, so users who already ran
`docker login` (or `podman login`) need no extra setup. Lookups follow go-containerregistry's default
keychain, which the reference uses: the repository-qualified key first, then the registry key, and the
first non-anonymous answer wins.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from fluxmirror.auth.credentials import ANONYMOUS, Credential
from fluxmirror.auth.credhelper import HelperMissingError, first_line, helper_program, require_helper
from fluxmirror.errors import FluxMirrorError

__all__ = ["CredentialError", "DockerConfigCredentials"]

_DOCKER_HUB: Final = "index.docker.io"
_DOCKER_HUB_KEY: Final = "https://index.docker.io/v1/"
# Spellings `docker login` and other tools have used for Docker Hub's `auths` entry.
_DOCKER_HUB_HOSTS: Final = frozenset({"index.docker.io", "docker.io"})
_TOKEN_USERNAME: Final = "<token>"  # noqa: S105 - a marker username, not a secret
# docker-credential-helpers prints "credentials not found in native keychain"; match the stem so
# helpers that word the rest differently still mean "nothing stored" rather than a failure.
_NOT_FOUND: Final = "credentials not found"
_HELPER_TIMEOUT: Final = 30.0


class CredentialError(FluxMirrorError):
    """The ambient credentials could not be read; the message never carries a secret."""


class _AuthEntry(msgspec.Struct):
    auth: str = ""
    username: str = ""
    password: str = ""
    identitytoken: str = ""
    registrytoken: str = ""


class _ConfigFile(msgspec.Struct, rename={"creds_store": "credsStore", "cred_helpers": "credHelpers"}):
    auths: dict[str, _AuthEntry] = msgspec.field(default_factory=dict)
    creds_store: str = ""
    cred_helpers: dict[str, str] = msgspec.field(default_factory=dict)


class _HelperAnswer(msgspec.Struct, rename={"username": "Username", "secret": "Secret"}):
    username: str = ""
    secret: str = ""


@dataclass(frozen=True, slots=True)
class _Config:
    """The config with every `auths` entry already decoded, so a bad entry fails the load as in Docker."""

    auths: dict[str, Credential]
    creds_store: str
    cred_helpers: dict[str, str]


class DockerConfigCredentials:
    """A `CredentialSource` reading the Docker (or Podman) config once and caching every answer.

    One instance serves one run: helpers can be slow or prompt-driven, so each key is asked at most
    once, and concurrent resolves of the same key wait for the first one instead of re-running it.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._load_lock = asyncio.Lock()
        self._loaded = False
        self._config: _Config | None = None
        self._key_locks: dict[str, asyncio.Lock] = {}
        self._cache: dict[str, Credential] = {}

    async def resolve(self, registry: str, repository: str) -> Credential:
        config = await self._load()
        if config is None:
            return ANONYMOUS
        for key, hosts in _keys(registry, repository):
            credential = await self._lookup_once(config, key, hosts)
            if not credential.is_anonymous:
                return credential
        return ANONYMOUS

    async def _load(self) -> _Config | None:
        async with self._load_lock:
            if not self._loaded:
                self._config = await asyncio.to_thread(_read_config, self._env)
                self._loaded = True
            return self._config

    async def _lookup_once(self, config: _Config, key: str, hosts: frozenset[str]) -> Credential:
        lock = self._key_locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._cache:
                self._cache[key] = await self._lookup(config, key, hosts)
            return self._cache[key]

    async def _lookup(self, config: _Config, key: str, hosts: frozenset[str]) -> Credential:
        # As in Docker, a key listed in credHelpers wins even over credsStore, and any helper hides `auths`.
        helper = config.cred_helpers.get(key, config.creds_store)
        if helper:
            return await self._run_helper(helper, key)
        if key in config.auths:
            return config.auths[key]
        for entry_key, credential in config.auths.items():
            if _hostname(entry_key) in hosts:
                return credential
        return ANONYMOUS

    async def _run_helper(self, name: str, server: str) -> Credential:
        program = helper_program(name)

        def failure(reason: str) -> CredentialError:
            return CredentialError(f'get credentials for "{server}" from the "{name}" credential helper: {reason}')

        # Look the helper up on the instance's PATH, not the process's, so `env` fully describes the run.
        try:
            executable = require_helper(name, self._env.get("PATH", os.defpath))
        except HelperMissingError as missing:
            raise failure(str(missing)) from None
        try:
            process = await asyncio.create_subprocess_exec(
                executable,
                "get",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=dict(self._env),
            )
        except OSError as err:
            raise failure(f"{program}: {err.strerror or type(err).__name__}") from None
        try:
            async with asyncio.timeout(_HELPER_TIMEOUT):
                stdout, stderr = await process.communicate(server.encode())
        except TimeoutError:
            raise failure(f"no answer within {_HELPER_TIMEOUT:g}s") from None
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if process.returncode != 0:
            if stdout.decode(errors="replace").strip().startswith(_NOT_FOUND):
                return ANONYMOUS
            # stdout is never quoted: a misbehaving helper might have printed the secret there.
            detail = first_line(stderr)
            raise failure(f"exit status {process.returncode}" + (f": {detail}" if detail else ""))
        try:
            answer = msgspec.json.decode(stdout, type=_HelperAnswer)
        except msgspec.DecodeError:
            raise failure("malformed response") from None
        if answer.username == _TOKEN_USERNAME:
            return Credential(identity_token=answer.secret)
        return Credential(username=answer.username, password=answer.secret)


def _keys(registry: str, repository: str) -> list[tuple[str, frozenset[str]]]:
    """The config keys to try, most specific first, each with the hostnames its `auths` entry may reduce to.

    A repository-qualified key only matches exactly: reducing it to its host would let a host-wide
    `auths` entry shadow a credHelpers entry for the registry key tried after it.
    """
    keys: list[tuple[str, frozenset[str]]] = []
    if repository:
        keys.append((f"{registry}/{repository}", frozenset()))
    if registry == _DOCKER_HUB:
        keys.append((_DOCKER_HUB_KEY, _DOCKER_HUB_HOSTS))
    else:
        keys.append((registry, frozenset({registry})))
    return keys


def _hostname(key: str) -> str:
    """Reduce a legacy key such as `https://registry.example.com/v2/` to the host it names."""
    _, scheme, rest = key.partition("://")
    return (rest if scheme else key).split("/", 1)[0]


def _locate(env: Mapping[str, str]) -> Path | None:
    """Docker's file if present, else Podman's; `$DOCKER_CONFIG` replaces `~/.docker` as Docker does."""
    candidates: list[Path] = []
    if env.get("DOCKER_CONFIG"):
        candidates.append(Path(env["DOCKER_CONFIG"], "config.json"))
    elif env.get("HOME"):
        candidates.append(Path(env["HOME"], ".docker", "config.json"))
    if env.get("REGISTRY_AUTH_FILE"):
        candidates.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("XDG_RUNTIME_DIR"):
        candidates.append(Path(env["XDG_RUNTIME_DIR"], "containers", "auth.json"))
    return next((path for path in candidates if path.is_file()), None)


def _read_config(env: Mapping[str, str]) -> _Config | None:
    path = _locate(env)
    if path is None:
        return None
    try:
        data = path.read_bytes()
        # Docker treats an empty file as an empty config, not as malformed JSON.
        raw = msgspec.json.decode(data, type=_ConfigFile) if data.strip() else _ConfigFile()
        auths = {key: _entry_credential(key, entry) for key, entry in raw.auths.items()}
    except OSError as err:
        raise CredentialError(f"load docker config {path}: {err.strerror or type(err).__name__}") from None
    except (msgspec.DecodeError, ValueError) as err:
        raise CredentialError(f"load docker config {path}: {err}") from None
    return _Config(auths=auths, creds_store=raw.creds_store, cred_helpers=raw.cred_helpers)


def _entry_credential(key: str, entry: _AuthEntry) -> Credential:
    username, password = entry.username, entry.password
    if entry.auth:
        try:
            decoded = base64.b64decode(entry.auth, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        username, separator, password = decoded.partition(":")
        if not separator or not username:
            raise ValueError(f'invalid "auth" for "{key}"')
        password = password.strip("\x00")
    return Credential(
        username=username,
        password=password,
        identity_token=entry.identitytoken,
        registry_token=entry.registrytoken,
    )
