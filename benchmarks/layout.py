"""The layout library's per-member and per-chunk costs, with no registry: is a native tar scanner
worth building, and which way of writing blobs keeps the event loop free at the least cost?

- Scan: a 100,000-member layout tar of tiny blobs, scanned with the seekable reader (one `pread`
  per header) and read once through the pipe reader; members/s, best of 3. airgap.md §4.4: a
  Cython scanner is worth considering only if planning such an import takes over 1 s in Python.
- Headers: what the 512-byte ustar headers of a 2,000-blob archive cost to build (target < 50 ms).
- Writes: 256 MiB of 1 MiB chunks to a file with SHA-256, inline in the event loop, with each
  chunk awaited on a worker thread, and pipelined (one thread write in flight, as
  fluxmirror.layout.streams does), to the temp dir's disk and to /dev/shm (no disk); best of 3,
  with the longest a 1 ms heartbeat task was kept waiting (what a download sharing the loop feels).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import BinaryIO, Final

from benchmarks.selection import best_of
from fluxmirror.layout import TarStream, TarWriter
from fluxmirror.layout.names import blob_name
from fluxmirror.layout.streams import write_verified
from fluxmirror.layout.tarball import scan
from fluxmirror.layout.ustar import build
from fluxmirror.oci.digests import Hasher

MEMBERS: Final = 100_000
HEADERS: Final = 2_000
CHUNK: Final = 1 << 20
WRITE_MIB: Final = 256


def _scan_archive(path: Path, count: int) -> None:
    with path.open("wb") as file:
        writer = TarWriter(file)
        writer.add_index([])
        for number in range(count):
            data = number.to_bytes(8, "big")
            writer.add_bytes(blob_name("sha256:" + hashlib.sha256(data).hexdigest()), data)
        writer.close()


async def _pipe_read(path: Path) -> int:
    with path.open("rb") as file:
        return sum([1 async for _member in TarStream(file, str(path))])


async def _chunks(data: bytes, count: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield data


def _step(file: BinaryIO, hasher: Hasher, chunk: bytes) -> None:
    hasher.update(chunk)
    file.write(chunk)


async def _inline(file: BinaryIO, data: bytes, count: int) -> None:
    hasher = hashlib.sha256()
    async for chunk in _chunks(data, count):
        _step(file, hasher, chunk)


async def _awaited(file: BinaryIO, data: bytes, count: int) -> None:
    hasher = hashlib.sha256()
    async for chunk in _chunks(data, count):
        await asyncio.to_thread(_step, file, hasher, chunk)


@functools.cache
def _digest_of_repeats(data: bytes, count: int) -> str:
    hasher = hashlib.sha256()
    for _ in range(count):
        hasher.update(data)
    return "sha256:" + hasher.hexdigest()


async def _pipelined(file: BinaryIO, data: bytes, count: int) -> None:
    digest = _digest_of_repeats(data, count)  # computed before the timed runs
    await write_verified(file.write, digest, len(data) * count, _chunks(data, count))


async def _with_heartbeat(write: Callable[[BinaryIO, bytes, int], Awaitable[None]], path: Path, data: bytes) -> float:
    """Run one write while a 1 ms heartbeat measures the longest the event loop was held; returns it."""
    stall = 0.0
    done = False

    async def heartbeat() -> None:
        nonlocal stall
        while not done:
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            stall = max(stall, time.perf_counter() - started - 0.001)

    beat = asyncio.ensure_future(heartbeat())
    await asyncio.sleep(0.002)  # the heartbeat is asleep when the write starts
    with path.open("wb") as file:
        await write(file, data, WRITE_MIB)
    done = True
    await beat
    return stall


Write = Callable[[BinaryIO, bytes, int], Awaitable[None]]


def _write_case(write: Write, path: Path, data: bytes) -> tuple[float, float]:
    """Best wall time of 3 runs, and the worst event-loop stall seen in any of them."""
    best, worst = float("inf"), 0.0
    for _ in range(3):
        path.unlink(missing_ok=True)  # freeing the last run's pages is not the write's cost
        started = time.perf_counter()
        worst = max(worst, asyncio.run(_with_heartbeat(write, path, data)))
        best = min(best, time.perf_counter() - started)
    return best, worst


def run() -> list[tuple[str, float, str]]:
    """(case, seconds, rate) rows."""
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="fluxmirror-bench-layout-") as temp:
        archive = Path(temp) / "many.tar"
        _scan_archive(archive, MEMBERS)
        fd = os.open(archive, os.O_RDONLY)
        try:
            seconds = best_of(3, lambda: scan(fd, str(archive)))
        finally:
            os.close(fd)
        rows.append((f"scan {MEMBERS:,} members, seekable (pread per header)", seconds, f"{MEMBERS / seconds:,.0f}/s"))
        seconds = best_of(3, lambda: asyncio.run(_pipe_read(archive)))
        rows.append((f"scan {MEMBERS:,} members, pipe reader", seconds, f"{MEMBERS / seconds:,.0f}/s"))
        name = blob_name("sha256:" + "a" * 64)
        seconds = best_of(3, lambda: [build(name, 1000) for _ in range(HEADERS)])
        rows.append((f"build {HEADERS:,} ustar headers", seconds, f"{seconds / HEADERS * 1e6:.1f} µs each"))

        data = os.urandom(CHUNK)
        _digest_of_repeats(data, WRITE_MIB)
        cases: dict[str, Callable[[BinaryIO, bytes, int], Awaitable[None]]] = {
            "inline in the event loop": _inline,
            "to_thread per chunk, awaited": _awaited,
            "to_thread, one in flight (streams.py)": _pipelined,
        }
        where = {Path(temp): "disk", Path("/dev/shm"): "tmpfs"}
        for directory in where:
            for label, write in cases.items():
                seconds, stall = _write_case(write, directory / "fluxmirror-bench-blob", data)
                rate = f"{WRITE_MIB / 1024 / seconds:.2f} GiB/s, loop held ≤ {stall * 1000:.1f} ms"
                rows.append((f"write+sha256 {WRITE_MIB} MiB, {where[directory]}, {label}", seconds, rate))
            (directory / "fluxmirror-bench-blob").unlink()
    return rows


def report() -> str:
    started = time.perf_counter()
    lines = ["Layout library (no registry)", f"{'case':<76} {'seconds':>8}  rate"]
    lines += [f"{case:<76} {seconds:>8.3f}  {rate}" for case, seconds, rate in run()]
    lines.append(f"(ran in {time.perf_counter() - started:.0f} s)")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
