"""`--metrics-file` and `--pushgateway` on real syncs: the counts match what a proxy in front of the
registry saw, the outcome matches the report, and a Pushgateway gets the same families."""

from __future__ import annotations

import base64
import os
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import images
from harness.airgap import run as run_cli
from harness.airgap import write_config
from harness.faultproxy import FaultProxy, Respond
from harness.pushgateway import PushgatewayStandIn
from harness.registry import Registry, RegistryFactory
from harness.runner import Run, entry, sync
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def origin(registry_factory: RegistryFactory) -> Registry:
    """The source registry; the destination is the fault proxy in front of the session's registry."""
    return registry_factory()


@pytest.fixture
def pushgateway() -> Iterator[PushgatewayStandIn]:
    with PushgatewayStandIn() as gateway:
        yield gateway


def parse(text: str) -> dict[str, Metric]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def read(path: Path) -> dict[str, Metric]:
    return parse(path.read_text(encoding="utf-8"))


def by(family: Metric, *labels: str) -> dict[tuple[str, ...], float]:
    """The family's samples keyed by the values of `labels`."""
    return {tuple(sample.labels[label] for label in labels): sample.value for sample in family.samples}


def value(families: dict[str, Metric], name: str, **labels: str) -> float:
    [sample] = [sample for sample in families[name].samples if sample.labels == labels]
    return sample.value


def requests_of(families: dict[str, Metric], host: str) -> Counter[tuple[str, str]]:
    """(method, status) → count for one host, from fluxmirror_http_requests_total."""
    return Counter(
        {
            (method, status): int(n)
            for (h, method, status), n in by(families["fluxmirror_http_requests"], "host", "method", "status").items()
            if h == host
        }
    )


def assert_outcome_matches_report(families: dict[str, Metric], run: Run) -> None:
    summary = run.summary
    results = run.report["report"]["results"]
    entries = by(families["fluxmirror_entries"], "status")
    tags = by(families["fluxmirror_tags"], "status")
    assert entries == {
        ("completed",): sum(r["status"] == "completed" for r in results),
        ("failed",): sum(r["status"] == "failed" for r in results),
    }
    assert sum(entries.values()) == summary["entries"]
    for status, key in [
        ("copied", "copied"),
        ("overwritten", "overwritten"),
        ("skipped", "skipped"),
        ("drifted", "drifted"),
        ("would-copy", "wouldCopy"),
        ("would-overwrite", "wouldOverwrite"),
    ]:
        assert tags[(status,)] == summary[key], status
    assert tags[("failed",)] + entries[("failed",)] == summary["failed"]
    assert value(families, "fluxmirror_run_duration_seconds") == pytest.approx(
        run.report["report"]["durationMs"] / 1000, abs=0.002
    )


