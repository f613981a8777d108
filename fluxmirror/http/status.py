"""Which HTTP answers are worth another try and which are redirects, for every kind of traffic."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = ["MAX_RETRY_AFTER", "REDIRECT_STATUSES", "TRANSIENT_STATUSES", "retry_after"]

# The statuses a copy retries (docs/sync.md#transient-failures); chart downloads use the same list, so a chart
# repository behind the same proxy or CDN is treated the same way.
TRANSIENT_STATUSES: Final = frozenset({408, 429, 499, 500, 502, 503, 504, 522})
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
MAX_RETRY_AFTER: Final = 60.0


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The `Retry-After` delay in seconds (the delta form), clamped to [0, 60]; None when absent or
    not a number, so a hostile server cannot park a job for hours."""
    try:
        seconds = float(headers.get("Retry-After", ""))
    except ValueError:
        return None
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
