"""The Azure and SPIFFE identity fakes work with the real client libraries.

The product reaches these fakes only through its environment, so each check here uses the library
the product uses the way the product will: azure-identity in a subprocess given only
``EntraID.environment()``, py-spiffe against the fake Workload API, and aiohttp for the ACR
exchange and token flow through the forward proxy with only the test CA trusted.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import jwt
import pytest
from harness.acr import ACR_USERNAME, AcrRegistry
from harness.entra import ACR_AUDIENCE, EntraID, Mode
from harness.fixtures_cloud_azure import JWT_SPIFFE_ID
from harness.jwtissuer import JwtIssuer
from harness.pki import PKI
from harness.spiffe import FakeWorkloadAPI
from registry.auth import RegistryAuth
from registry.fixtures import OCIRegistryFactory
from spiffe import JwtSvid, TrustDomain, WorkloadApiClient
from spiffe._proto import workload_pb2, workload_pb2_grpc

SCOPE = ACR_AUDIENCE + "/.default"

# What the product will run: DefaultAzureCredential without developer credentials, or the chain Go's
# ACR provider uses (Environment, then WorkloadIdentity only when fully configured, then
# ManagedIdentity with AZURE_CLIENT_ID), each asked once for `scope`; prints the token as JSON.
_CHILD = r"""
import json, os, sys
from azure.identity import (ChainedTokenCredential, DefaultAzureCredential, EnvironmentCredential,
                            ManagedIdentityCredential, WorkloadIdentityCredential)
chain, scope = sys.argv[1], sys.argv[2]
if chain == "default":
    credential = DefaultAzureCredential(
        exclude_cli_credential=True, exclude_developer_cli_credential=True,
        exclude_shared_token_cache_credential=True, exclude_visual_studio_code_credential=True,
        exclude_powershell_credential=True, exclude_broker_credential=True)
else:
    workload = ("AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST", "AZURE_TENANT_ID")
    credential = ChainedTokenCredential(
        EnvironmentCredential(),
        *([WorkloadIdentityCredential()] if all(os.environ.get(v) for v in workload) else []),
        ManagedIdentityCredential(client_id=os.environ.get("AZURE_CLIENT_ID") or None))
