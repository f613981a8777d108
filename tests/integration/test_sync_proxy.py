"""`fluxmirror sync` honours HTTP_PROXY/HTTPS_PROXY/NO_PROXY as Go's http.ProxyFromEnvironment does.

The rules (golang.org/x/net/http/httpproxy): an https URL uses HTTPS_PROXY, an http URL uses
HTTP_PROXY; the upper-case name wins over the lower-case one, and an empty value counts as unset;
a proxy value without a scheme means ``http://``; NO_PROXY is a comma list of ``*``, hosts
(matching their subdomains too), ``.domains``, ``host:port`` and IPs/CIDRs, compared
case-insensitively; ``localhost`` and loopback IPs are never proxied.

Registries and chart repositories here sit on loopback, but the ones under test are named
``registry.test``/``charts.test`` (harness/forwardproxy.py): those names resolve nowhere, so the
product reaches them through the proxy or not at all, while the loopback source must not go
through it. Every test clears the proxy variables of this process first (``no_proxy_environment``)
and sets exactly the ones it is about.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from harness import TEST_USER, Credentials, images, skopeo
from harness.chartrepo import ChartRepository, ChartRepositoryFactory
from harness.fixtures_charts import WriteRepositories
from harness.forwardproxy import ForwardProxy, ProxiedRequest, proxy_environment
from harness.pki import CHARTS_NAME, PKI
from harness.registry import Registry, RegistryFactory
from harness.runner import Run, entry, sync
from harness.tokenserver import TokenServer

pytestmark = [pytest.mark.registry, pytest.mark.usefixtures("no_proxy_environment")]

PROXY_USER = Credentials("egress-user", "Eg7ess p@ss:w/rd")
"""A proxy password that has to be percent-encoded in the URL (and is decoded by the client)."""
CHART_USER = Credentials("chartuser", "chart-secret-pw")


@pytest.fixture(scope="module")
def registry_tls_htpasswd(registry_factory: RegistryFactory) -> Registry:
    return registry_factory(tls=True, htpasswd=TEST_USER)


def trusting(pki: PKI, **variables: str) -> dict[str, str]:
    """The environment for a run: ``variables`` plus the test CA as the system trust store.

    SSL_CERT_FILE is OpenSSL's (and Go's, on Linux) override of the system roots, so ``registry.test``
    is verified like any public registry, with no ``--insecure`` and no per-host configuration.
    """
    return {"SSL_CERT_FILE": str(pki.ca_path), **variables}


def explain(run: Run) -> str:
    """What the run printed, for assertion messages: today's failures should read "Name or service not known"."""
    return f"exit {run.code}\nstdout: {run.stdout}\nstderr: {run.stderr}"


def statuses(run: Run) -> list[str]:
    """Per result: its rows' statuses, or the entry's own status when it failed before having rows."""
    return [
        ",".join(row["status"] for row in result["tags"]) or result["status"]
        for result in run.report["report"]["results"]
    ]


def tunnels(proxy: ForwardProxy) -> set[tuple[str, str, int]]:
    return {(r.method, r.authority, r.status) for r in proxy.requests}


def mirror_one(
    tmp_path: Path, source: Registry, destination: Registry, repo: str, *flags: str, **kwargs: Any
) -> tuple[Run, str]:
    """Push a fresh artifact to ``source/repo`` (directly) and sync it to ``destination/repo-m``."""
    artifact = images.make_artifact(seed=sum(map(ord, repo)))
    images.push(source, repo, "1.0.0", artifact, auth=source.credentials)
    return sync(tmp_path, [entry(source, destination, repo, f"{repo}-m")], *flags, **kwargs), artifact.digest


def chart_entry(repository: ChartRepository, destination: Registry, prefix: str) -> dict[str, Any]:
    return {"name": "demo", "source": repository.url, "destination": f"oci://{destination.host}/{prefix}"}


# -- https registries: HTTPS_PROXY and CONNECT --------------------------------------------------------


