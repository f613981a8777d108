"""The registry client's copy path against real registries, cross-checked with skopeo."""

from __future__ import annotations

import pytest
from harness import images, skopeo
from harness.registry import Registry, RegistryFactory

from fluxmirror.auth.credentials import ANONYMOUS, Credential
from fluxmirror.http.session import HttpSession
from fluxmirror.oci.client import USER_AGENT, Registries
from fluxmirror.oci.copy import CopySession, copy_manifest
from fluxmirror.oci.reference import Repository

pytestmark = pytest.mark.registry


class _Anonymous:
    async def resolve(self, registry: str, repository: str) -> Credential:
        return ANONYMOUS


@pytest.fixture(scope="module")
def destination(registry_factory: RegistryFactory) -> Registry:
    return registry_factory()


async def _copy(
    source: Registry, src_repo: str, destination: Registry, dst_repo: str, tag: str, chunk: int = 0
) -> None:
    async with HttpSession(user_agent=USER_AGENT) as transport:
        session = CopySession(Registries(transport, _Anonymous()), chunk_size_for=lambda _r: chunk)
        src = Repository(source.host, src_repo)
        manifest = await session.registries.client(source.host).get_manifest(src_repo, tag)
        assert manifest is not None
        await copy_manifest(session, src, Repository(destination.host, dst_repo), manifest, tag)


@pytest.mark.parametrize("media_type", [images.OCI, images.DOCKER], ids=["oci", "docker"])
async def test_image_copied_byte_for_byte(
    registry: Registry, destination: Registry, unique_repo: str, media_type: str
) -> None:
    image = images.make_image([3000, 70_000], seed=11, media_type=media_type)
    images.push(registry, unique_repo, "1.0.0", image)
    await _copy(registry, unique_repo, destination, unique_repo, "1.0.0")
    assert skopeo.inspect_raw(destination.docker_ref(unique_repo, "1.0.0")) == image.raw
    for blob in image.blobs:
        assert images.get_blob(destination, unique_repo, blob.digest) == blob.data


async def test_index_children_and_blobs_copied(registry: Registry, destination: Registry, unique_repo: str) -> None:
    children = [images.make_image([1000], seed=seed) for seed in (21, 22)]
    index = images.make_index(children, ["linux/amd64", "linux/arm64"])
    images.push(registry, unique_repo, "2.0", index)
    await _copy(registry, unique_repo, destination, unique_repo, "2.0")
    assert skopeo.inspect_raw(destination.docker_ref(unique_repo, "2.0")) == index.raw
    for child in children:
        assert images.get_manifest(destination, unique_repo, child.digest).data == child.raw


async def test_chunked_upload(registry: Registry, destination: Registry, unique_repo: str) -> None:
    artifact = images.make_artifact(seed=5, layer_sizes=(10 * 1024 + 7,))
    images.push(registry, unique_repo, "c", artifact)
    await _copy(registry, unique_repo, destination, unique_repo, "c", chunk=4096)
    assert images.get_manifest(destination, unique_repo, "c").digest == artifact.digest
    layer = artifact.layers[0]
    assert images.get_blob(destination, unique_repo, layer.digest) == layer.data


async def test_tag_listing_follows_link_pages(registry: Registry, unique_repo: str) -> None:
    names = [f"1.0.{number}" for number in range(7)]
    for number, tag in enumerate(names):
        images.push(registry, unique_repo, tag, images.make_artifact(seed=60 + number))
    async with HttpSession(user_agent=USER_AGENT) as transport:
        client = Registries(transport, _Anonymous()).client(registry.host)
        assert sorted(await client.list_tags(unique_repo, page_size=2)) == sorted(names)
        assert await client.list_tags(unique_repo) == images.list_tags(registry, unique_repo)
