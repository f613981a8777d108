"""Proof that the chart-repository harness serves what it claims, checked with plain clients.

Clients here are ``http.client`` with explicit SSL contexts (and aiohttp once), never the product,
so a product test that uses ``chart_repo``/``chart_repo_factory`` can trust the server side.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import ssl
import struct
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp
import pytest
import yaml
from harness import TEST_USER, Credentials
from harness.chartrepo import ChartRepository, ChartRepositoryFactory
from harness.charts import (
    FIXED_MTIME,
    build_chart,
    build_index,
    chart_digest,
    index_entry,
    large_index,
    large_index_version,
    sha256_hex,
)
from harness.fixtures_charts import WriteRepositories
from harness.pki import PKI

USER_AGENT = "flux-mirror"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def get(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> Reply:
    """One request on a fresh connection, so each TLS handshake is really tested."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    connection = (
        http.client.HTTPSConnection(parts.hostname, parts.port, timeout=10, context=context)
        if parts.scheme == "https"
        else http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    )
    try:
        target = parts.path or "/"
        connection.request(method, target + (f"?{parts.query}" if parts.query else ""), headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


def resolve(repository_url: str, reference: str) -> str:
    """The clarified rule: absolute as is; relative against the repository URL as a directory, plus its query."""
    if urlsplit(reference).scheme:
        return reference
    base = urlsplit(repository_url)
    directory = urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + "/", "", ""))
    resolved = urlsplit(urljoin(directory, reference))
    return urlunsplit((resolved.scheme, resolved.netloc, resolved.path, base.query, ""))


def load_index(repository: ChartRepository, **kwargs: Any) -> dict[str, Any]:
    reply = get(repository.index_url, **kwargs)
    assert reply.status == 200, reply
    document = yaml.safe_load(reply.body)
    assert isinstance(document, dict)
    return document


# -- chart packages ---------------------------------------------------------------------------------


def test_chart_bytes_are_deterministic_and_laid_out_like_helm_package() -> None:
    first = build_chart("demo", "1.2.3", app_version="4.5")
    assert build_chart("demo", "1.2.3", app_version="4.5") == first
    assert build_chart("demo", "1.2.4", app_version="4.5") != first

    # gzip: Helm's FEXTRA|FCOMMENT header, mtime 0, comment "Helm".
    assert first[:4] == bytes([0x1F, 0x8B, 8, 0x14])
    assert struct.unpack("<I", first[4:8]) == (0,)
    (extra_length,) = struct.unpack("<H", first[10:12])
    assert first[12 + extra_length : 12 + extra_length + 5] == b"Helm\0"

    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as archive:
        members = archive.getmembers()
        assert [m.name for m in members] == ["demo/Chart.yaml", "demo/values.yaml", "demo/templates/configmap.yaml"]
        assert all(m.isreg() and m.mode == 0o644 and m.mtime == FIXED_MTIME for m in members)
        assert all((m.uid, m.gid, m.uname, m.gname) == (0, 0, "", "") for m in members)
        chart_file = archive.extractfile("demo/Chart.yaml")
        assert chart_file is not None
        chart_yaml = chart_file.read().decode()
    assert chart_yaml.splitlines() == [
        "apiVersion: v2",
        "appVersion: '4.5'",
        "description: A Helm chart for fluxmirror tests",
        "name: demo",
        "version: 1.2.3",
    ]
    # No record padding: the payload ends right after the two end-of-archive blocks.
    assert len(gzip.decompress(first)) % 512 == 0


def test_chart_options_for_v1_requirements_raw_metadata_and_files() -> None:
    dependency = {"name": "redis", "version": "1.x", "repository": "https://example.invalid/charts"}

    def contents(data: bytes) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive.getmembers():
                file = archive.extractfile(member)
                assert file is not None, f"{member.name} is not a regular file"
                found[member.name] = file.read()
        return found

    v1 = contents(build_chart("old", "0.1.0", api_version="v1", requirements=[dependency]))
    assert yaml.safe_load(v1["old/requirements.yaml"]) == {"dependencies": [dependency]}
    assert "dependencies" not in yaml.safe_load(v1["old/Chart.yaml"])

    v2 = contents(build_chart("new", "0.1.0", requirements=[dependency], chart_yaml_extra={"type": "library"}))
    assert yaml.safe_load(v2["new/Chart.yaml"])["dependencies"] == [dependency]
    assert yaml.safe_load(v2["new/Chart.yaml"])["type"] == "library"

    raw = "name: odd\nversion: not-semver\nUnknownKey: [1]\n"
    odd = contents(
        build_chart(
            "odd",
            "0.0.1",
            raw_chart_yaml=raw,
            files={"values.yaml": None, "README.md": "hi", "templates/a.yaml": b"a: 1\n"},
            directory="elsewhere",
        )
    )
    assert list(odd) == [
        "elsewhere/Chart.yaml",
        "elsewhere/templates/a.yaml",
        "elsewhere/templates/configmap.yaml",
        "elsewhere/README.md",
    ]
    assert odd["elsewhere/Chart.yaml"] == raw.encode()

    no_api = contents(build_chart("bare", "1.0.0", api_version=None, description=None))
    assert yaml.safe_load(no_api["bare/Chart.yaml"]) == {"name": "bare", "version": "1.0.0"}


