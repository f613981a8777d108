"""Session-wide real-registry fixtures; the machinery lives in tests/harness.

Registries start lazily on first use and share one session, so tests must keep to their own
repositories (``unique_repo``) and reset shared token-server state (``token_server``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import TEST_USER
from harness.pki import PKI, create_pki
from harness.registry import Registry, RegistryFactory, unique_repo_name
from harness.tokenserver import TokenServer

pytest_plugins = [
    "harness.fixtures_faults",
    "harness.fixtures_kube",
    "registry.fixtures",
    "harness.fixtures_charts",
    "harness.fixtures_proxy",
    "harness.fixtures_hostile",
    "harness.fixtures_cloud",
    "harness.fixtures_cloud_azure",
    "harness.fixtures_sigstore",
    "harness.fixtures_tuf",
]


@pytest.fixture(scope="session", autouse=True)
def _empty_docker_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Credentials on the developer's machine (Docker's or Helm's) must never leak into a test."""
    config_dir = tmp_path_factory.mktemp("docker-config")
    (config_dir / "config.json").write_text("{}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_CONFIG", str(config_dir))
        patch.setenv("HELM_REPOSITORY_CONFIG", str(config_dir / "helm-repositories-absent.yaml"))
        yield config_dir


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return create_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def registry_factory(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[RegistryFactory]:
    factory = RegistryFactory(tmp_path_factory.mktemp("registries"), pki)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="session")
def _session_token_server(pki: PKI) -> Iterator[TokenServer]:
    server = TokenServer(pki, TEST_USER)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def token_server(_session_token_server: TokenServer) -> Iterator[TokenServer]:
    """The shared token server with a clean request log and default behaviour for this test."""
    _session_token_server.reset()
    yield _session_token_server
    _session_token_server.reset()


@pytest.fixture(scope="session")
def registry(registry_factory: RegistryFactory) -> Registry:
    return registry_factory()


@pytest.fixture(scope="session")
def registry_htpasswd(registry_factory: RegistryFactory) -> Registry:
    return registry_factory(htpasswd=TEST_USER)


@pytest.fixture(scope="session")
def registry_token(registry_factory: RegistryFactory, _session_token_server: TokenServer) -> Registry:
    return registry_factory(token_server=_session_token_server)


@pytest.fixture(scope="session")
def registry_tls(registry_factory: RegistryFactory) -> Registry:
    return registry_factory(tls=True)


@pytest.fixture(scope="session")
def registry_mtls(registry_factory: RegistryFactory) -> Registry:
    return registry_factory(require_client_cert=True)


@pytest.fixture
def unique_repo(request: pytest.FixtureRequest) -> str:
    return unique_repo_name(request.node.name)
