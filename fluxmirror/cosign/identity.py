"""Which signing identities are accepted: `matchOIDCIdentity`, as sigstore-go (and so `flux mirror`)
checks it.

An item accepts a Fulcio certificate whose OIDC issuer equals `issuer` exactly and whose subject
alternative name matches `subject`, a Go regular expression searched unanchored (RE2, so no pattern
can stall a run). Items are OR'ed. The SAN is the certificate's first URI, else its first email, else
its Fulcio `otherName` (OID 1.3.6.1.4.1.57264.1.7); the issuer is extension 1.3.6.1.4.1.57264.1.8
(a DER UTF8String), else the legacy 1.3.6.1.4.1.57264.1.1 (raw text). A refusal is worded as
sigstore-go words it, naming the last item tried:
`failed to verify certificate identity: no matching CertificateIdentity found, last error: expected SAN
value to match regex "<subject>", got "<san>"` (or `expected Issuer to be "<issuer>", got "<actual>"`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier
from sigstore.errors import VerificationError

from fluxmirror.api.config import OIDCIdentity
from fluxmirror.gocompat.regexp import Regexp, compile_go

__all__ = ["Identity", "IdentityPolicy", "certificate_identity"]

ISSUER_V2: Final = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
ISSUER_V1: Final = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OTHERNAME_SAN: Final = ObjectIdentifier("1.3.6.1.4.1.57264.1.7")
_UTF8STRING_TAG: Final = 0x0C


@dataclass(frozen=True, slots=True)
class Identity:
    """Who signed, as the certificate says: its OIDC issuer and its subject alternative name."""

    issuer: str
    san: str


def _der_utf8(value: bytes) -> str:
    """A DER UTF8String's text (tag 0x0C, a short or long length, the bytes)."""
    if len(value) < 2 or value[0] != _UTF8STRING_TAG:
        raise ValueError("not a DER UTF8String")
    length, offset = value[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, offset = int.from_bytes(value[2 : 2 + count], "big"), 2 + count
    if offset + length != len(value):
        raise ValueError("DER UTF8String length does not match")
    return value[offset:].decode("utf-8")


def _extension(certificate: x509.Certificate, oid: ObjectIdentifier) -> bytes | None:
    try:
        extension = certificate.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None
    value = extension.value
    return value.value if isinstance(value, x509.UnrecognizedExtension) else value.public_bytes()


def _issuer(certificate: x509.Certificate) -> str:
    v2 = _extension(certificate, ISSUER_V2)
    if v2 is not None:
        return _der_utf8(v2)
    v1 = _extension(certificate, ISSUER_V1)
    return v1.decode("utf-8") if v1 is not None else ""


def _san(certificate: x509.Certificate) -> str:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ""
    for kind in (x509.UniformResourceIdentifier, x509.RFC822Name):
        values = names.get_values_for_type(kind)
        if values:
            return str(values[0])
    for other in names.get_values_for_type(x509.OtherName):
        if other.type_id == OTHERNAME_SAN:
            return _der_utf8(other.value)
    return ""


def certificate_identity(certificate: x509.Certificate) -> Identity:
    """The certificate's issuer and SAN (empty strings when absent or unreadable)."""
    try:
        return Identity(_issuer(certificate), _san(certificate))
    except (ValueError, UnicodeDecodeError):
        return Identity("", "")


class IdentityPolicy:
    """A sigstore-python verification policy (`verify(cert)` raising VerificationError) for the
    config's `matchOIDCIdentity` items; `matched` is the identity of the last certificate accepted."""

    def __init__(self, identities: Sequence[OIDCIdentity]) -> None:
        self._identities: list[tuple[str, Regexp]] = [(item.issuer, compile_go(item.subject)) for item in identities]

    def verify(self, cert: x509.Certificate) -> None:
        identity = certificate_identity(cert)
        errors: list[str] = []
        for issuer, subject in self._identities:
            if subject.search(identity.san) is None:
                errors.append(f'expected SAN value to match regex "{subject.pattern}", got "{identity.san}"')
            elif identity.issuer != issuer:
                errors.append(f'expected Issuer to be "{issuer}", got "{identity.issuer}"')
            else:
                return
        last = f", last error: {errors[-1]}" if errors else ""
        raise VerificationError(f"failed to verify certificate identity: no matching CertificateIdentity found{last}")
