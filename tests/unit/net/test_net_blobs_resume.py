"""Uploads resumed across runs (docs/sync.md#resume), against the in-memory registry: a session an
earlier transfer recorded is continued where the registry says it stands, a stale record starts over
cleanly, a cancelled transfer leaves its recorded session alone, and a record never outlives its
upload."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from harness import images
from registry.fixtures import OCIRegistryFactory
from registry.server import OCIRegistry

from fluxmirror.api.config import API_VERSION, KIND, Config, Host
from fluxmirror.auth.credentials import ANONYMOUS, Credential
from fluxmirror.http.session import HttpSession
from fluxmirror.oci.blobs import WHOLE_MAX, BytesSource, Placement, transfer_blob
from fluxmirror.oci.client import Registries, RegistryClient
from fluxmirror.oci.errors import DigestMismatchError
from fluxmirror.oci.manifests import Descriptor
from fluxmirror.oci.resumable import NO_JOURNAL, RecordedUpload, UploadKey
from fluxmirror.sync.engine import RESUMABLE_CHUNK, copy_session
from fluxmirror.sync.options import SyncOptions
from fluxmirror.sync.uploads import StateDirJournal

MakeClient = Callable[..., RegistryClient]
SIZE, CHUNK = 5000, 1000


def _blob(size: int, seed: int) -> tuple[bytes, Descriptor]:
    data = random.Random(seed).randbytes(size)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return data, Descriptor(media_type="application/octet-stream", digest=digest, size=size)


class StallingSource:
    """The blob's bytes up to `stall_at`, then nothing more, ever: the run is about to be killed."""

    def __init__(self, data: bytes, stall_at: int) -> None:
        self.data = data
        self.stall_at = stall_at

    async def read(self, digest: str, offset: int) -> AsyncIterator[bytes]:
        if offset < self.stall_at:
            yield self.data[offset : self.stall_at]
        await asyncio.Event().wait()
        yield b""  # never reached


def _records(state: Path) -> list[dict[str, object]]:
    return [json.loads(path.read_bytes()) for path in sorted((state / "uploads").glob("*"))]


def _uploads(server: OCIRegistry) -> list[tuple[str, str | None]]:
    """(method, Content-Range) of every request on an upload session."""
    return [
        (e.method, e.headers.get("Content-Range"))
        for e in server.exchanges
        if "/blobs/uploads/" in e.target and not e.target.split("?")[0].endswith("/uploads/")
    ]


async def _cancelled_mid_chunk(
    client: RegistryClient, server: OCIRegistry, journal: StateDirJournal, data: bytes, blob: Descriptor
) -> None:
    """A transfer in CHUNK pieces whose source stalls at byte 2500, cancelled (as a signal cancels
    it) once the registry has the completed chunks and the third is under way."""
    transfer = asyncio.ensure_future(
        transfer_blob(StallingSource(data, 2500), client, "dst", blob, chunk_size=CHUNK, journal=journal)
    )
    for _ in range(500):
        if [r.method for r in server.requests].count("PATCH") == 3:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError(f"the transfer never reached its third chunk: {server.requests}")
    await asyncio.sleep(0.1)  # the third chunk's first 500 bytes reach the registry
    transfer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await transfer


@pytest.mark.parametrize("keep_partial_chunks", [True, False], ids=["real-offset", "whole-chunks"])
async def test_a_cancelled_transfer_keeps_its_recorded_session_and_the_next_continues_it(
    tmp_path: Path, oci_registry_factory: OCIRegistryFactory, make_client: MakeClient, keep_partial_chunks: bool
) -> None:
    server = oci_registry_factory(keep_partial_chunks=keep_partial_chunks)
    data, blob = _blob(SIZE, seed=91)
    journal = StateDirJournal(str(tmp_path))

    await _cancelled_mid_chunk(make_client(server.host), server, journal, data, blob)

    assert _uploads(server) == [("PATCH", "0-999"), ("PATCH", "1000-1999"), ("PATCH", "2000-2999")]  # no DELETE
    [record] = _records(tmp_path)
    assert (record["registry"], record["repository"], record["digest"]) == (server.host, "dst", blob.digest)
    assert (record["size"], record["offset"]) == (SIZE, 2000)
    server.reset()

    placement = await transfer_blob(
        BytesSource(data), make_client(server.host), "dst", blob, chunk_size=CHUNK, journal=journal
    )

    assert placement is Placement.PUSHED
    held = 2500 if keep_partial_chunks else 2000  # what the registry says it holds, not the record
    sent = [("GET", None)] + [
        ("PATCH", f"{start}-{min(start + CHUNK, SIZE) - 1}") for start in range(held, SIZE, CHUNK)
    ]
    assert _uploads(server) == [*sent, ("PUT", None)]
    assert images.get_blob(server.registry, "dst", blob.digest) == data
    assert _records(tmp_path) == []


