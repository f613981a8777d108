"""Fewer round trips: entries side by side (`--parallel-entries`), every registry pinged at once, a
compare phase wider than `--concurrency`, and small blobs sent whole in the committing PUT.

Overlap is read from the fault proxies' request logs (each exchange's start and end on one clock),
with `Stall` rules widening the windows, rather than from wall times on a shared machine.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from harness import images
from harness.faultproxy import FaultProxy, RecordedRequest, Stall
from harness.registry import Registry, RegistryFactory
from harness.runner import entry, sync

from fluxmirror.oci.blobs import WHOLE_MAX

pytestmark = pytest.mark.registry

EVERY_TAG = {"limit": 0}


@pytest.fixture
def to_far(registry_factory: RegistryFactory) -> Iterator[FaultProxy]:
    """A proxy (request log, no rules) in front of a registry of its own: a destination apart from
    the session's registry, the source."""
    with FaultProxy(upstream=registry_factory()) as proxy:
        yield proxy


def most_at_once(records: Sequence[RecordedRequest]) -> int:
    """The largest number of these exchanges under way at the same moment."""
    events = sorted([(r.started, 1) for r in records] + [(r.finished, -1) for r in records])
    under_way = peak = 0
    for _, step in events:
        under_way += step
        peak = max(peak, under_way)
    return peak


def tag_lists(proxy: FaultProxy) -> list[RecordedRequest]:
    return [r for r in proxy.requests if r.path.endswith("/tags/list")]


def results(report: dict[str, Any], destination: Registry, as_host: str) -> Any:
    """The report's results with `destination`'s address written as `as_host`, to compare runs into
    two registries."""
    return json.loads(json.dumps(report["report"]["results"]).replace(destination.host, as_host))


def test_parallel_entries_keep_the_report_and_run_entries_side_by_side(
    tmp_path: Path, registry_factory: RegistryFactory, fault_proxy: FaultProxy, unique_repo: str
) -> None:
    source = fault_proxy.as_registry()
    repos = [f"{unique_repo}-{name}" for name in ("a", "b", "c")]
    for seed, repo in enumerate(repos):
        for tag in ("1.0.0", "1.1.0")[: seed % 2 + 1]:
            images.push(source, repo, tag, images.make_artifact(seed=seed * 10 + len(tag)))
    sequential, parallel = registry_factory(), registry_factory()
    images.push(parallel, repos[2], "1.0.0", images.make_artifact(seed=99))  # drifted in both runs
    images.push(sequential, repos[2], "1.0.0", images.make_artifact(seed=99))
    entries = [*repos[:2], f"{unique_repo}-missing", repos[2]]  # the missing repository fails its plan

    def run(destination: Registry, *flags: str) -> tuple[Any, list[RecordedRequest]]:
        fault_proxy.clear()
        fault_proxy.add(Stall(method="GET", path="/tags/list$", seconds=0.4, times=len(entries)))
        done = sync(tmp_path, [entry(source, destination, repo, selector=EVERY_TAG) for repo in entries], *flags)
        assert done.code == 1  # the plan failure
        return done.report, tag_lists(fault_proxy)

    one_by_one, listed_one_by_one = run(sequential)
    side_by_side, listed_side_by_side = run(parallel, "--parallel-entries", "4")

    assert results(side_by_side, parallel, sequential.host) == results(one_by_one, sequential, sequential.host)
    assert side_by_side["report"]["summary"] == one_by_one["report"]["summary"]
    assert [r["status"] for r in one_by_one["report"]["results"]] == ["completed", "completed", "failed", "completed"]
    assert [[t["status"] for t in r["tags"]] for r in one_by_one["report"]["results"]] == [
        ["copied"],
        ["copied", "copied"],
        [],
        ["drifted"],
    ]
    assert (most_at_once(listed_one_by_one), most_at_once(listed_side_by_side)) == (1, len(entries))


