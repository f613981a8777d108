"""Uploads resumed across runs with --state-dir (docs/sync.md#resume): a run killed mid-layer, then
the next run with the same directory, against each kind of destination there is.

- A registry that reports its real offset (the in-memory registry keeping what arrived of a cut
  PATCH): the next run continues where the registry stands, so the kill loses nothing.
- docker-registry (distribution 2.8) behind a proxy that buffers request bodies (nginx's default):
  the registry never sees the cut chunk, so the next run continues after the last whole one.
- docker-registry reached directly: the cut chunk's bytes make its signed upload state stale, it
  refuses the session, and the next run starts over cleanly.

The source is paced so the layer takes seconds, and the kill lands while a chunk is on the wire,
after the run recorded half of the layer. The destination's fault proxy counts what each run sent.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import images
from harness.faultproxy import BLOB_PATH, BufferUpload, FaultProxy, Pace, RecordedRequest
from harness.registry import Registry, RegistryFactory
from harness.runner import Run, entry, start, sync
from registry.fixtures import OCIRegistryFactory

pytestmark = [pytest.mark.registry, pytest.mark.timeout(120)]

LAYER = 2 * 1024 * 1024
CHUNK_KIB = 256
CHUNK = CHUNK_KIB * 1024


@pytest.fixture
def slow_source(registry: Registry) -> Iterator[FaultProxy]:
    """The session's registry as the source, its blobs served at about 640 KB/s (a chunk in 0.4 s)."""
    with FaultProxy(upstream=registry, blob_host=False) as proxy:
        proxy.add(Pace(method="GET", path=BLOB_PATH, piece=(32 * 1024, 32 * 1024), delay=(0.05, 0.05)))
        yield proxy


@pytest.fixture
def docker_registry(registry_factory: RegistryFactory) -> Registry:
    return registry_factory()


class Mirror:
    """One artifact with a LAYER-sized layer, mirrored from the slow source to `destination` with a
    state directory, uploading in CHUNK pieces."""

    def __init__(self, tmp_path: Path, source: FaultProxy, destination: FaultProxy, repo: str, seed: int) -> None:
        self.tmp_path, self.source, self.destination = tmp_path, source, destination
        self.state = tmp_path / "state"
        self.artifact = images.make_artifact(seed=seed, layer_sizes=(LAYER,))
        self.layer = self.artifact.layers[0]
        images.push(source.as_registry(), repo, "1.0.0", self.artifact)
        self.repo = repo
        self.config = [entry(source.as_registry(), destination.as_registry(), repo)]
        self.hosts = [{"host": destination.host, "maxChunkSize": CHUNK_KIB}]

    def record(self) -> dict[str, Any] | None:
        """The upload state the run keeps for the layer, if any."""
        files = list((self.state / "uploads").glob("*")) if (self.state / "uploads").is_dir() else []
        return json.loads(files[0].read_bytes()) if files else None

    def interrupt(self, sig: signal.Signals, *, at: int = LAYER // 2) -> dict[str, Any]:
        """Run until `at` bytes are recorded, let the next chunk get under way, then send `sig`; the
        record the run left. The destination's log is then cleared and the source no longer paced."""
        process = start(self.tmp_path, self.config, "--state-dir", str(self.state), hosts=self.hosts, capture=True)
        try:
            deadline = time.monotonic() + 30
            while (recorded := self.record()) is None or recorded["offset"] < at:
                assert process.poll() is None, f"the run ended (exit {process.returncode}) before recording {at}"
                assert time.monotonic() < deadline, f"nothing recorded within 30s: {recorded}"
                time.sleep(0.01)
            time.sleep(0.15)  # about 100 KiB of the next 256 KiB chunk are on their way
            process.send_signal(sig)
            process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 1)
        left = self.record()
        assert left is not None, "the interrupted run left no record"
        self.killed_patch = [r for r in self.destination.requests if r.method == "PATCH"][-1]
        self.destination.clear()
        self.source.clear()
        return left

    def rerun(self, *flags: str) -> Run:
        return sync(self.tmp_path, self.config, "--state-dir", str(self.state), *flags, hosts=self.hosts)

    def check_copied(self, run: Run) -> None:
        """The run copied the tag, the layer at the destination is the source's, and no record is left."""
        assert (run.code, run.rows()) == (0, [{"tag": "1.0.0", "status": "copied", "digest": self.artifact.digest}])
        destination = self.destination.as_registry()
        assert images.get_manifest(destination, self.repo, "1.0.0").digest == self.artifact.digest
        assert images.get_blob(destination, self.repo, self.layer.digest) == self.layer.data
        assert list((self.state / "uploads").iterdir()) == []

    def upload_requests(self) -> list[RecordedRequest]:
        """The destination's upload requests for the layer (the small config's POST and PUT name its digest)."""
        config = self.artifact.config.digest
        return [r for r in self.destination.requests if "/blobs/uploads/" in r.path and config not in r.query]

    def uploaded(self) -> int:
        return sum(r.request_bytes for r in self.destination.requests if r.method == "PATCH")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_run_killed_mid_layer_is_resumed_at_the_registrys_offset(
    tmp_path: Path, slow_source: FaultProxy, oci_registry_factory: OCIRegistryFactory, sig: signal.Signals
) -> None:
    server = oci_registry_factory(keep_partial_chunks=True)
    with FaultProxy(upstream=server.registry, blob_host=False) as destination:
        mirror = Mirror(tmp_path, slow_source, destination, "app", seed=101)
        recorded = mirror.interrupt(sig)
        if sig == signal.SIGTERM:  # the cancelled run left its recorded session alone
            assert [r.method for r in mirror.upload_requests()].count("DELETE") == 0

        [held] = server.storage.held_by_uploads()
        run = mirror.rerun()

        mirror.check_copied(run)
        assert 0 < mirror.killed_patch.request_bytes < CHUNK  # the run died with a chunk on the wire
        assert held == recorded["offset"] + mirror.killed_patch.request_bytes  # which the registry kept
        first = mirror.upload_requests()[0]
        assert (first.method, first.status) == ("GET", 204)
        assert mirror.uploaded() == mirror.layer.size - held < 0.7 * mirror.layer.size


