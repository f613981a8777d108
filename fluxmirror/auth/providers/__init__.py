"""Credentials minted from an ambient identity (docs/providers.md).

Two kinds, as the config has them:

- token providers (`hosts[].credential.provider`: github, forgejo, gcp, azure, aws, jwt-svid) mint
  a token for an audience, a JWT whose `exp` says how long it lives;
- registry providers (`hosts[].provider`: ecr, acr, gar) log in to a cloud registry and return
  its native username and password with their expiry.

Each provider lives in its own module and imports its SDK (an optional extra) only when a config
names it. Providers raise `ProviderError` with the cause in the words of the SDK or endpoint;
`fluxmirror.auth.hosts` names the host and provider around it. Blocking SDK calls run in threads
(`fluxmirror.auth.blocking`), never on the event loop.
"""

from __future__ import annotations

from fluxmirror.auth.providers.base import (
    ProviderError,
    RegistryLogin,
    RegistryProvider,
    TokenProvider,
    registry_provider,
    token_provider,
)

__all__ = [
    "ProviderError",
    "RegistryLogin",
    "RegistryProvider",
    "TokenProvider",
    "registry_provider",
    "token_provider",
]