async def test_a_session_the_registry_lost_starts_over(
    tmp_path: Path, oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    server = oci_registry_factory()
    data, blob = _blob(SIZE, seed=92)
    journal = StateDirJournal(str(tmp_path))
    await _cancelled_mid_chunk(make_client(server.host), server, journal, data, blob)
    server.storage.purge_uploads()  # purged, or the registry restarted without its uploads
    server.reset()

    placement = await transfer_blob(
        BytesSource(data), make_client(server.host), "dst", blob, chunk_size=CHUNK, journal=journal
    )

    assert placement is Placement.PUSHED
    assert _uploads(server)[:2] == [("GET", None), ("PATCH", "0-999")]
    assert [e.method for e in server.exchanges if e.target.endswith("/blobs/uploads/")] == ["POST"]
    assert images.get_blob(server.registry, "dst", blob.digest) == data
    assert _records(tmp_path) == []


@pytest.mark.parametrize("recorded", [3000, SIZE + 1], ids=["more-than-held", "beyond-the-blob"])
async def test_a_record_the_registry_disagrees_with_is_abandoned_and_the_upload_starts_over(
    tmp_path: Path, oci_registry_factory: OCIRegistryFactory, make_client: MakeClient, recorded: int
) -> None:
    server = oci_registry_factory()
    data, blob = _blob(SIZE, seed=93)
    journal = StateDirJournal(str(tmp_path))
    await _cancelled_mid_chunk(make_client(server.host), server, journal, data, blob)
    key = UploadKey(server.host, "dst", blob.digest, SIZE)
    [record] = _records(tmp_path)
    await journal.record(key, RecordedUpload(str(record["location"]), recorded))
    server.reset()

    placement = await transfer_blob(
        BytesSource(data), make_client(server.host), "dst", blob, chunk_size=CHUNK, journal=journal
    )

    assert placement is Placement.PUSHED
    if recorded > SIZE:  # a record that does not fit its blob is not even asked about
        assert _uploads(server)[0] == ("PATCH", "0-999")
    else:
        assert _uploads(server)[:3] == [("GET", None), ("DELETE", None), ("PATCH", "0-999")]
    assert images.get_blob(server.registry, "dst", blob.digest) == data
    assert _records(tmp_path) == []


async def test_a_failed_upload_drops_its_record_and_its_session(
    tmp_path: Path, oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    server = oci_registry_factory()
    data, blob = _blob(SIZE, seed=94)
    journal = StateDirJournal(str(tmp_path))
    forged = data[:-1] + bytes([data[-1] ^ 1])

    with pytest.raises(DigestMismatchError):
        await transfer_blob(
            BytesSource(forged), make_client(server.host), "dst", blob, chunk_size=CHUNK, journal=journal
        )

    assert _uploads(server)[-1] == ("DELETE", None)
    assert _records(tmp_path) == []


async def test_a_blob_already_there_drops_its_record(
    tmp_path: Path, oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    server = oci_registry_factory()
    data, blob = _blob(SIZE, seed=95)
    journal = StateDirJournal(str(tmp_path))
    await _cancelled_mid_chunk(make_client(server.host), server, journal, data, blob)
    server.storage.put_blob("dst", data, blob.digest)  # another client finished it meanwhile
    server.reset()

    placement = await transfer_blob(
        BytesSource(b"never read"), make_client(server.host), "dst", blob, chunk_size=CHUNK, journal=journal
    )

    assert placement is Placement.EXISTING
    assert _uploads(server) == []
    assert _records(tmp_path) == []


class _Anonymous:
    async def resolve(self, registry: str, repository: str) -> Credential:
        return ANONYMOUS


async def test_a_state_dir_uploads_in_16_mib_chunks_where_max_chunk_size_says_nothing(
    tmp_path: Path, http: HttpSession
) -> None:
    config = Config(apiVersion=API_VERSION, kind=KIND, hosts=[Host(host="small.example", maxChunkSize=64)])
    registries = Registries(http, _Anonymous())

    resumable = copy_session(config, registries, SyncOptions(state_dir=str(tmp_path)))
    plain = copy_session(config, registries, SyncOptions())

    hosts = ("small.example", "other.example")
    assert [resumable.chunk_size_for(host) for host in hosts] == [64 * 1024, 16 * 1024 * 1024]
    assert [plain.chunk_size_for(host) for host in hosts] == [64 * 1024, 0]
    assert isinstance(resumable.journal, StateDirJournal)
    assert plain.journal is NO_JOURNAL


async def test_a_small_blob_goes_whole_under_a_state_dir_and_leaves_no_record(
    tmp_path: Path, oci_registry_factory: OCIRegistryFactory, make_client: MakeClient
) -> None:
    """A blob of at most `WHOLE_MAX` is one PUT carrying its body even in a run with `--state-dir`
    (16 MiB chunks): there is no chunk to record, so nothing to resume."""
    server = oci_registry_factory()
    data, blob = _blob(WHOLE_MAX, seed=58)
    journal = StateDirJournal(str(tmp_path))

    placement = await transfer_blob(
        BytesSource(data), make_client(server.host), "dst", blob, chunk_size=RESUMABLE_CHUNK, journal=journal
    )

    assert placement is Placement.PUSHED
    assert _uploads(server) == [("PUT", None)]  # after the POST: no PATCH, no empty PUT
    assert not (tmp_path / "uploads").exists() or _records(tmp_path) == []
    assert images.get_blob(server.registry, "dst", blob.digest) == data
