"""`azure` (a Microsoft Entra access token for `<aud>/.default`) and `acr` (Azure Container
Registry credentials from an Entra token exchanged at the registry).

`azure` uses the default Azure credential chain as the reference does: environment, workload
identity, managed identity, then the Azure CLI and Developer CLI (caches and IDE sign-ins, which Go
does not read, are left out). `acr` never shells out: environment, workload identity and managed
identity only, asking for the ACR audience `https://containerregistry.azure.net/.default`; the
token is exchanged at `https://<host>/oauth2/exchange` for an ACR refresh token, which is the
password of the fixed username `00000000-0000-0000-0000-000000000000` and expires when its `exp`
claim says.

azure-identity is used synchronously, in threads; the credential object is kept for the run so MSAL
caches and refreshes its tokens.
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import urlencode

import msgspec
from yarl import URL

from fluxmirror.auth.blocking import run_blocking
from fluxmirror.auth.providers.base import (
    ProviderError,
    RegistryLogin,
    checked_token,
    import_extra,
    jwt_expiry,
)
from fluxmirror.auth.providers.endpoint import exchange
from fluxmirror.http.session import HttpSession

__all__ = ["ACRLogin", "EntraToken"]

ACR_HOST: Final = re.compile(r"^.+\.(azurecr\.io|azurecr\.cn|azurecr\.de|azurecr\.us)$")
ACR_SCOPE: Final = "https://containerregistry.azure.net/.default"
ACR_USERNAME: Final = "00000000-0000-0000-0000-000000000000"
ACR_API_VERSION: Final = "2021-07-01"
_EXTRA: Final = "azure"
# Sign-ins the reference's chain does not read (token caches, IDEs, brokers, PowerShell).
_NOT_IN_GO_CHAIN: Final = {
    "exclude_shared_token_cache_credential": True,
    "exclude_visual_studio_code_credential": True,
    "exclude_powershell_credential": True,
    "exclude_broker_credential": True,
    "exclude_interactive_browser_credential": True,
}
_NO_SHELL_OUT: Final = {"exclude_cli_credential": True, "exclude_developer_cli_credential": True}


class _Entra:
    """One azure-identity credential chain and the tokens it gets, off the event loop."""

    def __init__(self, options: dict[str, bool]) -> None:
        self._options = options
        self._credential: Any = None

    async def token(self, scope: str) -> str:
        return await run_blocking(self._token, scope)

    def _token(self, scope: str) -> str:
        identity = import_extra("azure.identity", _EXTRA)
        exceptions = import_extra("azure.core.exceptions", _EXTRA)
        if self._credential is None:
            self._credential = identity.DefaultAzureCredential(**self._options)
        try:
            token = self._credential.get_token(scope).token
        except exceptions.AzureError as exc:
            raise ProviderError(" ".join(str(exc).split()) or type(exc).__name__) from None
        return checked_token(str(token), "the Entra access token")


class EntraToken:
    """Mints Entra access tokens for the `<aud>/.default` scope."""

    def __init__(self) -> None:
        self._entra = _Entra(_NOT_IN_GO_CHAIN)

    async def mint(self, audience: str) -> str:
        return await self._entra.token(f"{audience}/.default")


class _Exchanged(msgspec.Struct):
    refresh_token: str = ""


class ACRLogin:
    """Logs in to one ACR registry through its `/oauth2/exchange` endpoint."""

    def __init__(self, host: str, http: HttpSession) -> None:
        hostname = host.rsplit(":", 1)[0] if re.search(r":\d+$", host) else host
        if ACR_HOST.match(hostname) is None:
            raise ProviderError(f"invalid ACR registry: '{host}'. must match {ACR_HOST.pattern}")
        self._host = host
        self._http = http
        self._entra = _Entra({**_NOT_IN_GO_CHAIN, **_NO_SHELL_OUT})

    async def login(self) -> RegistryLogin:
        access_token = await self._entra.token(ACR_SCOPE)
        refresh_token = await self._exchange(access_token)
        return RegistryLogin(ACR_USERNAME, refresh_token, jwt_expiry(refresh_token, "the ACR refresh token"))

    async def _exchange(self, access_token: str) -> str:
        url = URL.build(scheme="https", authority=self._host, path="/oauth2/exchange")
        form = urlencode({"grant_type": "access_token", "service": self._host, "access_token": access_token})
        answer = await exchange(
            self._http,
            "POST",
            url,
            _Exchanged,
            failure="ACR token exchange failed",
            params={"api-version": ACR_API_VERSION},
            form=form.encode(),
        )
        refresh_token = answer.refresh_token
        if not refresh_token:
            raise ProviderError("the ACR token exchange response carried no refresh_token")
        return checked_token(refresh_token, "the ACR refresh token")
