"""`github` and `forgejo`: an ID token from the Actions OIDC endpoint of the running job.

The runner puts the endpoint and a request token in `ACTIONS_ID_TOKEN_REQUEST_URL` and
`ACTIONS_ID_TOKEN_REQUEST_TOKEN` when the job has the `id-token: write` permission. The audience
goes in the `audience` query parameter (replacing one the URL may already carry, keeping the
others, keys sorted as Go's `url.Values.Encode` sorts them); the request token goes as
`Authorization: bearer`, and only to the endpoint's own origin, never across a redirect. GitHub and
Forgejo runners speak the same protocol, so both names share this code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
from yarl import URL

from fluxmirror.auth.providers.base import ProviderError, checked_token
from fluxmirror.auth.providers.endpoint import exchange
from fluxmirror.http.session import HttpSession
from fluxmirror.http.urls import Origin
from fluxmirror.scrub import remember

__all__ = ["ActionsOIDC"]

URL_VARIABLE: Final = "ACTIONS_ID_TOKEN_REQUEST_URL"
TOKEN_VARIABLE: Final = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"  # noqa: S105 (a variable name)


class _TokenResponse(msgspec.Struct):
    value: str = ""


def request_url(endpoint: str, audience: str) -> str:
    """`endpoint` with `audience=<audience>` set, other parameters kept, keys in sorted order."""
    parts = urlsplit(endpoint)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "audience"]
    query.append(("audience", audience))
    query.sort(key=lambda pair: pair[0])
    return urlunsplit(parts._replace(query=urlencode(query)))


class ActionsOIDC:
    """Mints Actions ID tokens through the run's HTTP session."""

    def __init__(self, http: HttpSession, environ: Mapping[str, str] | None = None) -> None:
        self._http = http
        self._environ = os.environ if environ is None else environ

    async def mint(self, audience: str) -> str:
        endpoint = self._environ.get(URL_VARIABLE, "")
        request_token = self._environ.get(TOKEN_VARIABLE, "")
        if not endpoint or not request_token:
            raise ProviderError(
                f"{URL_VARIABLE} and {TOKEN_VARIABLE} must be set in the environment; "
                "ensure the Actions job has the 'id-token: write' permission"
            )
        remember(request_token)
        url = URL(request_url(endpoint, audience), encoded=True)
        if url.scheme not in ("http", "https") or not url.host:
            raise ProviderError(f"{URL_VARIABLE} is not an http(s) URL")
        origin = Origin.of(url)

        async def authorize(target: URL) -> str | None:
            return f"bearer {request_token}" if Origin.of(target) == origin else None

        answer = await exchange(
            self._http,
            "GET",
            url,
            _TokenResponse,
            failure="OIDC token request failed",
            with_reason=True,
            authorize=authorize,
        )
        value = answer.value
        if not value:
            raise ProviderError("the OIDC token response did not contain a token")
        return checked_token(value, "the OIDC token")
