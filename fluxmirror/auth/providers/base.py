"""What every provider is, and which module builds each one.

The modules are imported when a provider is built, not before: each pulls in a cloud SDK
(boto3, google-auth, azure-identity, py-spiffe) that costs start-up time and is an optional extra.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from fluxmirror.scrub import remember

if TYPE_CHECKING:
    from fluxmirror.http.session import HttpSession

__all__ = [
    "ProviderError",
    "RegistryLogin",
    "RegistryProvider",
    "TokenProvider",
    "checked_token",
    "import_extra",
    "jwt_expiry",
    "registry_provider",
    "token_provider",
]

_HEADER_SAFE: Final = re.compile(r"[\x21-\x7e]+")


class ProviderError(Exception):
    """A provider could not mint: the cause, in one line, without the host (its caller adds it)."""


@dataclass(frozen=True, slots=True, repr=False)
class RegistryLogin:
    """A cloud registry's native credentials and when they expire (Unix seconds)."""

    username: str
    password: str
    expires: float

    def __repr__(self) -> str:
        return f"RegistryLogin(username={self.username!r}, expires={self.expires})"


class TokenProvider(Protocol):
    """Mints a token for an audience (`hosts[].credential.provider`)."""

    async def mint(self, audience: str) -> str: ...


class RegistryProvider(Protocol):
    """Logs in to one cloud registry host (`hosts[].provider`)."""

    async def login(self) -> RegistryLogin: ...


def token_provider(name: str, http: HttpSession) -> TokenProvider:
    """The token provider called `name` (validated at load: one of docs/providers.md's names)."""
    if name in ("github", "forgejo"):
        from fluxmirror.auth.providers.actions import ActionsOIDC

        return ActionsOIDC(http)
    if name == "gcp":
        from fluxmirror.auth.providers.gcp import GoogleIDToken

        return GoogleIDToken()
    if name == "azure":
        from fluxmirror.auth.providers.azure import EntraToken

        return EntraToken()
    if name == "aws":
        from fluxmirror.auth.providers.aws import CallerIdentityEnvelope

        return CallerIdentityEnvelope()
    if name == "jwt-svid":
        from fluxmirror.auth.providers.svid import JwtSvid

        return JwtSvid()
    raise ProviderError(f'unsupported credential provider "{name}"')


def registry_provider(name: str, host: str, http: HttpSession) -> RegistryProvider:
    """The registry provider called `name` for `host`; raises ProviderError when the host is not one
    of that cloud's registries (checked before anything is minted)."""
    if name == "ecr":
        from fluxmirror.auth.providers.aws import ECRLogin

        return ECRLogin(host)
    if name == "acr":
        from fluxmirror.auth.providers.azure import ACRLogin

        return ACRLogin(host, http)
    if name == "gar":
        from fluxmirror.auth.providers.gcp import GARLogin

        return GARLogin(host)
    raise ProviderError(f'unsupported registry provider "{name}"')


def import_extra(module: str, extra: str) -> Any:
    """Import an optional SDK, or fail in one line naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ProviderError(
            f"the {module.split('.')[0]} package is not installed: pip install 'fluxmirror[{extra}]'"
        ) from None


def checked_token(token: str, what: str) -> str:
    """`token` if it can travel in an `Authorization` header (visible ASCII, no spaces): a minted
    value comes from the network and must not smuggle header lines or spaces into requests."""
    if not token:
        raise ProviderError(f"{what} is empty")
    if _HEADER_SAFE.fullmatch(token) is None:
        raise ProviderError(f"{what} contains characters a credential cannot carry")
    remember(token)
    return token


def jwt_expiry(token: str, what: str = "minted token") -> float:
    """The `exp` claim of a JWT, read without verifying it (the registry verifies; the expiry only
    decides when to mint again)."""
    try:
        segment = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError):
        raise ProviderError(f"{what} is not a JWT") from None
    expiry = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(expiry, bool) or not isinstance(expiry, int | float):
        raise ProviderError(f"{what} has no exp claim")
    return float(expiry)
