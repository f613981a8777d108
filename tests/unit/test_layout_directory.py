"""The layout directory: blobs land only verified and whole, by the algorithm their digest names, and
concurrent writers of index.json never lose each other's entries (skopeo #2184)."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from blake3 import blake3
from harness import images

from fluxmirror.layout import CONTAINERD_NAME, REF_NAME, LayoutDirectory, LayoutError, ref_descriptor
from fluxmirror.oci.digests import UnsupportedDigestError
from fluxmirror.oci.errors import DigestMismatchError
from fluxmirror.oci.manifests import Descriptor, parse_manifest

DATA = bytes(range(256)) * 9000  # 2.2 MiB: several chunks


def _digest(data: bytes, algorithm: str = "sha256") -> str:
    hasher = blake3() if algorithm == "blake3" else hashlib.new(algorithm)
    hasher.update(data)
    return f"{algorithm}:{hasher.hexdigest()}"


async def _chunks(data: bytes, size: int = 1 << 20) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _entry(name: str | None, digest: str, **extra: str) -> Descriptor:
    annotations = {REF_NAME: name} if name is not None else {}
    return Descriptor(media_type=images.OCI_MANIFEST, digest=digest, size=10, annotations=annotations | extra)


def test_a_missing_directory_becomes_an_empty_layout(tmp_path: Path) -> None:
    layout = LayoutDirectory(tmp_path / "new" / "layout")
    assert json.loads((layout.root / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    assert json.loads((layout.root / "index.json").read_bytes())["manifests"] == []
    assert (layout.root / "blobs").is_dir()
    assert layout.index() == []


def test_an_existing_layout_is_kept_and_a_foreign_version_refused(tmp_path: Path) -> None:
    LayoutDirectory(tmp_path).add_to_index([_entry("a:1", _digest(b"a"))])
    assert [d.annotations[REF_NAME] for d in LayoutDirectory(tmp_path).index()] == ["a:1"]
    (tmp_path / "oci-layout").write_text('{"imageLayoutVersion":"2.0.0"}')
    with pytest.raises(LayoutError, match=r"unsupported OCI image layout version '2\.0\.0'"):
        LayoutDirectory(tmp_path)


async def test_a_blob_is_written_verified_and_renamed(tmp_path: Path) -> None:
    layout = LayoutDirectory(tmp_path)
    digest = _digest(DATA)
    path = tmp_path / "blobs" / "sha256" / digest.removeprefix("sha256:")
    path.parent.mkdir(parents=True)
    path.with_name(path.name + ".part").write_bytes(b"stale part of an earlier run")
    assert not layout.has_blob(digest, len(DATA))
    await layout.write_blob(digest, len(DATA), _chunks(DATA))
    assert path.read_bytes() == DATA
    assert layout.has_blob(digest, len(DATA))
    assert not layout.has_blob(digest, len(DATA) + 1)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.parametrize(
    ("declared", "size", "message"),
    [
        (_digest(b"something else"), len(DATA), "content hashes to sha256:"),
        (_digest(DATA), len(DATA) + 1, "bytes, expected"),
        (_digest(DATA), len(DATA) - 1, "more than the expected"),
    ],
    ids=["digest", "short", "long"],
)
async def test_a_mismatch_leaves_nothing(tmp_path: Path, declared: str, size: int, message: str) -> None:
    layout = LayoutDirectory(tmp_path)
    with pytest.raises(DigestMismatchError, match=message):
        await layout.write_blob(declared, size, _chunks(DATA))
    assert list((tmp_path / "blobs" / "sha256").iterdir()) == []


@pytest.mark.parametrize("algorithm", ["sha512", "blake3"])
async def test_other_algorithms_land_in_their_own_directory(tmp_path: Path, algorithm: str) -> None:
    layout = LayoutDirectory(tmp_path)
    digest = _digest(DATA, algorithm)
    await layout.write_blob(digest, len(DATA), _chunks(DATA))
    assert (tmp_path / "blobs" / algorithm / digest.partition(":")[2]).read_bytes() == DATA
    wrong = f"{algorithm}:{_digest(b'x', algorithm).partition(':')[2]}"
    with pytest.raises(DigestMismatchError):
        await layout.write_blob(wrong, len(DATA), _chunks(DATA))


async def test_an_unknown_algorithm_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    layout = LayoutDirectory(tmp_path)
    with pytest.raises(UnsupportedDigestError, match='unsupported digest algorithm "md5"'):
        await layout.write_blob("md5:" + hashlib.md5(DATA).hexdigest(), len(DATA), _chunks(DATA))
    assert not (tmp_path / "blobs" / "md5").exists()


async def test_concurrent_writers_of_one_blob_take_turns(tmp_path: Path) -> None:
    import asyncio

    layout = LayoutDirectory(tmp_path)
    digest = _digest(DATA)
    await asyncio.gather(*(layout.write_blob(digest, len(DATA), _chunks(DATA)) for _ in range(3)))
    assert layout.read_small(digest, len(DATA)) == DATA


async def test_small_blobs_and_the_blob_source(tmp_path: Path) -> None:
    layout = LayoutDirectory(tmp_path)
    layout.write_small(_digest(b"{}"), b"{}")
    assert layout.read_small(_digest(b"{}"), 2) == b"{}"
    with pytest.raises(LayoutError, match="larger than 1 bytes"):
        layout.read_small(_digest(b"{}"), 1)
    with pytest.raises(DigestMismatchError):
        layout.write_small(_digest(b"{}"), b"[]")
    await layout.write_blob(_digest(DATA), len(DATA), _chunks(DATA))
    source = layout.blob_source()
    assert b"".join([chunk async for chunk in source.read(_digest(DATA), 0)]) == DATA
    tail = [chunk async for chunk in source.read(_digest(DATA), 1_500_000)]
    assert b"".join(tail) == DATA[1_500_000:]
    assert max(len(chunk) for chunk in tail) <= 1 << 20
    with pytest.raises(LayoutError, match="is missing"):
        [chunk async for chunk in source.read(_digest(b"absent"), 0)]


def test_ref_descriptor_names_the_full_reference_twice() -> None:
    image = images.make_image([100], seed=1)
    descriptor = ref_descriptor(parse_manifest(image.raw), "127.0.0.1:5000/team/app:v1")
    assert (descriptor.digest, descriptor.size, descriptor.media_type) == (image.digest, len(image.raw), images.OCI)
    assert descriptor.annotations == {
        REF_NAME: "127.0.0.1:5000/team/app:v1",
        CONTAINERD_NAME: "127.0.0.1:5000/team/app:v1",
    }


def test_index_entries_merge_by_ref_name_and_untagged_by_digest(tmp_path: Path) -> None:
    layout = LayoutDirectory(tmp_path)
    foreign = {"mediaType": images.OCI_MANIFEST, "digest": _digest(b"f"), "size": 1, "platform": {"os": "linux"}}
    (tmp_path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [foreign]}))
    layout.add_to_index([_entry("r/a:1", _digest(b"1")), _entry(None, _digest(b"ref")), _entry("r/b:1", _digest(b"2"))])
    layout.add_to_index([_entry("r/a:1", _digest(b"3"), note="kept"), _entry(None, _digest(b"ref"))])
    entries = layout.index()
    assert [(e.annotations.get(REF_NAME), e.digest) for e in entries] == [
        (None, _digest(b"f")),
        ("r/a:1", _digest(b"3")),
        (None, _digest(b"ref")),
        ("r/b:1", _digest(b"2")),
    ]
    assert entries[1].annotations["note"] == "kept"
    raw = json.loads((tmp_path / "index.json").read_bytes())
    assert raw["manifests"][0]["platform"] == {"os": "linux"}  # fields fluxmirror does not model survive
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".index")] == []


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"{", "index.json is not JSON"), (b'{"manifests": 3}', "not an image index")],
)
def test_a_broken_index_is_one_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    layout = LayoutDirectory(tmp_path)
    (tmp_path / "index.json").write_bytes(content)
    with pytest.raises(LayoutError, match=message):
        layout.index()


def _add_many(root: str, prefix: str, count: int) -> None:
    layout = LayoutDirectory(Path(root))
    for number in range(count):
        layout.add_to_index([_entry(f"{prefix}:{number}", _digest(f"{prefix}{number}".encode()))])


def test_two_processes_adding_at_once_keep_every_entry(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_add_many, args=(str(tmp_path), name, 40)) for name in ("r/a", "r/b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    names = {entry.annotations[REF_NAME] for entry in LayoutDirectory(tmp_path).index()}
    assert names == {f"{prefix}:{n}" for prefix in ("r/a", "r/b") for n in range(40)}


def test_a_held_lock_makes_another_writer_wait_then_fail(tmp_path: Path) -> None:
    holder = LayoutDirectory(tmp_path)
    other = LayoutDirectory(tmp_path, lock_timeout=0.3)
    with holder.lock(1):
        holder.add_to_index([_entry("r/a:1", _digest(b"1"))])  # re-entrant for its holder
        started = time.monotonic()
        with pytest.raises(LayoutError) as caught:
            other.add_to_index([_entry("r/b:1", _digest(b"2"))])
        assert time.monotonic() - started >= 0.3
    assert str(caught.value) == (
        f"{tmp_path}: another process is writing this layout (lock {tmp_path / '.fluxmirror.lock'} still held after 0.3s)"
    )
    other.add_to_index([_entry("r/b:1", _digest(b"2"))])
    assert len(other.index()) == 2
