"""Reading response bodies whole: one `read()` returns whatever happens to be buffered, not the body,
so every body that is parsed (manifests, indexes, tag lists, tokens, chart archives) is read here,
to its end or to its cap, and checked against `Content-Length` when the server sent one."""

from __future__ import annotations

import aiohttp

from fluxmirror.http.errors import BodyError
from fluxmirror.http.urls import redact_url

__all__ = ["read_body", "read_prefix"]


async def read_body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body; `BodyError` when it is larger than `limit` bytes (said before reading when
    `Content-Length` announces it) or ends before the length the server announced."""
    where = f"{response.method} {redact_url(response.url)}"
    declared = response.content_length
    if declared is not None and declared > limit:
        raise BodyError(f"{where}: response body of {declared} bytes exceeds the limit of {limit} bytes")
    pieces: list[bytes] = []
    received = 0
    async for piece in response.content.iter_any():
        received += len(piece)
        if received > limit:
            raise BodyError(f"{where}: response body exceeds the limit of {limit} bytes")
        pieces.append(piece)
    if declared is not None and received != declared:
        raise BodyError(f"{where}: response body ended after {received} of {declared} bytes", temporary=True)
    return b"".join(pieces)


async def read_prefix(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most the first `limit` bytes of the body, for error messages: a longer body is not an
    error here, only cut."""
    pieces: list[bytes] = []
    received = 0
    while received < limit:
        piece = await response.content.read(limit - received)
        if not piece:
            break
        pieces.append(piece)
        received += len(piece)
    return b"".join(pieces)
