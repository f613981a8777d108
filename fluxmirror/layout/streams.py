"""A blob streamed to a file and verified on the way, shared by the directory and the tar writer.

Each chunk is hashed and written on a worker thread (hashlib releases the GIL), with one write in
flight while the next chunk arrives: the event loop never waits on the disk, and the producer (a
download) and the disk overlap. benchmarks/layout.py measured this against writing inline and
against awaiting each thread write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from fluxmirror.layout.errors import LayoutError
from fluxmirror.oci.digests import new_hasher
from fluxmirror.oci.errors import DigestMismatchError

__all__ = ["write_pipelined", "write_verified"]


async def _write_ahead(write: Callable[[bytes], object], size: int, chunks: AsyncIterator[bytes]) -> int:
    """Pass `chunks` to the blocking `write` on a worker thread, one write in flight while the next
    chunk arrives, stopping before a chunk that would go past `size`; the bytes seen (more than
    `size` when the input ran over). No thread is left writing when this returns or raises."""
    seen = 0
    pending: asyncio.Future[object] | None = None
    try:
        async for chunk in chunks:
            seen += len(chunk)
            if seen > size:
                break
            if pending is not None:
                await pending
            pending = asyncio.ensure_future(asyncio.to_thread(write, chunk))
        if pending is not None:
            await pending
    finally:
        if pending is not None and not pending.done():
            await asyncio.wait([pending])  # never leave a thread writing to a file being discarded
    return seen


async def write_verified(
    write: Callable[[bytes], object], digest: str, size: int, chunks: AsyncIterator[bytes]
) -> None:
    """Pass `chunks` to the blocking `write`, hashed on the same worker thread, then raise
    DigestMismatchError unless they were exactly `size` bytes hashing to `digest` (by the algorithm
    it names). Nothing past `size` is written. On any failure the caller discards what was written."""
    hasher = new_hasher(digest)

    def hash_and_write(chunk: bytes) -> None:
        hasher.update(chunk)
        write(chunk)

    seen = await _write_ahead(hash_and_write, size, chunks)
    if seen > size:
        raise DigestMismatchError(f"blob {digest}: more than the expected {size} bytes")
    if seen != size:
        raise DigestMismatchError(f"blob {digest}: {seen} bytes, expected {size}")
    actual = f"{digest.partition(':')[0]}:{hasher.hexdigest()}"
    if actual != digest:
        raise DigestMismatchError(f"blob {digest}: content hashes to {actual}")


async def write_pipelined(write: Callable[[bytes], object], size: int, chunks: AsyncIterator[bytes]) -> None:
    """Pass `chunks` (content already verified, such as a staged blob) to the blocking `write`, as
    `write_verified` does but without hashing; LayoutError unless they were exactly `size` bytes."""
    seen = await _write_ahead(write, size, chunks)
    if seen != size:
        raise LayoutError(f"a staged blob changed size: {seen} bytes, expected {size}")