def test_metrics_file_counts_what_the_registry_saw_and_is_replaced_whole(
    tmp_path: Path, origin: Registry, fault_proxy: FaultProxy, unique_repo: str
) -> None:
    first = images.make_image([40_000, 25_000], seed=71)
    second = images.make_image([30_000], seed=72)
    images.push(origin, unique_repo, "1.0.0", first)
    images.push(origin, unique_repo, "2.0.0", second)
    destination = fault_proxy.as_registry()
    metrics_dir = tmp_path / "textfile"
    metrics_dir.mkdir()
    path = metrics_dir / "fluxmirror.prom"

    every_tag = {"limit": 0}
    run = sync(tmp_path, [entry(origin, destination, unique_repo, selector=every_tag)], "--metrics-file", str(path))

    assert (run.code, [row["status"] for row in run.rows()]) == (0, ["copied", "copied"])
    families = read(path)
    assert_outcome_matches_report(families, run)
    assert value(families, "fluxmirror_last_run_success") == 1
    finished = value(families, "fluxmirror_last_success_timestamp_seconds")
    assert finished == value(families, "fluxmirror_last_run_timestamp_seconds")
    assert abs(finished - path.stat().st_mtime) < 5

    # The destination's traffic, request by request, is what the proxy in front of it recorded; the
    # one request the proxy never records is the HTTPS ping a plain-HTTP loopback registry refuses.
    seen = fault_proxy.requests
    counted = requests_of(families, destination.host)
    assert counted.pop(("GET", "error")) == 1
    assert counted == Counter((r.method, str(r.status)) for r in seen)
    manifest_puts = [r for r in seen if r.method == "PUT" and "/manifests/" in r.path]
    assert len(manifest_puts) == run.summary["copied"] == 2
    assert value(families, "fluxmirror_http_sent_bytes", host=destination.host) == sum(r.request_bytes for r in seen)
    # Received bytes are those that arrived while a response was open: the ping's `{}`, which nobody
    # reads, may still be on its way when the ping is done with.
    received = value(families, "fluxmirror_http_received_bytes", host=destination.host)
    assert sum(r.response_bytes for r in seen if r.path != "/v2/") <= received <= sum(r.response_bytes for r in seen)
    layer_bytes = sum(layer.size for image in (first, second) for layer in image.layers)
    assert value(families, "fluxmirror_http_sent_bytes", host=destination.host) >= layer_bytes
    assert value(families, "fluxmirror_http_received_bytes", host=origin.host) >= layer_bytes
    assert requests_of(families, origin.host)[("GET", "200")] > 0
    assert value(families, "fluxmirror_http_too_many_requests", host=destination.host) == 0
    assert value(families, "fluxmirror_http_retries", host=destination.host) == 0

    # A second run replaces the file by a rename (a new inode, no temporary file left behind); a
    # failing run writes no last-success timestamp and says the run failed.
    inode = path.stat().st_ino
    failing = sync(
        tmp_path,
        [
            entry(origin, destination, unique_repo, selector=every_tag),
            entry(origin, destination, f"{unique_repo}-missing"),
        ],
        "--metrics-file",
        str(path),
    )
    assert failing.code == 1
    assert os.listdir(metrics_dir) == ["fluxmirror.prom"]
    assert path.stat().st_ino != inode
    families = read(path)
    assert_outcome_matches_report(families, failing)
    assert by(families["fluxmirror_tags"], "status")[("skipped",)] == 2
    assert by(families["fluxmirror_entries"], "status")[("failed",)] == 1
    assert value(families, "fluxmirror_last_run_success") == 0
    assert "fluxmirror_last_success_timestamp_seconds" not in families


def test_429_answers_and_retries_are_counted(
    tmp_path: Path, origin: Registry, fault_proxy: FaultProxy, unique_repo: str
) -> None:
    """Three 429s on the manifest PUT: the request is tried three times (two request retries, after
    the advised second), which fails the attempt; the job's second attempt goes through."""
    artifact = images.make_artifact(seed=73)
    images.push(origin, unique_repo, "1.0.0", artifact)
    fault_proxy.add(Respond(429, {"Retry-After": "1"}, method="PUT", path="/manifests/", times=3))
    destination = fault_proxy.as_registry()
    path = tmp_path / "fluxmirror.prom"

    run = sync(tmp_path, [entry(origin, destination, unique_repo)], "--metrics-file", str(path))

    assert (run.code, run.rows()[0]["status"]) == (0, "copied")
    throttled = [r for r in fault_proxy.requests if r.status == 429]
    assert len(throttled) == 3
    families = read(path)
    assert value(families, "fluxmirror_http_too_many_requests", host=destination.host) == 3
    assert requests_of(families, destination.host)[("PUT", "429")] == 3
    assert value(families, "fluxmirror_http_retries", host=destination.host) == 2
    assert value(families, "fluxmirror_http_retries", host=origin.host) == 0
    assert value(families, "fluxmirror_job_retries") == 1
    assert value(families, "fluxmirror_last_run_success") == 1


