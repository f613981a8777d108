"""Legacy cosign signatures (the `sha256-<hex>.sig` tag that cosign before v3 writes), verified piece
by piece against the same trusted root as bundles.

Such a signature is a simple-signing payload plus four layer annotations: the signature over the
payload, the Fulcio leaf certificate, its chain, and cosign's Rekor bundle (a `hashedrekord` entry
body with its integrated time and signed entry timestamp, the SET). sigstore-python cannot take it:
its bundle model requires an inclusion proof, which these signatures never carried (they hold the
SET only). So the checks sigstore-python makes for a bundle are made here, in the same order, with
`cryptography` and the trusted root's keys (docs/verify.md#legacy):

1. the leaf chains to a Fulcio CA of the trusted root (every listed CA is an anchor, as in
   sigstore-python; the chain annotation is never trusted) and the CA is valid at the integrated time;
2. the leaf carries an SCT from a trusted CT log, over the precertificate;
3. the leaf is a signing certificate (digitalSignature, codeSigning) and the identity policy accepts it;
4. the SET is the Rekor log's signature over the entry (body, integrated time, log ID and index),
   from a trusted Rekor key, so the integrated time is authenticated;
5. the integrated time is inside the leaf's validity;
6. the entry body is this signature's: the payload's sha256, the signature and the leaf;
7. the signature verifies over the payload with the leaf's key.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import rfc8785
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.certificate_transparency import LogEntryType
from cryptography.x509.oid import ExtendedKeyUsageOID

# sigstore-python keeps the key-ring types private; the trusted root's key rings need them.
from sigstore._internal.trust import KeyringPurpose
from sigstore._utils import KeyID
from sigstore.errors import Error as SigstoreError
from sigstore.models import TrustedRoot

from fluxmirror.cosign._json import json_object
from fluxmirror.cosign.identity import IdentityPolicy

__all__ = ["LEGACY_ANNOTATIONS", "LegacyError", "verify_legacy"]

SIGNATURE: Final = "dev.cosignproject.cosign/signature"
CERTIFICATE: Final = "dev.sigstore.cosign/certificate"
REKOR_BUNDLE: Final = "dev.sigstore.cosign/bundle"
LEGACY_ANNOTATIONS: Final = (SIGNATURE, CERTIFICATE, REKOR_BUNDLE)


class LegacyError(ValueError):
    """The legacy signature failed a check; the message names which."""


def _json_object(raw: bytes | str, what: str) -> dict[str, Any]:
    document = json_object(raw)
    if document is None:
        raise LegacyError(f"{what} is not a JSON object")
    return document


def _b64(value: object, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise LegacyError(f"{what} is not base64") from None


def _at(unix: int) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


def _valid_at(certificate: x509.Certificate, when: datetime) -> bool:
    return certificate.not_valid_before_utc <= when <= certificate.not_valid_after_utc


def _issuing_ca(leaf: x509.Certificate, root: TrustedRoot, when: datetime) -> x509.Certificate:
    """The trusted Fulcio CA certificate that signed `leaf`, valid at `when`."""
    for candidate in root.get_fulcio_certs():
        if candidate.subject != leaf.issuer:
            continue
        try:
            leaf.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        if _valid_at(candidate, when):
            return candidate
    raise LegacyError("certificate does not chain to a trusted Fulcio CA at the integrated time")


def _check_sct(leaf: x509.Certificate, issuer: x509.Certificate, root: TrustedRoot) -> None:
    """At least one embedded precertificate SCT verifies with a trusted CT log key (RFC 6962 §3.2)."""
    try:
        scts = leaf.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    except x509.ExtensionNotFound:
        raise LegacyError("certificate carries no signed certificate timestamp") from None
    issuer_key_hash = hashlib.sha256(issuer.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))
    tbs = leaf.tbs_precertificate_bytes
    keyring = root.ct_keyring(KeyringPurpose.VERIFY)
    for sct in scts:
        if sct.entry_type != LogEntryType.PRE_CERTIFICATE:
            continue
        stamp = sct.timestamp
        millis = calendar.timegm(stamp.utctimetuple()) * 1000 + stamp.microsecond // 1000
        signed = (
            bytes([0, 0])
            + millis.to_bytes(8, "big")
            + (1).to_bytes(2, "big")
            + issuer_key_hash.digest()
            + len(tbs).to_bytes(3, "big")
            + tbs
            + len(sct.extension_bytes).to_bytes(2, "big")
            + sct.extension_bytes
        )
        try:
            keyring.verify(key_id=KeyID(sct.log_id), signature=sct.signature, data=signed)
        except SigstoreError:
            continue
        return
    raise LegacyError("no signed certificate timestamp from a trusted CT log")


def _check_signing_certificate(leaf: x509.Certificate) -> None:
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        extended = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise LegacyError("certificate is not a signing certificate") from None
    if not usage.digital_signature or ExtendedKeyUsageOID.CODE_SIGNING not in extended:
        raise LegacyError("certificate is not a signing certificate")


def _check_set(rekor: Mapping[str, Any], root: TrustedRoot) -> tuple[int, dict[str, Any]]:
    """The SET's integrated time and the entry body it authenticates."""
    entry = rekor.get("Payload")
    if not isinstance(entry, dict):
        raise LegacyError("cosign Rekor bundle carries no entry")
    body, integrated, index, log_id = (entry.get(key) for key in ("body", "integratedTime", "logIndex", "logID"))
    if not (isinstance(body, str) and isinstance(log_id, str)):
        raise LegacyError("cosign Rekor bundle entry is malformed")
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in (integrated, index)):
        raise LegacyError("cosign Rekor bundle entry is malformed")
    assert isinstance(integrated, int) and isinstance(index, int)
    signed = rfc8785.dumps({"body": body, "integratedTime": integrated, "logID": log_id, "logIndex": index})
    try:
        key_id = bytes.fromhex(log_id)
    except ValueError:
        raise LegacyError("cosign Rekor bundle names an invalid log ID") from None
    try:
        root.rekor_keyring(KeyringPurpose.VERIFY).verify(
            key_id=KeyID(key_id), signature=_b64(rekor.get("SignedEntryTimestamp"), "SET"), data=signed
        )
    except SigstoreError:
        raise LegacyError("signed entry timestamp does not verify with a trusted Rekor key") from None
    return integrated, _json_object(_b64(body, "Rekor entry body"), "Rekor entry body")