@pytest.mark.parametrize("source_name", ["127.0.0.1", "localhost"])
def test_artifact_reaches_a_tls_registry_through_https_proxy(
    tmp_path: Path,
    forward_proxy: ForwardProxy,
    registry: Registry,
    registry_tls: Registry,
    pki: PKI,
    unique_repo: str,
    source_name: str,
) -> None:
    """The loopback source (by IP or as ``localhost``) is read directly; only the destination is proxied."""
    source = dataclasses.replace(registry, host=registry.host.replace("127.0.0.1", source_name))
    destination = forward_proxy.expose(registry_tls)

    run, digest = mirror_one(
        tmp_path, source, destination, unique_repo, env=trusting(pki, HTTPS_PROXY=forward_proxy.url())
    )

    assert (run.code, statuses(run)) == (0, ["copied"]), explain(run)
    assert tunnels(forward_proxy) == {("CONNECT", destination.host, 200)}  # nothing for the source
    assert run.rows()[0]["digest"] == digest
    assert images.get_manifest(registry_tls, f"{unique_repo}-m", "1.0.0").digest == digest  # directly, on loopback
    through_proxy = skopeo.inspect_raw(
        destination.docker_ref(f"{unique_repo}-m", "1.0.0"),
        tls_verify=True,
        cert_dir=registry_tls.cert_dir,
        env=proxy_environment(HTTPS_PROXY=forward_proxy.url()),
    )
    assert images.sha256_digest(through_proxy) == digest


def test_proxy_without_a_scheme_means_http(
    tmp_path: Path, forward_proxy: ForwardProxy, registry: Registry, registry_tls: Registry, pki: PKI, unique_repo: str
) -> None:
    """``HTTPS_PROXY=host:port``, as many corporate setups write it: Go reads it as ``http://host:port``."""
    destination = forward_proxy.expose(registry_tls)
    run, _ = mirror_one(tmp_path, registry, destination, unique_repo, env=trusting(pki, HTTPS_PROXY=forward_proxy.host))
    assert (run.code, statuses(run)) == (0, ["copied"]), explain(run)
    assert tunnels(forward_proxy) == {("CONNECT", destination.host, 200)}


@pytest.mark.parametrize(
    "variables",
    [
        pytest.param({"https_proxy": "{proxy}"}, id="lower-case"),
        pytest.param({"HTTPS_PROXY": "{proxy}", "https_proxy": "http://127.0.0.1:9"}, id="upper-case-wins"),
        pytest.param({"HTTPS_PROXY": "", "https_proxy": "{proxy}"}, id="empty-upper-case-is-unset"),
    ],
)
def test_lower_case_https_proxy(
    tmp_path: Path,
    forward_proxy: ForwardProxy,
    registry: Registry,
    registry_tls: Registry,
    pki: PKI,
    unique_repo: str,
    variables: dict[str, str],
) -> None:
    """Go reads ``HTTPS_PROXY`` then ``https_proxy``, taking the first that is not empty.

    (Python's urllib prefers the lower-case name; port 9 is the discard port, where nothing listens.)
    """
    destination = forward_proxy.expose(registry_tls)
    env = {name: value.format(proxy=forward_proxy.url()) for name, value in variables.items()}
    run, _ = mirror_one(tmp_path, registry, destination, unique_repo, env=trusting(pki, **env))
    assert (run.code, statuses(run)) == (0, ["copied"]), explain(run)
    assert tunnels(forward_proxy) == {("CONNECT", destination.host, 200)}


# -- plain-http chart repositories: HTTP_PROXY and absolute-URI requests -----------------------------


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy"])
def test_chart_from_a_plain_http_repository_through_http_proxy(
    tmp_path: Path,
    forward_proxy: ForwardProxy,
    chart_repo_factory: ChartRepositoryFactory,
    registry: Registry,
    unique_repo: str,
    variable: str,
) -> None:
    repository = chart_repo_factory(hostname=CHARTS_NAME)
    authority = forward_proxy.route(CHARTS_NAME, repository.port)
    hosted = repository.add("demo", "1.0.0")

    run = sync(
        tmp_path, [], charts=[chart_entry(repository, registry, unique_repo)], env={variable: forward_proxy.url()}
    )

    assert (run.code, statuses(run)) == (0, ["copied"]), explain(run)
    assert run.rows()[0]["digest"] == hosted.digest
    assert images.get_blob(registry, f"{unique_repo}/demo", hosted.digest) == hosted.data  # published to loopback
    requests = forward_proxy.requests
    assert {(r.method, r.authority, r.connect, r.path, r.status) for r in requests} == {
        ("GET", authority, False, "/index.yaml", 200),
        ("GET", authority, False, "/demo-1.0.0.tgz", 200),
    }
    assert [r.path for r in repository.requests] == [r.path for r in requests]  # all came through the proxy


