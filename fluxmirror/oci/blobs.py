"""Blob transfer between registries: exists, mount, or a digest-checked upload.

A small blob (up to `WHOLE_MAX`, and no larger than the chunk size, if any) takes two requests: a
POST that asks the registry to mount it (from a sibling repository that has it, or else from the
destination repository itself, which a registry answers with 201 when it already holds the blob,
so the POST doubles as the existence check), while the source read starts beside it; then one
`PUT ?digest=` that streams the body and commits it. Its last piece is held back until the content
hashes to the digest, so a body that does not match never reaches the registry whole
(docs/sync.md#copy-sequence).

A larger one is first looked for (HEAD), then streamed, its source read starting beside the POST
that opens its upload: the source is read once, each byte hashed the first time it is seen, and
sent to the destination in one PATCH (or in `maxChunkSize` pieces). If either side breaks mid-way,
the destination is asked how much it holds (its upload `Range`) and the source is re-opened from
there with a `Range` request, so neither side starts over. The upload is committed (`PUT ?digest=`)
only after the hash matches; on a mismatch it is cancelled and nothing is committed.

With an `UploadJournal` (`--state-dir`), a streamed upload records each completed chunk's
`Location`, and a later run continues that session where the registry says it stands
(docs/sync.md#resume); a small blob, sent in one request, has nothing to record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final, Protocol

from fluxmirror.http.body import pieces, read_body
from fluxmirror.http.errors import NetworkError, TransportError
from fluxmirror.oci.adaptive import hold
from fluxmirror.oci.auth import pull_scope, push_scope
from fluxmirror.oci.client import RegistryClient, blob_path
from fluxmirror.oci.digests import check_content, new_hasher
from fluxmirror.oci.errors import DigestMismatchError, OCIError, RegistryError
from fluxmirror.oci.manifests import Descriptor
from fluxmirror.oci.pacing import Bandwidth
from fluxmirror.oci.resumable import NO_JOURNAL, RecordedUpload, UploadJournal, UploadKey

__all__ = [
    "WHOLE_MAX",
    "BlobSource",
    "BytesSource",
    "Placement",
    "RegistrySource",
    "blob_exists",
    "fetch_blob",
    "resuming_read",
    "transfer_blob",
]

log = logging.getLogger(__name__)

READ_CHUNK: Final = 1024 * 1024
WHOLE_MAX: Final = 8 * 1024 * 1024
"""Blobs up to this size are streamed in the one PUT that commits them. Config blobs and most small
layers are below it; a PUT cut mid-way cannot be continued, so this is also the most a cut (or a
CronJob killed at its deadline) makes a run send again. Nothing of it is held in memory."""
MAX_RESUMES: Final = 5
ABANDON_SECONDS: Final = 5.0
# What a registry says of an upload session it no longer has, or whose state it refuses: a recorded
# session answered so is stale.
_LOST_SESSION: Final = frozenset({400, 404, 416})


class Placement(Enum):
    """How a blob got to the destination."""

    EXISTING = "existing"
    MOUNTED = "mounted"
    PUSHED = "pushed"


class BlobSource(Protocol):
    """Where a blob is read from: anything that can stream it from a byte offset."""

    def read(self, digest: str, offset: int) -> AsyncIterator[bytes]:
        """The blob's bytes from `offset` on."""
        ...


@dataclass(frozen=True, slots=True)
class BytesSource:
    """A blob already in memory, such as a downloaded chart or a config built here."""

    data: bytes

    async def read(self, digest: str, offset: int) -> AsyncIterator[bytes]:
        for start in range(offset, len(self.data), READ_CHUNK):
            yield self.data[start : start + READ_CHUNK]


async def fetch_blob(client: RegistryClient, repository: str, digest: str, limit: int) -> bytes:
    """A small blob (a signature bundle, a signed payload) read whole, at most `limit` bytes, and
    checked against its digest."""
    new_hasher(digest)  # an unknown algorithm is refused before anything is fetched
    async with client.request(
        "GET", blob_path(repository, digest), repository=repository, scopes=[pull_scope(repository)]
    ) as response:
        data = await read_body(response, limit)
    check_content(data, digest, f"blob {client.registry}/{repository}@{digest}")
    return data


async def blob_exists(client: RegistryClient, repository: str, digest: str) -> bool:
    try:
        async with client.request(
            "HEAD", blob_path(repository, digest), repository=repository, scopes=[pull_scope(repository)]
        ):
            return True
    except RegistryError as exc:
        if exc.status == 404:
            return False
        raise


