"""One exchange with an identity endpoint over fluxmirror's own HTTP client (the Actions OIDC
endpoint, ACR's token exchange): bounded in time and size, its failure in one scrubbed line, and
the JSON answer decoded strictly into the one field that matters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, TypeVar

import msgspec
from yarl import URL

from fluxmirror.auth.providers.base import ProviderError
from fluxmirror.http.body import read_body, read_prefix
from fluxmirror.http.errors import NetworkError
from fluxmirror.http.session import Authorize, HttpSession
from fluxmirror.scrub import scrub

__all__ = ["exchange"]

_T = TypeVar("_T", bound=msgspec.Struct)
BODY_LIMIT: Final = 1 << 20  # a token answer is a few KiB
ERROR_PREFIX: Final = 512
TIME_LIMIT: Final = 60.0


async def exchange(
    http: HttpSession,
    method: str,
    url: URL,
    answer: type[_T],
    *,
    failure: str,
    with_reason: bool = False,
    params: Mapping[str, str] | None = None,
    form: bytes | None = None,
    authorize: Authorize | None = None,
) -> _T:
    """The 200 answer decoded as `answer`. Any other status raises ProviderError
    `<failure> with status <code>[ <reason>]: <first 512 bytes of the body, scrubbed>`; a body that
    is not JSON of that shape raises `<failure>: the response is not valid JSON`."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else None
    try:
        async with http.request(
            method,
            url,
            params=params,
            headers=headers,
            data=form,
            authorize=authorize,
            follow_redirects=method == "GET",
            time_limit=TIME_LIMIT,
        ) as response:
            if response.status != 200:
                detail = (await read_prefix(response, ERROR_PREFIX)).decode("utf-8", "replace")
                status = f"{response.status} {response.reason or ''}".rstrip() if with_reason else str(response.status)
                raise ProviderError(f"{failure} with status {status}: {scrub(' '.join(detail.split()))}")
            body = await read_body(response, BODY_LIMIT)
    except NetworkError as exc:
        raise ProviderError(str(exc)) from None
    try:
        return msgspec.json.decode(body, type=answer)
    except msgspec.DecodeError:
        raise ProviderError(f"{failure}: the response is not valid JSON") from None
