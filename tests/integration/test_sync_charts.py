"""`charts` end to end: real HTTP(S) Helm repositories (tests/harness/chartrepo.py) into the real
docker-registry, with the published artifact checked byte for byte against what Helm writes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from harness import Credentials, images, skopeo
from harness.chartrepo import ChartRepository, ChartRepositoryFactory
from harness.charts import DEFAULT_DESCRIPTION
from harness.fixtures_charts import WriteRepositories
from harness.registry import Registry, RegistryFactory
from harness.runner import Run, sync

pytestmark = pytest.mark.registry

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
USER = Credentials("chartuser", "chart-secret-pw")


@pytest.fixture(scope="module")
def target(registry_factory: RegistryFactory) -> Registry:
    return registry_factory()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chart_entry(repo: ChartRepository | str, destination: Registry, prefix: str, **extra: Any) -> dict[str, Any]:
    source = repo if isinstance(repo, str) else repo.url
    return {"name": "demo", "source": source, "destination": f"oci://{destination.host}/{prefix}", **extra}


def expected_config(version: str, app_version: str) -> bytes:
    """Helm's config blob for the harness chart: Chart.yaml metadata in Helm's field order, compact JSON."""
    return (
        f'{{"name":"demo","version":"{version}","description":"{DEFAULT_DESCRIPTION}",'
        f'"apiVersion":"v2","appVersion":"{app_version}"}}'
    ).encode()


def expected_manifest(config: bytes, chart: bytes) -> bytes:
    """The manifest docs/sync.md#chart-manifest describes, written out independently of the product."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": images.OCI_MANIFEST,
            "config": {"mediaType": HELM_CONFIG, "digest": digest(config), "size": len(config)},
            "layers": [{"mediaType": HELM_LAYER, "digest": digest(chart), "size": len(chart)}],
        },
        separators=(",", ":"),
    ).encode()


def run_charts(tmp_path: Path, charts: list[dict[str, Any]], *flags: str, **kwargs: Any) -> Run:
    return sync(tmp_path, [], *flags, charts=charts, **kwargs)


def test_versions_published_byte_for_byte_then_skipped(
    tmp_path: Path, chart_repo: ChartRepository, target: Registry, unique_repo: str
) -> None:
    hosted = {
        v: chart_repo.add("demo", v, app_version="9.9.9") for v in ("1.0.0", "1.1.0", "1.2.0+build.5", "2.0.0-rc.1")
    }
    charts = [chart_entry(chart_repo, target, unique_repo, version=">=1.0.0", limit=0)]
    run = run_charts(tmp_path, charts)
    assert (run.code, run.stderr) == (0, "")
    result = run.report["report"]["results"][0]
    assert (result["source"], result["destination"]) == (f"{chart_repo.url}/demo", f"{target.host}/{unique_repo}/demo")
    assert [(r["tag"], r["status"], r["digest"]) for r in run.rows()] == [
        (v, "copied", hosted[v].digest) for v in ("1.2.0+build.5", "1.1.0", "1.0.0")
    ]
    repo = f"{unique_repo}/demo"
    assert sorted(images.list_tags(target, repo)) == ["1.0.0", "1.1.0", "1.2.0_build.5"]
    for version, tag in (("1.1.0", "1.1.0"), ("1.2.0+build.5", "1.2.0_build.5")):
        config = expected_config(version, "9.9.9")
        manifest = skopeo.inspect_raw(target.docker_ref(repo, tag))
        assert manifest == expected_manifest(config, hosted[version].data)
        assert skopeo.inspect_raw(target.docker_ref(repo, tag), config=True) == config
        assert images.get_blob(target, repo, hosted[version].digest) == hosted[version].data

    again = run_charts(tmp_path, charts, output="text")
    assert again.code == 0
    assert f"✓ {chart_repo.url}/demo:1.2.0+build.5 (skipped)\n→ {target.host}/{repo}:1.2.0_build.5\n" in again.stdout
    assert again.stdout.rstrip().splitlines()[-1].startswith("Summary: 3 skipped in ")


