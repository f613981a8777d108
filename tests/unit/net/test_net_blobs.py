"""Blob transfer against the in-memory registry: exists, mount, small blobs sent whole, streamed and
chunked uploads, resumes on either side with `Range`, and nothing committed (for a small blob,
never sent whole) when the bytes do not hash to the digest."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable

import pytest
from harness import images
from harness.faultproxy import CutDownload, CutUpload, FaultProxy, Stall
from registry.fixtures import OCIRegistryFactory
from registry.server import OCIRegistry

from fluxmirror.oci.blobs import WHOLE_MAX, BytesSource, Placement, RegistrySource, blob_exists, transfer_blob
from fluxmirror.oci.client import RegistryClient
from fluxmirror.oci.errors import DigestMismatchError, RegistryError
from fluxmirror.oci.manifests import Descriptor
from fluxmirror.oci.pacing import BURST_SECONDS, Bandwidth

MakeClient = Callable[..., RegistryClient]
STREAMED = WHOLE_MAX + 1  # the smallest blob that is streamed in PATCHes rather than sent whole


def _blob(size: int, seed: int) -> tuple[bytes, Descriptor]:
    data = random.Random(seed).randbytes(size)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return data, Descriptor(media_type="application/octet-stream", digest=digest, size=size)


def _pushed_layer(server: OCIRegistry, repository: str, size: int, seed: int) -> tuple[bytes, Descriptor]:
    image = images.make_image([size], seed=seed)
    images.push(server.registry, repository, "v1", image)
    layer = image.layers[0]
    return layer.data, Descriptor(media_type=layer.media_type, digest=layer.digest, size=layer.size)


def _calls(server: OCIRegistry) -> list[tuple[str, str]]:
    """(method, path without query) of every request but the ping, upload ids replaced by `<id>`."""
    calls = []
    for exchange in server.exchanges:
        path = exchange.target.split("?", 1)[0]
        if "/blobs/uploads/" in path and not path.endswith("/uploads/"):
            path = path.rsplit("/", 1)[0] + "/<id>"
        if path != "/v2/":
            calls.append((exchange.method, path))
    return calls


@pytest.mark.parametrize("size", [2000, STREAMED])
async def test_a_blob_already_there_is_not_sent(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient, size: int
) -> None:
    """One request finds it there: a small blob's POST asks to mount it from its own repository (a
    201 says it is there, a 202 would have opened its upload), a larger one's HEAD."""
    server = oci_registry_factory()
    data, blob = _pushed_layer(server, "app", size, seed=41)
    server.reset()

    placement = await transfer_blob(BytesSource(data), make_client(server.host), "app", blob)

    assert placement is Placement.EXISTING
    if size == STREAMED:
        expected = [("HEAD", f"/v2/app/blobs/{blob.digest}")]
    else:
        expected = [("POST", f"/v2/app/blobs/uploads/?mount={blob.digest}&from=app")]
    assert [(e.method, e.target) for e in server.exchanges if e.target != "/v2/"] == expected