def test_docker_registry_behind_a_buffering_proxy_resumes_after_the_last_whole_chunk(
    tmp_path: Path, slow_source: FaultProxy, docker_registry: Registry
) -> None:
    with FaultProxy(upstream=docker_registry, blob_host=False) as destination:
        destination.add(BufferUpload())
        mirror = Mirror(tmp_path, slow_source, destination, "app", seed=102)
        recorded = mirror.interrupt(signal.SIGKILL)

        run = mirror.rerun()

        mirror.check_copied(run)
        assert 0 < mirror.killed_patch.request_bytes < CHUNK and mirror.killed_patch.status is None
        first = mirror.upload_requests()[0]
        assert (first.method, first.status) == ("GET", 204)
        assert mirror.uploaded() == mirror.layer.size - recorded["offset"] < 0.7 * mirror.layer.size


def test_docker_registry_refuses_a_session_cut_mid_chunk_and_the_next_run_starts_over(
    tmp_path: Path, slow_source: FaultProxy, docker_registry: Registry
) -> None:
    with FaultProxy(upstream=docker_registry, blob_host=False) as destination:
        mirror = Mirror(tmp_path, slow_source, destination, "app", seed=103)
        mirror.interrupt(signal.SIGKILL)

        run = mirror.rerun("--verbose", "-o", "json")

        mirror.check_copied(run)
        assert 0 < mirror.killed_patch.request_bytes < CHUNK
        calls = [(r.method, r.status) for r in mirror.upload_requests()]
        assert calls[:3] == [("GET", 404), ("POST", 202), ("PATCH", 202)]
        assert f"recorded upload of {mirror.layer.digest} is stale, starting a new one: GET " in run.stderr
        assert "BLOB_UPLOAD_INVALID" in run.stderr
        assert mirror.uploaded() == mirror.layer.size


@pytest.mark.parametrize("stale", ["purged", "wrong-offset", "corrupt"])
def test_a_stale_or_corrupt_record_starts_over_cleanly(
    tmp_path: Path, slow_source: FaultProxy, docker_registry: Registry, stale: str
) -> None:
    with FaultProxy(upstream=docker_registry, blob_host=False) as destination:
        destination.add(BufferUpload())
        mirror = Mirror(tmp_path, slow_source, destination, "app", seed=104)
        recorded = mirror.interrupt(signal.SIGKILL, at=CHUNK)
        [path] = (mirror.state / "uploads").iterdir()
        if stale == "purged":
            images.Client(docker_registry).request("DELETE", recorded["location"], ok=(204,))  # as a purge does
        elif stale == "wrong-offset":
            path.write_text(json.dumps(recorded | {"offset": recorded["offset"] + 1}))
        else:
            path.write_bytes(b'{"registry": "torn')
        destination.clear()

        run = mirror.rerun("--verbose", "-o", "json")

        mirror.check_copied(run)
        assert mirror.uploaded() == mirror.layer.size
        calls = [(r.method, r.status) for r in mirror.upload_requests()]
        digest = mirror.layer.digest
        if stale == "purged":
            assert calls[:2] == [("GET", 404), ("POST", 202)]
            assert f"recorded upload of {digest} is stale, starting a new one: GET " in run.stderr
        elif stale == "wrong-offset":  # the registry holds less than the record says: abandoned
            assert calls[:3] == [("GET", 204), ("DELETE", 204), ("POST", 202)]
            expected = f"the registry holds {recorded['offset']} bytes, {recorded['offset'] + 1} were recorded"
            assert f"recorded upload of {digest} is stale, starting a new one: {expected}" in run.stderr
        else:
            assert calls[0] == ("POST", 202)
            assert f"ignoring upload state path={path} err=" in run.stderr
