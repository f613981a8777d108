"""Content addressed by sha512 or blake3 is copied and verified by that algorithm, through the same
blob and manifest code as sha256; content that lies fails as a mismatch of that algorithm, and an
algorithm fluxmirror does not know fails as such, before anything is written.

docker-registry 2.8 stores sha256 only, so these run against the in-process registry, which stores
all three (tests/registry/storage.py)."""

from __future__ import annotations

import hashlib
import json

import pytest
from registry.fixtures import OCIRegistryFactory
from registry.server import OCIRegistry
from registry.storage import digest_by

from fluxmirror.auth.credentials import ANONYMOUS, Credential
from fluxmirror.errors import FluxMirrorError
from fluxmirror.http.session import HttpSession
from fluxmirror.oci.client import Registries
from fluxmirror.oci.copy import CopySession, copy_manifest
from fluxmirror.oci.digests import UnsupportedDigestError, check_content, digest_of, new_hasher
from fluxmirror.oci.errors import DigestMismatchError
from fluxmirror.oci.reference import is_digest, parse_repository

CONFIG = b'{"architecture":"amd64","os":"linux"}'
LAYER = bytes(range(256)) * 1000


class Anonymous:
    async def resolve(self, registry: str, repository: str) -> Credential:
        return ANONYMOUS


def seed(registry: OCIRegistry, algorithm: str, *, manifest_by_digest: bool = False) -> tuple[str, bytes]:
    """An image whose config and layer are addressed with `algorithm`, tagged `v1` (and, with
    `manifest_by_digest`, also stored under its own `algorithm` digest); returns the manifest's
    reference and bytes."""
    config, layer = digest_by(CONFIG, algorithm), digest_by(LAYER, algorithm)
    registry.storage.put_blob("app", CONFIG, config)
    registry.storage.put_blob("app", LAYER, layer)
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": len(CONFIG)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": len(LAYER)}],
        }
    ).encode()
    reference = digest_by(raw, algorithm) if manifest_by_digest else "v1"
    registry.storage.put_manifest("app", reference, raw, "application/vnd.oci.image.manifest.v1+json")
    if manifest_by_digest:
        registry.storage.put_manifest("app", "v1", raw, "application/vnd.oci.image.manifest.v1+json")
    return reference, raw


@pytest.mark.parametrize("algorithm", ["sha512", "blake3"])
async def test_content_is_copied_and_verified_by_its_algorithm(
    oci_registry_factory: OCIRegistryFactory, http: HttpSession, algorithm: str
) -> None:
    source_registry, destination = oci_registry_factory(), oci_registry_factory()
    reference, raw = seed(source_registry, algorithm, manifest_by_digest=True)
    registries = Registries(http, Anonymous(), retry_delays=())
    source, target = parse_repository(f"{source_registry.host}/app"), parse_repository(f"{destination.host}/app")
    manifest = await registries.client(source.registry).get_manifest(source.path, reference)
    assert manifest is not None and manifest.digest == reference
    await copy_manifest(CopySession(registries), source, target, manifest, "v1")
    assert destination.storage.blob("app", digest_by(LAYER, algorithm)) == LAYER
    assert destination.storage.blob("app", digest_by(CONFIG, algorithm)) == CONFIG
    assert destination.storage.manifest("app", "v1").data == raw
    blob_digests = {
        target.split("digest=")[1].replace("%3A", ":")
        for target in (e.target for e in destination.exchanges)
        if "digest=" in target
    }
    assert blob_digests == {digest_by(CONFIG, algorithm), digest_by(LAYER, algorithm)}  # never a sha256 stand-in


async def test_a_lying_blob_fails_as_a_mismatch_of_its_algorithm(
    oci_registry_factory: OCIRegistryFactory, http: HttpSession
) -> None:
    source_registry, destination = oci_registry_factory(), oci_registry_factory()
    seed(source_registry, "blake3")
    layer = digest_by(LAYER, "blake3")
    source_registry.storage._blobs[layer] = LAYER[:-1] + b"!"  # the registry now serves other bytes
    registries = Registries(http, Anonymous(), retry_delays=())
    source, target = parse_repository(f"{source_registry.host}/app"), parse_repository(f"{destination.host}/app")
    manifest = await registries.client(source.registry).get_manifest(source.path, "v1")
    assert manifest is not None
    with pytest.raises(DigestMismatchError, match=f"blob {layer}: content hashes to blake3:"):
        await copy_manifest(CopySession(registries), source, target, manifest, "v1")
    assert not [e for e in destination.exchanges if e.method == "PUT" and "/manifests/" in e.target]


def test_digests_by_algorithm() -> None:
    data = b"fluxmirror"
    assert digest_of(data) == "sha256:" + hashlib.sha256(data).hexdigest()
    assert digest_of(data, "sha512") == "sha512:" + hashlib.sha512(data).hexdigest()
    blake3 = digest_of(data, "blake3")
    assert blake3.startswith("blake3:") and len(blake3) == len("blake3:") + 64 and is_digest(blake3)
    check_content(data, blake3, "blob")
    with pytest.raises(DigestMismatchError, match=r"^blob: content hashes to blake3:"):
        check_content(data + b"!", blake3, "blob")
    assert not is_digest("blake3:" + "a" * 63)


@pytest.mark.parametrize("digest", ["sha384:" + "a" * 96, "md5:" + "a" * 32])
def test_an_unknown_algorithm_is_unsupported_not_a_mismatch(digest: str) -> None:
    with pytest.raises(UnsupportedDigestError) as caught:
        new_hasher(digest)
    assert str(caught.value) == f'{digest}: unsupported digest algorithm "{digest.partition(":")[0]}"'
    assert isinstance(caught.value, FluxMirrorError) and not isinstance(caught.value, DigestMismatchError)
