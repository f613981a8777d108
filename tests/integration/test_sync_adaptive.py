"""`--adaptive` (docs/sync.md#adaptive) against a real registry that turns requests away: the fault
proxy's `Throttle` answers 429 whenever `LIMIT` requests are already in flight to the registry
behind it, as a gateway limiting concurrent requests does. Everything is measured in the proxies'
request logs (statuses, and when each exchange started and finished), never in wall time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import images
from harness.faultproxy import AddHeaders, FaultProxy, RecordedRequest, Throttle
from harness.registry import Registry, RegistryFactory
from harness.runner import Run, entry, sync
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.registry

LIMIT = 2
TAGS = 12
CONCURRENCY = "8"
MIB = 1 << 20


@pytest.fixture
def throttled(registry_factory: RegistryFactory) -> Iterator[FaultProxy]:
    """The source: a registry of its own behind a proxy that answers 429 above `LIMIT` in flight."""
    with FaultProxy(upstream=registry_factory(), blob_host=False) as proxy:
        yield proxy


def push_tags(source: FaultProxy, repo: str, count: int = TAGS) -> list[images.Manifest]:
    """`count` artifacts of three small layers each, pushed through `source` before any rule is
    armed, and the proxy's log cleared."""
    artifacts = [images.make_artifact(seed=700 + n, layer_sizes=(2000, 3000, 4000, 5000)) for n in range(count)]
    upstream = source.as_registry()
    for n, artifact in enumerate(artifacts):
        images.push(upstream, repo, f"1.0.{n}", artifact)
    source.clear()
    return artifacts


def most_in_flight(requests: list[RecordedRequest]) -> int:
    """The most exchanges that overlapped at any moment, from the log's start and end times."""
    events = sorted([(r.started, 1) for r in requests] + [(r.finished, -1) for r in requests])
    peak = level = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


def every_tag(source: FaultProxy, destination: Registry, repo: str, dst_repo: str | None = None) -> dict[str, object]:
    """An entry copying every one of the `TAGS` tags."""
    return entry(source.as_registry(), destination, repo, dst_repo, selector={"semver": ">=1.0.0", "limit": TAGS})


def too_many(proxy: FaultProxy) -> int:
    return sum(1 for request in proxy.requests if request.status == 429)


def assert_mirrored(run: Run, destination: Registry, repo: str, artifacts: list[images.Manifest]) -> None:
    assert run.code == 0, run.stderr
    for n, artifact in enumerate(artifacts):
        assert images.get_manifest(destination, repo, f"1.0.{n}").digest == artifact.digest
        for blob in artifact.blobs:
            assert images.get_blob(destination, repo, blob.digest) == blob.data


def test_adaptive_backs_off_a_throttled_registry_and_not_the_other(
    tmp_path: Path, throttled: FaultProxy, fault_proxy: FaultProxy, registry: Registry, unique_repo: str
) -> None:
    artifacts = push_tags(throttled, unique_repo)
    throttled.add(Throttle(limit=LIMIT))
    destination = fault_proxy.as_registry()
    metrics = tmp_path / "run.prom"
    run = sync(
        tmp_path,
        [every_tag(throttled, destination, unique_repo)],
        "--concurrency",
        CONCURRENCY,
        "--adaptive",
        "--metrics-file",
        str(metrics),
    )

    assert_mirrored(run, registry, unique_repo, artifacts)
    adaptive_429s, source_requests = too_many(throttled), len(throttled.requests)
    print(f"--adaptive: {adaptive_429s} answers 429 of {source_requests} requests in {run.elapsed:.1f}s")
    # The first burst, the compare phase's manifest HEADs (one per tag, up to 16 at once), goes
    # out before any answer and loses TAGS - LIMIT. The limit then drops to what the registry
    # admitted, so only growth probes fail after that, one 429 each, after 8, 16, 32, 64 healthy
    # answers: at most 4 in this run's ~90 requests. 14 by design; the proxy counts a request in
    # flight until it has written the last byte, a little longer than the client does, so a few
    # more are allowed.
    assert adaptive_429s <= TAGS - LIMIT + 4 + 4
    # Per host: the destination was never limited; its requests overlapped beyond LIMIT.
    destination_peak = most_in_flight(fault_proxy.requests)
    print(f"most requests in flight to the destination: {destination_peak}")
    assert destination_peak > LIMIT
    [lowest] = [f for f in text_string_to_metric_families(metrics.read_text()) if f.name.endswith("lowest_limit")]
    limits = {sample.labels["host"]: sample.value for sample in lowest.samples}
    assert limits.keys() == {throttled.host, fault_proxy.host}
    assert 1 <= limits[throttled.host] <= LIMIT  # 1 if a 429 came with only LIMIT in flight
    assert limits[fault_proxy.host] == 64  # never lowered from the ceiling, max(64, 8 x 8)

    throttled.clear()
    fault_proxy.clear()
    throttled.add(Throttle(limit=LIMIT))
    plain = sync(
        tmp_path, [every_tag(throttled, destination, unique_repo, f"{unique_repo}-plain")], "--concurrency", CONCURRENCY
    )
    plain_429s = too_many(throttled)
    print(
        f"without: {plain_429s} answers 429 of {len(throttled.requests)} requests, exit {plain.code}, in {plain.elapsed:.1f}s"
    )
    assert plain_429s >= 2 * max(adaptive_429s, 1)