def test_chart_repository_credentials_travel_with_the_proxied_request(
    tmp_path: Path,
    forward_proxy: ForwardProxy,
    chart_repo_factory: ChartRepositoryFactory,
    helm_repositories_yaml: WriteRepositories,
    registry: Registry,
    unique_repo: str,
) -> None:
    """Plain http through a proxy: the proxy sees the whole request, Authorization included.

    That is how HTTP proxying works (Go does the same); the proxy records it, nothing is asserted
    about it here beyond the repository getting its credentials.
    """
    repository = chart_repo_factory(hostname=CHARTS_NAME, credentials=CHART_USER)
    forward_proxy.route(CHARTS_NAME, repository.port)
    repository.add("demo", "1.0.0")
    config = helm_repositories_yaml(repository.repositories_entry())

    run = sync(
        tmp_path,
        [],
        charts=[chart_entry(repository, registry, unique_repo)],
        env={"HTTP_PROXY": forward_proxy.url(), "HELM_REPOSITORY_CONFIG": str(config)},
    )

    assert (run.code, statuses(run)) == (0, ["copied"]), explain(run)
    assert {r.authorization for r in repository.requests if r.status == 200} == {CHART_USER.basic_header()}
    assert {r.connect for r in forward_proxy.requests} == {False}
    assert CHART_USER.password not in run.stdout + run.stderr


def test_chart_from_an_https_repository_through_https_proxy(
    tmp_path: Path,
    forward_proxy: ForwardProxy,
    chart_repo_factory: ChartRepositoryFactory,
    helm_repositories_yaml: WriteRepositories,
    registry: Registry,
    unique_repo: str,
) -> None:
    """The repository's ``caFile`` from repositories.yaml still verifies ``charts.test`` inside the tunnel."""
    repository = chart_repo_factory(hostname=CHARTS_NAME, tls=True)
    authority = forward_proxy.route(CHARTS_NAME, repository.port)
    hosted = repository.add("demo", "2.0.0")
    config = helm_repositories_yaml(repository.repositories_entry())

    run = sync(
        tmp_path,
        [],
        charts=[chart_entry(repository, registry, unique_repo)],
        env={"HTTPS_PROXY": forward_proxy.url(), "HELM_REPOSITORY_CONFIG": str(config)},
    )

    assert (run.code, statuses(run)) == (0, ["copied"]), explain(run)
    assert run.rows()[0]["digest"] == hosted.digest
    assert tunnels(forward_proxy) == {("CONNECT", authority, 200)}
    assert {r.path for r in repository.requests} == {"/index.yaml", "/demo-2.0.0.tgz"}


def test_each_scheme_uses_its_own_variable(
    tmp_path: Path,
    forward_proxy: ForwardProxy,
    chart_repo_factory: ChartRepositoryFactory,
    registry: Registry,
    registry_tls: Registry,
    pki: PKI,
    unique_repo: str,
) -> None:
    """HTTPS_PROXY alone leaves http direct, HTTP_PROXY alone leaves https direct (and both fail to resolve)."""
    destination = forward_proxy.expose(registry_tls)
    repository = chart_repo_factory(hostname=CHARTS_NAME)
    forward_proxy.route(CHARTS_NAME, repository.port)
    repository.add("demo", "1.0.0")
    images.push(registry, unique_repo, "1.0.0", images.make_artifact(seed=71))
    artifacts = [entry(registry, destination, unique_repo, f"{unique_repo}-m")]
    charts = [chart_entry(repository, registry, unique_repo)]

    https_only = sync(
        tmp_path, artifacts, "--retries", "0", charts=charts, env=trusting(pki, HTTPS_PROXY=forward_proxy.url())
    )
    assert (https_only.code, statuses(https_only)) == (1, ["copied", "failed"]), explain(https_only)
    assert {r.connect for r in forward_proxy.requests} == {True}

    forward_proxy.clear_requests()
    http_only = sync(
        tmp_path, artifacts, "--retries", "0", charts=charts, env=trusting(pki, HTTP_PROXY=forward_proxy.url())
    )
    assert (http_only.code, statuses(http_only)) == (1, ["failed", "copied"]), explain(http_only)
    assert {r.connect for r in forward_proxy.requests} == {False}


