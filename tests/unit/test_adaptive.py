"""`--adaptive`'s limiter (docs/sync.md#adaptive): the AIMD arithmetic, the rate-limit headers read
as hostile input, and the gate's waiting, without a network."""

from __future__ import annotations

import asyncio

import pytest

from fluxmirror.http.status import MAX_RETRY_AFTER
from fluxmirror.oci.adaptive import (
    MAX_PROBE_BACKOFF,
    MIN_WINDOW,
    AdaptiveLimits,
    HostGate,
    HostLimit,
    RateLimit,
    hold,
    rate_limit,
    slot,
)

# Headers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, RateLimit()),
        ({"RateLimit-Remaining": "7"}, RateLimit(remaining=7)),
        ({"RateLimit-Remaining": " 76;w=21600"}, RateLimit(remaining=76)),  # Docker Hub's form
        ({"RateLimit-Remaining": "40;w=60, 3;w=1"}, RateLimit(remaining=3)),  # several policies: the least
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "12"}, RateLimit(remaining=0, reset=12.0)),
        ({"RateLimit": "limit=10, remaining=0, reset=5"}, RateLimit(remaining=0, reset=5.0)),  # draft, dictionary
        ({"RateLimit": '"default";r=4;t=30'}, RateLimit(remaining=4, reset=30.0)),  # draft, list with parameters
        ({"RateLimit": '"a";r=9;t=1, "b";r=2;t=8'}, RateLimit(remaining=2, reset=1.0)),
        ({"RateLimit-Remaining": "5", "RateLimit": "remaining=1"}, RateLimit(remaining=5)),  # the plain field first
    ],
)
def test_rate_limit_headers_are_read(headers: dict[str, str], expected: RateLimit) -> None:
    assert rate_limit(headers) == expected


@pytest.mark.parametrize(
    "junk",
    ["", "-1", "+3", "1.5", "1e3", "abc", "٣", "0x10", "nan", "inf", ";w=5", "9" * 19, "9" * 5000, "3 4"],
)
def test_junk_rate_limit_values_are_ignored(junk: str) -> None:
    """Signs, fractions, exponents, non-ASCII digits and counts too long to be real say nothing
    (a 5000-digit count is refused before `int` sees it)."""
    headers = {"RateLimit-Remaining": junk, "RateLimit-Reset": junk, "RateLimit": f"remaining={junk}, reset={junk}"}
    assert rate_limit(headers) == RateLimit()


def test_a_huge_reset_is_clamped_like_retry_after() -> None:
    assert rate_limit({"RateLimit-Reset": "999999999999"}).reset == MAX_RETRY_AFTER
    assert rate_limit({"RateLimit": "r=0;t=86400"}).reset == MAX_RETRY_AFTER


# Arithmetic -------------------------------------------------------------------------------------


def busy(limit: HostLimit, count: int) -> None:
    for _ in range(count):
        limit.enter()


def test_the_limit_starts_at_the_ceiling_and_halves_on_429_and_503() -> None:
    host = HostLimit("r.example", 64)
    assert host.limit == 64
    busy(host, 10)
    host.heard(429, {}, host.epoch, now=0.0)
    assert host.limit == 5  # half of what was in flight, not of an unused ceiling
    host.heard(503, {}, host.epoch, now=0.0)
    assert host.limit == 3  # rounded up
    for _ in range(5):
        host.heard(429, {}, host.epoch, now=0.0)
    assert host.limit == 1  # never below one


def test_a_burst_of_429s_to_requests_sent_together_halves_once_then_counts_the_refused() -> None:
    host = HostLimit("r.example", 64)
    busy(host, 16)
    sent_at = host.epoch
    host.heard(429, {}, sent_at, now=0.0)
    assert (host.limit, host.epoch) == (8, 1)
    for _ in range(9):
        host.heard(429, {}, sent_at, now=0.0)
    assert (host.limit, host.epoch) == (6, 1)  # 16 in flight, 10 refused: at most 6 admitted
    host.heard(503, {}, sent_at, now=0.0)
    host.heard(200, {"RateLimit-Remaining": "0"}, sent_at, now=0.0)  # lowers, but refused nothing
    assert (host.limit, host.epoch) == (5, 1)
    host.heard(429, {}, host.epoch, now=0.0)  # a request sent under the new limit: a new burst
    assert (host.limit, host.epoch) == (3, 2)
    for _ in range(5):
        host.heard(429, {}, sent_at, now=0.0)  # two decreases ago: already answered for
    assert (host.limit, host.epoch) == (3, 2)