def test_rate_limit_remaining_zero_pauses_the_host(
    tmp_path: Path, throttled: FaultProxy, registry: Registry, unique_repo: str
) -> None:
    """An answer that says nothing is left, and when to come back, holds the next request to that
    host until then; without `--adaptive` the next one follows at once."""
    artifacts = push_tags(throttled, unique_repo, 1)

    def gap(*flags: str, repo: str) -> float:
        throttled.clear()
        throttled.add(
            AddHeaders(method="GET", path="/tags/list", headers={"RateLimit-Remaining": "0", "Retry-After": "2"})
        )
        run = sync(tmp_path, [entry(throttled.as_registry(), registry, unique_repo, repo)], *flags)
        assert run.code == 0, run.stderr
        log = throttled.requests
        [listed] = [n for n, request in enumerate(log) if request.path.endswith("/tags/list")]
        return log[listed + 1].started - log[listed].finished

    paused = gap("--adaptive", repo=f"{unique_repo}-adaptive")
    unpaused = gap(repo=f"{unique_repo}-plain")
    print(
        f"next request after RateLimit-Remaining: 0, Retry-After: 2: {paused:.2f}s (without --adaptive {unpaused:.2f}s)"
    )
    assert paused >= 1.9
    assert unpaused < 1.0
    assert images.get_manifest(registry, f"{unique_repo}-adaptive", "1.0.0").digest == artifacts[0].digest


def test_streamed_copies_between_two_registries_that_admit_one_request_each(
    tmp_path: Path, throttled: FaultProxy, fault_proxy: FaultProxy, registry: Registry, unique_repo: str
) -> None:
    """Layers over 1 MiB stream from the source GET into chunked PATCHes, each copy holding a slot
    on both sides and running its requests in them: with both registries refusing a second request
    in flight, every blob still arrives, each layer read in one GET across its three PATCHes.
    (That no such copy can deadlock is tests/unit/net/test_net_adaptive.py's.)"""
    artifacts = [images.make_artifact(seed=800 + n, layer_sizes=(1_500_000,)) for n in range(3)]
    for n, artifact in enumerate(artifacts):
        images.push(throttled.as_registry(), unique_repo, f"1.0.{n}", artifact)
    throttled.clear()
    throttled.add(Throttle(limit=1))
    fault_proxy.add(Throttle(limit=1))
    destination = fault_proxy.as_registry()

    run = sync(
        tmp_path,
        [entry(throttled.as_registry(), destination, unique_repo, selector={"semver": ">=1.0.0", "limit": 3})],
        "--concurrency",
        "4",
        "--adaptive",
        hosts=[{"host": destination.host, "maxChunkSize": 512}],
    )

    assert run.code == 0, run.stderr
    for n, artifact in enumerate(artifacts):
        assert images.get_manifest(registry, unique_repo, f"1.0.{n}").digest == artifact.digest
        assert images.get_blob(registry, unique_repo, artifact.layers[0].digest) == artifact.layers[0].data
    patches = [r for r in fault_proxy.requests if r.method == "PATCH" and r.status == 202]
    assert len(patches) == 3 * 3  # 1.5 MB in 512 KiB chunks, each layer read in one GET
    layer_gets = [r for r in throttled.requests if r.method == "GET" and r.status == 200 and r.response_bytes > MIB]
    assert len(layer_gets) == 3