token = credential.get_token(scope)
print(json.dumps({"token": token.token, "expires_on": token.expires_on}))
"""


def azure_token(
    entra: EntraID, mode: Mode, chain: str = "default", scope: str = SCOPE
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _CHILD, chain, scope],
        env={**os.environ, **entra.environment(mode)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("chain", ["default", "go-acr"])
@pytest.mark.parametrize("mode", ["managed", "workload"])
def test_azure_identity_gets_the_minted_token(entra: EntraID, mode: Mode, chain: str) -> None:
    done = azure_token(entra, mode, chain)
    assert done.returncode == 0, done.stderr
    token = json.loads(done.stdout)["token"]
    assert entra.issued == [token]
    assert entra.issuer.verify(token, ACR_AUDIENCE)["appid"] == entra.client_id
    (request,) = entra.requests  # no probe, no retry, no discovery
    assert (request.mode, request.resource, request.status) == (mode, ACR_AUDIENCE, 200)
    if mode == "workload":
        assert request.assertion == entra.federated_token
        assert request.client_id == entra.client_id


def test_the_token_lifetime_is_a_knob(entra: EntraID) -> None:
    entra.lifetime = 900
    done = azure_token(entra, "workload")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    claims = entra.claims(answer["token"])
    assert isinstance(claims["exp"], int)
    assert claims["exp"] - time.time() == pytest.approx(900, abs=5)
    assert answer["expires_on"] == pytest.approx(time.time() + 900, abs=5)


@pytest.mark.parametrize("mode", ["managed", "workload"])
def test_a_refusing_entra_fails_the_credential_at_once(entra: EntraID, mode: Mode) -> None:
    entra.refuse = True
    done = azure_token(entra, mode)
    assert done.returncode != 0
    assert "ClientAuthenticationError" in done.stderr or "CredentialUnavailableError" in done.stderr
    assert [r.status for r in entra.token_requests(mode)] in ([400], [401])
    assert entra.issued == []


def test_workload_mode_pins_imds_to_a_vm_without_identity(entra: EntraID) -> None:
    """A managed-identity credential in workload mode meets "no identity", never a real IMDS."""
    environment = entra.environment("workload")
    del environment["AZURE_FEDERATED_TOKEN_FILE"]  # workload identity incomplete: IMDS is next
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, "go-acr", SCOPE],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "Identity not found" in done.stderr
    assert [(r.mode, r.status) for r in entra.requests] == [("managed", 400)]


# --- ACR ----------------------------------------------------------------------------------------------


def _client(acr: AcrRegistry) -> aiohttp.ClientSession:
    """A session that reaches the ACR as a proxied client does: through the proxy, trusting only the test CA."""
    context = ssl.create_default_context(cafile=str(acr.pki.ca_path))
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context), trust_env=False)


def _challenge(header: str) -> dict[str, str]:
    scheme, _, params = header.partition(" ")
    assert scheme == "Bearer"
    return dict(part.split("=", 1) for part in params.replace('"', "").split(","))


async def _exchange(
    session: aiohttp.ClientSession, acr: AcrRegistry, aad_token: str, service: str | None = None
) -> aiohttp.ClientResponse:
    async with session.post(
        f"https://{acr.name}/oauth2/exchange",
        params={"api-version": "2021-07-01"},
        data={"grant_type": "access_token", "service": service or acr.name, "access_token": aad_token},
        proxy=acr.proxy.url(),
    ) as response:
        await response.read()
        return response


async def test_acr_exchange_and_token_flow_through_the_proxy(acr_registry: AcrRegistry, entra: EntraID) -> None:
    acr = acr_registry
    done = azure_token(entra, "workload")
    assert done.returncode == 0, done.stderr
    aad_token = json.loads(done.stdout)["token"]
    proxy = acr.proxy.url()
    async with _client(acr) as session:
        response = await _exchange(session, acr, aad_token)
        assert response.status == 200
        refresh_token = (await response.json())["refresh_token"]
        assert jwt.decode(refresh_token, options={"verify_signature": False})["exp"] - time.time() == pytest.approx(
            3 * 3600, abs=5
        )

        async with session.get(f"https://{acr.name}/v2/", proxy=proxy) as response:
            assert response.status == 401
            challenge = _challenge(response.headers["WWW-Authenticate"])
        assert challenge == {"realm": f"https://{acr.name}/oauth2/token", "service": acr.name}

        basic = base64.b64encode(f"{ACR_USERNAME}:{refresh_token}".encode()).decode()
        query = {"service": acr.name, "scope": "repository:t/acr-flow:pull"}
        async with session.get(
            challenge["realm"], params=query, headers={"Authorization": f"Basic {basic}"}, proxy=proxy
        ) as response:
            assert response.status == 200
            registry_token = (await response.json())["token"]

        bearer = {"Authorization": f"Bearer {registry_token}"}
        async with session.get(f"https://{acr.name}/v2/", headers=bearer, proxy=proxy) as response:
            assert response.status == 200
        async with session.get(f"https://{acr.name}/v2/t/acr-flow/tags/list", headers=bearer, proxy=proxy) as response:
            assert response.status == 404  # authorized: the repository simply does not exist

    (exchange,) = acr.exchanges
    assert (exchange.api_version, exchange.grant_type, exchange.service) == ("2021-07-01", "access_token", acr.name)
    assert exchange.access_token == aad_token
    assert exchange.refresh_token == refresh_token
    assert [(login.username, login.refresh_token, login.accepted) for login in acr.logins] == [
        (ACR_USERNAME, refresh_token, True)
    ]
    assert [grant.scopes for grant in acr.auth.grants] == [("repository:t/acr-flow:pull",)]
    assert {(r.method, r.authority) for r in acr.proxy.requests} == {("CONNECT", f"{acr.name}:443")}


@pytest.mark.parametrize(
    ("token", "service", "status"),
    [
        (lambda e: e.issuer.mint(subject="x", audience="https://management.azure.com", lifetime=60), None, 401),
        (lambda e: JwtIssuer(e.issuer.issuer).mint(subject="x", audience=ACR_AUDIENCE, lifetime=60), None, 401),
        (lambda e: e.issuer.mint(subject="x", audience=ACR_AUDIENCE, lifetime=-5), None, 401),
        (lambda e: e.issuer.mint(subject="x", audience=ACR_AUDIENCE, lifetime=60), "other.azurecr.io", 400),
    ],
    ids=["wrong-audience", "foreign-issuer", "expired", "wrong-service"],
)
async def test_acr_exchange_refuses(
    acr_registry: AcrRegistry, entra: EntraID, token: Callable[[EntraID], str], service: str | None, status: int
) -> None:
    async with _client(acr_registry) as session:
        response = await _exchange(session, acr_registry, token(entra), service)
        body: dict[str, Any] = json.loads(await response.text())
    assert response.status == status
    assert body["errors"][0]["code"] in ("UNAUTHORIZED", "DENIED")
    assert [e.refresh_token for e in acr_registry.exchanges] == [None]


@pytest.mark.parametrize("case", ["not-from-this-acr", "expired", "wrong-username"])
async def test_acr_token_endpoint_refuses(acr_registry: AcrRegistry, entra: EntraID, case: str) -> None:
    acr = acr_registry
    username = ACR_USERNAME
    async with _client(acr) as session:
        if case == "not-from-this-acr":
            refresh_token = entra.issuer.mint(subject="x", audience=acr.name, lifetime=60)
        else:
            acr.refresh_lifetime = -5 if case == "expired" else 60
            response = await _exchange(session, acr, entra.issuer.mint(subject="x", audience=ACR_AUDIENCE, lifetime=60))
            refresh_token = (await response.json())["refresh_token"]
            username = "someone" if case == "wrong-username" else username
        basic = base64.b64encode(f"{username}:{refresh_token}".encode()).decode()
        async with session.get(
            f"https://{acr.name}/oauth2/token",
            params={"service": acr.name, "scope": "repository:t/x:pull"},
            headers={"Authorization": f"Basic {basic}"},
            proxy=acr.proxy.url(),
        ) as response:
            assert response.status == 401
    assert [(login.refresh_token, login.accepted) for login in acr.logins] == [(refresh_token, False)]
    assert acr.auth.grants == []


def test_acr_environment(acr_registry: AcrRegistry, pki: PKI) -> None:
    environment = acr_registry.environment()
    assert environment["HTTPS_PROXY"] == environment["https_proxy"] == acr_registry.proxy.url()
    assert environment["NO_PROXY"] == "127.0.0.1,localhost"
    assert environment["HTTP_PROXY"] == ""
    assert environment["SSL_CERT_FILE"] == environment["REQUESTS_CA_BUNDLE"] == str(pki.ca_path)
    assert acr_registry.registry.host == "mirror.azurecr.io"


# --- a registry validating bearer tokens itself -------------------------------------------------------


async def test_bearer_registry_accepts_only_valid_tokens(
    oci_registry_factory: OCIRegistryFactory, entra: EntraID
) -> None:
    audience = "https://registry.example"
    auth = RegistryAuth.bearer(lambda token: entra.issuer.accepts(token, audience))
    server = oci_registry_factory(auth=auth)
    good = entra.issuer.mint(subject="x", audience=audience, lifetime=60)
    wrong = entra.issuer.mint(subject="x", audience="https://elsewhere", lifetime=60)
    statuses = []
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {"Authorization": f"Bearer {wrong}"}, {"Authorization": f"Basic {good}"}):
            async with session.get(f"{server.url}/v2/", headers=headers) as response:
                statuses.append(response.status)
                assert response.headers["WWW-Authenticate"].startswith('Bearer realm="')
        for path in ("/v2/", "/v2/t/bearer/tags/list"):
            async with session.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {good}"}) as response:
                statuses.append(response.status)
        async with session.get(f"{server.url}/token") as response:
            statuses.append(response.status)  # no token endpoint
    assert statuses == [401, 401, 401, 200, 404, 404]
    assert auth.presented == [None, wrong, None, good, good]
    assert auth.grants == []


# --- JWT-SVIDs ----------------------------------------------------------------------------------------


def test_py_spiffe_fetches_a_jwt_svid(spiffe_workload_api: FakeWorkloadAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    api = spiffe_workload_api
    for name, value in api.environment().items():
        monkeypatch.setenv(name, value)
    api.jwt_lifetime = 120
    with WorkloadApiClient(default_timeout=10) as client:  # the socket from SPIFFE_ENDPOINT_SOCKET
        svid = client.fetch_jwt_svid(audience={"registry.test", "other"})
        bundles = client.fetch_jwt_bundles()
    assert str(svid.spiffe_id) == JWT_SPIFFE_ID
    assert [m.token for m in api.jwt_issuer.minted] == [svid.token]
    assert api.jwt_requests == [("other", "registry.test")]
    claims = api.jwt_issuer.verify(svid.token, "registry.test")
    assert sorted(claims["aud"]) == ["other", "registry.test"]
    assert claims["exp"] - time.time() == pytest.approx(120, abs=5)
    bundle = bundles.get_bundle_for_trust_domain(TrustDomain(api.ca.trust_domain))
    assert bundle is not None
    assert JwtSvid.parse_and_validate(svid.token, bundle, {"registry.test"}).spiffe_id == svid.spiffe_id


def test_jwt_svid_needs_the_security_header(spiffe_workload_api: FakeWorkloadAPI) -> None:
    assert spiffe_workload_api.endpoint is not None
    with grpc.insecure_channel(spiffe_workload_api.endpoint.replace("unix://", "unix:")) as channel:
        stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.FetchJWTSVID(workload_pb2.JWTSVIDRequest(audience=["registry.test"]), timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert spiffe_workload_api.jwt_requests == []


async def test_a_jwt_svid_reaches_a_bearer_registry(
    spiffe_workload_api: FakeWorkloadAPI, oci_registry_factory: OCIRegistryFactory
) -> None:
    api = spiffe_workload_api
    server = oci_registry_factory(auth=RegistryAuth.bearer(lambda t: api.jwt_issuer.accepts(t, "registry.test")))
    with WorkloadApiClient(api.endpoint, default_timeout=10) as client:
        token = client.fetch_jwt_svid(audience={"registry.test"}).token
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session,
        session.get(f"{server.url}/v2/") as response,
    ):
        assert response.status == 200
    assert server.auth is not None
    assert server.auth.presented == [token]


def test_the_federated_token_file_holds_the_expected_assertion(entra: EntraID) -> None:
    assert Path(entra.environment("workload")["AZURE_FEDERATED_TOKEN_FILE"]).read_text() == entra.federated_token


# What the product's acr provider will do, natively async, knowing nothing but its environment.
_ASYNC_CHILD = r"""
import asyncio, sys, aiohttp
from azure.identity.aio import DefaultAzureCredential

