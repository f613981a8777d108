"""An OCI image layout directory that several exporters can fill at once without losing content.

Blobs are streamed to `blobs/<alg>/<hex>.part`, hashed by the algorithm their digest names while
they are written, and renamed into place only once size and digest match, so a name under
`blobs/` is always complete and correct and a killed export leaves nothing that looks valid (a
re-run overwrites the stale part). File writes run on a worker thread, one write in flight while
the next chunk arrives, so a disk stall never blocks the event loop (benchmarks/layout.py measures
the choice).

`index.json` is read, merged and replaced atomically (a temp file in the same directory, then
`os.replace`) under an exclusive `flock` on `.fluxmirror.lock`: parallel `skopeo copy` runs into
one layout lose each other's tags because nothing locks (skopeo #2184, containers/image #1028).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from fluxmirror.layout.errors import LayoutError
from fluxmirror.layout.names import (
    INDEX_JSON,
    LAYOUT_FILE,
    LAYOUT_VERSION,
    blob_name,
    decode_index,
    decode_version,
    encode_index,
    index_descriptors,
    merge_entries,
)
from fluxmirror.layout.streams import write_verified
from fluxmirror.oci.digests import check_content, new_hasher
from fluxmirror.oci.manifests import Descriptor

__all__ = ["LOCK_FILE", "READ_CHUNK", "LayoutBlobSource", "LayoutDirectory"]

LOCK_FILE: Final = ".fluxmirror.lock"
READ_CHUNK: Final = 1024 * 1024
_POLL_SECONDS: Final = 0.05


@dataclass(slots=True)
class _Turn:
    """Writers of one digest in this process, taking turns: the second waits for the first."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


def _link_new(path: Path, data: bytes) -> None:
    """Create `path` holding `data` unless it exists, atomically: a concurrent creator's file is
    never replaced by an empty one."""
    descriptor, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        os.unlink(temp)