async def _start_upload(client: RegistryClient, repository: str, digest: str, mount_from: str | None) -> str | None:
    """Open an upload session (its Location), or mount the blob (None) when `mount_from` allows.
    `mount_from` may be `repository` itself: then a 201 says the repository already holds the blob."""
    scopes = [push_scope(repository)]
    path = f"/v2/{repository}/blobs/uploads/"
    params: list[tuple[str, str]] = []
    if mount_from:
        if mount_from != repository:  # pull on the repository itself is part of push
            scopes.append(pull_scope(mount_from))
        params = [("mount", digest), ("from", mount_from)]
    try:
        async with client.request(
            "POST", path, repository=repository, scopes=scopes, params=params or None, ok=(201, 202)
        ) as response:
            if response.status == 201 and mount_from:
                return None
            return _location(response.headers.get("Location", ""), path)
    except RegistryError as exc:
        if not mount_from:
            raise
        log.info("retrying without mount: %s", exc)
        return await _start_upload(client, repository, digest, None)


def _location(value: str, request_path: str) -> str:
    if not value:
        raise OCIError(f"POST {request_path}: the registry returned no upload Location")
    return value


async def _uploaded_bytes(client: RegistryClient, repository: str, location: str) -> tuple[int, str]:
    """How many bytes the upload session holds, and where to continue it."""
    async with client.request(
        "GET", location, repository=repository, scopes=[push_scope(repository)], ok=(204,)
    ) as response:
        end = response.headers.get("Range", "0-0").rpartition("-")[2]
        next_location = response.headers.get("Location", location)
    held = int(end) + 1 if end.isdigit() and int(end) > 0 else 0
    return held, next_location


@dataclass(frozen=True, slots=True)
class RegistrySource:
    """A blob in a registry repository, read with `Range` when resuming."""

    client: RegistryClient
    repository: str

    async def read(self, digest: str, offset: int) -> AsyncIterator[bytes]:
        """Stream the blob from `offset`, skipping what a server that ignores `Range` sends first.

        Pieces are passed on as the socket delivers them (`pieces`): regrouping them into fixed-size
        chunks copied every byte once more (about 10 % of the process's CPU time when copying large
        blobs), and so does `iter_any`'s join of what was buffered."""
        headers = {"Range": f"bytes={offset}-"} if offset else None
        async with self.client.request(
            "GET",
            blob_path(self.repository, digest),
            repository=self.repository,
            scopes=[pull_scope(self.repository)],
            headers=headers,
            ok=(200, 206),
        ) as response:
            skip = offset if response.status == 200 else 0
            async for chunk in pieces(response):
                if skip:
                    if len(chunk) <= skip:
                        skip -= len(chunk)
                        continue
                    chunk, skip = chunk[skip:], 0
                yield chunk


async def resuming_read(
    source: BlobSource, blob: Descriptor, start: int, end: int, *, bandwidth: Bandwidth | None
) -> AsyncGenerator[bytes, None]:
    """Bytes [start, end) of `blob` from `source`; a download that breaks or ends early is resumed
    where it stopped, with a `Range` request, up to `MAX_RESUMES` times. Every blob body a run
    copies (sync, export, import) comes through here, so this is where the run's `bandwidth`
    (--max-bandwidth, None: no cap) paces them, each byte once (docs/sync.md#bandwidth)."""
    position, reopened = start, 0
    while position < end:
        try:
            async for chunk in source.read(blob.digest, position):
                chunk = chunk[: end - position]
                position += len(chunk)
                if bandwidth is None:
                    yield chunk
                else:
                    for piece in bandwidth.pieces(chunk):
                        await bandwidth.take(len(piece))
                        yield piece
                if position >= end:
                    return
            raise TransportError(f"blob {blob.digest}: source ended at byte {position} of {blob.size}")
        except TransportError as exc:
            reopened += 1
            if reopened > MAX_RESUMES or not exc.temporary:
                raise
            log.info("resuming download of %s at byte %d: %s", blob.digest, position, exc)


