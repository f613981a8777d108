"""Proof that every registry fixture is real and that the two test clients agree with each other."""

from __future__ import annotations

import dataclasses
import json
import ssl
import urllib.parse
from pathlib import Path

import pytest
from harness import images, skopeo
from harness.images import DOCKER, OCI, RegistryError
from harness.pki import PKI
from harness.registry import Registry, RegistryFactory
from harness.tokenserver import SERVICE, TokenServer

pytestmark = pytest.mark.registry


def test_builders_are_deterministic() -> None:
    assert images.make_image([10, 20], seed=7).digest == images.make_image([10, 20], seed=7).digest
    assert images.make_image([10, 20], seed=7).digest != images.make_image([10, 20], seed=8).digest
    artifact = images.make_artifact(seed=1, layer_sizes=[1000])
    assert artifact.layers[0].size == 1000


@pytest.mark.parametrize("media_type", [OCI, DOCKER], ids=["oci", "docker"])
def test_pushed_image_reads_back_identically_with_skopeo(registry: Registry, unique_repo: str, media_type: str) -> None:
    image = images.make_image([300, 5000], seed=1, media_type=media_type)

    assert images.push(registry, unique_repo, "v1", image) == image.digest

    raw = skopeo.inspect_raw(registry.docker_ref(unique_repo, "v1"))
    assert raw == image.raw
    assert images.sha256_digest(raw) == image.digest
    config = skopeo.inspect_raw(registry.docker_ref(unique_repo, image.digest), config=True)
    assert config == image.config.data


def test_index_is_pushed_after_its_children(registry: Registry, unique_repo: str) -> None:
    amd64 = images.make_image([100], seed=2, platform="linux/amd64")
    arm64 = images.make_image([100], seed=3, platform="linux/arm64/v8")
    index = images.make_index([amd64, arm64])

    images.push(registry, unique_repo, "multi", index)

    assert skopeo.inspect_raw(registry.docker_ref(unique_repo, "multi")) == index.raw
    assert skopeo.inspect_raw(registry.docker_ref(unique_repo, arm64.digest)) == arm64.raw
    fetched = images.get_manifest(registry, unique_repo, "multi")
    assert (fetched.media_type, fetched.digest) == (images.OCI_INDEX, index.digest)


def test_skopeo_push_reads_back_with_harness_client(registry: Registry, unique_repo: str, tmp_path: Path) -> None:
    image = images.make_image([4096, 1], seed=4)
    layout = images.write_oci_layout(tmp_path / "layout", image, "src")

    skopeo.copy(f"oci:{layout}:src", registry.docker_ref(unique_repo, "from-skopeo"))

    fetched = images.get_manifest(registry, unique_repo, "from-skopeo")
    assert fetched.data == image.raw
    assert fetched.digest == image.digest
    for blob in image.blobs:
        assert images.get_blob(registry, unique_repo, blob.digest) == blob.data
    assert images.list_tags(registry, unique_repo) == ["from-skopeo"]
    assert skopeo.list_tags(registry.docker_ref(unique_repo, None)) == ["from-skopeo"]


def test_factory_registry_as_mirror_destination(
    registry: Registry, registry_factory: RegistryFactory, unique_repo: str
) -> None:
    mirror = registry_factory()
    index = images.make_index([images.make_image([64], seed=5), images.make_image([64], seed=6)])
    images.push(registry, unique_repo, "v1", index)

    skopeo.copy(registry.docker_ref(unique_repo, "v1"), mirror.docker_ref(unique_repo, "v1"), all_images=True)

    assert mirror.host != registry.host
    assert images.get_manifest(mirror, unique_repo, "v1").digest == index.digest
    assert images.catalog(mirror) == [unique_repo]