def test_pushgateway_receives_the_same_families_as_the_file_in_its_own_group(
    tmp_path: Path, origin: Registry, registry: Registry, unique_repo: str, pushgateway: PushgatewayStandIn
) -> None:
    artifact = images.make_artifact(seed=74)
    images.push(origin, unique_repo, "1.0.0", artifact)
    path = tmp_path / "fluxmirror.prom"
    url = pushgateway.url.replace("http://", "http://mirror:s3cret-pw@") + "/?mirror=eu-west"

    flags = ("--metrics-file", str(path), "--pushgateway", url, "--shard", "0/1")
    run = sync(tmp_path, [entry(origin, registry, unique_repo)], *flags)

    assert (run.code, run.stderr) == (0, "")
    [push] = pushgateway.pushes
    assert (push.method, push.grouping) == ("PUT", "job/fluxmirror/command/sync/mirror/eu-west/shard/0")
    assert push.authorization == "Basic " + base64.b64encode(b"mirror:s3cret-pw").decode()
    assert push.content_type.startswith("text/plain; version=0.0.4")
    assert push.families == read(path)
    assert value(push.families, "fluxmirror_last_run_success") == 1
    assert_outcome_matches_report(push.families, run)


def test_a_pushgateway_that_is_down_is_one_warning_and_the_exit_code_stands(
    tmp_path: Path, origin: Registry, registry: Registry, unique_repo: str
) -> None:
    artifact = images.make_artifact(seed=75)
    images.push(origin, unique_repo, "1.0.0", artifact)
    with socket.socket() as closed:  # a port nobody listens on once the socket is gone
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"http://mirror:s3cret-pw@127.0.0.1:{port}"
    path = tmp_path / "fluxmirror.prom"

    run = sync(tmp_path, [entry(origin, registry, unique_repo)], "--pushgateway", url, "--metrics-file", str(path))

    assert (run.code, run.rows()[0]["status"], run.summary["exitCode"]) == (0, "copied", 0)
    assert run.stderr == (
        f'⚠️ metrics not pushed: Put "http://127.0.0.1:{port}/metrics/job/fluxmirror/command/sync": '
        f"dial tcp 127.0.0.1:{port}: connect: connection refused\n"
    )
    assert value(read(path), "fluxmirror_last_run_success") == 1  # the file is written all the same


def test_export_and_import_count_their_own_sides(
    tmp_path: Path, origin: Registry, registry: Registry, unique_repo: str, pushgateway: PushgatewayStandIn
) -> None:
    """An export reads only from the source, an import writes only to the destination; each run's
    metrics say so, and the import's push is grouped under its own command."""
    image = images.make_image([50_000], seed=76)
    images.push(origin, unique_repo, "1.0.0", image)
    config = write_config(tmp_path, [entry(origin, registry, unique_repo)])
    archive, path = tmp_path / "mirror.tar", tmp_path / "export.prom"

    exported = run_cli(tmp_path, "export", str(config), "--to", str(archive), "-o", "json", "--metrics-file", str(path))
    imported = run_cli(tmp_path, "import", str(archive), "-o", "json", "--pushgateway", pushgateway.url)

    assert (exported.code, imported.code, exported.stderr, imported.stderr) == (0, 0, "", "")
    export_families = read(path)
    assert_outcome_matches_report(export_families, exported)
    assert value(export_families, "fluxmirror_http_received_bytes", host=origin.host) >= image.layers[0].size
    assert registry.host not in {s.labels["host"] for s in export_families["fluxmirror_http_requests"].samples}
    [push] = pushgateway.pushes
    assert push.grouping == "job/fluxmirror/command/import"
    assert_outcome_matches_report(push.families, imported)
    assert by(push.families["fluxmirror_tags"], "status")[("copied",)] == 1
    assert value(push.families, "fluxmirror_http_sent_bytes", host=registry.host) >= image.layers[0].size
    assert origin.host not in {s.labels["host"] for s in push.families["fluxmirror_http_requests"].samples}
