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
from fluxmirror.http.body import read_body, read_prefix
from fluxmirror.http.errors import NetworkError
from fluxmirror.http.session import HttpSession
from fluxmirror.http.urls import Origin
from fluxmirror.scrub import remember, scrub

__all__ = ["ActionsOIDC"]

URL_VARIABLE: Final = "ACTIONS_ID_TOKEN_REQUEST_URL"
TOKEN_VARIABLE: Final = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"  # noqa: S105 (a variable name)
_BODY_LIMIT: Final = 1 << 20  # an ID token is a few KiB
_ERROR_PREFIX: Final = 512
_TIME_LIMIT: Final = 60.0


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

        try:
            async with self._http.request(
                "GET", url, authorize=authorize, follow_redirects=True, time_limit=_TIME_LIMIT
            ) as response:
                if response.status != 200:
                    detail = (await read_prefix(response, _ERROR_PREFIX)).decode("utf-8", "replace").strip()
                    raise ProviderError(
                        f"OIDC token request failed with status {response.status} {response.reason or ''}".rstrip()
                        + f": {scrub(' '.join(detail.split()))}"
                    )
                body = await read_body(response, _BODY_LIMIT)
        except NetworkError as exc:
            raise ProviderError(str(exc)) from None
        try:
            value = msgspec.json.decode(body, type=_TokenResponse).value
        except msgspec.DecodeError:
            raise ProviderError("the OIDC token response is not valid JSON") from None
        if not value:
            raise ProviderError("the OIDC token response did not contain a token")
        return checked_token(value, "the OIDC token")
