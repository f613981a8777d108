"""Reading response bodies whole: one `read()` returns whatever happens to be buffered, not the body,
so every body that is parsed (manifests, indexes, tag lists, tokens, chart archives) is read here,
to its end or to its cap, and checked against `Content-Length` when the server sent one. Streamed
bodies (blobs) are read piece by piece with `pieces`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from fluxmirror.http.errors import BodyError
from fluxmirror.http.urls import redact_url

__all__ = ["pieces", "read_body", "read_prefix"]


async def pieces(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The body as the socket delivered it, one buffered piece at a time and never empty.

    `readchunk` hands over each buffered piece as it is; `iter_any` joins every piece buffered
    since the last read into a new bytes object, copying each byte once more whenever the reader
    falls behind the socket, which is exactly when a large transfer is CPU-bound."""
    while True:
        piece, _ = await response.content.readchunk()
        if piece:
            yield piece
        elif response.content.at_eof():
            return


async def read_body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body; `BodyError` when it is larger than `limit` bytes (said before reading when
    `Content-Length` announces it) or ends before the length the server announced."""
    where = f"{response.method} {redact_url(response.url)}"
    declared = response.content_length
    if declared is not None and declared > limit:
        raise BodyError(f"{where}: response body of {declared} bytes exceeds the limit of {limit} bytes")
    kept: list[bytes] = []
    received = 0
    async for piece in pieces(response):
        received += len(piece)
        if received > limit:
            raise BodyError(f"{where}: response body exceeds the limit of {limit} bytes")
        kept.append(piece)
    if declared is not None and received != declared:
        raise BodyError(f"{where}: response body ended after {received} of {declared} bytes", temporary=True)
    return b"".join(kept)


async def read_prefix(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most the first `limit` bytes of the body, for error messages: a longer body is not an
    error here, only cut."""
    kept: list[bytes] = []
    received = 0
    while received < limit:
        piece = await response.content.read(limit - received)
        if not piece:
            break
        kept.append(piece)
        received += len(piece)
    return b"".join(kept)
