"""Helm repositories.yaml: where it is, which entry applies to a chart source
(docs/sync.md#helm-repositories), and the URL
and credential rules of chart downloads (docs/sync.md#chart-downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxmirror.errors import ConfigError
from fluxmirror.helm.fetch import RepositoryAccess, resolve_reference
from fluxmirror.helm.publish import chart_manifest, destination_tag
from fluxmirror.helm.repositories import HelmRepository, find_repository, load_repositories, repositories_path


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HELM_REPOSITORY_CONFIG": "/r.yaml", "HELM_CONFIG_HOME": "/h"}, "/r.yaml"),
        ({"HELM_CONFIG_HOME": "/h", "XDG_CONFIG_HOME": "/x"}, "/h/repositories.yaml"),
        ({"XDG_CONFIG_HOME": "/x", "HOME": "/home/u"}, "/x/helm/repositories.yaml"),
        ({"HOME": "/home/u"}, "/home/u/.config/helm/repositories.yaml"),
    ],
    ids=["explicit", "helm-config-home", "xdg", "home"],
)
def test_repositories_path(env: dict[str, str], expected: str) -> None:
    assert repositories_path(env) == Path(expected)


def test_missing_file_is_anonymous_and_entries_keep_file_order(tmp_path: Path) -> None:
    assert load_repositories(tmp_path / "absent.yaml") == []
    path = tmp_path / "repositories.yaml"
    path.write_text(
        "apiVersion: ''\nrepositories:\n"
        "- {name: a, url: 'https://Charts.Example.com/stable/', username: u, password: s3cret-pw, pass_credentials_all: true}\n"
        "- {name: b, url: 'https://charts.example.com/stable', certFile: c.pem, keyFile: k.pem}\n"
    )
    first, second = load_repositories(path)
    assert (first.name, first.has_credentials, first.pass_credentials_all) == ("a", True, True)
    assert (second.cert_file, second.key_file, second.has_credentials) == ("c.pem", "k.pem", False)
    assert "s3cret-pw" not in repr(first)
    assert find_repository([first, second], " https://charts.example.com/stable ") is first
    assert find_repository([first, second], "https://charts.example.com/stable?x=1") is None
    assert find_repository([first, second], "http://charts.example.com/stable") is None


def test_entry_without_scheme_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match=r'normalize Helm repository "bad" URL "charts.example.com": missing scheme or host'
    ):
        find_repository([HelmRepository("", ""), HelmRepository("bad", "charts.example.com")], "https://x.io")


@pytest.mark.parametrize(
    ("repository", "reference", "expected"),
    [
        ("https://h.io/charts", "index.yaml", "https://h.io/charts/index.yaml"),
        ("https://h.io/charts/", "a/b-1.0.0.tgz", "https://h.io/charts/a/b-1.0.0.tgz"),
        ("https://h.io/charts?token=t", "index.yaml", "https://h.io/charts/index.yaml?token=t"),
        ("https://h.io/charts?token=t", "../b.tgz", "https://h.io/b.tgz?token=t"),
        ("https://h.io/charts?token=t", "https://cdn.io/b.tgz?sig=1", "https://cdn.io/b.tgz?sig=1"),
        ("https://h.io", "/abs/b.tgz", "https://h.io/abs/b.tgz"),
    ],
    ids=["relative", "nested", "query-copied", "parent", "absolute", "root-relative"],
)
def test_resolve_reference(repository: str, reference: str, expected: str) -> None:
    assert resolve_reference(repository, reference) == expected


def test_credentials_only_for_the_source_origin_unless_passed_to_all() -> None:
    entry = HelmRepository("r", "https://h.io/charts", username="u", password="p")
    access = RepositoryAccess("https://h.io/charts", entry)
    assert access.authorization("https://h.io:443/charts/x.tgz") is not None
    assert access.authorization("https://cdn.h.io/x.tgz") is None
    assert access.authorization("http://h.io/charts/x.tgz") is None
    everywhere = RepositoryAccess("https://h.io/charts", HelmRepository("r", "u", "u", "p", pass_credentials_all=True))
    assert everywhere.authorization("https://cdn.h.io/x.tgz") is not None
    assert (
        RepositoryAccess("https://h.io", HelmRepository("r", "u", username="u")).authorization("https://h.io/") is None
    )


def test_client_tls_needs_both_halves() -> None:
    access = RepositoryAccess("https://h.io", HelmRepository("r", "https://h.io", cert_file="c.pem"))
    with pytest.raises(Exception, match='helm repository "r" must set both certFile and keyFile for client TLS'):
        access.ssl_context()


def test_manifest_and_tag_are_helms() -> None:
    manifest = chart_manifest(b"{}", b"chart")
    assert manifest.startswith(b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":')
    assert b" " not in manifest and not manifest.endswith(b"\n")
    assert destination_tag("1.2.0+build.5+x") == "1.2.0_build.5_x"
