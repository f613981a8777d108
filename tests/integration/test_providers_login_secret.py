"""`login` and `secret` mint every provider's credential once and write it in its documented shape.

One config lists a host per provider kind, each reaching its offline stand-in through the
environment the CLI child is given: ECR through moto, GAR through the GCE metadata fake, ACR through
the Entra fake and the ACR exchange behind the forward proxy, and CI tokens from the Actions OIDC
endpoint and the SPIFFE Workload API. Provider credentials are written as username/password (with
`auth`), except a credential provider's token without `username`, which is a `registrytoken`.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness.acr import ACR_USERNAME, AcrRegistry
from harness.actions_oidc import ActionsOIDC
from harness.aws import MotoAWS, decode_envelope
from harness.cli import run_cli
from harness.entra import ACR_AUDIENCE, EntraID
from harness.fixtures_kube import write_kubeconfig
from harness.gce import GCEMetadata
from harness.kubeapi import KubeAPI
from harness.pki import ACR_NAME, ECR_NAME, GAR_NAME, PKI
from harness.spiffe import FakeWorkloadAPI

CI_HOST = "ci.registry.example"
FORGEJO_HOST = "forgejo.registry.example"
GCP_HOST = "gcp.registry.example"
AZURE_HOST = "azure.registry.example"
AWS_HOST = "aws.registry.example"
SPIFFE_HOST = "spiffe.registry.example:5000"


@pytest.fixture
def clouds(
    moto_aws: MotoAWS,
    gce_metadata: GCEMetadata,
    entra: EntraID,
    acr_registry: AcrRegistry,
    actions_oidc: ActionsOIDC,
    spiffe_workload_api: FakeWorkloadAPI,
) -> dict[str, str]:
    """The environment of a child that reaches every stand-in at once."""
    return {
        **moto_aws.environment(),
        **gce_metadata.environment(),
        **entra.environment("workload"),
        **actions_oidc.environment(),
        **spiffe_workload_api.environment(),
        **acr_registry.environment(),  # last: it decides every proxy variable
    }


def write_hosts(tmp_path: Path) -> Path:
    hosts = [
        {"host": ECR_NAME, "provider": "ecr"},
        {"host": GAR_NAME, "provider": "gar"},
        {"host": ACR_NAME, "provider": "acr"},
        {"host": CI_HOST, "username": "ci", "credential": {"provider": "github"}},
        {"host": FORGEJO_HOST, "credential": {"provider": "forgejo"}},
        {"host": GCP_HOST, "username": "gcp", "credential": {"provider": "gcp"}},
        {"host": AZURE_HOST, "credential": {"provider": "azure"}},
        {"host": AWS_HOST, "username": "aws", "credential": {"provider": "aws"}},
        {"host": SPIFFE_HOST, "credential": {"provider": "jwt-svid"}},
        {"host": "tls-only.example", "maxChunkSize": 1024},
    ]
    path = tmp_path / "hosts.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "mirror.plugin.fluxcd.io/v1beta1", "kind": "Config", "hosts": hosts}))
    return path


def basic(username: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}


def expected_entries(
    moto_aws: MotoAWS,
    gce_metadata: GCEMetadata,
    entra: EntraID,
    acr_registry: AcrRegistry,
    actions_oidc: ActionsOIDC,
    spiffe_workload_api: FakeWorkloadAPI,
    stored: dict[str, Any],
) -> dict[str, tuple[str, str] | str]:
    """Each host's minted credential: (username, password), or the bearer token; each minted once,
    for its own audience. The AWS envelope is checked by replaying what was stored to STS."""
    [access_token] = gce_metadata.access_tokens
    [id_token] = gce_metadata.issuer.minted
    [exchange] = acr_registry.exchanges
    [svid] = spiffe_workload_api.jwt_issuer.minted
    assert moto_aws.ecr_token_calls == 1 and exchange.refresh_token is not None
    assert spiffe_workload_api.jwt_requests == [(SPIFFE_HOST,)]
    actions = {request.audience: request.token for request in actions_oidc.requests}
    assert list(actions) == [CI_HOST, FORGEJO_HOST] and all(actions.values())
    assert id_token.claims["aud"] == GCP_HOST
    entra_tokens = {request.resource: request.token for request in entra.token_requests("workload")}
    assert list(entra_tokens) == [ACR_AUDIENCE, AZURE_HOST]
    envelope = stored[AWS_HOST][1]
    assert decode_envelope(envelope)["aud"] == AWS_HOST and moto_aws.replay(envelope)[0] == 200
    return {
        ECR_NAME: ("AWS", moto_aws.ecr_password),
        GAR_NAME: ("oauth2accesstoken", access_token.token),
        ACR_NAME: (ACR_USERNAME, exchange.refresh_token),
        CI_HOST: ("ci", str(actions[CI_HOST])),
        FORGEJO_HOST: str(actions[FORGEJO_HOST]),
        GCP_HOST: ("gcp", id_token.token),
        AZURE_HOST: str(entra_tokens[AZURE_HOST]),
        AWS_HOST: ("aws", envelope),
        SPIFFE_HOST: svid.token,
    }


def decoded_pair(entry: dict[str, str]) -> tuple[str, str]:
    username, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
    return username, password


def test_login_stores_every_provider_credential(
    tmp_path: Path,
    clouds: dict[str, str],
    moto_aws: MotoAWS,
    gce_metadata: GCEMetadata,
    entra: EntraID,
    acr_registry: AcrRegistry,
    actions_oidc: ActionsOIDC,
    spiffe_workload_api: FakeWorkloadAPI,
) -> None:
    docker = tmp_path / "docker"
    done = run_cli("login", "-f", str(write_hosts(tmp_path)), "--docker-config", str(docker), "--plaintext", env=clouds)
    assert (done.code, done.err) == (0, ""), done.err
    config = docker / "config.json"
    assert done.out.splitlines() == [
        f"✔ stored credential for {ECR_NAME} in {config}",
        f"✔ stored credential for {GAR_NAME} in {config}",
        f"✔ stored credential for {ACR_NAME} in {config}",
        f"✔ stored credential for {CI_HOST} in {config}",
        f"✔ stored registry token for {FORGEJO_HOST} in {config}",
        f"✔ stored credential for {GCP_HOST} in {config}",
        f"✔ stored registry token for {AZURE_HOST} in {config}",
        f"✔ stored credential for {AWS_HOST} in {config}",
        f"✔ stored registry token for {SPIFFE_HOST} in {config}",
        "• skipping tls-only.example: no credential configured (TLS-only host)",
    ]
    stored = json.loads(config.read_text())["auths"]
    pairs = {host: decoded_pair(entry) for host, entry in stored.items() if "auth" in entry}
    expected = expected_entries(moto_aws, gce_metadata, entra, acr_registry, actions_oidc, spiffe_workload_api, pairs)
    assert stored == {
        host: basic(*value) if isinstance(value, tuple) else {"registrytoken": value}
        for host, value in expected.items()
    }
    assert moto_aws.ecr_password not in done.out


def test_secret_writes_every_provider_credential(
    tmp_path: Path,
    clouds: dict[str, str],
    kube_api: KubeAPI,
    pki: PKI,
    moto_aws: MotoAWS,
    gce_metadata: GCEMetadata,
    entra: EntraID,
    acr_registry: AcrRegistry,
    actions_oidc: ActionsOIDC,
    spiffe_workload_api: FakeWorkloadAPI,
) -> None:
    kubeconfig = write_kubeconfig(tmp_path, kube_api, pki)
    done = run_cli("secret", "regcreds", "-f", str(write_hosts(tmp_path)), "--kubeconfig", str(kubeconfig), env=clouds)
    assert (done.code, done.err) == (0, ""), done.err
    assert done.out.splitlines()[-1] == "✔ secret team/regcreds created with 9 host(s)"
    secret: dict[str, Any] = kube_api.secrets[("team", "regcreds")]
    auths = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]
    pairs = {host: decoded_pair(entry) for host, entry in auths.items() if "auth" in entry}
    expected = expected_entries(moto_aws, gce_metadata, entra, acr_registry, actions_oidc, spiffe_workload_api, pairs)
    assert list(auths) == sorted(expected)
    for host, value in expected.items():
        if isinstance(value, tuple):
            assert auths[host] == {"username": value[0], "password": value[1], **basic(*value)}
        else:
            assert auths[host] == {"registrytoken": value}


def test_login_names_the_host_and_provider_that_failed(
    tmp_path: Path, clouds: dict[str, str], moto_aws: MotoAWS
) -> None:
    docker = tmp_path / "docker"
    env = {**clouds, "AWS_SECRET_ACCESS_KEY": "wrong-secret-key"}
    done = run_cli("login", "-f", str(write_hosts(tmp_path)), "--docker-config", str(docker), env=env)
    assert (done.code, done.out) == (1, "")
    assert done.err.startswith(f'✗ get ecr registry credentials for "{ECR_NAME}": ')
    assert "SignatureDoesNotMatch" in done.err and done.err.count("\n") == 1
    assert "wrong-secret-key" not in done.err
    assert not (docker / "config.json").exists()
