"""The one seam through which a run's HTTP traffic can be watched (docs/metrics.md#what-is-counted).

`HttpSession` reports every hop it sends, answered or not, and callers that send a failed request
again say so through the session; whoever watches (the metrics of `--metrics-file` and
`--pushgateway`) implements `TrafficObserver`. This layer only describes the traffic: it knows
nothing of what the observer makes of it, so no metrics library is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Exchange", "TrafficObserver"]


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request hop as it ended.

    `host` is the URL's `host[:port]` as written (how the config names hosts); `status` is None
    when no answer came (refused, reset, timed out); `sent` counts request body bytes handed to
    the connection, `received` response body bytes that arrived, whether or not the caller read
    them all."""

    host: str
    method: str
    status: int | None
    sent: int
    received: int


class TrafficObserver(Protocol):
    def exchanged(self, exchange: Exchange) -> None:
        """A hop ended: its answer's body is done with, or it failed without an answer. Called on
        the event loop, once per hop (a followed redirect is a hop of its own)."""

    def retrying(self, host: str) -> None:
        """A request to `host` that failed transiently is about to be sent again."""

    def limited(self, host: str, limit: int) -> None:
        """With `--adaptive`: requests in flight to `host` are now limited to `limit` (told first
        when the run starts talking to the host, at the limit's starting ceiling)."""