def test_every_registry_is_pinged_at_once_when_the_run_starts(
    tmp_path: Path, registry: Registry, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    """The destination's ping does not wait for the source's tag listing: with each ping held for a
    second, the two are under way together."""
    images.push(registry, unique_repo, "1.0.0", images.make_artifact(seed=71))
    with FaultProxy(upstream=registry) as source, FaultProxy(upstream=registry_factory()) as destination:
        for proxy in (source, destination):
            proxy.add(Stall(method="GET", path="^/v2/$", seconds=1.0))
        run = sync(tmp_path, [entry(source.as_registry(), destination.as_registry(), unique_repo)])
        [source_ping] = [r for r in source.requests if r.path == "/v2/"]
        [destination_ping] = [r for r in destination.requests if r.path == "/v2/"]
    assert (run.code, run.rows()[0]["status"]) == (0, "copied")
    assert source_ping.overlaps(destination_ping)


@pytest.mark.parametrize(("flags", "at_once"), [((), 6), (("--compare-concurrency", "2"), 2)])
def test_the_compare_phase_is_not_bound_by_concurrency(
    tmp_path: Path,
    registry: Registry,
    to_far: FaultProxy,
    unique_repo: str,
    flags: tuple[str, ...],
    at_once: int,
) -> None:
    """With `--concurrency 1`, a re-sync of six up-to-date tags still looks all six up at once
    (up to the per-host compare limit, 16 unless `--compare-concurrency` says otherwise)."""
    tags = [f"1.{minor}.0" for minor in range(6)]
    artifact = images.make_artifact(seed=72)
    for tag in tags:
        images.push(registry, unique_repo, tag, artifact)
    mirror = [entry(registry, to_far.as_registry(), unique_repo, selector=EVERY_TAG)]
    assert sync(tmp_path, mirror).summary["copied"] == len(tags)
    to_far.clear()
    to_far.add(Stall(method="HEAD", path="/manifests/", seconds=0.3, times=len(tags)))
    run = sync(tmp_path, mirror, "--concurrency", "1", *flags)
    assert (run.code, run.summary["skipped"]) == (0, len(tags))
    lookups = [r for r in to_far.requests if r.method == "HEAD" and "/manifests/" in r.path]
    assert len(lookups) == len(tags)
    assert most_at_once(lookups) == at_once


def test_small_blobs_ride_the_committing_put_and_large_ones_stream(
    tmp_path: Path, registry: Registry, to_far: FaultProxy, unique_repo: str
) -> None:
    """Per blob: a small one is a POST that asks docker-registry to mount it from the repository
    itself (202: not there, here is a session), then one PUT carrying it (no HEAD, no PATCH, no
    empty PUT); one over 8 MiB is HEAD, POST, PATCH, empty PUT. The destination holds the right
    bytes either way. Copied again under another tag, each blob is found there in one request: the
    small ones' mount POSTs answered 201, the large one's HEAD."""
    artifact = images.make_artifact(seed=73, layer_sizes=(3000, WHOLE_MAX + 1))
    images.push(registry, unique_repo, "1.0.0", artifact)
    destination = to_far.as_registry()
    run = sync(tmp_path, [entry(registry, destination, unique_repo)])
    assert (run.code, run.rows()[0]["status"]) == (0, "copied")
    uploads = [r for r in to_far.requests if "/blobs/uploads/" in r.path]
    small, large = artifact.layers
    commits = {r.query.rpartition("digest=")[2]: r for r in uploads if r.method == "PUT"}
    patches = [r for r in uploads if r.method == "PATCH"]
    assert {digest: r.request_bytes for digest, r in commits.items()} == {
        artifact.config.digest: len(artifact.config.data),
        small.digest: small.size,
        large.digest: 0,
    }
    assert [(r.path, r.request_bytes) for r in patches] == [(commits[large.digest].path, large.size)]
    posts = sorted((r.query, r.status) for r in uploads if r.method == "POST")
    assert posts == sorted(
        [(f"mount={d}&from={unique_repo}", 202) for d in (artifact.config.digest, small.digest)] + [("", 202)]
    )
    # the whole exchange with the destination: ping, tag lookup, the large blob's lookup, the uploads
    assert len(to_far.requests) == 1 + 1 + 1 + len(uploads) + 1  # ... and the manifest PUT
    for blob in (artifact.config, small, large):
        assert images.get_blob(destination, unique_repo, blob.digest) == blob.data
    assert images.get_manifest(destination, unique_repo, "1.0.0").digest == artifact.digest

    images.push(registry, unique_repo, "2.0.0", artifact)
    to_far.clear()
    again = sync(tmp_path, [entry(registry, destination, unique_repo)])
    assert (again.code, [(row["tag"], row["status"]) for row in again.rows()]) == (0, [("2.0.0", "copied")])
    blob_requests = sorted((r.method, r.status) for r in to_far.requests if "/blobs/" in r.path)
    assert blob_requests == [("HEAD", 200), ("POST", 201), ("POST", 201)]
    assert images.get_manifest(destination, unique_repo, "2.0.0").digest == artifact.digest


def test_a_copy_waiting_for_its_slot_fetches_its_manifest_ahead(
    tmp_path: Path, registry: Registry, to_far: FaultProxy, unique_repo: str
) -> None:
    """With `--concurrency 1` and three tags to copy, each copy's source manifest is fetched while
    the copy before it runs (its manifest PUT held 0.4 s), so no copy starts with that round trip;
    and only one is fetched ahead: the third waits until the first copy is done."""
    artifacts = {f"1.{minor}.0": images.make_artifact(seed=80 + minor) for minor in range(3)}
    for tag, artifact in artifacts.items():
        images.push(registry, unique_repo, tag, artifact)
    to_far.add(Stall(method="PUT", path="/manifests/", seconds=0.4, times=3))
    with FaultProxy(upstream=registry) as source:
        run = sync(
            tmp_path,
            [entry(source.as_registry(), to_far.as_registry(), unique_repo, selector=EVERY_TAG)],
            "--concurrency",
            "1",
        )
        fetched = {
            r.path.rpartition("/")[2]: r for r in source.requests if r.method == "GET" and "/manifests/" in r.path
        }
    assert (run.code, run.summary["copied"]) == (0, 3)
    pushes = sorted(
        (r for r in to_far.requests if r.method == "PUT" and "/manifests/" in r.path), key=lambda r: r.started
    )
    order = [artifacts[r.path.rpartition("/")[2]].digest for r in pushes]
    assert sorted(fetched) == sorted(order)  # each manifest fetched once, by digest
    assert all(not a.overlaps(b) for a, b in itertools.pairwise(pushes))  # one copy at a time
    for before, (push, digest) in enumerate(zip(pushes[:-1], order[1:], strict=True)):
        assert fetched[digest].finished < push.finished  # fetched while the copy before it ran
        if before >= 1:
            assert fetched[digest].started >= pushes[before - 1].finished  # but not two ahead
