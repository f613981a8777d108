"""Layouts written by fluxmirror.layout are read by skopeo and umoci, and theirs by ours: the format
is the common OCI image layout, with the full destination reference as `ref.name` (airgap.md §2.7)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness import images, skopeo
from harness.registry import Registry

from fluxmirror.layout import REF_NAME, LayoutDirectory, TarLayout, TarStream, TarWriter, ref_descriptor
from fluxmirror.layout.names import blob_name
from fluxmirror.oci.manifests import parse_manifest

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(shutil.which("umoci") is None, reason="umoci is not installed (make system-deps)"),
]

IMAGES = {
    "127.0.0.1:5000/team/app:v1": images.make_image([2000, 300_000], seed=31),
    "127.0.0.1:5000/team/other:v1": images.make_image([5000], seed=32),
}


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 1 << 16):
        yield data[start : start + (1 << 16)]


def _umoci(*args: str) -> str:
    result = subprocess.run(["umoci", *args], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def _our_layout(root: Path) -> LayoutDirectory:
    layout = LayoutDirectory(root)
    for reference, image in IMAGES.items():
        layout.write_small(image.digest, image.raw)
        layout.write_small(image.config.digest, image.config.data)
        for layer in image.layers:
            await layout.write_blob(layer.digest, layer.size, _chunks(layer.data))
        layout.add_to_index([ref_descriptor(parse_manifest(image.raw), reference)])
    return layout


async def _our_tar(path: Path) -> None:
    with path.open("wb") as file:
        writer = TarWriter(file)
        for image in IMAGES.values():
            writer.add_bytes(blob_name(image.digest), image.raw)
        writer.add_index(ref_descriptor(parse_manifest(image.raw), ref) for ref, image in IMAGES.items())
        for image in IMAGES.values():
            writer.add_bytes(blob_name(image.config.digest), image.config.data)
            for layer in image.layers:
                await writer.add_stream(blob_name(layer.digest), layer.size, _chunks(layer.data))
        writer.close()


async def test_skopeo_and_umoci_read_our_layout(tmp_path: Path, registry: Registry, unique_repo: str) -> None:
    root = tmp_path / "layout"
    await _our_layout(root)
    for reference, image in IMAGES.items():
        assert skopeo.inspect_raw(f"oci:{root}:{reference}") == image.raw
    reference, image = next(iter(IMAGES.items()))
    skopeo.copy(f"oci:{root}:{reference}", registry.docker_ref(unique_repo, "1"))
    assert images.get_manifest(registry, unique_repo, "1").digest == image.digest
    for blob in image.blobs:
        assert images.get_blob(registry, unique_repo, blob.digest) == blob.data
    assert set(_umoci("ls", "--layout", str(root)).split()) == set(IMAGES)


async def test_skopeo_193_does_not_see_docker_media_types_in_a_layout(tmp_path: Path) -> None:
    """A finding for export: skopeo's `oci:` transport (containers/image of 1.9.3) skips index.json
    entries whose media type is not OCI, so a Docker schema 2 image is found by umoci and by us
    but not by skopeo. If this starts failing, a newer skopeo reads them."""
    image = images.make_image([100], seed=34, media_type=images.DOCKER)
    layout = LayoutDirectory(tmp_path)
    layout.write_small(image.digest, image.raw)
    layout.add_to_index([ref_descriptor(parse_manifest(image.raw), "r.io/d:1")])
    assert _umoci("ls", "--layout", str(tmp_path)).split() == ["r.io/d:1"]
    with pytest.raises(skopeo.SkopeoError, match="no descriptor found"):
        skopeo.inspect_raw(f"oci:{tmp_path}:r.io/d:1")


async def test_skopeo_reads_our_tar(tmp_path: Path, registry: Registry, unique_repo: str) -> None:
    archive = tmp_path / "mirror.tar"
    await _our_tar(archive)
    for reference, image in IMAGES.items():
        assert skopeo.inspect_raw(f"oci-archive:{archive}:{reference}") == image.raw
    reference, image = list(IMAGES.items())[1]
    skopeo.copy(f"oci-archive:{archive}:{reference}", registry.docker_ref(unique_repo, "2"))
    assert images.get_manifest(registry, unique_repo, "2").digest == image.digest


async def _read_all(layout: LayoutDirectory | TarLayout, digest: str) -> bytes:
    return b"".join([chunk async for chunk in layout.blob_source().read(digest, 0)])


async def test_we_read_a_layout_and_an_archive_skopeo_wrote(
    tmp_path: Path, registry: Registry, unique_repo: str
) -> None:
    image = images.make_image([4000, 90_000], seed=33)
    images.push(registry, unique_repo, "1.0", image)
    skopeo.copy(registry.docker_ref(unique_repo, "1.0"), f"oci:{tmp_path / 'dir'}:v1")
    skopeo.copy(registry.docker_ref(unique_repo, "1.0"), f"oci-archive:{tmp_path / 'a.tar'}:v1")
    layout = LayoutDirectory(tmp_path / "dir")
    with TarLayout(tmp_path / "a.tar") as archive:
        for ours in (layout, archive):
            (entry,) = ours.index()
            assert (entry.annotations[REF_NAME], entry.digest) == ("v1", image.digest)
            assert ours.read_small(entry.digest, 1 << 20) == image.raw
            for blob in image.blobs:
                assert await _read_all(ours, blob.digest) == blob.data
    with (tmp_path / "a.tar").open("rb") as file:
        names = [member.name async for member in TarStream(file)]
    assert {blob_name(b.digest) for b in (*image.blobs, image.document)} | {"oci-layout", "index.json"} == set(names)


async def test_we_read_a_layout_umoci_wrote(tmp_path: Path) -> None:
    root = tmp_path / "umoci"
    _umoci("init", "--layout", str(root))
    _umoci("new", "--image", f"{root}:t1")
    layout = LayoutDirectory(root)
    (entry,) = layout.index()
    assert entry.annotations[REF_NAME] == "t1"
    manifest = parse_manifest(layout.read_small(entry.digest, 1 << 20), entry.media_type, entry.digest)
    assert manifest.config is not None
    config = json.loads(await _read_all(layout, manifest.config.digest))
    assert config["rootfs"]["type"] == "layers"
