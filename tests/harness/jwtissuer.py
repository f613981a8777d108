"""A stand-in for an identity provider's signing key: mints ES256 JWTs and verifies them.

The fake token endpoints (Actions OIDC, GCE metadata, Entra, ACR, the SPIFFE Workload API) mint
with an issuer, and the registry side of a test verifies what it was presented with the same
issuer, so a test proves that the very token an endpoint minted reached the registry, unaltered,
for the right audience. Every minted token is recorded, so a test can count mints (re-minting past
half a token's lifetime shows up as a second record).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["JwtIssuer", "Minted"]


@dataclass(frozen=True)
class Minted:
    """One token as issued: its compact form and its claims."""

    token: str
    claims: dict[str, Any]


class JwtIssuer:
    """ES256 JWTs from `issuer` (the `iss` claim), with key id `kid`."""

    def __init__(self, issuer: str, *, kid: str | None = None) -> None:
        self.issuer = issuer
        self.kid = kid or secrets.token_hex(8)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self._lock = threading.Lock()
        self._minted: list[Minted] = []

    def mint(self, *, subject: str, audience: str | list[str], lifetime: float, **claims: Any) -> str:
        """A token valid from now for `lifetime` seconds (`exp` is rounded down to whole seconds)."""
        now = time.time()
        body: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": int(now),
            "nbf": int(now) - 1,
            "exp": int(now + lifetime),
            "jti": secrets.token_hex(8),
            **claims,
        }
        token = jwt.encode(body, self.key, algorithm="ES256", headers={"kid": self.kid})
        with self._lock:
            self._minted.append(Minted(token, body))
        return token

    def verify(self, token: str, audience: str) -> dict[str, Any]:
        """The claims of `token` if this issuer signed it for `audience` and it has not expired;
        raises `jwt.InvalidTokenError` otherwise."""
        claims: dict[str, Any] = jwt.decode(
            token, self.key.public_key(), algorithms=["ES256"], audience=audience, issuer=self.issuer
        )
        return claims

    def accepts(self, token: str, audience: str) -> bool:
        try:
            self.verify(token, audience)
        except jwt.InvalidTokenError:
            return False
        return True

    @property
    def minted(self) -> list[Minted]:
        with self._lock:
            return list(self._minted)

    def reset(self) -> None:
        with self._lock:
            self._minted.clear()