def _check_body(body: Mapping[str, Any], payload: bytes, signature: bytes, leaf: x509.Certificate) -> None:
    if (body.get("kind"), body.get("apiVersion")) != ("hashedrekord", "0.0.1"):
        raise LegacyError(f"unsupported Rekor entry {body.get('kind')!s}/{body.get('apiVersion')!s}")
    spec = body.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    data_hash = (spec.get("data") or {}).get("hash") or {}
    signed = spec.get("signature") or {}
    public_key = (signed.get("publicKey") or {}).get("content")
    if data_hash.get("algorithm") != "sha256" or data_hash.get("value") != hashlib.sha256(payload).hexdigest():
        raise LegacyError("Rekor entry is for another payload")
    if _b64(signed.get("content"), "Rekor entry signature") != signature:
        raise LegacyError("Rekor entry is for another signature")
    try:
        logged = x509.load_pem_x509_certificate(_b64(public_key, "Rekor entry certificate"))
    except ValueError:
        raise LegacyError("Rekor entry certificate is malformed") from None
    if logged != leaf:
        raise LegacyError("Rekor entry is for another certificate")


def verify_legacy(
    payload: bytes, annotations: Mapping[str, str], root: TrustedRoot, policy: IdentityPolicy
) -> tuple[x509.Certificate, int]:
    """The leaf and the authenticated integrated time of a legacy signature that passes every check."""
    missing = [name for name in LEGACY_ANNOTATIONS if not annotations.get(name)]
    if missing:
        raise LegacyError(f"legacy signature lacks the {missing[0]} annotation")
    try:
        leaf = x509.load_pem_x509_certificate(annotations[CERTIFICATE].encode())
    except ValueError:
        raise LegacyError("legacy signature certificate is malformed") from None
    signature = _b64(annotations[SIGNATURE], "legacy signature")
    integrated, body = _check_set(_json_object(annotations[REKOR_BUNDLE], "cosign Rekor bundle"), root)
    when = _at(integrated)
    issuer = _issuing_ca(leaf, root, when)
    _check_sct(leaf, issuer, root)
    _check_signing_certificate(leaf)
    policy.verify(leaf)
    if not _valid_at(leaf, when):
        raise LegacyError("integrated time is outside the certificate's validity")
    _check_body(body, payload, signature, leaf)
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise LegacyError("unsupported certificate key type")
    try:
        key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise LegacyError("signature does not verify over the payload") from None
    return leaf, integrated
