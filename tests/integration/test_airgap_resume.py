"""Resume (design group 7): a download cut mid-layer, an export killed mid-run, an import killed
mid-run. The re-run (or the same run) picks up what is done and the result is what an uncut run
gives. docker-registry behind the fault proxy plays the source or the destination.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import images
from harness.airgap import export_tar, mirrored, run, write_config
from harness.faultproxy import CorruptDownload, CutDownload, FaultProxy, Stall
from harness.registry import Registry, RegistryFactory
from harness.runner import FLUXMIRROR, entry

pytestmark = pytest.mark.registry


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _kill(child: subprocess.Popen[bytes]) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)


def _has_blob(registry: Registry, repo: str, digest: str) -> bool:
    return images.raw_request("HEAD", f"{registry.url}/v2/{repo}/blobs/{digest}").status == 200


def test_a_download_cut_mid_layer_resumes_with_range_and_leaves_no_part(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, unique_repo: str
) -> None:
    image = images.make_image([250_000], seed=91)
    source = fault_proxy.as_registry()
    images.push(source, unique_repo, "1.0.0", image)
    layer = image.layers[0]
    fault_proxy.add(CutDownload(60_000, path=layer.digest))
    config = write_config(tmp_path, [entry(source, registry, unique_repo, "far/app")])
    layout = tmp_path / "layout"
    done = run(tmp_path, "export", str(config), "--to", str(layout), "-o", "json")
    assert done.code == 0, done.stdout + done.stderr
    gets = [r.headers.get("Range") for r in fault_proxy.requests if r.method == "GET" and layer.digest in r.path]
    assert gets == [None, "bytes=60000-"]  # one cut, then the rest of the layer only
    stored = layout / "blobs" / "sha256" / layer.digest.removeprefix("sha256:")
    assert "sha256:" + hashlib.sha256(stored.read_bytes()).hexdigest() == layer.digest
    assert not list(layout.rglob("*.part"))


def _blob_gets(proxy: FaultProxy) -> set[str]:
    return {r.path.rsplit("/", 1)[-1] for r in proxy.requests if r.method == "GET" and "/blobs/" in r.path}


@pytest.mark.parametrize("form", ["layout", "tar"])
def test_a_killed_export_reruns_to_the_same_archive(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, unique_repo: str, form: str
) -> None:
    """Killed while a layer is held: a directory keeps what it finished (the re-run fetches only
    the rest); a tar leaves nothing that looks like an archive, and the re-run sweeps the killed
    run's staging. Either way the re-run's archive is the one an uninterrupted export writes."""
    source = fault_proxy.as_registry()
    first, second = images.make_image([40_000], seed=92), images.make_image([50_000], seed=93)
    images.push(source, unique_repo, "1.0.0", first)
    images.push(source, unique_repo, "2.0.0", second)
    held = second.layers[0].digest
    fault_proxy.add(Stall(seconds=120, method="GET", path=held))
    config = write_config(tmp_path, [entry(source, registry, unique_repo, "far/app", selector={"limit": 0})])
    target, clean = (
        (tmp_path / "out", tmp_path / "clean") if form == "layout" else (tmp_path / "a.tar", tmp_path / "b.tar")
    )
    child = subprocess.Popen(
        [str(FLUXMIRROR), "export", str(config), "--to", str(target)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for(lambda: f"GET /v2/{unique_repo}/blobs/{held}" in fault_proxy.in_flight, "the held layer's download")
    finished = {first.config.digest, first.layers[0].digest}
    if form == "layout":
        blobs = target / "blobs" / "sha256"
        _wait_for(lambda: all((blobs / d.removeprefix("sha256:")).exists() for d in finished), "1.0.0's blobs")
    _kill(child)
    if form == "tar":
        assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".a.tar.staging-")]
        assert not target.exists()

    fault_proxy.clear()
    done = run(tmp_path, "export", str(config), "--to", str(target), "-o", "json")
    assert done.code == 0, done.stdout + done.stderr
    if form == "layout":
        assert held in _blob_gets(fault_proxy) and not _blob_gets(fault_proxy) & finished
    else:
        assert not [path.name for path in tmp_path.iterdir() if ".staging-" in path.name or path.suffix == ".part"]
    assert run(tmp_path, "export", str(config), "--to", str(clean)).code == 0
    if form == "tar":
        assert target.read_bytes() == clean.read_bytes()
    else:
        entries = [
            sorted(json.loads((layout / "index.json").read_bytes())["manifests"], key=lambda e: e["digest"])
            for layout in (target, clean)
        ]
        assert entries[0] == entries[1]  # a directory's index is in completion order
        assert sorted(p.name for p in (target / "blobs" / "sha256").iterdir()) == sorted(
            p.name for p in (clean / "blobs" / "sha256").iterdir()
        )


def test_a_killed_import_reruns_without_resending_what_landed(
    tmp_path: Path, registry: Registry, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    first, second = images.make_image([40_000], seed=94), images.make_image([50_000], seed=95)
    images.push(registry, unique_repo, "1.0.0", first)
    images.push(registry, unique_repo, "2.0.0", second)
    far = registry_factory()
    with FaultProxy(upstream=far) as proxy:
        destination = proxy.as_registry()
        config = write_config(
            tmp_path, [entry(registry, destination, unique_repo, "mirror/app", selector={"limit": 0})]
        )
        archive = export_tar(tmp_path, config)
        held = second.layers[0].digest
        proxy.add(Stall(seconds=120, method="PUT", path="/blobs/uploads/", query=held))
        child = subprocess.Popen(
            [str(FLUXMIRROR), "import", str(archive)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        landed = [first.config.digest, first.layers[0].digest, second.config.digest]
        _wait_for(lambda: all(_has_blob(far, "mirror/app", d) for d in landed), "the other blobs to land")
        _kill(child)
        assert not _has_blob(far, "mirror/app", held)

        proxy.clear()
        done = run(tmp_path, "import", str(archive), "-o", "json")
        assert done.code == 0, done.stdout + done.stderr
        uploaded = {r.query for r in proxy.requests if r.method == "PUT" and "/blobs/uploads/" in r.path}
        assert all(held in query for query in uploaded) and uploaded  # only the blob that had not landed
        rows = json.loads(done.stdout)["report"]["results"][0]["tags"]
        assert {row["tag"]: row["status"] for row in rows} in (
            {"1.0.0": "copied", "2.0.0": "copied"},
            {"1.0.0": "skipped", "2.0.0": "copied"},  # the killed run may have pushed 1.0.0's manifest
        )
    assert mirrored(far, "mirror/app", ["1.0.0", "2.0.0"]) == {"1.0.0": first.digest, "2.0.0": second.digest}


def test_a_layer_that_never_arrives_intact_fails_the_tar_in_one_line_and_leaves_nothing(
    tmp_path: Path, registry: Registry, fault_proxy: FaultProxy, unique_repo: str
) -> None:
    image = images.make_image([30_000], seed=96)
    source = fault_proxy.as_registry()
    images.push(source, unique_repo, "1.0.0", image)
    layer = image.layers[0]
    fault_proxy.add(CorruptDownload(1234, path=layer.digest, times=100))
    config = write_config(tmp_path, [entry(source, registry, unique_repo, "far/app")])
    done = run(tmp_path, "export", str(config), "--to", str(tmp_path / "a.tar"), "-o", "json")
    assert (done.code, done.stdout) == (1, "")  # no report: there is no archive to report on
    assert done.stderr.startswith("✗ ") and done.stderr.count("\n") == 1, done.stderr
    assert f"blob {layer.digest}: content hashes to sha256:" in done.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mirror.yaml"]
