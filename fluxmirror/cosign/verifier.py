"""One verdict per signature: a cosign bundle or a legacy `.sig` signature, checked against the
trusted root and the accepted identities, bound to the subject digest.

sigstore-python does the cryptography (docs/verify.md#checks): the certificate chains to a trusted
Fulcio CA at the verified time, carries one SCT from a trusted CT log, the transparency-log entry is
signed by a trusted Rekor key (inclusion proof and checkpoint, or the signed entry timestamp), the
verified times fall inside the certificate's validity, the signature covers the payload, and the log
entry is the one for this signature. This module adds the identity policy, the statement check, and
the integrated time a `minAge` may rely on: a Rekor `integratedTime` counts only when the entry also
carries its signed promise (SET), which sigstore-python then verifies; without one the time is not
authenticated and is not used.

Verification is CPU-bound and synchronous: callers run it in a thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sigstore.errors import Error as SigstoreError
from sigstore.models import Bundle, InvalidBundle, TrustedRoot
from sigstore.verify import Verifier

from fluxmirror.api.config import OIDCIdentity
from fluxmirror.cosign._json import json_object
from fluxmirror.cosign.identity import Identity, IdentityPolicy, certificate_identity
from fluxmirror.cosign.legacy import LegacyError, verify_legacy
from fluxmirror.cosign.statement import StatementError, check_simple_signing, check_statement

__all__ = ["MalformedSignature", "SignatureError", "SignatureVerifier", "Verified"]

SUPPORTED_BUNDLE_TYPES: Final = (
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
)


class SignatureError(ValueError):
    """A signature did not verify; the message is the detail after `signature verification failed: `."""


class MalformedSignature(SignatureError):
    """A signature that cannot even be read (not a v0.3+ bundle, not parseable); its message stands
    alone (`parse sigstore bundle: …`), as in the reference."""


@dataclass(frozen=True, slots=True)
class Verified:
    """A signature that passed every check: who signed it, and when the log says it was signed
    (Unix seconds; None when the log entry carries no signed promise)."""

    identity: Identity
    integrated_time: int | None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _promised_time(entry: Mapping[str, Any]) -> int | None:
    """The entry's integrated time when its signed promise is there to authenticate it."""
    if not entry.get("inclusionPromise"):
        return None
    value = entry.get("integratedTime")
    try:
        return int(value) if isinstance(value, int | str) and not isinstance(value, bool) else None
    except ValueError:
        return None


class SignatureVerifier:
    """Verifies signatures against one trusted root for one entry's `matchOIDCIdentity`."""

    def __init__(self, trusted_root: TrustedRoot, identities: Sequence[OIDCIdentity]) -> None:
        self._trusted_root = trusted_root
        self._verifier = Verifier(trusted_root=trusted_root)
        self._policy = IdentityPolicy(identities)

    def verify_bundle(self, raw: bytes, subject_digest: str) -> Verified:
        """A cosign (v0.3+) bundle: a DSSE in-toto statement naming `subject_digest`."""
        document = json_object(raw)
        if document is None:
            raise MalformedSignature("parse sigstore bundle: not a JSON object")
        if document.get("mediaType") not in SUPPORTED_BUNDLE_TYPES:
            raise MalformedSignature("unsupported sigstore bundle version: minimum v0.3 required")
        try:
            bundle = Bundle.from_json(raw)
        except (InvalidBundle, ValueError) as exc:
            raise MalformedSignature(f"parse sigstore bundle: {_one_line(exc)}") from None
        if "dsseEnvelope" not in document:
            raise MalformedSignature("parse sigstore bundle: no DSSE envelope (not an image signature)")
        try:
            payload_type, payload = self._verifier.verify_dsse(bundle, self._policy)
            check_statement(payload_type, payload, subject_digest)
        except (SigstoreError, StatementError) as exc:
            raise SignatureError(_one_line(exc)) from None
        except Exception as exc:  # malformed certificates surface as raw cryptography errors
            raise SignatureError(_one_line(exc)) from None
        entries = document.get("verificationMaterial", {}).get("tlogEntries") or [{}]
        return Verified(certificate_identity(bundle.signing_certificate), _promised_time(entries[0]))

    def verify_legacy(self, payload: bytes, annotations: Mapping[str, str], subject_digest: str) -> Verified:
        """A legacy `sha256-<hex>.sig` layer: a simple-signing payload naming `subject_digest`, checked
        against the same trusted root (`fluxmirror.cosign.legacy`)."""
        try:
            check_simple_signing(payload, subject_digest)
            leaf, integrated = verify_legacy(payload, annotations, self._trusted_root, self._policy)
        except (SigstoreError, StatementError, LegacyError) as exc:
            raise SignatureError(_one_line(exc)) from None
        except Exception as exc:  # malformed certificates surface as raw cryptography errors
            raise SignatureError(_one_line(exc)) from None
        return Verified(certificate_identity(leaf), integrated)
