"""Registry, repository and reference names, parsed with go-containerregistry's rules. Pure, no I/O.

Error texts are go-containerregistry's, because they end up in `flux mirror`'s validation messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "DOCKER_HUB",
    "DOCKER_HUB_API",
    "InvalidReferenceError",
    "Reference",
    "Repository",
    "is_digest",
    "is_tag",
    "parse_reference",
    "parse_repository",
]

DOCKER_HUB: Final = "index.docker.io"
DOCKER_HUB_API: Final = "registry-1.docker.io"
_REPOSITORY_CHARS: Final = "abcdefghijklmnopqrstuvwxyz0123456789_-./"
_TAG_CHARS: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
# Registered algorithms have a fixed encoding; the others only the general grammar above.
_ENCODINGS: Final = {
    "sha256": re.compile(r"[a-f0-9]{64}"),
    "sha512": re.compile(r"[a-f0-9]{128}"),
    "blake3": re.compile(r"[a-f0-9]{64}"),
}


def is_tag(text: str) -> bool:
    """Whether `text` is a tag by the distribution grammar; tags from a registry are checked with
    this before they reach a URL, so `../x` or `a?b=c` can never address anything else."""
    return _TAG.fullmatch(text) is not None


def is_digest(text: str) -> bool:
    """Whether `text` is a digest by the OCI grammar (and the fixed encoding of sha256, sha512 and blake3)."""
    if _DIGEST.fullmatch(text) is None:
        return False
    algorithm, _, encoded = text.partition(":")
    encoding = _ENCODINGS.get(algorithm)
    return encoding is None or encoding.fullmatch(encoded) is not None


class InvalidReferenceError(ValueError):
    """A name that is not a valid registry, repository, tag or digest."""


def _check(kind: str, element: str, allowed: str, shortest: int, longest: int) -> None:
    if not shortest <= len(element) <= longest:
        raise InvalidReferenceError(f"{kind} must be between {shortest} and {longest} characters in length: {element}")
    if any(char not in allowed for char in element):
        raise InvalidReferenceError(f"{kind} can only contain the characters `{allowed}`: {element}")


def _check_registry(name: str) -> None:
    try:
        authority = urlsplit("//" + name).netloc
    except ValueError:
        authority = None
    if authority != name or any(char in name for char in "/?#@ "):
        raise InvalidReferenceError(f"registries must be valid RFC 3986 URI authorities: {name}")


@dataclass(frozen=True, slots=True)
class Repository:
    """A repository on a registry: `registry` is `host[:port]`, Docker Hub as `index.docker.io`."""

    registry: str
    path: str

    @property
    def is_docker_hub(self) -> bool:
        return self.registry == DOCKER_HUB

    @property
    def api_host(self) -> str:
        """The host that serves the registry API (Docker Hub's differs from its name)."""
        return DOCKER_HUB_API if self.is_docker_hub else self.registry

    def __str__(self) -> str:
        return f"{self.registry}/{self.path}"


@dataclass(frozen=True, slots=True)
class Reference:
    """A repository plus a tag or a digest (a digest wins when both are written)."""

    repository: Repository
    tag: str = ""
    digest: str = ""

    @property
    def identifier(self) -> str:
        return self.digest or self.tag

    def __str__(self) -> str:
        return f"{self.repository}@{self.digest}" if self.digest else f"{self.repository}:{self.tag}"


def parse_repository(name: str) -> Repository:
    """Parse `[registry/]path` where the first element is a registry when it has a `.` or `:`
    or is `localhost`; one-element Docker Hub paths gain `library/`."""
    if not name:
        raise InvalidReferenceError("a repository name must be specified")
    scheme, sep, rest_of_name = name.partition("://")
    if sep:
        raise InvalidReferenceError(f"write the repository without the {scheme}:// scheme: {rest_of_name}")
    registry, path = "", name
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    _check("repository", path, _REPOSITORY_CHARS, 2, 255)
    if "" in path.split("/"):
        raise InvalidReferenceError(f"repository path has an empty component: {path}")
    _check_registry(registry)
    if registry in ("", "docker.io"):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return Repository(registry, path)


def parse_reference(name: str) -> Reference:
    """Parse `repository[:tag][@digest]`; a reference with neither gets tag `latest`."""
    base, at, digest = name.partition("@")
    if at and not is_digest(digest):
        raise InvalidReferenceError(f"invalid digest {digest!r} in reference {name!r}")
    tag = ""
    colon = base.rfind(":")
    if colon > base.rfind("/"):
        base, tag = base[:colon], base[colon + 1 :]
        _check("tag", tag, _TAG_CHARS, 1, 128)
    repository = parse_repository(base)
    if not tag and not digest:
        tag = "latest"
    return Reference(repository, tag, digest)
