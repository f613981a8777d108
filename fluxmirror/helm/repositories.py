"""Helm's `repositories.yaml`: the credentials and TLS settings `helm repo add` recorded.

Chart sources are not configured under `hosts`; a user who can `helm pull` a chart can mirror
it (the `flux mirror` config reference, "Charts"). An entry applies to a chart source when both
URLs normalise to the same string (docs/sync.md#helm-repositories). A missing file means
anonymous access; any other problem with it stops the run before anything is mirrored, since
silently going anonymous would only fail later with a confusing 401.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from fluxmirror.errors import ConfigError

__all__ = ["HelmRepository", "find_repository", "load_repositories", "repositories_path"]


@dataclass(frozen=True, slots=True)
class HelmRepository:
    """One `repositories[]` entry, with the fields fluxmirror uses."""

    name: str
    url: str
    username: str = ""
    password: str = ""
    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""
    insecure_skip_tls_verify: bool = False
    pass_credentials_all: bool = False

    @property
    def has_credentials(self) -> bool:
        """Basic auth is sent only when both halves are set."""
        return bool(self.username and self.password)

    def __repr__(self) -> str:  # never show the password
        return f"HelmRepository(name={self.name!r}, url={self.url!r})"


def repositories_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$HELM_REPOSITORY_CONFIG`, else `<helm config dir>/repositories.yaml`, as Helm resolves it."""
    env = os.environ if environ is None else environ
    if env.get("HELM_REPOSITORY_CONFIG"):
        return Path(env["HELM_REPOSITORY_CONFIG"])
    return _config_home(env) / "repositories.yaml"


def _config_home(env: Mapping[str, str]) -> Path:
    if env.get("HELM_CONFIG_HOME"):
        return Path(env["HELM_CONFIG_HOME"])
    if env.get("XDG_CONFIG_HOME"):
        return Path(env["XDG_CONFIG_HOME"]) / "helm"
    home = Path(env.get("HOME") or Path.home())
    if sys.platform == "darwin":
        return home / "Library" / "Preferences" / "helm"
    if sys.platform == "win32":
        return Path(env.get("APPDATA") or home) / "helm"
    return home / ".config" / "helm"


def _text(item: Mapping[str, Any], key: str) -> str:
    value = item.get(key)
    return "" if value is None else str(value)


def _flag(item: Mapping[str, Any], key: str) -> bool:
    value = item.get(key)
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _entry(item: Any) -> HelmRepository:
    if not isinstance(item, dict):
        raise ValueError(f"repositories: entry is not a mapping: {item!r}")
    return HelmRepository(
        name=_text(item, "name"),
        url=_text(item, "url"),
        username=_text(item, "username"),
        password=_text(item, "password"),
        cert_file=_text(item, "certFile"),
        key_file=_text(item, "keyFile"),
        ca_file=_text(item, "caFile"),
        insecure_skip_tls_verify=_flag(item, "insecure_skip_tls_verify"),
        pass_credentials_all=_flag(item, "pass_credentials_all"),
    )


def load_repositories(path: Path) -> list[HelmRepository]:
    """The file's entries in file order; [] when it does not exist. Raises ValueError/OSError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    try:
        document = yaml.safe_load(data) if data.strip() else None
    except yaml.YAMLError as exc:
        raise ValueError(" ".join(str(exc).split())) from None
    if document is None:
        return []
    if not isinstance(document, dict):
        raise ValueError("not a mapping")
    items = document.get("repositories") or []
    if not isinstance(items, list):
        raise ValueError("repositories: not a list")
    return [_entry(item) for item in items]


def normalize_url(url: str) -> str | None:
    """Trimmed, scheme and host lowercased, trailing `/` of the path removed; None without scheme or host."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.hostname:
        return None
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    return urlunsplit(
        (parts.scheme.lower(), f"{userinfo}{at}{hostport.lower()}", parts.path.rstrip("/"), parts.query, parts.fragment)
    )


def find_repository(repositories: Sequence[HelmRepository], source: str) -> HelmRepository | None:
    """The first entry whose URL normalises to the chart source's; entries without a URL are ignored."""
    wanted = normalize_url(source)
    for repository in repositories:
        if not repository.url:
            continue
        normalized = normalize_url(repository.url)
        if normalized is None:
            raise ConfigError(
                f'normalize Helm repository "{repository.name}" URL "{repository.url}": missing scheme or host'
            )
        if normalized == wanted:
            return repository
    return None
