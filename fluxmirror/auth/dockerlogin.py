"""Writing credentials into a Docker config the way `docker login` does (docs/cli.md#login-storage).

`login` exists so that every Docker-config-aware tool (docker, crane, helm, `flux push`) can use the
identities the config mints, so what lands on disk must look like `docker login` wrote it: secrets
go to a credential helper when one is configured or auto-detected, otherwise to a base64 `auth`
entry; bearer tokens always go to `registrytoken` in the file, because helpers only store
username/secret pairs. The file is rewritten atomically and keeps every key this module does not
own, so other tools' settings (`proxies`, `currentContext`, …) survive a login.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import msgspec

from fluxmirror.auth.credhelper import HelperMissingError, find_helper, first_line, helper_program, require_helper
from fluxmirror.errors import FluxMirrorError
from fluxmirror.gocompat.oserror import path_error

__all__ = ["DockerConfigFile", "DockerLoginError", "docker_config_dir"]

_CONFIG_FILE: Final = "config.json"
_DIR_MODE: Final = 0o700
_MAX_CONFIG_BYTES: Final = 10 * 1024 * 1024
"""A Docker config.json is a few KiB; reading stops past this, so a config.json that is `/dev/zero`
(or a symlink to it) ends in one line instead of filling memory."""


class DockerLoginError(FluxMirrorError):
    """The Docker config could not be loaded or written; the message never carries a secret."""


class _Shape(msgspec.Struct, rename={"creds_store": "credsStore", "cred_helpers": "credHelpers"}):
    """The keys login reads, type-checked so a malformed file fails the load instead of a later write."""

    auths: dict[str, dict[str, Any]] | None = None
    creds_store: str = ""
    cred_helpers: dict[str, str] | None = None


def docker_config_dir(flag: str | None, env: Mapping[str, str] = os.environ) -> Path:
    """`--docker-config`, else `$DOCKER_CONFIG` (empty counts as unset), else `~/.docker`, like `docker --config`."""
    return Path(flag or env.get("DOCKER_CONFIG", "") or Path.home() / ".docker")


class DockerConfigFile:
    """One Docker `config.json`: loaded once, then saved after every stored credential.

    Saving per credential matches `docker login`: hosts stored before a later failure stay logged in.
    The document is kept as decoded JSON rather than a typed model so unknown keys round-trip.
    """

    def __init__(self, directory: Path, document: dict[str, Any]) -> None:
        self.path = directory / _CONFIG_FILE
        self._document = document

    @classmethod
    def load(cls, directory: Path) -> DockerConfigFile:
        """A missing file (or directory) is an empty config, and so is an empty file, as in Docker."""
        path = directory / _CONFIG_FILE
        try:
            with path.open("rb") as stream:
                data = stream.read(_MAX_CONFIG_BYTES + 1)
        except FileNotFoundError:
            return cls(directory, {})
        except OSError as exc:
            raise DockerLoginError(f"load docker config: {path_error('open', str(path), exc)}") from None
        if len(data) > _MAX_CONFIG_BYTES:
            raise DockerLoginError(f"load docker config: {path} is larger than {_MAX_CONFIG_BYTES >> 20} MiB")
        if not data.strip():
            return cls(directory, {})
        try:
            document = msgspec.json.decode(data, type=dict[str, Any])
            msgspec.convert(document, type=_Shape)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise DockerLoginError(f"load docker config: {path}: {exc}") from None
        return cls(directory, document)

    @property
    def _creds_store(self) -> str:
        value = self._document.get("credsStore")
        return value if isinstance(value, str) else ""

    def _auths(self) -> dict[str, Any]:
        auths = self._document.get("auths")
        if not isinstance(auths, dict):
            auths = self._document["auths"] = {}
        return auths

    def _helper_for(self, host: str) -> str:
        """The helper `docker login` would store `host` with: `credHelpers[host]`, else `credsStore`."""
        helpers = self._document.get("credHelpers")
        specific = helpers.get(host, "") if isinstance(helpers, dict) else ""
        return specific or self._creds_store

    def detect_helper(self) -> None:
        """Adopt the platform's helper as `credsStore` on a fresh config, as `docker login` does.

        Only a config that stores nothing yet qualifies, so an existing plaintext setup is never
        silently switched to a keychain. The choice is recorded by the next save.
        """
        if self._document.get("auths") or self._creds_store or self._document.get("credHelpers"):
            return
        name = _platform_helper()
        if find_helper(name) is not None:
            self._document["credsStore"] = name

    def store_registry_token(self, host: str, token: str) -> None:
        """Bearer credentials always go to the file: helpers cannot hold a token without a username."""
        self._auths()[host] = {"registrytoken": token}
        self._save(host)

    def store_password(self, host: str, username: str, password: str, *, plaintext: bool) -> str:
        """Store a username/password pair; returns the helper used, or "" when it went into the file."""
        helper = "" if plaintext else self._helper_for(host)
        if helper:
            _helper_store(helper, host, username, password)
            # Docker keeps an empty entry so the host is still listed as logged in.
            self._auths()[host] = {}
        else:
            encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
            self._auths()[host] = {"auth": encoded}
        self._save(host)
        return helper

    def _save(self, host: str) -> None:
        directory = self.path.parent
        try:
            _make_directories(directory)
        except OSError as exc:
            raise DockerLoginError(
                f'store docker credential for "{host}": {path_error("mkdir", str(directory), exc)}'
            ) from None
        try:
            _write_atomically(self.path, _encode(self._document))
        except OSError as exc:
            raise DockerLoginError(
                f'store docker credential for "{host}": {path_error("write", str(self.path), exc)}'
            ) from None


def _make_directories(directory: Path) -> None:
    """Go's `os.MkdirAll(directory, 0700)`: every missing directory on the way is created 0700 (less
    the umask), not only the last one; existing ones are left as they are."""
    missing: list[Path] = []
    current = directory
    while True:
        try:
            mode = current.stat().st_mode
        except OSError:
            if current.parent == current:
                break
            missing.append(current)
            current = current.parent
            continue
        if not stat.S_ISDIR(mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(current))
        break
    for path in reversed(missing):
        try:
            path.mkdir(mode=_DIR_MODE)
        except FileExistsError:
            if not path.is_dir():
                raise


def _platform_helper() -> str:
    """Docker's per-platform default helper; on Linux `pass` only when the `pass` tool itself is installed."""
    if sys.platform == "darwin":
        return "osxkeychain"
    if sys.platform == "win32":
        return "wincred"
    return "pass" if shutil.which("pass") is not None else "secretservice"