async def test_a_blob_in_a_sibling_repository_is_mounted(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    server = oci_registry_factory()
    data, blob = _pushed_layer(server, "team/src", 2000, seed=42)
    server.reset()

    placement = await transfer_blob(
        BytesSource(b"never read"), make_client(server.host), "team/dst", blob, mount_from="team/src"
    )

    assert placement is Placement.MOUNTED
    assert [(e.method, e.target) for e in server.exchanges if e.target != "/v2/"] == [
        ("POST", f"/v2/team/dst/blobs/uploads/?mount={blob.digest}&from=team/src"),
    ]
    assert images.get_blob(server.registry, "team/dst", blob.digest) == data


async def test_a_mount_the_registry_declines_becomes_an_upload(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    """The registry answers a mount it cannot do with a fresh upload session (202), which is used."""
    server = oci_registry_factory()
    data, blob = _blob(3000, seed=43)

    placement = await transfer_blob(BytesSource(data), make_client(server.host), "dst", blob, mount_from="elsewhere")

    assert placement is Placement.PUSHED
    assert _calls(server) == [
        ("POST", "/v2/dst/blobs/uploads/"),
        ("PUT", "/v2/dst/blobs/uploads/<id>"),
    ]
    assert images.get_blob(server.registry, "dst", blob.digest) == data


@pytest.mark.parametrize(("size", "chunk_size"), [(1, 0), (WHOLE_MAX, 0), (4000, 4000)])
async def test_a_small_blob_goes_whole_in_the_committing_put(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient, size: int, chunk_size: int
) -> None:
    """Up to 8 MiB (and no larger than a `maxChunkSize`), the body rides the PUT that commits it:
    no HEAD (the POST's mount from the repository itself asks), no PATCH, no empty PUT."""
    server = oci_registry_factory()
    data, blob = _blob(size, seed=49)

    placement = await transfer_blob(BytesSource(data), make_client(server.host), "dst", blob, chunk_size=chunk_size)

    assert placement is Placement.PUSHED
    assert [(e.method, e.target.split("?")[1] if e.method == "POST" else "") for e in server.exchanges[1:]] == [
        ("POST", f"mount={blob.digest}&from=dst"),
        ("PUT", ""),
    ]
    [put] = [e for e in server.exchanges if e.method == "PUT"]
    assert put.target.endswith(f"?digest={blob.digest}")
    assert (put.headers["Content-Length"], put.headers["Content-Type"]) == (str(size), "application/octet-stream")
    assert images.get_blob(server.registry, "dst", blob.digest) == data


async def test_a_small_blob_sent_whole_is_read_under_the_bandwidth_cap(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    """Its body is read through the run's `--max-bandwidth` bucket like a streamed one's, so 300 kB
    at 1 MB/s take about 0.3 s less the bucket's burst, before the PUT carrying them goes."""
    server = oci_registry_factory()
    data, blob = _blob(300_000, seed=51)

    started = time.monotonic()
    placement = await transfer_blob(
        BytesSource(data), make_client(server.host), "dst", blob, bandwidth=Bandwidth(1_000_000)
    )
    elapsed = time.monotonic() - started

    assert placement is Placement.PUSHED
    assert [method for method, _ in _calls(server)] == ["POST", "PUT"]
    assert elapsed >= 0.9 * (0.3 - BURST_SECONDS)
    assert images.get_blob(server.registry, "dst", blob.digest) == data


async def test_a_blob_over_the_whole_size_is_streamed(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    server = oci_registry_factory()
    data, blob = _blob(STREAMED, seed=50)

    placement = await transfer_blob(BytesSource(data), make_client(server.host), "dst", blob)

    assert placement is Placement.PUSHED
    assert _calls(server)[1:] == [
        ("POST", "/v2/dst/blobs/uploads/"),
        ("PATCH", "/v2/dst/blobs/uploads/<id>"),
        ("PUT", "/v2/dst/blobs/uploads/<id>"),
    ]
    [patch] = [e for e in server.exchanges if e.method == "PATCH"]
    [commit] = [e for e in server.exchanges if e.method == "PUT"]
    assert (patch.headers["Content-Length"], commit.headers["Content-Length"]) == (str(STREAMED), "0")
    assert images.get_blob(server.registry, "dst", blob.digest) == data


async def test_a_source_that_breaks_mid_blob_is_resumed_with_range(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    source_registry, destination = oci_registry_factory(), oci_registry_factory()
    data, blob = _pushed_layer(source_registry, "src", STREAMED + 200_000, seed=44)

    with FaultProxy(upstream=source_registry.registry, blob_host=False) as proxy:
        proxy.add(CutDownload(after_bytes=100_000))
        source = RegistrySource(make_client(proxy.host), "src")
        placement = await transfer_blob(source, make_client(destination.host), "dst", blob)

        downloads = [r for r in proxy.requests if r.path.endswith(blob.digest)]
        assert [(r.status, r.headers.get("Range"), r.response_bytes) for r in downloads] == [
            (200, None, 100_000),
            (206, "bytes=100000-", blob.size - 100_000),
        ]
    assert placement is Placement.PUSHED
    assert _calls(destination)[-2:] == [("PATCH", "/v2/dst/blobs/uploads/<id>"), ("PUT", "/v2/dst/blobs/uploads/<id>")]
    assert images.get_blob(destination.registry, "dst", blob.digest) == data


async def test_a_destination_that_breaks_mid_upload_is_resumed_where_it_stands(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    destination = oci_registry_factory()
    data, blob = _blob(STREAMED + 200_000, seed=45)

    with FaultProxy(upstream=destination.registry, blob_host=False) as proxy:
        proxy.add(CutUpload(after_bytes=70_000))
        placement = await transfer_blob(BytesSource(data), make_client(proxy.host), "dst", blob)

    assert placement is Placement.PUSHED
    patches = [e for e in destination.exchanges if e.method == "PATCH"]
    assert [e.headers.get("Content-Range") for e in patches] == [None, f"70000-{blob.size - 1}"]
    assert _calls(destination) == [
        ("HEAD", f"/v2/dst/blobs/{blob.digest}"),
        ("POST", "/v2/dst/blobs/uploads/"),
        ("PATCH", "/v2/dst/blobs/uploads/<id>"),
        ("GET", "/v2/dst/blobs/uploads/<id>"),  # how much do you hold?
        ("PATCH", "/v2/dst/blobs/uploads/<id>"),
        ("PUT", "/v2/dst/blobs/uploads/<id>"),
    ]
    assert images.get_blob(destination.registry, "dst", blob.digest) == data


async def test_a_chunked_upload_sends_consecutive_ranges(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    server = oci_registry_factory()
    data, blob = _blob(2500, seed=46)

    placement = await transfer_blob(BytesSource(data), make_client(server.host), "dst", blob, chunk_size=1000)

    assert placement is Placement.PUSHED
    patches = [e for e in server.exchanges if e.method == "PATCH"]
    assert [(e.headers["Content-Range"], e.headers["Content-Length"]) for e in patches] == [
        ("0-999", "1000"),
        ("1000-1999", "1000"),
        ("2000-2499", "500"),
    ]
    [commit] = [e for e in server.exchanges if e.method == "PUT"]
    assert commit.target.endswith(f"?digest={blob.digest}")
    assert images.get_blob(server.registry, "dst", blob.digest) == data


@pytest.mark.parametrize(
    ("size", "sent"),
    [
        (5000, [("POST", "/v2/dst/blobs/uploads/")]),
        (2_500_000, [("POST", "/v2/dst/blobs/uploads/"), ("PUT", "/v2/dst/blobs/uploads/<id>")]),
        (
            STREAMED,
            [
                ("HEAD", "/v2/dst/blobs/<digest>"),
                ("POST", "/v2/dst/blobs/uploads/"),
                ("PATCH", "/v2/dst/blobs/uploads/<id>"),
            ],
        ),
    ],
)
async def test_content_that_does_not_hash_to_the_digest_is_cancelled_not_committed(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient, size: int, sent: list[tuple[str, str]]
) -> None:
    """A streamed body is checked as it passes, so only its commit can be withheld; a small one
    rides its committing PUT with its last piece held back until the check, so it never reaches the
    registry whole (a body of one piece is not sent at all)."""
    server = oci_registry_factory()
    data, blob = _blob(size, seed=47)
    forged = bytes([data[0] ^ 1]) + data[1:]
    client = make_client(server.host)

    with pytest.raises(DigestMismatchError) as caught:
        await transfer_blob(BytesSource(forged), client, "dst", blob)

    actual = "sha256:" + hashlib.sha256(forged).hexdigest()
    assert str(caught.value) == f"blob {blob.digest}: content hashes to {actual}"
    assert not caught.value.temporary
    assert [(m, p.replace(blob.digest, "<digest>")) for m, p in _calls(server)] == [
        *sent,
        ("DELETE", "/v2/dst/blobs/uploads/<id>"),
    ]
    assert not await blob_exists(client, "dst", blob.digest)
    assert not await blob_exists(client, "dst", actual)
    [cancelled] = [e.target for e in server.exchanges if e.method == "DELETE"]
    with pytest.raises(images.RegistryError, match="HTTP 404"):  # the session is gone, not left dangling
        images.Client(server.registry).request("GET", cancelled, ok=(204,))


async def test_a_permanent_source_failure_mid_upload_is_reported_as_the_sources_error(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    source_registry, destination = oci_registry_factory(), oci_registry_factory()
    _, blob = _blob(5000, seed=48)  # never pushed to the source
    source = RegistrySource(make_client(source_registry.host, retry_delays=()), "src")

    with pytest.raises(RegistryError) as caught:
        await transfer_blob(source, make_client(destination.host, retry_delays=()), "dst", blob)

    assert (caught.value.status, caught.value.temporary) == (404, False)
    assert [d.code for d in caught.value.diagnostics] == ["BLOB_UNKNOWN"]
    assert len([r for r in source_registry.requests if r.method == "GET" and blob.digest in r.target]) == 1


async def test_a_chunked_upload_reads_its_source_in_one_request(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    source_registry, destination = oci_registry_factory(), oci_registry_factory()
    data, blob = _pushed_layer(source_registry, "src", 300_000, seed=49)

    with FaultProxy(upstream=source_registry.registry, blob_host=False) as proxy:
        source = RegistrySource(make_client(proxy.host), "src")
        placement = await transfer_blob(source, make_client(destination.host), "dst", blob, chunk_size=64_000)
        downloads = [(r.headers.get("Range"), r.response_bytes) for r in proxy.requests if r.path.endswith(blob.digest)]

    assert placement is Placement.PUSHED
    assert downloads == [(None, blob.size)]
    patches = [e.headers["Content-Range"] for e in destination.exchanges if e.method == "PATCH"]
    assert patches == [f"{start}-{min(start + 64_000, blob.size) - 1}" for start in range(0, blob.size, 64_000)]
    assert images.get_blob(destination.registry, "dst", blob.digest) == data


@pytest.mark.parametrize(
    ("size", "there", "sent"),
    [
        (3000, False, ["POST", "PUT"]),
        (3000, True, ["POST"]),
        (STREAMED, False, ["HEAD", "POST", "PATCH", "PUT"]),
    ],
    ids=["small", "small-there", "streamed"],
)
async def test_the_source_read_starts_beside_the_post(
    oci_registry_factory: OCIRegistryFactory, make_client: MakeClient, size: int, there: bool, sent: list[str]
) -> None:
    """From a registry, a blob's GET goes out while the POST that opens its upload (held 0.3 s) is
    under way, so the body is on its way when the session opens. A small blob's POST asks the
    destination repository for it: when it is there, the read is dropped and nothing is uploaded."""
    source_registry, destination = oci_registry_factory(), oci_registry_factory()
    data, blob = _pushed_layer(source_registry, "src", size, seed=52)
    if there:
        images.push(destination.registry, "dst", "v1", images.make_image([size], seed=52))
    destination.reset()

    with (
        FaultProxy(upstream=source_registry.registry, blob_host=False) as source_proxy,
        FaultProxy(upstream=destination.registry, blob_host=False) as destination_proxy,
    ):
        destination_proxy.add(Stall(0.3, method="POST"))
        source = RegistrySource(make_client(source_proxy.host), "src")
        placement = await transfer_blob(source, make_client(destination_proxy.host), "dst", blob)
        [post] = [r for r in destination_proxy.requests if r.method == "POST"]
        reads = [r for r in source_proxy.requests if r.method == "GET" and r.path.endswith(blob.digest)]

    assert placement is (Placement.EXISTING if there else Placement.PUSHED)
    assert len(reads) == 1 and reads[0].started < post.finished
    assert [e.method for e in destination.exchanges if e.target != "/v2/"] == sent
    assert images.get_blob(destination.registry, "dst", blob.digest) == data
