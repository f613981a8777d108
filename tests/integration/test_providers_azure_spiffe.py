"""`sync` with the azure and jwt-svid token providers, the acr registry provider, and provider tokens
sent as bearer credentials (no `username`), each against its offline stand-in.

azure-identity reaches the Entra fake only through its environment (managed identity over http,
workload identity over https), py-spiffe reaches the fake Workload API through
`SPIFFE_ENDPOINT_SOCKET`, and `mirror.azurecr.io` is the in-memory registry behind a forward proxy,
with ACR's `/oauth2/exchange` and a token endpoint that takes only refresh tokens it issued.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from harness.acr import ACR_USERNAME, AcrRegistry
from harness.actions_oidc import ActionsOIDC
from harness.entra import ACR_AUDIENCE, EntraID, Mode
from harness.jwtissuer import JwtIssuer
from harness.provider_runs import mirror, mirror_past_half_life, push_tags
from harness.registry import Registry
from harness.runner import entry, sync
from harness.spiffe import FakeWorkloadAPI
from harness.tokenserver import TokenServer
from registry.auth import RegistryAuth
from registry.fixtures import OCIRegistryFactory

pytestmark = pytest.mark.registry

EVERY_TAG = {"limit": 0}


# -- azure -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["managed", "workload"])
def test_azure_access_token_for_the_audience(
    tmp_path: Path, registry_token: Registry, token_server: TokenServer, entra: EntraID, unique_repo: str, mode: Mode
) -> None:
    hosts = [{"host": registry_token.host, "username": "azure", "credential": {"provider": "azure"}}]
    _, presented = mirror(
        tmp_path,
        registry_token,
        registry_token,
        unique_repo,
        hosts,
        entra.environment(mode),
        lambda _, password: entra.issuer.accepts(password, registry_token.host),
    )
    [request] = entra.token_requests(mode)
    assert request.resource == registry_token.host  # the scope `<aud>/.default`, as Entra reads it
    assert set(presented.passwords) == {request.token}


def test_azure_token_is_minted_again_past_half_its_lifetime(
    tmp_path: Path, registry_token: Registry, token_server: TokenServer, entra: EntraID, unique_repo: str
) -> None:
    entra.lifetime = 4
    hosts = [{"host": registry_token.host, "username": "azure", "credential": {"provider": "azure"}}]
    presented = mirror_past_half_life(
        tmp_path,
        registry_token,
        registry_token,
        unique_repo,
        hosts,
        entra.environment("managed"),
        lambda _, password: entra.issuer.accepts(password, registry_token.host),
    )
    assert 2 <= len(entra.token_requests("managed")) < len(presented.seen)
    assert len(set(presented.passwords)) >= 2


def test_azure_without_an_identity_fails_in_one_line(
    tmp_path: Path, registry_token: Registry, entra: EntraID, unique_repo: str
) -> None:
    entra.refuse = True
    hosts = [{"host": registry_token.host, "credential": {"provider": "azure"}}]
    run = sync(tmp_path, [entry(registry_token, registry_token, unique_repo)], hosts=hosts, env=entra.environment())
    assert (run.code, run.stdout) == (1, "")
    assert run.stderr.startswith(f'✗ failed to obtain CI JWT for host "{registry_token.host}": ')
    assert run.stderr.count("\n") == 1


# -- acr -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["managed", "workload"])
def test_acr_exchanges_an_entra_token_for_a_refresh_token(
    tmp_path: Path, registry: Registry, acr_registry: AcrRegistry, entra: EntraID, unique_repo: str, mode: Mode
) -> None:
    pushed = push_tags(registry, unique_repo, 2)
    hosts = [{"host": acr_registry.registry.host, "provider": "acr"}]
    run = sync(
        tmp_path,
        [entry(registry, acr_registry.registry, unique_repo, selector=EVERY_TAG)],
        hosts=hosts,
        env={**entra.environment(mode), **acr_registry.environment()},
    )
    assert run.code == 0, run.stdout + run.stderr
    for tag, digest in pushed.items():
        assert acr_registry.server.storage.manifest(unique_repo, tag).digest == digest
    [entra_request] = entra.token_requests(mode)
    assert entra_request.resource == ACR_AUDIENCE  # never the host: ACR's own audience
    [exchange] = acr_registry.exchanges
    assert (exchange.status, exchange.grant_type, exchange.service) == (200, "access_token", acr_registry.registry.host)
    assert exchange.access_token == entra_request.token
    assert acr_registry.logins and all(
        (login.username, login.refresh_token, login.accepted) == (ACR_USERNAME, exchange.refresh_token, True)
        for login in acr_registry.logins
    )


def test_acr_refresh_token_is_exchanged_again_past_half_its_lifetime(
    tmp_path: Path,
    registry: Registry,
    acr_registry: AcrRegistry,
    entra: EntraID,
    unique_repo: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Five repositories, so five token requests (one push scope each), each held for 0.5 s by the
    token endpoint, against refresh tokens of 3 s (exchanged again after at most 1.5 s)."""
    acr_registry.refresh_lifetime = 3
    verify = acr_registry.auth._verify
    assert verify is not None

    def slow_verify(username: str, password: str) -> bool:
        time.sleep(0.5)
        return verify(username, password)

    monkeypatch.setattr(acr_registry.auth, "_verify", slow_verify)
    entries = []
    for number in range(5):
        push_tags(registry, f"{unique_repo}-{number}", 1)
        entries.append(entry(registry, acr_registry.registry, f"{unique_repo}-{number}"))
    run = sync(
        tmp_path,
        entries,
        hosts=[{"host": acr_registry.registry.host, "provider": "acr"}],
        env={
            **entra.environment("managed"),
            **acr_registry.environment(),
        },
    )
    assert run.code == 0, run.stdout + run.stderr
    assert 2 <= len(acr_registry.exchanges) < len(acr_registry.logins)
    assert len({login.refresh_token for login in acr_registry.logins}) >= 2
    assert all(login.accepted for login in acr_registry.logins)