# -- index generation -------------------------------------------------------------------------------


def test_index_generator_emits_helm_format_and_odd_shapes() -> None:
    chart = build_chart("app", "1.0.0")
    entries = [
        index_entry("app", "1.0.0", data=chart, app_version="1.0"),
        index_entry("app", "0.9.0", omit_digest=True, urls=["https://elsewhere.invalid/app-0.9.0.tgz"]),
        index_entry("legacy", "2.0.0", api_version=None),
    ]
    document = yaml.safe_load(build_index(entries, raw_entries={"app": [None], "broken": None}))

    assert document["apiVersion"] == "v1"
    assert isinstance(document["generated"], str)
    app = document["entries"]["app"]
    assert app[0] == {
        "apiVersion": "v2",
        "appVersion": "1.0",
        "created": "2024-01-01T00:00:00Z",
        "description": "A Helm chart for fluxmirror tests",
        "digest": sha256_hex(chart),
        "name": "app",
        "urls": ["app-1.0.0.tgz"],
        "version": "1.0.0",
    }
    assert "digest" not in app[1] and app[1]["urls"] == ["https://elsewhere.invalid/app-0.9.0.tgz"]
    assert app[2] is None
    assert "apiVersion" not in document["entries"]["legacy"][0]
    assert document["entries"]["broken"] is None

    bare = yaml.safe_load(build_index(entries, api_version=None, as_json=True))
    assert "apiVersion" not in bare and len(bare["entries"]["app"]) == 2


def test_large_index_is_megabytes_and_generated_quickly() -> None:
    started = time.perf_counter()
    data = large_index()
    elapsed = time.perf_counter() - started

    assert elapsed < 2.0
    assert 3_000_000 <= len(data) <= 5_500_000
    assert data.count(b"\n  - apiVersion: v2\n") == 800 * 20

    small = yaml.safe_load(large_index(3, 12, url_prefix="https://cdn.invalid/"))
    assert list(small["entries"]) == ["chart-0000", "chart-0001", "chart-0002"]
    versions = small["entries"]["chart-0001"]
    assert [v["version"] for v in versions] == [large_index_version(j) for j in reversed(range(12))]
    assert versions[0]["version"] == "0.1.1"
    assert versions[0]["urls"] == ["https://cdn.invalid/chart-0001-0.1.1.tgz"]
    assert versions[0]["digest"] == sha256_hex(b"chart-0001-0.1.1")


# -- the server ---------------------------------------------------------------------------------


def test_index_is_served_and_its_digests_match_the_served_tarballs(chart_repo: ChartRepository) -> None:
    hosted = [chart_repo.add("alpha", v) for v in ("1.0.0", "1.1.0")]
    hosted.append(chart_repo.add("beta", "0.1.0", app_version="2.0"))

    reply = get(chart_repo.index_url)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/x-yaml"
    document = yaml.safe_load(reply.body)
    assert document["apiVersion"] == "v1"
    assert {name: [v["version"] for v in versions] for name, versions in document["entries"].items()} == {
        "alpha": ["1.0.0", "1.1.0"],
        "beta": ["0.1.0"],
    }
    for chart in hosted:
        (entry,) = [v for v in document["entries"][chart.name] if v["version"] == chart.version]
        assert entry["urls"] == [f"{chart.name}-{chart.version}.tgz"]
        served = get(resolve(chart_repo.url, entry["urls"][0]))
        assert served.status == 200
        assert served.headers["Content-Type"] == "application/gzip"
        assert hashlib.sha256(served.body).hexdigest() == entry["digest"]
        assert served.body == chart.data == build_chart(chart.name, chart.version, app_version=entry.get("appVersion"))
        assert chart.digest == chart_digest(served.body)


