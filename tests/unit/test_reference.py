"""Repository and reference names follow go-containerregistry's rules and messages."""

from __future__ import annotations

import pytest

from fluxmirror.oci.reference import InvalidReferenceError, parse_reference, parse_repository

CHARS = "`abcdefghijklmnopqrstuvwxyz0123456789_-./`"


@pytest.mark.parametrize(
    ("name", "registry", "path"),
    [
        ("ghcr.io/fluxcd/flux-cli", "ghcr.io", "fluxcd/flux-cli"),
        ("docker.io/nginx", "index.docker.io", "library/nginx"),
        ("nginx", "index.docker.io", "library/nginx"),
        ("index.docker.io/stefanprodan/podinfo", "index.docker.io", "stefanprodan/podinfo"),
        ("stefanprodan/podinfo", "index.docker.io", "stefanprodan/podinfo"),
        ("localhost:5000/a/b", "localhost:5000", "a/b"),
        ("localhost/foo", "localhost", "foo"),
        ("127.0.0.1:5000/charts/podinfo", "127.0.0.1:5000", "charts/podinfo"),
        ("[::1]:5000/ab", "[::1]:5000", "ab"),
    ],
)
def test_parse_repository(name: str, registry: str, path: str) -> None:
    repository = parse_repository(name)
    assert (repository.registry, repository.path) == (registry, path)


def test_docker_hub_api_host() -> None:
    assert parse_repository("nginx").api_host == "registry-1.docker.io"
    assert parse_repository("ghcr.io/a/b").api_host == "ghcr.io"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "a repository name must be specified"),
        ("a", "repository must be between 2 and 255 characters in length: a"),
        ("Foo/bar", f"repository can only contain the characters {CHARS}: Foo/bar"),
        ("quay.io/x:1.0", f"repository can only contain the characters {CHARS}: x:1.0"),
        ("ghcr.io/a//b", "repository path has an empty component: a//b"),
        ("https://ghcr.io/a/b", "write the repository without the https:// scheme: ghcr.io/a/b"),
        ("ghcr io:x/ab", "registries must be valid RFC 3986 URI authorities: ghcr io:x"),
    ],
)
def test_parse_repository_errors(name: str, message: str) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        parse_repository(name)
    assert str(caught.value) == message


def test_parse_reference_forms() -> None:
    digest = "sha256:" + "a" * 64
    assert str(parse_reference("localhost:5000/a/b:1.2")) == "localhost:5000/a/b:1.2"
    assert parse_reference("localhost:5000/a/b").tag == "latest"
    by_digest = parse_reference(f"ghcr.io/a/b@{digest}")
    assert (by_digest.tag, by_digest.digest, by_digest.identifier) == ("", digest, digest)
    with pytest.raises(InvalidReferenceError):
        parse_reference("ghcr.io/a/b@sha256:short")
    with pytest.raises(InvalidReferenceError, match="tag can only contain"):
        parse_reference("ghcr.io/a/b:bad+tag")
