"""`--adaptive` (docs/sync.md#adaptive): a concurrency limit per registry host that backs off when
the host says it is overloaded and grows back while it is healthy.

What one slot covers: a registry request from the moment it is sent until its response is
released, i.e. until its body has been read or dropped (a blob GET holds its slot while the blob
streams; a PATCH while its body is sent). That is what a registry and any proxy in front of it
count as in flight. A streamed blob copy is one operation on two hosts: its source read is the body
of its upload, so `hold` takes one slot on each host for the whole copy, both at once, and the
copy's own requests run in those slots. Taking them together is what keeps the gates free of
deadlock: no task ever waits for a slot while holding one (an upload holding the destination's
slot while its body waits for the source's would otherwise block against a copy the other way,
or against itself when source and destination are the same registry).

The limit is AIMD, as TCP's congestion window: it starts at the run's own ceiling (so a healthy
registry sees exactly what it saw without `--adaptive`), is halved (rounding up, never below one)
on a 429 or 503, or when `RateLimit-Remaining` says fewer requests are left than are in flight, and
grows by one after a window of healthy answers in which the limit was actually reached. A burst of
429s to requests that were all sent before a halving halves once, not once each (`Slot.epoch`);
but each of them says the registry admitted one request fewer than were in flight, so the limit
also drops to what was in flight less those refused, when that is lower than the half. A level
that was probed and failed is probed again less often: the window doubles each time the same
level fails, up to `MAX_PROBE_BACKOFF` doublings. A `Retry-After` on a 429 or 503, or on an answer
saying nothing is left, pauses every new request to that host until it has passed.

`HostLimit` is the arithmetic (no clock, no event loop: unit-testable); `AdaptiveLimits` is the
run's gate over all its hosts.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final

from fluxmirror.http.observer import TrafficObserver
from fluxmirror.http.status import MAX_RETRY_AFTER, retry_after

__all__ = [
    "MAX_PROBE_BACKOFF",
    "MIN_WINDOW",
    "SLOW_DOWN",
    "AdaptiveLimits",
    "HostGate",
    "HostLimit",
    "RateLimit",
    "Slot",
    "hold",
    "rate_limit",
    "slot",
]

SLOW_DOWN: Final = frozenset({429, 503})
"""The answers that halve a host's limit: too many requests, or a service unavailable now."""
MIN_WINDOW: Final = 8
"""Healthy answers, at least, between two increases: at a limit of 1 or 2 a probe every couple of
answers would cost a 429 every few requests."""
MAX_PROBE_BACKOFF: Final = 5
"""A level that keeps failing is probed after at most `MIN_WINDOW * 2**5` healthy answers."""
_MAX_DIGITS: Final = 18  # a count longer than this is junk (and int() of huge digit strings is slow)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """What an answer's rate-limit headers say: requests left in the window, and seconds until it
    resets; None where a header is absent or unreadable."""

    remaining: int | None = None
    reset: float | None = None


_ITEM_SPLIT: Final = re.compile(r"[,;]")


def _count(text: str) -> int | None:
    """A non-negative decimal count, or None for anything else (signs, fractions, junk, huge)."""
    text = text.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS):
        return None
    return int(text)


def _seconds(text: str) -> float | None:
    """A delay in seconds, clamped to `MAX_RETRY_AFTER`; None for anything that is not a count."""
    count = _count(text)
    return None if count is None else float(min(count, MAX_RETRY_AFTER))


def _least(values: Iterable[int | None]) -> int | None:
    known = [value for value in values if value is not None]
    return min(known) if known else None


def rate_limit(headers: Mapping[str, str]) -> RateLimit:
    """Read `RateLimit-Remaining` (`76` or Docker Hub's `76;w=21600`; with several policies, the
    least), `RateLimit-Reset` (delta seconds), and the draft's single `RateLimit` field in either of
    its forms (`limit=10, remaining=0, reset=5`, or `"default";r=0;t=5`). These headers are hostile
    input: anything that is not a plain count is ignored, and a reset is clamped like `Retry-After`."""
    remaining = _least(_count(item.partition(";")[0]) for item in headers.get("RateLimit-Remaining", "").split(","))
    reset = _seconds(headers.get("RateLimit-Reset", ""))
    structured: dict[str, list[str]] = {}
    for part in _ITEM_SPLIT.split(headers.get("RateLimit", "")):
        key, equals, value = part.partition("=")
        if equals:
            structured.setdefault(key.strip().lower(), []).append(value)
    if remaining is None:
        remaining = _least(_count(value) for key in ("remaining", "r") for value in structured.get(key, []))
    if reset is None:
        reset = next(
            (s for key in ("reset", "t") for v in structured.get(key, []) if (s := _seconds(v)) is not None), None
        )
    return RateLimit(remaining, reset)


class HostLimit:
    """One host's limit and occupancy: the AIMD arithmetic, with the time passed in."""

    def __init__(self, host: str, ceiling: int) -> None:
        if ceiling < 1:
            raise ValueError(f"a concurrency ceiling must be at least 1, not {ceiling}")
        self.host = host
        self.ceiling = ceiling
        self.limit = ceiling
        self.in_flight = 0
        self.epoch = 0  # how many times the limit was lowered: answers to older requests do not lower it again
        self.paused_until = 0.0  # no request to the host before this time.monotonic()
        self._healthy = 0  # healthy answers since the limit last changed
        self._peak = 0  # the most in flight since the limit last changed
        self._failed_level = 0  # the level the last decrease came from
        self._turned_away = 0  # requests of that level's burst refused (429 or 503) so far
        self._backoff = 0  # how many times in a row that level failed

    def has_room(self) -> bool:
        return self.in_flight < self.limit

    def enter(self) -> None:
        self.in_flight += 1
        self._peak = max(self._peak, self.in_flight)

    def leave(self) -> None:
        self.in_flight -= 1

    def heard(self, status: int, headers: Mapping[str, str], epoch: int, now: float) -> bool:
        """Account for one answer to a request sent at `epoch`; True when the limit grew (so a
        waiter may now fit)."""
        said = rate_limit(headers)
        slow_down = status in SLOW_DOWN
        if said.remaining == 0 or slow_down:
            delay = retry_after(headers)
            if delay is None and said.remaining == 0:
                delay = said.reset
            if delay is not None:
                self.paused_until = max(self.paused_until, now + delay)
        if slow_down or (said.remaining is not None and said.remaining < self.in_flight):
            self._lower(epoch, turned_away=slow_down)
            return False
        if status >= 500:  # another server failure says nothing about load either way
            return False
        return self._healthy_answer()

    def _lower(self, epoch: int, *, turned_away: bool) -> None:
        if epoch < self.epoch:  # sent under a higher limit, already lowered for
            if turned_away and epoch == self.epoch - 1:
                # Another request of the burst the last decrease answered was turned away: the
                # registry admitted at most what was in flight then, less those it refused.
                self._turned_away += 1
                self.limit = max(1, min(self.limit, self._failed_level - self._turned_away))
            return
        level = min(self.limit, max(self.in_flight, 1))
        self._backoff = min(self._backoff + 1, MAX_PROBE_BACKOFF) if level == self._failed_level else 0
        self._failed_level, self._turned_away = level, int(turned_away)
        self.limit = max(1, min(math.ceil(level / 2), level - self._turned_away))
        self.epoch += 1
        self._healthy, self._peak = 0, self.in_flight

    def _healthy_answer(self) -> bool:
        self._healthy += 1
        window = max(self.limit, MIN_WINDOW) << self._backoff
        if self._healthy < window or self.limit >= self.ceiling:
            return False
        reached = self._peak >= self.limit
        self._healthy, self._peak = 0, self.in_flight
        if not reached:  # the run did not use the limit it has: growing it would prove nothing
            return False
        self.limit += 1
        if self.limit > self._failed_level:
            self._backoff = 0
        return True