def test_runtime_changes_raw_index_and_http_semantics(chart_repo: ChartRepository) -> None:
    first = chart_repo.add("app", "1.0.0")
    replaced = chart_repo.add("app", "1.0.0", build_chart("app", "1.0.0", files={"extra.txt": b"x"}))
    assert replaced.data != first.data
    (entry,) = load_index(chart_repo)["entries"]["app"]
    assert entry["digest"] == sha256_hex(replaced.data)
    assert get(replaced.url).body == replaced.data

    chart_repo.set_index("apiVersion: v1\nentries:\n  app: [null]\n")
    assert get(chart_repo.index_url).body == b"apiVersion: v1\nentries:\n  app: [null]\n"
    chart_repo.set_index(None)
    assert load_index(chart_repo)["entries"]["app"][0]["digest"] == sha256_hex(replaced.data)

    head = get(replaced.url, method="HEAD")
    assert (head.status, head.headers["Content-Length"], head.body) == (200, str(len(replaced.data)), b"")
    assert get(chart_repo.file_url("missing-1.0.0.tgz")).status == 404
    assert get(chart_repo.index_url, method="POST").status == 405

    chart_repo.remove("app", "1.0.0")
    assert load_index(chart_repo)["entries"] == {}
    assert get(replaced.url).status == 404


def test_basic_auth_refuses_missing_and_wrong_credentials(chart_repo_factory: ChartRepositoryFactory) -> None:
    repository = chart_repo_factory(credentials=TEST_USER)
    chart = repository.add("secure", "1.0.0")

    missing = get(repository.index_url)
    assert missing.status == 401
    assert missing.headers["WWW-Authenticate"].startswith("Basic ")
    wrong = Credentials(TEST_USER.username, "nope").basic_header()
    assert get(repository.index_url, headers={"Authorization": wrong}).status == 401
    assert get(chart.url, headers={"Authorization": "Bearer x"}).status == 401

    good = {"Authorization": TEST_USER.basic_header(), "User-Agent": USER_AGENT}
    assert load_index(repository, headers=good)["entries"]["secure"][0]["version"] == "1.0.0"
    assert get(chart.url, headers=good).body == chart.data
    assert [(r.status, r.authorization) for r in repository.requests] == [
        (401, None),
        (401, wrong),
        (401, "Bearer x"),
        (200, TEST_USER.basic_header()),
        (200, TEST_USER.basic_header()),
    ]


@pytest.mark.parametrize("hostname", ["127.0.0.1", "localhost"])
def test_tls_needs_the_test_ca(chart_repo_factory: ChartRepositoryFactory, pki: PKI, hostname: str) -> None:
    repository = chart_repo_factory(tls=True, hostname=hostname)
    assert repository.url.startswith(f"https://{hostname}:")

    with pytest.raises(ssl.SSLCertVerificationError):
        get(repository.index_url, context=ssl.create_default_context())
    assert load_index(repository, context=ssl.create_default_context(cafile=str(pki.ca_path)))["entries"] == {}
    assert load_index(repository, context=repository.client_ssl_context())["apiVersion"] == "v1"


def test_mtls_refuses_a_client_without_certificate(chart_repo_factory: ChartRepositoryFactory) -> None:
    repository = chart_repo_factory(require_client_cert=True)
    assert repository.tls

    # TLS 1.3 reports the missing certificate after the handshake, so it surfaces on read or reset.
    with pytest.raises(OSError):
        get(repository.index_url, context=repository.client_ssl_context(client_cert=False))
    assert repository.requests == []

    load_index(repository, context=repository.client_ssl_context())
    (record,) = repository.requests
    assert record.client_cert == "fluxmirror test client"


def test_base_path_and_required_query(chart_repo_factory: ChartRepositoryFactory) -> None:
    repository = chart_repo_factory(base_path="charts", required_query={"token": "t0k en"})
    chart = repository.add("app", "1.0.0")
    assert repository.url == f"{repository.origin}/charts?token=t0k+en"
    assert repository.index_url == f"{repository.origin}/charts/index.yaml?token=t0k+en"

    assert get(f"{repository.origin}/charts/index.yaml").status == 403
    assert get(f"{repository.origin}/charts/index.yaml?token=wrong").status == 403
    document = load_index(repository)
    (reference,) = document["entries"]["app"][0]["urls"]
    assert reference == "app-1.0.0.tgz"
    chart_url = resolve(repository.url, reference)
    assert chart_url == chart.url == f"{repository.origin}/charts/app-1.0.0.tgz?token=t0k+en"
    assert get(chart_url).body == chart.data
    # Resolving against the URL as a file (no directory slash) lands outside the base path.
    assert get(urljoin(repository.url, reference) + "?token=t0k+en").status == 404
    assert [r.target for r in repository.requests][-1] == "/app-1.0.0.tgz?token=t0k+en"


