"""End to end: `fluxmirror login` writes a Docker config that an independent client (skopeo) can use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from harness import TEST_USER, images, skopeo
from harness.registry import Registry

pytestmark = pytest.mark.registry

FLUXMIRROR = Path(sys.executable).parent / "fluxmirror"


def login(tmp_path: Path, registry: Registry, docker: Path) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "hosts.yaml"
    config.write_text(
        "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\nhosts:\n"
        f"  - host: {registry.host}\n    username: {TEST_USER.username}\n    credential:\n      value: ${{PASS}}\n"
    )
    # An empty PATH apart from Python's: no credential helper on the machine can be auto-detected.
    env = os.environ | {"PASS": TEST_USER.password, "PATH": str(FLUXMIRROR.parent)}
    return subprocess.run(
        [str(FLUXMIRROR), "login", "-f", str(config), "--docker-config", str(docker)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def inspect_with_authfile(ref: str, authfile: Path) -> dict[str, object]:
    """skopeo, isolated as in the harness, but authenticating only through the given auth file."""
    sandbox = skopeo.isolation()
    command = [
        skopeo.SKOPEO_BIN,
        "--policy",
        str(sandbox.policy),
        "--registries.d",
        str(sandbox.registries_d),
        "inspect",
        "--raw",
        "--authfile",
        str(authfile),
        "--tls-verify=false",
        ref,
    ]
    result = subprocess.run(command, capture_output=True, env=sandbox.env, timeout=120, check=False)
    if result.returncode != 0:
        raise skopeo.SkopeoError(command, result.returncode, result.stderr.decode(errors="replace"))
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_skopeo_authenticates_with_the_stored_login(
    tmp_path: Path, registry_htpasswd: Registry, unique_repo: str
) -> None:
    image = images.make_image([2000], seed=61)
    images.push(registry_htpasswd, unique_repo, "v1", image, auth=TEST_USER)
    ref = registry_htpasswd.docker_ref(unique_repo, "v1")
    docker = tmp_path / "docker"

    empty = tmp_path / "empty.json"
    empty.write_text('{"auths": {}}')
    with pytest.raises(skopeo.SkopeoError, match=r"(?i)unauthorized|authentication required"):
        inspect_with_authfile(ref, empty)

    run = login(tmp_path, registry_htpasswd, docker)
    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout == f"✔ stored credential for {registry_htpasswd.host} in {docker / 'config.json'}\n"
    assert TEST_USER.password not in run.stdout
    assert (docker / "config.json").stat().st_mode & 0o777 == 0o600

    manifest = inspect_with_authfile(ref, docker / "config.json")
    assert manifest["mediaType"] == images.OCI


def test_login_reports_an_unset_password_variable(tmp_path: Path, registry_htpasswd: Registry) -> None:
    config = tmp_path / "hosts.yaml"
    config.write_text(
        "apiVersion: mirror.plugin.fluxcd.io/v1beta1\nkind: Config\nhosts:\n"
        f"  - host: {registry_htpasswd.host}\n    credential:\n      value: ${{FLUXMIRROR_UNSET_PASS}}\n"
    )
    run = subprocess.run(
        [str(FLUXMIRROR), "login", "-f", str(config), "--docker-config", str(tmp_path / "docker")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.startswith("✗ ") and run.stderr.count("\n") == 1
    assert not (tmp_path / "docker").exists()
