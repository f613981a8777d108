"""`sync` with credential and cloud registry providers, each against its offline stand-in.

The registry side is the real docker-registry behind the test token server; the token server's
`password_validator` plays the registry's identity check (an OIDC registry verifying a JWT, ECR
comparing its password, a GetCallerIdentity replay to STS), so every test proves that the very
credential the stand-in minted reached the registry, in the transport the config asks for. Content
is pushed and checked with the harness's own client before and after, with the validator off.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from harness.actions_oidc import ActionsOIDC
from harness.aws import USER_ARN, MotoAWS, decode_envelope
from harness.fixtures_cloud import CloudRegistry
from harness.gce import GCEMetadata
from harness.jwtissuer import JwtIssuer
from harness.provider_runs import claims_of, mirror, mirror_past_half_life
from harness.registry import Registry
from harness.runner import entry, sync
from harness.tokenserver import TokenServer

pytestmark = pytest.mark.registry

# -- github / forgejo -------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["github", "forgejo"])
def test_actions_token_is_the_password_of_the_challenge(
    tmp_path: Path,
    registry_token: Registry,
    token_server: TokenServer,
    actions_oidc: ActionsOIDC,
    actions_issuer: JwtIssuer,
    unique_repo: str,
    provider: str,
) -> None:
    hosts = [{"host": registry_token.host, "username": "ci", "credential": {"provider": provider}}]
    run, presented = mirror(
        tmp_path,
        registry_token,
        registry_token,
        unique_repo,
        hosts,
        actions_oidc.environment(),
        lambda user, password: user == "ci" and actions_issuer.accepts(password, registry_token.host),
    )
    [request] = actions_oidc.requests  # minted once, at start-up, and kept for the run
    assert request.query == f"api-version=2.0&audience={registry_token.host}"  # as the server decoded it
    assert request.authorization == f"bearer {actions_oidc.request_token}"
    assert set(presented.passwords) == {actions_oidc.tokens[0]}
    assert actions_oidc.tokens[0] not in run.stdout + run.stderr


def test_configured_audience_is_asked_for(
    tmp_path: Path,
    registry_token: Registry,
    token_server: TokenServer,
    actions_oidc: ActionsOIDC,
    actions_issuer: JwtIssuer,
    unique_repo: str,
) -> None:
    hosts = [
        {"host": registry_token.host, "username": "ci", "credential": {"provider": "github", "aud": "mirror.example"}}
    ]
    mirror(
        tmp_path,
        registry_token,
        registry_token,
        unique_repo,
        hosts,
        actions_oidc.environment(),
        lambda _, password: actions_issuer.accepts(password, "mirror.example"),
    )
    assert [request.audience for request in actions_oidc.requests] == ["mirror.example"]


def test_a_token_is_minted_again_past_half_its_lifetime(
    tmp_path: Path,
    registry_token: Registry,
    token_server: TokenServer,
    actions_oidc: ActionsOIDC,
    actions_issuer: JwtIssuer,
    unique_repo: str,
) -> None:
    """A 4 s token (re-minted after about 2 s) and registry tokens of 1 s: every few token requests
    the password must be a new ID token, and never one past half its lifetime."""
    actions_oidc.lifetime = 4
    hosts = [{"host": registry_token.host, "username": "ci", "credential": {"provider": "github"}}]
    presented = mirror_past_half_life(
        tmp_path,
        registry_token,
        registry_token,
        unique_repo,
        hosts,
        actions_oidc.environment(),
        lambda _, password: actions_issuer.accepts(password, registry_token.host),
    )
    minted = actions_issuer.minted
    assert len(minted) >= 2, f"one token for a run of {len(presented.seen)} token requests"
    assert len(minted) < len(presented.seen), "a token was minted for every request"
    for _, password, accepted, at in presented.seen:
        assert accepted
        claims = claims_of(password)
        issued = next(m.claims["iat"] for m in minted if m.token == password)
        assert time.time() - (time.monotonic() - at) <= issued + (claims["exp"] - issued) / 2 + 1


def test_a_failing_mint_ends_the_run_before_any_entry(
    tmp_path: Path, registry_token: Registry, actions_oidc: ActionsOIDC, unique_repo: str
) -> None:
    hosts = [{"host": registry_token.host, "credential": {"provider": "github"}}]
    env = {**actions_oidc.environment(), "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "not-the-right-one"}
    run = sync(tmp_path, [entry(registry_token, registry_token, unique_repo)], hosts=hosts, env=env)
    assert (run.code, run.stdout) == (1, "")
    assert run.stderr == (
        f'✗ failed to obtain CI JWT for host "{registry_token.host}": '
        "OIDC token request failed with status 401 Unauthorized: bad request token\n"
    )
    assert "not-the-right-one" not in run.stderr


def test_outside_actions_the_variables_are_named(
    tmp_path: Path, registry_token: Registry, no_proxy_environment: None, unique_repo: str
) -> None:
    hosts = [{"host": registry_token.host, "credential": {"provider": "forgejo"}}]
    env = {"ACTIONS_ID_TOKEN_REQUEST_URL": "", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": ""}
    run = sync(tmp_path, [entry(registry_token, registry_token, unique_repo)], hosts=hosts, env=env)
    assert (run.code, run.stdout) == (1, "")
    assert run.stderr == (
        f'✗ failed to obtain CI JWT for host "{registry_token.host}": ACTIONS_ID_TOKEN_REQUEST_URL and '
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN must be set in the environment; ensure the Actions job has the "
        "'id-token: write' permission\n"
    )


# -- gcp -------------------------------------------------------------------------------------------------


def test_gcp_id_token_from_the_metadata_server(
    tmp_path: Path,
    registry_token: Registry,
    token_server: TokenServer,
    gce_metadata: GCEMetadata,
    google_issuer: JwtIssuer,
    unique_repo: str,
) -> None:
    hosts = [{"host": registry_token.host, "username": "gcp", "credential": {"provider": "gcp"}}]
    _, presented = mirror(
        tmp_path,
        registry_token,
        registry_token,
        unique_repo,
        hosts,
        gce_metadata.environment(),
        lambda _, password: google_issuer.accepts(password, registry_token.host),
    )
    [minted] = google_issuer.minted
    assert set(presented.passwords) == {minted.token}
    assert [r.query.get("audience") for r in gce_metadata.requests if r.path.endswith("/identity")] == [
        registry_token.host
    ]


def test_gcp_id_token_is_minted_again_past_half_its_lifetime(
    tmp_path: Path,
    registry_token: Registry,
    token_server: TokenServer,
    gce_metadata: GCEMetadata,
    google_issuer: JwtIssuer,
    unique_repo: str,
) -> None:
    gce_metadata.id_lifetime = 4
    hosts = [{"host": registry_token.host, "username": "gcp", "credential": {"provider": "gcp"}}]
    presented = mirror_past_half_life(
        tmp_path,
        registry_token,
        registry_token,
        unique_repo,
        hosts,
        gce_metadata.environment(),
        lambda _, password: google_issuer.accepts(password, registry_token.host),
    )
    assert 2 <= len(google_issuer.minted) < len(presented.seen)


# -- aws -------------------------------------------------------------------------------------------------


def test_aws_envelope_replays_to_sts_and_pins_the_audience(
    tmp_path: Path, registry_token: Registry, token_server: TokenServer, moto_aws: MotoAWS, unique_repo: str
) -> None:
    replays: list[tuple[int, str]] = []

    def replay(_: str, envelope: str) -> bool:
        claims = decode_envelope(envelope)
        answer = moto_aws.replay(envelope)
        replays.append(answer)
        headers = claims["sts"]["headers"]
        return answer[0] == 200 and USER_ARN in answer[1] and headers["X-Audience"] == [registry_token.host]

    hosts = [{"host": registry_token.host, "username": "aws", "credential": {"provider": "aws"}}]
    _, presented = mirror(tmp_path, registry_token, registry_token, unique_repo, hosts, moto_aws.environment(), replay)
    assert replays and all(status == 200 for status, _ in replays)
    envelope = presented.passwords[0]
    header, claims = (json.loads(base64.urlsafe_b64decode(p + "==")) for p in envelope.split(".")[:2])
    assert header == {"alg": "none", "typ": "aws-sigv4-getcalleridentity"}
    assert envelope.endswith(".")
    assert list(claims) == ["aud", "exp", "sts"] and claims["aud"] == registry_token.host
    assert 100 <= claims["exp"] - time.time() <= 120
    sts = claims["sts"]
    assert (sts["method"], sts["url"], sts["body"]) == (
        "POST",
        "https://sts.us-east-1.amazonaws.com/",
        "Action=GetCallerIdentity&Version=2011-06-15",
    )
    assert list(sts["headers"]) == ["Authorization", "Content-Type", "X-Amz-Date", "X-Audience"]
    assert "x-audience" in sts["headers"]["Authorization"][0].split("SignedHeaders=")[1]
    # The audience is signed: the same envelope aimed at another registry is refused by STS.
    sts["headers"]["X-Audience"] = ["other-registry.example"]
    tampered = envelope.split(".")[0] + "." + base64.urlsafe_b64encode(json.dumps(claims).encode()).decode() + "."
    status, body = moto_aws.replay(tampered)
    assert (status, "SignatureDoesNotMatch" in body) == (403, True)


def test_aws_region_comes_from_aws_region(
    tmp_path: Path, registry_token: Registry, token_server: TokenServer, moto_aws: MotoAWS, unique_repo: str
) -> None:
    hosts = [{"host": registry_token.host, "username": "aws", "credential": {"provider": "aws"}}]
    _, presented = mirror(
        tmp_path,
        registry_token,
        registry_token,
        unique_repo,
        hosts,
        moto_aws.environment(region="eu-west-3"),
        lambda _, envelope: moto_aws.replay(envelope)[0] == 200,
    )
    assert decode_envelope(presented.passwords[0])["sts"]["url"] == "https://sts.eu-west-3.amazonaws.com/"


# -- ecr and gar (cloud registry providers, through the cloud names) -------------------------------------


def test_ecr_login_through_the_standard_challenge(
    tmp_path: Path, cloud_registry: CloudRegistry, moto_aws: MotoAWS, unique_repo: str
) -> None:
    hosts = [{"host": cloud_registry.ecr.host, "provider": "ecr"}]
    _, presented = mirror(
        tmp_path,
        cloud_registry.registry,
        cloud_registry.ecr,
        unique_repo,
        hosts,
        {**moto_aws.environment(), **cloud_registry.environment()},
        lambda user, password: (user, password) == ("AWS", moto_aws.ecr_password),
    )
    assert presented.passwords and moto_aws.ecr_token_calls == 1
    assert {r.authority for r in cloud_registry.proxy.requests} == {f"{cloud_registry.ecr.host}:443"}


def test_ecr_credentials_are_fetched_again_past_half_their_lifetime(
    tmp_path: Path, cloud_registry: CloudRegistry, moto_aws: MotoAWS, unique_repo: str
) -> None:
    moto_aws.ecr_expiry = 4
    hosts = [{"host": cloud_registry.ecr.host, "provider": "ecr"}]
    presented = mirror_past_half_life(
        tmp_path,
        cloud_registry.registry,
        cloud_registry.ecr,
        unique_repo,
        hosts,
        {**moto_aws.environment(), **cloud_registry.environment()},
        lambda user, password: user == "AWS" and password in moto_aws.ecr_passwords,
    )
    assert 2 <= moto_aws.ecr_token_calls < len(presented.seen)


def test_ecr_without_credentials_fails_at_start_up_naming_host_and_provider(
    tmp_path: Path, cloud_registry: CloudRegistry, moto_aws: MotoAWS, unique_repo: str
) -> None:
    env = {**moto_aws.environment(), **cloud_registry.environment(), "AWS_SECRET_ACCESS_KEY": "wrong-secret-key"}
    hosts = [{"host": cloud_registry.ecr.host, "provider": "ecr"}]
    run = sync(tmp_path, [entry(cloud_registry.ecr, cloud_registry.ecr, unique_repo)], hosts=hosts, env=env)
    assert (run.code, run.stdout) == (1, "")
    assert run.stderr.startswith(f'✗ get ecr registry credentials for "{cloud_registry.ecr.host}": ')
    assert "SignatureDoesNotMatch" in run.stderr and run.stderr.count("\n") == 1
    assert "wrong-secret-key" not in run.stderr
    assert cloud_registry.proxy.requests == []  # nothing was tried against the registry


def test_gar_login_with_an_adc_access_token(
    tmp_path: Path, cloud_registry: CloudRegistry, gce_metadata: GCEMetadata, unique_repo: str
) -> None:
    hosts = [{"host": cloud_registry.gar.host, "provider": "gar"}]
    _, presented = mirror(
        tmp_path,
        cloud_registry.registry,
        cloud_registry.gar,
        unique_repo,
        hosts,
        {**gce_metadata.environment(), **cloud_registry.environment()},
        lambda user, password: user == "oauth2accesstoken" and gce_metadata.issued_access_token(password),
    )
    assert len(gce_metadata.access_tokens) == 1
    assert set(presented.passwords) == {gce_metadata.access_tokens[0].token}


def test_gar_token_is_refreshed_past_half_its_lifetime(
    tmp_path: Path, cloud_registry: CloudRegistry, gce_metadata: GCEMetadata, unique_repo: str
) -> None:
    gce_metadata.access_expires_in = 4
    hosts = [{"host": cloud_registry.gar.host, "provider": "gar"}]
    presented = mirror_past_half_life(
        tmp_path,
        cloud_registry.registry,
        cloud_registry.gar,
        unique_repo,
        hosts,
        {**gce_metadata.environment(), **cloud_registry.environment()},
        lambda user, password: user == "oauth2accesstoken" and gce_metadata.issued_access_token(password),
    )
    assert 2 <= len(gce_metadata.access_tokens) < len(presented.seen)


def test_a_host_of_the_wrong_shape_is_refused_before_anything_is_minted(
    tmp_path: Path, registry: Registry, gce_metadata: GCEMetadata, unique_repo: str
) -> None:
    hosts = [{"host": "registry.example.com", "provider": "gar"}]
    run = sync(tmp_path, [entry(registry, registry, unique_repo)], hosts=hosts, env=gce_metadata.environment())
    assert (run.code, run.stdout) == (1, "")
    assert run.stderr.startswith(
        "✗ get gar registry credentials for \"registry.example.com\": invalid GAR registry: 'registry.example.com'. "
        "must match "
    )
    assert gce_metadata.requests == []


@pytest.mark.parametrize(
    ("host", "package", "extra"),
    [
        ({"host": "123456789012.dkr.ecr.us-east-1.amazonaws.com", "provider": "ecr"}, "botocore", "aws"),
        ({"host": "us-docker.pkg.dev", "provider": "gar"}, "google", "gcp"),
        ({"host": "mirror.azurecr.io", "provider": "acr"}, "azure", "azure"),
        ({"host": "registry.example.com", "credential": {"provider": "jwt-svid"}}, "spiffe", "spiffe"),
    ],
    ids=["ecr", "gar", "acr", "jwt-svid"],
)
def test_a_missing_sdk_names_its_extra(
    tmp_path: Path, registry: Registry, unique_repo: str, host: dict[str, Any], package: str, extra: str
) -> None:
    """Each SDK is an optional extra: hidden from the child, it is named in one line, with the pip command."""
    shadow = tmp_path / "shadow" / package
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(f"raise ImportError('{package} is hidden from this test')\n")
    env = {"PYTHONPATH": str(shadow.parent)}
    run = sync(tmp_path, [entry(registry, registry, unique_repo)], hosts=[host], env=env)
    assert (run.code, run.stdout) == (1, "")
    assert run.stderr.endswith(f": the {package} package is not installed: pip install 'fluxmirror[{extra}]'\n")
    assert run.stderr.count("\n") == 1 and host["host"] in run.stderr