def test_charts_on_another_host_receive_no_credentials(chart_repo_factory: ChartRepositoryFactory) -> None:
    index_host = chart_repo_factory(credentials=TEST_USER)
    cdn = chart_repo_factory(hostname="localhost", base_path="/blobs/")
    chart = index_host.add("app", "1.0.0", hosted_on=cdn)

    auth = {"Authorization": TEST_USER.basic_header(), "User-Agent": USER_AGENT}
    (reference,) = load_index(index_host, headers=auth)["entries"]["app"][0]["urls"]
    assert reference == chart.url == f"{cdn.origin}/blobs/app-1.0.0.tgz"
    assert urlsplit(reference).netloc != urlsplit(index_host.url).netloc
    assert get(chart.url).status == 200  # no credentials needed there
    assert get(index_host.file_url("app-1.0.0.tgz"), headers=auth).status == 404  # not stored on the index host

    served = get(resolve(index_host.url, reference), headers={"User-Agent": USER_AGENT})
    assert hashlib.sha256(served.body).hexdigest() == chart.entry["digest"]
    assert [(r.target, r.authorization, r.user_agent) for r in index_host.requests] == [
        ("/index.yaml", TEST_USER.basic_header(), USER_AGENT),
        ("/app-1.0.0.tgz", TEST_USER.basic_header(), USER_AGENT),
    ]
    assert [(r.target, r.authorization) for r in cdn.requests] == [("/blobs/app-1.0.0.tgz", None)] * 2
    assert cdn.requests[-1].user_agent == USER_AGENT
    assert cdn.requests[-1].headers["user-agent"] == USER_AGENT


def test_fault_hooks(chart_repo: ChartRepository) -> None:
    chart = chart_repo.add("app", "1.0.0")
    chart_repo.fail("index.yaml", 503, times=2, headers={"Retry-After": "0"})

    statuses = [get(chart_repo.index_url).status for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert chart_repo.requests[0].status == 503

    chart_repo.fail("/app-1.0.0.tgz", 500, body=b"boom")
    assert [get(chart.url).body for _ in range(2)] == [b"boom", b"boom"]
    chart_repo.clear_faults()
    assert get(chart.url).body == chart.data

    chart_repo.corrupt("app", "1.0.0")
    served = get(chart.url).body
    assert len(served) == len(chart.data) and served != chart.data
    assert load_index(chart_repo)["entries"]["app"][0]["digest"] == sha256_hex(chart.data) != sha256_hex(served)


async def test_the_server_does_not_block_an_asyncio_test(chart_repo: ChartRepository) -> None:
    chart = chart_repo.add("app", "1.0.0")
    async with aiohttp.ClientSession() as session, session.get(chart.url) as response:
        assert response.status == 200
        assert await response.read() == chart.data


# -- repositories.yaml ----------------------------------------------------------------------------------


def test_repositories_yaml_has_helms_shape(
    helm_repositories_yaml: WriteRepositories, chart_repo_factory: ChartRepositoryFactory, pki: PKI
) -> None:
    secure = chart_repo_factory(credentials=TEST_USER, require_client_cert=True)
    plain = chart_repo_factory()
    path = helm_repositories_yaml(
        secure.repositories_entry("secure", pass_credentials_all=True),
        plain.repositories_entry("plain"),
    )
    assert isinstance(path, Path) and path.name == "repositories.yaml"
    document = yaml.safe_load(path.read_text())
    assert document["apiVersion"] == "" and isinstance(document["generated"], str)
    assert document["repositories"] == [
        {
            "name": "secure",
            "url": secure.url,
            "username": TEST_USER.username,
            "password": TEST_USER.password,
            "certFile": str(pki.client_cert_path),
            "keyFile": str(pki.client_key_path),
            "caFile": str(pki.ca_path),
            "insecure_skip_tls_verify": False,
            "pass_credentials_all": True,
        },
        {
            "name": "plain",
            "url": plain.url,
            "username": "",
            "password": "",
            "certFile": "",
            "keyFile": "",
            "caFile": "",
            "insecure_skip_tls_verify": False,
            "pass_credentials_all": False,
        },
    ]

    sparse = helm_repositories_yaml({"name": "x", "url": plain.url, "caFile": None}, complete=False, name="sparse.yaml")
    assert yaml.safe_load(sparse.read_text())["repositories"] == [{"name": "x", "url": plain.url}]
    assert sparse.parent == path.parent