def test_other_server_failures_neither_lower_nor_count_as_healthy() -> None:
    host = HostLimit("r.example", 8)
    busy(host, 8)
    host.heard(429, {}, host.epoch, now=0.0)
    for _ in range(100):
        host.heard(500, {}, host.epoch, now=0.0)
        host.heard(502, {}, host.epoch, now=0.0)
    assert host.limit == 4


def test_the_limit_grows_by_one_per_window_of_healthy_answers_while_it_is_used() -> None:
    host = HostLimit("r.example", 6)
    busy(host, 6)  # and six stay in flight: every limit below six is used
    host.heard(429, {}, host.epoch, now=0.0)
    assert host.limit == 3
    for _ in range(MIN_WINDOW - 1):
        assert not host.heard(200, {}, host.epoch, now=0.0)
    assert host.heard(404, {}, host.epoch, now=0.0)  # any answer that is not a failure is healthy
    assert host.limit == 4
    for _ in range(10 * MIN_WINDOW):
        host.heard(200, {}, host.epoch, now=0.0)
    assert host.limit == 6  # the ceiling


def test_an_unused_limit_does_not_grow() -> None:
    host = HostLimit("r.example", 64)
    busy(host, 8)
    host.heard(429, {}, host.epoch, now=0.0)
    assert host.limit == 4
    for _ in range(7):
        host.leave()  # the run now sends one at a time
    for _ in range(10 * MIN_WINDOW):
        host.heard(200, {}, host.epoch, now=0.0)
    # The first window began with eight in flight, over its limit of four; none of the others
    # reached the limit.
    assert host.limit == 5


def test_a_level_that_keeps_failing_is_probed_less_and_less_often() -> None:
    host = HostLimit("r.example", 64)
    busy(host, 2)  # always two in flight: the registry's own limit
    host.heard(429, {}, host.epoch, now=0.0)  # 2 -> 1
    windows = []
    for _ in range(MAX_PROBE_BACKOFF + 2):
        answers = 0
        while host.limit < 3:
            host.heard(200, {}, host.epoch, now=0.0)
            answers += 1
        windows.append(answers)
        host.enter()  # the probe: a third request, turned away
        host.heard(429, {}, host.epoch, now=0.0)
        host.leave()
        assert host.limit == 2
    # 1 -> 2 and 2 -> 3 first; then only 2 -> 3: once more after one window, as 3 had not failed
    # before, then each window twice the last, up to the cap.
    assert windows == [2 * MIN_WINDOW, *(MIN_WINDOW << n for n in range(MAX_PROBE_BACKOFF + 1))]


def test_rate_limit_remaining_below_what_is_in_flight_lowers_the_limit() -> None:
    host = HostLimit("r.example", 64)
    busy(host, 8)
    host.heard(200, {"RateLimit-Remaining": "8"}, host.epoch, now=0.0)
    assert host.limit == 64
    host.heard(200, {"RateLimit-Remaining": "7;w=60"}, host.epoch, now=0.0)
    assert host.limit == 4
    host.heard(200, {"RateLimit-Remaining": "junk"}, host.epoch, now=0.0)
    assert host.limit == 4


def test_retry_after_pauses_the_host_on_a_429_or_when_nothing_is_left() -> None:
    host = HostLimit("r.example", 8)
    host.heard(200, {"Retry-After": "30"}, host.epoch, now=100.0)  # says nothing about load
    assert host.paused_until == 0.0
    host.heard(429, {"Retry-After": "3"}, host.epoch, now=100.0)
    assert host.paused_until == 103.0
    host.heard(429, {"Retry-After": "1"}, host.epoch, now=100.5)
    assert host.paused_until == 103.0  # a shorter pause never cuts a longer one short
    host.heard(200, {"RateLimit-Remaining": "0", "Retry-After": "9"}, host.epoch, now=100.0)
    assert host.paused_until == 109.0
    host.heard(200, {"RateLimit": "remaining=0, reset=20"}, host.epoch, now=100.0)
    assert host.paused_until == 120.0
    host.heard(429, {"Retry-After": "99999999"}, host.epoch, now=100.0)
    assert host.paused_until == 100.0 + MAX_RETRY_AFTER
    host.heard(429, {"Retry-After": "-5"}, host.epoch, now=1000.0)
    assert host.paused_until == 1000.0  # clamped to zero: no pause


def test_a_ceiling_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        HostLimit("r.example", 0)


# The gate ---------------------------------------------------------------------------------------


