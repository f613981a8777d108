"""`gcp` (a Google ID token for the audience) and `gar` (an access token for Artifact Registry),
both from Application Default Credentials.

ADC are found as Go's `google.FindDefaultCredentials` finds them: `GOOGLE_APPLICATION_CREDENTIALS`,
the gcloud well-known file, then the GCE/GKE metadata server. An ID token for a custom audience
needs a service account (a key file, an impersonated account or the metadata server); end-user
credentials from `gcloud auth application-default login` cannot mint one, so, as the reference
does, the default-audience `id_token` of their token response is used instead. Workload identity
federation (`external_account`, what google-github-actions/auth writes) mints through the service
account it impersonates (IAM Credentials `generateIdToken`), as the reference does; a federation
file without a service account to impersonate cannot mint ID tokens and says so.

google-auth is synchronous: every call runs in a thread, with its HTTP calls bounded in time.
"""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any, Final

from fluxmirror.auth.blocking import run_blocking
from fluxmirror.auth.providers.base import ProviderError, RegistryLogin, checked_token, import_extra

__all__ = ["GARLogin", "GoogleIDToken"]

GAR_HOST: Final = re.compile(r"^(((.+\.)?gcr\.io)|(.+-docker\.pkg\.dev)|(docker\.s3nsregistry\.fr))$")
GAR_USERNAME: Final = "oauth2accesstoken"
_EXTRA: Final = "gcp"
_TIMEOUT: Final = 30.0
_OPENID_SCOPES: Final = ("openid", "https://www.googleapis.com/auth/userinfo.email")
_GAR_SCOPES: Final = (
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/userinfo.email",
)


def _request() -> Any:
    """A google-auth HTTP request whose calls are bounded by `_TIMEOUT` unless they say otherwise."""
    import_extra("google.auth", _EXTRA)
    transport = import_extra("google.auth.transport.requests", _EXTRA)
    request = transport.Request()

    def bounded(*args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        return request(*args, timeout=timeout or _TIMEOUT, **kwargs)

    return bounded


def _default(scopes: tuple[str, ...] | None = None) -> Any:
    """`google.auth.default()`, with its "no credentials found" error in one line."""
    google_auth = import_extra("google.auth", _EXTRA)
    exceptions = import_extra("google.auth.exceptions", _EXTRA)
    try:
        credentials, _ = google_auth.default(scopes=list(scopes) if scopes else None)
    except exceptions.GoogleAuthError as exc:
        raise ProviderError(_one_line(exc)) from None
    return credentials


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _id_token(audience: str) -> str:
    exceptions = import_extra("google.auth.exceptions", _EXTRA)
    user_credentials = import_extra("google.oauth2.credentials", _EXTRA)
    external_account = import_extra("google.auth.external_account", _EXTRA)
    id_token = import_extra("google.oauth2.id_token", _EXTRA)
    request = _request()
    credentials = _default()
    try:
        if isinstance(credentials, user_credentials.Credentials):
            credentials = _default(_OPENID_SCOPES)
            credentials.refresh(request)
            token = getattr(credentials, "id_token", None)
            if not token:
                raise ProviderError("GCP credential response carried no id_token")
            return str(token)
        if isinstance(credentials, external_account.Credentials):
            return _federated_id_token(credentials, audience, request)
        return str(id_token.fetch_id_token(request, audience))
    except exceptions.GoogleAuthError as exc:
        raise ProviderError(_one_line(exc)) from None


def _federated_id_token(credentials: Any, audience: str, request: Any) -> str:
    """An ID token for the service account a federation file impersonates, asked for with the
    federated token itself (the pool's principal is the one granted to mint for that account)."""
    impersonated = import_extra("google.auth.impersonated_credentials", _EXTRA)
    account = credentials.service_account_email
    if not account:
        raise ProviderError(
            "workload identity federation credentials without service account impersonation cannot mint ID tokens"
        )
    info = {key: value for key, value in credentials.info.items() if key != "service_account_impersonation_url"}
    federated = type(credentials).from_info(info, scopes=[_GAR_SCOPES[0]])
    target = impersonated.Credentials(
        source_credentials=federated, target_principal=account, target_scopes=[_GAR_SCOPES[0]]
    )
    tokens = impersonated.IDTokenCredentials(target, target_audience=audience, include_email=True)
    tokens.refresh(request)
    return str(tokens.token)


class GoogleIDToken:
    """Mints Google-signed ID tokens for an audience."""

    async def mint(self, audience: str) -> str:
        return checked_token(await run_blocking(_id_token, audience), "the Google ID token")


class GARLogin:
    """Logs in to Artifact Registry (or Container Registry) as `oauth2accesstoken` with an ADC access
    token. The credentials object is kept, so google-auth refreshes it rather than starting over."""

    def __init__(self, host: str) -> None:
        hostname = host.rsplit(":", 1)[0] if re.search(r":\d+$", host) else host
        if GAR_HOST.match(hostname) is None:
            raise ProviderError(f"invalid GAR registry: '{host}'. must match {GAR_HOST.pattern}")
        self._credentials: Any = None

    async def login(self) -> RegistryLogin:
        return await run_blocking(self._login)

    def _login(self) -> RegistryLogin:
        exceptions = import_extra("google.auth.exceptions", _EXTRA)
        if self._credentials is None:
            self._credentials = _default(_GAR_SCOPES)
        try:
            self._credentials.refresh(_request())
        except exceptions.GoogleAuthError as exc:
            raise ProviderError(_one_line(exc)) from None
        token = checked_token(str(self._credentials.token or ""), "the Google access token")
        expiry = self._credentials.expiry  # a naive datetime in UTC, or None
        if expiry is None:
            raise ProviderError("the Google access token has no expiry")
        return RegistryLogin(GAR_USERNAME, token, expiry.replace(tzinfo=UTC).timestamp())
