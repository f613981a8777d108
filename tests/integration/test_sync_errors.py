"""What a failed row says and what the verbose log says around it, end to end (docs/sync.md#error-texts):
the real CLI and registry, with a fault proxy refusing one kind of request on cue."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from harness import images
from harness.chartrepo import ChartRepository
from harness.faultproxy import FaultProxy, Respond
from harness.registry import Registry, RegistryFactory
from harness.runner import entry, sync

pytestmark = pytest.mark.registry

FORBIDDEN = "unexpected status code 403 Forbidden"


@pytest.fixture(scope="module")
def origin(registry_factory: RegistryFactory) -> Registry:
    """The source registry; the destination is the fault proxy in front of the session's registry."""
    return registry_factory()


def manifest_path(repo: str, reference: str) -> str:
    return f"^/v2/{re.escape(repo)}/manifests/{re.escape(reference)}$"


def test_a_row_that_fails_while_comparing_has_no_digest(
    tmp_path: Path, origin: Registry, fault_proxy: FaultProxy, unique_repo: str
) -> None:
    """The destination refuses to say what its tag holds (HEAD, then the GET fallback): the row fails
    before anything is copied, and without the source digest, as the reference reports it."""
    images.push(origin, unique_repo, "1.0.0", images.make_artifact(seed=61))
    fault_proxy.add(Respond(403, path=manifest_path(unique_repo, "1.0.0"), times=10))
    destination = fault_proxy.as_registry()
    # one attempt: a job retries any failure (as Go does), which is not what this test is about
    run = sync(tmp_path, [entry(origin, destination, unique_repo)], "--retries", "0")
    assert run.code == 1
    assert run.rows() == [
        {
            "tag": "1.0.0",
            "status": "failed",
            "error": f"digest {destination.host}/{unique_repo}:1.0.0: "
            f"GET {destination.url}/v2/{unique_repo}/manifests/1.0.0: {FORBIDDEN}",
        }
    ]
    assert [(r.method, r.status) for r in fault_proxy.requests if "/manifests/" in r.path] == [
        ("HEAD", 403),
        ("GET", 403),
    ]


def test_a_copy_failure_names_the_copy_and_keeps_the_digest(
    tmp_path: Path, origin: Registry, fault_proxy: FaultProxy, unique_repo: str
) -> None:
    artifact = images.make_artifact(seed=62)
    images.push(origin, unique_repo, "1.0.0", artifact)
    fault_proxy.add(Respond(403, method="PUT", path=manifest_path(unique_repo, "1.0.0"), times=10))
    destination = fault_proxy.as_registry()
    run = sync(tmp_path, [entry(origin, destination, unique_repo)])
    assert run.code == 1
    assert run.rows() == [
        {
            "tag": "1.0.0",
            "status": "failed",
            "digest": artifact.digest,
            "error": f"copy {origin.host}/{unique_repo}:1.0.0 -> {destination.host}/{unique_repo}:1.0.0: "
            f"PUT {destination.url}/v2/{unique_repo}/manifests/1.0.0: {FORBIDDEN}",
        }
    ]