@dataclass(frozen=True, slots=True)
class HostGate:
    """A host's limit in its run's gate: what a `RegistryClient` holds."""

    limits: AdaptiveLimits
    host: HostLimit


@dataclass(frozen=True, slots=True)
class Slot:
    """One request's place at a host: what its answer says is fed back at the epoch it was sent in."""

    gate: HostGate | None
    epoch: int

    def heard(self, status: int, headers: Mapping[str, str]) -> None:
        if self.gate is not None:
            self.gate.limits.heard(self.gate.host, self.epoch, status, headers)


_NO_SLOT: Final = Slot(None, 0)
_HELD: ContextVar[frozenset[HostLimit]] = ContextVar("fluxmirror_adaptive_held", default=frozenset())
"""The hosts whose slots the current operation holds (`hold`): its requests run in them."""


class AdaptiveLimits:
    """The run's gate: one `HostLimit` per registry host, each starting at `ceiling`; every
    change of a limit is told to `observer` (the run's metrics)."""

    def __init__(
        self,
        ceiling: int,
        *,
        observer: TrafficObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ceiling = ceiling
        self._observer = observer
        self._clock = clock
        self._hosts: dict[str, HostGate] = {}
        self._waiters: list[asyncio.Future[None]] = []

    def gate(self, host: str) -> HostGate:
        if host not in self._hosts:
            self._hosts[host] = HostGate(self, HostLimit(host, self.ceiling))
            if self._observer is not None:
                self._observer.limited(host, self.ceiling)
        return self._hosts[host]

    def limits(self) -> dict[str, int]:
        """Each host's current limit."""
        return {name: gate.host.limit for name, gate in self._hosts.items()}

    def heard(self, host: HostLimit, epoch: int, status: int, headers: Mapping[str, str]) -> None:
        before = host.limit
        if host.heard(status, headers, epoch, self._clock()):
            self._wake()
        if host.limit != before and self._observer is not None:
            self._observer.limited(host.host, host.limit)

    async def enter(self, hosts: Iterable[HostLimit], passing: Iterable[HostLimit] = ()) -> None:
        """Take one slot on each of `hosts`, all at once, once every one of them (and of `passing`)
        is past its pause. Never holds one while waiting for another."""
        taking = list(hosts)
        pausing = [*taking, *passing]
        while True:
            pause = max((host.paused_until for host in pausing), default=0.0) - self._clock()
            if pause <= 0 and all(host.has_room() for host in taking):
                for host in taking:
                    host.enter()
                return
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                with suppress(TimeoutError):
                    async with asyncio.timeout(pause if pause > 0 else None):
                        await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def leave(self, hosts: Iterable[HostLimit]) -> None:
        """Give the slots back; synchronous, so it runs whole in a `finally` of a cancelled task."""
        for host in hosts:
            host.leave()
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


@asynccontextmanager
async def slot(gate: HostGate | None) -> AsyncIterator[Slot]:
    """A slot for one request to the gate's host until the block ends (None: no gate, nothing
    waits). Inside a `hold` of the host the request runs in the held slot and waits only for the
    host's pause."""
    if gate is None:
        yield _NO_SLOT
        return
    held = gate.host in _HELD.get()
    await gate.limits.enter(() if held else (gate.host,), (gate.host,) if held else ())
    try:
        yield Slot(gate, gate.host.epoch)
    finally:
        if not held:
            gate.limits.leave((gate.host,))


@asynccontextmanager
async def hold(*gates: HostGate | None) -> AsyncIterator[None]:
    """One slot on each host of `gates` (None entries and hosts already held are skipped), taken
    together, for an operation that spans them, such as a blob copy: the requests it makes to them
    run in these slots. Must be entered and left in the same task."""
    held = _HELD.get()
    taking = list({gate.host: gate for gate in gates if gate is not None and gate.host not in held}.values())
    if not taking:
        yield
        return
    limits = taking[0].limits
    assert all(gate.limits is limits for gate in taking), "hosts of one run share one gate"
    hosts = [gate.host for gate in taking]
    await limits.enter(hosts)
    token = _HELD.set(held | frozenset(hosts))
    try:
        yield
    finally:
        _HELD.reset(token)
        limits.leave(hosts)
