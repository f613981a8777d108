"""Digests by the algorithm they name: `sha256` (required by the OCI image spec), `sha512` and
`blake3` (both registered; blake3 on the image-spec's main branch, a 256-bit output in lowercase
hex). Content is always checked with the algorithm its digest names, so a registry or an archive
that uses sha512 or blake3 is verified, not refused and not silently trusted; an algorithm fluxmirror
does not know fails as `unsupported digest algorithm`, which says what is wrong where a mismatch
would mislead (docs/sync.md#digests).

blake3 comes from the `blake3` package (Rust, GIL released for large inputs), imported on first use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Final, Protocol

from fluxmirror.oci.errors import DigestMismatchError, OCIError

__all__ = ["ALGORITHMS", "Hasher", "UnsupportedDigestError", "check_content", "digest_of", "new_hasher"]

ALGORITHMS: Final = ("sha256", "sha512", "blake3")


class Hasher(Protocol):
    def update(self, data: bytes, /) -> object: ...

    def hexdigest(self) -> str: ...


class UnsupportedDigestError(OCIError):
    """A digest names an algorithm fluxmirror cannot compute; nothing with it is trusted or written."""


def _blake3() -> Hasher:
    from blake3 import blake3

    hasher: Hasher = blake3()
    return hasher


_FACTORIES: Final[dict[str, Callable[[], Hasher]]] = {
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "blake3": _blake3,
}


def new_hasher(digest: str) -> Hasher:
    """A running hash for content addressed by `digest` (`<algorithm>:<hex>`)."""
    algorithm = digest.partition(":")[0]
    factory = _FACTORIES.get(algorithm)
    if factory is None:
        raise UnsupportedDigestError(f'{digest}: unsupported digest algorithm "{algorithm}"')
    return factory()


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    """`<algorithm>:<hex>` of `data`."""
    hasher = new_hasher(f"{algorithm}:")
    hasher.update(data)
    return f"{algorithm}:{hasher.hexdigest()}"


def check_content(data: bytes, digest: str, what: str) -> None:
    """Raise DigestMismatchError unless `data` hashes to `digest` by the algorithm it names; `what`
    names the content in the message (`blob <registry>/<repo>@<digest>`)."""
    actual = digest_of(data, digest.partition(":")[0])
    if actual != digest:
        raise DigestMismatchError(f"{what}: content hashes to {actual}")