def test_artifact_with_subject_keeps_its_bytes(registry: Registry, unique_repo: str) -> None:
    image = images.make_image([10], seed=7)
    signature = images.make_artifact(seed=8, layer_sizes=[33], subject=image, annotations={"k": "v"})
    images.push(registry, unique_repo, "v1", image)

    images.push(registry, unique_repo, None, signature)

    raw = skopeo.inspect_raw(registry.docker_ref(unique_repo, signature.digest))
    assert raw == signature.raw
    document = json.loads(raw)
    assert document["artifactType"] == images.TEST_ARTIFACT_TYPE
    assert document["subject"]["digest"] == image.digest


def test_delete_manifest(registry: Registry, unique_repo: str) -> None:
    image = images.make_image([10], seed=9)
    images.push(registry, unique_repo, "gone", image)

    images.delete_manifest(registry, unique_repo, image.digest)

    with pytest.raises(RegistryError) as error:
        images.get_manifest(registry, unique_repo, image.digest)
    assert error.value.status == 404


def test_htpasswd_registry_requires_credentials(registry_htpasswd: Registry, unique_repo: str) -> None:
    image = images.make_image([10], seed=10)
    with pytest.raises(RegistryError) as error:
        images.push(registry_htpasswd, unique_repo, "v1", image)
    assert error.value.status == 401

    images.push(registry_htpasswd, unique_repo, "v1", image, auth=registry_htpasswd.credentials)

    ref = registry_htpasswd.docker_ref(unique_repo, "v1")
    assert skopeo.inspect_raw(ref, creds=registry_htpasswd.credentials) == image.raw
    with pytest.raises(skopeo.SkopeoError, match=r"unauthorized|authentication required"):
        skopeo.inspect_raw(ref)


def test_token_registry_records_scopes(registry_token: Registry, token_server: TokenServer, unique_repo: str) -> None:
    image = images.make_image([10], seed=11)
    with pytest.raises(RegistryError) as error:
        images.push(registry_token, unique_repo, "v1", image)
    assert error.value.status == 401

    images.push(registry_token, unique_repo, "v1", image, auth=registry_token.credentials)
    ref = registry_token.docker_ref(unique_repo, "v1")
    assert skopeo.inspect_raw(ref, creds=registry_token.credentials) == image.raw

    granted = [r for r in token_server.requests if r.status == 200]
    assert {r.service for r in granted} == {SERVICE}
    assert registry_token.credentials is not None
    assert {r.username for r in granted} == {registry_token.credentials.username}
    requested = {r.requested_actions(unique_repo) for r in granted}
    assert requested == {frozenset({"pull"}), frozenset({"pull", "push"})}
    refused = [r for r in token_server.requests if r.status == 401]
    assert refused
    assert all(r.auth_scheme is None for r in refused)


def test_token_server_anonymous_pull_only(
    registry_token: Registry, token_server: TokenServer, unique_repo: str
) -> None:
    image = images.make_image([10], seed=12)
    images.push(registry_token, unique_repo, "v1", image, auth=registry_token.credentials)
    token_server.allow_anonymous_pull = True

    assert images.get_manifest(registry_token, unique_repo, "v1").data == image.raw
    with pytest.raises(RegistryError) as error:
        images.push(registry_token, unique_repo, "v2", images.make_image([10], seed=13))
    assert error.value.status == 401
    anonymous = [r for r in token_server.requests if r.auth_scheme is None]
    assert {r.granted for r in anonymous} >= {(f"repository:{unique_repo}:pull",)}


