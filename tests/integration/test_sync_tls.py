"""`hosts[].tls` against the real docker-registry over TLS and mTLS: a host's CA bundle replaces the
system roots for that host only (exact `host:port`), its client certificate is presented, `--insecure`
skips verification but still presents it, and bad PEM stops the run with one line."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from harness import images
from harness.pki import PKI, create_pki
from harness.registry import Registry, RegistryFactory
from harness.runner import Run, entry, sync

pytestmark = pytest.mark.registry

UNKNOWN_AUTHORITY = "tls: failed to verify certificate: x509: certificate signed by unknown authority"


def _in_config_dir(tmp_path: Path, source: Path, name: str) -> str:
    """Config paths are confined to the config's directory, where the runner writes the config."""
    shutil.copyfile(source, tmp_path / name)
    return name


def _tls_host(registry: Registry, tls: dict[str, Any]) -> dict[str, Any]:
    return {"host": registry.host, "tls": tls}


def _pushed(registry: Registry, repo: str, seed: int) -> images.Manifest:
    artifact = images.make_artifact(seed=seed)
    images.push(registry, repo, "1.0.0", artifact)
    return artifact


def _copied(run: Run) -> bool:
    return run.code == 0 and [row["status"] for row in run.rows()] == ["copied"]


@pytest.mark.parametrize("form", ["fromPath", "value"])
def test_a_ca_bundle_trusts_the_host(
    tmp_path: Path, registry_tls: Registry, pki: PKI, unique_repo: str, form: str
) -> None:
    artifact = _pushed(registry_tls, unique_repo, 0x7101)
    bundle = _in_config_dir(tmp_path, pki.ca_path, "ca.pem") if form == "fromPath" else pki.ca_path.read_text()
    run = sync(
        tmp_path,
        [entry(registry_tls, registry_tls, unique_repo, f"{unique_repo}-copy")],
        hosts=[_tls_host(registry_tls, {"serverAuth": {form: bundle}})],
    )
    assert _copied(run), run.stderr
    assert images.get_manifest(registry_tls, f"{unique_repo}-copy", "1.0.0").digest == artifact.digest


def test_the_bundle_replaces_the_system_roots(
    tmp_path: Path, registry_tls: Registry, pki: PKI, unique_repo: str
) -> None:
    """The system roots (SSL_CERT_FILE) would trust the registry; the host's own bundle, of another
    CA, is what counts for that host."""
    _pushed(registry_tls, unique_repo, 0x7102)
    other = create_pki(tmp_path / "other-ca")
    run = sync(
        tmp_path,
        [entry(registry_tls, registry_tls, unique_repo, f"{unique_repo}-copy")],
        hosts=[_tls_host(registry_tls, {"serverAuth": {"fromPath": _in_config_dir(tmp_path, other.ca_path, "o.pem")}})],
        env={"SSL_CERT_FILE": str(pki.ca_path)},
    )
    assert run.code == 1
    assert UNKNOWN_AUTHORITY in run.report["report"]["results"][0]["error"]


def test_settings_never_leak_to_another_port(
    tmp_path: Path, registry_tls: Registry, registry_factory: RegistryFactory, pki: PKI, unique_repo: str
) -> None:
    """`host:5000` and `host:5001` are different hosts: the trusted source does not make the
    destination, on the same address but another port, trusted."""
    other_port = registry_factory(tls=True)
    _pushed(registry_tls, unique_repo, 0x7103)
    run = sync(
        tmp_path,
        [entry(registry_tls, other_port, unique_repo)],
        hosts=[_tls_host(registry_tls, {"serverAuth": {"fromPath": _in_config_dir(tmp_path, pki.ca_path, "ca.pem")}})],
    )
    assert run.code == 1
    (row,) = run.rows()
    assert row["status"] == "failed" and UNKNOWN_AUTHORITY in row["error"]
    assert other_port.host in row["error"]


def test_a_client_certificate_is_presented(tmp_path: Path, registry_mtls: Registry, pki: PKI, unique_repo: str) -> None:
    artifact = _pushed(registry_mtls, unique_repo, 0x7104)
    target = entry(registry_mtls, registry_mtls, unique_repo, f"{unique_repo}-copy")
    server = {"fromPath": _in_config_dir(tmp_path, pki.ca_path, "ca.pem")}
    without = sync(tmp_path, [target], hosts=[_tls_host(registry_mtls, {"serverAuth": server})])
    assert without.code == 1
    client = {
        "certificate": {"fromPath": _in_config_dir(tmp_path, pki.client_cert_path, "client.pem")},
        "key": {"value": pki.client_key_path.read_text()},
    }
    run = sync(tmp_path, [target], hosts=[_tls_host(registry_mtls, {"serverAuth": server, "clientAuth": client})])
    assert _copied(run), run.stderr
    assert images.get_manifest(registry_mtls, f"{unique_repo}-copy", "1.0.0").digest == artifact.digest


def test_insecure_skips_verification_but_still_presents_the_certificate(
    tmp_path: Path, registry_mtls: Registry, pki: PKI, unique_repo: str
) -> None:
    _pushed(registry_mtls, unique_repo, 0x7105)
    client = {
        "certificate": {"fromPath": _in_config_dir(tmp_path, pki.client_cert_path, "client.pem")},
        "key": {"fromPath": _in_config_dir(tmp_path, pki.client_key_path, "client-key.pem")},
    }
    target = entry(registry_mtls, registry_mtls, unique_repo, f"{unique_repo}-copy")
    verified = sync(tmp_path, [target], hosts=[_tls_host(registry_mtls, {"clientAuth": client})])
    assert verified.code == 1 and UNKNOWN_AUTHORITY in verified.report["report"]["results"][0]["error"]
    insecure = sync(tmp_path, [target], "--insecure", hosts=[_tls_host(registry_mtls, {"clientAuth": client})])
    assert _copied(insecure), insecure.stderr


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ({"serverAuth": {"value": "not a certificate"}}, "tls: serverAuth: no valid certificates in CA bundle"),
        (
            {"serverAuth": {"fromPath": "missing.pem"}},
            "tls: serverAuth: open {dir}/missing.pem: no such file or directory",
        ),
        (
            {"clientAuth": {"certificate": {"value": "junk"}, "key": {"value": "junk"}}},
            "tls: clientAuth: no valid certificate in certificate",
        ),
    ],
    ids=["no-certificates", "missing-file", "bad-client-certificate"],
)
def test_bad_pem_stops_the_run_with_one_line(
    tmp_path: Path, registry_tls: Registry, unique_repo: str, tls: dict[str, Any], message: str
) -> None:
    run = sync(tmp_path, [entry(registry_tls, registry_tls, unique_repo)], hosts=[_tls_host(registry_tls, tls)])
    expected = f'✗ host "{registry_tls.host}": {message.format(dir=tmp_path)}\n'
    assert (run.code, run.stdout, run.stderr) == (1, "", expected)
