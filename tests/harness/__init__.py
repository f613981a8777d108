"""Test-side infrastructure: real registries, a token server, a test PKI, skopeo and a tiny client.

Nothing here imports the product, so it can cross-check the product independently.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic_header(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    def matches_basic(self, header: str | None) -> bool:
        """Whether an `Authorization`-style header carries these credentials (RFC 7617: the scheme
        is case-insensitive, then `user:password` in base64)."""
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return decoded == f"{self.username}:{self.password}"

    def skopeo(self) -> str:
        return f"{self.username}:{self.password}"


TEST_USER = Credentials("fluxmirror", "s3cret-Pa55word")
"""The one user the htpasswd registry and the token server accept."""
