"""SPIFFE `hosts[].tls` against the real docker-registry serving an X.509-SVID, and against a
recording TLS server: the server's SPIFFE ID is authorized inside the handshake (a refused server
receives no byte), the client presents its SVID from the Workload API, and a rotated SVID is used
by the next connections."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import images
from harness.background import BackgroundLoop
from harness.pki import PKI
from harness.registry import Registry, RegistryFactory
from harness.runner import Run, entry, sync
from harness.spiffe import FakeWorkloadAPI, RecordingTLSServer, SpiffeCA, workload_api

pytestmark = pytest.mark.registry

MIRROR_ID = "spiffe://example.org/mirror"
REGISTRY_ID = "spiffe://example.org/registry"


@dataclasses.dataclass(frozen=True)
class Spiffe:
    ca: SpiffeCA
    api: FakeWorkloadAPI
    endpoint: str
    directory: Path

    @property
    def env(self) -> dict[str, str]:
        return {"SPIFFE_ENDPOINT_SOCKET": self.endpoint}


@pytest.fixture(scope="module")
def spiffe() -> Iterator[Spiffe]:
    # A unix socket path must stay short (108 bytes): not under pytest's tmp_path.
    with tempfile.TemporaryDirectory(prefix="fm-spiffe-") as directory:
        ca = SpiffeCA("example.org")
        with workload_api(Path(directory, "agent.sock"), ca, MIRROR_ID) as (api, endpoint):
            yield Spiffe(ca, api, endpoint, Path(directory))


def _svid_registry(factory: RegistryFactory, spiffe: Spiffe, pki: PKI, *, client_certs: bool) -> Registry:
    """docker-registry serving an SVID (with loopback names too, so the harness can push with a
    plain CA check); with `client_certs` it requires one of the SPIFFE CA (or the harness's CA)."""
    cert, key = spiffe.ca.issue(REGISTRY_ID, loopback_names=True).write(spiffe.directory, "registry")
    ca_path = spiffe.ca.write(spiffe.directory / "ca.pem")
    tls: dict[str, Any] = {"certificate": str(cert), "key": str(key)}
    if client_certs:
        tls["clientcas"] = [str(ca_path), str(pki.ca_path)]
    return factory(tls=True, require_client_cert=client_certs, config={"http": {"tls": tls}}, ca_path=ca_path)


@pytest.fixture(scope="module")
def svid_registry(registry_factory: RegistryFactory, spiffe: Spiffe, pki: PKI) -> Registry:
    return _svid_registry(registry_factory, spiffe, pki, client_certs=False)


@pytest.fixture(scope="module")
def svid_registry_mtls(registry_factory: RegistryFactory, spiffe: Spiffe, pki: PKI) -> Registry:
    return _svid_registry(registry_factory, spiffe, pki, client_certs=True)


@pytest.fixture
def recorder(spiffe: Spiffe) -> Iterator[RecordingTLSServer]:
    loop = BackgroundLoop("spiffe-recorder")
    server = RecordingTLSServer(loop, spiffe.ca.issue(REGISTRY_ID), spiffe.ca, spiffe.directory)
    try:
        yield server
    finally:
        server.close()
        loop.close()


def _host(host: str, tls: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"host": host, "tls": tls}]


def _copy(
    tmp_path: Path, source: Registry, destination: Registry, repo: str, tls: dict[str, Any], env: dict[str, str]
) -> Run:
    images.push(source, repo, "1.0.0", images.make_artifact(seed=hash(repo) & 0xFFFF))
    return sync(tmp_path, [entry(source, destination, repo)], hosts=_host(destination.host, tls), env=env)


def _copied(run: Run) -> bool:
    return run.code == 0 and [row["status"] for row in run.rows()] == ["copied"]