def test_two_empty_registries_get_identical_digests(
    tmp_path: Path, chart_repo: ChartRepository, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    chart_repo.add("demo", "3.1.4", app_version="1.0")
    first, second = registry_factory(), registry_factory()
    for destination in (first, second):
        assert run_charts(tmp_path, [chart_entry(chart_repo, destination, unique_repo)]).code == 0
    ref = f"{unique_repo}/demo"
    assert images.get_manifest(first, ref, "3.1.4").digest == images.get_manifest(second, ref, "3.1.4").digest


def test_drift_overwrite_and_dry_run(
    tmp_path: Path, chart_repo: ChartRepository, target: Registry, unique_repo: str
) -> None:
    hosted = chart_repo.add("demo", "1.0.0")
    charts = [chart_entry(chart_repo, target, unique_repo)]
    assert run_charts(tmp_path, charts, "--dry-run").rows()[0]["status"] == "would-copy"
    assert unique_repo + "/demo" not in images.catalog(target)
    assert run_charts(tmp_path, charts).code == 0
    changed = chart_repo.add("demo", "1.0.0", app_version="2.0.0")  # same version, different archive
    assert changed.digest != hosted.digest
    drifted = run_charts(tmp_path, charts)
    assert (drifted.code, drifted.rows()[0]["status"], drifted.rows()[0]["digest"]) == (2, "drifted", changed.digest)
    assert run_charts(tmp_path, charts, "--drift-exit-code", "0").code == 0
    assert run_charts(tmp_path, charts, "--dry-run", "--overwrite").rows()[0]["status"] == "would-overwrite"
    overwritten = run_charts(tmp_path, [chart_entry(chart_repo, target, unique_repo, overwrite=True)])
    assert (overwritten.code, overwritten.rows()[0]["status"]) == (0, "overwritten")
    manifest = json.loads(images.get_manifest(target, f"{unique_repo}/demo", "1.0.0").data)
    assert manifest["layers"][0]["digest"] == changed.digest


def test_chart_pushed_by_helm_with_annotations_counts_as_up_to_date(
    tmp_path: Path, chart_repo: ChartRepository, target: Registry, unique_repo: str
) -> None:
    hosted = chart_repo.add("demo", "1.0.0")
    config = expected_config("1.0.0", "")
    config = config.replace(b',"appVersion":""', b"")
    helm_pushed = images.make_artifact(
        seed=1,
        artifact_type=None,
        config_media_type=HELM_CONFIG,
        config_data=config,
        layer_sizes=(),
        annotations={"org.opencontainers.image.created": "2026-11-23T10:00:00Z"},
    )
    document = json.loads(helm_pushed.raw)
    document["layers"] = [{"mediaType": HELM_LAYER, "digest": hosted.digest, "size": len(hosted.data)}]
    layer = images.Blob(HELM_LAYER, hosted.data)
    manifest = images.Manifest(
        images.Blob(images.OCI_MANIFEST, json.dumps(document).encode()), helm_pushed.config, (layer,)
    )
    images.push(target, f"{unique_repo}/demo", "1.0.0", manifest)
    run = run_charts(tmp_path, [chart_entry(chart_repo, target, unique_repo)])
    assert (run.code, run.rows()[0]["status"], run.rows()[0]["reason"]) == (0, "skipped", "up-to-date")


def test_destination_tag_that_is_not_a_chart_fails_the_version(
    tmp_path: Path, chart_repo: ChartRepository, target: Registry, unique_repo: str
) -> None:
    chart_repo.add("demo", "1.0.0")
    images.push(target, f"{unique_repo}/demo", "1.0.0", images.make_image([100], seed=3))
    run = run_charts(tmp_path, [chart_entry(chart_repo, target, unique_repo)])
    assert run.code == 1
    assert run.rows()[0]["error"] == (
        f'inspect {target.host}/{unique_repo}/demo:1.0.0: not a helm chart (config mediaType "{images.OCI_CONFIG}")'
    )


def test_unknown_chart_fails_the_entry_and_corrupt_archive_fails_the_version(
    tmp_path: Path, chart_repo: ChartRepository, target: Registry, unique_repo: str
) -> None:
    chart_repo.add("demo", "1.0.0")
    missing = {**chart_entry(chart_repo, target, unique_repo), "name": "nope"}
    run = run_charts(tmp_path, [missing, chart_entry(chart_repo, target, unique_repo)], "--retries", "0")
    first, second = run.report["report"]["results"]
    assert (first["status"], first["error"], first["tags"]) == (
        "failed",
        f'chart "nope" not found in index {chart_repo.url}',
        [],
    )
    assert second["tags"][0]["status"] == "copied"
    chart_repo.add("demo", "1.0.1")
    chart_repo.corrupt("demo", "1.0.1")
    corrupt = run_charts(tmp_path, [chart_entry(chart_repo, target, unique_repo)], "--retries", "0")
    assert corrupt.code == 1
    assert "downloaded archive is sha256:" in corrupt.rows()[0]["error"]
    assert "1.0.1" not in images.list_tags(target, f"{unique_repo}/demo")


def test_query_string_of_the_source_is_carried_to_index_and_charts(
    tmp_path: Path, chart_repo_factory: ChartRepositoryFactory, target: Registry, unique_repo: str
) -> None:
    repo = chart_repo_factory(base_path="/charts/", required_query={"token": "t0ken"})
    repo.add("demo", "1.0.0")
    run = run_charts(tmp_path, [chart_entry(repo, target, unique_repo)])
    assert (run.code, run.rows()[0]["status"]) == (0, "copied")
    assert {r.target for r in repo.requests} == {"/charts/index.yaml?token=t0ken", "/charts/demo-1.0.0.tgz?token=t0ken"}
    assert all(r.user_agent == "flux-mirror" for r in repo.requests)


def test_basic_auth_from_repositories_yaml_never_reaches_another_host(
    tmp_path: Path,
    chart_repo_factory: ChartRepositoryFactory,
    helm_repositories_yaml: WriteRepositories,
    target: Registry,
    unique_repo: str,
) -> None:
    protected = chart_repo_factory(credentials=USER)
    elsewhere = chart_repo_factory()
    protected.add("demo", "1.0.0", hosted_on=elsewhere)
    charts = [chart_entry(protected, target, unique_repo)]
    anonymous = run_charts(tmp_path, charts)
    assert anonymous.report["report"]["results"][0]["error"] == f"GET {protected.index_url}: status 401"

    config = helm_repositories_yaml(protected.repositories_entry())
    run = run_charts(tmp_path, charts, env={"HELM_REPOSITORY_CONFIG": str(config)})
    assert (run.code, run.rows()[0]["status"]) == (0, "copied")
    assert [r.authorization for r in elsewhere.requests] == [None]
    assert USER.password not in run.stdout + run.stderr

    elsewhere.clear_requests()
    everywhere = helm_repositories_yaml(protected.repositories_entry(pass_credentials_all=True), name="all.yaml")
    second = run_charts(tmp_path, charts, "--dry-run", env={"HELM_REPOSITORY_CONFIG": str(everywhere)})
    assert second.rows()[0]["status"] == "skipped"
    assert [r.authorization is not None and r.authorization.startswith("Basic ") for r in elsewhere.requests] == [True]


def test_mutual_tls_repository(
    tmp_path: Path,
    chart_repo_factory: ChartRepositoryFactory,
    helm_repositories_yaml: WriteRepositories,
    target: Registry,
    unique_repo: str,
) -> None:
    repo = chart_repo_factory(tls=True, require_client_cert=True)
    repo.add("demo", "1.0.0")
    charts = [chart_entry(repo, target, unique_repo)]
    without = run_charts(
        tmp_path,
        charts,
        env={"HELM_REPOSITORY_CONFIG": str(helm_repositories_yaml(repo.repositories_entry(with_client_cert=False)))},
    )
    assert without.report["report"]["results"][0]["status"] == "failed"
    run = run_charts(
        tmp_path,
        charts,
        env={"HELM_REPOSITORY_CONFIG": str(helm_repositories_yaml(repo.repositories_entry(), name="mtls.yaml"))},
    )
    assert (run.code, run.rows()[0]["status"]) == (0, "copied")
    assert {r.client_cert for r in repo.requests if r.status == 200} != {None}


def test_broken_repositories_yaml_stops_the_run(
    tmp_path: Path, chart_repo: ChartRepository, target: Registry, unique_repo: str
) -> None:
    broken = tmp_path / "repositories.yaml"
    broken.write_text("repositories: [unclosed\n")
    run = run_charts(
        tmp_path, [chart_entry(chart_repo, target, unique_repo)], env={"HELM_REPOSITORY_CONFIG": str(broken)}
    )
    assert (run.code, run.stdout) == (1, "")
    assert run.stderr.startswith(f"✗ build chart entry {chart_repo.url}/demo: load Helm repository config {broken}: ")
    assert len(run.stderr.splitlines()) == 1


def test_sync_md_example_shape_into_an_authenticated_registry(
    tmp_path: Path, chart_repo_factory: ChartRepositoryFactory, registry_htpasswd: Registry, unique_repo: str
) -> None:
    """sync.md's example: several charts, version ranges and limits, a username/token host for the destination."""
    nginx, certs = chart_repo_factory(), chart_repo_factory(base_path="/jetstack/")
    for version in ("4.10.0", "4.11.0", "4.11.3", "4.12.0", "5.0.0-beta.1"):
        nginx.add("ingress-nginx", version)
    for version in ("1.14.0", "1.15.0", "1.16.1"):
        certs.add("cert-manager", version)
    destination = f"oci://{registry_htpasswd.host}/{unique_repo}/charts"
    charts = [
        {"name": "ingress-nginx", "source": nginx.url, "destination": destination, "version": ">=4.11.0", "limit": 3},
        {"name": "cert-manager", "source": certs.url, "destination": destination, "version": ">=1.15.0", "limit": 3},
    ]
    auth = registry_htpasswd.credentials
    assert auth is not None
    hosts = [{"host": registry_htpasswd.host, "username": auth.username, "credential": {"value": "${GH_TOKEN}"}}]
    token = {"GH_TOKEN": auth.password}
    run = run_charts(tmp_path, charts, hosts=hosts, env=token)
    assert (run.code, run.stderr) == (0, ""), run.stdout
    assert [[r["tag"] for r in result["tags"]] for result in run.report["report"]["results"]] == [
        ["4.12.0", "4.11.3", "4.11.0"],
        ["1.16.1", "1.15.0"],
    ]
    assert sorted(images.list_tags(registry_htpasswd, f"{unique_repo}/charts/ingress-nginx", auth=auth)) == [
        "4.11.0",
        "4.11.3",
        "4.12.0",
    ]
    again = run_charts(tmp_path, charts, hosts=hosts, env=token)
    assert again.summary["skipped"] == 5


def test_published_chart_mirrors_oci_to_oci_as_an_artifact(
    tmp_path: Path, chart_repo: ChartRepository, target: Registry, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    """sync.md's OCI-to-OCI example: a chart already in a registry is mirrored by `artifacts`, digest intact."""
    chart_repo.add("demo", "6.1.0")
    assert run_charts(tmp_path, [chart_entry(chart_repo, target, unique_repo)]).code == 0
    published = images.get_manifest(target, f"{unique_repo}/demo", "6.1.0")
    other = registry_factory()
    artifact = {"source": f"{target.host}/{unique_repo}/demo", "destination": f"{other.host}/charts/{unique_repo}"}
    run = sync(tmp_path, [{**artifact, "selector": {"semver": ">=6.0.0", "limit": 5}}])
    assert (run.code, run.rows()[0]["digest"]) == (0, published.digest)
    assert skopeo.inspect_raw(other.docker_ref(f"charts/{unique_repo}", "6.1.0")) == published.data


def test_insecure_skip_tls_verify_from_repositories_yaml(
    tmp_path: Path,
    chart_repo_factory: ChartRepositoryFactory,
    helm_repositories_yaml: WriteRepositories,
    target: Registry,
    unique_repo: str,
) -> None:
    repo = chart_repo_factory(tls=True)
    repo.add("demo", "1.0.0")
    charts = [chart_entry(repo, target, unique_repo)]
    untrusted = run_charts(tmp_path, charts)
    error = untrusted.report["report"]["results"][0]["error"]
    assert "tls: failed to verify certificate: x509: certificate signed by unknown authority" in error, error
    skip = helm_repositories_yaml(repo.repositories_entry(with_ca=False, insecure_skip_tls_verify=True))
    run = run_charts(tmp_path, charts, env={"HELM_REPOSITORY_CONFIG": str(skip)})
    assert (run.code, run.rows()[0]["status"]) == (0, "copied")