# -- NO_PROXY ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "no_proxy"),
    [
        pytest.param("NO_PROXY", "registry.test", id="host"),
        pytest.param("NO_PROXY", ".test", id="dot-domain"),
        pytest.param("NO_PROXY", "test", id="bare-domain"),
        pytest.param("NO_PROXY", "*.test", id="star-domain"),
        pytest.param("NO_PROXY", "registry.test:{port}", id="host-port"),
        pytest.param("NO_PROXY", "*", id="everything"),
        pytest.param("NO_PROXY", " other.example , REGISTRY.Test ", id="list-case-space"),
        pytest.param("no_proxy", "registry.test", id="lower-case-host"),
        pytest.param("no_proxy", ".test", id="lower-case-dot-domain"),
    ],
)
def test_no_proxy_match_goes_direct_and_fails_to_resolve(
    tmp_path: Path,
    forward_proxy: ForwardProxy,
    registry: Registry,
    registry_tls: Registry,
    pki: PKI,
    unique_repo: str,
    variable: str,
    no_proxy: str,
) -> None:
    """The same sync succeeds through the proxy first, so the failure can only come from NO_PROXY."""
    destination = forward_proxy.expose(registry_tls)
    port = destination.host.rsplit(":", 1)[1]
    env = trusting(pki, HTTPS_PROXY=forward_proxy.url())

    proxied, _ = mirror_one(tmp_path, registry, destination, unique_repo, env=env)
    assert (proxied.code, statuses(proxied)) == (0, ["copied"]), explain(proxied)

    forward_proxy.clear_requests()
    direct, _ = mirror_one(
        tmp_path,
        registry,
        destination,
        unique_repo + "-direct",
        "--retries",
        "0",
        env={**env, variable: no_proxy.format(port=port)},
    )
    assert (direct.code, statuses(direct)) == (1, ["failed"]), explain(direct)
    assert forward_proxy.requests == []


@pytest.mark.parametrize(
    "no_proxy",
    [
        pytest.param("registry.test:1", id="other-port"),
        pytest.param("gistry.test", id="suffix-inside-a-label"),
        pytest.param("sub.registry.test", id="subdomain"),
        pytest.param("127.0.0.1,127.0.0.0/8,localhost", id="loopback-only"),
    ],
)
def test_no_proxy_mismatch_still_goes_through_the_proxy(
    tmp_path: Path,
    forward_proxy: ForwardProxy,
    registry: Registry,
    registry_tls: Registry,
    pki: PKI,
    unique_repo: str,
    no_proxy: str,
) -> None:
    destination = forward_proxy.expose(registry_tls)
    run, _ = mirror_one(
        tmp_path,
        registry,
        destination,
        unique_repo,
        env=trusting(pki, HTTPS_PROXY=forward_proxy.url(), NO_PROXY=no_proxy),
    )
    assert (run.code, statuses(run)) == (0, ["copied"]), explain(run)
    assert tunnels(forward_proxy) == {("CONNECT", destination.host, 200)}


# -- proxy authentication -----------------------------------------------------------------------------


def test_proxy_credentials_from_the_proxy_url(
    tmp_path: Path, no_proxy_environment: None, registry: Registry, registry_tls: Registry, pki: PKI, unique_repo: str
) -> None:
    """Userinfo of the proxy URL goes, percent-decoded, into Proxy-Authorization, and nowhere else."""
    with ForwardProxy(credentials=PROXY_USER) as proxy:
        destination = proxy.expose(registry_tls)
        run, _ = mirror_one(
            tmp_path,
            registry,
            destination,
            unique_repo,
            "--verbose",
            env=trusting(pki, HTTPS_PROXY=proxy.url(PROXY_USER)),
        )
        requests = proxy.requests

    assert (run.code, statuses(run)) == (0, ["copied"]), explain(run)
    assert requests and {(r.method, r.had_proxy_authorization, r.status) for r in requests} == {("CONNECT", True, 200)}
    assert_no_secret(run, PROXY_USER)