def test_a_refused_connection_reads_as_go_words_it(tmp_path: Path, origin: Registry, unique_repo: str) -> None:
    images.push(origin, unique_repo, "1.0.0", images.make_artifact(seed=63))
    with socket.socket() as sock:  # a loopback port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    destination = f"127.0.0.1:{port}/{unique_repo}"
    run = sync(tmp_path, [{"source": f"{origin.host}/{unique_repo}", "destination": destination}], "--retries", "0")
    [row] = run.rows()
    assert (run.code, row["status"], "digest" in row) == (1, "failed", False)
    assert row["error"].startswith(
        f'digest {destination}:1.0.0: Get "https://127.0.0.1:{port}/v2/": '
        f"dial tcp 127.0.0.1:{port}: connect: connection refused"
    ), row["error"]


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_structured_output_with_verbose_logs_jobs_but_not_the_totals(
    tmp_path: Path, origin: Registry, fault_proxy: FaultProxy, unique_repo: str, output: str
) -> None:
    """`entry summary` and `sync complete` close the text-mode log only; `tag done` is logged for a
    job that succeeded, not for one that failed (its row says why)."""
    for number, tag in enumerate(("1.0.0", "2.0.0")):
        images.push(origin, unique_repo, tag, images.make_artifact(seed=64 + number))
    fault_proxy.add(Respond(403, method="PUT", path=manifest_path(unique_repo, "2.0.0"), times=10))
    config = [entry(origin, fault_proxy.as_registry(), unique_repo, selector={"limit": 0})]
    source = f"{origin.host}/{unique_repo}"

    structured = sync(tmp_path, config, "--verbose", output=output)
    assert structured.code == 1
    assert f"mirroring tag src={source}:2.0.0" in structured.stderr
    assert f"tag done src={source}:1.0.0 status=copied elapsed=" in structured.stderr
    assert f"tag done src={source}:2.0.0" not in structured.stderr
    assert f"entry finished source={source} " in structured.stderr
    assert "entry summary" not in structured.stderr and "sync complete" not in structured.stderr

    text = sync(tmp_path, config, "--verbose", output="text")
    assert (text.code, text.stdout) == (1, "")
    assert f"tag done src={source}:1.0.0 status=skipped elapsed=" in text.stderr
    assert f"tag done src={source}:2.0.0" not in text.stderr
    assert f"entry summary source={source} copied=0 overwritten=0 skipped=1 drifted=0 failed=1" in text.stderr
    assert "sync complete entries=1 copied=0 overwritten=0 skipped=1 drifted=0 failed=1 duration=" in text.stderr


def chart_config(chart_repo: ChartRepository, destination: Registry, prefix: str) -> list[dict[str, str]]:
    return [{"name": "demo", "source": chart_repo.url, "destination": f"oci://{destination.host}/{prefix}"}]


def test_a_chart_row_that_fails_while_comparing_has_no_digest(
    tmp_path: Path, chart_repo: ChartRepository, fault_proxy: FaultProxy, unique_repo: str
) -> None:
    chart_repo.add("demo", "1.0.0")
    fault_proxy.add(Respond(403, method="GET", path=manifest_path(f"{unique_repo}/demo", "1.0.0"), times=10))
    destination = fault_proxy.as_registry()
    run = sync(tmp_path, [], charts=chart_config(chart_repo, destination, unique_repo))
    reference = f"{destination.host}/{unique_repo}/demo:1.0.0"
    assert run.rows() == [
        {
            "tag": "1.0.0",
            "status": "failed",
            "error": f"get manifest {reference}: GET {destination.url}/v2/{unique_repo}/demo/manifests/1.0.0: "
            f"{FORBIDDEN}",
        }
    ]


@pytest.mark.parametrize(
    ("method", "path", "push"),
    [
        pytest.param("POST", "/blobs/uploads/$", "config", id="config"),
        pytest.param("PUT", "/manifests/1.0.0$", "manifest", id="manifest"),
    ],
)
def test_a_chart_push_failure_names_the_push_and_keeps_the_digest(
    tmp_path: Path,
    chart_repo: ChartRepository,
    fault_proxy: FaultProxy,
    unique_repo: str,
    method: str,
    path: str,
    push: str,
) -> None:
    hosted = chart_repo.add("demo", "1.0.0")
    fault_proxy.add(Respond(403, method=method, path=f"^/v2/{re.escape(unique_repo)}/demo{path}", times=10))
    destination = fault_proxy.as_registry()
    run = sync(tmp_path, [], charts=chart_config(chart_repo, destination, unique_repo))
    [row] = run.rows()
    assert (run.code, row["status"], row["digest"]) == (1, "failed", hosted.digest)
    assert row["error"].startswith(
        f"push helm {push} to {destination.host}/{unique_repo}/demo:1.0.0: {method} {destination.url}/v2/"
    ), row["error"]
    assert row["error"].endswith(FORBIDDEN), row["error"]