class _SourceCursor:
    """One forward read of a blob from its source, shared by consecutive PATCH bodies: a chunked
    upload makes one source request, not one per chunk (each cut at its chunk's end, which wasted
    what the source had already sent: 27 % more than the blob on loopback with 16 MiB chunks)."""

    def __init__(self, source: BlobSource, blob: Descriptor, start: int, bandwidth: Bandwidth | None) -> None:
        self._chunks = resuming_read(source, blob, start, blob.size, bandwidth=bandwidth)
        self.position = start
        self._pending = b""
        self._first: asyncio.Task[bytes] | None = None

    def start(self) -> None:
        """Ask the source for its first bytes now, before they are wanted (the blob must not be empty)."""
        self._first = asyncio.ensure_future(anext(self._chunks))

    async def take(self, end: int) -> AsyncIterator[bytes]:
        """The blob's next bytes, up to `end`."""
        while self.position < end:
            if not self._pending:
                first, self._first = self._first, None
                self._pending = await (first if first is not None else anext(self._chunks))
            piece, self._pending = self._pending, b""
            if len(piece) > end - self.position:
                piece, self._pending = piece[: end - self.position], piece[end - self.position :]
            self.position += len(piece)
            yield piece

    async def close(self) -> None:
        """Release the source request. A read still under way belongs to the PATCH whose body it
        feeds, which aiohttp is cancelling: it unwinds there, through the same request's exit."""
        if self._first is not None:  # started, never wanted: its failure, if any, is no news
            self._first.cancel()
            await asyncio.wait({self._first})
            if not self._first.cancelled():
                self._first.exception()
            self._first = None
        with contextlib.suppress(RuntimeError):  # "aclose(): asynchronous generator is already running"
            await self._chunks.aclose()


def _sent_whole(size: int, chunk_size: int) -> bool:
    """Whether a blob goes in the one PUT that commits it, rather than in PATCHes."""
    return size <= WHOLE_MAX and (not chunk_size or size <= chunk_size)