class LayoutDirectory:
    """An OCI image layout at `root`, created if missing (`oci-layout`, `index.json`, `blobs/`).

    Writers in other processes are excluded by `lock()`; `add_to_index` takes the lock itself when
    the caller does not hold it. `lock_timeout` bounds every wait for it, in seconds."""

    def __init__(self, root: Path, *, lock_timeout: float = 60.0, create: bool = True) -> None:
        self.root = root
        self.lock_timeout = lock_timeout
        self._held = 0
        self._lock_file: IO[bytes] | None = None
        self._mutex = threading.RLock()
        self._index_mutex = threading.Lock()
        self._writing: dict[str, _Turn] = {}
        try:
            if create:  # `create=False` reads a layout as it is, on read-only media too
                (root / "blobs").mkdir(parents=True, exist_ok=True)
                _link_new(root / LAYOUT_FILE, LAYOUT_VERSION)
                _link_new(root / INDEX_JSON, encode_index([]))
            version = decode_version((root / LAYOUT_FILE).read_bytes())
        except OSError as exc:
            raise LayoutError(f"{root}: cannot create an OCI image layout: {exc.strerror or exc}") from None
        if version != "1.0.0":
            raise LayoutError(f"{root}: unsupported OCI image layout version {version!r}")

    # --- blobs ---------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.root / blob_name(digest)

    def has_blob(self, digest: str, size: int) -> bool:
        """Whether the blob is present with the right size (a size check, not a re-hash)."""
        try:
            return self.blob_path(digest).stat().st_size == size
        except FileNotFoundError:
            return False

    async def write_blob(self, digest: str, size: int, chunks: AsyncIterator[bytes]) -> None:
        """Stream a blob into place, verified; on a size or digest mismatch nothing is left and
        DigestMismatchError is raised. A second writer of the same digest in this process waits
        for the first and then returns without reading its chunks if the blob landed."""
        new_hasher(digest)  # an unknown algorithm is refused before anything is written
        path = self.blob_path(digest)
        turn = self._writing.setdefault(digest, _Turn())
        waited = turn.users > 0
        turn.users += 1
        try:
            async with turn.lock:
                if waited and self.has_blob(digest, size):
                    return
                await self._stream(path, digest, size, chunks)
        finally:
            turn.users -= 1
            if turn.users == 0:
                del self._writing[digest]

    async def _stream(self, path: Path, digest: str, size: int, chunks: AsyncIterator[bytes]) -> None:
        part = path.with_name(path.name + ".part")
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        file = await asyncio.to_thread(part.open, "wb")  # truncates a stale part from an earlier run
        try:
            with file:
                await write_verified(file.write, digest, size, chunks)
            await asyncio.to_thread(os.replace, part, path)
        except BaseException:
            part.unlink(missing_ok=True)
            raise

    def write_small(self, digest: str, data: bytes) -> None:
        """Write a manifest or config (already in memory) the same way: verified, part, rename."""
        check_content(data, digest, f"blob {digest}")
        path = self.blob_path(digest)
        part = path.with_name(path.name + ".part")
        path.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(data)
        os.replace(part, path)

    def read_small(self, digest: str, limit: int) -> bytes:
        """A manifest or config read whole (at most `limit` bytes) and checked against its digest."""
        path = self.blob_path(digest)
        try:
            with path.open("rb") as file:
                data = file.read(limit + 1)
        except FileNotFoundError:
            raise LayoutError(f"{self.root}: blob {digest} is missing") from None
        if len(data) > limit:
            raise LayoutError(f"{self.root}: blob {digest} is larger than {limit} bytes")
        check_content(data, digest, f"{self.root}: blob {digest}")
        return data

    def blob_source(self) -> LayoutBlobSource:
        """A BlobSource reading this layout's blobs (for an upload)."""
        return LayoutBlobSource(self)

    # --- index.json ----------------------------------------------------------------------------

    def index(self) -> list[Descriptor]:
        """The manifests `index.json` lists, annotations kept."""
        return index_descriptors(self._read_index(), str(self.root))

    def _read_index(self) -> dict[str, Any]:
        try:
            raw = (self.root / INDEX_JSON).read_bytes()
        except OSError as exc:
            raise LayoutError(f"{self.root}: cannot read index.json: {exc.strerror or exc}") from None
        return decode_index(raw, str(self.root))

    def add_to_index(self, descriptors: Iterable[Descriptor]) -> None:
        """Merge entries into `index.json` (names.merge_entries) and replace it atomically, under
        the layout lock. Blocking: call it from a thread when an event loop is running."""
        with self._index_mutex, self.lock(self.lock_timeout):  # one writer in this process, one across processes
            document = self._read_index()
            entries = merge_entries(document["manifests"], descriptors)
            annotations = document.get("annotations")
            data = encode_index(entries, annotations if isinstance(annotations, dict) else None)
            descriptor, temp = tempfile.mkstemp(dir=self.root, prefix=f".{INDEX_JSON}.")
            try:
                with os.fdopen(descriptor, "wb") as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temp, self.root / INDEX_JSON)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
                raise

    # --- lock ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, timeout: float) -> Iterator[None]:
        """Hold the exclusive layout lock (`flock` on `.fluxmirror.lock`), waiting at most
        `timeout` seconds for another process to release it. Re-entrant within this object."""
        with self._mutex:  # held only while counting, so the lock may be entered and left from
            if self._held == 0:  # different threads (an export holds it from start to end)
                self._lock_file = self._acquire(timeout)
            self._held += 1
        try:
            yield
        finally:
            with self._mutex:
                self._held -= 1
                if self._held == 0 and self._lock_file is not None:
                    self._lock_file.close()  # closing the descriptor releases the flock
                    self._lock_file = None

    def _acquire(self, timeout: float) -> IO[bytes]:
        path = self.root / LOCK_FILE
        file = path.open("ab")
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return file
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    file.close()
                    raise LayoutError(
                        f"{self.root}: another process is writing this layout "
                        f"(lock {path} still held after {timeout:g}s)"
                    ) from None
                time.sleep(_POLL_SECONDS)


class LayoutBlobSource:
    """A BlobSource over a layout directory's files: 1 MiB reads on a worker thread."""

    def __init__(self, layout: LayoutDirectory) -> None:
        self.layout = layout

    async def read(self, digest: str, offset: int) -> AsyncIterator[bytes]:
        path = self.layout.blob_path(digest)
        try:
            file = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise LayoutError(f"{self.layout.root}: blob {digest} is missing") from None
        try:
            await asyncio.to_thread(file.seek, offset)
            while chunk := await asyncio.to_thread(file.read, READ_CHUNK):
                yield chunk
        finally:
            file.close()
