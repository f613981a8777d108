"""`--max-bandwidth` (docs/sync.md#bandwidth): one cap on the blob bytes of a whole run.

A copy streams, so pacing the bytes it reads paces the bytes it writes: every blob body of a run
passes through `oci.blobs.resuming_read`, which asks the run's one `Bandwidth` for each piece
before handing it on. Nothing else waits on it: manifests, HEADs, token requests and an upload's
POST, PUT and DELETE are never paced, so they are not queued behind a large layer.

The bucket is a token bucket kept as a virtual clock (the generic cell rate algorithm): `_free_at`
is the moment everything granted so far has been paid for at `rate`, and a piece may go once that
moment is at most `BURST_SECONDS` ahead of now. So the bucket refills continuously, an idle link
saves up at most `BURST_SECONDS` of the rate (a copy starts at once, but never runs ahead by more),
and no lock is needed: grants are handed out in the order they are asked for. A transfer asks for
its next piece only once it has sent the last, so concurrent transfers take turns and each waits at
most one piece of every other transfer's: all of them progress, a small blob among large ones too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Final

__all__ = ["BURST_SECONDS", "Bandwidth"]

BURST_SECONDS: Final = 0.05
"""How far ahead of the rate a run may get: the bucket's size, in seconds of the rate. A few tens
of milliseconds keeps the link smooth (no multi-second bursts) while costing a fast link only
a few wake-ups per megabyte."""


class Bandwidth:
    """The run's token bucket: `rate` bytes per second over every transfer that shares it."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"a bandwidth must be positive, not {rate}")
        self.rate = rate
        self.piece = max(1, int(rate * BURST_SECONDS))  # the most one grant hands out
        self._free_at = 0.0

    def pieces(self, chunk: bytes) -> Iterator[bytes]:
        """`chunk` in pieces of at most one burst, so a slow rate still moves smoothly (a 1 MiB read
        at 1 Mbit/s would otherwise go as one 8-second burst); a chunk that fits is not copied."""
        if len(chunk) <= self.piece:
            yield chunk
            return
        for start in range(0, len(chunk), self.piece):
            yield chunk[start : start + self.piece]

    async def take(self, size: int) -> None:
        """Wait until `size` more bytes fit the rate. The grant is made before the wait, so a
        transfer cancelled while waiting has spent it: the link loses at most one piece's time."""
        now = time.monotonic()
        self._free_at = max(self._free_at, now) + size / self.rate
        wait = self._free_at - now - BURST_SECONDS
        if wait > 0:
            await asyncio.sleep(wait)
