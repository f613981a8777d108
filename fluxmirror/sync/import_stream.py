"""`import -`: an archive read once from a pipe (docs/airgap.md#pipes).

A pipe cannot seek, so the import takes the archive in member order. fluxmirror's archives hold
`oci-layout`, every manifest and `index.json` first, so the plan is known from the first kilobytes:
the members before `index.json` are kept in memory (each at most 4 MiB, all together at most
64 MiB; an archive whose index comes last, as skopeo writes, thus imports from a pipe only while it
is that small, and is refused in one line otherwise), then each blob
that some destination needs is streamed straight into its upload as it is read, re-hashed on the
way, and mounted into the other repositories of the same registry that need it; a blob no
destination needs, or one already there, is read past. Nothing touches the disk. Once the stream is
over, the tags are pushed as from a file: their blobs are in place, so only manifests travel. A
blob that two registries need cannot be sent to both from one pass; that is refused, naming the
blob, rather than spooled to disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import BinaryIO, Final, Protocol

from fluxmirror.errors import FluxMirrorError
from fluxmirror.layout import LayoutError, Member, TarStream
from fluxmirror.layout.names import INDEX_JSON, LAYOUT_FILE, decode_index, index_descriptors
from fluxmirror.oci.blobs import BlobSource
from fluxmirror.oci.copy import CopySession
from fluxmirror.oci.digests import UnsupportedDigestError, new_hasher
from fluxmirror.oci.manifests import Descriptor, Manifest, parse_manifest
from fluxmirror.oci.reference import Repository

__all__ = [
    "MAX_MANIFEST",
    "Counted",
    "Manifests",
    "Needed",
    "PipedArchive",
    "content_problem",
    "hash_blobs",
    "needed_blobs",
    "read_front",
    "stream_blobs",
]

MAX_MANIFEST: Final = 4 << 20
_MAX_FRONT: Final = 64 << 20
_MAX_INDEX: Final = 64 << 20
_COMMITS_IN_FLIGHT: Final = 4


@dataclass(slots=True)
class Counted:
    """The blobs an import actually streamed (the ones not already at the destination)."""

    blobs: int = 0
    bytes: int = 0


@dataclass
class PipedArchive:
    """The front of a piped archive: the members before `index.json` (its manifests, kept in memory)
    and `index.json`. Later blobs, once they have streamed by, are at their destinations; `failed`
    says why one is not."""

    where: str
    front: dict[str, bytes]
    index_raw: bytes
    failed: dict[str, str] = field(default_factory=dict)
    cut: str = ""  # why the stream ended early, if it did

    def index(self) -> list[Descriptor]:
        return index_descriptors(decode_index(self.index_raw, self.where), self.where)

    def read_small(self, digest: str, limit: int) -> bytes:
        data = self.front.get(digest)
        if data is None or len(data) > limit:
            raise LayoutError(f"{self.where}: manifest {digest} is not among the archive's first members")
        return data

    def blob_source(self) -> BlobSource:
        return _Passed(self)


@dataclass(frozen=True, slots=True)
class _Passed:
    """The blobs of a pipe that has moved on: one from the front is in memory; reading any other
    means it did not reach its destination."""

    archive: PipedArchive

    async def read(self, digest: str, offset: int) -> AsyncIterator[bytes]:
        data = self.archive.front.get(digest)
        if data is None:
            reason = self.archive.failed.get(digest) or self.archive.cut or "is not in the archive"
            raise LayoutError(f"{self.archive.where}: blob {digest} {reason}")
        yield data[offset:]


async def read_front(file: BinaryIO, where: str) -> tuple[PipedArchive, TarStream, AsyncIterator[Member]]:
    """Read the archive up to `index.json`, keeping the members before it; the stream and its member
    iterator go on from there. A front too large to keep is refused in one line."""
    stream = TarStream(file, where)
    members = stream.__aiter__()
    front: dict[str, bytes] = {}
    kept = 0
    async for member in members:
        if member.name == INDEX_JSON:
            return PipedArchive(where, front, await stream.read_small(member, _MAX_INDEX)), stream, members
        if member.name == LAYOUT_FILE:
            continue
        kept += member.size
        if member.digest is None or member.size > MAX_MANIFEST or kept > _MAX_FRONT:
            raise LayoutError(
                f"{where}: {member.name} ({member.size} bytes) comes before index.json; a piped archive must hold"
                " its manifests and index.json first, as fluxmirror export writes them: import this one from a file"
            )
        front[member.digest] = await stream.read_small(member, MAX_MANIFEST)
    raise LayoutError(f"{where}: the archive has no index.json")


@dataclass(slots=True)
class Needed:
    """A blob some images of the archive need, and the repositories they go to."""

    blob: Descriptor
    repositories: list[Repository] = field(default_factory=list)


class Manifests(Protocol):
    """An archive's manifests by digest (a layout, a tar, or a pipe's front)."""

    def read_small(self, digest: str, limit: int) -> bytes: ...


def needed_blobs(
    archive: Manifests, roots: Iterable[tuple[Repository, str]], *, skip_broken: bool = False
) -> dict[str, Needed]:
    """Each blob the manifests `roots` name (recursively), by digest, with the repositories needing
    it; `skip_broken` leaves out a root whose manifests cannot be read (its tag will say why)."""
    needed: dict[str, Needed] = {}

    def visit(repository: Repository, digest: str) -> None:
        manifest = parse_manifest(archive.read_small(digest, MAX_MANIFEST), digest=digest)
        for child in manifest.children:
            visit(repository, child.digest)
        for blob in manifest.blobs:
            wanting = needed.setdefault(blob.digest, Needed(blob)).repositories
            if repository not in wanting:
                wanting.append(repository)

    for repository, digest in roots:
        try:
            visit(repository, digest)
        except FluxMirrorError:
            if not skip_broken:
                raise
    return needed


@dataclass(frozen=True, slots=True)
class _Once:
    """A blob's body as it streams from the pipe: read once, from the start, and counted;
    `drained` is set once the pipe is past it (read to the end, or given up)."""

    body: AsyncIterator[bytes]
    counted: Counted
    drained: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self, digest: str, offset: int) -> AsyncIterator[bytes]:
        if offset or self.drained.is_set():
            raise LayoutError(f"blob {digest}: a piped blob cannot be read again (from byte {offset})")
        self.counted.blobs += 1
        try:
            async for chunk in self.body:
                self.counted.bytes += len(chunk)
                yield chunk
        finally:
            self.drained.set()


@dataclass(frozen=True, slots=True)
class _OnceOrigin:
    """A piped blob as the origin of its placement (an `oci.copy.Origin`)."""

    source: _Once

    @property
    def repository(self) -> Repository | None:
        return None

    async def manifest(self, digest: str) -> Manifest | None:
        return None

    def blobs(self) -> BlobSource:
        return self.source


async def stream_blobs(
    session: CopySession,
    archive: PipedArchive,
    stream: TarStream,
    members: AsyncIterator[Member],
    needed: dict[str, Needed],
    counted: Counted,
) -> None:
    """Place each needed blob as it streams by: uploaded into the first repository that needs it and
    mounted into the others. The pipe moves on as soon as a blob's bytes are read, while its upload
    is committed (and mounted elsewhere) in the background, a few at a time. A failure is kept in
    `archive.failed`; the tags needing the blob fail when their manifests are pushed."""
    placing: set[asyncio.Task[None]] = set()
    try:
        async for member in members:
            want = needed.get(member.digest or "")
            if want is None:
                continue
            registries = sorted({repository.registry for repository in want.repositories})
            if len(registries) > 1:
                archive.failed[want.blob.digest] = (
                    f"was not pushed: {' and '.join(registries)} both need it, and a pipe is read once;"
                    " import from a file"
                )
                continue
            body = _Once(stream.body(), counted)
            task = asyncio.ensure_future(_place(session, archive, _OnceOrigin(body), want))
            placing.add(task)
            task.add_done_callback(placing.discard)
            drained = asyncio.ensure_future(body.drained.wait())
            await asyncio.wait({task, drained}, return_when=asyncio.FIRST_COMPLETED)
            drained.cancel()
            while len(placing) >= _COMMITS_IN_FLIGHT:
                await asyncio.wait(placing, return_when=asyncio.FIRST_COMPLETED)
    except LayoutError as exc:
        archive.cut = f"was not reached: {exc}"
    except BaseException:  # cancelled (a signal): stop the uploads in flight too
        for task in placing:
            task.cancel()
        raise
    finally:
        if placing:
            await asyncio.wait(placing)


async def _place(session: CopySession, archive: PipedArchive, origin: _OnceOrigin, want: Needed) -> None:
    try:
        for repository in want.repositories:
            await session.place_blob(origin, repository, want.blob)
    except FluxMirrorError as exc:
        archive.failed[want.blob.digest] = f"was not pushed: {exc}"


async def content_problem(blob: Descriptor, body: AsyncIterator[bytes], counted: Counted) -> str | None:
    """What is wrong with `body` as the content of `blob` (digest, size, or algorithm), or None.
    A failure to read the body is raised, not returned."""
    try:
        hasher = new_hasher(blob.digest)
    except UnsupportedDigestError as exc:
        return str(exc)
    size = 0
    async for chunk in body:
        await asyncio.to_thread(hasher.update, chunk)  # off the loop: blobs hash in parallel
        size += len(chunk)
    counted.blobs += 1
    counted.bytes += size
    actual = f"{blob.digest.partition(':')[0]}:{hasher.hexdigest()}"
    if size != blob.size or actual != blob.digest:
        return f"blob {blob.digest}: content hashes to {actual} ({size} of {blob.size} bytes)"
    return None


async def hash_blobs(
    archive: PipedArchive,
    stream: TarStream,
    members: AsyncIterator[Member],
    needed: dict[str, Needed],
    counted: Counted,
) -> dict[str, str | None]:
    """`import --verify-only -`: hash each needed blob as it streams by; its problem, or None."""
    checked: dict[str, str | None] = {}
    try:
        async for member in members:
            want = needed.get(member.digest or "")
            if want is not None and want.blob.digest not in checked:
                checked[want.blob.digest] = await content_problem(want.blob, stream.body(), counted)
    except LayoutError as exc:
        archive.cut = f"was not reached: {exc}"
    return checked
