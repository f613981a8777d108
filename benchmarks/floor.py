"""The floor for copying blobs: stream each one from source to destination, four at a time.

It is the least work any mirror must do: no tag listing, no manifests, no digest checks, no
retries, no existence probes. Each blob is a GET whose body is handed, as it arrives, to a
monolithic upload (POST for a session, PUT with the digest and Content-Length). It runs as its
own process on the same event loop fluxmirror uses, so wall time and peak RSS compare like for
like.

    python -m benchmarks.floor SOURCE_URL DESTINATION_URL REPOSITORY DIGEST...
"""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import urljoin

import aiohttp
import uvloop

CONCURRENCY = 4


async def copy_blobs(source: str, destination: str, repository: str, digests: list[str]) -> None:
    limit = asyncio.Semaphore(CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=2 * CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:

        async def copy_one(digest: str) -> None:
            async with limit:
                await _copy(session, source, destination, repository, digest)

        async with asyncio.TaskGroup() as group:
            for digest in digests:
                group.create_task(copy_one(digest))


async def _copy(session: aiohttp.ClientSession, source: str, destination: str, repository: str, digest: str) -> None:
    async with session.post(f"{destination}/v2/{repository}/blobs/uploads/") as started:
        started.raise_for_status()
        location = urljoin(destination, started.headers["Location"])
    async with session.get(f"{source}/v2/{repository}/blobs/{digest}") as blob:
        blob.raise_for_status()
        async with session.put(
            location,
            params={"digest": digest},
            data=blob.content,
            headers={"Content-Length": blob.headers["Content-Length"], "Content-Type": "application/octet-stream"},
        ) as stored:
            stored.raise_for_status()


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    source, destination, repository, *digests = argv
    uvloop.run(copy_blobs(source, destination, repository, digests))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