class _Upload:
    """One upload: how it is sent (`whole`, in the committing PUT, or in PATCHes of `chunk_size`),
    the session in hand (`location`), the position each side has reached, the running hash, and
    whether that session is the one the journal holds (a recorded session outlives a cancelled
    run; a whole blob, sent in one request, is never recorded)."""

    def __init__(
        self,
        source: BlobSource,
        destination: RegistryClient,
        repository: str,
        blob: Descriptor,
        journal: UploadJournal,
        key: UploadKey,
        bandwidth: Bandwidth | None,
        chunk_size: int,
    ) -> None:
        self.source = source
        self.bandwidth = bandwidth
        self.destination = destination
        self.repository = repository
        self.blob = blob
        self.chunk_size = chunk_size
        self.whole = _sent_whole(blob.size, chunk_size)
        self.journal = NO_JOURNAL if self.whole else journal
        self.key = key
        self.location = ""
        self.hasher = new_hasher(blob.digest)
        self.hashed = 0
        self.recorded = False
        self.source_failure: Exception | None = None  # why the body of the current request stopped, if it did
        self._cursor: _SourceCursor | None = None

    async def body(self, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes [start, end) of the blob, hashing those not hashed before, read on from where the
        previous body stopped or from a source request at `start`; a broken source download is
        resumed with a `Range` request so the upload it feeds never notices."""
        if self._cursor is None or self._cursor.position != start:
            await self.close_source()
            self._cursor = _SourceCursor(self.source, self.blob, start, self.bandwidth)
        position = start
        try:
            async for chunk in self._cursor.take(end):
                if position + len(chunk) > self.hashed:
                    self.hasher.update(chunk[max(self.hashed - position, 0) :])
                    self.hashed = position + len(chunk)
                position += len(chunk)
                yield chunk
        except Exception as exc:
            # aiohttp reports a body that failed as a broken connection to the destination; keep
            # the source's own error, so the row names it and the upload is not resumed in vain.
            self.source_failure = exc
            raise

    async def checked_body(self) -> AsyncIterator[bytes]:
        """The whole blob for the PUT that commits it, its last piece held back until the content
        hashes to the digest: a body that does not match never reaches the registry whole, so the
        registry cannot commit it, and the request fails with the mismatch."""
        last = b""
        async for piece in self.body(0, self.blob.size):
            if last:
                yield last
            last = piece
        try:
            self.verify()
        except DigestMismatchError as exc:
            self.source_failure = exc
            raise
        if last:
            yield last

    def verify(self) -> None:
        actual = f"{self.blob.digest.partition(':')[0]}:{self.hasher.hexdigest()}"
        if self.hashed != self.blob.size or actual != self.blob.digest:
            raise DigestMismatchError(f"blob {self.blob.digest}: content hashes to {actual}")

    async def place_whole(self, mount_from: str | None) -> Placement:
        """Place a small blob in two requests. The POST asks for a mount from `mount_from`, or else
        from the destination repository itself, whose 201 says it holds the blob already (the HEAD
        a larger blob starts with). In that second case a registry source's read starts beside the
        POST, so the PUT's body is on its way when the session opens; if the blob turns out to be
        there, the read is dropped (at most the blob's size was fetched for nothing, usually a round
        trip's worth)."""
        if not mount_from:
            self.read_ahead()
        location = await _start_upload(
            self.destination, self.repository, self.blob.digest, mount_from or self.repository
        )
        if location is None:
            return Placement.MOUNTED if mount_from else Placement.EXISTING
        await self.push(location, 0)
        return Placement.PUSHED

    def read_ahead(self) -> None:
        """Start the source read now, beside the POST that opens the session, so that a registry
        source's first bytes are on their way when the upload wants them. A local source (an
        archive, a pipe) has no round trip to hide, and a pipe's blob can be read only once: it is
        read when the upload wants it."""
        if self.blob.size and isinstance(self.source, RegistrySource):
            self._cursor = _SourceCursor(self.source, self.blob, 0, self.bandwidth)
            self._cursor.start()

    async def resumed(self) -> tuple[str, int] | None:
        """The session an earlier run recorded, continued where the registry says it stands, or None
        (none recorded, or stale: then it is forgotten). The bytes the registry already holds are
        read back from the source and hashed, since a running hash cannot be stored."""
        recorded = await self.journal.recall(self.key)
        if recorded is None:
            return None
        try:
            held, location = await _uploaded_bytes(self.destination, self.repository, recorded.location)
        except RegistryError as exc:
            if exc.status not in _LOST_SESSION:
                raise
            stale = str(exc)
        except OCIError as exc:  # a recorded Location this repository may not use
            stale = str(exc)
        else:
            # The registry may hold more than was acknowledged (part of the chunk in flight when the
            # run died): those are the blob's bytes too, and its digest check at commit vouches for them.
            if recorded.offset <= held <= self.blob.size:
                log.info("resuming upload of %s at byte %d, recorded by an earlier run", self.blob.digest, held)
                async for _ in self.body(0, held):
                    pass
                self.recorded = True
                return location, held
            stale = f"the registry holds {held} bytes, {recorded.offset} were recorded"
            await _abandon(self.destination, self.repository, self.blob.digest, location)
        log.info("recorded upload of %s is stale, starting a new one: %s", self.blob.digest, stale)
        await self.journal.forget(self.key)
        return None

    async def transmit(
        self,
        method: str,
        body: AsyncIterator[bytes],
        length: int,
        headers: Mapping[str, str],
        *,
        params: list[tuple[str, str]] | None = None,
        ok: tuple[int, ...],
    ) -> str:
        """Send `body` (`length` bytes) to the session in hand: a PATCH, or the committing PUT of a
        whole blob; returns the Location to go on at. A failure of the body's own read is raised as
        itself."""
        self.source_failure = None
        try:
            async with self.destination.request(
                method,
                self.location,
                repository=self.repository,
                scopes=[push_scope(self.repository)],
                headers={"Content-Type": "application/octet-stream", **headers, "Content-Length": str(length)},
                params=params,
                data=body,
                ok=ok,
            ) as response:
                return response.headers.get("Location", self.location)
        except NetworkError:
            if self.source_failure is not None:
                raise self.source_failure from None
            raise

    async def send(self, offset: int) -> None:
        """Send every byte from `offset` on in PATCHes, resuming where the registry says it stands
        after a break (or starting a new session when it lost ours), and recording each completed
        chunk's `Location`; leaves `location` where to commit."""
        size, chunk_size, resumes = self.blob.size, self.chunk_size, 0
        while offset < size:
            end = min(size, offset + chunk_size) if chunk_size else size
            ranged = {"Content-Range": f"{offset}-{end - 1}"} if chunk_size or offset else {}
            try:
                self.location = await self.transmit(
                    "PATCH", self.body(offset, end), end - offset, ranged, ok=(202, 201, 204)
                )
            except NetworkError as exc:
                resumes += 1
                if resumes > MAX_RESUMES or not exc.temporary or exc is self.source_failure:
                    raise
                offset = await self._resume_point(exc)
                continue
            offset = end
            if offset < size:
                self.recorded = await self.journal.record(self.key, RecordedUpload(self.location, offset))

    async def send_whole(self) -> None:
        """Stream the whole blob in the PUT that commits it. A PUT cut mid-way cannot be continued
        (distribution also refuses the session's URL after it): the blob goes again, read again from
        the source, in a new session, up to `MAX_RESUMES` times."""
        resumes = 0
        while True:
            try:
                await self.transmit(
                    "PUT",
                    self.checked_body(),
                    self.blob.size,
                    {},
                    params=[("digest", self.blob.digest)],
                    ok=(201, 204),
                )
                return
            except NetworkError as exc:
                resumes += 1
                if resumes > MAX_RESUMES or not exc.temporary or exc is self.source_failure:
                    raise
                log.info("upload of %s was cut; sending it again in a new session: %s", self.blob.digest, exc)
            await self.abandon()
            self.location = await self._new_session()

    async def _resume_point(self, cause: NetworkError) -> int:
        try:
            offset, self.location = await _uploaded_bytes(self.destination, self.repository, self.location)
            log.info("resuming upload of %s at byte %d: %s", self.blob.digest, offset, cause)
            return offset
        except RegistryError as exc:
            if exc.status not in _LOST_SESSION:
                raise
        log.info("upload session of %s was lost; starting a new one: %s", self.blob.digest, cause)
        self.location = await self._new_session()
        self.recorded = False  # the journal still names the lost session
        return 0

    async def _new_session(self) -> str:
        location = await _start_upload(self.destination, self.repository, self.blob.digest, None)
        assert location is not None  # no mount was asked for
        return location

    async def commit(self) -> None:
        """`PUT <location>?digest=`, empty, after the PATCHes carried every byte."""
        self.verify()
        async with self.destination.request(
            "PUT",
            self.location,
            repository=self.repository,
            scopes=[push_scope(self.repository)],
            params=[("digest", self.blob.digest)],
            headers={"Content-Length": "0"},
            ok=(201, 204),
        ):
            pass

    async def close_source(self) -> None:
        if self._cursor is not None:
            await self._cursor.close()
            self._cursor = None

    async def push(self, location: str, offset: int) -> None:
        """Send the bytes from `offset` on to the session at `location` and commit. A failure
        abandons the session and drops its record; a cancellation (the job's deadline, the run's
        signal) leaves a recorded session for the next run and abandons any other."""
        self.location = location
        try:
            if self.whole:
                await self.send_whole()
            else:
                await self.send(offset)
                await self.commit()
        except asyncio.CancelledError:
            if not self.recorded:
                await self.abandon()
            raise
        except BaseException:
            await self.abandon()
            await self.journal.forget(self.key)
            raise
        await self.journal.forget(self.key)

    async def abandon(self) -> None:
        await _abandon(self.destination, self.repository, self.blob.digest, self.location)


async def _abandon(client: RegistryClient, repository: str, digest: str, location: str) -> None:
    """Cancel the upload session within `ABANDON_SECONDS`, also while this task is being cancelled,
    so a registry does not keep a half-written upload until it expires."""
    try:
        async with asyncio.timeout(ABANDON_SECONDS):
            await _cancel(client, repository, digest, location)
    except TimeoutError:
        log.info("could not cancel upload of %s: no answer within %ss", digest, ABANDON_SECONDS)


async def _cancel(client: RegistryClient, repository: str, digest: str, location: str) -> None:
    try:
        async with client.request(
            "DELETE", location, repository=repository, scopes=[push_scope(repository)], ok=(204, 404)
        ):
            pass
    except (NetworkError, OCIError) as exc:
        log.info("could not cancel upload of %s: %s", digest, exc)


async def transfer_blob(
    source: BlobSource,
    destination: RegistryClient,
    repository: str,
    blob: Descriptor,
    *,
    mount_from: str | None = None,
    chunk_size: int = 0,
    journal: UploadJournal = NO_JOURNAL,
    bandwidth: Bandwidth | None = None,
) -> Placement:
    """Make `blob` present in `destination/repository`: sent whole in its committing PUT when small,
    else streamed in one PATCH (`chunk_size` 0) or in PATCHes of at most `chunk_size` bytes. With a
    `journal`, a streamed upload continues a session an earlier run recorded, and records its own; a
    small one has nothing worth resuming. Only the bodies' reads are paced by `bandwidth`: the HEAD,
    POST, PUT (or DELETE) around them never wait on it."""
    new_hasher(blob.digest)  # an unknown algorithm is refused before anything is asked or sent
    key = UploadKey(destination.registry, repository, blob.digest, blob.size)
    upload = _Upload(source, destination, repository, blob, journal, key, bandwidth, chunk_size)
    # The source read is the upload's body: one --adaptive slot on each side for the whole copy
    # (docs/sync.md#adaptive).
    source_gate = source.client.gate if isinstance(source, RegistrySource) else None
    async with hold(destination.gate, source_gate):
        try:
            if upload.whole:
                return await upload.place_whole(mount_from)
            if await blob_exists(destination, repository, blob.digest):
                await journal.forget(key)
                return Placement.EXISTING
            resumed = await upload.resumed()
            if resumed is None:
                if not mount_from:  # a mount would make the read needless
                    upload.read_ahead()
                location = await _start_upload(destination, repository, blob.digest, mount_from)
                if location is None:
                    return Placement.MOUNTED
                resumed = location, 0
            await upload.push(*resumed)
        finally:
            await upload.close_source()
    return Placement.PUSHED
