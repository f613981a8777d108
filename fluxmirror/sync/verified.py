"""Verifications remembered across runs, under `--state-dir` (docs/verify.md#cache).

A keyless signature does not expire: once a digest's signature has passed every check against a
trusted root for an entry's identities, it passes again for as long as that root and those
identities are the same. So a verdict is stored under a key made of the trusted root's digest, the
`matchOIDCIdentity` items and the subject digest, with what the report needs (issuer, identity,
integrated time); `minAge` is judged again at each use. A run that finds every selected digest here
fetches no signature and never loads sigstore-python: a no-op re-sync with `verify` costs about
what one without it does. A changed root (a key rotated or revoked through TUF), changed
identities or a new digest miss the cache and are verified in full. Failures are never stored.

The directory must be as trusted as the config: whoever can write it can vouch for a digest.
Entries are written to a temporary file and renamed, mode 0600 in a 0700 directory; an entry
that cannot be read or parsed is a miss.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import msgspec

from fluxmirror.api.config import OIDCIdentity
from fluxmirror.sync.logfmt import kv
from fluxmirror.sync.statedir import write_private

__all__ = ["Remembered", "VerifiedCache"]

log = logging.getLogger(__name__)


class Remembered(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a verified signature said: its issuer, identity and (Unix) integrated time, if any."""

    issuer: str
    identity: str
    integrated_time: int | None = None


_DECODER = msgspec.json.Decoder(Remembered)


class VerifiedCache:
    """Verdicts under `<state-dir>/verified/`, for one trusted root and one entry's identities."""

    def __init__(self, state_dir: str, root_digest: str, identities: Sequence[OIDCIdentity]) -> None:
        self._root = Path(state_dir)
        self._directory = self._root / "verified"
        policy = msgspec.json.encode([[item.issuer, item.subject] for item in identities])
        self._scope = hashlib.sha256(root_digest.encode() + b"\0" + policy).hexdigest()

    def _path(self, subject_digest: str) -> Path:
        key = hashlib.sha256(f"{self._scope}\0{subject_digest}".encode()).hexdigest()
        return self._directory / key[:2] / key

    def get(self, subject_digest: str) -> Remembered | None:
        try:
            return _DECODER.decode(self._path(subject_digest).read_bytes())
        except (OSError, msgspec.DecodeError):
            return None

    def put(self, subject_digest: str, remembered: Remembered) -> None:
        """Store a verdict; a state directory that cannot be written only costs the next run time."""
        try:
            write_private(self._path(subject_digest), msgspec.json.encode(remembered), root=self._root)
        except OSError as exc:
            log.info(kv("verification not remembered", digest=subject_digest, err=str(exc)))
