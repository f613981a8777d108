"""Test-side infrastructure: real registries, a token server, a test PKI, skopeo and a tiny client.

Nothing here imports the product, so it can cross-check the product independently.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic_header(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    def skopeo(self) -> str:
        return f"{self.username}:{self.password}"


TEST_USER = Credentials("fluxmirror", "s3cret-Pa55word")
"""The one user the htpasswd registry and the token server accept."""
