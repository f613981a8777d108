"""File-path confinement (docs/config.md#path-confinement): config-referenced files must live under the
config's own directory, so a config handed to a CronJob cannot read arbitrary files.

Paths are rewritten to absolute ones here, once; whether the file exists is checked when it is
used, because a projected token may appear later.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import msgspec

from fluxmirror.api.config import Config, Host, PEMSource
from fluxmirror.errors import ConfigError

__all__ = ["confine_paths"]


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _confine(value: str, root: Path, describe: Callable[[], str]) -> str:
    if not value.strip():
        return value
    if "\0" in value:  # no file name can hold one; the OS would refuse it only when the file is used
        raise ConfigError(f"{describe()}: the path contains a NUL character")
    joined = os.path.normpath(root / value.strip())
    if not _inside(joined, str(root)) or not _inside(os.path.realpath(joined), os.path.realpath(root)):
        raise ConfigError(f"{describe()}: path escapes the config directory")
    return joined


def _confine_pem(source: PEMSource | None, root: Path, describe: Callable[[], str]) -> PEMSource | None:
    if source is None or not source.fromPath.strip():
        return source
    return msgspec.structs.replace(source, fromPath=_confine(source.fromPath, root, describe))


def _confine_host(index: int, host: Host, root: Path) -> Host:
    def field(name: str) -> Callable[[], str]:
        return lambda: f'hosts[{index}] "{host.host}": {name}'

    credential = host.credential
    if credential is not None:
        credential = msgspec.structs.replace(
            credential,
            fromPath=_confine(credential.fromPath, root, field("credential.fromPath")),
            jwkPath=_confine(credential.jwkPath, root, field("credential.jwkPath")),
        )
    tls = host.tls
    if tls is not None:
        server, client = tls.serverAuth, tls.clientAuth
        if server is not None and server.fromPath.strip():
            server = msgspec.structs.replace(
                server, fromPath=_confine(server.fromPath, root, field("tls.serverAuth.fromPath"))
            )
        if client is not None:
            client = msgspec.structs.replace(
                client,
                certificate=_confine_pem(client.certificate, root, field("tls.clientAuth.certificate.fromPath")),
                key=_confine_pem(client.key, root, field("tls.clientAuth.key.fromPath")),
            )
        tls = msgspec.structs.replace(tls, serverAuth=server, clientAuth=client)
    return msgspec.structs.replace(host, credential=credential, tls=tls)


def confine_paths(config: Config, root: Path) -> Config:
    """Return `config` with every file path absolute under `root`, or raise ConfigError."""
    root = Path(os.path.abspath(root))
    hosts = [_confine_host(index, host, root) for index, host in enumerate(config.hosts)]
    return msgspec.structs.replace(config, hosts=hosts)
