"""The trusted root signatures are verified against (docs/verify.md#trusted-root).

As `flux mirror` does, the default is Sigstore's public-good instance, its `trusted_root.json`
fetched once per run through Sigstore's TUF repository, which the bundled TUF root bootstraps: every
piece of metadata is signature-checked up to that root, so a mirror or proxy cannot swap the Fulcio
CAs or log keys. Nothing is written outside a temporary directory, removed at once (a read-only
container filesystem works; there is no cache to go stale or be tampered with). A private Sigstore
deployment points `FLUXMIRROR_TUF_URL` at its repository and `FLUXMIRROR_TUF_ROOT` at its TUF
root. An air-gapped run pins a `trusted_root.json` with `--trusted-root` (or
`FLUXMIRROR_TRUSTED_ROOT`) and makes no request for it at all.

python-tuf and sigstore-python are synchronous: callers run these functions in a thread. Reading and
fetching give bytes, parsed separately: a run whose signatures are all in the verification cache
(docs/verify.md#cache) needs only the root's digest, never sigstore-python.
"""

from __future__ import annotations

import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from sigstore.models import TrustedRoot

__all__ = [
    "PUBLIC_GOOD_TUF_URL",
    "TRUSTED_ROOT_TARGET",
    "TrustRootError",
    "bundled_tuf_root",
    "fetch_trusted_root",
    "load_trusted_root",
    "parse_trusted_root",
    "read_pinned_root",
]

PUBLIC_GOOD_TUF_URL: Final = "https://tuf-repo-cdn.sigstore.dev"
TRUSTED_ROOT_TARGET: Final = "trusted_root.json"
_BUNDLED_ROOT: Final = ("sigstore._store", "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev", "root.json")


class TrustRootError(ValueError):
    """The trusted root could not be read or fetched; the message says why, in one line."""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def read_pinned_root(path: str) -> bytes:
    """The bytes of a pinned `trusted_root.json`, read without any network."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TrustRootError(f"read trusted root {path}: {exc.strerror or _one_line(exc)}") from None


def parse_trusted_root(data: bytes, where: str) -> TrustedRoot:
    """A trusted root (Sigstore's protobuf-specs JSON); `where` names its origin in errors."""
    from sigstore.models import TrustedRoot
    from sigstore_models.trustroot.v1 import TrustedRoot as TrustedRootDocument

    try:
        return TrustedRoot(TrustedRootDocument.from_json(data))
    except Exception as exc:  # pydantic's ValidationError, JSON errors: the bytes are not a trusted root
        raise TrustRootError(f"read trusted root {where}: {_one_line(exc)}") from None


def load_trusted_root(path: str) -> TrustedRoot:
    """A pinned `trusted_root.json`, read and parsed."""
    return parse_trusted_root(read_pinned_root(path), path)


def bundled_tuf_root() -> bytes:
    """The public-good TUF root that sigstore-python ships (the trust anchor of the default path)."""
    package, directory, name = _BUNDLED_ROOT
    return resources.files(package).joinpath(directory, name).read_bytes()


def fetch_trusted_root(url: str, tuf_root: bytes) -> bytes:
    """Refresh the TUF repository at `url` from `tuf_root` and return its trusted root target's bytes."""
    from tuf.ngclient.updater import Updater

    with tempfile.TemporaryDirectory(prefix="fluxmirror-tuf-") as scratch:
        metadata, targets = Path(scratch, "metadata"), Path(scratch, "targets")
        metadata.mkdir()
        targets.mkdir()
        try:
            updater = Updater(
                metadata_dir=str(metadata),
                metadata_base_url=url.rstrip("/") + "/",
                target_base_url=url.rstrip("/") + "/targets/",
                target_dir=str(targets),
                bootstrap=tuf_root,
            )
            updater.refresh()
            info = updater.get_targetinfo(TRUSTED_ROOT_TARGET)
            if info is None:
                raise TrustRootError(f"TUF repository {url} has no {TRUSTED_ROOT_TARGET}")
            return Path(updater.download_target(info)).read_bytes()
        except TrustRootError:
            raise
        except Exception as exc:  # python-tuf's RepositoryError, DownloadError and friends
            raise TrustRootError(f"{url}: {_one_line(exc)}") from None
