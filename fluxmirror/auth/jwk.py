"""JSON Web Keys and the JWTs `jwkPath`/`jwkValue` credentials sign with them. Pure, no file I/O.

Key files and tokens keep the reference's layout (member order, indentation, Go's JSON escaping), so
they are interchangeable between the two tools and diff cleanly against the reference's output.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from fluxmirror.gocompat.encoding_json import go_json

__all__ = [
    "JWKError",
    "SigningKey",
    "generate_ed25519_key_set",
    "load_signing_key",
    "new_uuid6",
    "sign_jwt",
]

# 100-nanosecond intervals between the Gregorian epoch (1582-10-15) and the Unix epoch.
_GREGORIAN_TO_UNIX: Final = 0x01B21DD213814000
_NOT_BEFORE_SKEW: Final = 30
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
_EC_CURVES: Final[dict[str, tuple[ec.EllipticCurve, str, hashes.HashAlgorithm]]] = {
    "P-256": (ec.SECP256R1(), "ES256", hashes.SHA256()),
    "P-384": (ec.SECP384R1(), "ES384", hashes.SHA384()),
    "P-521": (ec.SECP521R1(), "ES512", hashes.SHA512()),
}
_EC_HASHES: Final = {alg: digest for _, alg, digest in _EC_CURVES.values()}

_uuid_lock = threading.Lock()
_last_uuid_ticks = 0


class JWKError(ValueError):
    """A key that cannot sign, worded as one line that never repeats key material."""


@dataclass(frozen=True)
class SigningKey:
    """A private key ready to sign, with the JWS algorithm its type implies and the `kid` to announce."""

    kid: str
    algorithm: str
    key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def new_uuid6() -> str:
    """Return a time-ordered UUID (RFC 9562 version 6), so newer key ids sort after older ones.

    Ticks are forced to increase within the process: two ids minted in the same 100 ns still sort in
    creation order. Clock sequence and node are random, as RFC 9562 recommends for version 6.
    """
    global _last_uuid_ticks
    with _uuid_lock:
        ticks = max(time.time_ns() // 100 + _GREGORIAN_TO_UNIX, _last_uuid_ticks + 1)
        _last_uuid_ticks = ticks
    value = (ticks >> 12) << 80 | 0x6 << 76 | (ticks & 0xFFF) << 64 | 0b10 << 62 | secrets.randbits(62)
    return str(uuid.UUID(int=value))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _render_key_set(jwk: dict[str, str]) -> bytes:
    return go_json({"keys": [jwk]}, indent=2) + b"\n"


def generate_ed25519_key_set(kid: str) -> tuple[bytes, bytes]:
    """Mint an Ed25519 pair and return the (private, public) JWK set files exactly as `keygen` writes them."""
    private = Ed25519PrivateKey.generate()
    public_jwk = {
        "use": "sig",
        "kty": "OKP",
        "kid": kid,
        "crv": "Ed25519",
        "alg": "EdDSA",
        "x": _b64url(private.public_key().public_bytes_raw()),
    }
    private_jwk = {**public_jwk, "d": _b64url(private.private_bytes_raw())}
    return _render_key_set(private_jwk), _render_key_set(public_jwk)


def _member(jwk: Mapping[str, object], name: str) -> str:
    value = jwk.get(name)
    if value is None:
        raise JWKError(f'JWK is missing the "{name}" member')
    if not isinstance(value, str):
        raise JWKError(f'JWK member "{name}" must be a string')
    return value


def _bytes_member(jwk: Mapping[str, object], name: str, size: int) -> bytes:
    # Trailing padding is tolerated, as Go's JOSE libraries do; any other non-base64url byte is not.
    text = _member(jwk, name).rstrip("=")
    if not _BASE64URL.fullmatch(text):
        raise JWKError(f'JWK member "{name}" is not valid base64url')
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        raise JWKError(f'JWK member "{name}" is not valid base64url') from None
    if len(raw) != size:
        raise JWKError(f'JWK member "{name}" must be {size} bytes, got {len(raw)}')
    return raw


def _require_private(jwk: Mapping[str, object]) -> None:
    if "d" not in jwk:
        raise JWKError('JWK is a public key: a private key (the "d" member) is required to sign')


def _load_ed25519(jwk: Mapping[str, object]) -> tuple[Ed25519PrivateKey, str]:
    curve = _member(jwk, "crv")
    if curve != "Ed25519":
        raise JWKError(f'unsupported OKP curve "{curve}": only Ed25519 is supported')
    _require_private(jwk)
    key = Ed25519PrivateKey.from_private_bytes(_bytes_member(jwk, "d", 32))
    if key.public_key().public_bytes_raw() != _bytes_member(jwk, "x", 32):
        raise JWKError('JWK public key "x" does not match its private key "d"')
    return key, "EdDSA"


def _load_ec(jwk: Mapping[str, object]) -> tuple[ec.EllipticCurvePrivateKey, str]:
    name = _member(jwk, "crv")
    if name not in _EC_CURVES:
        raise JWKError(f'unsupported EC curve "{name}": only P-256, P-384 and P-521 are supported')
    curve, algorithm, _ = _EC_CURVES[name]
    _require_private(jwk)
    size = (curve.key_size + 7) // 8
    scalar = int.from_bytes(_bytes_member(jwk, "d", size), "big")
    try:
        key = ec.derive_private_key(scalar, curve)
    except ValueError:
        raise JWKError(f'JWK private key "d" is out of range for {name}') from None
    point = key.public_key().public_numbers()
    x = int.from_bytes(_bytes_member(jwk, "x", size), "big")
    y = int.from_bytes(_bytes_member(jwk, "y", size), "big")
    if (point.x, point.y) != (x, y):
        raise JWKError('JWK public key "x"/"y" does not match its private key "d"')
    return key, algorithm


def _single_jwk(document: object) -> Mapping[str, object]:
    if not isinstance(document, dict):
        raise JWKError("JWK must be a JSON object")
    if "keys" not in document:
        return document
    keys = document["keys"]
    if not isinstance(keys, list):
        raise JWKError('JWK set member "keys" must be an array')
    if len(keys) != 1:
        raise JWKError(f"JWK set must contain exactly one key, got {len(keys)}")
    if not isinstance(keys[0], dict):
        raise JWKError("JWK set key must be a JSON object")
    return keys[0]


def load_signing_key(data: str | bytes) -> SigningKey:
    """Read a private JWK, bare or as a one-key set; the algorithm follows the key type, never `alg`."""
    try:
        document = json.loads(data)
    except json.JSONDecodeError as exc:
        # The decoder's own text can quote the input; position alone is safe to show.
        raise JWKError(f"JWK is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except UnicodeDecodeError:
        raise JWKError("JWK is not valid UTF-8") from None
    jwk = _single_jwk(document)
    kid = jwk.get("kid", "")
    if not isinstance(kid, str):
        raise JWKError('JWK member "kid" must be a string')
    key_type = _member(jwk, "kty")
    key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    if key_type == "OKP":
        key, algorithm = _load_ed25519(jwk)
    elif key_type == "EC":
        key, algorithm = _load_ec(jwk)
    else:
        raise JWKError(f'unsupported JWK key type "{key_type}": only OKP (Ed25519) and EC keys can sign')
    return SigningKey(kid=kid, algorithm=algorithm, key=key)


def _signature(key: SigningKey, message: bytes) -> bytes:
    if isinstance(key.key, Ed25519PrivateKey):
        return key.key.sign(message)
    # JWS wants ECDSA as fixed-width R||S, not the DER structure cryptography returns.
    r, s = decode_dss_signature(key.key.sign(message, ec.ECDSA(_EC_HASHES[key.algorithm])))
    size = (key.key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def sign_jwt(
    key: SigningKey,
    *,
    issuer: str,
    subject: str,
    audience: str,
    lifetime_seconds: float,
    now: float | None = None,
) -> str:
    """Sign a compact JWT for a registry; `nbf` is backdated 30 s to absorb the registry's clock skew."""
    issued = time.time() if now is None else now
    header = {"alg": key.algorithm, "kid": key.kid, "typ": "JWT"}
    claims = {
        "iss": issuer,
        "sub": subject,
        "aud": [audience],
        "exp": math.floor(issued + lifetime_seconds),
        "nbf": math.floor(issued - _NOT_BEFORE_SKEW),
        "iat": math.floor(issued),
        "jti": secrets.token_hex(16),
    }
    signing_input = f"{_b64url(go_json(header))}.{_b64url(go_json(claims))}".encode("ascii")
    return f"{signing_input.decode('ascii')}.{_b64url(_signature(key, signing_input))}"
