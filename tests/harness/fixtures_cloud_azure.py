"""Fixtures for the Azure and SPIFFE identity fakes; registered from tests/conftest.py via ``pytest_plugins``.

The Entra fake and the ACR stand-in run once per session (each is a loop thread and two or three
loopback listeners) and are reset for every test. Azure variables that cannot be neutralised by a
value (`harness.entra.MUST_BE_ABSENT`) are removed from the test process for each test that uses
the Entra fake, since the CLI subprocess inherits the test's environment. A Workload API is cheap
and per test, on a short socket path (a unix socket path is limited to 107 bytes).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.acr import AcrRegistry
from harness.entra import MUST_BE_ABSENT, EntraID
from harness.pki import PKI
from harness.spiffe import FakeWorkloadAPI, SpiffeCA, workload_api

JWT_TRUST_DOMAIN = "mirror.test"
JWT_SPIFFE_ID = f"spiffe://{JWT_TRUST_DOMAIN}/ns/flux-system/sa/flux-mirror"


@pytest.fixture(scope="session")
def _session_entra(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EntraID]:
    with EntraID(pki, tmp_path_factory.mktemp("entra")) as server:
        yield server


@pytest.fixture
def entra(_session_entra: EntraID, monkeypatch: pytest.MonkeyPatch) -> EntraID:
    """The session's Entra fake, reset (knobs, records, a fresh federated token), with the Azure
    variables that only absence neutralises removed from this process for the test."""
    for name in MUST_BE_ABSENT:
        monkeypatch.delenv(name, raising=False)
    _session_entra.reset()
    return _session_entra


@pytest.fixture(scope="session")
def _session_acr(pki: PKI, _session_entra: EntraID, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcrRegistry]:
    with AcrRegistry(pki, _session_entra.issuer, tmp_path_factory.mktemp("acr")) as acr:
        yield acr


@pytest.fixture
def acr_registry(_session_acr: AcrRegistry, entra: EntraID, no_proxy_environment: None) -> AcrRegistry:
    """The session's ACR stand-in (``mirror.azurecr.io`` through its own forward proxy), reset;
    its exchange trusts ``entra``. Content accumulates across tests: keep to ``unique_repo``."""
    _session_acr.reset()
    return _session_acr


@pytest.fixture(scope="session")
def jwt_spiffe_ca() -> SpiffeCA:
    return SpiffeCA(JWT_TRUST_DOMAIN)


@pytest.fixture
def spiffe_workload_api(jwt_spiffe_ca: SpiffeCA) -> Iterator[FakeWorkloadAPI]:
    """A fresh Workload API for ``JWT_SPIFFE_ID`` (X.509- and JWT-SVIDs); ``.environment()`` gives
    ``SPIFFE_ENDPOINT_SOCKET``."""
    directory = tempfile.mkdtemp(prefix="spiffe-", dir="/tmp")
    try:
        with workload_api(Path(directory, "agent.sock"), jwt_spiffe_ca, JWT_SPIFFE_ID) as (api, _):
            yield api
    finally:
        shutil.rmtree(directory, ignore_errors=True)
