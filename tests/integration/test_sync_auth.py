"""sync authenticates through the ambient Docker config: htpasswd, token server, credential helpers."""

from __future__ import annotations

import base64
import json
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from harness import TEST_USER, Credentials, images
from harness.registry import Registry
from harness.runner import entry, sync
from harness.tokenserver import SERVICE, TokenServer

pytestmark = pytest.mark.registry


def docker_config(tmp_path: Path, document: dict[str, object]) -> dict[str, str]:
    directory = tmp_path / "docker"
    directory.mkdir(exist_ok=True)
    (directory / "config.json").write_text(json.dumps(document))
    return {"DOCKER_CONFIG": str(directory)}


def basic_auths(registry: Registry, credentials: Credentials) -> dict[str, object]:
    token = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    return {"auths": {registry.host: {"auth": token}}}


def test_htpasswd_registry_with_docker_config_auth(
    tmp_path: Path, registry_htpasswd: Registry, unique_repo: str
) -> None:
    credentials = registry_htpasswd.credentials
    assert credentials is not None
    image = images.make_image([4000], seed=31)
    images.push(registry_htpasswd, unique_repo, "1.0.0", image, auth=credentials)
    env = docker_config(tmp_path, basic_auths(registry_htpasswd, credentials))
    run = sync(tmp_path, [entry(registry_htpasswd, registry_htpasswd, unique_repo, f"{unique_repo}-copy")], env=env)
    assert (run.code, run.rows()[0]["status"]) == (0, "copied")
    copied = images.get_manifest(registry_htpasswd, f"{unique_repo}-copy", "1.0.0", auth=credentials)
    assert copied.digest == image.digest


def test_wrong_password_fails_without_leaking_it(tmp_path: Path, registry_htpasswd: Registry, unique_repo: str) -> None:
    wrong = Credentials("fluxmirror", "not-the-Secret-123")
    env = docker_config(tmp_path, basic_auths(registry_htpasswd, wrong))
    run = sync(tmp_path, [entry(registry_htpasswd, registry_htpasswd, unique_repo, f"{unique_repo}-x")], env=env)
    assert run.code == 1
    error = run.report["report"]["results"][0]["error"]
    assert "UNAUTHORIZED" in error
    assert wrong.password not in run.stdout + run.stderr
    assert base64.b64encode(b"fluxmirror:not-the-Secret-123").decode() not in run.stdout + run.stderr


def test_bearer_token_flow_requests_pull_and_push_scopes(
    tmp_path: Path, registry_token: Registry, token_server: TokenServer, unique_repo: str
) -> None:
    credentials = TEST_USER
    image = images.make_image([2500], seed=32)
    images.push(registry_token, unique_repo, "1.0.0", image, auth=credentials)
    token_server.reset()
    env = docker_config(tmp_path, basic_auths(registry_token, credentials))
    destination = f"{unique_repo}-mirror"
    run = sync(tmp_path, [entry(registry_token, registry_token, unique_repo, destination)], env=env)
    assert (run.code, run.rows()[0]["status"]) == (0, "copied")

    def actions(repository: str) -> set[str]:
        return set().union(*(request.requested_actions(repository) for request in token_server.requests))

    assert actions(unique_repo) == {"pull"}
    assert actions(destination) == {"pull", "push"}
    assert all(request.auth_scheme == "basic" for request in token_server.requests)
    assert images.get_manifest(registry_token, destination, "1.0.0", auth=credentials).digest == image.digest


def test_credential_helper_on_path(tmp_path: Path, registry_htpasswd: Registry, unique_repo: str) -> None:
    credentials = registry_htpasswd.credentials
    assert credentials is not None
    images.push(registry_htpasswd, unique_repo, "2.0.0", images.make_artifact(seed=33), auth=credentials)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "helper-calls"
    helper = bin_dir / "docker-credential-fmtest"
    answer = json.dumps(
        {"ServerURL": registry_htpasswd.host, "Username": credentials.username, "Secret": credentials.password}
    )
    helper.write_text(
        "#!/bin/sh\n"
        f'read server; echo "$1 $server" >> {calls}\n'
        f'if [ "$server" = "{registry_htpasswd.host}" ]; then echo \'{answer}\'; exit 0; fi\n'
        'echo "credentials not found in native keychain"; exit 1\n'
    )
    helper.chmod(0o755)
    env = docker_config(tmp_path, {"credHelpers": {registry_htpasswd.host: "fmtest"}})
    env["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    run = sync(tmp_path, [entry(registry_htpasswd, registry_htpasswd, unique_repo, f"{unique_repo}-h")], env=env)
    assert (run.code, run.rows()[0]["status"]) == (0, "copied")
    assert f"get {registry_htpasswd.host}" in calls.read_text().splitlines()


def test_identity_token_uses_the_refresh_grant(
    tmp_path: Path, registry_token: Registry, token_server: TokenServer, unique_repo: str
) -> None:
    images.push(registry_token, unique_repo, "1.0.0", images.make_artifact(seed=34), auth=TEST_USER)
    query = urllib.parse.urlencode({"service": SERVICE, "offline_token": "true"})
    request = urllib.request.Request(
        f"{token_server.realm}?{query}", headers={"Authorization": TEST_USER.basic_header()}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        refresh = json.loads(response.read())["refresh_token"]
    before = len(token_server.requests)
    env = docker_config(tmp_path, {"auths": {registry_token.host: {"identitytoken": refresh}}})
    run = sync(tmp_path, [entry(registry_token, registry_token, unique_repo, f"{unique_repo}-r")], env=env)
    assert (run.code, run.rows()[0]["status"]) == (0, "copied")
    assert {request.grant_type for request in token_server.requests[before:]} == {"refresh_token"}
    assert refresh not in run.stdout + run.stderr


def test_tls_registry_needs_trust_or_insecure(tmp_path: Path, registry_tls: Registry, unique_repo: str) -> None:
    artifact = images.make_artifact(seed=35)
    images.push(registry_tls, unique_repo, "1.0.0", artifact)
    untrusted = sync(tmp_path, [entry(registry_tls, registry_tls, unique_repo, f"{unique_repo}-t")])
    assert untrusted.code == 1
    error = untrusted.report["report"]["results"][0]["error"]
    assert "tls: failed to verify certificate: x509: certificate signed by unknown authority" in error, error
    insecure = sync(tmp_path, [entry(registry_tls, registry_tls, unique_repo, f"{unique_repo}-t")], "--insecure")
    assert (insecure.code, insecure.rows()[0]["status"]) == (0, "copied")
    assert images.get_manifest(registry_tls, f"{unique_repo}-t", "1.0.0").digest == artifact.digest
