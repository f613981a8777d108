"""sync with credentials from the config's `hosts`: value, fromPath and signed JWK tokens (providers:
test_providers_*.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from harness import TEST_USER, images
from harness.registry import Registry
from harness.runner import entry, sync
from harness.tokenserver import TokenServer

from fluxmirror.auth.keygen import write_key_pair

pytestmark = pytest.mark.registry


def test_username_and_value_from_the_environment(tmp_path: Path, registry_htpasswd: Registry, unique_repo: str) -> None:
    image = images.make_image([3000], seed=51)
    images.push(registry_htpasswd, unique_repo, "1.0.0", image, auth=TEST_USER)
    hosts = [{"host": registry_htpasswd.host, "username": TEST_USER.username, "credential": {"value": "${REG_PASS}"}}]
    run = sync(
        tmp_path,
        [entry(registry_htpasswd, registry_htpasswd, unique_repo, f"{unique_repo}-v")],
        hosts=hosts,
        env={"REG_PASS": TEST_USER.password},
    )
    assert (run.code, run.rows()[0]["status"]) == (0, "copied")
    assert images.get_manifest(registry_htpasswd, f"{unique_repo}-v", "1.0.0", auth=TEST_USER).digest == image.digest


def test_listed_host_wins_over_the_docker_config(tmp_path: Path, registry_htpasswd: Registry, unique_repo: str) -> None:
    images.push(registry_htpasswd, unique_repo, "1.0.0", images.make_artifact(seed=52), auth=TEST_USER)
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text(
        json.dumps({"auths": {registry_htpasswd.host: {"username": "x", "password": "y"}}})
    )
    (tmp_path / "token").write_text(f"  {TEST_USER.password}\n")
    hosts = [{"host": registry_htpasswd.host, "username": TEST_USER.username, "credential": {"fromPath": "token"}}]
    run = sync(
        tmp_path,
        [entry(registry_htpasswd, registry_htpasswd, unique_repo, f"{unique_repo}-p")],
        hosts=hosts,
        env={"DOCKER_CONFIG": str(docker)},
    )
    assert (run.code, run.rows()[0]["status"]) == (0, "copied")


def test_wrong_credential_fails_rows_without_the_secret(
    tmp_path: Path, registry_htpasswd: Registry, unique_repo: str
) -> None:
    images.push(registry_htpasswd, unique_repo, "1.0.0", images.make_artifact(seed=53), auth=TEST_USER)
    hosts = [
        {"host": registry_htpasswd.host, "username": TEST_USER.username, "credential": {"value": "Wr0ng-Secret-Value"}}
    ]
    run = sync(tmp_path, [entry(registry_htpasswd, registry_htpasswd, unique_repo, f"{unique_repo}-w")], hosts=hosts)
    assert run.code == 1
    assert "UNAUTHORIZED" in run.report["report"]["results"][0]["error"]
    assert "Wr0ng-Secret-Value" not in run.stdout + run.stderr


def test_signed_jwk_token_is_exchanged_at_the_token_endpoint(
    tmp_path: Path, registry_token: Registry, token_server: TokenServer, unique_repo: str
) -> None:
    images.push(registry_token, unique_repo, "1.0.0", images.make_artifact(seed=54), auth=TEST_USER)
    write_key_pair(str(tmp_path / "keys"))
    public = jwt.PyJWKSet.from_json((tmp_path / "keys" / "pubkey.json").read_text())
    seen: list[dict[str, object]] = []

    def accept_signed(username: str, password: str) -> bool:
        header = jwt.get_unverified_header(password)
        key = next(k for k in public.keys if k.key_id == header["kid"])
        claims = jwt.decode(
            password, key.key, algorithms=["EdDSA"], audience=registry_token.host, issuer="https://ci.example"
        )
        seen.append(claims)
        return username == "ci-bot" and claims["sub"] == "mirror-pusher"

    token_server.password_validator = accept_signed
    hosts = [
        {
            "host": registry_token.host,
            "username": "ci-bot",
            "credential": {
                "jwkPath": "keys/privkey.json",
                "iss": "https://ci.example",
                "sub": "mirror-pusher",
                "exp": "10m",
            },
        }
    ]
    run = sync(tmp_path, [entry(registry_token, registry_token, unique_repo, f"{unique_repo}-j")], hosts=hosts)
    assert (run.code, run.rows()[0]["status"]) == (0, "copied")
    assert seen, "the token server never saw the signed JWT"
    expires, issued = seen[0]["exp"], seen[0]["iat"]
    assert isinstance(expires, int) and isinstance(issued, int), seen[0]
    assert expires - issued == 600 and abs(issued - time.time()) < 120