@pytest.mark.parametrize(
    "rule",
    [{"serverID": REGISTRY_ID}, {"trustDomain": "self"}, {"trustDomain": "example.org"}, {"authorizeAny": True}],
    ids=["serverID", "self", "trustDomain", "authorizeAny"],
)
def test_an_authorized_server_is_copied_to(
    tmp_path: Path, registry: Registry, svid_registry: Registry, spiffe: Spiffe, unique_repo: str, rule: dict[str, Any]
) -> None:
    run = _copy(tmp_path, registry, svid_registry, unique_repo, {"serverAuth": {"spiffe": rule}}, spiffe.env)
    assert _copied(run), run.stderr
    assert (
        images.get_manifest(svid_registry, unique_repo, "1.0.0").digest
        == images.get_manifest(registry, unique_repo, "1.0.0").digest
    )


def test_a_wrong_server_id_is_refused(
    tmp_path: Path, registry: Registry, svid_registry: Registry, spiffe: Spiffe, unique_repo: str
) -> None:
    tls = {"serverAuth": {"spiffe": {"serverID": "spiffe://example.org/someone-else"}}}
    run = _copy(tmp_path, registry, svid_registry, unique_repo, tls, spiffe.env)
    assert run.code == 1
    (row,) = run.rows()
    assert row["status"] == "failed", row
    assert row["error"].endswith(f'Get "https://{svid_registry.host}/v2/": unexpected ID "{REGISTRY_ID}"'), row


def test_another_trust_domain_is_refused_before_anything_runs(
    tmp_path: Path, registry: Registry, svid_registry: Registry, spiffe: Spiffe, unique_repo: str
) -> None:
    tls = {"serverAuth": {"spiffe": {"trustDomain": "other.org"}}}
    run = _copy(tmp_path, registry, svid_registry, unique_repo, tls, spiffe.env)
    assert run.code == 1 and not run.stdout
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert f'host "{svid_registry.host}": tls: spiffe: no X.509 bundle found for trust domain "other.org"' in lines[0]


def test_a_refused_server_receives_no_byte(
    tmp_path: Path, registry: Registry, recorder: RecordingTLSServer, spiffe: Spiffe, unique_repo: str
) -> None:
    """The ID is checked inside the handshake: no request (nor credential) reaches the server. The
    same server with the right ID receives the request: the recorder does see what is sent."""
    target = [{"source": f"{recorder.host}/{unique_repo}", "destination": f"{registry.host}/{unique_repo}"}]
    wrong = _host(recorder.host, {"serverAuth": {"spiffe": {"serverID": "spiffe://example.org/someone-else"}}})
    refused = sync(tmp_path, target, "--retries", "0", hosts=wrong, env=spiffe.env)
    assert refused.code == 1
    assert f'unexpected ID "{REGISTRY_ID}"' in refused.report["report"]["results"][0]["error"]
    assert sum(c.received for c in recorder.connections) == 0, recorder.connections
    right = _host(recorder.host, {"serverAuth": {"spiffe": {"serverID": REGISTRY_ID}}})
    sync(tmp_path, target, "--retries", "0", hosts=right, env=spiffe.env)
    assert sum(c.received for c in recorder.connections) > 0


def test_the_client_svid_is_presented(
    tmp_path: Path, registry: Registry, svid_registry_mtls: Registry, spiffe: Spiffe, unique_repo: str
) -> None:
    server = {"spiffe": {"serverID": REGISTRY_ID}}
    without = _copy(tmp_path, registry, svid_registry_mtls, unique_repo, {"serverAuth": server}, spiffe.env)
    assert without.code == 1
    tls = {"serverAuth": server, "clientAuth": {"provider": "x509-svid"}}
    run = sync(
        tmp_path,
        [entry(registry, svid_registry_mtls, unique_repo)],
        hosts=_host(svid_registry_mtls.host, tls),
        env=spiffe.env,
    )
    assert _copied(run), run.stderr


