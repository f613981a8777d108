"""What a verified signature must say about the image: that it signs the very manifest being mirrored.

sigstore-python proves who signed which bytes; what those bytes claim is the caller's to check:

- a DSSE bundle's payload must be an in-toto Statement (v1, or v0.1 as older `cosign attest` wrote)
  of type `application/vnd.in-toto+json`, one of whose `subject[].digest` entries is the subject's
  digest (hex compared in lower case; `subject.name` is not signed by cosign and is ignored). Any
  predicate type counts, as `cosign verify` counts any verified bundle (docs/verify.md#predicates);
- a legacy simple-signing payload's `critical.image.docker-manifest-digest` must be the subject's
  digest, and its `critical.type` cosign's.
"""

from __future__ import annotations

import json
from typing import Any, Final

from fluxmirror.cosign._json import json_object

__all__ = ["StatementError", "check_simple_signing", "check_statement"]

IN_TOTO_PAYLOAD: Final = "application/vnd.in-toto+json"
STATEMENT_TYPES: Final = ("https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1")
SIMPLE_SIGNING_TYPE: Final = "cosign container image signature"


class StatementError(ValueError):
    """The signed payload does not bind the signature to the subject; the message says how."""


def _document(payload: bytes) -> dict[str, Any]:
    document = json_object(payload)
    if document is None:
        raise StatementError("signed payload is not a JSON object")
    return document


def _split(digest: str) -> tuple[str, str]:
    algorithm, _, hex_value = digest.partition(":")
    return algorithm, hex_value.lower()


def check_statement(payload_type: str, payload: bytes, subject_digest: str) -> None:
    """Raise StatementError unless the DSSE payload is an in-toto statement about `subject_digest`."""
    if payload_type != IN_TOTO_PAYLOAD:
        raise StatementError(f'unexpected DSSE payload type "{payload_type}"')
    statement = _document(payload)
    if statement.get("_type") not in STATEMENT_TYPES:
        raise StatementError(f"unsupported in-toto statement type {json.dumps(statement.get('_type'))}")
    algorithm, hex_value = _split(subject_digest)
    subjects = statement.get("subject")
    for subject in subjects if isinstance(subjects, list) else []:
        digests = subject.get("digest") if isinstance(subject, dict) else None
        signed = digests.get(algorithm) if isinstance(digests, dict) else None
        if isinstance(signed, str) and signed.lower() == hex_value:
            return
    raise StatementError("provided artifact digest does not match any digest in statement")


def check_simple_signing(payload: bytes, subject_digest: str) -> None:
    """Raise StatementError unless the legacy payload signs `subject_digest` as a cosign signature."""
    critical = _document(payload).get("critical")
    if not isinstance(critical, dict) or critical.get("type") != SIMPLE_SIGNING_TYPE:
        raise StatementError("signed payload is not a cosign container image signature")
    image = critical.get("image")
    signed = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    if not isinstance(signed, str) or _split(signed) != _split(subject_digest):
        raise StatementError(f"signed payload is for another image: {json.dumps(signed)}")