def test_acr_refused_exchange_fails_at_start_up(
    tmp_path: Path, registry: Registry, acr_registry: AcrRegistry, entra: EntraID, unique_repo: str
) -> None:
    acr_registry.refuse_exchange = True
    hosts = [{"host": acr_registry.registry.host, "provider": "acr"}]
    run = sync(
        tmp_path,
        [entry(registry, acr_registry.registry, unique_repo)],
        hosts=hosts,
        env={**entra.environment("managed"), **acr_registry.environment()},
    )
    assert (run.code, run.stdout) == (1, "")
    assert run.stderr.startswith(
        f'✗ get acr registry credentials for "{acr_registry.registry.host}": ACR token exchange failed with status 401: '
    )
    assert run.stderr.count("\n") == 1
    entra_token = entra.token_requests("managed")[0].token
    assert entra_token is not None and entra_token not in run.stderr


# -- jwt-svid --------------------------------------------------------------------------------------------


def test_jwt_svid_for_the_audience(
    tmp_path: Path,
    registry_token: Registry,
    token_server: TokenServer,
    spiffe_workload_api: FakeWorkloadAPI,
    unique_repo: str,
) -> None:
    hosts = [{"host": registry_token.host, "username": "spiffe", "credential": {"provider": "jwt-svid"}}]
    _, presented = mirror(
        tmp_path,
        registry_token,
        registry_token,
        unique_repo,
        hosts,
        spiffe_workload_api.environment(),
        lambda _, password: spiffe_workload_api.jwt_issuer.accepts(password, registry_token.host),
    )
    assert spiffe_workload_api.jwt_requests == [(registry_token.host,)]
    assert set(presented.passwords) == {spiffe_workload_api.jwt_issuer.minted[0].token}


