"""The floors for copying blobs: stream each one from source to destination, four at a time.

The plain floor is the least work any mirror must do: no tag listing, no manifests, no digest
checks, no retries, no existence probes. Each blob is a GET whose body is handed, as it arrives,
to a monolithic upload (POST for a session, PUT with the digest and Content-Length).

With `--spec-requests` it is the least work the request sequence of docs/sync.md#copy-sequence allows,
which fluxmirror follows: an existence HEAD, a POST that tries a cross-repository mount, then
one PATCH of the whole body and an empty PUT to commit it. (fluxmirror's POST carries no mount
parameters when the source is another registry; with or without them it costs about the same.)
The gap between the two floors is what the prescribed sequence costs the registries; the gap
between this floor and fluxmirror is fluxmirror's own.

Both run as their own process on the same event loop fluxmirror uses, so wall time, CPU time and
peak RSS compare like for like.

    python -m benchmarks.floor [--spec-requests] SOURCE_URL DESTINATION_URL REPOSITORY DIGEST...
"""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import urljoin, urlsplit

import aiohttp
import uvloop

CONCURRENCY = 4
OCTETS = "application/octet-stream"


async def copy_blobs(source: str, destination: str, repository: str, digests: list[str], *, spec: bool) -> None:
    limit = asyncio.Semaphore(CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=2 * CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
        blob = _Blob(session, source, destination, repository)

        async def copy_one(digest: str) -> None:
            async with limit:
                await (blob.copy_as_specified(digest) if spec else blob.copy(digest))

        async with asyncio.TaskGroup() as group:
            for digest in digests:
                group.create_task(copy_one(digest))


class _Blob:
    def __init__(self, session: aiohttp.ClientSession, source: str, destination: str, repository: str) -> None:
        self._session = session
        self._source = f"{source}/v2/{repository}/blobs/"
        self._destination = destination
        self._blobs = f"{destination}/v2/{repository}/blobs/"
        self._repository = repository
        self._origin = urlsplit(source).netloc

    async def _start(self, params: dict[str, str] | None = None) -> str | None:
        """The upload session's URL, or None when the POST mounted the blob."""
        async with self._session.post(f"{self._blobs}uploads/", params=params) as started:
            started.raise_for_status()
            return None if started.status == 201 else urljoin(self._destination, started.headers["Location"])

    async def copy(self, digest: str) -> None:
        location = await self._start()
        assert location is not None
        async with self._session.get(self._source + digest) as blob:
            blob.raise_for_status()
            headers = {"Content-Length": blob.headers["Content-Length"], "Content-Type": OCTETS}
            params = {"digest": digest}
            async with self._session.put(location, params=params, data=blob.content, headers=headers) as put:
                put.raise_for_status()

    async def copy_as_specified(self, digest: str) -> None:
        async with self._session.head(self._blobs + digest) as probe:
            if probe.status == 200:
                return
        location = await self._start({"mount": digest, "from": self._repository, "origin": self._origin})
        if location is None:
            return
        async with self._session.get(self._source + digest) as blob:
            blob.raise_for_status()
            headers = {"Content-Length": blob.headers["Content-Length"], "Content-Type": OCTETS}
            async with self._session.patch(location, data=blob.content.iter_any(), headers=headers) as patched:
                patched.raise_for_status()
                location = urljoin(self._destination, patched.headers["Location"])
        async with self._session.put(location, params={"digest": digest}) as put:
            put.raise_for_status()


def main(argv: list[str]) -> int:
    spec = "--spec-requests" in argv
    arguments = [argument for argument in argv if argument != "--spec-requests"]
    if len(arguments) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    source, destination, repository, *digests = arguments
    uvloop.run(copy_blobs(source, destination, repository, digests, spec=spec))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