def test_a_rotated_svid_is_presented_by_the_next_run(
    tmp_path: Path, registry: Registry, recorder: RecordingTLSServer, spiffe: Spiffe, unique_repo: str
) -> None:
    target = [{"source": f"{recorder.host}/{unique_repo}", "destination": f"{registry.host}/{unique_repo}"}]
    tls = _host(
        recorder.host, {"serverAuth": {"spiffe": {"authorizeAny": True}}, "clientAuth": {"provider": "x509-svid"}}
    )
    first = spiffe.api.svid.serial
    sync(tmp_path, target, "--retries", "0", hosts=tls, env=spiffe.env)
    assert {c.client_serial for c in recorder.connections} == {first}
    second = spiffe.api.rotate().serial
    recorder.connections.clear()
    sync(tmp_path, target, "--retries", "0", hosts=tls, env=spiffe.env)
    assert {c.client_serial for c in recorder.connections} == {second} and second != first


def test_a_svid_rotated_during_a_run_is_presented_by_its_next_connections(
    tmp_path: Path, registry: Registry, recorder: RecordingTLSServer, spiffe: Spiffe
) -> None:
    """One run, three entries on the recording server (one connection each, closed after the
    answer): the Workload API rotates while the first is answered, and the later entries present
    the new SVID, without a restart."""
    first = spiffe.api.svid.serial
    rotated: list[int] = []

    def rotate_once(index: int) -> None:
        if index == 0:
            rotated.append(spiffe.api.rotate().serial)
            time.sleep(1)  # the update reaches the run's X.509 source, which rebuilds the context

    recorder.before_answer = rotate_once
    targets = [{"source": f"{recorder.host}/t/r{i}", "destination": f"{registry.host}/t/r{i}"} for i in range(3)]
    tls = _host(
        recorder.host, {"serverAuth": {"spiffe": {"authorizeAny": True}}, "clientAuth": {"provider": "x509-svid"}}
    )
    run = sync(tmp_path, targets, "--retries", "0", hosts=tls, env=spiffe.env)
    assert run.code == 1 and len(run.report["report"]["results"]) == 3
    serials = [c.client_serial for c in recorder.connections]
    assert serials[0] == first and rotated and serials[-1] == rotated[0] != first, serials


def test_no_workload_api_socket_stops_the_run_with_one_line(
    tmp_path: Path, registry: Registry, svid_registry: Registry, unique_repo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SPIFFE_ENDPOINT_SOCKET", raising=False)
    started = time.monotonic()
    run = _copy(tmp_path, registry, svid_registry, unique_repo, {"serverAuth": {"spiffe": {"authorizeAny": True}}}, {})
    assert run.code == 1 and not run.stdout
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and f'host "{svid_registry.host}": tls: spiffe: create X.509 source: ' in lines[0], (
        run.stderr
    )
    assert time.monotonic() - started < 20


def test_a_client_svid_with_a_ca_verified_server(
    tmp_path: Path, registry: Registry, registry_factory: RegistryFactory, spiffe: Spiffe, pki: PKI, unique_repo: str
) -> None:
    """Client-only SPIFFE: the server's ordinary certificate is checked against a CA bundle (host
    name included) while the SVID is presented to a registry that requires a client certificate."""
    clientcas = [str(spiffe.ca.write(spiffe.directory / "ca.pem")), str(pki.ca_path)]
    destination = registry_factory(require_client_cert=True, config={"http": {"tls": {"clientcas": clientcas}}})
    shutil.copyfile(pki.ca_path, tmp_path / "ca.pem")
    server = {"fromPath": "ca.pem"}
    without = _copy(tmp_path, registry, destination, unique_repo, {"serverAuth": server}, spiffe.env)
    assert without.code == 1
    tls = {"serverAuth": server, "clientAuth": {"provider": "x509-svid"}}
    run = sync(
        tmp_path, [entry(registry, destination, unique_repo)], hosts=_host(destination.host, tls), env=spiffe.env
    )
    assert _copied(run), run.stderr
