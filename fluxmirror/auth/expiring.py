"""Credentials that expire, kept until half their lifetime is gone (docs/providers.md#refresh).

Every minted credential is cached the same way, whoever mints it: a signed JWT with `exp`, a CI or
cloud identity token, a cloud registry's username/password. The value is reused until half of the
lifetime it had when it was minted has passed, then minted again on next use, so a long run never
presents a credential in its last half-life and never mints one per request. Concurrent users share
one mint. A credential minted with under a second of half-life left is refused: it would be stale by
the time it reached the registry, and minting again would only return the same one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Generic, TypeVar

__all__ = ["Expiring", "NearExpiryError", "go_time"]

_T = TypeVar("_T")
_MIN_HALF_LIFE = 1.0


class NearExpiryError(ValueError):
    """A credential was minted with under a second of half-life left; `expires` is its Unix time."""

    def __init__(self, what: str, expires: float) -> None:
        super().__init__(f"{what} already near expiry (exp={go_time(expires)})")
        self.expires = expires


def go_time(unix: float) -> str:
    """A Unix time as Go's `time.Time.String()` writes a UTC time: `2006-01-02 15:04:05 +0000 UTC`."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


class Expiring(Generic[_T]):
    """A value from `mint`, which returns it with its expiry (Unix seconds), kept until half-life.

    `what` names the value in the near-expiry error (`minted token`, `ecr credentials`).
    """

    def __init__(
        self, mint: Callable[[], Awaitable[tuple[_T, float]]], *, what: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._mint = mint
        self._what = what
        self._clock = clock
        self._value: tuple[_T, float] | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> _T:
        async with self._lock:
            now = self._clock()
            if self._value is not None and now < self._value[1]:
                return self._value[0]
            value, expires = await self._mint()
            half_life = (expires - now) / 2
            if half_life < _MIN_HALF_LIFE:
                raise NearExpiryError(self._what, expires)
            self._value = (value, now + half_life)
            return value
