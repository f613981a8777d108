"""Cloud identity fakes and a registry under cloud names; registered from tests/conftest.py via ``pytest_plugins``.

The servers live for the session (moto takes a moment to start, and google-auth in the CLI
subprocess only needs an address); the per-test fixtures hand them out with empty records and
default knobs. Every per-test fixture also clears the proxy variables of this process
(``no_proxy_environment``): the integration tests start the CLI from ``os.environ`` plus a fake's
``environment()``, and a developer's own proxy would otherwise carry loopback traffic away.

``cloud_registry`` is one real TLS registry behind the session token server, reached through a
forward proxy under the names the ecr/gar/acr providers accept (``ECR_NAME`` etc., port 443). Those
names resolve to the real clouds, so a request that reached this registry came through the proxy.
The token server's realm stays plain loopback http (``NO_PROXY``), not proxied.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from harness.actions_oidc import ActionsOIDC
from harness.aws import UNSET_VARIABLES, MotoAWS
from harness.ecr_public import ECRPublic
from harness.forwardproxy import ForwardProxy
from harness.gce import ISSUER as GOOGLE_ISSUER
from harness.gce import GCEMetadata
from harness.google_sts import GoogleFederation
from harness.jwtissuer import JwtIssuer
from harness.pki import ACR_NAME, ECR_NAME, ECR_PUBLIC_NAME, GAR_NAME, PKI
from harness.registry import Registry, RegistryFactory
from harness.tokenserver import TokenServer

ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"
HTTPS_PORT = 443
LOOPBACK = "127.0.0.1,localhost"


# -- GitHub/Forgejo Actions OIDC -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def actions_issuer() -> JwtIssuer:
    return JwtIssuer(ACTIONS_ISSUER)


@pytest.fixture(scope="session")
def _session_actions_oidc(actions_issuer: JwtIssuer) -> Iterator[ActionsOIDC]:
    server = ActionsOIDC(actions_issuer)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def actions_oidc(_session_actions_oidc: ActionsOIDC, no_proxy_environment: None) -> Iterator[ActionsOIDC]:
    """The Actions token endpoint with an empty request log, default knobs and an empty mint record."""
    _session_actions_oidc.reset()
    _session_actions_oidc.issuer.reset()
    yield _session_actions_oidc
    _session_actions_oidc.reset()


# -- GCE metadata server ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def google_issuer() -> JwtIssuer:
    return JwtIssuer(GOOGLE_ISSUER)


@pytest.fixture(scope="session")
def _session_gce_metadata(google_issuer: JwtIssuer) -> Iterator[GCEMetadata]:
    server = GCEMetadata(google_issuer)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def gce_metadata(_session_gce_metadata: GCEMetadata, no_proxy_environment: None) -> Iterator[GCEMetadata]:
    """The metadata server with empty records and default knobs."""
    _session_gce_metadata.reset()
    _session_gce_metadata.issuer.reset()
    yield _session_gce_metadata
    _session_gce_metadata.reset()


# -- Google STS and IAM Credentials (workload identity federation) ----------------------------------------


@pytest.fixture(scope="session")
def _session_google_federation(pki: PKI, google_issuer: JwtIssuer) -> Iterator[GoogleFederation]:
    server = GoogleFederation(pki, google_issuer)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def google_federation(
    _session_google_federation: GoogleFederation, no_proxy_environment: None
) -> Iterator[GoogleFederation]:
    """STS and IAM Credentials behind their proxy, with empty records, default knobs, a fresh subject
    token and an empty mint record."""
    _session_google_federation.reset()
    _session_google_federation.issuer.reset()
    yield _session_google_federation
    _session_google_federation.reset()


# -- AWS (moto) -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _session_moto_aws() -> Iterator[MotoAWS]:
    aws = MotoAWS()
    try:
        yield aws
    finally:
        aws.close()


@pytest.fixture
def moto_aws(
    _session_moto_aws: MotoAWS, no_proxy_environment: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MotoAWS]:
    """moto with user ``mirror``, a zero ECR call count and the default ECR expiry.

    AWS_PROFILE cannot be neutralised by value (see ``harness.aws.UNSET_VARIABLES``), so it is
    removed from this process for the test.
    """
    for name in UNSET_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    _session_moto_aws.reset()
    yield _session_moto_aws
    _session_moto_aws.reset()


@pytest.fixture(scope="session")
def _session_ecr_public() -> Iterator[ECRPublic]:
    fake = ECRPublic()
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def ecr_public(
    _session_ecr_public: ECRPublic, no_proxy_environment: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ECRPublic]:
    """ECR Public's GetAuthorizationToken with no calls recorded and default knobs; as for
    ``moto_aws``, ``harness.aws.UNSET_VARIABLES`` are removed from this process for the test."""
    for name in UNSET_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    _session_ecr_public.reset()
    yield _session_ecr_public
    _session_ecr_public.reset()


# -- a registry under cloud names ------------------------------------------------------------------------


@dataclass(frozen=True)
class CloudRegistry:
    """One TLS registry reachable as ``ECR_NAME``, ``GAR_NAME``, ``ACR_NAME`` and ``ECR_PUBLIC_NAME``
    through ``proxy``.

    ``registry`` is the loopback description (push and check content with it directly);
    ``view(name)`` is the same registry under a cloud name, for configs and proxied clients.
    """

    registry: Registry
    proxy: ForwardProxy
    ca_path: str

    @property
    def token_server(self) -> TokenServer:
        assert self.registry.token_server is not None
        return self.registry.token_server

    def view(self, name: str) -> Registry:
        """The registry as ``https://<name>`` (port 443, the default, so no port in refs)."""
        return dataclasses.replace(self.registry, host=name, url=f"https://{name}")

    @property
    def ecr(self) -> Registry:
        return self.view(ECR_NAME)

    @property
    def gar(self) -> Registry:
        return self.view(GAR_NAME)

    @property
    def acr(self) -> Registry:
        return self.view(ACR_NAME)

    @property
    def ecr_public(self) -> Registry:
        return self.view(ECR_PUBLIC_NAME)

    def environment(self) -> dict[str, str]:
        """HTTPS through the proxy, loopback direct, the test CA trusted.

        Both spellings of each proxy variable: Python lets an *empty* lower-case ``https_proxy``
        cancel ``HTTPS_PROXY``, so a lower-case variable left empty would not do.
        """
        return {
            "HTTPS_PROXY": self.proxy.url(),
            "https_proxy": self.proxy.url(),
            "NO_PROXY": LOOPBACK,
            "no_proxy": LOOPBACK,
            "SSL_CERT_FILE": self.ca_path,
            "REQUESTS_CA_BUNDLE": self.ca_path,
        }


@pytest.fixture(scope="session")
def _session_cloud_registry(
    registry_factory: RegistryFactory, _session_token_server: TokenServer, pki: PKI
) -> Iterator[CloudRegistry]:
    registry = registry_factory(tls=True, token_server=_session_token_server)
    port = int(registry.host.rsplit(":", 1)[1])
    with ForwardProxy() as proxy:
        for name in (ECR_NAME, GAR_NAME, ACR_NAME, ECR_PUBLIC_NAME):
            proxy.route(name, HTTPS_PORT, ("127.0.0.1", port))
        yield CloudRegistry(registry, proxy, str(pki.ca_path))


@pytest.fixture
def cloud_registry(
    _session_cloud_registry: CloudRegistry, token_server: TokenServer, no_proxy_environment: None
) -> CloudRegistry:
    """The cloud-named registry with an empty proxy log and a reset token server (``token_server``)."""
    _session_cloud_registry.proxy.clear_requests()
    return _session_cloud_registry
