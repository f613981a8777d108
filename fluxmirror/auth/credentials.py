"""What a registry credential is, and the one interface every credential source implements.

The registry client asks a `CredentialSource` for the credential of a registry (and repository)
whenever it needs one; the ambient Docker config, the config's `hosts` entries and cloud providers
are all sources behind this seam, so the client never knows where a secret came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fluxmirror.scrub import remember

__all__ = ["ANONYMOUS", "Credential", "CredentialSource"]


@dataclass(frozen=True, slots=True)
class Credential:
    """One registry credential; all fields empty means anonymous.

    - `username`/`password`: used in the auth challenge (Basic, or at the token endpoint).
    - `identity_token`: an OAuth2 refresh token, exchanged at the token endpoint.
    - `registry_token`: a bearer token sent to the registry as-is, with no exchange.
    """

    username: str = ""
    password: str = ""
    identity_token: str = ""
    registry_token: str = ""

    def __post_init__(self) -> None:
        remember(self.password, self.identity_token, self.registry_token)

    @property
    def is_anonymous(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)

    def __repr__(self) -> str:
        """Never show secrets, even in a debugger or a log of a failed assertion."""
        kinds = [
            name
            for name, value in (
                ("username", self.username),
                ("password", self.password),
                ("identity_token", self.identity_token),
                ("registry_token", self.registry_token),
            )
            if value
        ]
        return f"Credential({', '.join(kinds) or 'anonymous'})"


ANONYMOUS = Credential()


class CredentialSource(Protocol):
    """Resolves the credential for a registry host (`host[:port]`) and a repository path."""

    async def resolve(self, registry: str, repository: str) -> Credential: ...