def test_jwt_svid_is_fetched_again_past_half_its_lifetime(
    tmp_path: Path,
    registry_token: Registry,
    token_server: TokenServer,
    spiffe_workload_api: FakeWorkloadAPI,
    unique_repo: str,
) -> None:
    spiffe_workload_api.jwt_lifetime = 4
    hosts = [{"host": registry_token.host, "username": "spiffe", "credential": {"provider": "jwt-svid"}}]
    presented = mirror_past_half_life(
        tmp_path,
        registry_token,
        registry_token,
        unique_repo,
        hosts,
        spiffe_workload_api.environment(),
        lambda _, password: spiffe_workload_api.jwt_issuer.accepts(password, registry_token.host),
    )
    assert 2 <= len(spiffe_workload_api.jwt_requests) < len(presented.seen)


def test_jwt_svid_without_a_workload_api_fails_in_one_line(
    tmp_path: Path, registry_token: Registry, unique_repo: str
) -> None:
    hosts = [{"host": registry_token.host, "credential": {"provider": "jwt-svid"}}]
    env = {"SPIFFE_ENDPOINT_SOCKET": f"unix://{tmp_path}/absent.sock"}
    run = sync(tmp_path, [entry(registry_token, registry_token, unique_repo)], hosts=hosts, env=env)
    assert (run.code, run.stdout) == (1, "")
    assert run.stderr.startswith(
        f'✗ failed to obtain CI JWT for host "{registry_token.host}": create SPIFFE JWT source: '
    )
    assert run.stderr.count("\n") == 1


# -- without username: the token is a bearer credential on every request --------------------------------


def test_bearer_provider_token_goes_on_every_request_without_a_challenge(
    tmp_path: Path,
    registry: Registry,
    oci_registry_factory: OCIRegistryFactory,
    actions_oidc: ActionsOIDC,
    actions_issuer: JwtIssuer,
    unique_repo: str,
) -> None:
    pushed = push_tags(registry, unique_repo, 2)
    oidc_registry = oci_registry_factory(auth=RegistryAuth.bearer(lambda token: actions_issuer.accepts(token, host)))
    host = oidc_registry.host
    run = sync(
        tmp_path,
        [entry(registry, oidc_registry.registry, unique_repo, selector=EVERY_TAG)],
        hosts=[{"host": host, "credential": {"provider": "github"}}],
        env=actions_oidc.environment(),
    )
    assert run.code == 0, run.stdout + run.stderr
    for tag, digest in pushed.items():
        assert oidc_registry.storage.manifest(unique_repo, tag).digest == digest
    [token] = actions_oidc.tokens
    presented = oidc_registry.auth.presented if oidc_registry.auth else []
    assert presented and set(presented) == {token}  # the ping included: never a request without it
    assert not [request for request in oidc_registry.requests if request.target.startswith("/token")]


def test_bearer_jwt_svid_goes_on_every_request(
    tmp_path: Path,
    registry: Registry,
    oci_registry_factory: OCIRegistryFactory,
    spiffe_workload_api: FakeWorkloadAPI,
    unique_repo: str,
) -> None:
    pushed = push_tags(registry, unique_repo, 1)
    issuer = spiffe_workload_api.jwt_issuer
    svid_registry = oci_registry_factory(auth=RegistryAuth.bearer(lambda token: issuer.accepts(token, host)))
    host = svid_registry.host
    run = sync(
        tmp_path,
        [entry(registry, svid_registry.registry, unique_repo)],
        hosts=[{"host": host, "credential": {"provider": "jwt-svid"}}],
        env=spiffe_workload_api.environment(),
    )
    assert run.code == 0, run.stdout + run.stderr
    assert svid_registry.storage.manifest(unique_repo, "1.0.0").digest == pushed["1.0.0"]
    assert set(svid_registry.auth.presented if svid_registry.auth else []) == {issuer.minted[0].token}