@pytest.mark.parametrize(
    "credentials",
    [pytest.param(None, id="none"), pytest.param(Credentials(PROXY_USER.username, "Wr0ng-Proxy-Secret"), id="wrong")],
)
def test_proxy_refusing_the_credentials_fails_the_row(
    tmp_path: Path,
    no_proxy_environment: None,
    registry: Registry,
    registry_tls: Registry,
    pki: PKI,
    unique_repo: str,
    credentials: Credentials | None,
) -> None:
    with ForwardProxy(credentials=PROXY_USER) as proxy:
        destination = proxy.expose(registry_tls)
        run, _ = mirror_one(
            tmp_path,
            registry,
            destination,
            unique_repo,
            "--retries",
            "0",
            env=trusting(pki, HTTPS_PROXY=proxy.url(credentials)),
        )
        requests = proxy.requests

    assert (run.code, statuses(run)) == (1, ["failed"]), explain(run)
    assert requests, f"the proxy was never asked\n{explain(run)}"
    assert {(r.method, r.status) for r in requests} == {("CONNECT", 407)}
    if credentials is not None:
        assert_no_secret(run, credentials)


def assert_no_secret(run: Run, credentials: Credentials) -> None:
    """Neither the password, nor its percent-encoded form (a proxy URL), nor the Basic value carrying it."""
    output = run.stdout + run.stderr
    basic = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    for form in (credentials.password, quote(credentials.password, safe=""), basic):
        assert form not in output, f"{form!r} is in the output\n{explain(run)}"


# -- registry credentials inside the tunnel ------------------------------------------------------------


@pytest.mark.parametrize("source_of_credentials", ["hosts", "docker-config"])
def test_registry_credentials_stay_inside_the_tunnel(
    tmp_path: Path,
    forward_proxy: ForwardProxy,
    registry: Registry,
    registry_tls_htpasswd: Registry,
    pki: PKI,
    unique_repo: str,
    source_of_credentials: str,
) -> None:
    """Credentials are matched by the registry's configured name (``registry.test:<port>``) and sent
    over TLS through the tunnel, so the proxy never sees an Authorization header."""
    destination = forward_proxy.expose(registry_tls_htpasswd)
    env = trusting(pki, HTTPS_PROXY=forward_proxy.url())
    hosts = None
    if source_of_credentials == "hosts":
        hosts = [
            {"host": destination.host, "username": TEST_USER.username, "credential": {"value": TEST_USER.password}}
        ]
    else:
        docker = tmp_path / "docker"
        docker.mkdir()
        auth = base64.b64encode(TEST_USER.skopeo().encode()).decode()
        (docker / "config.json").write_text(json.dumps({"auths": {destination.host: {"auth": auth}}}))
        env["DOCKER_CONFIG"] = str(docker)

    run, digest = mirror_one(tmp_path, registry, destination, unique_repo, hosts=hosts, env=env)

    assert (run.code, statuses(run)) == (0, ["copied"]), explain(run)
    assert images.get_manifest(registry_tls_htpasswd, f"{unique_repo}-m", "1.0.0", auth=TEST_USER).digest == digest
    requests = forward_proxy.requests
    assert requests and all(
        r == ProxiedRequest("CONNECT", destination.host, True, None, None, False, 200) for r in requests
    )
    assert TEST_USER.password not in run.stdout + run.stderr


def test_token_endpoint_on_loopback_is_not_proxied(
    tmp_path: Path,
    forward_proxy: ForwardProxy,
    registry: Registry,
    registry_factory: RegistryFactory,
    token_server: TokenServer,
    pki: PKI,
    unique_repo: str,
) -> None:
    """The registry is proxied, its token realm (``http://127.0.0.1:<port>/token``) is not: each URL
    is decided on its own, not per registry."""
    target = registry_factory(tls=True, token_server=token_server)
    destination = forward_proxy.expose(target)
    hosts = [{"host": destination.host, "username": TEST_USER.username, "credential": {"value": TEST_USER.password}}]

    run, _ = mirror_one(
        tmp_path,
        registry,
        destination,
        unique_repo,
        hosts=hosts,
        env=trusting(pki, HTTPS_PROXY=forward_proxy.url(), HTTP_PROXY=forward_proxy.url()),
    )

    assert (run.code, statuses(run)) == (0, ["copied"]), explain(run)
    assert token_server.requests, "the token server was never asked"
    assert tunnels(forward_proxy) == {("CONNECT", destination.host, 200)}