def _post_form(url: str, form: dict[str, str]) -> dict[str, object]:
    response = images.raw_request(
        "POST",
        url,
        body=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 200, response.body
    payload: dict[str, object] = json.loads(response.body)
    return payload


def test_token_server_oauth2_refresh_grant(
    registry_token: Registry, token_server: TokenServer, unique_repo: str
) -> None:
    image = images.make_image([10], seed=14)
    images.push(registry_token, unique_repo, "v1", image, auth=registry_token.credentials)
    creds = registry_token.credentials
    assert creds is not None
    scope = f"repository:{unique_repo}:pull"
    first = _post_form(
        token_server.realm,
        {
            "grant_type": "password",
            "username": creds.username,
            "password": creds.password,
            "service": SERVICE,
            "scope": scope,
            "client_id": "harness",
            "access_type": "offline",
        },
    )
    refresh_token = str(first["refresh_token"])

    second = _post_form(
        token_server.realm,
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "service": SERVICE, "scope": scope},
    )

    assert set(second) >= {"token", "access_token", "expires_in", "issued_at"}
    response = images.raw_request(
        "GET",
        f"{registry_token.url}/v2/{unique_repo}/manifests/v1",
        headers={"Authorization": f"Bearer {second['access_token']}", "Accept": images.ACCEPT_ALL},
    )
    assert response.status == 200
    assert response.body == image.raw
    grants = [(r.method, r.grant_type, r.client_id) for r in token_server.requests[-2:]]
    assert grants == [("POST", "password", "harness"), ("POST", "refresh_token", None)]


def test_token_server_bearer_validator_hook(token_server: TokenServer) -> None:
    token_server.bearer_validator = lambda presented: presented == "trusted-jwt"
    url = f"{token_server.realm}?service={SERVICE}&scope=repository:x:pull"

    accepted = images.raw_request("GET", url, headers={"Authorization": "Bearer trusted-jwt"})
    rejected = images.raw_request("GET", url, headers={"Authorization": "Bearer forged"})

    assert (accepted.status, rejected.status) == (200, 401)
    assert [(r.auth_scheme, r.status) for r in token_server.requests] == [("bearer", 200), ("bearer", 401)]


def test_tls_registry_needs_the_test_ca(registry_tls: Registry, unique_repo: str) -> None:
    image = images.make_image([10], seed=15)
    images.push(registry_tls, unique_repo, "v1", image)
    port = registry_tls.host.rpartition(":")[2]
    by_name = dataclasses.replace(registry_tls, url=f"https://localhost:{port}")
    assert images.get_manifest(by_name, unique_repo, "v1").data == image.raw

    ref = registry_tls.docker_ref(unique_repo, "v1")
    assert skopeo.inspect_raw(ref, tls_verify=True, cert_dir=registry_tls.cert_dir) == image.raw
    with pytest.raises(skopeo.SkopeoError, match="unknown authority"):
        skopeo.inspect_raw(ref, tls_verify=True)
    with pytest.raises(ssl.SSLCertVerificationError):
        images.get_manifest(dataclasses.replace(registry_tls, ca_path=None), unique_repo, "v1")


def test_mtls_registry_rejects_clients_without_certificate(registry_mtls: Registry, pki: PKI, unique_repo: str) -> None:
    image = images.make_image([10], seed=16)
    images.push(registry_mtls, unique_repo, "v1", image)
    ref = registry_mtls.docker_ref(unique_repo, "v1")
    assert skopeo.inspect_raw(ref, tls_verify=True, cert_dir=registry_mtls.cert_dir) == image.raw

    anonymous_tls = dataclasses.replace(registry_mtls, client_cert_path=None, client_key_path=None)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        images.get_manifest(anonymous_tls, unique_repo, "v1")
    with pytest.raises(skopeo.SkopeoError, match="bad certificate"):
        skopeo.inspect_raw(ref, tls_verify=True, cert_dir=pki.ca_cert_dir)


def test_factory_close_stops_its_registries(tmp_path: Path, pki: PKI) -> None:
    factory = RegistryFactory(tmp_path, pki)
    extra = factory(config={"http": {"headers": {"X-Harness": ["yes"]}}})
    assert images.raw_request("GET", f"{extra.url}/v2/").headers["X-Harness"] == "yes"

    factory.close()

    with pytest.raises(ConnectionRefusedError):
        images.raw_request("GET", f"{extra.url}/v2/")