async def test_requests_to_a_host_wait_for_its_limit_and_other_hosts_do_not() -> None:
    limits = AdaptiveLimits(2)
    slow, other = limits.gate("slow.example"), limits.gate("other.example")
    peak = {"slow.example": 0, "other.example": 0}
    running = {"slow.example": 0, "other.example": 0}

    async def request(name: str) -> None:
        async with slot(limits.gate(name)):
            running[name] += 1
            peak[name] = max(peak[name], running[name])
            await asyncio.sleep(0.01)
            running[name] -= 1

    slow.host.limit = 1
    await asyncio.gather(*(request(name) for name in ["slow.example"] * 6 + ["other.example"] * 6))
    assert peak == {"slow.example": 1, "other.example": 2}
    assert other.host.in_flight == slow.host.in_flight == 0


async def test_a_copy_holds_both_hosts_and_its_requests_run_in_its_slots() -> None:
    """Copies both ways between two hosts at a limit of one never deadlock: each takes both slots
    at once, and its requests (the upload, and the read feeding it) reuse them."""
    limits = AdaptiveLimits(1)
    a, b = limits.gate("a.example"), limits.gate("b.example")

    async def copy(source: HostGate, destination: HostGate) -> None:
        async with hold(destination, source):
            assert (a.host.in_flight, b.host.in_flight) == (
                int(a in (source, destination)),
                int(b in (source, destination)),
            )
            async with slot(destination), slot(source):
                await asyncio.sleep(0.01)

    async with asyncio.timeout(5):
        await asyncio.gather(*(copy(a, b) if n % 2 else copy(b, a) for n in range(6)))
        await asyncio.gather(copy(a, a), copy(a, a))  # a copy within one registry holds one slot
    assert (a.host.in_flight, b.host.in_flight) == (0, 0)


async def test_a_pause_holds_every_request_to_the_host_until_it_ends() -> None:
    limits = AdaptiveLimits(4)
    gate = limits.gate("r.example")
    loop = asyncio.get_running_loop()
    async with slot(gate) as first:
        first.heard(429, {"Retry-After": "0.3"})
    asked = loop.time()
    async with slot(gate):
        waited = loop.time() - asked
    assert 0.25 <= waited < 1.0
    async with slot(gate) as second:
        second.heard(200, {"RateLimit-Remaining": "0", "RateLimit-Reset": "1"})
    asked = loop.time()
    async with hold(gate), slot(gate):  # inside a copy too
        waited = loop.time() - asked
    assert 0.9 <= waited < 2.0


async def test_a_request_cancelled_while_waiting_takes_no_slot() -> None:
    limits = AdaptiveLimits(1)
    gate = limits.gate("r.example")
    async with slot(gate):
        waiting = asyncio.ensure_future(slot(gate).__aenter__())
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    assert gate.host.in_flight == 0
    async with asyncio.timeout(1), slot(gate):
        assert gate.host.in_flight == 1


async def test_a_grown_limit_lets_a_waiting_request_in() -> None:
    limits = AdaptiveLimits(2)
    gate = limits.gate("r.example")
    gate.host.limit = 1
    async with slot(gate) as held:
        waiting = asyncio.ensure_future(slot(gate).__aenter__())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        gate.host.enter()  # the limit was reached in this window
        gate.host.leave()
        for _ in range(MIN_WINDOW):
            held.heard(200, {})
        async with asyncio.timeout(1):
            await waiting
        assert gate.host.in_flight == 2


class Limited:
    """A TrafficObserver that keeps only what `--adaptive` tells it."""

    def __init__(self) -> None:
        self.told: list[tuple[str, int]] = []

    def exchanged(self, exchange: object) -> None:
        raise AssertionError("the gate sends nothing")

    def retrying(self, host: str) -> None:
        raise AssertionError("the gate retries nothing")

    def limited(self, host: str, limit: int) -> None:
        self.told.append((host, limit))


async def test_the_observer_is_told_each_hosts_ceiling_and_every_change() -> None:
    observer = Limited()
    limits = AdaptiveLimits(8, observer=observer)
    gate = limits.gate("r.example")
    assert limits.gate("r.example") is gate
    for _ in range(7):
        gate.host.enter()
    async with slot(gate) as place:  # the eighth
        place.heard(429, {})
        place.heard(429, {})  # sent before the halving: no change, nothing told
        for _ in range(MIN_WINDOW):
            place.heard(200, {})
    assert observer.told == [("r.example", 8), ("r.example", 4), ("r.example", 5)]
    assert limits.limits() == {"r.example": 5}
