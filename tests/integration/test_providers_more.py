"""`sync` on the two provider paths no moto or metadata server covers: ECR Public and `gcp` ID tokens
from workload identity federation, each against its own offline stand-in.

As in test_providers_sync.py, the registry is the real docker-registry behind the test token server,
whose `password_validator` plays the registry's identity check, so each test proves that the very
credential the stand-in issued reached the registry. ECR Public answers in its own shape (one
`authorizationData` object, not a list) through its own endpoint variable; federation runs
google-auth's real STS exchange and the product's IAM Credentials `generateIdToken` call, at the
fixed Google addresses, through a forward proxy.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from harness.ecr_public import REGION, TARGET, ECRPublic
from harness.fixtures_cloud import CloudRegistry
from harness.google_sts import AUDIENCE, EMAIL, GRANT_TYPE, GoogleFederation
from harness.jwtissuer import JwtIssuer
from harness.pki import IAM_CREDENTIALS_NAME, STS_NAME
from harness.provider_runs import claims_of, mirror, mirror_past_half_life
from harness.registry import Registry
from harness.runner import entry, sync
from harness.tokenserver import TokenServer

pytestmark = pytest.mark.registry

# -- ecr: public.ecr.aws --------------------------------------------------------------------------------


def test_ecr_public_login_through_the_standard_challenge(
    tmp_path: Path, cloud_registry: CloudRegistry, ecr_public: ECRPublic, unique_repo: str
) -> None:
    """`public.ecr.aws` takes the ecr-public client in us-east-1 (its own signing scope and endpoint
    variable), and its single `authorizationData` object yields `AWS` and the password."""
    ecr_public.password = "ecr-public-" + secrets.token_hex(16)
    hosts = [{"host": cloud_registry.ecr_public.host, "provider": "ecr"}]
    run, presented = mirror(
        tmp_path,
        cloud_registry.registry,
        cloud_registry.ecr_public,
        unique_repo,
        hosts,
        {**ecr_public.environment(), **cloud_registry.environment()},
        lambda user, password: (user, password) == ("AWS", ecr_public.password),
    )
    assert presented.seen and set(presented.passwords) == {ecr_public.password}
    [call] = ecr_public.calls  # fetched once, at start-up, and kept for the run
    assert (call.status, call.target, call.scope) == (200, TARGET, f"{REGION}/ecr-public")
    assert {r.authority for r in cloud_registry.proxy.requests} == {f"{cloud_registry.ecr_public.host}:443"}
    assert ecr_public.password not in run.stdout + run.stderr


def test_ecr_public_credentials_are_fetched_again_past_half_their_lifetime(
    tmp_path: Path, cloud_registry: CloudRegistry, ecr_public: ECRPublic, unique_repo: str
) -> None:
    """A 4 s password (fetched again after about 2 s) and registry tokens of 1 s: a fresh password
    per call, so the registry must have been shown more than one."""
    ecr_public.expiry = 4
    hosts = [{"host": cloud_registry.ecr_public.host, "provider": "ecr"}]
    presented = mirror_past_half_life(
        tmp_path,
        cloud_registry.registry,
        cloud_registry.ecr_public,
        unique_repo,
        hosts,
        {**ecr_public.environment(), **cloud_registry.environment()},
        lambda user, password: user == "AWS" and password in ecr_public.passwords,
    )
    calls = ecr_public.calls
    assert all(call.status == 200 for call in calls)
    assert 2 <= len(calls) < len(presented.seen)
    assert len(set(presented.passwords)) >= 2, "the password fetched again was never used"


# -- gcp: workload identity federation -------------------------------------------------------------------


def test_gcp_id_token_through_workload_identity_federation(
    tmp_path: Path,
    registry_token: Registry,
    token_server: TokenServer,
    google_federation: GoogleFederation,
    google_issuer: JwtIssuer,
    unique_repo: str,
) -> None:
    """The subject token is exchanged at STS, and the federated token asks IAM Credentials for an ID
    token of the impersonated account for the registry's audience, with its email."""
    credentials = google_federation.write_credentials(tmp_path)
    hosts = [{"host": registry_token.host, "username": "gcp", "credential": {"provider": "gcp"}}]
    run, presented = mirror(
        tmp_path,
        registry_token,
        registry_token,
        unique_repo,
        hosts,
        google_federation.environment(credentials),
        lambda user, password: user == "gcp" and google_issuer.accepts(password, registry_token.host),
    )
    [minted] = google_issuer.minted
    assert set(presented.passwords) == {minted.token}
    assert claims_of(minted.token)["email"] == EMAIL
    [exchange] = google_federation.exchanges
    assert (exchange.host, exchange.status) == (STS_NAME, 200)
    assert exchange.body["grant_type"] == GRANT_TYPE
    assert exchange.body["subject_token"] == google_federation.subject_token
    assert exchange.body["audience"] == AUDIENCE
    [federated] = google_federation.access_tokens
    [asked] = google_federation.id_token_requests
    assert (asked.host, asked.status) == (IAM_CREDENTIALS_NAME, 200)
    assert asked.path == f"/v1/projects/-/serviceAccounts/{EMAIL}:generateIdToken"
    assert asked.authorization == f"Bearer {federated}"
    assert asked.body["audience"] == registry_token.host and asked.body["includeEmail"] is True
    assert len(google_federation.requests) == 2  # nothing else: no metadata server, no generateAccessToken
    assert google_federation.proxy is not None
    assert {r.authority for r in google_federation.proxy.requests} == {
        f"{STS_NAME}:443",
        f"{IAM_CREDENTIALS_NAME}:443",
    }
    for secret in (minted.token, federated, google_federation.subject_token):
        assert secret not in run.stdout + run.stderr


def test_gcp_federated_id_token_is_minted_again_past_half_its_lifetime(
    tmp_path: Path,
    registry_token: Registry,
    token_server: TokenServer,
    google_federation: GoogleFederation,
    google_issuer: JwtIssuer,
    unique_repo: str,
) -> None:
    google_federation.id_lifetime = 4
    credentials = google_federation.write_credentials(tmp_path)
    hosts = [{"host": registry_token.host, "username": "gcp", "credential": {"provider": "gcp"}}]
    presented = mirror_past_half_life(
        tmp_path,
        registry_token,
        registry_token,
        unique_repo,
        hosts,
        google_federation.environment(credentials),
        lambda _, password: google_issuer.accepts(password, registry_token.host),
    )
    assert 2 <= len(google_issuer.minted) < len(presented.seen)
    assert all(r.status == 200 for r in google_federation.requests)


def test_federation_without_impersonation_cannot_mint_an_id_token(
    tmp_path: Path, registry_token: Registry, google_federation: GoogleFederation, unique_repo: str
) -> None:
    """A federation file naming no service account fails in one line before anything is asked of
    Google: STS alone issues access tokens, never ID tokens."""
    credentials = google_federation.write_credentials(tmp_path, impersonate=False)
    hosts = [{"host": registry_token.host, "credential": {"provider": "gcp"}}]
    run = sync(
        tmp_path,
        [entry(registry_token, registry_token, unique_repo)],
        hosts=hosts,
        env=google_federation.environment(credentials),
    )
    assert (run.code, run.stdout) == (1, "")
    assert run.stderr == (
        f'✗ failed to obtain CI JWT for host "{registry_token.host}": workload identity federation credentials '
        "without service account impersonation cannot mint ID tokens\n"
    )
    assert google_federation.requests == []
