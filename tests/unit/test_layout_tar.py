"""The layout tar: byte-identical for the same content, manifests and index.json first, fixed ustar
headers; read in place or through a pipe; hostile or truncated archives refused with one line."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness import images

from fluxmirror.layout import LayoutError, TarLayout, TarStream, TarWriter, ref_descriptor
from fluxmirror.layout.names import blob_name
from fluxmirror.layout.ustar import build
from fluxmirror.oci.errors import DigestMismatchError
from fluxmirror.oci.manifests import parse_manifest

IMAGES = [images.make_image([3000, 70_000], seed=1), images.make_image([2_500_000], seed=2)]
LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
BIG = b"\x07" * 300  # a sha512 blob: its 141-character name needs the ustar prefix field
BIG_DIGEST = "sha512:" + hashlib.sha512(BIG).hexdigest()


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 1 << 20):
        yield data[start : start + (1 << 20)]


async def _archive() -> bytes:
    stream = io.BytesIO()
    writer = TarWriter(stream)
    for image in IMAGES:
        assert writer.add_bytes(blob_name(image.digest), image.raw)
    writer.add_index(
        ref_descriptor(parse_manifest(image.raw), f"127.0.0.1:5000/team/app:v{n}") for n, image in enumerate(IMAGES)
    )
    for image in IMAGES:
        assert writer.add_bytes(blob_name(image.config.digest), image.config.data)
        for layer in image.layers:
            assert await writer.add_stream(blob_name(layer.digest), layer.size, _chunks(layer.data))
    assert not writer.add_bytes(blob_name(IMAGES[0].digest), IMAGES[0].raw)  # stored once
    assert await writer.add_stream(blob_name(BIG_DIGEST), len(BIG), _chunks(BIG))
    writer.close()
    return stream.getvalue()


def _expected_order() -> list[str]:
    blobs = [blob_name(b.digest) for image in IMAGES for b in image.blobs]
    return ["oci-layout", *(blob_name(image.digest) for image in IMAGES), "index.json", *blobs, blob_name(BIG_DIGEST)]


async def test_two_writes_are_byte_identical_in_layout_order_with_fixed_headers() -> None:
    first, second = await _archive(), await _archive()
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == _expected_order()
        for member in members:
            assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (0, 0, 0, "", "")
            assert (member.mode, member.type) == (0o644, tarfile.REGTYPE)
            assert first[member.offset + 257 : member.offset + 265] == b"ustar\x0000"
        extracted = tar.extractfile(blob_name(IMAGES[1].layers[0].digest))
        assert extracted is not None and extracted.read() == IMAGES[1].layers[0].data
    assert first.endswith(bytes(1024))


async def test_the_writer_verifies_and_keeps_its_order() -> None:
    writer = TarWriter(io.BytesIO())
    layer = IMAGES[0].layers[0]
    with pytest.raises(ValueError, match=r"after index\.json"):
        await writer.add_stream(blob_name(layer.digest), layer.size, _chunks(layer.data))
    with pytest.raises(DigestMismatchError):
        writer.add_bytes(blob_name(layer.digest), b"not it")
    writer.add_index([])
    with pytest.raises(DigestMismatchError, match="content hashes to"):
        await writer.add_stream(blob_name(layer.digest), layer.size, _chunks(layer.data[:-1] + b"!"))
    with pytest.raises(ValueError, match="archive is invalid"):
        writer.add_bytes(blob_name(IMAGES[0].digest), IMAGES[0].raw)


async def test_the_seekable_reader_maps_members_and_streams_blobs(tmp_path: Path) -> None:
    path = tmp_path / "a.tar"
    path.write_bytes(await _archive())
    with await TarLayout.open(path) as layout:
        assert list(layout.members) == _expected_order()
        assert layout.extras == ()
        assert [d.annotations["org.opencontainers.image.ref.name"] for d in layout.index()] == [
            "127.0.0.1:5000/team/app:v0",
            "127.0.0.1:5000/team/app:v1",
        ]
        assert layout.read_small(IMAGES[0].digest, 1 << 20) == IMAGES[0].raw
        layer = IMAGES[1].layers[0]
        assert layout.has_blob(layer.digest, layer.size) and not layout.has_blob(layer.digest, 1)
        source = layout.blob_source()
        assert b"".join([c async for c in source.read(layer.digest, 0)]) == layer.data
        assert b"".join([c async for c in source.read(layer.digest, 1_000_001)]) == layer.data[1_000_001:]
        assert b"".join([c async for c in source.read(BIG_DIGEST, 0)]) == BIG
        with pytest.raises(LayoutError, match="not in the archive"):
            layout.member("sha256:" + "0" * 64)


async def test_the_pipe_reader_yields_members_in_order(tmp_path: Path) -> None:
    path = tmp_path / "a.tar"
    path.write_bytes(await _archive())
    bodies = {}
    with path.open("rb") as file:
        stream = TarStream(file, str(path))
        async for member in stream:
            if member.name == blob_name(IMAGES[1].layers[0].digest):
                bodies[member.name] = b"".join([c async for c in stream.body()])
            elif member.digest in (IMAGES[0].digest, IMAGES[1].digest):
                bodies[member.name] = await stream.read_small(member, 1 << 20)
            else:
                bodies[member.name] = b""  # skipped unread
    assert list(bodies) == _expected_order()
    assert bodies[blob_name(IMAGES[1].layers[0].digest)] == IMAGES[1].layers[0].data
    assert bodies[blob_name(IMAGES[0].digest)] == IMAGES[0].raw


def _tar(*members: tarfile.TarInfo, data: bytes = b"x") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        version = tarfile.TarInfo("oci-layout")
        version.size = len(LAYOUT)
        tar.addfile(version, io.BytesIO(LAYOUT))
        for member in members:
            if member.isreg():
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if member.isreg() else None)
    return buffer.getvalue()


def _link(name: str, kind: bytes, target: str = "/etc/shadow") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


HOSTILE = {
    "dotdot": (_tar(tarfile.TarInfo("../x")), "points outside the layout"),
    "nested-dotdot": (_tar(tarfile.TarInfo("blobs/../../x")), "points outside the layout"),
    "absolute": (_tar(tarfile.TarInfo("/etc/passwd")), "points outside the layout"),
    "symlink": (_tar(_link("blobs/sha256/" + "a" * 64, tarfile.SYMTYPE)), "is a symbolic link, not a regular file"),
    "hardlink": (_tar(_link("index.json", tarfile.LNKTYPE, "oci-layout")), "is a hard link"),
    "fifo": (_tar(_link("index.json", tarfile.FIFOTYPE, "")), "is a FIFO"),
    "bad-blob-name": (_tar(tarfile.TarInfo("blobs/sha256/zzz")), "'blobs/sha256/zzz' is not a blob name"),
    "twice": (_tar(tarfile.TarInfo("index.json"), tarfile.TarInfo("index.json")), "appears twice"),
    "not-a-tar": (b"\x1f\x8b" + bytes(2000), "checksum mismatch"),
}


@pytest.mark.parametrize("case", HOSTILE.values(), ids=HOSTILE.keys())
async def test_hostile_archives_are_refused_by_both_readers(tmp_path: Path, case: tuple[bytes, str]) -> None:
    content, message = case
    path = tmp_path / "hostile.tar"
    path.write_bytes(content)
    with pytest.raises(LayoutError, match=message) as caught:
        TarLayout(path)
    assert str(caught.value).startswith(f"{path}: ")
    with path.open("rb") as file, pytest.raises(LayoutError, match=message):
        [member async for member in TarStream(file, str(path))]


async def test_directories_and_extra_files_are_tolerated(tmp_path: Path) -> None:
    directory = tarfile.TarInfo("./blobs/sha256/")
    directory.type = tarfile.DIRTYPE
    content = _tar(
        directory, tarfile.TarInfo("./manifest.json"), tarfile.TarInfo("index.json"), data=b'{"manifests":[]}'
    )
    path = tmp_path / "a.tar"
    path.write_bytes(content)
    with TarLayout(path) as layout:
        assert (list(layout.members), layout.extras) == (["oci-layout", "index.json"], ("manifest.json",))
    with path.open("rb") as file:
        stream = TarStream(file)
        assert [m.name async for m in stream] == ["oci-layout", "index.json"]
        assert stream.extras == ["manifest.json"]


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (-1024 - 5, "member 'blobs/sha512/"),  # inside the last body
        (-1024, "without the end-of-archive blocks"),  # at a member boundary, end blocks missing
        (600, "needs"),  # inside the padding of the first body
        (1024 + 300, "truncated tar"),  # inside a header
    ],
    ids=["mid-body", "no-end-blocks", "first-body", "mid-header"],
)
async def test_a_truncated_archive_is_one_line(tmp_path: Path, cut: int, message: str) -> None:
    content = await _archive()
    path = tmp_path / "cut.tar"
    path.write_bytes(content[:cut])
    with pytest.raises(LayoutError, match="truncated tar") as caught:
        TarLayout(path)
    assert "\n" not in str(caught.value)
    with path.open("rb") as file, pytest.raises(LayoutError, match="truncated tar"):
        stream = TarStream(file, str(path))
        async for _member in stream:
            [c async for c in stream.body()]


def test_a_member_over_8_gib_uses_a_pax_size_record(tmp_path: Path) -> None:
    size = 8 * 1024**3 + 5
    name = blob_name("sha256:" + "b" * 64)
    path = tmp_path / "sparse.tar"
    with path.open("wb") as file:
        TarWriter(file).add_index([])
        file.write(build(name, size))
        file.truncate(file.tell() + size + (-size % 512))
        file.seek(0, os.SEEK_END)
        file.write(bytes(1024))
    with TarLayout(path) as layout:
        assert layout.members[name].size == size