async def main(host):
    async with DefaultAzureCredential(
        exclude_cli_credential=True, exclude_developer_cli_credential=True,
        exclude_shared_token_cache_credential=True, exclude_visual_studio_code_credential=True,
        exclude_powershell_credential=True, exclude_broker_credential=True) as credential:
        aad_token = (await credential.get_token("https://containerregistry.azure.net/.default")).token
    async with aiohttp.ClientSession(trust_env=True) as session:
        async with session.post(f"https://{host}/oauth2/exchange", params={"api-version": "2021-07-01"},
                                data={"grant_type": "access_token", "service": host, "access_token": aad_token}) as r:
            r.raise_for_status()
            print((await r.json())["refresh_token"])

asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.parametrize("mode", ["managed", "workload"])
def test_the_environments_alone_carry_an_async_client_through_the_exchange(
    acr_registry: AcrRegistry, entra: EntraID, mode: Mode
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _ASYNC_CHILD, acr_registry.name],
        env={**os.environ, **entra.environment(mode), **acr_registry.environment()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert [(r.mode, r.status) for r in entra.requests] == [(mode, 200)]
    (exchange,) = acr_registry.exchanges
    assert exchange.access_token == entra.issued[0]
    assert exchange.refresh_token == done.stdout.strip()
    assert [(r.method, r.authority) for r in acr_registry.proxy.requests] == [("CONNECT", "mirror.azurecr.io:443")]