def _helper_store(helper: str, host: str, username: str, secret: str) -> None:
    """Run `docker-credential-<helper> store` with the docker-credential-helpers JSON on stdin."""
    program = helper_program(helper)

    def failure(reason: str) -> DockerLoginError:
        return DockerLoginError(f'store docker credential for "{host}": {reason}')

    try:
        executable = require_helper(helper)
    except HelperMissingError as missing:
        raise failure(str(missing)) from None
    request = msgspec.json.encode({"ServerURL": host, "Username": username, "Secret": secret})
    try:
        # No timeout: a keychain helper may legitimately wait for the user to unlock it.
        result = subprocess.run([executable, "store"], input=request, capture_output=True, check=False)
    except OSError as exc:
        raise failure(f"{program}: {exc.strerror or type(exc).__name__}") from None
    if result.returncode != 0:
        # Helpers report errors on stdout; drop the detail if it would echo the secret back.
        detail = first_line(result.stdout) or first_line(result.stderr)
        if secret in detail:
            detail = ""
        raise failure(f"{program} store: exit status {result.returncode}" + (f": {detail}" if detail else ""))


def _encode(document: dict[str, Any]) -> bytes:
    """One TAB per level, like Docker's `json.MarshalIndent(config, "", "\\t")`."""
    return json.dumps(document, indent="\t", ensure_ascii=False).encode()


def _write_atomically(path: Path, data: bytes) -> None:
    """Write a temp file next to `path` and rename it over, so a reader never sees a half-written config.

    A symlinked config.json has its target replaced, not the link; an existing file keeps its mode,
    a new one is private (0600) because it may hold base64 passwords.
    """
    target = Path(os.path.realpath(path))
    try:
        mode: int | None = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f"{target.name}.")
    try:
        with os.fdopen(fd, "wb") as stream:
            if mode is not None:
                os.fchmod(stream.fileno(), mode)
            stream.write(data)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
