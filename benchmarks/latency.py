"""A TCP proxy that adds a one-way delay to each direction, as a long link does, bytes kept in order.

Why not a pause per chunk: pauses add up (a response in 40 pieces would take 40 delays), while a
link delays every byte by the same amount however many follow it. Here each chunk is stamped
when it is read and released once its stamp plus the delay has passed, one releaser per
direction, so order holds and a stream of any length takes the delay once.

The TCP handshake is a round trip on a real link, but the kernel completes it here before the
proxy sees the connection; so the first bytes a client sends are held one round trip longer, and
a new connection costs what it costs on the link. What is not modelled: TCP's slow start and
window limits over the long round trip (the proxy's own connections are local), and the
bandwidth, which `benchmarks/wanlink.py` caps with a qdisc.

The proxies of one benchmark share an event loop on a thread of their own
(`LatencyProxies`), so the benchmark can change the delay between runs and read how many
connections and bytes each run made.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import uvloop

__all__ = ["LatencyProxies", "Traffic"]

_T = TypeVar("_T")
_READ = 256 * 1024
# A direction stops reading while this much waits for its release: enough for any delay at the
# speeds seen here (8 MiB per 20 ms is 400 MiB/s), and a bound on memory when the far side is slow.
_HIGH_WATER = 8 << 20


@dataclass(frozen=True)
class Traffic:
    """What crossed one proxy since the counters were last reset."""

    connections: int
    sent: int  # client → upstream bytes
    received: int  # upstream → client bytes
    first: float | None  # time.monotonic() of the first connection
    last: float | None  # time.monotonic() of the last bytes released, either way


class _Proxy:
    def __init__(self, proxies: LatencyProxies, upstream: tuple[str, int]) -> None:
        self._proxies = proxies
        self._upstream = upstream
        self.connections = self.sent = self.received = 0
        self.first: float | None = None
        self.last: float | None = None
        self.server: asyncio.Server | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.first is None:
            self.first = time.monotonic()
        loop = asyncio.get_running_loop()
        one_way = self._proxies.one_way
        accepted = loop.time()
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.close()
            return
        try:
            # Client bytes wait for the handshake's round trip first, then cross one way.
            await self._both(
                self._direction(reader, up_writer, one_way, accepted + 2 * one_way, upstream=True),
                self._direction(up_reader, writer, one_way, accepted, upstream=False),
            )
        except asyncio.CancelledError:
            pass  # the proxies are closing: a connection's task ends quietly (asyncio would log it)
        finally:
            for side in (writer, up_writer):
                side.close()

    @staticmethod
    async def _both(*directions: Coroutine[Any, Any, None]) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for direction in directions:
                    group.create_task(direction)
        except* (OSError, asyncio.IncompleteReadError):
            pass  # a reset on either side ends the connection; both sides are closed by the caller

    async def _direction(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        one_way: float,
        not_before: float,
        *,
        upstream: bool,
    ) -> None:
        """Read, stamp and queue; a second task releases each chunk once its stamp is due."""
        loop = asyncio.get_running_loop()
        queue: collections.deque[tuple[float, bytes]] = collections.deque()
        arrived = asyncio.Event()
        drained = asyncio.Event()
        waiting = [0]

        async def release() -> None:
            while True:
                while not queue:
                    arrived.clear()
                    await arrived.wait()
                due, chunk = queue[0]
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                queue.popleft()
                if not chunk:  # end of stream
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                waiting[0] -= len(chunk)
                writer.write(chunk)
                await writer.drain()
                self.last = time.monotonic()
                drained.set()

        releaser = asyncio.create_task(release())
        try:
            while chunk := await reader.read(_READ):
                if upstream:
                    self.sent += len(chunk)
                else:
                    self.received += len(chunk)
                queue.append((max(loop.time(), not_before) + one_way, chunk))
                waiting[0] += len(chunk)
                arrived.set()
                while waiting[0] > _HIGH_WATER:
                    drained.clear()
                    await drained.wait()
            queue.append((max(loop.time(), not_before) + one_way, b""))
            arrived.set()
            await releaser
        finally:
            releaser.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await releaser


class LatencyProxies:
    """Latency proxies on one event loop in a daemon thread; ``one_way`` applies to new connections."""

    def __init__(self, listen_host: str, one_way: float = 0.0) -> None:
        self.listen_host = listen_host
        self.one_way = one_way
        self._proxies: list[_Proxy] = []
        self._loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="latency-proxies", daemon=True)
        self._thread.start()

    def _call(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def add(self, upstream_host: str) -> str:
        """Start a proxy in front of ``upstream_host`` (``host:port``); return its own ``host:port``."""
        host, _, port = upstream_host.rpartition(":")
        proxy = _Proxy(self, (host, int(port)))

        async def start() -> int:
            proxy.server = await asyncio.start_server(proxy.serve, self.listen_host, 0, limit=_READ)
            return int(proxy.server.sockets[0].getsockname()[1])

        self._proxies.append(proxy)
        return f"{self.listen_host}:{self._call(start())}"

    def traffic(self) -> list[Traffic]:
        """Per proxy, in the order added, what crossed it since the last call (which resets it)."""

        async def take() -> list[Traffic]:
            counts = [Traffic(p.connections, p.sent, p.received, p.first, p.last) for p in self._proxies]
            for proxy in self._proxies:
                proxy.connections = proxy.sent = proxy.received = 0
                proxy.first = proxy.last = None
            return counts

        return self._call(take())

    def close(self) -> None:
        async def stop() -> None:
            for proxy in self._proxies:
                if proxy.server is not None:
                    proxy.server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        self._call(stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
