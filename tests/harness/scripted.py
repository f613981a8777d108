"""Scripted HTTP servers for protocol tests: an answer written for the test, every request recorded.

``ScriptedServer`` runs one aiohttp handler (any method, any path) on a loopback port, over TLS when
given a context. ``RawServer`` answers every connection with exact bytes and pauses, for what
aiohttp's server will not send: a ``Content-Length`` that lies, a body cut mid-way, a garbage header,
a connection reset.
Both serve from a ``BackgroundLoop``, so an asyncio test's own loop stays free, and both record a
request before answering it, so once a client holds an answer the record is there.
"""

from __future__ import annotations

import asyncio
import enum
import socket
import ssl
import struct
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDict

from harness.background import BackgroundLoop, listen
from harness.closing import Closing

__all__ = ["RESET", "Handler", "RawServer", "Script", "ScriptedServer", "Seen", "Serve", "ServeRaw"]


class _Reset(enum.Enum):
    RESET = "reset"


RESET = _Reset.RESET
"""A script step: end the connection with a TCP reset (RST) instead of a close."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Script = Sequence[bytes | float | _Reset]
MAX_REQUEST_BODY = 64 * 1024 * 1024


@dataclass(frozen=True)
class Seen:
    """One request as a server received it."""

    method: str
    target: str  # raw path and query, exactly as sent
    headers: CIMultiDict[str]
    body: bytes

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")


class _Log:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: list[Seen] = []

    def add(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)

    def all(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)


class _Server(Closing):
    def __init__(self, scheme: str, host: str = "127.0.0.1") -> None:
        self._sock = listen(host)
        self.port: int = self._sock.getsockname()[1]
        self.host = f"{host}:{self.port}"
        self.url = f"{scheme}://{self.host}"
        self._log = _Log()
        self._background = BackgroundLoop(f"scripted-{self.host}")

    @property
    def seen(self) -> list[Seen]:
        """Every request so far, in arrival order."""
        return self._log.all()

    def close(self) -> None:
        self._background.close(self._cleanup)

    async def _cleanup(self) -> None:
        return None


class ScriptedServer(_Server):
    """``handler`` answers every request; ``seen`` lists them (bodies read whole before the handler runs).
    ``host`` is the loopback address it listens on (any of 127.0.0.0/8 on Linux)."""

    def __init__(self, handler: Handler, *, ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        super().__init__("https" if ssl_context is not None else "http", host)
        self.handler = handler
        app = web.Application(client_max_size=MAX_REQUEST_BODY)
        app.router.add_route("*", "/{tail:.*}", self._serve)
        try:
            self._background.serve(app, self._sock, ssl_context)
        except BaseException:
            self._sock.close()
            self.close()
            raise

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self._log.add(Seen(request.method, request.raw_path, CIMultiDict(request.headers), body))
        return await self.handler(request)


class RawServer(_Server):
    """Every connection: read the request head, then play the script (bytes are sent, floats are
    pauses in seconds), then close. ``script`` is one script for every request, or a function of
    the request choosing one. A TLS ClientHello is hung up on at once, so a client trying HTTPS
    first (as a registry ping does for loopback) falls back to plain HTTP without waiting."""

    def __init__(self, script: Script | Callable[[Seen], Script]) -> None:
        super().__init__("http")
        self.script = script
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        try:
            self._server = self._background.call(asyncio.start_server(self._answer, sock=self._sock))
        except BaseException:
            self._sock.close()
            self.close()
            raise

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            first = await reader.read(1)
            if first in (b"", b"\x16"):  # closed, or a TLS handshake record
                return
            head = first + await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            method, target, _ = request_line.split(" ", 2)
            headers: CIMultiDict[str] = CIMultiDict()
            for line in lines:
                if line:
                    key, _, value = line.partition(":")
                    headers.add(key.strip(), value.strip())
            seen = Seen(method, target, headers, b"")
            self._log.add(seen)
            for step in self.script(seen) if callable(self.script) else self.script:
                if step is RESET:
                    # no lingering: closing sends a reset, not the orderly end of the stream
                    writer.get_extra_info("socket").setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    writer.transport.abort()
                    return
                if isinstance(step, float):
                    await asyncio.sleep(step)
                else:
                    writer.write(step)
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up first, which is what some tests are about
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _cleanup(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()


Serve = Callable[..., ScriptedServer]
"""The ``serve`` fixture: ``serve(handler, ssl_context=None, host="127.0.0.1")``."""
ServeRaw = Callable[[Script | Callable[[Seen], Script]], RawServer]
"""The ``serve_raw`` fixture: ``serve_raw(script)``."""
