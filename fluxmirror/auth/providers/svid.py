"""`jwt-svid`: a JWT-SVID for the audience from the SPIFFE Workload API.

The Workload API socket comes from `SPIFFE_ENDPOINT_SOCKET` (`unix:///path`, `unix:/path` or a
path; py-spiffe does not speak `tcp://`). As the reference does, each mint opens a client, fetches
one SVID and closes it: an SVID is minted only when the cached one is past half its lifetime, so a
long-lived stream would buy nothing. py-spiffe is synchronous (gRPC) and runs in a thread.
"""

from __future__ import annotations

import warnings
from typing import Final

from fluxmirror.auth.blocking import run_blocking
from fluxmirror.auth.providers.base import ProviderError, checked_token, import_extra

__all__ = ["JwtSvid"]

_EXTRA: Final = "spiffe"
_TIMEOUT: Final = 30


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _fetch(audience: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # py-spiffe's import warns about DSA on recent cryptography
        spiffe = import_extra("spiffe", _EXTRA)
    try:
        client = spiffe.WorkloadApiClient(default_timeout=_TIMEOUT)
    except Exception as exc:  # py-spiffe raises its own ArgumentError, or grpc's, for a bad socket
        raise ProviderError(f"create SPIFFE JWT source: {_one_line(exc)}") from None
    try:
        with client:
            return str(client.fetch_jwt_svid(audience={audience}).token)
    except Exception as exc:  # py-spiffe's FetchJwtSvidError, JwtSvidError or a gRPC error
        raise ProviderError(f"fetch JWT-SVID: {_one_line(exc)}") from None


class JwtSvid:
    """Mints JWT-SVIDs from the Workload API."""

    async def mint(self, audience: str) -> str:
        return checked_token(await run_blocking(_fetch, audience), "the JWT-SVID")
